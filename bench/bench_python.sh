#!/usr/bin/env bash
# bench_python.sh - the Python benchmarks side by side (part of `make bench`; docs/python.md and
# docs/performance.md quote them):
#
#   bench/bench_python.sh [BUILD_DIR] [N]      (N sync round trips per peer; default 1000)
#
# Peers, Debian packages on this machine: Celery 5 (python3-celery) with a Redis broker and
# result backend (redis-server on a free port, no persistence, a worker of 2 prefork processes),
# and Dask distributed (python3-distributed, a LocalCluster of 2 worker processes). skiff: a
# Python client calling Python functions (bench/python/pybench.py) on a skiffd of its own.
# Measures, for a function returning its argument: the sync round trip (p50, p99) and a map's
# throughput (skiff: 100,000 inputs; the peers: a group / client.map of 3,000); for skiff also
# 1,000 .remote.aio calls gathered from one thread against 1,000 sequential calls (of that
# trivial function and of one taking 5 ms), and the cold start of a module that takes 100 ms to
# import, with and without a snapshot template. Ratios are printed, never asserted.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
n=${2:-${BENCH_PY_N:-1000}}
py=/usr/bin/python3
redis=$(command -v redis-server || echo /usr/bin/redis-server)
for need in "$build/bin/skiffd" "$build/bin/skiff" "$redis"; do
    [[ -x $need ]] || { echo "bench_python: $need is missing (scripts/install-deps.sh, make)" >&2; exit 1; }
done

source "$src/bench/lib.sh"
bench_begin skiff-pybench

export HOME=$tmp/home PYTHONPATH=$build/lib/python3/dist-packages:$src/bench/python
mkdir -p "$HOME"
unset SKIFF_SERVER SKIFF_TOKEN_ID SKIFF_TOKEN_SECRET SKIFF_DATA
sport=$(free_port)
"$build/bin/skiffd" --data "$tmp/data" --listen "127.0.0.1:$sport" --http "127.0.0.1:$(free_port)" \
    >"$tmp/skiffd.log" 2>&1 </dev/null &
pids+=($!)
wait_port "$sport" "${pids[-1]}" skiffd
for _ in $(seq 1 250); do [[ -f $HOME/.skiff.toml ]] && break; sleep 0.02; done
export SKIFF_SERVER=127.0.0.1:$sport
"$build/bin/skiff" deploy "$src/bench/python/pybench.py" >/dev/null
"$build/bin/skiff" deploy "$src/bench/python/pybench_cold.py" >/dev/null

rport=$(free_port)
"$redis" --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
    >"$tmp/redis.log" 2>&1 </dev/null &
pids+=($!)
wait_port "$rport" "${pids[-1]}" redis-server
export BENCH_REDIS_URL=redis://127.0.0.1:$rport/0
(cd "$src/bench/python" && exec "$py" -m celery -A bench_celery worker --concurrency 2 -P prefork \
    --without-gossip --without-mingle --without-heartbeat -l WARNING) >"$tmp/celery.log" 2>&1 &
pids+=($!)

echo "Python benchmarks: n=$n sync round trips per peer, one client, loopback; $(nproc) cores"
echo "running skiff (Python client -> Python function)..."
(cd "$src/bench/python" && "$py" bench_python.py skiff "$n") >"$tmp/skiff.txt" ||
    { echo "bench_python: skiff failed; end of the server log:" >&2; tail -n 20 "$tmp/skiffd.log" >&2; exit 1; }
echo "running Celery $("$py" -c 'import celery; print(celery.__version__)') + Redis..."
(cd "$src/bench/python" && "$py" bench_python.py celery "$n") >"$tmp/celery.txt" ||
    { echo "bench_python: celery failed; its log:" >&2; tail -n 20 "$tmp/celery.log" >&2; exit 1; }
echo "running Dask distributed $("$py" -c 'import distributed; print(distributed.__version__)')..."
(cd "$src/bench/python" && "$py" bench_python.py dask "$n" 2>"$tmp/dask.log") >"$tmp/dask.txt" ||
    { echo "bench_python: dask failed; its log:" >&2; tail -n 20 "$tmp/dask.log" >&2; exit 1; }

value() { awk -v k="$2" '$1 == "RESULT" && $2 == k { print $3 }' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }'; }
c=$tmp/celery.txt d=$tmp/dask.txt s=$tmp/skiff.txt
echo
printf '%-30s %12s %12s %12s %-9s %10s %10s  %s\n' measurement Celery Dask skiff unit "s/Celery" "s/Dask" target
for k in sync_p50_us sync_p99_us map_per_s; do
    unit=us; [[ $k == map_per_s ]] && unit=results/s
    target=""; [[ $k == sync_p50_us ]] && target="<= 0.05x Celery"
    [[ $k == map_per_s ]] && target=">= 100x both"
    printf '%-30s %12s %12s %12s %-9s %10s %10s  %s\n' "$k" "$(value "$c" "$k")" "$(value "$d" "$k")" \
        "$(value "$s" "$k")" "$unit" "$(ratio "$(value "$s" "$k")" "$(value "$c" "$k")")" \
        "$(ratio "$(value "$s" "$k")" "$(value "$d" "$k")")" "$target"
done
echo
echo "skiff .aio fan-out, 1,000 calls from one thread (sequential ms / gathered ms = speedup):"
for f in echo nap; do
    printf '  %-28s %10s ms %10s ms %8sx  %s\n' "$f ($([[ $f == echo ]] && echo trivial || echo 5 ms each))" \
        "$(value "$s" aio_${f}_seq_ms)" "$(value "$s" aio_${f}_fanout_ms)" \
        "$(value "$s" aio_${f}_speedup)" "$([[ $f == nap ]] && echo "target >= 10x")"
done
echo
echo "skiff cold start of a Python function whose module takes 100 ms to import (call to result):"
printf '  %-28s p50 %10s us   p99 %10s us\n' "without a template" "$(value "$s" cold_import_p50_us)" \
    "$(value "$s" cold_import_p99_us)"
printf '  %-28s p50 %10s us   p99 %10s us  %s\n' "forked from a snapshot" "$(value "$s" cold_snapshot_p50_us)" \
    "$(value "$s" cold_snapshot_p99_us)" "target p50 < 10 ms"
