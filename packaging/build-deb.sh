#!/usr/bin/env bash
# Builds seance's Debian packages with nfpm, run as a Go tool at a pinned
# version (go run …@version: nfpm's dependencies stay out of go.mod).
#
#   packaging/build-deb.sh [-o DIR] [ARCH…]     (default: dist/, amd64 arm64)
#
# Each package holds a static binary (CGO_ENABLED=0) for its architecture.
# The version is `git describe`'s, made a Debian version: v1.2.0 → 1.2.0,
# v1.2.0-3-gabc → 1.2.0+git3.abc, no tag → 0~git<date>.<commit>
# (SEANCE_VERSION=… instead of git describe, e.g. in a Docker build).
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
NFPM_VERSION=${NFPM_VERSION:-v2.48.0}
out=dist
if [ "${1:-}" = -o ]; then
	out=$2
	shift 2
fi
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(amd64 arm64)
mkdir -p "$out"

# SEANCE_VERSION overrides git (a Docker build has no .git).
if [ -n "${SEANCE_VERSION:-}" ]; then
	desc=$SEANCE_VERSION tag=$SEANCE_VERSION
else
	desc=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
	tag=$(git describe --tags --dirty 2>/dev/null || true)
fi
if [[ $tag =~ ^v?([0-9][0-9A-Za-z.~+]*)(-([0-9]+)-g([0-9a-f]+))?(-dirty)?$ ]]; then
	ver=${BASH_REMATCH[1]}
	[ -z "${BASH_REMATCH[3]}" ] || ver+="+git${BASH_REMATCH[3]}.${BASH_REMATCH[4]}"
else
	commit=$(git rev-parse --short HEAD 2>/dev/null || echo "${desc%-dirty}")
	ver="0~git$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null || date +%Y%m%d).${commit//[^0-9A-Za-z.+~]/.}"
fi
[[ $desc != *-dirty ]] || ver+="+dirty"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for arch in "${archs[@]}"; do
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch "$GO" build -trimpath \
		-ldflags "-s -w -X main.version=$desc" -o "$tmp/seance-$arch" ./cmd/seance
	# nfpm expands ${VAR} in arch and version, not in a file's src.
	sed "s|\${SEANCE_BIN}|$tmp/seance-$arch|" packaging/nfpm.yaml >"$tmp/nfpm.yaml"
	SEANCE_ARCH=$arch SEANCE_DEB_VERSION=$ver \
		"$GO" run "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION" package \
		--config "$tmp/nfpm.yaml" --packager deb --target "$out/seance_${ver}_${arch}.deb" >&2
	echo "$out/seance_${ver}_${arch}.deb"
done
