/*
 * itest_containers.c - integration tests of issue 2, points 7 (redeploy) and 8 (containers)
 * through the C API and the CLI against a real skiffd: containers start on demand and are
 * reused while warm (same pid), more than one runs when inputs queue up (up to the function's
 * maximum), idle ones stop after the function's scaledown window; a redeploy replaces the code
 * for new calls while a call already running finishes on the old code.
 */
#include "itest.h"

static void itest_setup(void)
{
    itest_deploy("tests/integration/apps/probe.c");
}

static int64_t call_pid(skiff_function *fn)
{
    skiff_value *res = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_remote(fn, NULL, NULL, &res, &err), &err);
    int64_t pid = skiff_value_get_int(res);
    skiff_value_free(res);
    ASSERT_GT_INT(pid, 1);
    return pid;
}

TEST(warm_container_reused)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "pid");
    int64_t first = call_pid(fn);
    for (int i = 0; i < 20; i++)
        ASSERT_EQ_INT(call_pid(fn), first);
    /* It is a separate process, listed by the server with that pid. */
    ASSERT_NE_INT(first, getpid());
    int64_t pids[8];
    int n = itest_container_count("itest-probe", "pid", NULL, pids, 8);
    ASSERT_EQ_INT(n, 1);
    ASSERT_EQ_INT(pids[0], first);
    /* From another connection too. */
    skiff_client *c2 = itest_connect();
    skiff_function *fn2 = itest_lookup(c2, "itest-probe", "pid");
    ASSERT_EQ_INT(call_pid(fn2), first);
    skiff_function_free(fn2);
    skiff_client_close(c2);
    skiff_function_free(fn);
    skiff_client_close(c);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

TEST(scale_up_when_inputs_queue)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "sleep_ms"); /* max_containers 4 */
    enum { N = 8 };
    skiff_call *calls[N];
    for (int i = 0; i < N; i++)
        calls[i] = itest_spawn_json(fn, "[700]", NULL);
    /* While they run, the server lists more than one container of the function. */
    WAIT_UNTIL(itest_container_count("itest-probe", "sleep_ms", NULL, NULL, 0) > 1, 10,
               "a second container");
    int64_t pids[N];
    double t0 = unit_now();
    for (int i = 0; i < N; i++) {
        skiff_value *v = itest_get(calls[i], SKIFF_WAIT_FOREVER);
        pids[i] = skiff_value_get_int(v);
        skiff_value_free(v);
        skiff_call_free(calls[i]);
    }
    (void)t0;
    qsort(pids, N, sizeof pids[0], cmp_i64);
    int distinct = 1;
    for (int i = 1; i < N; i++)
        distinct += pids[i] != pids[i - 1];
    ASSERT_GT_INT(distinct, 1);
    ASSERT_LE_INT(distinct, 4); /* never more than the function's max_containers */
    ASSERT_LE_INT(itest_container_count("itest-probe", "sleep_ms", NULL, NULL, 0), 4);
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(max_containers_respected)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "serial"); /* max_containers 1 */
    enum { N = 4 };
    skiff_call *calls[N];
    double t0 = unit_now();
    for (int i = 0; i < N; i++)
        calls[i] = itest_spawn_json(fn, "[300]", NULL);
    int64_t first = 0;
    for (int i = 0; i < N; i++) {
        ASSERT_LE_INT(itest_container_count("itest-probe", "serial", NULL, NULL, 0), 1);
        skiff_value *v = itest_get(calls[i], SKIFF_WAIT_FOREVER);
        if (i == 0)
            first = skiff_value_get_int(v);
        ASSERT_EQ_INT(skiff_value_get_int(v), first); /* all on the one container */
        skiff_value_free(v);
        skiff_call_free(calls[i]);
    }
    ASSERT_GE_INT((unit_now() - t0) * 1000, N * 300 - 50); /* one after the other */
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(idle_container_stops_after_window)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "short_lived"); /* 1 s window */
    int64_t pid = call_pid(fn);
    ASSERT_EQ_INT(itest_container_count("itest-probe", "short_lived", NULL, NULL, 0), 1);
    double t0 = unit_now();
    WAIT_UNTIL(itest_container_count("itest-probe", "short_lived", NULL, NULL, 0) == 0, 10,
               "the idle container to stop");
    ASSERT_GE_INT((unit_now() - t0) * 1000, 700); /* not before its window */
    WAIT_UNTIL(kill((pid_t)pid, 0) != 0, 10, "the idle container's process to exit");
    /* The next call starts a fresh one. */
    ASSERT_NE_INT(call_pid(fn), pid);
    skiff_function_free(fn);
    skiff_client_close(c);
}

/* A container used within its window stays: the window counts from the last input. */
TEST(busy_container_not_stopped)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "short_lived");
    int64_t pid = call_pid(fn);
    for (int i = 0; i < 6; i++) {
        itest_sleep(0.4);
        ASSERT_EQ_INT(call_pid(fn), pid);
    }
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(redeploy_replaces_code_running_call_finishes_on_old)
{
    itest_deploy("tests/integration/apps/ver1.c");
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-versioned", "version");
    char *json = itest_call_json(fn, "[]", NULL);
    ASSERT_EQ_STR(json, "1");
    free(json);
    const char *id_before = skiff_function_id(fn);
    char keep[64];
    snprintf(keep, sizeof keep, "%s", id_before);

    /* A long call on version 1, running when version 2 is deployed. */
    skiff_call *old = itest_spawn_json(fn, "[4000]", NULL);
    WAIT_UNTIL(itest_container_count("itest-versioned", "version", "busy", NULL, 0) == 1, 10,
               "the version-1 call to run");
    itest_deploy("tests/integration/apps/ver2.c");
    /* (still running: the redeploy happened under it) */
    skiff_value *v = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF(skiff_call_get(old, 0, &v, &err), SKIFF_ERR_TIMEOUT, &err);
    skiff_error_clear(&err);

    /* New calls run the new code, through the same handle (callers keep working by name). */
    json = itest_call_json(fn, "[]", NULL);
    ASSERT_EQ_STR(json, "2");
    free(json);
    skiff_function *fresh = itest_lookup(c, "itest-versioned", "version");
    ASSERT_EQ_STR(skiff_function_id(fresh), keep); /* same function id across deploys */
    json = itest_call_json(fresh, "[]", NULL);
    ASSERT_EQ_STR(json, "2");
    free(json);
    /* The running one finishes on the old code. */
    v = itest_get(old, SKIFF_WAIT_FOREVER);
    ASSERT_EQ_INT(skiff_value_get_int(v), 1);
    skiff_value_free(v);

    /* The CLI agrees, and app list shows the new version. */
    struct itest_run r = itest_cli(NULL, "call", "itest-versioned", "version", NULL);
    ASSERT_EQ_INT(r.status, 0);
    ASSERT_EQ_STR(itest_chomp(r.out), "2");
    itest_run_free(&r);
    r = itest_cli(NULL, "app", "list", NULL);
    ASSERT_EQ_INT(r.status, 0);
    skiff_value *apps = itest_json(r.out);
    if (skiff_value_type(apps) == SKIFF_MAP)
        apps = skiff_value_copy(skiff_map_get(apps, "apps")); /* (leaks the outer map: fine) */
    bool seen = false;
    for (size_t i = 0; i < skiff_list_len(apps); i++) {
        const skiff_value *a = skiff_list_get(apps, i);
        const char *name = skiff_value_get_string(skiff_map_get(a, "name"), NULL);
        if (name && !strcmp(name, "itest-versioned")) {
            seen = true;
            ASSERT_EQ_INT(skiff_value_get_int(skiff_map_get(a, "version")), 2);
        }
    }
    ASSERT(seen);
    skiff_value_free(apps);
    itest_run_free(&r);

    skiff_call_free(old);
    skiff_function_free(fresh);
    skiff_function_free(fn);
    skiff_client_close(c);
}
