/*
 * itest_faults.c - integration tests of issue 2, point 5 (the failures that are not the
 * function's own errors) through the C API against a real skiffd: a function that crashes its
 * container (segfault, abort, exit) gives the caller a clear error while the server and other
 * containers carry on and a fresh container takes the next input; a function past its timeout
 * gets FunctionTimeoutError and its container is killed; payloads over the limit are refused
 * with RequestSizeError (a server started with --max-payload), never truncated.
 */
#include "itest.h"

static void itest_setup(void)
{
    itest_deploy("tests/integration/apps/probe.c");
}

/* Calls fn with args, expecting RemoteError; returns its message (malloc'd). */
static char *expect_remote_error(skiff_function *fn, const char *args)
{
    skiff_error err = itest_call_fails(fn, args, NULL, SKIFF_ERR_REMOTE);
    ASSERT_EQ_STR(err.type, "RemoteError");
    char *msg = strdup(err.message);
    skiff_error_clear(&err);
    return msg;
}

/* After a crash: the same client and a fresh container serve the next input. */
static void still_serving(skiff_client *c, int64_t old_pid)
{
    skiff_function *pid = itest_lookup(c, "itest-probe", "pid");
    skiff_value *res = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_remote(pid, NULL, NULL, &res, &err), &err);
    ASSERT_GT_INT(skiff_value_get_int(res), 1);
    ASSERT_NE_INT(skiff_value_get_int(res), old_pid);
    skiff_value_free(res);
    skiff_function_free(pid);
}

/* A long input on another function keeps running through the crashes of this test. */
static skiff_call *bystander(skiff_client *c)
{
    skiff_function *fn = itest_lookup(c, "itest-probe", "sleep_ms");
    skiff_call *call = itest_spawn_json(fn, "[1500]", NULL);
    skiff_function_free(fn);
    return call;
}

static void bystander_done(skiff_call *call)
{
    skiff_value *v = itest_get(call, SKIFF_WAIT_FOREVER);
    ASSERT_EQ_INT(skiff_value_type(v), SKIFF_INT);
    skiff_value_free(v);
    skiff_call_free(call);
}

TEST(segfault_is_a_clear_error)
{
    skiff_client *c = itest_connect();
    skiff_call *other = bystander(c);
    skiff_function *fn = itest_lookup(c, "itest-probe", "segv");
    char *msg = expect_remote_error(fn, "[]");
    /* Names what happened: the signal. */
    if (!strstr(msg, "SIGSEGV") && !strstr(msg, "signal 11") && !strstr(msg, "Segmentation"))
        FAIL("RemoteError message does not name the signal: %s", msg);
    free(msg);
    still_serving(c, 0);
    /* Again: a crash does not poison the function. */
    msg = expect_remote_error(fn, "[]");
    free(msg);
    bystander_done(other);
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(abort_is_a_clear_error)
{
    skiff_client *c = itest_connect();
    skiff_call *other = bystander(c);
    skiff_function *fn = itest_lookup(c, "itest-probe", "abort_now");
    char *msg = expect_remote_error(fn, "[]");
    if (!strstr(msg, "SIGABRT") && !strstr(msg, "signal 6") && !strstr(msg, "Abort"))
        FAIL("RemoteError message does not name the signal: %s", msg);
    free(msg);
    still_serving(c, 0);
    bystander_done(other);
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(exit_is_a_clear_error)
{
    skiff_client *c = itest_connect();
    skiff_call *other = bystander(c);
    skiff_function *fn = itest_lookup(c, "itest-probe", "exit_now");
    char *msg = expect_remote_error(fn, "[3]");
    ASSERT_STR_CONTAINS(msg, "3"); /* the exit status */
    free(msg);
    /* exit(0) in the middle of an input is a crash too, not a result. */
    msg = expect_remote_error(fn, "[0]");
    free(msg);
    still_serving(c, 0);
    bystander_done(other);
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(crash_through_spawn_and_get)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "segv");
    skiff_call *call = itest_spawn_json(fn, "[]", NULL);
    skiff_value *v = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF(skiff_call_get(call, SKIFF_WAIT_FOREVER, &v, &err), SKIFF_ERR_REMOTE, &err);
    skiff_error_clear(&err);
    /* Not retried into a different outcome: the same error when asked again. */
    ASSERT_SKIFF(skiff_call_get(call, 0, &v, &err), SKIFF_ERR_REMOTE, &err);
    skiff_error_clear(&err);
    /* The CLI shows it with exit status 1. */
    struct itest_run r = itest_cli(NULL, "get", skiff_call_id(call), NULL);
    ASSERT_EQ_INT(r.status, 1);
    ASSERT_STR_CONTAINS(r.err, "RemoteError");
    itest_run_free(&r);
    skiff_call_free(call);
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(function_timeout)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "too_slow"); /* timeout 1 s */
    double t0 = unit_now();
    skiff_error err = itest_call_fails(fn, "[]", NULL, SKIFF_ERR_FUNCTION_TIMEOUT);
    double took = unit_now() - t0;
    ASSERT_EQ_STR(err.type, "FunctionTimeoutError");
    skiff_error_clear(&err);
    ASSERT_GE_INT(took * 1000, 900);                    /* not before its timeout */
    ASSERT_LT_INT(took * 1000, itest_scale(10) * 1000); /* and not the 30 s it sleeps */
    /* Its container was killed: no container of too_slow is busy any more. */
    WAIT_UNTIL(itest_container_count("itest-probe", "too_slow", "busy", NULL, 0) == 0, 5,
               "the timed-out container to go");
    still_serving(c, 0);
    skiff_function_free(fn);
    skiff_client_close(c);
}

/* Payload limits: a server of its own with a 64 KiB limit. */
TEST(payload_over_limit)
{
    static struct itest_server small;
    const char *opts[] = {"--max-payload", "65536", NULL};
    itest_server_start(&small, opts);
    itest_deploy("tests/integration/apps/probe.c");
    skiff_client *c = itest_connect();
    skiff_function *echo = itest_lookup(c, "itest-probe", "echo");
    skiff_function *big = itest_lookup(c, "itest-probe", "big");

    /* Arguments: just under the limit pass whole, over it are refused. */
    size_t n = 60000;
    char *blob = malloc(70000);
    memset(blob, 'z', 70000);
    skiff_value *args = skiff_value_list_of(1, skiff_value_stringn(blob, n)), *res = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_remote(echo, args, NULL, &res, &err), &err);
    size_t got = 0;
    ASSERT_NOT_NULL(skiff_value_get_string(res, &got));
    ASSERT_EQ_UINT(got, n); /* whole, not truncated */
    skiff_value_free(res);
    skiff_value_free(args);

    args = skiff_value_list_of(1, skiff_value_stringn(blob, 70000));
    ASSERT_SKIFF(skiff_function_remote(echo, args, NULL, &res, &err), SKIFF_ERR_REQUEST_SIZE, &err);
    ASSERT_EQ_STR(err.type, "RequestSizeError");
    skiff_error_clear(&err);
    skiff_call *call = NULL;
    ASSERT_SKIFF(skiff_function_spawn(echo, args, NULL, &call, &err), SKIFF_ERR_REQUEST_SIZE, &err);
    skiff_error_clear(&err);
    skiff_value_free(args);

    /* Results over the limit: an error, not a truncated value. */
    err = itest_call_fails(big, "[200000]", NULL, SKIFF_ERR_REQUEST_SIZE);
    skiff_error_clear(&err);
    /* The connection and the server are fine afterwards. */
    char *json = itest_call_json(echo, "[\"after\"]", NULL);
    ASSERT_EQ_STR(json, "\"after\"");
    free(json);
    json = itest_call_json(big, "[3]", NULL);
    ASSERT_EQ_STR(json, "{\"$bytes\":\"AAAA\"}");
    free(json);

    /* The CLI reports the same. */
    char *arg = malloc(70010);
    arg[0] = '"';
    memset(arg + 1, 'q', 70000);
    strcpy(arg + 70001, "\"");
    struct itest_run r = itest_cli(NULL, "call", "itest-probe", "echo", arg, NULL);
    ASSERT_EQ_INT(r.status, 1);
    ASSERT_STR_CONTAINS(r.err, "RequestSizeError");
    itest_run_free(&r);
    free(arg);
    free(blob);
    skiff_function_free(echo);
    skiff_function_free(big);
    skiff_client_close(c);
    itest_server_stop(&small);
}

/* The default limit is 64 MiB: a few MiB go through whole. */
TEST(large_payload_under_default_limit)
{
    skiff_client *c = itest_connect();
    skiff_function *echo = itest_lookup(c, "itest-probe", "echo");
    size_t n = 5 << 20;
    char *blob = malloc(n);
    for (size_t i = 0; i < n; i++)
        blob[i] = (char)(i * 7);
    skiff_value *args = skiff_value_list_of(1, skiff_value_bytes(blob, n)), *res = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_remote(echo, args, NULL, &res, &err), &err);
    size_t got = 0;
    const void *p = skiff_value_get_bytes(res, &got);
    ASSERT_EQ_UINT(got, n);
    ASSERT(memcmp(p, blob, n) == 0);
    skiff_value_free(res);
    skiff_value_free(args);
    free(blob);
    skiff_function_free(echo);
    skiff_client_close(c);
}
