/*
 * itest_map.c - issue 3's maps through the C API against a real skiffd: ordered and unordered
 * maps checked value by value, return_exceptions, the first failure raised, kwargs for every
 * input, zipped sequences of unequal length, an empty input, starmap, for_each, a source
 * callback with a small window (never more outstanding than the window), spawn_map read by index
 * and by iteration after a server restart, and the CLI's `skiff map`.
 */
#include "itest.h"

static void itest_setup(void)
{
    itest_deploy("tests/integration/apps/probe.c");
}

/* A list of the ints from..to-1. */
static skiff_value *ints(int64_t from, int64_t to)
{
    skiff_value *l = skiff_value_list();
    for (int64_t i = from; i < to; i++)
        skiff_list_append(l, skiff_value_int(i));
    return l;
}

/* Runs a map of fn over lists[0..n) with opts and returns every output in delivery order:
 * values (ints, or -1 for a failure), indexes and failure codes. Returns the count. */
static size_t run_map(skiff_function *fn, const skiff_value *const *lists, size_t n,
                      const skiff_map_options *opts, int64_t *values, size_t *indexes, int *codes,
                      size_t cap)
{
    skiff_map *m = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_map(fn, lists, n, opts, &m, &err), &err);
    size_t k = 0;
    skiff_map_output o = {0};
    int rc;
    while ((rc = skiff_map_next(m, &o, &err)) == SKIFF_OK) {
        ASSERT_LT_INT(k, cap);
        indexes[k] = o.index;
        codes[k] = o.error.code;
        values[k] = o.value ? skiff_value_get_int(o.value) : -1;
        skiff_map_output_clear(&o);
        k++;
    }
    ASSERT_SKIFF(rc, SKIFF_DONE, &err);
    skiff_map_free(m);
    return k;
}

TEST(ordered_map_value_by_value)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "slower_first");
    skiff_value *xs = ints(0, 40);
    const skiff_value *lists[] = {xs};
    int64_t v[64];
    size_t idx[64];
    int code[64];
    size_t n = run_map(fn, lists, 1, NULL, v, idx, code, 64);
    ASSERT_EQ_INT(n, 40);
    for (size_t i = 0; i < n; i++) {
        ASSERT_EQ_INT(idx[i], i);
        ASSERT_EQ_INT(v[i], (int64_t)i);
        ASSERT_EQ_INT(code[i], SKIFF_OK);
    }
    skiff_value_free(xs);
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(unordered_map_in_completion_order)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "slower_first");
    skiff_value *xs = ints(0, 40);
    const skiff_value *lists[] = {xs};
    skiff_map_options opts = {.unordered = true};
    int64_t v[64];
    size_t idx[64];
    int code[64];
    size_t n = run_map(fn, lists, 1, &opts, v, idx, code, 64);
    ASSERT_EQ_INT(n, 40);
    int seen[40] = {0};
    bool reordered = false;
    for (size_t i = 0; i < n; i++) {
        ASSERT_LT_INT(idx[i], 40);
        seen[idx[i]]++;
        ASSERT_EQ_INT(v[i], (int64_t)idx[i]);
        reordered |= idx[i] != i;
    }
    for (int i = 0; i < 40; i++)
        ASSERT_EQ_INT(seen[i], 1);
    /* Input 0 sleeps 80 ms and the inputs from 8 on not at all: they come first. */
    ASSERT_TRUE(reordered);
    skiff_value_free(xs);
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(return_exceptions_in_place_and_first_failure_raised)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "not_three");
    skiff_value *xs = ints(1, 31);
    const skiff_value *lists[] = {xs};
    skiff_map_options opts = {.return_exceptions = true};
    int64_t v[64];
    size_t idx[64];
    int code[64];
    size_t n = run_map(fn, lists, 1, &opts, v, idx, code, 64);
    ASSERT_EQ_INT(n, 30);
    for (size_t i = 0; i < n; i++) {
        int64_t x = (int64_t)i + 1;
        ASSERT_EQ_INT(idx[i], i);
        if (x % 3 == 0) {
            ASSERT_EQ_INT(code[i], SKIFF_ERR_USER);
        } else {
            ASSERT_EQ_INT(code[i], SKIFF_OK);
            ASSERT_EQ_INT(v[i], x);
        }
    }
    /* Without return_exceptions the first failure in input order ends the map. */
    skiff_map *m = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_map(fn, lists, 1, NULL, &m, &err), &err);
    skiff_map_output o = {0};
    ASSERT_SKIFF_OK(skiff_map_next(m, &o, &err), &err);
    ASSERT_EQ_INT(skiff_value_get_int(o.value), 1);
    skiff_map_output_clear(&o);
    ASSERT_SKIFF_OK(skiff_map_next(m, &o, &err), &err);
    skiff_map_output_clear(&o);
    ASSERT_SKIFF(skiff_map_next(m, &o, &err), SKIFF_ERR_USER, &err);
    ASSERT_EQ_STR(err.type, "ValueError");
    ASSERT_STR_CONTAINS(err.message, "3 is a multiple of 3");
    ASSERT_NOT_NULL(err.traceback);
    skiff_error_clear(&err);
    skiff_map_free(m);
    skiff_value_free(xs);
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(kwargs_for_every_input_and_zip_shortest)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "add");
    skiff_value *xs = ints(0, 10);
    skiff_value *kw = skiff_value_map();
    skiff_map_set(kw, "y", skiff_value_int(100));
    const skiff_value *one[] = {xs};
    skiff_map_options opts = {.kwargs = kw};
    int64_t v[64];
    size_t idx[64];
    int code[64];
    size_t n = run_map(fn, one, 1, &opts, v, idx, code, 64);
    ASSERT_EQ_INT(n, 10);
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ_INT(v[i], (int64_t)i + 100);
    /* Two sequences, zipped: the shorter (7) wins; add(x, y) positionally. */
    skiff_value *ys = ints(1000, 1007);
    const skiff_value *two[] = {xs, ys};
    n = run_map(fn, two, 2, NULL, v, idx, code, 64);
    ASSERT_EQ_INT(n, 7);
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ_INT(v[i], (int64_t)i + 1000 + (int64_t)i);
    skiff_value_free(ys);
    skiff_value_free(kw);
    skiff_value_free(xs);
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(empty_input_returns_at_once)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "echo");
    skiff_value *none = skiff_value_list();
    const skiff_value *lists[] = {none};
    int64_t v[1];
    size_t idx[1];
    int code[1];
    double t0 = unit_now();
    ASSERT_EQ_INT(run_map(fn, lists, 1, NULL, v, idx, code, 1), 0);
    ASSERT_LT_INT((unit_now() - t0) * 1000, 500);
    skiff_value_free(none);
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(starmap_and_for_each)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "add");
    skiff_value *tuples = skiff_value_list();
    for (int i = 0; i < 20; i++)
        skiff_list_append(tuples, skiff_value_list_of(2, skiff_value_int(i), skiff_value_int(i)));
    skiff_map *m = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_starmap(fn, tuples, NULL, &m, &err), &err);
    skiff_value *res = NULL;
    ASSERT_SKIFF_OK(skiff_map_collect(m, &res, &err), &err);
    ASSERT_EQ_INT(skiff_list_len(res), 20);
    for (size_t i = 0; i < 20; i++)
        ASSERT_EQ_INT(skiff_value_get_int(skiff_list_get(res, i)), 2 * (int64_t)i);
    skiff_value_free(res);
    skiff_map_free(m);
    skiff_value_free(tuples);
    skiff_function_free(fn);
    /* for_each: failures raised, or ignored when asked. */
    fn = itest_lookup(c, "itest-probe", "not_three");
    skiff_value *xs = ints(1, 10);
    const skiff_value *lists[] = {xs};
    ASSERT_SKIFF(skiff_function_for_each(fn, lists, 1, NULL, false, &err), SKIFF_ERR_USER, &err);
    skiff_error_clear(&err);
    ASSERT_SKIFF_OK(skiff_function_for_each(fn, lists, 1, NULL, true, &err), &err);
    skiff_value_free(xs);
    skiff_function_free(fn);
    skiff_client_close(c);
}

struct counting_source {
    int64_t next, end;
    skiff_map *m; /* to read the stats from inside the source */
    uint64_t max_outstanding_seen;
};

static int count_next(void *ctx, skiff_value **args, skiff_error *err)
{
    (void)err;
    struct counting_source *s = ctx;
    if (s->m) {
        skiff_map_stats st;
        skiff_map_get_stats(s->m, &st);
        if (st.outstanding > s->max_outstanding_seen)
            s->max_outstanding_seen = st.outstanding;
    }
    if (s->next >= s->end)
        return SKIFF_OK; /* *args stays NULL: the end */
    *args = skiff_value_list_of(1, skiff_value_int(s->next++));
    return SKIFF_OK;
}

TEST(source_callback_with_a_small_window)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "echo");
    struct counting_source src = {0, 5000, NULL, 0};
    skiff_map_source source = {count_next, &src};
    skiff_map_options opts = {.max_outstanding = 16};
    skiff_map *m = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_map_source(fn, &source, &opts, &m, &err), &err);
    src.m = m;
    skiff_map_output o = {0};
    int64_t expect = 0;
    int rc;
    while ((rc = skiff_map_next(m, &o, &err)) == SKIFF_OK) {
        ASSERT_EQ_INT(skiff_value_get_int(o.value), expect);
        expect++;
        skiff_map_stats st;
        skiff_map_get_stats(m, &st);
        ASSERT_LE_INT(st.outstanding, 16);
        skiff_map_output_clear(&o);
    }
    ASSERT_SKIFF(rc, SKIFF_DONE, &err);
    ASSERT_EQ_INT(expect, 5000);
    ASSERT_LE_INT(src.max_outstanding_seen, 16);
    skiff_map_free(m);
    skiff_function_free(fn);
    skiff_client_close(c);
}

static struct itest_server own;

TEST(spawn_map_by_index_and_iteration_after_restart)
{
    itest_server_start(&own, NULL);
    itest_deploy("tests/integration/apps/probe.c");
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "add");
    skiff_value *xs = ints(0, 200);
    const skiff_value *lists[] = {xs};
    skiff_value *kw = skiff_value_map();
    skiff_map_set(kw, "y", skiff_value_int(7));
    skiff_call *call = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_spawn_map(fn, lists, 1, kw, &call, &err), &err);
    char id[64];
    snprintf(id, sizeof id, "%s", skiff_call_id(call));
    skiff_call_free(call);
    skiff_function_free(fn);
    skiff_client_close(c);
    itest_server_kill9(&own);
    itest_server_start(&own, NULL);
    c = itest_connect();
    ASSERT_SKIFF_OK(skiff_call_from_id(c, id, &call, &err), &err);
    ASSERT_EQ_INT(skiff_call_get_kind(call), SKIFF_CALL_SPAWN_MAP);
    ASSERT_EQ_INT(skiff_call_num_inputs(call), 200);
    for (size_t i = 0; i < 200; i += 37) {
        skiff_value *v = NULL;
        ASSERT_SKIFF_OK(skiff_call_get_index(call, i, 60, &v, &err), &err);
        ASSERT_EQ_INT(skiff_value_get_int(v), (int64_t)i + 7);
        skiff_value_free(v);
    }
    skiff_value *v = NULL;
    ASSERT_SKIFF(skiff_call_get_index(call, 200, 1, &v, &err), SKIFF_ERR_NOT_FOUND, &err);
    skiff_error_clear(&err);
    skiff_map *m = NULL;
    ASSERT_SKIFF_OK(skiff_call_iter(call, NULL, &m, &err), &err);
    skiff_value *all = NULL;
    ASSERT_SKIFF_OK(skiff_map_collect(m, &all, &err), &err);
    ASSERT_EQ_INT(skiff_list_len(all), 200);
    for (size_t i = 0; i < 200; i++)
        ASSERT_EQ_INT(skiff_value_get_int(skiff_list_get(all, i)), (int64_t)i + 7);
    skiff_value_free(all);
    skiff_map_free(m);
    skiff_call_free(call);
    skiff_value_free(kw);
    skiff_value_free(xs);
    skiff_client_close(c);
    itest_server_stop(&own);
}

TEST(cli_map_json_lines)
{
    struct itest_run r = itest_cli("[1]\n[2]\n[3, 4]\n", "map", "itest-probe", "add", NULL);
    ASSERT_EQ_INT(r.status, 0);
    ASSERT_EQ_STR(r.out, "1\n2\n7\n");
    itest_run_free(&r);
    r = itest_cli("[3]\n[4]\n", "map", "itest-probe", "not_three", "--return-exceptions", NULL);
    ASSERT_EQ_INT(r.status, 0);
    ASSERT_STR_CONTAINS(r.out, "ValueError");
    ASSERT_STR_CONTAINS(r.out, "\n4\n");
    itest_run_free(&r);
    r = itest_cli("[3]\n", "map", "itest-probe", "not_three", NULL);
    ASSERT_EQ_INT(r.status, 1);
    ASSERT_STR_CONTAINS(r.err, "ValueError");
    itest_run_free(&r);
    r = itest_cli("not json\n", "map", "itest-probe", "add", NULL);
    ASSERT_EQ_INT(r.status, 2);
    itest_run_free(&r);
}

TEST(backlog_spreads_over_containers_up_to_the_maximum)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "sleep_ms"); /* max_containers 4 */
    skiff_value *xs = skiff_value_list();
    for (int i = 0; i < 24; i++)
        skiff_list_append(xs, skiff_value_int(150));
    const skiff_value *lists[] = {xs};
    int64_t pids[32];
    size_t idx[32];
    int code[32];
    size_t n = run_map(fn, lists, 1, NULL, pids, idx, code, 32);
    ASSERT_EQ_INT(n, 24);
    int64_t distinct[32];
    size_t nd = 0;
    for (size_t i = 0; i < n; i++) {
        ASSERT_EQ_INT(code[i], SKIFF_OK);
        bool seen = false;
        for (size_t k = 0; k < nd; k++)
            seen |= distinct[k] == pids[i];
        if (!seen)
            distinct[nd++] = pids[i];
    }
    /* The backlog started more than one container, and never more than the maximum. */
    ASSERT_GE_INT(nd, 2);
    ASSERT_LE_INT(nd, 4);
    skiff_value_free(xs);
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(cancelled_spawn_map)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "serial"); /* one container */
    skiff_value *xs = skiff_value_list();
    for (int i = 0; i < 50; i++)
        skiff_list_append(xs, skiff_value_int(100));
    const skiff_value *lists[] = {xs};
    skiff_call *call = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_spawn_map(fn, lists, 1, NULL, &call, &err), &err);
    ASSERT_SKIFF_OK(skiff_call_cancel(call, false, &err), &err);
    /* Every input that had not finished is cancelled, and reads so, by index and in bulk. */
    skiff_value *v = NULL;
    ASSERT_SKIFF(skiff_call_get_index(call, 49, 10, &v, &err), SKIFF_ERR_CANCELLED, &err);
    skiff_error_clear(&err);
    skiff_map_options opts = {.return_exceptions = true};
    skiff_map *m = NULL;
    ASSERT_SKIFF_OK(skiff_call_iter(call, &opts, &m, &err), &err);
    skiff_map_output o = {0};
    int n = 0, cancelled = 0, rc;
    while ((rc = skiff_map_next(m, &o, &err)) == SKIFF_OK) {
        n++;
        cancelled += o.error.code == SKIFF_ERR_CANCELLED;
        skiff_map_output_clear(&o);
    }
    /* Every input has its outcome: the few that ran before the cancel, CancelledError for the
     * others (one container, 100 ms each). */
    ASSERT_SKIFF(rc, SKIFF_DONE, &err);
    ASSERT_EQ_INT(n, 50);
    ASSERT_GE_INT(cancelled, 45);
    skiff_map_free(m);
    skiff_call_free(call);
    /* The function keeps working. */
    char *json = itest_call_json(fn, "[0]", NULL);
    free(json);
    skiff_value_free(xs);
    skiff_function_free(fn);
    skiff_client_close(c);
}
