#!/usr/bin/env bash
# Build a private venv holding sessionkeeper as a HAC user installs it (the package
# alone, no dev extras), so start-up is measured the way the original is: each
# installed by itself. Rebuilt when the sources are newer. Prints its `hac` script.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.tools/ours-hac"
stamp="$venv/.built"
if [ ! -x "$venv/bin/hac" ] || [ -n "$(find "$root/src" "$root/pyproject.toml" -type f -not -name '*.pyc' -newer "$stamp" -print -quit 2>/dev/null)" ]; then
  python3 -m venv --clear "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check "$root" >&2
  touch "$stamp"
fi
echo "$venv/bin/hac"
