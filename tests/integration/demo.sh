#!/usr/bin/env bash
# demo.sh - `make demo` keeps working: runs scripts/demo.sh against this build, which checks
# every step's output itself and exits non-zero if one is wrong.
# slow
source "$SKIFF_SRC/tests/integration/lib.sh"

begin "scripts/demo.sh"
run_cmd "$SKIFF_SRC/scripts/demo.sh" "$SKIFF_BUILD"
[[ $RC -eq 0 ]] || { show_last; fail "the demo failed"; }
expect_contains "$OUT" 1764 "demo output"
expect_contains "$OUT" 74088 "demo output"
finish
