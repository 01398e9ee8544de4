#!/usr/bin/env bash
# Install Debian's chromium-headless-shell when it is missing: the OAuth tests sign in
# through the reference PDS's authorization pages in a real headless browser, driven
# over the DevTools protocol (no browser download of its own).
# Idempotent: does nothing when the binary is already there.
set -euo pipefail
for candidate in /usr/lib/chromium/chromium-headless-shell /usr/lib/chromium/chromium; do
  if [ -x "$candidate" ]; then
    echo "chromium present: $candidate"
    exit 0
  fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium-headless-shell is missing and apt-get is not available; install it by hand" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium-headless-shell
echo "chromium installed: $(ls /usr/lib/chromium/chromium-headless-shell)"
