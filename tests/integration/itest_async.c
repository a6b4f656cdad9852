/*
 * itest_async.c - the asynchronous C API against a real skiffd: examples/async_fanout runs and
 * gathers 100 results (and 1,000, with the time of the same calls made one by one printed for
 * comparison); a function that fans out asynchronously from inside its container
 * (tests/integration/apps/fanout.c) returns the right sum and the call graph links all its
 * children under its one input, for remote_async and for spawn_async + gather_async; a libuv
 * loop drives lookups, remote calls, spawn + get, cancel, stats and a user failure, each
 * callback run once, on the loop's thread.
 */
#include <uv.h>

#include "itest.h"

static void itest_setup(void)
{
    itest_deploy("examples/square.c");
    itest_deploy("tests/integration/apps/fanout.c");
    itest_deploy("tests/integration/apps/probe.c");
}

/* Runs build/examples/async_fanout with its arguments and returns its output line. */
static struct itest_run run_fanout(const char *n, const char *extra)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/examples/async_fanout", itest_build());
    const char *argv[] = {path, n, extra, NULL};
    return itest_exec(argv, NULL, 120);
}

TEST(example_gathers_100_concurrent_calls)
{
    struct itest_run r = run_fanout("100", NULL);
    if (r.status != 0)
        FAIL("async_fanout: exit %d: %s", r.status, r.err);
    /* sum of i*i for i < 100 */
    ASSERT_STR_CONTAINS(r.out, "\"calls\": 100, \"sum\": 328350");
    itest_run_free(&r);
}

TEST(example_fans_out_1000_faster_than_one_by_one)
{
    struct itest_run r = run_fanout("1000", "--compare");
    if (r.status != 0)
        FAIL("async_fanout: exit %d: %s", r.status, r.err);
    ASSERT_STR_CONTAINS(r.out, "\"sum\": 332833500");
    skiff_value *v = itest_json(r.out);
    double a = skiff_value_get_double(skiff_map_get(v, "async_ms"));
    double s = skiff_value_get_double(skiff_map_get(v, "sequential_ms"));
    printf("1000 calls: async fan-out %.1f ms, one by one %.1f ms (%.1fx)\n", a, s,
           a > 0 ? s / a : 0);
    skiff_value_free(v);
    itest_run_free(&r);
}

/* Checks a finished call of fanout's fan* made n children of square under its one input. */
static void expect_children(skiff_call *call, size_t n)
{
    skiff_input_info *roots = NULL;
    size_t nroots = 0;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_call_get_call_graph(call, &roots, &nroots, &err), &err);
    ASSERT_EQ_INT(nroots, 1);
    ASSERT_EQ_INT(roots[0].status, SKIFF_INPUT_SUCCESS);
    ASSERT_EQ_INT(roots[0].nchildren, n);
    for (size_t i = 0; i < n; i++) {
        ASSERT_EQ_STR(roots[0].children[i].function, "my-shared-app.square");
        ASSERT_EQ_INT(roots[0].children[i].status, SKIFF_INPUT_SUCCESS);
        for (size_t k = 0; k < i; k++)
            ASSERT_NE_STR(roots[0].children[i].call_id, roots[0].children[k].call_id);
    }
    skiff_call_graph_free(roots, nroots);
}

static void fan_test(const char *function, int64_t n)
{
    skiff_client *c = itest_connect();
    skiff_function *fan = itest_lookup(c, "fanout", function);
    char args[32];
    snprintf(args, sizeof args, "[%lld]", (long long)n);
    skiff_call *call = itest_spawn_json(fan, args, NULL);
    skiff_value *v = itest_get(call, 60);
    ASSERT_EQ_INT(skiff_value_get_int(v), (n - 1) * n * (2 * n - 1) / 6);
    skiff_value_free(v);
    expect_children(call, (size_t)n);
    skiff_call_free(call);
    skiff_function_free(fan);
    skiff_client_close(c);
}

TEST(function_fans_out_remote_async_linked_in_call_graph)
{
    fan_test("fan", 40);
}

TEST(function_fans_out_spawn_and_gather_async_linked_in_call_graph)
{
    fan_test("fan_spawn", 25);
}

TEST(function_fan_out_failure_is_raised)
{
    skiff_client *c = itest_connect();
    skiff_function *fan = itest_lookup(c, "fanout", "fan");
    skiff_error e = itest_call_fails(fan, "[0]", NULL, SKIFF_ERR_USER);
    ASSERT_EQ_STR(e.type, "ValueError");
    skiff_error_clear(&e);
    skiff_function_free(fan);
    skiff_client_close(c);
}

/* --- a libuv loop driving the API ------------------------------------------------------------- */

struct uvtest {
    skiff_client *c;
    pthread_t thread;   /* the loop's thread: every callback must run on it */
    skiff_function *fn; /* from lookup_async */
    int64_t sum;        /* of remote_async results */
    int results, lookups, not_found, user_errors, spawned, got, cancelled, stats;
    skiff_call *slow; /* a spawned call to cancel */
    int wrong_thread;
};

static void check_thread(struct uvtest *t)
{
    if (!pthread_equal(pthread_self(), t->thread))
        t->wrong_thread++;
}

/* Ends the loop once every operation has completed (called last in every callback, after any
 * operation it starts). */
static void maybe_done(struct uvtest *t)
{
    if (skiff_client_pending(t->c) == 0)
        skiff_client_uv_detach(t->c);
}

static void on_square(void *ud, int rc, skiff_value *result, const skiff_error *err)
{
    struct uvtest *t = ud;
    check_thread(t);
    if (rc != SKIFF_OK)
        FAIL("remote_async: %s: %s", err->type, err->message);
    t->sum += skiff_value_get_int(result);
    t->results++;
    skiff_value_free(result);
    maybe_done(t);
}

static void on_user_error(void *ud, int rc, skiff_value *result, const skiff_error *err)
{
    struct uvtest *t = ud;
    check_thread(t);
    ASSERT_NULL(result);
    ASSERT_EQ_INT(rc, SKIFF_ERR_USER);
    ASSERT_EQ_STR(err->type, "TypeError");
    t->user_errors++;
    maybe_done(t);
}

static void on_missing(void *ud, int rc, skiff_function *fn, const skiff_error *err)
{
    struct uvtest *t = ud;
    check_thread(t);
    ASSERT_NULL(fn);
    ASSERT_EQ_INT(rc, SKIFF_ERR_NOT_FOUND);
    ASSERT_STR_CONTAINS(err->message, "nope");
    t->not_found++;
    maybe_done(t);
}

static void on_stats(void *ud, int rc, const skiff_function_stats *st, const skiff_error *err)
{
    struct uvtest *t = ud;
    check_thread(t);
    if (rc != SKIFF_OK)
        FAIL("stats_async: %s: %s", err->type, err->message);
    ASSERT_GE_INT(st->num_total_runners, 0);
    t->stats++;
    maybe_done(t);
}

static void on_cancel_get(void *ud, int rc, skiff_value *result, const skiff_error *err)
{
    struct uvtest *t = ud;
    check_thread(t);
    (void)err;
    ASSERT_NULL(result);
    ASSERT_EQ_INT(rc, SKIFF_ERR_CANCELLED);
    t->cancelled++;
    maybe_done(t);
}

static void on_cancelled(void *ud, int rc, const skiff_error *err)
{
    struct uvtest *t = ud;
    check_thread(t);
    if (rc != SKIFF_OK)
        FAIL("cancel_async: %s: %s", err->type, err->message);
    skiff_error e = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_call_get_async(t->slow, SKIFF_WAIT_FOREVER, on_cancel_get, t, &e), &e);
    maybe_done(t);
}

static void on_slow(void *ud, int rc, skiff_call *call, const skiff_error *err)
{
    struct uvtest *t = ud;
    check_thread(t);
    if (rc != SKIFF_OK)
        FAIL("spawn_async: %s: %s", err->type, err->message);
    t->slow = call;
    skiff_error e = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_call_cancel_async(call, false, on_cancelled, t, &e), &e);
    maybe_done(t);
}

static void on_get(void *ud, int rc, skiff_value *result, const skiff_error *err)
{
    struct uvtest *t = ud;
    check_thread(t);
    if (rc != SKIFF_OK)
        FAIL("get_async: %s: %s", err->type, err->message);
    ASSERT_EQ_INT(skiff_value_get_int(result), 49);
    skiff_value_free(result);
    t->got++;
    maybe_done(t);
}

static void on_spawned(void *ud, int rc, skiff_call *call, const skiff_error *err)
{
    struct uvtest *t = ud;
    check_thread(t);
    if (rc != SKIFF_OK)
        FAIL("spawn_async: %s: %s", err->type, err->message);
    t->spawned++;
    skiff_error e = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_call_get_async(call, 30, on_get, t, &e), &e);
    skiff_call_free(call); /* GET's frame is built already: the handle is not needed after */
    maybe_done(t);
}

static void on_lookup(void *ud, int rc, skiff_function *fn, const skiff_error *err)
{
    struct uvtest *t = ud;
    check_thread(t);
    if (rc != SKIFF_OK)
        FAIL("lookup_async: %s: %s", err->type, err->message);
    ASSERT_EQ_INT(skiff_function_get_kind(fn), SKIFF_FUNCTION_PLAIN);
    t->fn = fn;
    t->lookups++;
    skiff_error e = SKIFF_ERROR_INIT;
    for (int64_t i = 0; i < 20; i++) {
        skiff_value *args = skiff_value_list_of(1, skiff_value_int(i));
        ASSERT_SKIFF_OK(skiff_function_remote_async(fn, args, NULL, on_square, t, &e), &e);
        skiff_value_free(args);
    }
    skiff_value *bad = itest_json("[\"x\"]");
    ASSERT_SKIFF_OK(skiff_function_remote_async(fn, bad, NULL, on_user_error, t, &e), &e);
    skiff_value_free(bad);
    skiff_value *seven = itest_json("[7]");
    ASSERT_SKIFF_OK(skiff_function_spawn_async(fn, seven, NULL, on_spawned, t, &e), &e);
    skiff_value_free(seven);
    ASSERT_SKIFF_OK(skiff_function_get_current_stats_async(fn, on_stats, t, &e), &e);
    maybe_done(t);
}

TEST(libuv_loop_drives_lookups_calls_spawn_get_cancel_and_stats)
{
    struct uvtest t;
    memset(&t, 0, sizeof t);
    t.c = itest_connect();
    t.thread = pthread_self();
    skiff_function *sleeper = itest_lookup(t.c, "itest-probe", "sleep_ms");
    uv_loop_t loop;
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    skiff_error e = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_client_uv_attach(t.c, &loop, &e), &e);
    ASSERT_SKIFF(skiff_client_uv_attach(t.c, &loop, &e), SKIFF_ERR_INVALID, &e);
    ASSERT_SKIFF_OK(skiff_function_lookup_async(t.c, "my-shared-app", "square", on_lookup, &t, &e),
                    &e);
    ASSERT_SKIFF_OK(skiff_function_lookup_async(t.c, "my-shared-app", "nope", on_missing, &t, &e),
                    &e);
    /* A call that runs long enough to be cancelled while it runs or waits. */
    skiff_value *big = itest_json("[20000]");
    ASSERT_SKIFF_OK(skiff_function_spawn_async(sleeper, big, NULL, on_slow, &t, &e), &e);
    skiff_value_free(big);
    ASSERT_EQ_INT(t.lookups, 0); /* nothing runs before the loop does */
    double t0 = unit_now();
    ASSERT_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    printf("libuv loop finished in %.1f ms\n", (unit_now() - t0) * 1e3);
    ASSERT_EQ_INT(t.lookups, 1);
    ASSERT_EQ_INT(t.not_found, 1);
    ASSERT_EQ_INT(t.results, 20);
    ASSERT_EQ_INT(t.sum, 2470); /* sum of i*i for i < 20 */
    ASSERT_EQ_INT(t.user_errors, 1);
    ASSERT_EQ_INT(t.spawned, 1);
    ASSERT_EQ_INT(t.got, 1);
    ASSERT_EQ_INT(t.cancelled, 1);
    ASSERT_EQ_INT(t.stats, 1);
    ASSERT_EQ_INT(t.wrong_thread, 0);
    ASSERT_EQ_INT(skiff_client_pending(t.c), 0);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
    skiff_error_clear(&e);
    skiff_call_free(t.slow);
    skiff_function_free(t.fn);
    skiff_function_free(sleeper);
    skiff_client_close(t.c);
}

/* --- a map driven by process ----------------------------------------------------------------- */

struct mapped {
    size_t next; /* the index the next output must have */
    int64_t sum;
    int done, rc;
};

static void on_output(void *ud, skiff_map_output *out)
{
    struct mapped *m = ud;
    ASSERT_EQ_INT(out->index, m->next);
    ASSERT_EQ_INT(out->error.code, SKIFF_OK);
    m->next++;
    m->sum += skiff_value_get_int(out->value);
    skiff_map_output_clear(out);
}

static void on_map_done(void *ud, int rc, const skiff_error *err)
{
    struct mapped *m = ud;
    if (rc != SKIFF_OK)
        FAIL("map_async: %s: %s", err->type, err->message);
    m->done++;
    m->rc = rc;
}

TEST(map_async_delivers_every_output_in_order)
{
    skiff_client *c = itest_connect();
    skiff_function *square = itest_lookup(c, "my-shared-app", "square");
    skiff_value *xs = skiff_value_list();
    for (int64_t i = 0; i < 2000; i++)
        skiff_list_append(xs, skiff_value_int(i));
    const skiff_value *lists[] = {xs};
    skiff_map_options o = {.max_outstanding = 100};
    struct mapped m = {0, 0, 0, -1};
    skiff_error err = SKIFF_ERROR_INIT;
    double t0 = unit_now();
    ASSERT_SKIFF_OK(
        skiff_function_map_async(square, lists, 1, &o, on_output, on_map_done, &m, &err), &err);
    while (skiff_client_pending(c) > 0)
        ASSERT_SKIFF_OK(skiff_client_wait(c, 30, &err), &err);
    printf("map_async of 2000 inputs: %.1f ms\n", (unit_now() - t0) * 1e3);
    ASSERT_EQ_INT(m.next, 2000);
    ASSERT_EQ_INT(m.sum, 1999LL * 2000 * 3999 / 6);
    ASSERT_EQ_INT(m.done, 1);
    ASSERT_EQ_INT(m.rc, SKIFF_OK);
    skiff_value_free(xs);
    skiff_function_free(square);
    skiff_client_close(c);
}
