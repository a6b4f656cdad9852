/*
 * bench_memory.c - server memory per queued input: queues N durable inputs (one spawn_map of
 * bench/hold, a function with one container that holds its input for a minute, so all but one
 * stay queued) and reads skiffd's resident memory before and after.
 *
 *     bench_memory --server-pid PID [--n N] [--payload BYTES]
 *
 * Prints RESULT queued_bytes_per_input (the growth of VmRSS divided by N). The inputs are
 * cancelled afterwards.
 *
 * With --big M (default 0: skipped), then maps bench/echo over M inputs from a source callback
 * (the 10-million-input run of issue 3) and prints the client's and the server's resident memory
 * before and after and at their highest, and the rate: a map's memory stays flat whatever M is.
 */
#include <skiff/skiff.h>

#include "bench.h"

#include <unistd.h>

static void check(int rc, const skiff_error *err, const char *what)
{
    if (rc != SKIFF_OK) {
        fprintf(stderr, "bench_memory: %s: %s: %s\n", what, err->type ? err->type : "?",
                err->message ? err->message : "?");
        exit(1);
    }
}

/* Resident memory of pid in bytes. */
static double rss(long pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    if (kib < 0) {
        fprintf(stderr, "bench_memory: cannot read %s\n", path);
        exit(1);
    }
    return (double)kib * 1024;
}

struct source {
    long next, n;
    skiff_value *pad;
};

static int next_input(void *ctx, skiff_value **args, skiff_error *err)
{
    (void)err;
    struct source *s = ctx;
    if (s->next < s->n) {
        s->next++;
        *args = skiff_value_list_of(2, skiff_value_int(60000), skiff_value_copy(s->pad));
    }
    return SKIFF_OK;
}

struct counter {
    long next, n;
};

static int next_small(void *ctx, skiff_value **args, skiff_error *err)
{
    (void)err;
    struct counter *c = ctx;
    if (c->next < c->n)
        *args = skiff_value_list_of(1, skiff_value_int(c->next++));
    return SKIFF_OK;
}

/* The big map: M inputs through a window, memory sampled along the way. */
static void big_map(skiff_client *client, long pid, long m)
{
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_function *echo = NULL;
    check(skiff_function_lookup(client, "bench", "echo", &echo, &err), &err, "lookup bench/echo");
    struct counter src = {0, m};
    skiff_map_source source = {next_small, &src};
    skiff_map *it = NULL;
    double c0 = rss(getpid()), s0 = rss(pid), cmax = c0, smax = s0;
    double t0 = bench_now();
    check(skiff_function_map_source(echo, &source, NULL, &it, &err), &err, "map");
    skiff_map_output o = {0};
    long got = 0;
    int rc;
    while ((rc = skiff_map_next(it, &o, &err)) == SKIFF_OK) {
        if (skiff_value_get_int(o.value) != got) {
            fprintf(stderr, "bench_memory: output %ld is wrong\n", got);
            exit(1);
        }
        skiff_map_output_clear(&o);
        if (++got % 500000 == 0) {
            double c = rss(getpid()), s = rss(pid);
            cmax = c > cmax ? c : cmax;
            smax = s > smax ? s : smax;
        }
    }
    if (rc != SKIFF_DONE)
        check(rc, &err, "map output");
    double took = bench_now() - t0;
    skiff_map_free(it);
    skiff_function_free(echo);
    printf("map of %ld inputs in %.1f s (%.0f results/s): client RSS %.1f MiB, at most %.1f; "
           "server RSS %.1f MiB, at most %.1f\n",
           got, took, (double)got / took, c0 / 1048576, cmax / 1048576, s0 / 1048576,
           smax / 1048576);
    bench_result("big_map_per_s", (double)got / took, "results/s");
    bench_result("big_map_client_growth_mib", (cmax - c0) / 1048576, "MiB");
    bench_result("big_map_server_growth_mib", (smax - s0) / 1048576, "MiB");
}

int main(int argc, char **argv)
{
    long pid = bench_opt(argc, argv, "--server-pid", 0);
    long n = bench_opt(argc, argv, "--n", 1000000);
    long size = bench_opt(argc, argv, "--payload", 64);
    if (pid <= 0) {
        fprintf(stderr, "usage: bench_memory --server-pid PID [--n N] [--payload BYTES]\n");
        return 2;
    }
    char *payload = malloc((size_t)size);
    bench_payload(payload, (size_t)size);
    skiff_client *c = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    check(skiff_client_connect(NULL, &c, &err), &err, "connect");
    skiff_function *fn = NULL;
    check(skiff_function_lookup(c, "bench", "hold", &fn, &err), &err, "lookup bench/hold");

    double before = rss(pid);
    struct source src = {0, n, skiff_value_bytes(payload, (size_t)size)};
    skiff_map_source source = {next_input, &src};
    skiff_call *call = NULL;
    double t0 = bench_now();
    check(skiff_function_spawn_map_source(fn, &source, NULL, &call, &err), &err, "spawn_map");
    double took = bench_now() - t0;
    double after = rss(pid);
    skiff_function_stats st;
    check(skiff_function_get_current_stats(fn, &st, &err), &err, "stats");
    printf("queued %ld inputs in %.2f s; backlog %lld; server RSS %.1f -> %.1f MiB\n", n, took,
           (long long)st.backlog, before / 1048576, after / 1048576);
    bench_result("queued_bytes_per_input", (after - before) / (double)n, "bytes");
    check(skiff_call_cancel(call, false, &err), &err, "cancel");
    skiff_call_free(call);
    long big = bench_opt(argc, argv, "--big", 0);
    if (big > 0)
        big_map(c, pid, big);
    skiff_value_free(src.pad);
    skiff_function_free(fn);
    skiff_client_close(c);
    free(payload);
    return 0;
}
