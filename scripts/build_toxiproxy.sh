#!/usr/bin/env bash
# Build the pinned Toxiproxy release from the Go module proxy into tools/bin.
#
# Toxiproxy (a TCP proxy that injects network faults through an HTTP API) is only used by
# the tests. `go install module/cmd/...@version` builds with the module's own go.mod and
# go.sum; the version is stamped with -ldflags as upstream's release build does, so that
# `toxiproxy-server -version` tells whether the binary in tools/bin is the pinned one.
set -euo pipefail

TOXIPROXY_VERSION=v2.12.0
MODULE=github.com/Shopify/toxiproxy/v2

WS=$(cd "$(dirname "$0")/.." && pwd)
BIN=$WS/tools/bin
EXPECTED="toxiproxy-server version ${TOXIPROXY_VERSION#v}"

fail() { printf 'build_toxiproxy: error: %s\n' "$*" >&2; exit 1; }

built_version() { "$BIN/$1" -version 2>/dev/null | head -n 1 || true; }

if [ -x "$BIN/toxiproxy-server" ] && [ "$(built_version toxiproxy-server)" = "$EXPECTED" ] \
  && [ -x "$BIN/toxiproxy-cli" ]; then
  echo "Toxiproxy $TOXIPROXY_VERSION already built: $BIN/toxiproxy-server"
  exit 0
fi
command -v go >/dev/null || fail "the Go toolchain (go 1.23 or newer) is needed to build Toxiproxy; install it and re-run"

mkdir -p "$BIN"
gobin=$(mktemp -d)
trap 'rm -rf "$gobin"' EXIT

echo "building Toxiproxy $TOXIPROXY_VERSION from the Go module proxy"
(cd /tmp && GOBIN=$gobin CGO_ENABLED=0 GOFLAGS=-buildvcs=false go install \
  -ldflags="-s -w -X $MODULE.Version=${TOXIPROXY_VERSION#v}" \
  "$MODULE/cmd/server@$TOXIPROXY_VERSION" "$MODULE/cmd/cli@$TOXIPROXY_VERSION") \
  || fail "go install of $MODULE@$TOXIPROXY_VERSION failed (see the output above)"

# go install names the binaries after their package directories (server, cli).
mv "$gobin/server" "$BIN/toxiproxy-server"
mv "$gobin/cli" "$BIN/toxiproxy-cli"
[ "$(built_version toxiproxy-server)" = "$EXPECTED" ] \
  || fail "the built $BIN/toxiproxy-server reports '$(built_version toxiproxy-server)', not '$EXPECTED'"
echo "Toxiproxy $TOXIPROXY_VERSION built: $BIN/toxiproxy-server, $BIN/toxiproxy-cli"
