/*
 * itest_map_million.c - a map over 1,000,000 inputs from a source callback through a real
 * skiffd: every value comes back in order, and neither the client nor the server grows with the
 * number of inputs (the window bounds both). The 10-million-input run and the speed figures are
 * the benchmark's (make bench).
 */
/* slow */
#include "itest.h"

static void itest_setup(void)
{
    itest_deploy("tests/integration/apps/probe.c");
}

/* Resident memory of process pid in KiB (0: unknown). */
static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

struct source {
    int64_t next, end;
};

static int next_input(void *ctx, skiff_value **args, skiff_error *err)
{
    (void)err;
    struct source *s = ctx;
    if (s->next < s->end)
        *args = skiff_value_list_of(2, skiff_value_int(s->next++), skiff_value_int(1));
    return SKIFF_OK;
}

TEST(a_million_inputs_in_flat_memory)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "add");
    const int64_t n = 1000000;
    struct source src = {0, n};
    skiff_map_source source = {next_input, &src};
    skiff_map *m = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_map_source(fn, &source, NULL, &m, &err), &err);
    skiff_map_output o = {0};
    int64_t expect = 0;
    long client0 = 0, server0 = 0, client_max = 0, server_max = 0;
    int rc;
    while ((rc = skiff_map_next(m, &o, &err)) == SKIFF_OK) {
        if (skiff_value_get_int(o.value) != expect + 1)
            FAIL("output %lld is %lld", (long long)expect, (long long)skiff_value_get_int(o.value));
        skiff_map_output_clear(&o);
        expect++;
        if (expect % 50000 == 0) {
            long cl = rss_kib(getpid()), sv = rss_kib(itest_server.pid);
            if (expect == 50000) {
                client0 = cl;
                server0 = sv;
            }
            client_max = cl > client_max ? cl : client_max;
            server_max = sv > server_max ? sv : server_max;
        }
    }
    ASSERT_SKIFF(rc, SKIFF_DONE, &err);
    ASSERT_EQ_INT(expect, n);
    printf("rss after 50k inputs / at most: client %ld / %ld KiB, server %ld / %ld KiB\n", client0,
           client_max, server0, server_max);
    /* Flat: what 50,000 inputs needed is all a million need (with room for allocator noise). */
    ASSERT_LT_INT(client_max - client0, 16 * 1024);
    ASSERT_LT_INT(server_max - server0, 16 * 1024);
    skiff_map_free(m);
    skiff_function_free(fn);
    skiff_client_close(c);
}
