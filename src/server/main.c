/*
 * main.c - skiffd: command line, data directory, start-up and shutdown of the event loop.
 *
 * One thread runs everything on one libuv loop. Each loop iteration ends (uv_check, after I/O)
 * and begins (uv_prepare, before blocking) with the same step: commit the store's queued writes
 * in one transaction, then send every connection's queued output. So replies leave in batches,
 * and nothing that acknowledges a durable write leaves before the commit.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "apps.h"
#include "auth.h"
#include "calls.h"
#include "common/config.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/proto.h"
#include "conn.h"
#include "container.h"
#include "http.h"
#include "logs.h"
#include "metrics.h"
#include "proto.h"
#include "sandbox.h"
#include "secrets.h"
#include "volumes.h"
#include "sched.h"
#include "schedule.h"
#include "store.h"
#include "stream.h"

#define DEFAULT_LISTEN "127.0.0.1:7878"
#define DEFAULT_HTTP "127.0.0.1:7879"
#define DEFAULT_RETENTION (7 * 24 * 3600.0)
#define DEFAULT_WEB_LIMIT 150.0   /* modal-semantics.md, "Web endpoints" */
#define DEFAULT_HTTP_TIMEOUT 30.0 /* headers and body of one request; idle keep-alive */
#define DEFAULT_HTTP_MAX_BODY (1u << 20)

struct options {
    char data[PATH_MAX];
    const char *listen;
    const char *http;
    const char *worker;
    double retention;
    size_t payload_max;
    double web_limit;
    double http_timeout;
    double login_code_ttl;
    size_t http_max_body;
    struct conn_limits conn;
    struct sandbox_opts sandbox;
    const char *check; /* --check DIR: check that store and exit */
};

static const char usage[] =
    "usage: skiffd [--data DIR] [--listen HOST:PORT|unix:PATH] [--http HOST:PORT]\n"
    "              [--retention SECONDS] [--max-payload BYTES] [--worker PATH]\n"
    "              [--no-sandbox] [--container-memory MIB] [--container-cpu CORES]\n"
    "              [--container-pids N] [--container-uid UID] [--web-limit SECONDS]\n"
    "              [--http-timeout SECONDS] [--http-max-body BYTES] [--hello-timeout SECONDS]\n"
    "              [--idle-timeout SECONDS] [--max-unauth N] [--login-code-ttl SECONDS]\n"
    "              [--no-metrics]\n"
    "       skiffd --check DIR\n"
    "\n"
    "Runs the skiff server in the foreground (logs on stderr; SIGTERM or SIGINT stop it).\n"
    "\n"
    "  --data DIR           data directory (default $SKIFF_DATA or ~/.local/share/skiff)\n"
    "  --listen ADDR        protocol address (default " DEFAULT_LISTEN ")\n"
    "  --http ADDR          HTTP address of web endpoints and the JSON API (default\n"
    "                       " DEFAULT_HTTP "; \"off\": no HTTP); see docs/http-api.md\n"
    "  --web-limit SECONDS  how long a web request waits for its call before the answer is\n"
    "                       a 303 to its result URL (default 150)\n"
    "  --http-timeout SECONDS  time an HTTP request's headers and body may take (408 past it),\n"
    "                       and an idle keep-alive connection may stay (default 30)\n"
    "  --http-max-body BYTES  largest HTTP request body of a web endpoint that sets no max_body,\n"
    "                       and of an unauthenticated JSON API request (default 1 MiB; 413 past\n"
    "                       it); an API request with a valid token may send --max-payload\n"
    "  --hello-timeout SECONDS  time a protocol client has to send an accepted HELLO\n"
    "                       (default 10)\n"
    "  --idle-timeout SECONDS   time an authenticated client with nothing in progress may stay\n"
    "                       silent before it is closed (default 600; 0: never)\n"
    "  --max-unauth N       protocol clients without an accepted HELLO at once; a new one\n"
    "                       closes the oldest (default: a quarter of the open files limit,\n"
    "                       at most 1024)\n"
    "  --login-code-ttl SECONDS  how long a dashboard login code of `skiff dashboard` stays\n"
    "                       good (default 300)\n"
    "  --no-metrics         collect no metrics (GET /metrics answers 404; the dashboard shows\n"
    "                       no figures): for measuring what collecting costs\n"
    "  --retention SECONDS  how long results of spawned calls are kept (default 7 days)\n"
    "  --max-payload BYTES  largest argument or result payload (default 64 MiB)\n"
    "  --worker PATH        the container runtime (default: skiff-worker beside skiffd)\n"
    "  --no-sandbox         run containers as plain processes (by default, as root, each runs\n"
    "                       in its own pid, mount, ipc and uts namespaces with a read-only host\n"
    "                       and a private /tmp, in a cgroup with its limits)\n"
    "  --container-memory MIB  memory limit of a container whose function sets none\n"
    "                       (default 0: unlimited); past it the input fails with OutOfMemoryError\n"
    "  --container-cpu CORES   cpu limit of a container whose function sets none (default 0:\n"
    "                       unlimited)\n"
    "  --container-pids N   processes and threads per container (default 512; 0: unlimited)\n"
    "  --container-uid UID  host uid and gid of a sandboxed container's root (default 100000;\n"
    "                       never 0: the containers' user namespace maps only that one id)\n"
    "  --check DIR          checks the store of data directory DIR (a full integrity check; a\n"
    "                       running server may use it meanwhile) and exits: 0 whole, 1 corrupt\n"
    "                       (with how to recover), 2 it could not be checked\n"
    "\n"
    "On its first start skiffd creates an admin token and writes ~/.skiff.toml (if absent) so\n"
    "local clients need no setup; `skiff token new` makes tokens of narrower scopes. The data\n"
    "directory is kept private: 0700, its files 0600.\n";

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v == 0 || v > (1ull << 31))
        return -1;
    *out = (size_t)v;
    return 0;
}

static int parse_args(int argc, char **argv, struct options *o)
{
    o->listen = DEFAULT_LISTEN;
    o->http = DEFAULT_HTTP;
    o->retention = DEFAULT_RETENTION;
    o->payload_max = PROTO_PAYLOAD_MAX;
    o->web_limit = DEFAULT_WEB_LIMIT;
    o->http_timeout = DEFAULT_HTTP_TIMEOUT;
    o->login_code_ttl = 300;
    o->http_max_body = DEFAULT_HTTP_MAX_BODY;
    o->conn = (struct conn_limits){CONN_HELLO_TIMEOUT, CONN_IDLE_TIMEOUT, 0, CONN_OUT_HIGH};
    o->sandbox.pids = SANDBOX_DEFAULT_PIDS;
    const char *data = getenv("SKIFF_DATA");
    const char *home = getenv("HOME");
    if (data && *data)
        snprintf(o->data, sizeof o->data, "%s", data);
    else if (home && *home)
        snprintf(o->data, sizeof o->data, "%s/.local/share/skiff", home);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            exit(0);
        }
        if (!strcmp(a, "--version")) {
            printf("skiffd %s\n", SKIFF_VERSION);
            exit(0);
        }
        if (!strcmp(a, "--no-sandbox")) {
            o->sandbox.disabled = true;
            continue;
        }
        if (!strcmp(a, "--no-metrics")) {
            metrics_disable();
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "skiffd: unknown option or missing value: %s\n%s", a, usage);
            return -1;
        }
        const char *v = argv[++i];
        char *end;
        if (!strcmp(a, "--check")) {
            o->check = v;
        } else if (!strcmp(a, "--data")) {
            snprintf(o->data, sizeof o->data, "%s", v);
        } else if (!strcmp(a, "--listen")) {
            o->listen = v;
        } else if (!strcmp(a, "--http")) {
            o->http = v;
        } else if (!strcmp(a, "--worker")) {
            o->worker = v;
        } else if (!strcmp(a, "--retention")) {
            o->retention = strtod(v, &end);
            if (*end || end == v || !(o->retention > 0)) {
                fprintf(stderr, "skiffd: --retention wants a positive number of seconds\n");
                return -1;
            }
        } else if (!strcmp(a, "--web-limit") || !strcmp(a, "--http-timeout")) {
            double *d = a[2] == 'w' ? &o->web_limit : &o->http_timeout;
            *d = strtod(v, &end);
            if (*end || end == v || !(*d >= 0.001) || *d > 86400) {
                fprintf(stderr, "skiffd: %s wants seconds from 0.001 to 86400\n", a);
                return -1;
            }
        } else if (!strcmp(a, "--login-code-ttl")) {
            o->login_code_ttl = strtod(v, &end);
            if (*end || end == v || !(o->login_code_ttl >= 0.001) || o->login_code_ttl > 86400) {
                fprintf(stderr, "skiffd: --login-code-ttl wants seconds from 0.001 to 86400\n");
                return -1;
            }
        } else if (!strcmp(a, "--hello-timeout") || !strcmp(a, "--idle-timeout")) {
            double *d = a[2] == 'h' ? &o->conn.hello_timeout : &o->conn.idle_timeout;
            *d = strtod(v, &end);
            if (*end || end == v || !(*d >= 0) || *d > 86400 || (a[2] == 'h' && *d < 0.001)) {
                fprintf(stderr, "skiffd: %s wants seconds up to 86400\n", a);
                return -1;
            }
        } else if (!strcmp(a, "--max-unauth")) {
            if (parse_size(v, &o->conn.max_unauth) < 0) {
                fprintf(stderr, "skiffd: --max-unauth wants a count from 1\n");
                return -1;
            }
        } else if (!strcmp(a, "--http-max-body")) {
            if (parse_size(v, &o->http_max_body) < 0) {
                fprintf(stderr, "skiffd: --http-max-body wants bytes from 1 to 2 GiB\n");
                return -1;
            }
        } else if (!strcmp(a, "--max-payload")) {
            if (parse_size(v, &o->payload_max) < 0) {
                fprintf(stderr, "skiffd: --max-payload wants bytes from 1 to 2 GiB\n");
                return -1;
            }
        } else if (!strcmp(a, "--container-memory") || !strcmp(a, "--container-pids")) {
            errno = 0;
            long long n = strtoll(v, &end, 10);
            if (errno || *end || end == v || n < 0 || n > (1ll << 24)) {
                fprintf(stderr, "skiffd: %s wants a whole number from 0 to 16777216\n", a);
                return -1;
            }
            *(a[12] == 'm' ? &o->sandbox.memory_mib : &o->sandbox.pids) = (int)n;
        } else if (!strcmp(a, "--container-uid")) {
            errno = 0;
            long long n = strtoll(v, &end, 10);
            if (errno || *end || end == v || n < 1 || n > 4294967294ll) {
                fprintf(stderr, "skiffd: --container-uid wants a uid from 1 to 4294967294\n");
                return -1;
            }
            o->sandbox.uid = (unsigned)n;
        } else if (!strcmp(a, "--container-cpu")) {
            o->sandbox.cpu = strtod(v, &end);
            if (*end || end == v || !(o->sandbox.cpu >= 0 && o->sandbox.cpu <= 1024)) {
                fprintf(stderr, "skiffd: --container-cpu wants cores from 0 to 1024\n");
                return -1;
            }
        } else {
            fprintf(stderr, "skiffd: unknown option %s\n%s", a, usage);
            return -1;
        }
    }
    if (!o->data[0]) {
        fprintf(stderr, "skiffd: no data directory: pass --data or set SKIFF_DATA or HOME\n");
        return -1;
    }
    return 0;
}

/* mkdir -p; the last directory private (0700, also when it exists). 0 or -1 (errno). */
static int make_dirs(const char *path)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    if (mkdir(p, 0700) < 0 && errno != EEXIST)
        return -1;
    return chmod(p, 0700);
}

static int private_fixed;

/* nftw: what the data directory holds is the server's alone (directories 0700, the rest 0600). */
static int make_private(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    mode_t want = type == FTW_D || type == FTW_DP ? 0700 : S_ISREG(st->st_mode) ? 0600 : 0;
    if (!want || st->st_uid != geteuid() || (st->st_mode & 07777) == want)
        return 0;
    if (chmod(path, want) < 0)
        log_warn("cannot make %s private (mode %o): %s", path, (unsigned)want, strerror(errno));
    else
        private_fixed++;
    return 0;
}

/* Makes every file in dir 0600 and every directory 0700 (files of an older skiffd were 0644 in a
 * 0755 directory: any local user could read the tokens' ids, arguments and results). */
static void make_data_private(const char *dir)
{
    private_fixed = 0;
    if (nftw(dir, make_private, 16, FTW_PHYS) < 0)
        log_warn("cannot check the modes of the files in %s: %s", dir, strerror(errno));
    if (private_fixed)
        log_info("made %d files and directories of %s private (0600 and 0700)", private_fixed, dir);
}

/* The worker binary: --worker, else skiff-worker in the directory of this executable. */
static int find_worker(const struct options *o, char *out, size_t size)
{
    if (o->worker) {
        snprintf(out, size, "%s", o->worker);
    } else {
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n < 0)
            return -1;
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = '\0';
        if (snprintf(out, size, "%s/skiff-worker", self) >= (int)size)
            return -1;
    }
    if (access(out, X_OK) < 0) {
        log_error("the container runtime %s is missing or not executable (pass --worker)", out);
        return -1;
    }
    return 0;
}

/* On the first start (no token stored): adopt the token of an existing ~/.skiff.toml, or create
 * one and write ~/.skiff.toml, so a local user needs no setup. */
static int first_start(const char *listen)
{
    if (!auth_empty())
        return 0;
    char path[PATH_MAX];
    struct config cfg;
    bool have_path = config_path(path, sizeof path) == 0;
    if (have_path && config_read(path, &cfg, NULL) == 0 && cfg.token_id[0] && cfg.token_secret[0]) {
        if (auth_adopt_token(cfg.token_id, cfg.token_secret) < 0)
            return -1;
        log_info("first start: adopted the token %s of %s", cfg.token_id, path);
        return 0;
    }
    memset(&cfg, 0, sizeof cfg);
    if (auth_new_token(AUTH_ADMIN, 0, cfg.token_id, cfg.token_secret) < 0)
        return -1;
    snprintf(cfg.server, sizeof cfg.server, "%s", listen);
    if (!have_path) {
        log_warn("first start: created token %s, but there is no HOME to write ~/.skiff.toml",
                 cfg.token_id);
    } else if (config_write_new(path, &cfg) < 0) {
        log_warn("first start: created token %s; could not write %s: %s (make one with "
                 "`skiff token new`)",
                 cfg.token_id, path, strerror(errno));
    } else {
        log_info("first start: created token %s and wrote %s", cfg.token_id, path);
    }
    return 0;
}

static uv_loop_t *loop;
static uv_prepare_t prepare_h;
static uv_check_t check_h;
static uv_signal_t sigterm_h, sigint_h;
static bool stopping;

static void commit_and_send(void)
{
    store_flush();
    container_flush_all();
    stream_flush_all();
    conn_flush_all();
}

static void on_prepare(uv_prepare_t *h)
{
    (void)h;
    commit_and_send();
}

static void on_check(uv_check_t *h)
{
    (void)h;
    commit_and_send();
}

static void on_signal(uv_signal_t *h, int sig)
{
    (void)h;
    if (stopping)
        return;
    stopping = true;
    log_info("received %s: stopping", strsignal(sig));
    sched_shutdown();
    commit_and_send();
    uv_stop(loop);
}

static struct call *restore_call(const char *call_id, const char *parent, const char *function_id,
                                 int kind, int64_t created, uint32_t n_inputs, bool closed,
                                 const void *params, size_t params_len)
{
    struct function *fn = apps_function(function_id);
    if (!fn) {
        log_error("call %s refers to unknown function %s: left as it is", call_id, function_id);
        return NULL;
    }
    /* A method's call runs in the pool of its parameters. */
    struct function *pool = fn;
    if (fn->cls) {
        static const char empty_map = (char)0x80;
        pool = apps_class_pool(fn->cls, params ? params : &empty_map, params ? params_len : 1);
        if (!pool) {
            log_error("out of memory restoring call %s", call_id);
            return NULL;
        }
    }
    struct call *call =
        calls_restore(call_id, parent, fn, pool, (enum call_kind)kind, created, n_inputs, closed);
    if (!call)
        log_error("out of memory restoring call %s", call_id);
    return call;
}

/* How long a start waits for the data directory or the listen address to be let go of by the
 * processes of a server that was just killed (its containers die with it, a moment later). */
#define RESTART_WAIT_MS 5000

/* Takes the data directory's lock, waiting up to RESTART_WAIT_MS. A POSIX record lock, not
 * flock: a child forked just before the server died (a container not yet exec'd) does not
 * inherit it, so a killed server's lock goes with the server itself. 0, or -1 with errno. */
static int lock_data_dir(int fd, const char *dir)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    for (int waited = 0;; waited += 20) {
        if (fcntl(fd, F_SETLK, &fl) == 0)
            return 0;
        if ((errno != EACCES && errno != EAGAIN) || waited >= RESTART_WAIT_MS)
            return -1;
        if (waited == 0)
            log_info("%s is locked: waiting up to %d s for the previous skiffd's processes to end",
                     dir, RESTART_WAIT_MS / 1000);
        usleep(20 * 1000);
    }
}

int main(int argc, char **argv)
{
    struct options o = {0};
    log_set_name("skiffd");
    if (parse_args(argc, argv, &o) < 0)
        return 2;
    if (o.check) {
        int rc = store_check(o.check);
        return rc == 0 ? 0 : rc > 0 ? 1 : 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Everything skiffd creates is its own: the store, the lock, app objects. */
    umask(077);

    if (make_dirs(o.data) < 0) {
        log_error("cannot create the data directory %s: %s", o.data, strerror(errno));
        return 1;
    }
    /* One server per data directory. */
    char lock_path[PATH_MAX + 16];
    snprintf(lock_path, sizeof lock_path, "%s/skiffd.lock", o.data);
    int lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0 || lock_data_dir(lock_fd, o.data) < 0) {
        log_error("another skiffd is using %s (%s)", o.data, strerror(errno));
        return 1;
    }
    make_data_private(o.data);
    char worker[PATH_MAX];
    if (find_worker(&o, worker, sizeof worker) < 0)
        return 1;

    o.sandbox.data_dir = o.data;
    o.sandbox.worker = worker;
    o.sandbox.listen = o.listen;
    sandbox_init(&o.sandbox);

    loop = uv_default_loop();
    if (store_open(o.data) < 0 || apps_init(o.data) < 0 || auth_init(loop) < 0 ||
        secrets_init() < 0 || volumes_init(o.data, o.sandbox.uid) < 0 || first_start(o.listen) < 0)
        return 1;
    size_t frame_max = o.payload_max + PROTO_FRAME_OVERHEAD;
    struct proto_limits limits = {o.payload_max, frame_max > PROTO_CODE_MAX + PROTO_FRAME_OVERHEAD
                                                     ? frame_max
                                                     : PROTO_CODE_MAX + PROTO_FRAME_OVERHEAD};
    logs_init(loop);
    if (metrics_init(loop) < 0)
        return 1;
    if (calls_init(loop, o.retention, o.payload_max) < 0 ||
        sched_init(loop, worker, o.listen, o.payload_max, frame_max) < 0 || schedule_init(loop) < 0)
        return 1;
    /* A quarter of the descriptors for strangers on each port, at most CONN_MAX_UNAUTH. */
    size_t nofile = conn_raise_nofile();
    size_t strangers = nofile / 4 < CONN_MAX_UNAUTH ? nofile / 4 : CONN_MAX_UNAUTH;
    if (!o.conn.max_unauth)
        o.conn.max_unauth = strangers;
    conn_set_limits(loop, &o.conn);
    int listening;
    for (int waited = 0;; waited += 20) {
        listening = conn_listen(loop, o.listen, proto_client_ops(&limits), limits.frame_max);
        if (listening != UV_EADDRINUSE || waited >= RESTART_WAIT_MS)
            break;
        usleep(20 * 1000); /* a killed server's processes may hold it a moment longer */
    }
    if (listening == UV_EADDRINUSE)
        log_error("cannot listen on %s: %s", o.listen, uv_strerror(listening));
    if (listening < 0)
        return 1;
    /* A web body becomes an argument payload: never allow more than one can hold. */
    if (o.http_max_body > o.payload_max)
        o.http_max_body = o.payload_max;
    struct http_options http = {o.http,          o.http_timeout, o.web_limit,
                                o.http_max_body, o.payload_max,  strangers};
    http_dash_set_code_ttl(o.login_code_ttl);
    if (strcmp(o.http, "off") && http_start(loop, &http) < 0)
        return 1;

    uv_prepare_init(loop, &prepare_h);
    uv_prepare_start(&prepare_h, on_prepare);
    uv_check_init(loop, &check_h);
    uv_check_start(&check_h, on_check);
    uv_signal_init(loop, &sigterm_h);
    uv_signal_start(&sigterm_h, on_signal, SIGTERM);
    uv_signal_init(loop, &sigint_h);
    uv_signal_start(&sigint_h, on_signal, SIGINT);

    static const struct store_restore restore = {restore_call, calls_restore_input};
    if (store_load_unfinished(&restore) < 0)
        return 1;
    apps_start_all();
    log_info("skiffd %s listening on %s, data in %s", SKIFF_VERSION, o.listen, o.data);

    uv_run(loop, UV_RUN_DEFAULT);

    /* Shutdown: close every connection and our own handles, and let the killed containers be
     * reaped (their exit callbacks free them); the loop ends when nothing is left. */
    conn_close_all();
    http_close();
    schedule_shutdown();
    calls_shutdown();
    auth_shutdown();
    logs_shutdown();
    metrics_shutdown();
    uv_close((uv_handle_t *)&prepare_h, NULL);
    uv_close((uv_handle_t *)&check_h, NULL);
    uv_close((uv_handle_t *)&sigterm_h, NULL);
    uv_close((uv_handle_t *)&sigint_h, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    sandbox_deinit();
    schedule_deinit();
    calls_deinit();
    logs_deinit();
    metrics_deinit();
    apps_deinit();
    auth_deinit();
    store_close();
    uv_loop_close(loop);
    close(lock_fd);
    log_info("stopped");
    return 0;
}
