#!/usr/bin/env bash
# Build a private venv holding the original hac-client-cli 0.3.2 (with its
# hac-client-core 0.1.2), used only to run it side by side with ours
# (differential tests and benchmarks). Prints the path of its `hac` script.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.tools/orig-hac-cli"
if [ ! -x "$venv/bin/hac" ] || ! "$venv/bin/python" -c "import hac_client_cli" 2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check --ignore-requires-python \
    hac-client-cli==0.3.2 hac-client-core==0.1.2 requests beautifulsoup4 >&2
fi
echo "$venv/bin/hac"
