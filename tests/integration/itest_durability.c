/*
 * itest_durability.c - integration tests of issue 2, points 4 (output expiry) and 6 (nothing
 * acknowledged is lost) through the C API: kill -9 of skiffd with 1,000 spawned calls pending,
 * restart, and every call completes and is retrievable by id; results survive clean and unclean
 * restarts; a result past the server's retention reads as OutputExpiredError, distinct from
 * "not finished yet" and "no such call". Each test runs a server of its own, so it can kill it.
 */
#include "itest.h"

static void itest_setup(void)
{
}

static struct itest_server own;

static skiff_client *start_own(const char *const *opts)
{
    itest_server_start(&own, opts);
    itest_deploy("tests/integration/apps/probe.c");
    return itest_connect();
}

#define SPAWNS 1000

TEST(kill9_with_1000_pending_then_restart)
{
    skiff_client *c = start_own(NULL);
    skiff_function *fn = itest_lookup(c, "itest-probe", "sleep_ms");
    /* Each input takes 20 ms on at most 4 containers: 1,000 need about 5 s, so nearly all are
     * still pending when the server dies right after the last spawn. */
    static char ids[SPAWNS][40];
    for (int i = 0; i < SPAWNS; i++) {
        skiff_value *a = skiff_value_list_of(1, skiff_value_int(20));
        skiff_value *k = skiff_value_map();
        skiff_map_set(k, "after", skiff_value_string("")); /* no marker file */
        skiff_call *call = NULL;
        skiff_error err = SKIFF_ERROR_INIT;
        ASSERT_SKIFF_OK(skiff_function_spawn(fn, a, k, &call, &err), &err);
        snprintf(ids[i], sizeof ids[i], "%s", skiff_call_id(call));
        skiff_call_free(call);
        skiff_value_free(a);
        skiff_value_free(k);
    }
    /* Some are certainly still pending. */
    skiff_call *last = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_call_from_id(c, ids[SPAWNS - 1], &last, &err), &err);
    skiff_value *v = NULL;
    ASSERT_SKIFF(skiff_call_get(last, 0, &v, &err), SKIFF_ERR_TIMEOUT, &err);
    skiff_error_clear(&err);
    skiff_call_free(last);
    skiff_function_free(fn);
    skiff_client_close(c);

    itest_server_kill9(&own);
    itest_server_start(&own, NULL);

    c = itest_connect();
    double t0 = unit_now();
    for (int i = 0; i < SPAWNS; i++) {
        skiff_call *call = NULL;
        if (skiff_call_from_id(c, ids[i], &call, &err) != SKIFF_OK)
            FAIL("call %d (%s) lost after kill -9: %s: %s", i, ids[i], err.type, err.message);
        double left = itest_scale(60) - (unit_now() - t0);
        int rc = skiff_call_get(call, left > 1 ? left : 1, &v, &err);
        if (rc != SKIFF_OK)
            FAIL("call %d (%s) after restart: %s: %s", i, ids[i], err.type, err.message);
        ASSERT_EQ_INT(skiff_value_type(v), SKIFF_INT); /* the pid that ran it */
        skiff_value_free(v);
        skiff_call_free(call);
    }
    skiff_client_close(c);
    itest_server_stop(&own);
}

TEST(results_survive_restarts)
{
    skiff_client *c = start_own(NULL);
    skiff_function *echo = itest_lookup(c, "itest-probe", "echo");
    skiff_function *fail = itest_lookup(c, "itest-probe", "fail_after");
    skiff_call *ok =
        itest_spawn_json(echo, "[{\"k\": [1, 2.5, \"s\", {\"$bytes\": \"AAE=\"}]}]", NULL);
    skiff_call *bad = itest_spawn_json(fail, "[\"kept\", 0]", NULL);
    skiff_value *v = itest_get(ok, SKIFF_WAIT_FOREVER);
    skiff_value_free(v);
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF(skiff_call_get(bad, SKIFF_WAIT_FOREVER, &v, &err), SKIFF_ERR_USER, &err);
    skiff_error_clear(&err);
    char okid[40], badid[40];
    snprintf(okid, sizeof okid, "%s", skiff_call_id(ok));
    snprintf(badid, sizeof badid, "%s", skiff_call_id(bad));
    skiff_call_free(ok);
    skiff_call_free(bad);
    skiff_function_free(echo);
    skiff_function_free(fail);
    skiff_client_close(c);

    for (int round = 0; round < 2; round++) {
        if (round == 0) { /* a clean restart */
            itest_server_stop(&own);
        } else { /* a crash */
            itest_server_kill9(&own);
        }
        itest_server_start(&own, NULL);
        c = itest_connect();
        skiff_call *h = NULL;
        ASSERT_SKIFF_OK(skiff_call_from_id(c, okid, &h, &err), &err);
        v = itest_get(h, 0);
        ASSERT_JSON(v, "{\"k\": [1, 2.5, \"s\", {\"$bytes\": \"AAE=\"}]}");
        skiff_value_free(v);
        skiff_call_free(h);
        ASSERT_SKIFF_OK(skiff_call_from_id(c, badid, &h, &err), &err);
        ASSERT_SKIFF(skiff_call_get(h, 0, &v, &err), SKIFF_ERR_USER, &err);
        ASSERT_EQ_STR(err.type, "ValueError");
        ASSERT_STR_CONTAINS(err.message, "kept");
        ASSERT_NOT_NULL(err.traceback);
        ASSERT_STR_CONTAINS(err.traceback, "probe.c");
        skiff_error_clear(&err);
        skiff_call_free(h);
        skiff_client_close(c);
    }
    /* Deployed apps survive too: call by name without deploying again. */
    c = itest_connect();
    skiff_function *pid = itest_lookup(c, "itest-probe", "pid");
    char *json = itest_call_json(pid, "[]", NULL);
    free(json);
    skiff_function_free(pid);
    skiff_client_close(c);
    itest_server_stop(&own);
}

TEST(output_expired_is_its_own_error)
{
    const char *opts[] = {"--retention", "1", NULL};
    skiff_client *c = start_own(opts);
    skiff_function *echo = itest_lookup(c, "itest-probe", "echo");
    skiff_function *slow = itest_lookup(c, "itest-probe", "sleep_ms");
    skiff_call *done = itest_spawn_json(echo, "[7]", NULL);
    skiff_value *v = itest_get(done, SKIFF_WAIT_FOREVER);
    ASSERT_EQ_INT(skiff_value_get_int(v), 7);
    skiff_value_free(v);
    /* A call still running after more than the retention is not expired: not finished. */
    skiff_call *running = itest_spawn_json(slow, "[4000]", NULL);

    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    double deadline = unit_now() + itest_scale(15);
    while ((rc = skiff_call_get(done, 0, &v, &err)) == SKIFF_OK) {
        skiff_value_free(v);
        if (unit_now() > deadline)
            FAIL("the result was still there %.0f s after a 1 s retention", itest_scale(15));
        itest_sleep(0.1);
    }
    ASSERT_SKIFF(rc, SKIFF_ERR_OUTPUT_EXPIRED, &err);
    ASSERT_EQ_STR(err.type, "OutputExpiredError");
    skiff_error_clear(&err);
    /* ... every time, also over a restart. */
    ASSERT_SKIFF(skiff_call_get(done, 5, &v, &err), SKIFF_ERR_OUTPUT_EXPIRED, &err);
    skiff_error_clear(&err);

    ASSERT_SKIFF(skiff_call_get(running, 0, &v, &err), SKIFF_ERR_TIMEOUT, &err);
    skiff_error_clear(&err);

    struct itest_run r = itest_cli(NULL, "get", skiff_call_id(done), NULL);
    ASSERT_EQ_INT(r.status, 1); /* a failure, not 124 (still running) */
    ASSERT_STR_CONTAINS(r.err, "OutputExpired");
    itest_run_free(&r);
    r = itest_cli(NULL, "get", skiff_call_id(running), "--timeout", "0", NULL);
    ASSERT_EQ_INT(r.status, 124);
    itest_run_free(&r);

    char id[40];
    snprintf(id, sizeof id, "%s", skiff_call_id(done));
    skiff_call_free(done);
    skiff_call_free(running);
    skiff_function_free(echo);
    skiff_function_free(slow);
    skiff_client_close(c);

    itest_server_stop(&own);
    itest_server_start(&own, opts);
    c = itest_connect();
    skiff_call *h = NULL;
    ASSERT_SKIFF_OK(skiff_call_from_id(c, id, &h, &err), &err);
    ASSERT_SKIFF(skiff_call_get(h, 0, &v, &err), SKIFF_ERR_OUTPUT_EXPIRED, &err);
    skiff_error_clear(&err);
    skiff_call_free(h);
    skiff_client_close(c);
    itest_server_stop(&own);
}
