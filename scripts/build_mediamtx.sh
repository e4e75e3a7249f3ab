#!/usr/bin/env bash
# Build the pinned MediaMTX release from the Go module proxy into tools/bin/mediamtx.
#
# The module archive lacks what upstream makes with `go generate` before embedding it:
# hls.min.js (taken from the npm package hls.js at the version upstream pins) and the
# VERSION file (written from the pinned tag). The Raspberry Pi camera assets are only
# embedded in ARM builds and are not needed here.
set -euo pipefail

MEDIAMTX_VERSION=v1.14.0
MODULE=github.com/bluenviron/mediamtx

WS=$(cd "$(dirname "$0")/.." && pwd)
BIN=$WS/tools/bin
WORK=$WS/tools/mediamtx-build

fail() { printf 'build_mediamtx: error: %s\n' "$*" >&2; exit 1; }

if [ -x "$BIN/mediamtx" ] && [ "$("$BIN/mediamtx" --version 2>/dev/null)" = "$MEDIAMTX_VERSION" ]; then
  echo "MediaMTX $MEDIAMTX_VERSION already built: $BIN/mediamtx"
  exit 0
fi
command -v go >/dev/null || fail "the Go toolchain (go 1.24 or newer) is needed to build MediaMTX; install it and re-run"
command -v npm >/dev/null || fail "npm is needed to fetch hls.js for MediaMTX; install Node.js/npm and re-run"

echo "downloading $MODULE@$MEDIAMTX_VERSION from the Go module proxy"
module_dir=$(cd /tmp && go mod download -json "$MODULE@$MEDIAMTX_VERSION" \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit("go mod download: " + d["Error"]) if "Error" in d else print(d["Dir"])') \
  || fail "could not download $MODULE@$MEDIAMTX_VERSION (see the message above)"

rm -rf "$WORK" && mkdir -p "$WORK" "$BIN"
cp -r "$module_dir" "$WORK/src" && chmod -R u+w "$WORK/src"

hls_dir=$WORK/src/internal/servers/hls
hlsjs_version=$(sed 's/^v//' "$hls_dir/hlsjsdownloader/VERSION")
echo "fetching hls.js $hlsjs_version from the npm registry"
(cd "$WORK" && npm pack --silent "hls.js@$hlsjs_version" >/dev/null) \
  || fail "npm could not fetch hls.js@$hlsjs_version"
tar -xzf "$WORK/hls.js-$hlsjs_version.tgz" -C "$WORK" package/dist/hls.min.js
cp "$WORK/package/dist/hls.min.js" "$hls_dir/hls.min.js"
echo "$MEDIAMTX_VERSION" > "$WORK/src/internal/core/VERSION"

echo "compiling MediaMTX (a few minutes the first time)"
(cd "$WORK/src" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -o "$BIN/mediamtx.new" .) \
  || fail "go build of MediaMTX $MEDIAMTX_VERSION failed (see the compiler output above)"
mv "$BIN/mediamtx.new" "$BIN/mediamtx"
rm -rf "$WORK"
echo "MediaMTX $("$BIN/mediamtx" --version) built: $BIN/mediamtx"
