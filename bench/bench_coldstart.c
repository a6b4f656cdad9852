/*
 * bench_coldstart.c - cold start: from a call that needs a new container to its first result.
 *
 *     bench_coldstart [--n N] [--label NAME] [--gap-ms MS] [--function NAME]
 *         (server and token: $SKIFF_SERVER, ~/.skiff.toml; app bench/apps/coldstart.c deployed)
 *
 * Calls bench-coldstart/first (or --function NAME: Snapped.start, Plain.start, whose classes
 * build a table for 50 ms on entering, in a snapshot template or in every container) N times
 * (default 200), one at a time, MS milliseconds apart (default 30, untimed): the function's
 * containers stop after 1 ms idle, so each call starts a container, which loads the app, runs the
 * input and returns its own container id. A call that came back from the previous call's container
 * (it had not stopped yet) was warm: it is counted and left out. Measured from the client, so each
 * figure includes one request round trip and the dispatch of the input, i.e. what a caller waits
 * for. Prints p50, p90, p99 and the minimum, and `RESULT coldstart_<label>_p50_us` (and _p99_us)
 * lines for bench/run.sh.
 */
#include <skiff/skiff.h>

#include "bench.h"

static void check(int rc, const skiff_error *err, const char *what)
{
    if (rc != SKIFF_OK) {
        fprintf(stderr, "bench_coldstart: %s: %s: %s\n", what, err->type ? err->type : "?",
                err->message ? err->message : "?");
        exit(1);
    }
}

static const char *opt_str(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], name))
            return argv[i + 1];
    return def;
}

/* One call; its latency in microseconds, and the id of the container that ran it in id. */
static double one_call(skiff_function *fn, char *id, size_t size)
{
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *v = NULL;
    double t0 = bench_now();
    int rc = skiff_function_remote(fn, NULL, NULL, &v, &err);
    double us = (bench_now() - t0) * 1e6;
    check(rc, &err, "remote");
    const char *s = skiff_value_get_string(v, NULL);
    snprintf(id, size, "%s", s ? s : "");
    skiff_value_free(v);
    return us;
}

int main(int argc, char **argv)
{
    long n = bench_opt(argc, argv, "--n", 200);
    long gap_ms = bench_opt(argc, argv, "--gap-ms", 30);
    const char *label = opt_str(argc, argv, "--label", "process");
    const char *name = opt_str(argc, argv, "--function", "first");
    skiff_client *c = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    check(skiff_client_connect(NULL, &c, &err), &err, "connect");
    skiff_function *fn = NULL;
    check(skiff_function_lookup(c, "bench-coldstart", name, &fn, &err), &err,
          "lookup of the bench-coldstart function");
    struct timespec gap = {gap_ms / 1000, (gap_ms % 1000) * 1000000L};
    char prev[64] = "", id[64];
    /* Warm-up: the page cache holds the worker, libskiff and the app. */
    for (int i = 0; i < 5; i++) {
        one_call(fn, prev, sizeof prev);
        nanosleep(&gap, NULL);
    }
    struct bench_samples s = {0};
    long warm = 0;
    for (long i = 0; i < n; i++) {
        nanosleep(&gap, NULL);
        double us = one_call(fn, id, sizeof id);
        if (!strcmp(id, prev))
            warm++;
        else
            bench_add(&s, us);
        snprintf(prev, sizeof prev, "%s", id);
    }
    double p50 = bench_percentile(&s, 50), p90 = bench_percentile(&s, 90);
    double p99 = bench_percentile(&s, 99), min = s.n ? s.us[0] : 0;
    printf("cold start (%s containers): %zu cold calls (%ld warm left out): p50 %.0f us, p90 %.0f "
           "us, p99 %.0f us, min %.0f us\n",
           label, s.n, warm, p50, p90, p99, min);
    char key[96];
    snprintf(key, sizeof key, "coldstart_%s_p50_us", label);
    bench_result(key, p50, "us");
    snprintf(key, sizeof key, "coldstart_%s_p99_us", label);
    bench_result(key, p99, "us");
    bench_free(&s);
    skiff_function_free(fn);
    skiff_client_close(c);
    return 0;
}
