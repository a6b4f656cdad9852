/*
 * itest_async_twins.c - the _async twins of the remaining blocking calls against a real skiffd:
 * spawn_map (lists and a source that says SKIFF_AGAIN) read back with get_index_async and
 * iter_async; map_source, starmap and for_each (success, first failure, ignored failures);
 * spawn_gen and get_gen (items then the end, items then the failure); hydrate (lazy handle,
 * already hydrated, missing); the autoscaler and keep_warm; a web endpoint's URL; a call graph;
 * a class's hydration. Each test drives the operations with skiff_client_wait on the test's own
 * thread and checks every callback ran exactly once, after the _async call returned, and that a
 * refused call never runs its callback.
 */
#include <time.h>

#include "itest.h"

static void itest_setup(void)
{
    itest_deploy("examples/square.c");
    itest_deploy("examples/web.c");
    itest_deploy("tests/integration/apps/features.c");
}

/* What the callbacks saw. */
static struct seen {
    int rc;             /* the last completion's code */
    int completions;    /* completion callbacks run */
    char type[64];      /* the last failure's type */
    skiff_call *call;   /* from a call callback */
    skiff_value *value; /* from a result callback */
    int64_t outputs[256];
    size_t indexes[256];
    int noutputs;
    int64_t items[64];
    int nitems;
    bool starting; /* an _async call is running: no callback may run now */
    int early;     /* callbacks (or source calls) run while starting */
} seen;

static void reset(void)
{
    memset(&seen, 0, sizeof seen);
}

static void complete(int rc, const skiff_error *err)
{
    if (seen.starting)
        seen.early++;
    seen.completions++;
    seen.rc = rc;
    seen.type[0] = 0;
    if (rc != SKIFF_OK && err && err->type)
        snprintf(seen.type, sizeof seen.type, "%s", err->type);
    if ((rc == SKIFF_OK) != (err == NULL))
        seen.early += 1000; /* err must be NULL exactly on success */
}

static void on_done(void *ud, int rc, const skiff_error *err)
{
    (void)ud;
    complete(rc, err);
}

static void on_call(void *ud, int rc, skiff_call *call, const skiff_error *err)
{
    (void)ud;
    complete(rc, err);
    seen.call = call;
}

static void on_result(void *ud, int rc, skiff_value *v, const skiff_error *err)
{
    (void)ud;
    complete(rc, err);
    skiff_value_free(seen.value);
    seen.value = v;
}

static void on_output(void *ud, skiff_map_output *out)
{
    (void)ud;
    if (seen.starting)
        seen.early++;
    if (seen.noutputs < 256) {
        seen.indexes[seen.noutputs] = out->index;
        seen.outputs[seen.noutputs] =
            out->error.code != SKIFF_OK ? -out->error.code : skiff_value_get_int(out->value);
        seen.noutputs++;
    }
    skiff_map_output_clear(out);
}

static void on_item(void *ud, skiff_value *item)
{
    (void)ud;
    if (seen.starting)
        seen.early++;
    if (seen.nitems < 64)
        seen.items[seen.nitems++] = skiff_value_get_int(item);
    skiff_value_free(item);
}

/* Runs c's operations of this thread until none is pending (60 s at most). */
static void drain(skiff_client *c)
{
    skiff_error err = SKIFF_ERROR_INIT;
    while (skiff_client_pending(c) > 0)
        ASSERT_SKIFF_OK(skiff_client_wait(c, 60, &err), &err);
    ASSERT_EQ_INT(seen.early, 0);
}

static skiff_value *ints(int64_t from, int64_t n)
{
    skiff_value *l = skiff_value_list();
    for (int64_t i = 0; i < n; i++)
        skiff_list_append(l, skiff_value_int(from + i));
    return l;
}

/* Starts an _async call with the `starting` guard on, so a callback run from inside it shows. */
#define START(call)                                                                                \
    do {                                                                                           \
        seen.starting = true;                                                                      \
        int rc_ = (call);                                                                          \
        seen.starting = false;                                                                     \
        ASSERT_SKIFF_OK(rc_, &err);                                                                \
    } while (0)

/* --- spawn_map, get_index, iter --------------------------------------------------------------- */

TEST(spawn_map_async_then_get_index_and_iter_async)
{
    skiff_client *c = itest_connect();
    skiff_function *sq = itest_lookup(c, "my-shared-app", "square");
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *xs = ints(0, 50);
    const skiff_value *lists[] = {xs};
    reset();
    START(skiff_function_spawn_map_async(sq, lists, 1, NULL, on_call, NULL, &err));
    ASSERT_EQ_INT(skiff_client_pending(c), 1);
    drain(c);
    ASSERT_EQ_INT(seen.completions, 1);
    ASSERT_EQ_INT(seen.rc, SKIFF_OK);
    skiff_call *call = seen.call;
    ASSERT_TRUE(call != NULL);
    ASSERT_EQ_INT(skiff_call_get_kind(call), SKIFF_CALL_SPAWN_MAP);
    ASSERT_EQ_INT(skiff_call_num_inputs(call), 50);

    reset();
    START(skiff_call_get_index_async(call, 7, 60, on_result, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.completions, 1);
    ASSERT_EQ_INT(seen.rc, SKIFF_OK);
    ASSERT_EQ_INT(skiff_value_get_int(seen.value), 49);
    skiff_value_free(seen.value);

    reset();
    START(skiff_call_get_index_async(call, 50, 60, on_result, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.completions, 1);
    ASSERT_EQ_INT(seen.rc, SKIFF_ERR_NOT_FOUND);
    ASSERT_TRUE(seen.value == NULL);

    reset();
    START(skiff_call_iter_async(call, NULL, on_output, on_done, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.completions, 1);
    ASSERT_EQ_INT(seen.rc, SKIFF_OK);
    ASSERT_EQ_INT(seen.noutputs, 50);
    for (int i = 0; i < 50; i++) {
        ASSERT_EQ_INT(seen.indexes[i], i);
        ASSERT_EQ_INT(seen.outputs[i], i * i);
    }
    char id[64];
    snprintf(id, sizeof id, "%s", skiff_call_id(call));
    skiff_call_free(call);

    /* re-opened by id: the kind and input count come from the server */
    reset();
    START(skiff_call_from_id_async(c, id, on_call, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.rc, SKIFF_OK);
    ASSERT_EQ_STR(skiff_call_id(seen.call), id);
    ASSERT_EQ_INT(skiff_call_get_kind(seen.call), SKIFF_CALL_SPAWN_MAP);
    ASSERT_EQ_INT(skiff_call_num_inputs(seen.call), 50);
    skiff_call_free(seen.call);
    reset();
    START(skiff_call_from_id_async(c, "fc-01M80000000000000000000099", on_call, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.rc, SKIFF_ERR_NOT_FOUND);
    ASSERT_TRUE(seen.call == NULL);
    ASSERT_EQ_INT(skiff_call_from_id_async(c, "nope", on_call, NULL, &err), SKIFF_ERR_INVALID);

    /* refused at once: no callback, nothing pending */
    reset();
    skiff_value *bad = skiff_value_int(3);
    const skiff_value *badlists[] = {bad};
    ASSERT_EQ_INT(skiff_function_spawn_map_async(sq, badlists, 1, NULL, on_call, NULL, &err),
                  SKIFF_ERR_INVALID);
    ASSERT_EQ_INT(skiff_function_spawn_map_async(sq, lists, 1, NULL, NULL, NULL, &err),
                  SKIFF_ERR_INVALID);
    ASSERT_EQ_INT(skiff_client_pending(c), 0);
    ASSERT_EQ_INT(seen.completions, 0);
    skiff_value_free(bad);
    skiff_value_free(xs);
    skiff_error_clear(&err);
    skiff_function_free(sq);
    skiff_client_close(c);
}

/* A source of n inputs 0..n-1 that says SKIFF_AGAIN before every third one. */
struct src {
    int64_t next, n;
    int calls, agains;
};

static int src_next(void *ctx, skiff_value **args, skiff_error *err)
{
    (void)err;
    struct src *s = ctx;
    if (seen.starting)
        seen.early++;
    s->calls++;
    if (s->next >= s->n)
        return SKIFF_OK;
    if (s->next % 3 == 1 && s->calls % 2 == 1) {
        s->agains++;
        return SKIFF_AGAIN;
    }
    *args = skiff_value_list_of(1, skiff_value_int(s->next++));
    return SKIFF_OK;
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A source with nothing ready for its first 60 ms (SKIFF_AGAIN while nothing is in flight, so
 * only the loop's timer can bring process back), then inputs 0, 1, 2. */
struct late {
    double first;
    int64_t next;
    int agains;
};

static int late_next(void *ctx, skiff_value **args, skiff_error *err)
{
    (void)err;
    struct late *s = ctx;
    if (seen.starting)
        seen.early++;
    double now = mono();
    if (s->first == 0)
        s->first = now;
    if (now - s->first < 0.06) {
        s->agains++;
        return SKIFF_AGAIN;
    }
    if (s->next < 3)
        *args = skiff_value_list_of(1, skiff_value_int(s->next++));
    return SKIFF_OK;
}

static int src_fail(void *ctx, skiff_value **args, skiff_error *err)
{
    (void)ctx;
    (void)args;
    return skiff_error_set(err, SKIFF_ERR_USER, "IOError", "the source broke");
}

TEST(spawn_map_source_async_asks_the_source_only_from_process)
{
    skiff_client *c = itest_connect();
    skiff_function *sq = itest_lookup(c, "my-shared-app", "square");
    skiff_error err = SKIFF_ERROR_INIT;
    struct src s = {0, 30, 0, 0};
    skiff_map_source ms = {src_next, &s};
    reset();
    START(skiff_function_spawn_map_source_async(sq, &ms, NULL, on_call, NULL, &err));
    ASSERT_EQ_INT(s.calls, 0);
    drain(c);
    ASSERT_EQ_INT(seen.rc, SKIFF_OK);
    ASSERT_TRUE(s.agains > 0);
    skiff_call *call = seen.call;
    ASSERT_EQ_INT(skiff_call_num_inputs(call), 30);
    reset();
    START(skiff_call_iter_async(call, NULL, on_output, on_done, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.noutputs, 30);
    for (int i = 0; i < 30; i++)
        ASSERT_EQ_INT(seen.outputs[i], i * i);
    skiff_call_free(call);

    /* a source that has nothing for a while: the timer brings process back to ask again */
    struct late l = {0, 0, 0};
    skiff_map_source lm = {late_next, &l};
    reset();
    START(skiff_function_spawn_map_source_async(sq, &lm, NULL, on_call, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.rc, SKIFF_OK);
    ASSERT_TRUE(l.agains >= 1);
    ASSERT_EQ_INT(skiff_call_num_inputs(seen.call), 3);
    skiff_call_free(seen.call);

    /* a failing source fails the spawn_map through its callback */
    reset();
    skiff_map_source bad = {src_fail, NULL};
    START(skiff_function_spawn_map_source_async(sq, &bad, NULL, on_call, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.completions, 1);
    ASSERT_EQ_INT(seen.rc, SKIFF_ERR_USER);
    ASSERT_EQ_STR(seen.type, "IOError");
    ASSERT_TRUE(seen.call == NULL);
    skiff_function_free(sq);
    skiff_client_close(c);
}

/* --- map_source, starmap, for_each ------------------------------------------------------------ */

TEST(map_source_async_delivers_in_order_with_a_source_that_waits)
{
    skiff_client *c = itest_connect();
    skiff_function *sq = itest_lookup(c, "my-shared-app", "square");
    skiff_error err = SKIFF_ERROR_INIT;
    struct src s = {0, 40, 0, 0};
    skiff_map_source ms = {src_next, &s};
    skiff_map_options o = {NULL, false, false, 8};
    reset();
    START(skiff_function_map_source_async(sq, &ms, &o, on_output, on_done, NULL, &err));
    ASSERT_EQ_INT(s.calls, 0);
    drain(c);
    ASSERT_EQ_INT(seen.completions, 1);
    ASSERT_EQ_INT(seen.rc, SKIFF_OK);
    ASSERT_TRUE(s.agains > 0);
    ASSERT_EQ_INT(seen.noutputs, 40);
    for (int i = 0; i < 40; i++)
        ASSERT_EQ_INT(seen.outputs[i], i * i);

    /* nothing ready for a while, with nothing in flight: the timer asks again */
    struct late l = {0, 0, 0};
    skiff_map_source lm = {late_next, &l};
    reset();
    START(skiff_function_map_source_async(sq, &lm, NULL, on_output, on_done, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.rc, SKIFF_OK);
    ASSERT_TRUE(l.agains >= 1);
    ASSERT_EQ_INT(seen.noutputs, 3);
    ASSERT_EQ_INT(seen.outputs[2], 4);

    /* an empty source ends with SKIFF_OK and no output */
    struct src empty = {0, 0, 0, 0};
    skiff_map_source me = {src_next, &empty};
    reset();
    START(skiff_function_map_source_async(sq, &me, NULL, on_output, on_done, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.completions, 1);
    ASSERT_EQ_INT(seen.rc, SKIFF_OK);
    ASSERT_EQ_INT(seen.noutputs, 0);

    /* a failing source ends the map with its failure */
    skiff_map_source bad = {src_fail, NULL};
    reset();
    START(skiff_function_map_source_async(sq, &bad, NULL, on_output, on_done, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.rc, SKIFF_ERR_USER);
    ASSERT_EQ_STR(seen.type, "IOError");
    skiff_map_source none = {NULL, NULL};
    ASSERT_EQ_INT(skiff_function_map_source_async(sq, &none, NULL, on_output, on_done, NULL, &err),
                  SKIFF_ERR_INVALID);
    ASSERT_EQ_INT(skiff_client_pending(c), 0);
    skiff_error_clear(&err);
    skiff_function_free(sq);
    skiff_client_close(c);
}

TEST(starmap_async_and_for_each_async)
{
    skiff_client *c = itest_connect();
    skiff_function *sq = itest_lookup(c, "my-shared-app", "square");
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *tuples = skiff_value_list();
    for (int i = 0; i < 20; i++)
        skiff_list_append(tuples, skiff_value_list_of(1, skiff_value_int(i + 1)));
    reset();
    START(skiff_function_starmap_async(sq, tuples, NULL, on_output, on_done, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.rc, SKIFF_OK);
    ASSERT_EQ_INT(seen.noutputs, 20);
    for (int i = 0; i < 20; i++)
        ASSERT_EQ_INT(seen.outputs[i], (i + 1) * (i + 1));
    skiff_value *notuples = ints(0, 3);
    ASSERT_EQ_INT(skiff_function_starmap_async(sq, notuples, NULL, on_output, on_done, NULL, &err),
                  SKIFF_ERR_INVALID);

    /* for_each: every input done, results discarded */
    skiff_value *xs = ints(0, 30);
    const skiff_value *lists[] = {xs};
    reset();
    START(skiff_function_for_each_async(sq, lists, 1, NULL, false, on_done, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.completions, 1);
    ASSERT_EQ_INT(seen.rc, SKIFF_OK);
    ASSERT_EQ_INT(seen.noutputs, 0);

    /* one input fails (a string): the first failure, unless ignored */
    skiff_value *mixed = ints(0, 10);
    skiff_list_append(mixed, skiff_value_string("seven"));
    const skiff_value *mlists[] = {mixed};
    reset();
    START(skiff_function_for_each_async(sq, mlists, 1, NULL, false, on_done, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.completions, 1);
    ASSERT_EQ_INT(seen.rc, SKIFF_ERR_USER);
    ASSERT_EQ_STR(seen.type, "TypeError");
    reset();
    START(skiff_function_for_each_async(sq, mlists, 1, NULL, true, on_done, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.completions, 1);
    ASSERT_EQ_INT(seen.rc, SKIFF_OK);
    ASSERT_EQ_INT(skiff_function_for_each_async(sq, mlists, 0, NULL, true, on_done, NULL, &err),
                  SKIFF_ERR_INVALID);
    ASSERT_EQ_INT(skiff_client_pending(c), 0);
    skiff_value_free(mixed);
    skiff_value_free(xs);
    skiff_value_free(notuples);
    skiff_value_free(tuples);
    skiff_error_clear(&err);
    skiff_function_free(sq);
    skiff_client_close(c);
}

/* --- generators ------------------------------------------------------------------------------- */

TEST(spawn_gen_async_then_get_gen_async)
{
    skiff_client *c = itest_connect();
    skiff_function *g = itest_lookup(c, "itest-features", "count_up");
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *args = skiff_value_list_of(1, skiff_value_int(5));
    reset();
    START(skiff_function_spawn_gen_async(g, args, NULL, on_call, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.rc, SKIFF_OK);
    skiff_call *call = seen.call;
    ASSERT_EQ_INT(skiff_call_get_kind(call), SKIFF_CALL_GENERATOR);
    reset();
    START(skiff_call_get_gen_async(call, on_item, on_done, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.completions, 1);
    ASSERT_EQ_INT(seen.rc, SKIFF_OK);
    ASSERT_EQ_INT(seen.nitems, 5);
    for (int i = 0; i < 5; i++)
        ASSERT_EQ_INT(seen.items[i], i);
    /* not a generator call: refused at once */
    ASSERT_EQ_INT(skiff_call_get_index_async(call, 0, 1, on_result, NULL, &err), SKIFF_ERR_INVALID);
    skiff_call_free(call);

    /* fails after two items: the items, then the failure */
    skiff_value *fargs = skiff_value_list_of(2, skiff_value_int(5), skiff_value_int(2));
    reset();
    START(skiff_function_spawn_gen_async(g, fargs, NULL, on_call, NULL, &err));
    drain(c);
    call = seen.call;
    reset();
    START(skiff_call_get_gen_async(call, on_item, on_done, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.nitems, 2);
    ASSERT_EQ_INT(seen.rc, SKIFF_ERR_USER);
    ASSERT_EQ_STR(seen.type, "ValueError");
    skiff_call_free(call);

    /* a plain function is refused as a generator once its kind is known */
    skiff_function *sq = itest_lookup(c, "my-shared-app", "square");
    ASSERT_EQ_INT(skiff_function_spawn_gen_async(sq, args, NULL, on_call, NULL, &err),
                  SKIFF_ERR_INVALID);
    ASSERT_EQ_INT(skiff_client_pending(c), 0);
    skiff_function_free(sq);
    skiff_value_free(args);
    skiff_value_free(fargs);
    skiff_error_clear(&err);
    skiff_function_free(g);
    skiff_client_close(c);
}

/* --- hydrate, autoscaler, web URL, call graph, classes ---------------------------------------- */

TEST(hydrate_async_lazy_hydrated_and_missing)
{
    skiff_client *c = itest_connect();
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_function *fn = NULL;
    ASSERT_SKIFF_OK(skiff_function_from_name(c, "my-shared-app", "square", &fn, &err), &err);
    ASSERT_TRUE(skiff_function_id(fn) == NULL);
    reset();
    START(skiff_function_hydrate_async(fn, on_done, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.completions, 1);
    ASSERT_EQ_INT(seen.rc, SKIFF_OK);
    ASSERT_TRUE(skiff_function_id(fn) != NULL);
    ASSERT_EQ_INT(skiff_function_get_kind(fn), SKIFF_FUNCTION_PLAIN);
    /* hydrated already: completes at the next process, never inside the call */
    reset();
    START(skiff_function_hydrate_async(fn, on_done, NULL, &err));
    ASSERT_EQ_INT(seen.completions, 0);
    drain(c);
    ASSERT_EQ_INT(seen.completions, 1);
    ASSERT_EQ_INT(seen.rc, SKIFF_OK);
    skiff_function_free(fn);

    ASSERT_SKIFF_OK(skiff_function_from_name(c, "my-shared-app", "nope", &fn, &err), &err);
    reset();
    START(skiff_function_hydrate_async(fn, on_done, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.rc, SKIFF_ERR_NOT_FOUND);
    ASSERT_EQ_INT(skiff_function_hydrate_async(NULL, on_done, NULL, &err), SKIFF_ERR_INVALID);
    ASSERT_EQ_INT(skiff_function_hydrate_async(fn, NULL, NULL, &err), SKIFF_ERR_INVALID);
    skiff_function_free(fn);
    skiff_error_clear(&err);
    skiff_client_close(c);
}

static skiff_autoscaler now_seen;

static void on_autoscaler(void *ud, int rc, const skiff_autoscaler *now, const skiff_error *err)
{
    (void)ud;
    complete(rc, err);
    if (now)
        now_seen = *now;
}

TEST(update_autoscaler_async_and_keep_warm_async)
{
    skiff_client *c = itest_connect();
    skiff_function *sq = itest_lookup(c, "my-shared-app", "square");
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_autoscaler a = SKIFF_AUTOSCALER_INIT;
    a.max_containers = 3;
    a.scaledown_window = 7;
    reset();
    START(skiff_function_update_autoscaler_async(sq, &a, on_autoscaler, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.rc, SKIFF_OK);
    ASSERT_EQ_INT(now_seen.max_containers, 3);
    ASSERT_TRUE(now_seen.scaledown_window == 7);
    reset();
    START(skiff_function_keep_warm_async(sq, 1, on_done, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.completions, 1);
    ASSERT_EQ_INT(seen.rc, SKIFF_OK);
    skiff_autoscaler now = SKIFF_AUTOSCALER_INIT;
    skiff_autoscaler none = SKIFF_AUTOSCALER_INIT;
    none.buffer_containers = 0;
    ASSERT_SKIFF_OK(skiff_function_update_autoscaler(sq, &none, &now, &err), &err);
    ASSERT_EQ_INT(now.min_containers, 1);
    reset();
    START(skiff_function_keep_warm_async(sq, 0, on_done, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.rc, SKIFF_OK);

    /* refused before anything is sent */
    skiff_autoscaler bad = SKIFF_AUTOSCALER_INIT;
    bad.min_containers = 5;
    bad.max_containers = 2;
    ASSERT_EQ_INT(skiff_function_update_autoscaler_async(sq, &bad, on_autoscaler, NULL, &err),
                  SKIFF_ERR_INVALID);
    skiff_autoscaler unset = SKIFF_AUTOSCALER_INIT;
    ASSERT_EQ_INT(skiff_function_update_autoscaler_async(sq, &unset, on_autoscaler, NULL, &err),
                  SKIFF_ERR_INVALID);
    ASSERT_EQ_INT(skiff_function_keep_warm_async(sq, -1, on_done, NULL, &err), SKIFF_ERR_INVALID);
    ASSERT_EQ_INT(skiff_client_pending(c), 0);
    ASSERT_EQ_INT(seen.completions, 1);

    /* a missing function: NOT_FOUND through the callback */
    skiff_function *missing = NULL;
    ASSERT_SKIFF_OK(skiff_function_from_name(c, "my-shared-app", "nope", &missing, &err), &err);
    reset();
    START(skiff_function_keep_warm_async(missing, 1, on_done, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.rc, SKIFF_ERR_NOT_FOUND);
    skiff_function_free(missing);
    skiff_error_clear(&err);
    skiff_function_free(sq);
    skiff_client_close(c);
}

static char *url_seen;

static void on_url(void *ud, int rc, char *url, const skiff_error *err)
{
    (void)ud;
    complete(rc, err);
    free(url_seen);
    url_seen = url;
}

TEST(get_web_url_async_of_an_endpoint_and_of_a_plain_function)
{
    skiff_client *c = itest_connect();
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_function *add = NULL, *sq = NULL;
    ASSERT_SKIFF_OK(skiff_function_from_name(c, "web-demo", "add", &add, &err), &err);
    reset();
    START(skiff_function_get_web_url_async(add, on_url, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.rc, SKIFF_OK);
    ASSERT_TRUE(url_seen != NULL);
    ASSERT_STR_CONTAINS(url_seen, "add");
    char *blocking = NULL;
    ASSERT_SKIFF_OK(skiff_function_get_web_url(add, &blocking, &err), &err);
    ASSERT_EQ_STR(blocking, url_seen);
    free(blocking);
    ASSERT_EQ_INT(skiff_function_get_kind(add), SKIFF_FUNCTION_WEB);

    ASSERT_SKIFF_OK(skiff_function_from_name(c, "my-shared-app", "square", &sq, &err), &err);
    reset();
    START(skiff_function_get_web_url_async(sq, on_url, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.rc, SKIFF_OK);
    ASSERT_TRUE(url_seen == NULL);
    ASSERT_EQ_INT(skiff_function_get_web_url_async(sq, NULL, NULL, &err), SKIFF_ERR_INVALID);
    skiff_function_free(sq);
    skiff_function_free(add);
    skiff_error_clear(&err);
    skiff_client_close(c);
}

static skiff_input_info *roots_seen;
static size_t nroots_seen;

static void on_graph(void *ud, int rc, skiff_input_info *roots, size_t n, const skiff_error *err)
{
    (void)ud;
    complete(rc, err);
    roots_seen = roots;
    nroots_seen = n;
}

TEST(get_call_graph_async_of_a_finished_call)
{
    skiff_client *c = itest_connect();
    skiff_function *sq = itest_lookup(c, "my-shared-app", "square");
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_call *call = itest_spawn_json(sq, "[6]", NULL);
    skiff_value *v = itest_get(call, 60);
    ASSERT_EQ_INT(skiff_value_get_int(v), 36);
    skiff_value_free(v);
    reset();
    START(skiff_call_get_call_graph_async(call, on_graph, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.rc, SKIFF_OK);
    ASSERT_EQ_INT(nroots_seen, 1);
    ASSERT_EQ_STR(roots_seen[0].function, "my-shared-app.square");
    ASSERT_EQ_STR(roots_seen[0].call_id, skiff_call_id(call));
    ASSERT_EQ_INT(roots_seen[0].status, SKIFF_INPUT_SUCCESS);
    skiff_call_graph_free(roots_seen, nroots_seen);
    ASSERT_EQ_INT(skiff_call_get_call_graph_async(call, NULL, NULL, &err), SKIFF_ERR_INVALID);
    skiff_call_free(call);
    skiff_error_clear(&err);
    skiff_function_free(sq);
    skiff_client_close(c);
}

TEST(cls_hydrate_async_then_methods_without_blocking)
{
    skiff_client *c = itest_connect();
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_cls *cls = NULL;
    ASSERT_SKIFF_OK(skiff_cls_from_name(c, "my-shared-app", "MyLifecycleClass", &cls, &err), &err);
    reset();
    START(skiff_cls_hydrate_async(cls, on_done, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.completions, 1);
    ASSERT_EQ_INT(seen.rc, SKIFF_OK);
    /* hydrated: at the next process */
    reset();
    START(skiff_cls_hydrate_async(cls, on_done, NULL, &err));
    ASSERT_EQ_INT(seen.completions, 0);
    drain(c);
    ASSERT_EQ_INT(seen.completions, 1);
    skiff_obj *obj = NULL;
    skiff_function *foo = NULL;
    ASSERT_SKIFF_OK(skiff_cls_instantiate(cls, NULL, &obj, &err), &err);
    ASSERT_SKIFF_OK(skiff_obj_method(obj, "foo", &foo, &err), &err);
    reset();
    START(skiff_function_remote_async(foo, NULL, NULL, on_result, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.rc, SKIFF_OK);
    ASSERT_EQ_STR(skiff_value_get_string(seen.value, NULL), "hello world");
    skiff_value_free(seen.value);
    skiff_function_free(foo);
    skiff_obj_free(obj);
    skiff_cls_free(cls);

    ASSERT_SKIFF_OK(skiff_cls_from_name(c, "my-shared-app", "NoSuchClass", &cls, &err), &err);
    reset();
    START(skiff_cls_hydrate_async(cls, on_done, NULL, &err));
    drain(c);
    ASSERT_EQ_INT(seen.rc, SKIFF_ERR_NOT_FOUND);
    ASSERT_EQ_INT(skiff_cls_hydrate_async(cls, NULL, NULL, &err), SKIFF_ERR_INVALID);
    skiff_cls_free(cls);
    skiff_error_clear(&err);
    skiff_client_close(c);
}
