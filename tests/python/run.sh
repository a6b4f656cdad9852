#!/usr/bin/env bash
# run.sh - runs one pytest file of tests/python/ with Debian's python3 for scripts/run-tests.sh,
# and ends with the runner's `N passed, N failed` line (pytest's own summary converted).
#
#   tests/python/run.sh tests/python/test_client.py
set -uo pipefail
: "${SKIFF_SRC:?run through scripts/run-tests.sh}"
export PYTHONDONTWRITEBYTECODE=1 # nothing written into the source tree
out=$(mktemp "${TMPDIR:-/tmp}/pytest.XXXXXX")
/usr/bin/python3 -m pytest -p no:cacheprovider -q -rfE "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed|error)' "$out" | tail -n 1)
passed=$(grep -oE '[0-9]+ passed' <<<"$summary" | grep -oE '[0-9]+' || echo 0)
failed=$(grep -oE '[0-9]+ (failed|errors?)' <<<"$summary" | awk '{ s += $1 } END { print s + 0 }')
[[ -z $passed ]] && passed=0
[[ -z $failed ]] && failed=0
if [[ $rc -ne 0 && $failed -eq 0 ]]; then failed=1; fi
rm -f "$out"
echo "$passed passed, $failed failed"
exit "$rc"
