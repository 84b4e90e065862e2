#!/usr/bin/env bash
# Installs what the test suite needs beyond Go: the real Prometheus, promtool, Alertmanager and
# amtool that the end-to-end and rules tests run. On a machine where we are not root (or have no
# apt-get) it only says what is missing: the tests then fail under CI and skip elsewhere, saying why.
set -euo pipefail

need=()
command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing test dependencies: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "missing test dependencies (install them as root: apt-get install ${need[*]}); the tests that need them will say so" >&2
fi
