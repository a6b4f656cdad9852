#!/usr/bin/env bash
# fuzz.sh - build the fuzz targets (tests/fuzz/fuzz_*.c) with clang and libFuzzer, and run each
# for a bounded time.
#
#   scripts/fuzz.sh [BUILD_DIR] [SECONDS]      (or FUZZ_SECONDS=N; default 60 s per target)
#   FUZZ_TARGETS="frame json" scripts/fuzz.sh  (a subset)
#   FUZZ_ARGS="-fork=2 -ignore_crashes=1" scripts/fuzz.sh   (more libFuzzer options)
#
# Each target starts from its seed corpus tests/fuzz/corpus/NAME/ and keeps what it learns in
# BUILD_DIR/fuzz/corpus/NAME/ (the seeds in the repository are never rewritten). A crash, a
# sanitizer report or an oversized allocation stops that target and leaves the input in
# BUILD_DIR/fuzz/crashes/; replay it with `BUILD_DIR/tests/fuzz_NAME FILE` (built by `make`), and
# copy it into the seed corpus once fixed, so every test run replays it from then on.
# Exit status: 0 when no target found anything, 1 otherwise.
set -euo pipefail

cd "$(dirname "$0")/.."
build=build
seconds=${FUZZ_SECONDS:-60}
if [[ $# -ge 1 ]]; then
    if [[ $1 =~ ^[0-9]+$ ]]; then seconds=$1; else build=$1; fi
fi
if [[ $# -ge 2 ]]; then seconds=$2; fi

if ! command -v clang >/dev/null; then
    scripts/install-deps.sh --fuzz
fi

pkgs=(libuv msgpack sqlite3 jansson libcrypto)
read -r -a cflags <<<"$(pkg-config --cflags "${pkgs[@]}")"
read -r -a libs <<<"$(pkg-config --libs "${pkgs[@]}")"
out="$build/fuzz"
mkdir -p "$out/crashes"

read -r -a extra <<<"${FUZZ_ARGS:-}"
targets=${FUZZ_TARGETS:-$(for f in tests/fuzz/fuzz_*.c; do n=${f##*/fuzz_}; echo "${n%.c}"; done)}
found=0
for name in $targets; do
    bin="$out/fuzz_$name"
    echo "== building fuzz_$name"
    clang -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -Iinclude -Isrc "${cflags[@]}" \
        "tests/fuzz/fuzz_$name.c" src/common/*.c -o "$bin" "${libs[@]}" -lhttp_parser -lpthread
    corpus="$out/corpus/$name"
    mkdir -p "$corpus"
    echo "== fuzzing fuzz_$name for ${seconds}s"
    # -rss_limit_mb: the machine has plenty, but a single input needing more than 2 GiB is a bug.
    if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "$bin" "$corpus" "tests/fuzz/corpus/$name" -max_total_time="$seconds" \
        -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "${extra[@]}" \
        -artifact_prefix="$out/crashes/${name}-" 2>"$out/fuzz_$name.log"; then
        found=1
        echo "!! fuzz_$name found a problem; the last lines of $out/fuzz_$name.log:"
        tail -n 40 "$out/fuzz_$name.log"
    else
        grep -E '^(stat::number_of_executed_units|stat::new_units_added)' "$out/fuzz_$name.log" || true
    fi
done
if [[ $found -ne 0 ]]; then
    echo "inputs that failed:"
    ls -l "$out/crashes"
    exit 1
fi
echo "no target found a problem"
