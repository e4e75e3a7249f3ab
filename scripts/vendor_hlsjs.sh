#!/usr/bin/env bash
# Refresh the web UI's copy of hls.js (HLS playback where a browser has no WebRTC) from npm:
#   bash scripts/vendor_hlsjs.sh [version]
# The built file is committed (src/havatar_relay/havatar_relay/web/hls.min.js, with
# hls.js.LICENSE beside it): nothing is downloaded at run time or by setup.sh.
set -euo pipefail
version="${1:-1.6.15}"
web="$(cd "$(dirname "$0")/.." && pwd)/src/havatar_relay/havatar_relay/web"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "hls.js@$version" >/dev/null && tar xzf "hls.js-$version.tgz")
{
  echo "// hls.js $version (npm hls.js, dist/hls.min.js), Apache-2.0: see hls.js.LICENSE"
  grep -v '^//# sourceMappingURL=' "$work/package/dist/hls.min.js"
} >"$web/hls.min.js"
cp "$work/package/LICENSE" "$web/hls.js.LICENSE"
echo "hls.js $version -> $web/hls.min.js"
