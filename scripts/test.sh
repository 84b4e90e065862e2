#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs what the tests need, then runs
# `make check`: go vet, staticcheck, golangci-lint, go test -race and brief fuzzing.
# It needs nothing but bash and Go to start: make itself is among what it installs.
set -euo pipefail
cd "$(dirname "$0")/.."
# A test whose tool is missing fails here rather than skips: after the installation step a
# missing tool is a set-up problem that a green run must not hide.
export CI="${CI:-true}"
./scripts/install-test-deps.sh
make check
