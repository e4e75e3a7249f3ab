#!/usr/bin/env bash
# Run every package's tests: set up and build if needed, then pytest over src/*/test.
# Extra arguments go to pytest (e.g. `scripts/test.sh -k motor -x`).
set -euo pipefail
WS=$(cd "$(dirname "$0")/.." && pwd)
bash "$WS/scripts/setup.sh" --no-run
. "$WS/scripts/env.sh"
cd "$WS"
echo
echo "==> running the tests"
# pytest exits non-zero on any failure, and with 5 when no test ran.
exec python -m pytest "$@"
