/*
 * itest_raw_schedule.c - the server's own checks of DEPLOY's schedules and ephemeral flag
 * (docs/protocol.md, DEPLOY), frame by frame against a real skiffd, as a client other than
 * `skiff deploy` (which checks first) would send them: a malformed cron, a period out of range,
 * both at once, a schedule on a generator, a web endpoint, a method or a class, or on a function
 * with a required parameter are InvalidErrors naming the problem; an ephemeral deploy never
 * replaces an app, and its app goes when the connection that deployed it closes.
 */
#include "itest.h"

#include "rawproto.h"

static void itest_setup(void)
{
    itest_deploy("examples/square.c");
}

/* Sends DEPLOY of app with one function entry given as JSON (and a class entry, or NULL);
 * returns the rid. The code is a placeholder: the server stores it without loading it. */
static uint64_t send_deploy(struct raw *r, const char *app, const char *fn_json,
                            const char *class_json, bool ephemeral)
{
    uint64_t rid = ++r->next_rid;
    skiff_value *fn = itest_json(fn_json);
    skiff_value *cls = class_json ? itest_json(class_json) : NULL;
    struct wire_writer w;
    wire_begin(&w, &r->out, OP_DEPLOY, rid, ephemeral ? 5 : 4);
    wire_str(&w, "app", app);
    wire_key(&w, "code");
    msgpack_pack_bin_with_body(&w.pk, "not an object", 13);
    wire_key(&w, "functions");
    wire_pack_array(&w, 1);
    ASSERT_EQ_INT(codec_pack_value(&w.pk, fn), SKIFF_OK);
    wire_key(&w, "classes");
    wire_pack_array(&w, cls ? 1 : 0);
    if (cls)
        ASSERT_EQ_INT(codec_pack_value(&w.pk, cls), SKIFF_OK);
    if (ephemeral)
        wire_bool(&w, "ephemeral", true);
    ASSERT_EQ_INT(wire_end(&w), SKIFF_OK);
    skiff_value_free(fn);
    skiff_value_free(cls);
    raw_send(r);
    return rid;
}

/* Deploying fn_json (and class_json) fails with InvalidError containing want. */
static void refused(struct raw *r, const char *fn_json, const char *class_json, const char *want)
{
    uint64_t rid = send_deploy(r, "raw-sched", fn_json, class_json, false);
    char *msg = raw_expect_error(r, rid, SKIFF_ERR_INVALID);
    if (!strstr(msg, want))
        FAIL("deploying %s: expected '%s' in the error, got '%s'", fn_json, want, msg);
    free(msg);
}

TEST(bad_schedules_are_invalid)
{
    struct raw r;
    raw_open(&r);
    raw_expect_ok(&r, 1);
    refused(&r, "{\"name\": \"f\", \"kind\": \"function\", \"cron\": \"61 * * * *\"}", NULL,
            "cron \"61 * * * *\": the minute field '61' is out of range 0-59");
    refused(&r, "{\"name\": \"f\", \"kind\": \"function\", \"cron\": \"* * *\"}", NULL,
            "has 3 fields; a cron schedule has 5");
    refused(&r, "{\"name\": \"f\", \"kind\": \"function\", \"cron\": 5}", NULL,
            "cron is not a string");
    refused(&r, "{\"name\": \"f\", \"kind\": \"function\", \"period_s\": 0.5}", NULL,
            "period_s 0.5 must be 1 s to a year");
    refused(&r, "{\"name\": \"f\", \"kind\": \"function\", \"period_s\": -1}", NULL,
            "period_s -1 must be 1 s to a year");
    refused(&r,
            "{\"name\": \"f\", \"kind\": \"function\", \"period_s\": 5, \"cron\": \"* * * * *\"}",
            NULL, "give either period_s or cron, not both");
    refused(&r, "{\"name\": \"f\", \"kind\": \"generator\", \"period_s\": 5}", NULL,
            "a generator cannot run on a schedule");
    refused(&r,
            "{\"name\": \"f\", \"kind\": \"web\", \"web\": {\"method\": \"GET\"}, \"period_s\": 5}",
            NULL, "a web endpoint cannot run on a schedule");
    refused(
        &r,
        "{\"name\": \"f\", \"kind\": \"function\", \"signature\": \"b, a:int?\", \"period_s\": 5}",
        NULL, "its parameter 'b' is required");
    refused(
        &r,
        "{\"name\": \"f\", \"kind\": \"function\", \"signature\": \"a:int?, b\", \"period_s\": 5}",
        NULL, "its signature is malformed");
    refused(&r, "{\"name\": \"C.m\", \"class\": \"C\", \"kind\": \"function\", \"period_s\": 5}",
            "{\"name\": \"C\"}", "a method cannot run on a schedule");
    refused(&r, "{\"name\": \"C.m\", \"class\": \"C\", \"kind\": \"function\"}",
            "{\"name\": \"C\", \"cron\": \"* * * * *\"}", "a class cannot run on a schedule");
    raw_close(&r);
    struct itest_run run = itest_cli(NULL, "app", "list", "--json", NULL);
    ASSERT_EQ_INT(run.status, 0);
    if (strstr(run.out, "raw-sched"))
        FAIL("a refused deploy is listed: %s", run.out);
    itest_run_free(&run);
}

/* True while `skiff app list` names app. */
static bool listed(const char *app)
{
    struct itest_run run = itest_cli(NULL, "app", "list", "--json", NULL);
    bool yes = run.status == 0 && strstr(run.out, app);
    itest_run_free(&run);
    return yes;
}

TEST(ephemeral_app_goes_with_its_connection)
{
    struct raw r;
    raw_open(&r);
    raw_expect_ok(&r, 1);
    static const char fn[] = "{\"name\": \"f\", \"kind\": \"function\", \"period_s\": 3600}";
    uint64_t rid = send_deploy(&r, "my-shared-app", fn, NULL, true);
    char *msg = raw_expect_error(&r, rid, SKIFF_ERR_INVALID);
    if (!strstr(msg, "an ephemeral app cannot replace app 'my-shared-app', which is deployed"))
        FAIL("unexpected error: %s", msg);
    free(msg);
    rid = send_deploy(&r, "raw-ephemeral", fn, NULL, true);
    raw_expect_ok(&r, rid);
    ASSERT_TRUE(listed("raw-ephemeral"));
    /* Its schedule never runs: stats show none. */
    struct itest_run run = itest_cli(NULL, "stats", "raw-ephemeral", "f", "--json", NULL);
    ASSERT_EQ_INT(run.status, 0);
    if (strstr(run.out, "\"schedule\""))
        FAIL("an ephemeral app's function has a schedule: %s", run.out);
    itest_run_free(&run);
    raw_close(&r);
    int waited = 0;
    while (listed("raw-ephemeral")) {
        if (++waited > 200)
            FAIL("the ephemeral app is still listed 10 s after its connection closed");
        itest_sleep(0.05);
    }
    ASSERT_TRUE(listed("my-shared-app"));
}
