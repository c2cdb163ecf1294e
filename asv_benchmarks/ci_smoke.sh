#!/usr/bin/env bash
# Smoke test of the asv suite, for CI: check the suite, then run every
# benchmark once against the loopbp installed in the current environment
# (`--python=same --quick`, nothing saved).  Exits non-zero when a benchmark
# errors, when asv fails, or when the run takes longer than
# ASV_SMOKE_TIMEOUT seconds (default 900).
#
# Needs: a git checkout, `pip install -e '.[bench]'` (or '.[test,bench]').
# Extra arguments go to `asv run`, e.g. `-b '^training'` to smoke-test a part.
set -euo pipefail
cd "$(dirname "$0")"

limit="${ASV_SMOKE_TIMEOUT:-900}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

# asv refuses to run without a machine description; record one if missing.
asv machine --yes > /dev/null

echo "== asv check"
asv check --python=same

echo "== asv run --quick (every benchmark once, limit ${limit}s)"
status=0
timeout --kill-after=30 "$limit" \
    asv run --python=same --quick --dry-run --show-stderr "$@" 2>&1 | tee "$log" || status=$?

if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "asv smoke: FAILED, the run took longer than ${limit}s" >&2
    exit 1
fi
# asv exits with 2 when a benchmark failed; the log names it.
if [ "$status" -ne 0 ] || grep -Eq '(failed|Traceback)' "$log"; then
    echo "asv smoke: FAILED (asv exit status ${status}); failing benchmarks:" >&2
    grep -E '(failed|Error)' "$log" >&2 || true
    exit 1
fi
echo "asv smoke: all benchmarks ran"
