/*
 * bench_skiff.c - skiff's side of the benchmark: libskiff against a running skiffd with the
 * app bench/apps/trivial.c deployed (bench/run.sh does both), measured the same way as
 * bench_gearman.c.
 *
 *     bench_skiff [--n N] [--payload BYTES]      (server and token: $SKIFF_SERVER, ~/.skiff.toml)
 *
 * From one client, with a payload of BYTES bytes:
 *   (a) sync:  N skiff_function_remote calls of bench/echo on a warm container, one at a time:
 *              p50, p99, calls/s;
 *   (b) spawn: N inputs queued with skiff_function_spawn_map, which pipelines them in chunks
 *              and returns once every one is durable (on the server's disk): inputs/s (their
 *              results are collected, untimed, before the next part); and, for reference, N/10
 *              skiff_function_spawn calls one at a time, each waiting for its own commit;
 *   (c) map:   skiff_function_map over N inputs, every result collected: results/s;
 *   (d) the same map with the autoscaler pinned at 1, 2, 4 and 8 containers (--scaling 0 skips
 *       it): results/s for each, the chart in docs/performance.md.
 * Prints RESULT lines (bench.h) for bench/run.sh.
 */
#include <skiff/skiff.h>

#include "bench.h"

#include <time.h>

static void check(int rc, const skiff_error *err, const char *what)
{
    if (rc != SKIFF_OK) {
        fprintf(stderr, "bench_skiff: %s: %s: %s\n", what, err->type ? err->type : "?",
                err->message ? err->message : "?");
        exit(1);
    }
}

static skiff_call **spawn_all(skiff_function *fn, const skiff_value *args, long n)
{
    skiff_call **calls = calloc((size_t)n, sizeof *calls);
    skiff_error err = SKIFF_ERROR_INIT;
    for (long i = 0; i < n; i++)
        check(skiff_function_spawn(fn, args, NULL, &calls[i], &err), &err, "spawn");
    return calls;
}

static void get_all(skiff_call **calls, long n, size_t size)
{
    skiff_error err = SKIFF_ERROR_INIT;
    for (long i = 0; i < n; i++) {
        skiff_value *v = NULL;
        check(skiff_call_get(calls[i], SKIFF_WAIT_FOREVER, &v, &err), &err, "get");
        size_t got = 0;
        if (!skiff_value_get_bytes(v, &got) || got != size) {
            fprintf(stderr, "bench_skiff: wrong result\n");
            exit(1);
        }
        skiff_value_free(v);
        skiff_call_free(calls[i]);
    }
    free(calls);
}

/* Reads every output of it (n of them, each size bytes of bytes) and frees it. */
static void drain(skiff_map *it, long n, size_t size)
{
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_map_output o = {0};
    long got = 0;
    int rc;
    while ((rc = skiff_map_next(it, &o, &err)) == SKIFF_OK) {
        size_t len = 0;
        if (!skiff_value_get_bytes(o.value, &len) || len != size) {
            fprintf(stderr, "bench_skiff: wrong result\n");
            exit(1);
        }
        skiff_map_output_clear(&o);
        got++;
    }
    if (rc != SKIFF_DONE)
        check(rc, &err, "map output");
    if (got != n) {
        fprintf(stderr, "bench_skiff: %ld outputs, expected %ld\n", got, n);
        exit(1);
    }
    skiff_map_free(it);
}

int main(int argc, char **argv)
{
    long n = bench_opt(argc, argv, "--n", 5000);
    long size = bench_opt(argc, argv, "--payload", 64);
    char *payload = malloc((size_t)size);
    bench_payload(payload, (size_t)size);

    skiff_client *c = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    check(skiff_client_connect(NULL, &c, &err), &err, "connect");
    skiff_function *fn = NULL;
    check(skiff_function_lookup(c, "bench", "echo", &fn, &err), &err, "lookup bench/echo");
    skiff_value *args = skiff_value_list_of(1, skiff_value_bytes(payload, (size_t)size));

    /* Warm up: a container started and answering. */
    for (int i = 0; i < 100; i++) {
        skiff_value *v = NULL;
        check(skiff_function_remote(fn, args, NULL, &v, &err), &err, "warm-up call");
        skiff_value_free(v);
    }

    /* (a) sync round trips */
    struct bench_samples s = {0};
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        skiff_value *v = NULL;
        double a = bench_now();
        int rc = skiff_function_remote(fn, args, NULL, &v, &err);
        bench_add(&s, (bench_now() - a) * 1e6);
        check(rc, &err, "remote");
        skiff_value_free(v);
    }
    double took = bench_now() - t0;
    bench_result("sync_p50_us", bench_percentile(&s, 50), "us");
    bench_result("sync_p99_us", bench_percentile(&s, 99), "us");
    bench_result("sync_per_s", (double)n / took, "calls/s");
    bench_free(&s);

    /* The N inputs of the map and spawn_map: one list of N payloads. */
    skiff_value *xs = skiff_value_list();
    for (long i = 0; i < n; i++)
        skiff_list_append(xs, skiff_value_bytes(payload, (size_t)size));
    const skiff_value *lists[] = {xs};

    /* Warm up the batch paths as the sync one was: a small spawn_map and a small map first (the
     * store's first pages, the pool's containers and their measured speed), untimed. */
    {
        skiff_value *few = skiff_value_list();
        for (int i = 0; i < 1000; i++)
            skiff_list_append(few, skiff_value_bytes(payload, (size_t)size));
        const skiff_value *warm[] = {few};
        skiff_call *wc = NULL;
        skiff_map *wm = NULL;
        check(skiff_function_spawn_map(fn, warm, 1, NULL, &wc, &err), &err, "warm-up spawn_map");
        check(skiff_call_iter(wc, NULL, &wm, &err), &err, "warm-up iterate");
        drain(wm, 1000, (size_t)size);
        skiff_call_free(wc);
        check(skiff_function_map(fn, warm, 1, NULL, &wm, &err), &err, "warm-up map");
        drain(wm, 1000, (size_t)size);
        skiff_value_free(few);
    }

    /* (b) durable spawns, pipelined */
    t0 = bench_now();
    skiff_call *batch = NULL;
    check(skiff_function_spawn_map(fn, lists, 1, NULL, &batch, &err), &err, "spawn_map");
    took = bench_now() - t0;
    bench_result("submit_per_s", (double)n / took, "inputs/s");
    skiff_map *it = NULL;
    check(skiff_call_iter(batch, NULL, &it, &err), &err, "iterate the spawn_map");
    drain(it, n, (size_t)size); /* untimed */
    skiff_call_free(batch);

    /* ... and one at a time, each waiting for its own commit */
    long n1 = n / 10 > 0 ? n / 10 : 1;
    t0 = bench_now();
    skiff_call **calls = spawn_all(fn, args, n1);
    took = bench_now() - t0;
    bench_result("spawn1_per_s", (double)n1 / took, "spawns/s");
    get_all(calls, n1, (size_t)size);

    /* (c) map, every result collected */
    t0 = bench_now();
    check(skiff_function_map(fn, lists, 1, NULL, &it, &err), &err, "map");
    drain(it, n, (size_t)size);
    took = bench_now() - t0;
    bench_result("map_per_s", (double)n / took, "results/s");

    /* (d) map throughput against the number of containers: the autoscaler pinned at k (min =
     * max = k, all warm) for k = 1, 2, 4, 8; then the deployed settings back. */
    if (bench_opt(argc, argv, "--scaling", 1)) {
        static const int ks[] = {1, 2, 4, 8};
        for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
            skiff_autoscaler as = SKIFF_AUTOSCALER_INIT;
            as.min_containers = ks[i];
            as.max_containers = ks[i];
            check(skiff_function_update_autoscaler(fn, &as, NULL, &err), &err, "autoscaler");
            skiff_function_stats st;
            for (int tries = 0; tries < 500; tries++) {
                check(skiff_function_get_current_stats(fn, &st, &err), &err, "stats");
                if (st.num_total_runners == ks[i])
                    break;
                struct timespec ts = {0, 10 * 1000000L};
                nanosleep(&ts, NULL);
            }
            t0 = bench_now();
            check(skiff_function_map(fn, lists, 1, NULL, &it, &err), &err, "map");
            drain(it, n, (size_t)size);
            took = bench_now() - t0;
            char key[32];
            snprintf(key, sizeof key, "map_per_s_%dc", ks[i]);
            bench_result(key, (double)n / took, "results/s");
        }
        skiff_autoscaler reset = SKIFF_AUTOSCALER_INIT;
        reset.min_containers = 0;
        reset.max_containers = 8;
        check(skiff_function_update_autoscaler(fn, &reset, NULL, &err), &err, "autoscaler");
    }
    skiff_value_free(xs);

    skiff_value_free(args);
    skiff_function_free(fn);
    skiff_client_close(c);
    free(payload);
    return 0;
}
