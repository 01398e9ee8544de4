#!/usr/bin/env bash
# Install @atproto/oauth-client-node (the official Node OAuth client) for the OAuth
# benchmark, which runs it side by side with ours on the reference PDS.
# Idempotent: a complete install is left alone. Uses the node the reference PDS
# install chose (.tools/pds/node-bin), so run `make reference-pds` first.
#   usage: [OAUTH_NODE_TOOLS_DIR=DIR] ./scripts/oauth-client-node/install.sh
set -euo pipefail
VERSION=0.5.3
root=$(cd "$(dirname "$0")/../.." && pwd)
DIR=${OAUTH_NODE_TOOLS_DIR:-$root/.tools/oauth-client-node}
PDS_TOOLS=${PDS_TOOLS_DIR:-$root/.tools/pds}
mkdir -p "$DIR"
cd "$DIR"
[ -f "$PDS_TOOLS/node-bin" ] || { echo "no $PDS_TOOLS/node-bin: run make reference-pds first" >&2; exit 1; }
node_bin=$(cat "$PDS_TOOLS/node-bin")
if [ -f node_modules/@atproto/oauth-client-node/package.json ]; then
  echo "oauth-client-node present: $(cd node_modules/@atproto/oauth-client-node && "$node_bin" -p 'require("./package.json").version')"
  exit 0
fi
[ -f package.json ] || echo '{"private":true}' > package.json
PATH=$(dirname "$node_bin"):$PATH npm install --no-audit --no-fund "@atproto/oauth-client-node@$VERSION" > install.log 2>&1 \
  || { tail -20 install.log >&2; exit 1; }
echo "$node_bin" > node-bin
echo "oauth-client-node installed in $DIR"
