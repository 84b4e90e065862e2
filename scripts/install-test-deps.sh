#!/usr/bin/env bash
# Installs what the test suite needs beyond Go: make; a C compiler, which go test -race needs
# (cgo); the real Prometheus, promtool, Alertmanager and amtool that the end-to-end and rules
# tests run; and Debian's docker-compose (Compose v1), whose `config` validates
# deploy/docker-compose*.yml without a Docker engine. On a machine where we
# are not root (or have no apt-get) it only says what is missing: the tests then fail under CI and
# skip elsewhere, saying why.
#
# It also fetches and builds kustomize, which deploy/ship_test.go runs with `go run` at this exact
# version (a test keeps the two in step), so that the tests themselves need no download. This
# needs the Go module proxy once; later runs use Go's module and build caches.
set -euo pipefail

KUSTOMIZE=sigs.k8s.io/kustomize/kustomize/v5@v5.8.2

need=()
command -v make >/dev/null || need+=(make)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
command -v docker-compose >/dev/null || need+=(docker-compose)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "installing test dependencies: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "missing test dependencies (install them as root: apt-get install ${need[*]}); the tests that need them will say so" >&2
  fi
fi

if command -v go >/dev/null; then
  go run "$KUSTOMIZE" version >/dev/null \
    || echo "could not fetch $KUSTOMIZE (no module proxy?); the kustomize tests will fail under CI" >&2
fi
