#!/usr/bin/env bash
# Build a private venv holding the original hac-client-core 0.1.2, used only to
# compare against it (fidelity tests and benchmarks). Prints the python path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.tools/orig-hac"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import hac_client_core" 2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check --ignore-requires-python \
    hac-client-core==0.1.2 requests beautifulsoup4 >&2
fi
echo "$venv/bin/python"
