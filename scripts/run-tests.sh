#!/usr/bin/env bash
# run-tests.sh - run skiff's whole test suite against one build tree.
#
#   scripts/run-tests.sh BUILD_DIR [FILTER]
#
# Runs, each as its own process with a timeout, its own temporary directory (TMPDIR, and the
# working directory) and its own HOME (so no test ever reads or writes the real ~/.skiff.toml):
#   - unit tests            BUILD_DIR/tests/test_*        (from tests/unit/test_*.c)
#   - fuzz corpus replays   BUILD_DIR/tests/fuzz_*        (tests/fuzz/fuzz_*.c + replay.c)
#   - integration, C        BUILD_DIR/tests/NAME          (from tests/integration/NAME.c)
#   - integration, shell    tests/integration/*.sh        (except lib.sh, the shared helpers)
#   - security, C and shell tests/security/NAME.c, *.sh   (attacks on a real server; run as
#                                                         integration tests)
#   - Python                tests/python/test_*.py        (pytest with /usr/bin/python3, through
#                                                         tests/python/run.sh; not in the
#                                                         sanitizer pass: the extension cannot
#                                                         load an ASan libskiff)
# FILTER, if given, keeps the tests whose name contains it.
#
# Integration tests get SKIFF_BUILD (absolute build dir) and SKIFF_SRC (the repository root).
# Every process a test leaves behind is killed when it ends (its process group, and anything
# carrying its SKIFF_TEST_TAG in its environment).
#
# Prints one line per test as it ends (ok/FAIL/skip, its own pass/fail counts when it prints a
# `N passed, N failed` line, and its time), then the output of each failing test, then exactly
# `N passed, N failed` on its own line, counting the cases inside each test. Exit status 1 if
# anything failed.
#
# Environment:
#   SKIFF_SANITIZE=1     the sanitizer pass: tests marked slow are skipped (the marker is a line
#                        `# slow` near the top of a .sh, or `// slow` / `/* slow */` in a .c), and
#                        timeouts are doubled
#   SKIFF_TEST_JOBS=N    tests run at once (default: 2)
#   SKIFF_TEST_TIMEOUT=S per-test timeout in seconds (default: 180 unit/fuzz, 420 integration)
#   SKIFF_KEEP_TMP=1     keep the temporary directories (printed at the end)
set -euo pipefail

if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
    echo "usage: $0 BUILD_DIR [FILTER]" >&2
    exit 2
fi
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
filter=${2:-}
jobs=${SKIFF_TEST_JOBS:-2}
sanitize=${SKIFF_SANITIZE:-0}
[[ $sanitize == 0 ]] && sanitize=""

tmproot=$(mktemp -d "${TMPDIR:-/tmp}/skiff-tests.XXXXXX")
declare -a pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill -KILL -- "-$p" 2>/dev/null || true
    done
    if [[ -z ${SKIFF_KEEP_TMP:-} ]]; then
        rm -rf "$tmproot"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- collect the tests: parallel arrays of name, kind, command, marker source -----------------
names=() kinds=() cmds=() srcs=()
add() { # name kind command source
    if [[ -n $filter && $1 != *"$filter"* ]]; then return; fi
    names+=("$1") kinds+=("$2") cmds+=("$3") srcs+=("$4")
}
shopt -s nullglob
for f in "$src"/tests/unit/test_*.c; do
    n=$(basename "$f" .c)
    add "$n" unit "$build/tests/$n" "$f"
done
for f in "$src"/tests/fuzz/fuzz_*.c; do
    n=$(basename "$f" .c)
    add "$n" fuzz "$build/tests/$n" "$f"
done
for f in "$src"/tests/integration/*.c; do
    n=$(basename "$f" .c)
    add "$n" integration "$build/tests/$n" "$f"
done
for f in "$src"/tests/integration/*.sh; do
    n=$(basename "$f")
    [[ $n == lib.sh ]] && continue
    add "$n" integration "$f" "$f"
done
for f in "$src"/tests/security/*.c; do
    n=$(basename "$f" .c)
    add "$n" integration "$build/tests/$n" "$f"
done
for f in "$src"/tests/security/*.sh; do
    add "$(basename "$f")" integration "$f" "$f"
done
if [[ -z $sanitize ]]; then
    for f in "$src"/tests/python/test_*.py; do
        add "$(basename "$f")" python "$f" "$f"
    done
fi
shopt -u nullglob

is_slow() {
    head -n 40 "$1" | grep -Eq '^[[:space:]]*(# slow|// slow|/\* slow \*/)[[:space:]]*$'
}

# Kills everything that carries tag in its environment (processes that left the group).
kill_tagged() {
    local tag=$1 env pid
    while read -r env; do
        pid=${env#/proc/}
        pid=${pid%/environ}
        [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
        kill -KILL "$pid" 2>/dev/null || true
    done < <(grep -lzx "SKIFF_TEST_TAG=$tag" /proc/[0-9]*/environ 2>/dev/null || true)
}

# Runs test i in the background; writes $tmproot/i.result: "rc seconds".
run_one() {
    local i=$1 name=${names[$1]} kind=${kinds[$1]} cmd=${cmds[$1]}
    local dir="$tmproot/$name" tmo
    mkdir -p "$dir/home" "$dir/tmp"
    if [[ $kind == integration || $kind == python ]]; then tmo=${SKIFF_TEST_TIMEOUT:-420}; else tmo=${SKIFF_TEST_TIMEOUT:-180}; fi
    [[ -n $sanitize ]] && tmo=$((tmo * 2))
    local start end rc=0
    start=$(date +%s.%N)
    if [[ ! -x $cmd && ! ($cmd == *.sh && -f $cmd) && $kind != python ]]; then
        echo "not built: $cmd (make all-tests builds it)" >"$dir/log"
        rc=127
    else
        local runner=()
        [[ $cmd == *.sh ]] && runner=(bash)
        [[ $kind == python ]] && runner=(bash "$src/tests/python/run.sh")
        (
            cd "$dir"
            export HOME="$dir/home" TMPDIR="$dir/tmp" SKIFF_BUILD="$build" SKIFF_SRC="$src"
            export SKIFF_TEST_TAG="$name.$$.$i"
            unset SKIFF_SERVER SKIFF_TOKEN_ID SKIFF_TOKEN_SECRET SKIFF_DATA
            # timeout puts itself and the test in a new process group, killed as a whole below.
            timeout -k 10 "$tmo" "${runner[@]}" "$cmd" </dev/null >"$dir/log" 2>&1 &
            local tp=$!
            local trc=0
            wait "$tp" 2>/dev/null || trc=$? # (no "Aborted" job notice: the log says it)
            kill -KILL -- "-$tp" 2>/dev/null || true
            kill_tagged "$SKIFF_TEST_TAG"
            exit "$trc"
        ) || rc=$?
    fi
    end=$(date +%s.%N)
    echo "$rc $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')" >"$tmproot/$i.result"
}

# --- run them, at most $jobs at once ---------------------------------------------------------
total_pass=0 total_fail=0 skipped=0
failed_tests=()
declare -A running=()

report() { # i: prints the test's line and adds up its counts
    local i=$1 name=${names[$1]} rc secs line p f counts=""
    read -r rc secs <"$tmproot/$i.result"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$tmproot/$name/log" | tail -n 1 || true)
    if [[ -n $line ]]; then
        p=${line%% passed*}
        f=${line#*passed, }
        f=${f%% failed*}
        counts=" ($p passed, $f failed)"
        # A crash or leak report after the summary still fails the test.
        if [[ $rc -ne 0 && $f -eq 0 ]]; then f=1; fi
        if [[ $rc -eq 0 && $f -ne 0 ]]; then rc=1; fi
    elif [[ $rc -eq 0 ]]; then
        p=1 f=0
    else
        p=0 f=1
    fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    if [[ $rc -eq 0 ]]; then
        printf 'ok   %-34s %6ss%s\n' "$name" "$secs" "$counts"
    else
        local why=""
        [[ $rc -eq 124 || $rc -eq 137 ]] && why=" timed out"
        printf 'FAIL %-34s %6ss%s exit %s%s\n' "$name" "$secs" "$counts" "$rc" "$why"
        failed_tests+=("$i")
    fi
}

suite_start=$(date +%s)
for i in "${!names[@]}"; do
    if [[ -n $sanitize ]] && is_slow "${srcs[$i]}"; then
        printf 'skip %-34s (slow; not in the sanitizer pass)\n' "${names[$i]}"
        skipped=$((skipped + 1))
        continue
    fi
    while [[ ${#running[@]} -ge $jobs ]]; do
        wait -n 2>/dev/null || true
        for j in "${!running[@]}"; do
            if [[ -f $tmproot/$j.result ]]; then
                unset "running[$j]"
                report "$j"
            fi
        done
    done
    run_one "$i" &
    running[$i]=$!
    pids+=("$!")
done
while [[ ${#running[@]} -gt 0 ]]; do
    wait -n 2>/dev/null || true
    for j in "${!running[@]}"; do
        if [[ -f $tmproot/$j.result ]]; then
            unset "running[$j]"
            report "$j"
        fi
    done
done

for i in "${failed_tests[@]}"; do
    echo
    echo "===== output of ${names[$i]} (last 150 lines) ====="
    tail -n 150 "$tmproot/${names[$i]}/log"
done
echo
[[ -n ${SKIFF_KEEP_TMP:-} ]] && echo "test directories kept in $tmproot"
echo "suite time: $(($(date +%s) - suite_start))s; ${#names[@]} tests, $skipped skipped"
if [[ ${#names[@]} -eq 0 ]]; then
    echo "no test matched" >&2
    total_fail=$((total_fail + 1))
fi
echo "$total_pass passed, $total_fail failed"
[[ $total_fail -eq 0 ]]
