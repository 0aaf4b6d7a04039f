#!/usr/bin/env bash
# Builds livekit-server (the real LiveKit SFU the meeting tests join) from
# the Go module proxy at a pinned version, once per machine: the binary is
# kept in a cache directory and reused while its version matches. Prints the
# binary's path on stdout.
#
# v1.13.5 is the newest release that builds as released: later ones replace
# pion modules with LiveKit's own forks, which the module proxy refuses.
set -euo pipefail

version=v1.13.5
cache=${SEANCE_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/seance-test}
bin=$cache/livekit-server-$version/livekit-server

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$(dirname "$bin")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
echo "building livekit-server $version into $bin (once per machine)" >&2
# A throwaway module pins the server's own go.mod (go install pkg@version
# builds with the released module's requirements, replaces excluded).
GOFLAGS=-mod=mod GOBIN="$work/bin" CGO_ENABLED=0 \
  go install -trimpath -ldflags '-s -w' "github.com/livekit/livekit-server/cmd/server@$version" >&2
mv "$work/bin/server" "$bin.tmp"
mv "$bin.tmp" "$bin"
echo "livekit-server $version built in $(( $(date +%s) - start )) s" >&2
echo "$bin"
