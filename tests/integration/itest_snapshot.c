/*
 * itest_snapshot.c - snapshot starts (issue 4, point 8), against a real skiffd.
 *
 * The app (apps/snapshot.c) has a class whose enter_snap hook builds a table and notes its pid
 * in snap.log, and whose plain enter hook notes its pid in enter.log, both in the directory the
 * instance's `dir` parameter names: one directory per test, so one pool per test. The tests
 * prove that containers of a pool are forked from one template (the state is there, the
 * expensive hook ran once, in another process, the plain hook in each container), that a
 * forked container's crash still fails its input with the signal named, that a failing
 * enter_snap hook is an InitFailureError, that a redeploy retires the old template, that a pool
 * whose template died falls back to plain starts, and that no template or forked container
 * outlives the server.
 */
#include "itest.h"

#include <signal.h>

static void itest_setup(void)
{
    itest_deploy("tests/integration/apps/snapshot.c");
}

/* The sum of i * i for i < 4096: what the enter_snap hook's table adds up to. */
#define TABLE_SUM (4095LL * 4096 * 8191 / 6)

/* A method of the Snap instance for (dir, mode). */
struct snap {
    skiff_cls *cls;
    skiff_obj *obj;
    skiff_function *fn;
};

static struct snap snap_open(skiff_client *c, const char *dir, const char *mode, const char *method)
{
    struct snap s = {0};
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_cls_from_name(c, "itest-snapshot", "Snap", &s.cls, &err), &err);
    skiff_value *p = skiff_value_map();
    skiff_map_set(p, "dir", skiff_value_string(dir));
    if (mode)
        skiff_map_set(p, "mode", skiff_value_string(mode));
    ASSERT_SKIFF_OK(skiff_cls_instantiate(s.cls, p, &s.obj, &err), &err);
    ASSERT_SKIFF_OK(skiff_obj_method(s.obj, method, &s.fn, &err), &err);
    skiff_value_free(p);
    return s;
}

/* A client, and a fresh directory for the test's pool in dir (ITEST_PATH bytes). */
static skiff_client *begin(char *dir, const char *name)
{
    snprintf(dir, ITEST_PATH, "%s", itest_tmpdir(name));
    return itest_connect();
}

static void snap_close(struct snap *s)
{
    skiff_function_free(s->fn);
    skiff_obj_free(s->obj);
    skiff_cls_free(s->cls);
}

/* The lines of dir/name (0 when the file does not exist). */
static int lines_of(const char *dir, const char *name)
{
    char path[ITEST_FILE];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = itest_read_file(path);
    int n = text ? itest_count(text, "\n") : 0;
    free(text);
    return n;
}

/* True once pid is no process at all (not even a zombie). */
static bool gone(int64_t pid)
{
    return pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

/* One info() result: [sum, snap_pid, enter_pid, pid]. */
struct info {
    int64_t sum, snap_pid, enter_pid, pid;
};

static struct info info_of(const skiff_value *v)
{
    ASSERT_EQ_INT(skiff_list_len(v), 4);
    struct info in = {
        skiff_value_get_int(skiff_list_get(v, 0)), skiff_value_get_int(skiff_list_get(v, 1)),
        skiff_value_get_int(skiff_list_get(v, 2)), skiff_value_get_int(skiff_list_get(v, 3))};
    return in;
}

/* Calls info() once and returns what it saw. */
static struct info info_call(skiff_function *fn)
{
    skiff_value *a = itest_json("[]"), *v = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_remote(fn, a, NULL, &v, &err), &err);
    struct info in = info_of(v);
    skiff_value_free(v);
    skiff_value_free(a);
    return in;
}

/* Runs n info(ms) calls at once (so the pool grows to n containers) and returns their results
 * in out[0..n). */
static void info_parallel(skiff_function *fn, int n, int ms, struct info *out)
{
    skiff_call *calls[8];
    char args[32];
    snprintf(args, sizeof args, "[%d]", ms);
    for (int i = 0; i < n; i++)
        calls[i] = itest_spawn_json(fn, args, NULL);
    for (int i = 0; i < n; i++) {
        skiff_value *v = itest_get(calls[i], itest_scale(30));
        out[i] = info_of(v);
        skiff_value_free(v);
        skiff_call_free(calls[i]);
    }
}

TEST(snapshot_containers_are_forked_with_the_state_built_once)
{
    char dir[ITEST_PATH];
    skiff_client *c = begin(dir, "snap-forks");
    struct snap s = snap_open(c, dir, NULL, "info");
    struct info r[3];
    info_parallel(s.fn, 3, 1500, r);
    for (int i = 0; i < 3; i++) {
        /* The table the template built is in every container's copy of the state. */
        ASSERT_EQ_INT(r[i].sum, TABLE_SUM);
        /* It was built in one other process: the template. */
        ASSERT_EQ_INT(r[i].snap_pid, r[0].snap_pid);
        ASSERT_NE_INT(r[i].snap_pid, r[i].pid);
        /* The plain enter hook ran in the container itself. */
        ASSERT_EQ_INT(r[i].enter_pid, r[i].pid);
        for (int k = 0; k < i; k++)
            ASSERT_NE_INT(r[i].pid, r[k].pid);
    }
    /* The expensive hook ran once for the pool; the plain one once per container. */
    ASSERT_EQ_INT(lines_of(dir, "snap.log"), 1);
    ASSERT_EQ_INT(lines_of(dir, "enter.log"), 3);
    /* The server lists the forked containers with their real pids. */
    int64_t pids[8];
    int n = itest_container_count("itest-snapshot", "Snap", NULL, pids, 8);
    int found = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 3; k++)
            found += pids[i] == r[k].pid;
    ASSERT_EQ_INT(found, 3);
    /* The template is alive (it serves the next cold start) and is no container. */
    ASSERT(!gone(r[0].snap_pid));
    for (int i = 0; i < n; i++)
        ASSERT_NE_INT(pids[i], r[0].snap_pid);
    snap_close(&s);
    skiff_client_close(c);
}

TEST(snapshot_container_crash_names_the_signal)
{
    char dir[ITEST_PATH];
    skiff_client *c = begin(dir, "snap-crash");
    struct snap info = snap_open(c, dir, NULL, "info");
    struct snap die = snap_open(c, dir, NULL, "die");
    struct info before = info_call(info.fn);
    skiff_error err = itest_call_fails(die.fn, "[]", NULL, SKIFF_ERR_REMOTE);
    /* The template reaped the container and told the server how it died. */
    ASSERT_STR_CONTAINS(err.message, "killed by signal 6");
    ASSERT_STR_CONTAINS(err.message, "SIGABRT");
    skiff_error_clear(&err);
    /* The pool goes on; a new container is forked without building the table again. */
    struct info after = info_call(info.fn);
    ASSERT_EQ_INT(after.sum, TABLE_SUM);
    ASSERT_EQ_INT(after.snap_pid, before.snap_pid);
    ASSERT_EQ_INT(lines_of(dir, "snap.log"), 1);
    snap_close(&info);
    snap_close(&die);
    skiff_client_close(c);
}

TEST(snapshot_hook_failure_is_an_init_failure)
{
    char dir[ITEST_PATH];
    skiff_client *c = begin(dir, "snap-fail");
    struct snap s = snap_open(c, dir, "fail", "info");
    for (int i = 0; i < 2; i++) {
        /* The second call is started without a template (it failed for this code): the same
         * hook fails the same way, and says so just as clearly. */
        skiff_error err = itest_call_fails(s.fn, "[]", NULL, SKIFF_ERR_INIT_FAILURE);
        ASSERT_EQ_STR(err.type, "InitFailureError");
        ASSERT_STR_CONTAINS(err.message, "enter_snap hook 1 failed");
        ASSERT_STR_CONTAINS(err.message, "ValueError: the snapshot refused to build");
        skiff_error_clear(&err);
    }
    ASSERT_EQ_INT(lines_of(dir, "snap.log"), 0);
    ASSERT_EQ_INT(lines_of(dir, "enter.log"), 0);
    snap_close(&s);
    skiff_client_close(c);
}

TEST(snapshot_redeploy_retires_the_old_template)
{
    char dir[ITEST_PATH];
    skiff_client *c = begin(dir, "snap-redeploy");
    struct snap s = snap_open(c, dir, NULL, "info");
    struct info old = info_call(s.fn);
    ASSERT(!gone(old.snap_pid));
    itest_deploy("tests/integration/apps/snapshot.c");
    struct info now = info_call(s.fn);
    ASSERT_EQ_INT(now.sum, TABLE_SUM);
    ASSERT_NE_INT(now.snap_pid, old.snap_pid);
    ASSERT_NE_INT(now.pid, old.pid);
    ASSERT_EQ_INT(lines_of(dir, "snap.log"), 2);
    /* The old template and the container forked from it end; the new template stays. */
    WAIT_UNTIL(gone(old.snap_pid) && gone(old.pid), 20, "the old template and container to end");
    ASSERT(!gone(now.snap_pid));
    snap_close(&s);
    skiff_client_close(c);
}

TEST(snapshot_processes_end_with_the_server)
{
    static struct itest_server own;
    const char *opts[] = {"--no-sandbox", NULL};
    itest_server_start(&own, opts);
    itest_deploy("tests/integration/apps/snapshot.c");
    char dir[ITEST_PATH];
    skiff_client *c = begin(dir, "snap-stop");
    struct snap s = snap_open(c, dir, NULL, "info");
    struct info r[2];
    info_parallel(s.fn, 2, 800, r);
    ASSERT_NE_INT(r[0].pid, r[1].pid);
    snap_close(&s);
    skiff_client_close(c);
    ASSERT(!gone(r[0].snap_pid) && !gone(r[0].pid) && !gone(r[1].pid));
    itest_server_stop(&own);
    /* Nothing the server started, directly or through the template, is left. */
    WAIT_UNTIL(gone(r[0].snap_pid) && gone(r[0].pid) && gone(r[1].pid), 10,
               "the template and its containers to end with the server");
    itest_use(&itest_server);
}

TEST(snapshot_template_death_falls_back_to_plain_starts)
{
    char dir[ITEST_PATH];
    skiff_client *c = begin(dir, "snap-death");
    struct snap s = snap_open(c, dir, NULL, "info");
    skiff_call *busy = itest_spawn_json(s.fn, "[1500]", NULL);
    struct info first = info_call(s.fn);
    ASSERT_NE_INT(first.snap_pid, first.pid);
    /* The template dies: its containers die with it (the input one of them held runs again),
     * and the pool's containers start normally from then on, running both hooks themselves. */
    ASSERT_EQ_INT(kill((pid_t)first.snap_pid, SIGKILL), 0);
    WAIT_UNTIL(gone(first.pid), 10, "the forked container to die with its template");
    skiff_value *v = itest_get(busy, itest_scale(30));
    struct info rerun = info_of(v);
    skiff_value_free(v);
    skiff_call_free(busy);
    ASSERT_EQ_INT(rerun.sum, TABLE_SUM);
    ASSERT_EQ_INT(rerun.snap_pid, rerun.pid);
    struct info after = info_call(s.fn);
    ASSERT_EQ_INT(after.sum, TABLE_SUM);
    ASSERT_EQ_INT(after.snap_pid, after.pid);
    ASSERT(gone(first.snap_pid));
    snap_close(&s);
    skiff_client_close(c);
}

TEST(snapshot_pools_of_a_sandboxing_server_are_forked_in_its_sandbox)
{
    static struct itest_server own;
    itest_server_start(&own, NULL); /* sandboxes its containers when the machine can */
    itest_deploy("tests/integration/apps/snapshot.c");
    char *log = itest_read_file(own.log);
    bool sandboxing = strstr(log, "containers are sandboxed") != NULL;
    free(log);
    char dir[ITEST_PATH];
    skiff_client *c = begin(dir, "snap-sandbox");
    /* In a sandbox the hooks see their own /tmp only (tests/security/ tries the rest). */
    struct snap s = snap_open(c, sandboxing ? "/tmp" : dir, NULL, "info");
    struct info r = info_call(s.fn);
    ASSERT_EQ_INT(r.sum, TABLE_SUM);
    ASSERT_NE_INT(r.snap_pid, r.pid);
    ASSERT_EQ_INT(r.enter_pid, r.pid);
    log = itest_read_file(own.log);
    if (sandboxing) {
        /* The template is the worker (pid 2) of its sandbox's pid namespace, the containers
         * it forks are its children there, and the server says so. */
        ASSERT_EQ_INT(r.snap_pid, 2);
        ASSERT_GT_INT(r.pid, 2);
        ASSERT_STR_CONTAINS(log, "sandboxed with the containers it forks");
        ASSERT(!strstr(log, "not sandboxed"));
    } else {
        ASSERT_EQ_INT(lines_of(dir, "snap.log"), 1);
        ASSERT(!gone(r.pid));
    }
    free(log);
    snap_close(&s);
    skiff_client_close(c);
    itest_server_stop(&own);
    itest_use(&itest_server);
}

TEST(worker_template_mode_needs_a_class)
{
    char worker[ITEST_PATH];
    snprintf(worker, sizeof worker, "%s/bin/skiff-worker", itest_build());
    const char *argv[] = {worker, "--template", "--fd", "3", "--code",
                          "x.so", "--function", "f",    NULL};
    struct itest_run r = itest_exec(argv, NULL, 10);
    ASSERT_EQ_INT(r.status, 2);
    ASSERT_STR_CONTAINS(r.err, "--template goes with --class");
    itest_run_free(&r);
}
