#!/usr/bin/env bash
# run.sh - skiff's benchmarks side by side with Gearman, in one run (what `make bench` runs).
#
#   bench/run.sh [BUILD_DIR] [N]        (N operations per measurement; default BENCH_N or 5000)
#
# Starts gearmand (single-thread mode, as in shared/reference/peers.md) and skiffd on free
# loopback ports with temporary directories (and a temporary HOME, so ~/.skiff.toml is never
# touched), deploys bench/apps/trivial.c, runs bench_gearman and bench_skiff with 64-byte
# payloads, and prints a table: each figure, the ratio skiff / Gearman, and the target from
# DESIGN.md. Ratios are reported, never asserted. Then the cold start (bench_coldstart, app
# bench/apps/coldstart.c, BENCH_COLD_N calls, default 200): on a second skiffd with
# --no-sandbox (process containers) and on the first one (sandboxed when it runs as root), and
# on the --no-sandbox one for a class whose 50 ms of enter work runs in every container or once,
# in the snapshot template its containers are forked from (BENCH_COLD_N / 4 calls each; the
# forked starts on the sandboxed server too).
# Then what collecting metrics costs: bench_skiff's sync and map (no scaling runs) against the
# first skiffd and a third one started with --no-metrics, alternating, twice each; the better of
# each pair is reported.
# Then the web endpoints (bench_http.sh) and the Python side against Celery and Dask
# (bench_python.sh). Stops the servers on exit.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
n=${2:-${BENCH_N:-5000}}
payload=${BENCH_PAYLOAD:-64}
cold_n=${BENCH_COLD_N:-200}
for f in bin/skiffd bin/skiff bench/bench_skiff bench/bench_gearman bench/bench_coldstart; do
    [[ -x $build/$f ]] || { echo "bench: $build/$f is missing (make bench builds it)" >&2; exit 1; }
done
gearmand=$(command -v gearmand || echo /usr/sbin/gearmand)
[[ -x $gearmand ]] || { echo "bench: gearmand is missing (scripts/install-deps.sh)" >&2; exit 1; }

source "$src/bench/lib.sh"
bench_begin skiff-bench

gport=$(free_port)
"$gearmand" -t 0 -p "$gport" -L 127.0.0.1 --log-file="$tmp/gearmand.log" \
    >"$tmp/gearmand.out" 2>&1 </dev/null &
pids+=($!)
wait_port "$gport" "${pids[-1]}" gearmand

export HOME=$tmp/home
mkdir -p "$HOME"
unset SKIFF_SERVER SKIFF_TOKEN_ID SKIFF_TOKEN_SECRET SKIFF_DATA
sport=$(free_port)
hport=$(free_port)
"$build/bin/skiffd" --data "$tmp/data" --listen "127.0.0.1:$sport" --http "127.0.0.1:$hport" \
    >"$tmp/skiffd.log" 2>&1 </dev/null &
skiffd_pid=$!
pids+=($!)
wait_port "$sport" "${pids[-1]}" skiffd
for _ in $(seq 1 250); do [[ -f $HOME/.skiff.toml ]] && break; sleep 0.02; done
"$build/bin/skiff" deploy "$src/bench/apps/trivial.c" >/dev/null
"$build/bin/skiff" deploy "$src/bench/apps/coldstart.c" >/dev/null
# The same server with process containers, for the cold start side by side.
pport=$(free_port)
"$build/bin/skiffd" --no-sandbox --data "$tmp/data-plain" --listen "127.0.0.1:$pport" \
    --http "127.0.0.1:$(free_port)" >"$tmp/skiffd-plain.log" 2>&1 </dev/null &
pids+=($!)
wait_port "$pport" "${pids[-1]}" "skiffd --no-sandbox"
SKIFF_SERVER=127.0.0.1:$pport "$build/bin/skiff" deploy "$src/bench/apps/coldstart.c" >/dev/null

echo "n=$n per measurement, ${payload}-byte payloads, one client, loopback; $(nproc) cores"
echo "running Gearman ($("$gearmand" --version 2>&1 | grep -m1 gearmand || true))..."
"$build/bench/bench_gearman" --port "$gport" --n "$n" --payload "$payload" >"$tmp/gearman.txt"
echo "running skiff..."
if ! "$build/bench/bench_skiff" --n "$n" --payload "$payload" >"$tmp/skiff.txt"; then
    echo "bench: bench_skiff failed; end of the server log:" >&2
    tail -n 20 "$tmp/skiffd.log" >&2
    exit 1
fi

echo "running skiff's memory benchmark (${BENCH_MEMORY_N:-1000000} queued inputs, then a map of" \
    "${BENCH_BIG_MAP:-10000000} inputs)..."
"$build/bench/bench_memory" --server-pid "$skiffd_pid" --n "${BENCH_MEMORY_N:-1000000}" \
    --payload "$payload" --big "${BENCH_BIG_MAP:-10000000}" >"$tmp/memory.txt" ||
    { echo "bench: bench_memory failed" >&2; exit 1; }
echo "running the cold start..."
SKIFF_SERVER=127.0.0.1:$pport "$build/bench/bench_coldstart" --n "$cold_n" --label process \
    >"$tmp/cold-process.txt"
# A class whose instances take 50 ms of work to enter, with that work in an enter_snap hook
# (the pool's containers are forked from a template that did it once) and in a plain enter hook.
snap_n=$(( cold_n / 4 > 10 ? cold_n / 4 : 10 ))
SKIFF_SERVER=127.0.0.1:$pport "$build/bench/bench_coldstart" --n "$snap_n" --label class_enter \
    --function Plain.start >"$tmp/cold-class-enter.txt"
SKIFF_SERVER=127.0.0.1:$pport "$build/bench/bench_coldstart" --n "$snap_n" --label class_snapshot \
    --function Snapped.start >"$tmp/cold-class-snapshot.txt"
sandboxed=$(grep -c "containers are sandboxed" "$tmp/skiffd.log" || true)
if [[ $sandboxed -gt 0 ]]; then
    SKIFF_SERVER=127.0.0.1:$sport "$build/bench/bench_coldstart" --n "$cold_n" --label sandboxed \
        >"$tmp/cold-sandboxed.txt"
    # The snapshot template and its forks in a sandbox too.
    SKIFF_SERVER=127.0.0.1:$sport "$build/bench/bench_coldstart" --n "$snap_n" \
        --label sandboxed_snapshot --function Snapped.start >"$tmp/cold-sandboxed-snapshot.txt"
fi

value() { awk -v k="$2" '$1 == "RESULT" && $2 == k { print $3 }' "$1"; }
row() { # LABEL KEY UNIT RATIO_LABEL TARGET
    local g s ratio
    g=$(value "$tmp/gearman.txt" "$2")
    s=$(value "$tmp/skiff.txt" "$2")
    ratio=$(awk -v a="$s" -v b="$g" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
    printf '%-34s %12s %12s %-9s %8sx  %s\n' "$1" "$g" "$s" "$3" "$ratio" "$5"
}
echo
printf '%-34s %12s %12s %-9s %9s  %s\n' "measurement" "Gearman" "skiff" "unit" "skiff/G" "target (DESIGN.md)"
row "sync round trip, p50" sync_p50_us us p50 "<= 0.50x (half of Gearman's)"
row "sync round trip, p99" sync_p99_us us p99 ""
row "sync calls/s" sync_per_s "calls/s" "" ""
row "spawn (durable) / background submit" submit_per_s "per s" "" ">= 4x"
row "  one spawn at a time / one submit" spawn1_per_s "per s" "" ""
row "map (N tasks, results collected)" map_per_s "results/s" "" ">= 15x"
echo
echo "map throughput by containers (the autoscaler pinned at k):"
for k in 1 2 4 8; do
    v=$(value "$tmp/skiff.txt" "map_per_s_${k}c")
    [[ -n $v ]] || continue
    bar=$(awk -v v="$v" 'BEGIN { n = int(v / 10000); s = ""; for (i = 0; i < n; i++) s = s "#"; print s }')
    printf '  %d container%s %10.0f results/s  %s\n' "$k" "$([[ $k == 1 ]] && echo " " || echo s)" "$v" "$bar"
done
echo
mem=$(value "$tmp/memory.txt" queued_bytes_per_input)
printf '%-34s %12s %12s %-9s %9s  %s\n' "server memory per queued input" "-" "$mem" "bytes" "" "< 500"
grep -v '^RESULT' "$tmp/memory.txt" | sed 's/^/  /'
echo
echo "Gearman: gearman_client_do; add_task_background + run_tasks in batches of 1000 (and"
echo "         one gearman_client_do_background at a time); add_task x N + run_tasks."
echo "skiff:   skiff_function_remote; skiff_function_spawn_map of N inputs, each durable before"
echo "         it returns (and N/10 skiff_function_spawn one at a time); skiff_function_map."
echo
echo "cold start: a call that needs a new container, to its first result (median of $cold_n, from"
echo "the client: includes one round trip); target (DESIGN.md): under 5 ms for a process container"
cold_row() { # LABEL FILE KEY
    printf '  %-24s p50 %9s us   p99 %9s us\n' "$1" "$(value "$2" "$3"_p50_us)" "$(value "$2" "$3"_p99_us)"
}
cold_row "process container" "$tmp/cold-process.txt" coldstart_process
echo "  a class whose enter work takes 50 ms ($snap_n calls each, process containers):"
cold_row "  in enter, each start" "$tmp/cold-class-enter.txt" coldstart_class_enter
cold_row "  in enter_snap, forked" "$tmp/cold-class-snapshot.txt" coldstart_class_snapshot
if [[ $sandboxed -gt 0 ]]; then
    cold_row "sandboxed container" "$tmp/cold-sandboxed.txt" coldstart_sandboxed
    cold_row "  sandboxed, forked" "$tmp/cold-sandboxed-snapshot.txt" coldstart_sandboxed_snapshot
else
    echo "  sandboxed container      not measured: $(grep -m1 -o 'containers run as plain processes.*' "$tmp/skiffd.log")"
fi

echo
echo "running skiff with and without metrics (sync and map, twice each, alternating)..."
mport=$(free_port)
"$build/bin/skiffd" --no-metrics --data "$tmp/data-nometrics" --listen "127.0.0.1:$mport" \
    --http "127.0.0.1:$(free_port)" >"$tmp/skiffd-nometrics.log" 2>&1 </dev/null &
pids+=($!)
nometrics_pid=$!
wait_port "$mport" "${pids[-1]}" "skiffd --no-metrics"
SKIFF_SERVER=127.0.0.1:$mport "$build/bin/skiff" deploy "$src/bench/apps/trivial.c" >/dev/null
# The servers' CPU time (clock ticks) over the same work: steadier than wall-clock figures on a
# busy machine.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
cpu_on=0 cpu_off=0
for round in 1 2; do
    t=$(ticks "$skiffd_pid")
    "$build/bench/bench_skiff" --n "$n" --payload "$payload" --scaling 0 >"$tmp/on$round.txt"
    cpu_on=$((cpu_on + $(ticks "$skiffd_pid") - t))
    t=$(ticks "$nometrics_pid")
    SKIFF_SERVER=127.0.0.1:$mport "$build/bench/bench_skiff" --n "$n" --payload "$payload" \
        --scaling 0 >"$tmp/off$round.txt"
    cpu_off=$((cpu_off + $(ticks "$nometrics_pid") - t))
done
best() { # KEY lower|higher FILES...: the best value of KEY over the files
    local key=$1 how=$2
    shift 2
    for f in "$@"; do value "$f" "$key"; done | sort -g | { [[ $how == lower ]] && head -n 1 || tail -n 1; }
}
printf '%-34s %12s %12s %-9s %9s\n' "metrics cost" "without" "with" "unit" "with/w-o"
for spec in "sync round trip, p50:sync_p50_us:lower:us" "map (N tasks, results collected):map_per_s:higher:results/s"; do
    IFS=: read -r label key how unit <<<"$spec"
    off=$(best "$key" "$how" "$tmp/off1.txt" "$tmp/off2.txt")
    on=$(best "$key" "$how" "$tmp/on1.txt" "$tmp/on2.txt")
    printf '%-34s %12s %12s %-9s %8sx\n' "$label" "$off" "$on" "$unit" \
        "$(awk -v a="$on" -v b="$off" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')"
done
printf '%-34s %12s %12s %-9s %8sx\n' "server CPU over the same work" "$cpu_off" "$cpu_on" "ticks" \
    "$(awk -v a="$cpu_on" -v b="$cpu_off" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')"
echo "  target (issue 11): under 2% (sync p50 at most 1.02x, map at least 0.98x)"

echo
"$src/bench/bench_http.sh" "$build" || echo "bench: bench_http.sh failed" >&2

echo
"$src/bench/bench_python.sh" "$build" || echo "bench: bench_python.sh failed" >&2
