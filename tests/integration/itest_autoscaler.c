/*
 * itest_autoscaler.c - issue 4, point 2 against a real skiffd: the autoscaler's settings changed
 * on a live function (skiff_function_update_autoscaler, keep_warm) and what they do: a burst
 * held to max_containers, min_containers kept warm after the idle window, buffer_containers
 * spare while busy, scale-down after scaledown_window; stats (backlog, containers, running,
 * headroom) while a burst runs; bad settings refused; a redeploy resets everything.
 */
#include "itest.h"

static void itest_setup(void)
{
    itest_deploy("tests/integration/apps/probe.c");
}

static void set(skiff_function *fn, int64_t min, int64_t max, int64_t buffer, double window)
{
    skiff_autoscaler as = SKIFF_AUTOSCALER_INIT;
    as.min_containers = min;
    as.max_containers = max;
    as.buffer_containers = buffer;
    as.scaledown_window = window;
    skiff_autoscaler now;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_update_autoscaler(fn, &as, &now, &err), &err);
    if (min != SKIFF_UNSET)
        ASSERT_EQ_INT(now.min_containers, min);
    if (max != SKIFF_UNSET)
        ASSERT_EQ_INT(now.max_containers, max);
}

/* Live (not stopping) containers of itest-probe's function. */
static int live(const char *function)
{
    return itest_container_count("itest-probe", function, "idle", NULL, 0) +
           itest_container_count("itest-probe", function, "busy", NULL, 0) +
           itest_container_count("itest-probe", function, "starting", NULL, 0);
}

TEST(burst_held_to_max_containers_with_stats)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "sleep_ms");
    set(fn, SKIFF_UNSET, 2, SKIFF_UNSET, SKIFF_UNSET);
    skiff_value *xs = skiff_value_list();
    for (int i = 0; i < 10; i++)
        skiff_list_append(xs, skiff_value_int(200));
    const skiff_value *lists[] = {xs};
    skiff_call *call = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_spawn_map(fn, lists, 1, NULL, &call, &err), &err);
    int most = 0;
    bool saw_backlog = false;
    double t0 = unit_now();
    while (unit_now() - t0 < itest_scale(0.8)) {
        int n = live("sleep_ms");
        most = n > most ? n : most;
        skiff_function_stats st;
        ASSERT_SKIFF_OK(skiff_function_get_current_stats(fn, &st, &err), &err);
        ASSERT_LE_INT(st.num_total_runners, 2);
        ASSERT_LE_INT(st.num_running_inputs, 2);
        ASSERT_GE_INT(st.input_headroom, 0);
        if (st.backlog > 0)
            saw_backlog = true;
        itest_sleep(0.03);
    }
    ASSERT_LE_INT(most, 2);
    ASSERT_GE_INT(most, 1);
    ASSERT_TRUE(saw_backlog);
    skiff_value *v = NULL;
    ASSERT_SKIFF_OK(skiff_call_get_index(call, 9, 30, &v, &err), &err);
    skiff_value_free(v);
    skiff_call_free(call);
    skiff_value_free(xs);
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(min_containers_kept_warm_after_the_window)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "pid");
    set(fn, 2, SKIFF_UNSET, SKIFF_UNSET, 1.0);
    WAIT_UNTIL(live("pid") == 2, 20, "two warm containers");
    itest_sleep(2.5); /* past the idle window */
    ASSERT_EQ_INT(live("pid"), 2);
    /* keep_warm(0): nothing kept, they stop after the window. */
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_keep_warm(fn, 0, &err), &err);
    WAIT_UNTIL(live("pid") == 0, 20, "the idle containers to stop");
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(buffer_containers_spare_while_busy)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "slower_first");
    set(fn, 0, 8, 2, 1.0);
    /* One long input (x = 0 sleeps 80 ms; several of them keep it busy). */
    skiff_value *xs = itest_json("[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]");
    const skiff_value *lists[] = {xs};
    skiff_map *m = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_map_options one = {.max_outstanding = 1};
    ASSERT_SKIFF_OK(skiff_function_map(fn, lists, 1, &one, &m, &err), &err);
    bool spare = false;
    skiff_map_output o = {0};
    int rc;
    while ((rc = skiff_map_next(m, &o, &err)) == SKIFF_OK) {
        skiff_map_output_clear(&o);
        if (itest_container_count("itest-probe", "slower_first", "idle", NULL, 0) >= 1)
            spare = true;
    }
    ASSERT_SKIFF(rc, SKIFF_DONE, &err);
    ASSERT_TRUE(spare);
    skiff_map_free(m);
    skiff_value_free(xs);
    set(fn, SKIFF_UNSET, SKIFF_UNSET, 0, SKIFF_UNSET);
    WAIT_UNTIL(live("slower_first") == 0, 20, "scale-down after the window");
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(bad_settings_refused_and_redeploy_resets)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "serial");
    skiff_autoscaler as = SKIFF_AUTOSCALER_INIT;
    skiff_error err = SKIFF_ERROR_INIT;
    as.min_containers = 5;
    as.max_containers = 2;
    ASSERT_SKIFF(skiff_function_update_autoscaler(fn, &as, NULL, &err), SKIFF_ERR_INVALID, &err);
    skiff_error_clear(&err);
    as = (skiff_autoscaler)SKIFF_AUTOSCALER_INIT;
    as.max_containers = 0;
    ASSERT_SKIFF(skiff_function_update_autoscaler(fn, &as, NULL, &err), SKIFF_ERR_INVALID, &err);
    skiff_error_clear(&err);
    as = (skiff_autoscaler)SKIFF_AUTOSCALER_INIT;
    ASSERT_SKIFF(skiff_function_update_autoscaler(fn, &as, NULL, &err), SKIFF_ERR_INVALID, &err);
    skiff_error_clear(&err);
    set(fn, SKIFF_UNSET, 3, SKIFF_UNSET, 30.0);
    itest_deploy("tests/integration/apps/probe.c");
    skiff_autoscaler now;
    as = (skiff_autoscaler)SKIFF_AUTOSCALER_INIT;
    as.buffer_containers = 0;
    ASSERT_SKIFF_OK(skiff_function_update_autoscaler(fn, &as, &now, &err), &err);
    ASSERT_EQ_INT(now.max_containers, 1); /* as deployed: .max_containers = 1 */
    ASSERT_EQ_DOUBLE(now.scaledown_window, 60.0);
    skiff_function_free(fn);
    skiff_client_close(c);
}
