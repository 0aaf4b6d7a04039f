#!/usr/bin/env bash
# Regenerates livekit-client.umd.js (and its licence) from npm's
# livekit-client at the exact version package-lock.json pins. The built
# file is committed, so `go build` never needs npm; TestLiveKitClientMatchesLock
# checks it is the locked version's, byte for byte.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp package.json package-lock.json "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
cp "$work/node_modules/livekit-client/dist/livekit-client.umd.js" livekit-client.umd.js
cp "$work/node_modules/livekit-client/LICENSE" LICENSE.livekit-client
echo "livekit-client $(node -p "require('$work/node_modules/livekit-client/package.json').version") copied"
