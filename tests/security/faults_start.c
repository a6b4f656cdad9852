/*
 * faults_start.c - a container that cannot start (issue 8, faults): with skiffd out of file
 * descriptors (its RLIMIT_NOFILE lowered under it with prlimit(1), a real EMFILE, after the
 * client connected), a call to a function with no container is not left pending: the server
 * retries the start with backoff, then fails the input with a RemoteError naming the cause.
 * Once descriptors are back, the next call runs. Needs prlimit (util-linux); skipped without.
 */
#include <dirent.h>
#include <sys/resource.h>

#include "itest.h"

static void itest_setup(void)
{
    itest_deploy("tests/security/apps/faults.c");
}

/* The lowest file descriptor number pid does not use: with RLIMIT_NOFILE at it, pid can open
 * no new descriptor. */
static int lowest_free_fd(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    static bool used[65536];
    memset(used, 0, sizeof used);
    DIR *d = opendir(path);
    ASSERT_NOT_NULL(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            long fd = strtol(e->d_name, NULL, 10);
            if (fd >= 0 && fd < 65536)
                used[fd] = true;
        }
    closedir(d);
    int fd = 0;
    while (fd < 65536 && used[fd])
        fd++;
    return fd;
}

static void set_nofile(pid_t pid, rlim_t soft, rlim_t hard)
{
    struct rlimit r = {soft, hard};
    if (prlimit(pid, RLIMIT_NOFILE, &r, NULL) < 0)
        FAIL("prlimit(%d, RLIMIT_NOFILE, %llu): %s", (int)pid, (unsigned long long)soft,
             strerror(errno));
}

/* Leaves pid no file descriptor to open; returns its limit before, for set_nofile. */
static struct rlimit starve(pid_t pid)
{
    struct rlimit old;
    ASSERT_EQ_INT(prlimit(pid, RLIMIT_NOFILE, NULL, &old), 0);
    set_nofile(pid, (rlim_t)lowest_free_fd(pid), old.rlim_max);
    return old;
}

/* With server s out of descriptors, a call to a function with no container fails with the
 * cause after the start was retried; then it runs again. */
static void start_failure_reported(const struct itest_server *s)
{
    skiff_client *c = itest_connect();
    skiff_function *ping = itest_lookup(c, "sec-faults", "ping");
    skiff_function *fn = itest_lookup(c, "sec-faults", "sleep_for");
    /* The connection is up (HELLO done) before the server runs out of descriptors. */
    free(itest_call_json(ping, "[]", NULL));
    struct rlimit old = starve(s->pid);

    double t0 = unit_now();
    skiff_error err = itest_call_fails(fn, "[0]", NULL, SKIFF_ERR_REMOTE);
    double took = unit_now() - t0;
    set_nofile(s->pid, old.rlim_cur, old.rlim_max);
    ASSERT_EQ_STR(err.type, "RemoteError");
    ASSERT_STR_CONTAINS(err.message, "could not start a container for sec-faults.sleep_for");
    /* The cause, as the kernel said it (uv_spawn's pipes, or the sandbox's socketpair). */
    if (!strcasestr(err.message, "too many open files"))
        FAIL("the error does not name the cause: %s", err.message);
    /* Retried with backoff (about 6 s in all), not failed at the first attempt, and not left
     * for the function's timeout. */
    if (took < 3.0 || took > itest_scale(60))
        FAIL("the start failure was reported after %.1f s (want 3 to 60)", took);
    skiff_error_clear(&err);
    char *log = itest_read_file(s->log);
    ASSERT_STR_CONTAINS(log, "cannot start a container for sec-faults.sleep_for");
    free(log);

    /* Descriptors are back: a call runs again. */
    char *res = itest_call_json(fn, "[0]", NULL);
    ASSERT_EQ_STR(res, "0.0");
    free(res);
    skiff_function_free(fn);
    skiff_function_free(ping);
    skiff_client_close(c);
}

TEST(start_failure_is_retried_then_reported)
{
    start_failure_reported(&itest_server);
}

/* The same with the server's default containers: sandboxed where the machine allows (their
 * socket pair and pipes are made by skiffd, not uv_spawn). */
TEST(sandboxed_start_failure_is_reported)
{
    static struct itest_server own;
    itest_server_start(&own, NULL);
    itest_deploy("tests/security/apps/faults.c");
    start_failure_reported(&own);
    itest_server_stop(&own);
}

TEST(a_passing_start_failure_is_retried_not_reported)
{
    skiff_client *c = itest_connect();
    skiff_function *ping = itest_lookup(c, "sec-faults", "ping");
    skiff_function *fn = itest_lookup(c, "sec-faults", "count");
    free(itest_call_json(ping, "[]", NULL));
    pid_t pid = itest_server.pid;
    struct rlimit old = starve(pid);
    /* A spawned generator that finds no descriptor for its container... */
    skiff_value *args = itest_json("[3, 0]");
    skiff_call *call = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_spawn_gen(fn, args, NULL, &call, &err), &err);
    skiff_value_free(args);
    /* ...and gets them back within the backoff: it runs, nothing failed. */
    itest_sleep(1.0);
    set_nofile(pid, old.rlim_cur, old.rlim_max);
    skiff_gen *g = NULL;
    ASSERT_SKIFF_OK(skiff_call_get_gen(call, &g, &err), &err);
    skiff_value *item = NULL;
    for (int i = 0; i < 3; i++) {
        ASSERT_SKIFF_OK(skiff_gen_next(g, &item, &err), &err);
        ASSERT_EQ_INT(skiff_value_get_int(item), i);
        skiff_value_free(item);
    }
    ASSERT_SKIFF(skiff_gen_next(g, &item, &err), SKIFF_DONE, &err);
    skiff_gen_free(g);
    skiff_call_free(call);
    char *log = itest_read_file(itest_server.log);
    ASSERT_STR_CONTAINS(log, "cannot start a container for sec-faults.count");
    free(log);
    skiff_function_free(fn);
    skiff_function_free(ping);
    skiff_client_close(c);
}
