/*
 * bench_memory.c - server memory per queued input: queues N durable inputs (one spawn_map of
 * bench/hold, a function with one container that holds its input for a minute, so all but one
 * stay queued) and reads skiffd's resident memory before and after.
 *
 *     bench_memory --server-pid PID [--n N] [--payload BYTES]
 *
 * Prints RESULT queued_bytes_per_input (the growth of VmRSS divided by N). The inputs are
 * cancelled afterwards.
 */
#include <skiff/skiff.h>

#include "bench.h"

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
    skiff_value_free(src.pad);
    skiff_function_free(fn);
    skiff_client_close(c);
    free(payload);
    return 0;
}
