"""bench_python.py PEER [N]: the Python benchmarks of bench/bench_python.sh, one peer at a time,
printing `RESULT key value` lines.

  skiff   Python client -> Python function (pybench.echo): sync round trip p50/p99, map
          throughput, 1,000 .remote.aio calls gathered from one thread against 1,000
          sequential calls; cold start of a module that takes 100 ms to import, with and without
          a snapshot template (pybench_cold)
  celery  echo.delay(x).get() round trips; a group of N echo tasks
  dask    client.submit(echo, x).result() round trips; client.map of N (LocalCluster of 2
          worker processes)
"""
import asyncio
import statistics
import sys
import time


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def report(key, value):
    print(f"RESULT {key} {value:.1f}" if isinstance(value, float) else f"RESULT {key} {value}",
          flush=True)


def sync_rounds(call, n):
    for i in range(min(100, n)):  # warm-up
        call(i)
    lat = []
    for i in range(n):
        t = time.perf_counter()
        call(i)
        lat.append((time.perf_counter() - t) * 1e6)
    report("sync_p50_us", pct(lat, 0.5))
    report("sync_p99_us", pct(lat, 0.99))


def bench_skiff(n):
    import skiff
    echo = skiff.Function.from_name("pybench", "echo")
    sync_rounds(echo.remote, n)
    m = max(n * 100, 100000)
    list(echo.map(range(20000)))  # warm containers (the autoscaler starts them on the backlog)
    t = time.perf_counter()
    out = list(echo.map(range(m)))
    dt = time.perf_counter() - t
    assert out == list(range(m))
    report("map_per_s", m / dt)

    # 1,000 calls one after the other, then 1,000 .remote.aio gathered from one thread: of the
    # trivial echo (the client's own cost) and of nap, a call taking 5 ms (the fan-out's case).
    k = 1000
    for fname, label in (("echo", "aio_echo"), ("nap", "aio_nap")):
        f = skiff.Function.from_name("pybench", fname)

        async def fan():
            return await asyncio.gather(*[f.remote.aio(i) for i in range(k)])

        asyncio.run(fan())  # warm-up: the containers a fan-out wants
        t = time.perf_counter()
        for i in range(k):
            f.remote(i)
        seq = time.perf_counter() - t
        t = time.perf_counter()
        assert asyncio.run(fan()) == list(range(k))
        par = time.perf_counter() - t
        report(f"{label}_seq_ms", seq * 1e3)
        report(f"{label}_fanout_ms", par * 1e3)
        report(f"{label}_speedup", seq / par)

    first = skiff.Function.from_name("pybench-cold", "first")
    snapped = skiff.Cls.from_name("pybench-cold", "Snapped")().start
    for label, f, count in (("cold_import", first, 15), ("cold_snapshot", snapped, 40)):
        f.remote()
        lat = []
        for _ in range(count):
            time.sleep(0.15)  # the last container stops (1 ms idle) and is reaped
            t = time.perf_counter()
            f.remote()
            lat.append((time.perf_counter() - t) * 1e6)
        report(f"{label}_p50_us", pct(lat, 0.5))
        report(f"{label}_p99_us", pct(lat, 0.99))


def bench_celery(n):
    from celery import group
    from bench_celery import echo
    sync_rounds(lambda i: echo.delay(i).get(timeout=30), n)
    m = 3000
    group(echo.s(i) for i in range(200))().get(timeout=120)
    t = time.perf_counter()
    out = group(echo.s(i) for i in range(m))().get(timeout=600)
    dt = time.perf_counter() - t
    assert out == list(range(m))
    report("map_per_s", m / dt)


def echo_fn(x):
    return x


def bench_dask(n):
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        sync_rounds(lambda i: client.submit(echo_fn, i, pure=False).result(), n)
        m = 3000
        client.gather(client.map(echo_fn, range(200), pure=False))
        t = time.perf_counter()
        out = client.gather(client.map(echo_fn, range(m), pure=False))
        dt = time.perf_counter() - t
        assert out == list(range(m))
        report("map_per_s", m / dt)


if __name__ == "__main__":
    peer = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    {"skiff": bench_skiff, "celery": bench_celery, "dask": bench_dask}[peer](n)
