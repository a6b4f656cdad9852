/*
 * itest_logs.c - issue 4, point 9 against a real skiffd: what a container prints on stdout and
 * stderr is captured line by line, tagged with the input that printed it (one input at a time)
 * and the stream, kept per app, filtered by function, cut to the last N lines, and followed as
 * it comes (`skiff logs APP [FUNCTION] [--follow] [--tail N] [--json]`).
 */
#include "itest.h"

static void itest_setup(void)
{
    itest_deploy("tests/integration/apps/probe.c");
}

TEST(lines_tagged_with_input_and_stream)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "shout");
    skiff_call *call = itest_spawn_json(fn, "[\"hello logs\"]", NULL);
    skiff_value *v = itest_get(call, 30);
    skiff_value_free(v);
    /* The pipe may deliver the lines just after the output: wait for them. */
    char *out = NULL;
    double t0 = unit_now();
    for (;;) {
        struct itest_run r = itest_cli(NULL, "logs", "itest-probe", "shout", "--json", NULL);
        ASSERT_EQ_INT(r.status, 0);
        free(r.err);
        if (itest_count(r.out, "hello logs") >= 2) {
            out = r.out;
            break;
        }
        free(r.out);
        if (unit_now() - t0 > itest_scale(10))
            FAIL("the lines never showed up in the logs");
        itest_sleep(0.05);
    }
    /* One JSON array per line: [ts, container, input, stream, text, function]. */
    ASSERT_STR_CONTAINS(out, "\"stdout\",\"hello logs\"");
    ASSERT_STR_CONTAINS(out, "\"stderr\",\"err: hello logs\"");
    skiff_value *first = itest_json(strtok(out, "\n"));
    ASSERT_EQ_INT(skiff_value_type(first), SKIFF_LIST);
    const char *ct = skiff_value_get_string(skiff_list_get(first, 1), NULL);
    const char *in = skiff_value_get_string(skiff_list_get(first, 2), NULL);
    ASSERT_NOT_NULL(ct);
    ASSERT_EQ_INT(strncmp(ct, "ta-", 3), 0);
    ASSERT_NOT_NULL(in);
    ASSERT_EQ_INT(strncmp(in, "in-", 3), 0);
    skiff_value_free(first);
    free(out);
    /* Another function's filter does not show them; the app's does. */
    struct itest_run r = itest_cli(NULL, "logs", "itest-probe", "echo", "--json", NULL);
    ASSERT_EQ_INT(r.status, 0);
    ASSERT_EQ_INT(itest_count(r.out, "hello logs"), 0);
    itest_run_free(&r);
    r = itest_cli(NULL, "logs", "itest-probe", NULL);
    ASSERT_EQ_INT(r.status, 0);
    ASSERT_STR_CONTAINS(r.out, "hello logs");
    itest_run_free(&r);
    skiff_call_free(call);
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(tail_and_unknown_app)
{
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "shout");
    for (int i = 0; i < 5; i++) {
        char args[64];
        snprintf(args, sizeof args, "[\"line %d\"]", i);
        char *json = itest_call_json(fn, args, NULL);
        free(json);
    }
    double t0 = unit_now();
    for (;;) {
        struct itest_run r = itest_cli(NULL, "logs", "itest-probe", "shout", "--tail", "2", NULL);
        ASSERT_EQ_INT(r.status, 0);
        bool done = strstr(r.out, "err: line 4") != NULL;
        if (done) {
            ASSERT_EQ_INT(itest_count(r.out, "\n"), 2);
            ASSERT_STR_CONTAINS(r.out, "line 4");
            ASSERT_EQ_INT(itest_count(r.out, "line 3"), 0);
        }
        itest_run_free(&r);
        if (done)
            break;
        if (unit_now() - t0 > itest_scale(10))
            FAIL("the last lines never showed up");
        itest_sleep(0.05);
    }
    struct itest_run r = itest_cli(NULL, "logs", "no-such-app", NULL);
    ASSERT_EQ_INT(r.status, 1);
    ASSERT_STR_CONTAINS(r.err, "NotFoundError");
    itest_run_free(&r);
    skiff_function_free(fn);
    skiff_client_close(c);
}

TEST(follow_gets_new_lines)
{
    char out[ITEST_FILE];
    snprintf(out, sizeof out, "%s/follow.txt", itest_tmpdir("follow"));
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        char skiff[PATH_MAX];
        snprintf(skiff, sizeof skiff, "%s/bin/skiff", itest_build());
        execl(skiff, "skiff", "logs", "itest-probe", "shout", "--follow", "--tail", "0",
              (char *)NULL);
        _exit(127);
    }
    itest_sleep(0.3);
    skiff_client *c = itest_connect();
    skiff_function *fn = itest_lookup(c, "itest-probe", "shout");
    char *json = itest_call_json(fn, "[\"followed line\"]", NULL);
    free(json);
    double t0 = unit_now();
    bool seen = false;
    while (!seen && unit_now() - t0 < itest_scale(10)) {
        char *text = itest_read_file(out);
        seen = text && strstr(text, "followed line");
        free(text);
        if (!seen)
            itest_sleep(0.05);
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    ASSERT_TRUE(seen);
    skiff_function_free(fn);
    skiff_client_close(c);
}
