#!/usr/bin/env bash
# Install Debian's redis-server when it is missing (RedisStore tests and benchmarks
# start their own instance on a loopback port, so the system service is not needed).
# Idempotent: does nothing when redis-server is already on PATH.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  echo "redis-server present: $(redis-server --version | head -n1)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "redis-server is missing and apt-get is not available; install redis-server (>= 6) by hand" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# --no-install-recommends: redis-tools comes along as a dependency; no init scripts are needed.
$SUDO apt-get install -y -q --no-install-recommends redis-server
# The package may start a system instance on 6379; tests never use it, and stopping it
# keeps the machine quiet. Failure to stop (no init system in containers) is harmless.
if command -v service >/dev/null 2>&1; then
  $SUDO service redis-server stop >/dev/null 2>&1 || true
fi
echo "redis-server installed: $(redis-server --version | head -n1)"
