/*
 * itest_features.c - issues 3 and 4 through the C API against a real skiffd, with the
 * tests/integration/apps/features.c app: generators (remote_gen in order, a failure midway after
 * its items, spawn_gen read back from another handle, the kind checks), max_inputs observed
 * from inside (inputs overlap, never more than the limit), batched inputs (lists gathered up to
 * max_batch_size within wait_ms, one output each), retries (counted and spaced by the policy,
 * delivered once), classes with parameters (a pool per parameter set, enter once per container,
 * a failing enter is an InitFailureError), and a function that ignores cancellation (stopped
 * after the grace period, the server carries on).
 */
#include "itest.h"

static void itest_setup(void)
{
    itest_deploy("tests/integration/apps/features.c");
    itest_deploy("examples/square.c");
}

TEST(reference_lifecycle_class_example)
{
    skiff_client *c = itest_connect();
    skiff_cls *cls = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_cls_from_name(c, "my-shared-app", "MyLifecycleClass", &cls, &err), &err);
    skiff_obj *obj = NULL;
    ASSERT_SKIFF_OK(skiff_cls_instantiate(cls, NULL, &obj, &err), &err);
    skiff_function *foo = NULL;
    ASSERT_SKIFF_OK(skiff_obj_method(obj, "foo", &foo, &err), &err);
    skiff_value *v = NULL;
    ASSERT_SKIFF_OK(skiff_function_remote(foo, NULL, NULL, &v, &err), &err);
    ASSERT_EQ_STR(skiff_value_get_string(v, NULL), "hello world");
    skiff_value_free(v);
    /* An unknown method or class is a NotFoundError. */
    skiff_function *nope = NULL;
    ASSERT_SKIFF(skiff_obj_method(obj, "bar", &nope, &err), SKIFF_ERR_NOT_FOUND, &err);
    skiff_error_clear(&err);
    skiff_cls *missing = NULL;
    ASSERT_SKIFF_OK(skiff_cls_from_name(c, "my-shared-app", "NoSuchClass", &missing, &err), &err);
    ASSERT_SKIFF(skiff_cls_hydrate(missing, &err), SKIFF_ERR_NOT_FOUND, &err);
    skiff_error_clear(&err);
    skiff_cls_free(missing);
    /* And from the CLI. */
    struct itest_run r = itest_cli(NULL, "call", "my-shared-app", "MyLifecycleClass.foo", NULL);
    ASSERT_EQ_INT(r.status, 0);
    ASSERT_EQ_STR(r.out, "\"hello world\"\n");
    itest_run_free(&r);
    skiff_function_free(foo);
    skiff_obj_free(obj);
    skiff_cls_free(cls);
    skiff_client_close(c);
}

TEST(generator_streams_in_order)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-features", "count_up");
    skiff_value *args = itest_json("[50]");
    skiff_gen *g = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_remote_gen(fn, args, NULL, &g, &err), &err);
    skiff_value *item = NULL;
    int64_t expect = 0;
    int rc;
    while ((rc = skiff_gen_next(g, &item, &err)) == SKIFF_OK) {
        ASSERT_EQ_INT(skiff_value_get_int(item), expect);
        expect++;
        skiff_value_free(item);
    }
    ASSERT_SKIFF(rc, SKIFF_DONE, &err);
    ASSERT_EQ_INT(expect, 50);
    ASSERT_EQ_INT(skiff_gen_count(g), 50);
    skiff_gen_free(g);
    /* remote (not remote_gen) on a generator is a clear error. */
    skiff_value *v = NULL;
    ASSERT_SKIFF(skiff_function_remote(fn, args, NULL, &v, &err), SKIFF_ERR_INVALID, &err);
    ASSERT_STR_CONTAINS(err.message, "generator");
    skiff_error_clear(&err);
    skiff_value_free(args);
    skiff_function_free(fn);
    /* remote_gen on a plain function too. */
    fn = itest_lookup(c, "itest-features", "stubborn");
    args = itest_json("[1]");
    ASSERT_SKIFF(skiff_function_remote_gen(fn, args, NULL, &g, &err), SKIFF_ERR_INVALID, &err);
    skiff_error_clear(&err);
    skiff_value_free(args);
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(generator_failing_midway)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-features", "count_up");
    skiff_value *args = itest_json("[10, 4]");
    skiff_gen *g = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_remote_gen(fn, args, NULL, &g, &err), &err);
    skiff_value *item = NULL;
    int64_t n = 0;
    int rc;
    while ((rc = skiff_gen_next(g, &item, &err)) == SKIFF_OK) {
        ASSERT_EQ_INT(skiff_value_get_int(item), n);
        n++;
        skiff_value_free(item);
    }
    ASSERT_EQ_INT(n, 4); /* the items before the failure arrived */
    ASSERT_SKIFF(rc, SKIFF_ERR_USER, &err);
    ASSERT_EQ_STR(err.type, "ValueError");
    ASSERT_STR_CONTAINS(err.message, "failed after 4 items");
    skiff_error_clear(&err);
    skiff_gen_free(g);
    skiff_value_free(args);
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(spawned_generator_read_back_by_id)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-features", "count_up");
    skiff_value *args = itest_json("[7]");
    skiff_call *call = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_spawn_gen(fn, args, NULL, &call, &err), &err);
    /* From another handle (as another process would). */
    skiff_call *again = NULL;
    ASSERT_SKIFF_OK(skiff_call_from_id(c, skiff_call_id(call), &again, &err), &err);
    skiff_gen *g = NULL;
    ASSERT_SKIFF_OK(skiff_call_get_gen(again, &g, &err), &err);
    skiff_value *item = NULL;
    int64_t n = 0;
    int rc;
    while ((rc = skiff_gen_next(g, &item, &err)) == SKIFF_OK) {
        ASSERT_EQ_INT(skiff_value_get_int(item), n);
        n++;
        skiff_value_free(item);
    }
    ASSERT_SKIFF(rc, SKIFF_DONE, &err);
    ASSERT_EQ_INT(n, 7);
    skiff_gen_free(g);
    /* Read twice: the items are kept. */
    ASSERT_SKIFF_OK(skiff_call_get_gen(again, &g, &err), &err);
    n = 0;
    while ((rc = skiff_gen_next(g, &item, &err)) == SKIFF_OK) {
        n++;
        skiff_value_free(item);
    }
    ASSERT_SKIFF(rc, SKIFF_DONE, &err);
    ASSERT_EQ_INT(n, 7);
    skiff_gen_free(g);
    skiff_call_free(again);
    skiff_call_free(call);
    skiff_value_free(args);
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(max_inputs_run_concurrently_within_the_limit)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-features", "overlap");
    skiff_value *xs = itest_json("[300, 300, 300, 300, 300, 300, 300, 300]");
    const skiff_value *lists[] = {xs};
    skiff_map *m = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    double t0 = unit_now();
    ASSERT_SKIFF_OK(skiff_function_map(fn, lists, 1, NULL, &m, &err), &err);
    skiff_value *res = NULL;
    ASSERT_SKIFF_OK(skiff_map_collect(m, &res, &err), &err);
    double took = unit_now() - t0;
    int64_t most = 0;
    for (size_t i = 0; i < skiff_list_len(res); i++) {
        int64_t v = skiff_value_get_int(skiff_list_get(res, i));
        most = v > most ? v : most;
    }
    /* One container (max_containers 1) ran them 4 at a time: 8 x 300 ms in about 600 ms. */
    ASSERT_EQ_INT(most, 4);
    ASSERT_LT_INT(took * 1000, itest_scale(2.0) * 1000);
    ASSERT_LE_INT(itest_container_count("itest-features", "overlap", NULL, NULL, 0), 1);
    skiff_value_free(res);
    skiff_map_free(m);
    skiff_value_free(xs);
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(batched_inputs_are_gathered_and_answered_one_by_one)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-features", "batched");
    skiff_value *xs = itest_json("[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]");
    const skiff_value *lists[] = {xs};
    skiff_map *m = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_map(fn, lists, 1, NULL, &m, &err), &err);
    skiff_value *res = NULL;
    ASSERT_SKIFF_OK(skiff_map_collect(m, &res, &err), &err);
    ASSERT_EQ_INT(skiff_list_len(res), 10);
    int64_t biggest = 0;
    for (size_t i = 0; i < 10; i++) {
        const skiff_value *pair = skiff_list_get(res, i);
        ASSERT_EQ_INT(skiff_value_get_int(skiff_list_get(pair, 0)), (int64_t)i);
        int64_t size = skiff_value_get_int(skiff_list_get(pair, 1));
        ASSERT_GE_INT(size, 1);
        ASSERT_LE_INT(size, 4);
        biggest = size > biggest ? size : biggest;
    }
    ASSERT_EQ_INT(biggest, 4); /* ten queued inputs fill batches */
    skiff_value_free(res);
    skiff_map_free(m);
    /* A single call still works: a batch of one once wait_ms passes. */
    skiff_value *args = itest_json("[42]");
    skiff_value *v = NULL;
    ASSERT_SKIFF_OK(skiff_function_remote(fn, args, NULL, &v, &err), &err);
    ASSERT_EQ_INT(skiff_value_get_int(skiff_list_get(v, 0)), 42);
    ASSERT_EQ_INT(skiff_value_get_int(skiff_list_get(v, 1)), 1);
    skiff_value_free(v);
    skiff_value_free(args);
    skiff_value_free(xs);
    skiff_function_free(fn);
    skiff_client_close(c);
}

static int lines_of(const char *path)
{
    char *text = itest_read_file(path);
    int n = text ? itest_count(text, "\n") : 0;
    free(text);
    return n;
}

TEST(retries_counted_spaced_and_delivered_once)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-features", "flaky");
    char path[ITEST_FILE];
    snprintf(path, sizeof path, "%s/attempts", itest_tmpdir("retries"));
    /* Succeeds on the third attempt: two retries, after 0.2 s and 0.4 s. */
    char args[ITEST_FILE + 32];
    snprintf(args, sizeof args, "[\"%s\", 3]", path);
    double t0 = unit_now();
    char *json = itest_call_json(fn, args, NULL);
    double took = unit_now() - t0;
    ASSERT_EQ_STR(json, "3");
    free(json);
    ASSERT_EQ_INT(lines_of(path), 3);
    ASSERT_GE_INT(took * 1000, 550);
    /* Never succeeds within 1 + 3 retries: the last failure is the caller's, after 4 attempts. */
    snprintf(path, sizeof path, "%s/attempts2", itest_tmpdir("retries2"));
    snprintf(args, sizeof args, "[\"%s\", 100]", path);
    skiff_error err = itest_call_fails(fn, args, NULL, SKIFF_ERR_USER);
    ASSERT_STR_CONTAINS(err.message, "attempt 4 failed");
    skiff_error_clear(&err);
    ASSERT_EQ_INT(lines_of(path), 4);
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(class_pools_by_parameters)
{
    skiff_client *c = itest_connect();
    skiff_cls *cls = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_cls_from_name(c, "itest-features", "Greeter", &cls, &err), &err);
    skiff_value *p1 = itest_json("{\"word\": \"hi\"}");
    skiff_value *p2 = itest_json("{\"word\": \"hey\", \"loud\": true}");
    skiff_obj *a = NULL, *b = NULL;
    ASSERT_SKIFF_OK(skiff_cls_instantiate(cls, p1, &a, &err), &err);
    ASSERT_SKIFF_OK(skiff_cls_instantiate(cls, p2, &b, &err), &err);
    skiff_function *ga = NULL, *gb = NULL;
    ASSERT_SKIFF_OK(skiff_obj_method(a, "greet", &ga, &err), &err);
    ASSERT_SKIFF_OK(skiff_obj_method(b, "greet", &gb, &err), &err);
    skiff_value *ra = NULL, *rb = NULL, *ra2 = NULL;
    ASSERT_SKIFF_OK(skiff_function_remote(ga, NULL, NULL, &ra, &err), &err);
    ASSERT_SKIFF_OK(skiff_function_remote(gb, NULL, NULL, &rb, &err), &err);
    ASSERT_SKIFF_OK(skiff_function_remote(ga, NULL, NULL, &ra2, &err), &err);
    ASSERT_EQ_STR(skiff_value_get_string(skiff_list_get(ra, 0), NULL), "hi, world");
    ASSERT_EQ_STR(skiff_value_get_string(skiff_list_get(rb, 0), NULL), "hey, WORLD");
    /* enter ran once per container; each parameter set has its own container. */
    ASSERT_EQ_INT(skiff_value_get_int(skiff_list_get(ra2, 1)), 1);
    ASSERT_EQ_INT(skiff_value_get_int(skiff_list_get(ra, 2)),
                  skiff_value_get_int(skiff_list_get(ra2, 2)));
    ASSERT_NE_INT(skiff_value_get_int(skiff_list_get(ra, 2)),
                  skiff_value_get_int(skiff_list_get(rb, 2)));
    skiff_value_free(ra);
    skiff_value_free(rb);
    skiff_value_free(ra2);
    /* The container list shows each pool's parameters. */
    skiff_value *list = itest_container_list();
    int pools = 0;
    for (size_t i = 0; i < skiff_list_len(list); i++) {
        const skiff_value *ct = skiff_list_get(list, i);
        const char *f = skiff_value_get_string(skiff_map_get(ct, "function"), NULL);
        /* `skiff container list` shows a pool's params as the JSON value they are. */
        char *params = skiff_value_to_json(skiff_map_get(ct, "params"));
        if (f && !strcmp(f, "Greeter") && params &&
            (strstr(params, "\"hi\"") || strstr(params, "\"hey\"")))
            pools++;
        free(params);
    }
    ASSERT_GE_INT(pools, 2);
    skiff_value_free(list);
    /* A failing enter: InitFailureError for the callers of that parameter set only. */
    skiff_value *pf = itest_json("{\"word\": \"fail\"}");
    skiff_obj *f = NULL;
    skiff_function *gf = NULL;
    ASSERT_SKIFF_OK(skiff_cls_instantiate(cls, pf, &f, &err), &err);
    ASSERT_SKIFF_OK(skiff_obj_method(f, "greet", &gf, &err), &err);
    skiff_value *rf = NULL;
    ASSERT_SKIFF(skiff_function_remote(gf, NULL, NULL, &rf, &err), SKIFF_ERR_INIT_FAILURE, &err);
    ASSERT_STR_CONTAINS(err.message, "enter refused");
    skiff_error_clear(&err);
    ASSERT_SKIFF_OK(skiff_function_remote(ga, NULL, NULL, &ra, &err), &err);
    skiff_value_free(ra);
    /* The CLI calls methods with --param. */
    struct itest_run r =
        itest_cli(NULL, "call", "itest-features", "Greeter.greet", "--param", "word=\"yo\"", NULL);
    ASSERT_EQ_INT(r.status, 0);
    ASSERT_STR_CONTAINS(r.out, "yo, world");
    itest_run_free(&r);
    skiff_function_free(gf);
    skiff_obj_free(f);
    skiff_value_free(pf);
    skiff_function_free(ga);
    skiff_function_free(gb);
    skiff_obj_free(a);
    skiff_obj_free(b);
    skiff_value_free(p1);
    skiff_value_free(p2);
    skiff_cls_free(cls);
    skiff_client_close(c);
}

TEST(local_method_on_an_instance_with_parameters)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-features", "greet_locally");
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *args = itest_json("[\"howdy\"]");
    skiff_value *r = NULL;
    ASSERT_SKIFF_OK(skiff_function_remote(fn, args, NULL, &r, &err), &err);
    /* Entered with the instance's word, in the container that ran greet_locally itself. */
    ASSERT_EQ_STR(skiff_value_get_string(skiff_list_get(r, 0), NULL), "howdy, world");
    ASSERT_EQ_INT(skiff_value_get_int(skiff_list_get(r, 1)), 1);
    int64_t pids[8];
    int n = itest_container_count("itest-features", "greet_locally", NULL, pids, 8);
    bool found = false;
    for (int i = 0; i < n && i < 8; i++)
        found = found || pids[i] == skiff_value_get_int(skiff_list_get(r, 2));
    ASSERT(found);
    skiff_value_free(r);
    skiff_value_free(args);
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(ignored_cancellation_stopped_after_the_grace)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-features", "stubborn");
    skiff_call *call = itest_spawn_json(fn, "[60000]", NULL);
    WAIT_UNTIL(itest_container_count("itest-features", "stubborn", "busy", NULL, 0) == 1, 20,
               "the input to run");
    skiff_error err = SKIFF_ERROR_INIT;
    double t0 = unit_now();
    ASSERT_SKIFF_OK(skiff_call_cancel(call, false, &err), &err);
    skiff_value *v = NULL;
    ASSERT_SKIFF(skiff_call_get(call, 5, &v, &err), SKIFF_ERR_CANCELLED, &err);
    skiff_error_clear(&err);
    /* The function never returns: its container is killed once the grace (5 s) is over. */
    WAIT_UNTIL(itest_container_count("itest-features", "stubborn", "busy", NULL, 0) == 0, 20,
               "the stubborn container to be stopped");
    ASSERT_GE_INT((unit_now() - t0) * 1000, 4000);
    /* The function keeps working. */
    char *json = itest_call_json(fn, "[1]", NULL);
    free(json);
    skiff_call_free(call);
    skiff_function_free(fn);
    skiff_client_close(c);
}
