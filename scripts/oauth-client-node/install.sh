#!/usr/bin/env bash
# Install @atproto/oauth-client-node (the official Node OAuth client) for the OAuth
# benchmarks, which run it side by side with ours on the reference PDS, with what
# a fleet of Node processes adds to it: ioredis for a Redis session store and
# redis-semaphore for its requestLock.
# Idempotent: a complete install is left alone. Uses the node the reference PDS
# install chose (.tools/pds/node-bin), so run `make reference-pds` first.
#   usage: [OAUTH_NODE_TOOLS_DIR=DIR] ./scripts/oauth-client-node/install.sh
set -euo pipefail
VERSION=0.5.3
IOREDIS_VERSION=5.11.1
SEMAPHORE_VERSION=5.8.0
root=$(cd "$(dirname "$0")/../.." && pwd)
DIR=${OAUTH_NODE_TOOLS_DIR:-$root/.tools/oauth-client-node}
PDS_TOOLS=${PDS_TOOLS_DIR:-$root/.tools/pds}
mkdir -p "$DIR"
cd "$DIR"
[ -f "$PDS_TOOLS/node-bin" ] || { echo "no $PDS_TOOLS/node-bin: run make reference-pds first" >&2; exit 1; }
node_bin=$(cat "$PDS_TOOLS/node-bin")
if [ -f node_modules/@atproto/oauth-client-node/package.json ] \
  && [ -f node_modules/ioredis/package.json ] && [ -f node_modules/redis-semaphore/package.json ]; then
  echo "oauth-client-node present: $(cd node_modules/@atproto/oauth-client-node && "$node_bin" -p 'require("./package.json").version')"
  exit 0
fi
[ -f package.json ] || echo '{"private":true}' > package.json
PATH=$(dirname "$node_bin"):$PATH npm install --no-audit --no-fund "@atproto/oauth-client-node@$VERSION" \
  "ioredis@$IOREDIS_VERSION" "redis-semaphore@$SEMAPHORE_VERSION" > install.log 2>&1 \
  || { tail -20 install.log >&2; exit 1; }
echo "$node_bin" > node-bin
echo "oauth-client-node installed in $DIR"
