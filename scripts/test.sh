#!/usr/bin/env bash
# Run every package's tests: set up and build if needed, lint (ruff, settings in ruff.toml),
# then pytest over src/*/test. Extra arguments go to pytest (e.g. `scripts/test.sh -k motor -x`;
# `scripts/test.sh -m "not integration"` runs only the tests that start no process).
set -euo pipefail
WS=$(cd "$(dirname "$0")/.." && pwd)
bash "$WS/scripts/setup.sh" --no-run
. "$WS/scripts/env.sh"
cd "$WS"
echo
echo "==> lint (ruff check; settings in ruff.toml)"
lint=0
ruff check "$WS" || lint=1
echo
echo "==> running the tests"
# pytest exits non-zero on any failure, and with 5 when no test ran.
status=0
python -m pytest "$@" || status=$?
if [ "$lint" -ne 0 ]; then
  echo "test: ruff found problems (see 'lint' above); fix them or 'ruff check --fix'" >&2
  [ "$status" -ne 0 ] || status=1
fi
exit "$status"
