# lib.sh - what the benchmark scripts share (sourced, not run): a private temporary directory
# and the background servers to stop on exit, and scripts/ports.sh's free_port / wait_port.
#
#   source "$src/bench/lib.sh"
#   bench_begin skiff-bench          # sets tmp (removed on exit) and pids (TERMed on exit)
#   some-server ... & pids+=($!)
# shellcheck shell=bash

# bench_begin NAME: makes $tmp (NAME.XXXXXX under $TMPDIR) and arranges for every pid in the
# array pids to be stopped, and $tmp removed, when the script exits.
bench_begin() {
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    pids=()
    trap bench_end EXIT
}

bench_end() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}

source "$(dirname "${BASH_SOURCE[0]}")/../scripts/ports.sh"
