/*
 * itest_spawn.c - integration tests of issue 2, point 4 through the C API against a real
 * skiffd: spawn and come back later (get with timeout 0 polls once, get waits, get again, from
 * another connection and another process by id), gather (argument order, first failure), and
 * cancel (pending inputs never run, running ones stop, waiters get CancelledError,
 * --terminate-containers kills the container).
 */
#include "itest.h"

static void itest_setup(void)
{
    itest_deploy("examples/jobs.c");
    itest_deploy("tests/integration/apps/probe.c");
}

/* A path in this test's temporary directory (static storage, one per slot). */
static const char *marker(int slot, const char *name)
{
    static char paths[4][ITEST_FILE];
    static char dir[ITEST_PATH];
    if (!dir[0])
        snprintf(dir, sizeof dir, "%s", itest_tmpdir("markers"));
    snprintf(paths[slot], sizeof paths[slot], "%s/%s", dir, name);
    return paths[slot];
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* The marker at path holds a whole line (the pid is written just after the file is created). */
static bool marked(const char *path)
{
    char *text = itest_read_file(path);
    bool whole = text && strchr(text, '\n');
    free(text);
    return whole;
}

TEST(spawn_get_poll_wait_again)
{
    skiff_client *c = itest_connect();
    skiff_function *train = itest_lookup(c, "example", "train_model");
    double t0 = unit_now();
    skiff_call *call = itest_spawn_json(train, "[\"job-1\", {\"seconds\": 2}]", NULL);
    ASSERT_LT_INT((unit_now() - t0) * 1000, itest_scale(1) * 1000); /* returns at once */
    const char *id = skiff_call_id(call);
    ASSERT_NOT_NULL(id);
    ASSERT(!strncmp(id, "fc-", 3));
    ASSERT_EQ_UINT(strlen(id), 29);

    /* timeout 0 polls once: "not finished yet", at once. */
    skiff_value *v = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    double t1 = unit_now();
    ASSERT_SKIFF(skiff_call_get(call, 0, &v, &err), SKIFF_ERR_TIMEOUT, &err);
    ASSERT_LT_INT((unit_now() - t1) * 1000, itest_scale(0.5) * 1000);
    ASSERT_EQ_STR(err.type, "TimeoutError");
    ASSERT_NULL(v);
    skiff_error_clear(&err);
    /* A short timeout waits about that long. */
    t1 = unit_now();
    ASSERT_SKIFF(skiff_call_get(call, 0.3, &v, &err), SKIFF_ERR_TIMEOUT, &err);
    ASSERT_GE_INT((unit_now() - t1) * 1000, 250);
    skiff_error_clear(&err);

    /* Without a limit it waits for the result. */
    v = itest_get(call, SKIFF_WAIT_FOREVER);
    ASSERT_GE_INT((unit_now() - t0) * 1000, 1900); /* it did sleep its 2 s */
    ASSERT_JSON(v, "{\"job_id\": \"job-1\", \"status\": \"done\"}");
    skiff_value_free(v);
    /* And again, with timeout 0 now that it is done. */
    v = itest_get(call, 0);
    ASSERT_JSON(v, "{\"job_id\": \"job-1\", \"status\": \"done\"}");
    skiff_value_free(v);

    /* From another connection, by id. */
    skiff_client *c2 = itest_connect();
    skiff_call *again = NULL;
    ASSERT_SKIFF_OK(skiff_call_from_id(c2, id, &again, &err), &err);
    ASSERT_EQ_STR(skiff_call_id(again), id);
    v = itest_get(again, 5);
    ASSERT_JSON(v, "{\"job_id\": \"job-1\", \"status\": \"done\"}");
    skiff_value_free(v);
    skiff_call_free(again);
    skiff_client_close(c2);

    /* From another process: the CLI. */
    struct itest_run r = itest_cli(NULL, "get", id, NULL);
    ASSERT_EQ_INT(r.status, 0);
    skiff_value *printed = itest_json(r.out);
    ASSERT_JSON(printed, "{\"job_id\": \"job-1\", \"status\": \"done\"}");
    skiff_value_free(printed);
    itest_run_free(&r);

    skiff_call_free(call);
    skiff_function_free(train);
    skiff_client_close(c);
}

/* A call spawned by one process, waited for by another that only knows the id. */
TEST(get_from_another_process_while_running)
{
    skiff_client *c = itest_connect();
    skiff_function *train = itest_lookup(c, "example", "train_model");
    skiff_call *call = itest_spawn_json(train, "[\"job-x\", {\"seconds\": 1}]", NULL);
    char id[64];
    snprintf(id, sizeof id, "%s", skiff_call_id(call));
    skiff_call_free(call);
    skiff_function_free(train);
    skiff_client_close(c); /* the spawning connection is gone; the call goes on */

    fflush(stdout);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        skiff_client *c2 = itest_connect();
        skiff_call *h = NULL;
        skiff_error err = SKIFF_ERROR_INIT;
        ASSERT_SKIFF_OK(skiff_call_from_id(c2, id, &h, &err), &err);
        skiff_value *v = itest_get(h, SKIFF_WAIT_FOREVER);
        ASSERT_JSON(v, "{\"job_id\": \"job-x\", \"status\": \"done\"}");
        skiff_value_free(v);
        skiff_call_free(h);
        skiff_client_close(c2);
        exit(0);
    }
    int status;
    ASSERT_EQ_INT(waitpid(pid, &status, 0), pid);
    ASSERT(WIFEXITED(status));
    ASSERT_EQ_INT(WEXITSTATUS(status), 0);
}

TEST(call_from_id_unknown_or_malformed)
{
    skiff_client *c = itest_connect();
    skiff_call *call = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    /* Well formed, never issued. */
    int rc = skiff_call_from_id(c, "fc-00000000000000000000000000", &call, &err);
    if (rc == SKIFF_OK) {
        /* A lazy handle is allowed; then get must say not found. */
        skiff_value *v = NULL;
        skiff_error_clear(&err);
        ASSERT_SKIFF(skiff_call_get(call, 0, &v, &err), SKIFF_ERR_NOT_FOUND, &err);
        skiff_call_free(call);
    } else {
        ASSERT_SKIFF(rc, SKIFF_ERR_NOT_FOUND, &err);
    }
    skiff_error_clear(&err);
    ASSERT_SKIFF(skiff_call_from_id(c, "not-an-id", &call, &err), SKIFF_ERR_INVALID, &err);
    skiff_error_clear(&err);
    ASSERT_SKIFF(skiff_call_from_id(c, "fu-00000000000000000000000000", &call, &err),
                 SKIFF_ERR_INVALID, &err);
    skiff_error_clear(&err);
    /* The CLI: not found is a failure (1), a malformed id too, never a timeout (124). */
    struct itest_run r = itest_cli(NULL, "get", "fc-00000000000000000000000000", NULL);
    ASSERT_EQ_INT(r.status, 1);
    ASSERT_STR_CONTAINS(r.err, "NotFound");
    itest_run_free(&r);
    skiff_client_close(c);
}

TEST(gather_in_argument_order)
{
    skiff_client *c = itest_connect();
    skiff_function *train = itest_lookup(c, "example", "train_model");
    /* The first finishes last. */
    skiff_call *calls[3] = {
        itest_spawn_json(train, "[\"g0\", {\"seconds\": 2}]", NULL),
        itest_spawn_json(train, "[\"g1\", {\"seconds\": 1}]", NULL),
        itest_spawn_json(train, "[\"g2\", {\"seconds\": 0}]", NULL),
    };
    skiff_value *res[3] = {NULL, NULL, NULL};
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_call_gather(calls, 3, res, &err), &err);
    ASSERT_JSON(res[0], "{\"job_id\": \"g0\", \"status\": \"done\"}");
    ASSERT_JSON(res[1], "{\"job_id\": \"g1\", \"status\": \"done\"}");
    ASSERT_JSON(res[2], "{\"job_id\": \"g2\", \"status\": \"done\"}");
    for (int i = 0; i < 3; i++) {
        skiff_value_free(res[i]);
        skiff_call_free(calls[i]);
    }
    skiff_function_free(train);
    skiff_client_close(c);
}

TEST(gather_first_failure_in_argument_order)
{
    skiff_client *c = itest_connect();
    skiff_function *fail = itest_lookup(c, "itest-probe", "fail_after");
    skiff_function *echo = itest_lookup(c, "itest-probe", "echo");
    /* Argument order: ok, fails late ("second"), fails at once ("third"). gather reports the
     * failure of the second, although the third failed first. */
    skiff_call *calls[3] = {
        itest_spawn_json(echo, "[1]", NULL),
        itest_spawn_json(fail, "[\"second\", 800]", NULL),
        itest_spawn_json(fail, "[\"third\", 0]", NULL),
    };
    skiff_value *res[3] = {NULL, NULL, NULL};
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF(skiff_call_gather(calls, 3, res, &err), SKIFF_ERR_USER, &err);
    ASSERT_EQ_STR(err.type, "ValueError");
    ASSERT_STR_CONTAINS(err.message, "second");
    /* Nothing was written. */
    for (int i = 0; i < 3; i++)
        ASSERT_NULL(res[i]);
    skiff_error_clear(&err);
    for (int i = 0; i < 3; i++)
        skiff_call_free(calls[i]);
    skiff_function_free(fail);
    skiff_function_free(echo);
    skiff_client_close(c);
}

/* Waits (in a child process) for the call with id and exits 0 if it got CancelledError. */
static pid_t waiter(const char *id)
{
    fflush(stdout);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        skiff_client *c = itest_connect();
        skiff_call *h = NULL;
        skiff_error err = SKIFF_ERROR_INIT;
        ASSERT_SKIFF_OK(skiff_call_from_id(c, id, &h, &err), &err);
        skiff_value *v = NULL;
        ASSERT_SKIFF(skiff_call_get(h, SKIFF_WAIT_FOREVER, &v, &err), SKIFF_ERR_CANCELLED, &err);
        ASSERT_EQ_STR(err.type, "CancelledError");
        skiff_error_clear(&err);
        skiff_call_free(h);
        skiff_client_close(c);
        exit(0);
    }
    return pid;
}

static void expect_waiter_ok(pid_t pid)
{
    int status;
    ASSERT_EQ_INT(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        FAIL("the waiting process did not get CancelledError (status 0x%x)", status);
}

TEST(cancel_pending_never_runs)
{
    skiff_client *c = itest_connect();
    skiff_function *serial = itest_lookup(c, "itest-probe", "serial"); /* one container */
    const char *busy = marker(0, "busy-started");
    const char *ran = marker(1, "pending-ran");
    char args[2 * ITEST_FILE];
    snprintf(args, sizeof args, "[1500]");
    skiff_value *a = itest_json(args);
    skiff_value *k = skiff_value_map();
    skiff_map_set(k, "before", skiff_value_string(busy));
    skiff_call *first = NULL, *pending = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_spawn(serial, a, k, &first, &err), &err);
    WAIT_UNTIL(exists(busy), 20, "the first input to start");
    /* The only container is busy: this one waits in the queue. */
    skiff_value *k2 = skiff_value_map();
    skiff_map_set(k2, "before", skiff_value_string(ran));
    skiff_value *a2 = itest_json("[0]");
    ASSERT_SKIFF_OK(skiff_function_spawn(serial, a2, k2, &pending, &err), &err);
    pid_t w = waiter(skiff_call_id(pending));
    itest_sleep(0.2); /* let the waiter's GET reach the server (a late one sees the same) */
    ASSERT_SKIFF_OK(skiff_call_cancel(pending, false, &err), &err);

    skiff_value *v = NULL;
    ASSERT_SKIFF(skiff_call_get(pending, 5, &v, &err), SKIFF_ERR_CANCELLED, &err);
    skiff_error_clear(&err);
    expect_waiter_ok(w);
    /* The first completes normally, and the container is free again: the cancelled input
     * still never runs (it is not retried). */
    v = itest_get(first, SKIFF_WAIT_FOREVER);
    skiff_value_free(v);
    char *json = itest_call_json(serial, "[0]", NULL);
    free(json);
    ASSERT_FALSE(exists(ran));
    /* Cancelling again, or a finished call, changes nothing and succeeds. */
    ASSERT_SKIFF_OK(skiff_call_cancel(pending, false, &err), &err);
    ASSERT_SKIFF_OK(skiff_call_cancel(first, false, &err), &err);
    v = itest_get(first, 0);
    skiff_value_free(v);
    ASSERT_SKIFF(skiff_call_get(pending, 0, &v, &err), SKIFF_ERR_CANCELLED, &err);
    skiff_error_clear(&err);

    skiff_value_free(a);
    skiff_value_free(k);
    skiff_value_free(a2);
    skiff_value_free(k2);
    skiff_call_free(first);
    skiff_call_free(pending);
    skiff_function_free(serial);
    skiff_client_close(c);
}

TEST(cancel_running_stops_it)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "sleep_ms");
    const char *started = marker(0, "running-started");
    const char *finished = marker(1, "running-finished");
    skiff_value *a = itest_json("[3000]");
    skiff_value *k = skiff_value_map();
    skiff_map_set(k, "before", skiff_value_string(started));
    skiff_map_set(k, "after", skiff_value_string(finished));
    skiff_call *call = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_spawn(fn, a, k, &call, &err), &err);
    WAIT_UNTIL(exists(started), 20, "the input to start");
    pid_t w = waiter(skiff_call_id(call));
    itest_sleep(0.2);
    double t0 = unit_now();
    ASSERT_SKIFF_OK(skiff_call_cancel(call, false, &err), &err);
    skiff_value *v = NULL;
    ASSERT_SKIFF(skiff_call_get(call, 10, &v, &err), SKIFF_ERR_CANCELLED, &err);
    ASSERT_LT_INT((unit_now() - t0) * 1000, itest_scale(2) * 1000); /* not after its 3 s */
    skiff_error_clear(&err);
    expect_waiter_ok(w);
    /* It was stopped: it never got to the end (give it the time it would have needed). */
    itest_sleep(3.2 - (unit_now() - t0));
    ASSERT_FALSE(exists(finished));
    /* Never retried: still cancelled. */
    ASSERT_SKIFF(skiff_call_get(call, 0, &v, &err), SKIFF_ERR_CANCELLED, &err);
    skiff_error_clear(&err);
    /* The function keeps working. */
    char *json = itest_call_json(fn, "[0]", NULL);
    free(json);
    skiff_value_free(a);
    skiff_value_free(k);
    skiff_call_free(call);
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(cancel_terminate_containers_kills_it)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "sleep_ms");
    const char *started = marker(0, "terminate-started");
    skiff_value *a = itest_json("[20000]");
    skiff_value *k = skiff_value_map();
    skiff_map_set(k, "before", skiff_value_string(started));
    skiff_call *call = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_spawn(fn, a, k, &call, &err), &err);
    WAIT_UNTIL(marked(started), 20, "the input to start");
    char *text = itest_read_file(started);
    pid_t pid = (pid_t)atoi(text);
    free(text);
    ASSERT_GT_INT(pid, 1);
    ASSERT_EQ_INT(kill(pid, 0), 0);

    /* Through the CLI this time. */
    struct itest_run r =
        itest_cli(NULL, "cancel", skiff_call_id(call), "--terminate-containers", NULL);
    if (r.status != 0)
        FAIL("skiff cancel --terminate-containers: exit %d: %s", r.status, r.err);
    itest_run_free(&r);
    skiff_value *v = NULL;
    ASSERT_SKIFF(skiff_call_get(call, 10, &v, &err), SKIFF_ERR_CANCELLED, &err);
    skiff_error_clear(&err);
    /* The container process is gone (not only told to stop). */
    WAIT_UNTIL(kill(pid, 0) != 0, 5, "the container to be killed");
    r = itest_cli(NULL, "get", skiff_call_id(call), NULL);
    ASSERT_EQ_INT(r.status, 1);
    ASSERT_STR_CONTAINS(r.err, "Cancel");
    itest_run_free(&r);

    skiff_value_free(a);
    skiff_value_free(k);
    skiff_call_free(call);
    skiff_function_free(fn);
    skiff_client_close(c);
}
