#!/usr/bin/env bash
# Release builds of p2pshare for Linux, macOS and Windows on amd64 and
# arm64, with a SHA256SUMS file:
#
#   dist/release.sh VERSION OUTDIR      e.g. dist/release.sh 0.2.0 /tmp/rel
#
# Static (CGO_ENABLED=0), without local paths (-trimpath) or symbol tables
# (-s -w), with the version and the commit set with -X, and without the
# build ID: the same tree and Go release give the same bytes wherever they
# are built (`go test -run TestReleaseIsReproducible ./dist/` checks it).
set -euo pipefail
if [ $# -ne 2 ] || [ -z "$1" ]; then
  echo "usage: dist/release.sh VERSION OUTDIR" >&2
  exit 2
fi
version=$1
out=$2
cd "$(dirname "$0")/.."
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ "$commit" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="$commit+modified"
fi
mkdir -p "$out"
targets=${P2PSHARE_TARGETS:-"linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64"}
for t in $targets; do
  goos=${t%/*} goarch=${t#*/}
  ext=""; [ "$goos" = windows ] && ext=.exe
  bin="$out/p2pshare-$version-$goos-$goarch$ext"
  CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch GOFLAGS=-buildvcs=false \
    go build -trimpath -o "$bin" \
      -ldflags "-s -w -buildid= -X github.com/p2pshare/p2pshare/node.Version=$version -X main.commit=$commit" \
      ./cmd/p2pshare
  echo "$bin"
done
(cd "$out" && sha256sum p2pshare-"$version"-* > SHA256SUMS && cat SHA256SUMS)
