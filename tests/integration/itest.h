/*
 * itest.h - harness for skiff's C integration tests: a real skiffd, the CLI, and libskiff.
 *
 * A test file includes this header, defines itest_setup() (run once before the tests, e.g. to
 * deploy the apps it needs) and its TEST()s:
 *
 *     #include "itest.h"
 *
 *     static void itest_setup(void)
 *     {
 *         itest_deploy(&itest_server, "examples/square.c");
 *     }
 *
 *     TEST(square)
 *     {
 *         skiff_client *c = itest_connect(&itest_server);
 *         ...
 *     }
 *
 * main() (defined here) starts one skiffd for the whole file (`itest_server`: a temporary data
 * directory, free ports, its log in a file) with HOME pointed at a temporary directory, so the
 * server writes the ~/.skiff.toml that libskiff and the CLI then read, and SKIFF_SERVER set to
 * it. It runs itest_setup(), then every test in its own forked process (unit.h), then stops the
 * server with SIGTERM and fails the run if the server did not exit cleanly or its log holds a
 * sanitizer report. A test may start servers of its own (itest_server_start with extra options,
 * kill -9, restart); they are killed when the test's process ends, even if it crashes
 * (PR_SET_PDEATHSIG). When an assertion fails, the end of each server's log is printed.
 *
 * The environment comes from scripts/run-tests.sh: SKIFF_BUILD (the build tree with bin/, lib/,
 * examples/) and SKIFF_SRC (the repository). SKIFF_SANITIZE=1 (the sanitizer pass) stretches
 * every deadline by ITEST_SLOW_FACTOR.
 */
#ifndef SKIFF_TESTS_ITEST_H
#define SKIFF_TESTS_ITEST_H

#define UNIT_NO_MAIN
#include "../unit/unit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <skiff/skiff.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Deadlines are multiplied by this in the sanitizer pass (everything runs several times slower). */
#define ITEST_SLOW_FACTOR 3.0
/* How long a server may take to accept connections after it is started. */
#define ITEST_START_SECONDS 15.0
/* Room for a path built from a temporary directory (PATH_MAX) and a file name. */
#define ITEST_PATH (PATH_MAX + 64)
/* Room for a file name under one of those. */
#define ITEST_FILE (ITEST_PATH + 64)
/* Servers one test process may have running at once. */
#define ITEST_MAX_SERVERS 4

struct itest_server {
    pid_t pid;             /* 0 when not running */
    int port, http_port;   /* chosen at the first start, kept across restarts */
    char addr[64];         /* "127.0.0.1:PORT" */
    char data[ITEST_PATH]; /* --data */
    char home[ITEST_PATH]; /* HOME of the server and its clients (holds .skiff.toml) */
    char log[ITEST_PATH];  /* stdout + stderr of every run, appended */
    const char *extra[16]; /* further options of the current run, NULL-terminated */
    int port_retries;      /* starts retried on new ports after a port was taken */
};

/* Options of the file's server. Its containers run as plain processes unless a file says
 * otherwise before including this header (itest_sandbox.c does): tests observe containers from
 * the host through their pids and through files under the test's own /tmp directory, which a
 * sandboxed container shows neither of (its pid namespace numbers it 2, its /tmp is private). */
#ifndef ITEST_SERVER_OPTIONS
#define ITEST_SERVER_OPTIONS "--no-sandbox", NULL
#endif
static const char *const itest_server_options[] = {ITEST_SERVER_OPTIONS};

/* The server of the whole file, started by main before itest_setup(). */
static struct itest_server itest_server;
/* Servers this process started (for the failure hook and clean-up). */
static struct itest_server *itest_servers[ITEST_MAX_SERVERS];

static inline const char *itest_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "itest: %s is not set (run through scripts/run-tests.sh)\n", name);
        exit(2);
    }
    return v;
}

static inline const char *itest_build(void)
{
    return itest_env("SKIFF_BUILD");
}

static inline const char *itest_src(void)
{
    return itest_env("SKIFF_SRC");
}

static inline bool itest_sanitize(void)
{
    const char *s = getenv("SKIFF_SANITIZE");
    return s && *s && strcmp(s, "0") != 0;
}

/* seconds, stretched in the sanitizer pass. */
static inline double itest_scale(double seconds)
{
    return itest_sanitize() ? seconds * ITEST_SLOW_FACTOR : seconds;
}

static inline void itest_sleep(double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Polls cond (an expression) every 20 ms until it holds or seconds (scaled) pass; fails the
 * test naming what (a string) in the latter case. */
#define WAIT_UNTIL(cond, seconds, what)                                                            \
    do {                                                                                           \
        double itest_deadline_ = unit_now() + itest_scale(seconds);                                \
        while (!(cond)) {                                                                          \
            if (unit_now() > itest_deadline_)                                                      \
                FAIL("timed out after %.0f s waiting for %s (%s)", itest_scale(seconds), what,     \
                     #cond);                                                                       \
            itest_sleep(0.02);                                                                     \
        }                                                                                          \
    } while (0)

/* A fresh temporary directory (under $TMPDIR); static storage, valid until the next call. */
static inline const char *itest_tmpdir(const char *what)
{
    static char dir[PATH_MAX];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", what);
    if (!mkdtemp(dir))
        FAIL("mkdtemp %s: %s", dir, strerror(errno));
    return dir;
}

/* A TCP port on 127.0.0.1 that nothing uses right now, chosen at random below the kernel's
 * ephemeral range (32768 and up on Linux): a port from that range can be taken at any moment as
 * the local port of some outgoing connection, and a connection to it while nothing listens can
 * even connect to itself, which looks like a server that answers nothing. */
static inline int itest_free_port(void)
{
    static unsigned seed;
    if (!seed)
        seed = (unsigned)getpid() ^ (unsigned)(unit_now() * 1e6);
    for (int tries = 0; tries < 1000; tries++) {
        int port = 20000 + (int)(rand_r(&seed) % 12000);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT(fd >= 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok)
            return port;
    }
    FAIL("no free port below 32000");
}

/* True when something accepts TCP connections on 127.0.0.1:port. */
static inline bool itest_port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* Reads a whole file into a malloc'd NUL-terminated string ("" if it cannot be read); its
 * length (which may include NULs) goes to *len when len is not NULL. */
static inline char *itest_read_file_n(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    if (!s)
        abort();
    if (f) {
        size_t r;
        while ((r = fread(s + n, 1, cap - n - 1, f)) > 0) {
            n += r;
            if (n + 1 == cap && !(s = realloc(s, cap *= 2)))
                abort();
        }
        fclose(f);
    }
    s[n] = '\0';
    if (len)
        *len = n;
    return s;
}

static inline char *itest_read_file(const char *path)
{
    return itest_read_file_n(path, NULL);
}

/* Prints the last lines of a server's log to stderr. */
static inline void itest_dump_log(const struct itest_server *s, int lines)
{
    char *text = itest_read_file(s->log);
    const char *p = text + strlen(text);
    for (int n = 0; p > text && n <= lines; p--)
        if (p[-1] == '\n')
            n++;
    fprintf(stderr, "----- last %d lines of %s (skiffd pid %d) -----\n%s\n-----\n", lines, s->log,
            (int)s->pid, p);
    free(text);
}

/* Sanitizer reports in a log ("" when none): the first matching line. Static storage. */
static inline const char *itest_sanitizer_report(const char *log)
{
    static char line[512];
    static const char *const marks[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                        "runtime error:", "WARNING: ThreadSanitizer"};
    char *text = itest_read_file(log);
    line[0] = '\0';
    for (size_t i = 0; i < sizeof marks / sizeof marks[0] && !line[0]; i++) {
        const char *hit = strstr(text, marks[i]);
        if (hit) {
            const char *end = strchr(hit, '\n');
            size_t n = end ? (size_t)(end - hit) : strlen(hit);
            snprintf(line, sizeof line, "%.*s", (int)(n < 400 ? n : 400), hit);
        }
    }
    free(text);
    return line;
}

static void itest_on_failure(void)
{
    for (int i = 0; i < ITEST_MAX_SERVERS; i++)
        if (itest_servers[i])
            itest_dump_log(itest_servers[i], 40);
}

static inline void itest_track(struct itest_server *s, bool on)
{
    for (int i = 0; i < ITEST_MAX_SERVERS; i++) {
        if (on && !itest_servers[i]) {
            itest_servers[i] = s;
            return;
        }
        if (!on && itest_servers[i] == s)
            itest_servers[i] = NULL;
    }
}

/* Makes s the server this process's clients and CLI runs talk to (HOME and SKIFF_SERVER). */
static inline void itest_use(const struct itest_server *s)
{
    setenv("HOME", s->home, 1);
    setenv("SKIFF_SERVER", s->addr, 1);
    unsetenv("SKIFF_TOKEN_ID");
    unsetenv("SKIFF_TOKEN_SECRET");
}

/* Starts (or restarts, keeping data, home and ports) skiffd for s with further options extra
 * (NULL-terminated array, or NULL), and waits until it accepts connections and has written its
 * ~/.skiff.toml. Fails the test when it cannot. Makes s the current server (itest_use). */
/* True once this run of s (the text after the last start marker in its log) says it listens:
 * an open port alone could still be a process of a killed earlier run, about to go. */
static inline bool itest_says_listening(const struct itest_server *s)
{
    char *log = itest_read_file(s->log);
    if (!log)
        return false;
    const char *run = log, *p;
    while ((p = strstr(run + 1, "=== itest: starting skiffd")))
        run = p;
    bool yes = strstr(run, " listening on ") != NULL;
    free(log);
    return yes;
}

static inline void itest_server_start(struct itest_server *s, const char *const *extra)
{
    bool fresh = !s->data[0];
    if (!s->data[0]) {
        char base[PATH_MAX];
        snprintf(base, sizeof base, "%s", itest_tmpdir("skiffd"));
        snprintf(s->data, sizeof s->data, "%s/data", base);
        snprintf(s->home, sizeof s->home, "%s/home", base);
        snprintf(s->log, sizeof s->log, "%s/skiffd.log", base);
        ASSERT_EQ_INT(mkdir(s->home, 0700), 0);
        s->port = itest_free_port();
        s->http_port = itest_free_port();
        snprintf(s->addr, sizeof s->addr, "127.0.0.1:%d", s->port);
    }
    size_t n = 0;
    for (; extra && extra[n] && n + 1 < sizeof s->extra / sizeof s->extra[0]; n++)
        s->extra[n] = extra[n];
    s->extra[n] = NULL;

    char skiffd[PATH_MAX], listen[64], http[64];
    snprintf(skiffd, sizeof skiffd, "%s/bin/skiffd", itest_build());
    snprintf(listen, sizeof listen, "127.0.0.1:%d", s->port);
    snprintf(http, sizeof http, "127.0.0.1:%d", s->http_port);
    const char *argv[32] = {skiffd, "--data", s->data, "--listen", listen, "--http", http};
    size_t argc = 7;
    for (size_t i = 0; s->extra[i]; i++)
        argv[argc++] = s->extra[i];
    argv[argc] = NULL;

    /* The marker that starts this run's part of the log, written before the server exists, so
     * that itest_says_listening never reads an earlier run's lines as this one's. */
    FILE *marker = fopen(s->log, "a");
    ASSERT_NOT_NULL(marker);
    fprintf(marker, "=== itest: starting skiffd on %s\n", listen);
    fclose(marker);
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        /* The server dies with the test process, whatever happens to it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0)
            _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, 0);
        setenv("HOME", s->home, 1);
        unsetenv("SKIFF_SERVER");
        unsetenv("SKIFF_DATA");
        if (itest_sanitize()) {
            /* Functions that crash on purpose must die of their own signal (not ASan's report
             * and abort), as they would in production. */
            const char *old = getenv("ASAN_OPTIONS");
            char opts[1024];
            snprintf(opts, sizeof opts, "%s%shandle_segv=0:handle_sigbus=0:handle_sigfpe=0",
                     old ? old : "", old && *old ? ":" : "");
            setenv("ASAN_OPTIONS", opts, 1);
        }
        execv(skiffd, (char *const *)argv);
        fprintf(stderr, "itest: exec %s: %s\n", skiffd, strerror(errno));
        _exit(127);
    }
    s->pid = pid;
    itest_track(s, true);

    char toml[ITEST_PATH + 16];
    snprintf(toml, sizeof toml, "%s/.skiff.toml", s->home);
    double deadline = unit_now() + itest_scale(ITEST_START_SECONDS);
    for (;;) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            s->pid = 0;
            itest_track(s, false);
            /* Another test took a port between our check and the server's bind: new ones, if
             * they were new anyway (a restart keeps its ports). */
            char *log = itest_read_file(s->log);
            const char *tail = log && strlen(log) > 300 ? log + strlen(log) - 300 : log;
            bool taken = tail && strstr(tail, "address already in use");
            free(log);
            if ((fresh || s->port_retries > 0) && taken && s->port_retries++ < 5) {
                s->port = itest_free_port();
                s->http_port = itest_free_port();
                snprintf(s->addr, sizeof s->addr, "127.0.0.1:%d", s->port);
                itest_server_start(s, extra);
                return;
            }
            itest_dump_log(s, 40);
            FAIL("skiffd exited during start-up (status 0x%x)", status);
        }
        if (itest_port_open(s->port) && access(toml, R_OK) == 0 && itest_says_listening(s))
            break;
        if (unit_now() > deadline) {
            itest_dump_log(s, 40);
            FAIL("skiffd did not accept connections on %s within %.0f s", s->addr,
                 itest_scale(ITEST_START_SECONDS));
        }
        itest_sleep(0.01);
    }
    s->port_retries = 0;
    itest_use(s);
}

/* Stops s with SIGTERM and waits for it; fails the test unless it exits 0 within the deadline
 * with no sanitizer report in its log. */
static inline void itest_server_stop(struct itest_server *s)
{
    if (!s->pid)
        return;
    ASSERT_EQ_INT(kill(s->pid, SIGTERM), 0);
    double deadline = unit_now() + itest_scale(10);
    int status = 0;
    pid_t r;
    while ((r = waitpid(s->pid, &status, WNOHANG)) == 0 && unit_now() < deadline)
        itest_sleep(0.01);
    pid_t pid = s->pid;
    if (r == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        s->pid = 0;
        itest_track(s, false);
        itest_dump_log(s, 40);
        FAIL("skiffd (pid %d) did not stop within %.0f s of SIGTERM", (int)pid, itest_scale(10));
    }
    s->pid = 0;
    itest_track(s, false);
    const char *report = itest_sanitizer_report(s->log);
    if (report[0]) {
        itest_dump_log(s, 80);
        FAIL("sanitizer report in the server log: %s", report);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        itest_dump_log(s, 40);
        FAIL("skiffd exited with status 0x%x after SIGTERM (want a clean exit 0)", status);
    }
}

/* kill -9 of s (a crash as far as the server can tell), then reaps it. */
static inline void itest_server_kill9(struct itest_server *s)
{
    if (!s->pid)
        return;
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
    itest_track(s, false);
}

/* A client connected to the current server (itest_use), with HOME's token. Fails the test
 * when it cannot connect. */
static inline skiff_client *itest_connect(void)
{
    skiff_client *c = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc = skiff_client_connect(NULL, &c, &err);
    if (rc != SKIFF_OK)
        FAIL("skiff_client_connect: %s: %s", err.type, err.message);
    return c;
}

/* The outcome of running a program: exit status (128+signal when killed), output. */
struct itest_run {
    int status;
    char *out; /* stdout, malloc'd */
    char *err; /* stderr, malloc'd */
    double seconds;
};

static inline void itest_run_free(struct itest_run *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* Runs argv (argv[0] a path) with stdin from `input` (NULL: /dev/null), waits up to timeout
 * seconds (scaled; then kills it and fails the test), and captures its output. */
static inline struct itest_run itest_exec(const char *const *argv, const char *input,
                                          double timeout)
{
    char outp[ITEST_PATH], errp[ITEST_PATH], inp[ITEST_PATH];
    const char *dir = itest_tmpdir("run");
    snprintf(outp, sizeof outp, "%s/out", dir);
    snprintf(errp, sizeof errp, "%s/err", dir);
    snprintf(inp, sizeof inp, "%s/in", dir);
    if (input) {
        FILE *f = fopen(inp, "w");
        ASSERT_NOT_NULL(f);
        fputs(input, f);
        fclose(f);
    }
    fflush(stdout);
    fflush(stderr);
    double t0 = unit_now();
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int in = open(input ? inp : "/dev/null", O_RDONLY);
        int out = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int er = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || er < 0)
            _exit(127);
        dup2(in, 0);
        dup2(out, 1);
        dup2(er, 2);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    double deadline = t0 + itest_scale(timeout);
    int status;
    pid_t r;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0) {
        if (unit_now() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            FAIL("%s %s ... did not finish within %.0f s", argv[0], argv[1] ? argv[1] : "",
                 itest_scale(timeout));
        }
        itest_sleep(0.005);
    }
    struct itest_run res;
    res.seconds = unit_now() - t0;
    res.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    res.out = itest_read_file(outp);
    res.err = itest_read_file(errp);
    unlink(outp);
    unlink(errp);
    unlink(inp);
    rmdir(dir);
    return res;
}

/* Runs the CLI: itest_cli(NULL, "call", "my-shared-app", "square", "42", NULL). The first
 * argument is stdin's contents (or NULL). Waits up to 120 s (scaled). */
static inline struct itest_run itest_cli(const char *input, ...)
{
    char skiff[PATH_MAX];
    snprintf(skiff, sizeof skiff, "%s/bin/skiff", itest_build());
    const char *argv[64] = {skiff};
    size_t n = 1;
    va_list ap;
    va_start(ap, input);
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 63)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return itest_exec(argv, input, 120);
}

/* Trims trailing whitespace in place; returns s. */
static inline char *itest_chomp(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* Deploys an app file (a path relative to the repository, or absolute) to the current server
 * with `skiff deploy`; fails the test if that fails. */
static inline void itest_deploy(const char *file)
{
    char path[PATH_MAX];
    if (file[0] == '/')
        snprintf(path, sizeof path, "%s", file);
    else
        snprintf(path, sizeof path, "%s/%s", itest_src(), file);
    struct itest_run r = itest_cli(NULL, "deploy", path, NULL);
    if (r.status != 0)
        FAIL("skiff deploy %s: exit %d\nstdout: %s\nstderr: %s", file, r.status, r.out, r.err);
    itest_run_free(&r);
}

/* Asserts that rc is the expected skiff_code, printing err's type and message otherwise. */
#define ASSERT_SKIFF(rc, expect, err)                                                              \
    do {                                                                                           \
        int itest_rc_ = (rc);                                                                      \
        if (itest_rc_ != (int)(expect))                                                            \
            FAIL("%s returned %s (%d), expected %s: %s: %s", #rc,                                  \
                 skiff_code_name((skiff_code)itest_rc_), itest_rc_, skiff_code_name(expect),       \
                 (err)->type ? (err)->type : "-", (err)->message ? (err)->message : "-");          \
    } while (0)

#define ASSERT_SKIFF_OK(rc, err) ASSERT_SKIFF(rc, SKIFF_OK, err)

/* A function handle by eager lookup; fails the test if it cannot be found. */
static inline skiff_function *itest_lookup(skiff_client *c, const char *app, const char *name)
{
    skiff_function *fn = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_lookup(c, app, name, &fn, &err), &err);
    return fn;
}

/* A JSON text as a value (for building arguments tersely); fails the test if malformed. */
static inline skiff_value *itest_json(const char *text)
{
    skiff_value *v = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_value_from_json(text, strlen(text), &v, &err), &err);
    return v;
}

/* Calls fn with args given as a JSON array (kwargs as a JSON object or NULL) and returns the
 * result's JSON (malloc'd), failing the test on any error. */
static inline char *itest_call_json(skiff_function *fn, const char *args, const char *kwargs)
{
    skiff_value *a = itest_json(args), *k = kwargs ? itest_json(kwargs) : NULL, *res = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_remote(fn, a, k, &res, &err), &err);
    char *json = skiff_value_to_json(res);
    ASSERT_NOT_NULL(json);
    skiff_value_free(res);
    skiff_value_free(a);
    skiff_value_free(k);
    return json;
}

/* Calls fn expecting failure with code; returns the error (the caller clears it). */
static inline skiff_error itest_call_fails(skiff_function *fn, const char *args, const char *kwargs,
                                           skiff_code code)
{
    skiff_value *a = itest_json(args), *k = kwargs ? itest_json(kwargs) : NULL, *res = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc = skiff_function_remote(fn, a, k, &res, &err);
    if (rc == SKIFF_OK) {
        char *json = skiff_value_to_json(res);
        FAIL("call(%s) succeeded with %s, expected %s", args, json, skiff_code_name(code));
    }
    ASSERT_SKIFF(rc, code, &err);
    ASSERT_EQ_INT(err.code, code);
    ASSERT_NOT_NULL(err.type);
    ASSERT_NOT_NULL(err.message);
    skiff_value_free(a);
    skiff_value_free(k);
    return err;
}

/* Asserts that v equals the value of JSON text expect (map order does not matter). */
#define ASSERT_JSON(v, expect)                                                                     \
    do {                                                                                           \
        skiff_value *itest_want_ = itest_json(expect);                                             \
        if (!skiff_value_equal((v), itest_want_)) {                                                \
            char *itest_got_ = skiff_value_to_json(v);                                             \
            FAIL("%s is %s, expected %s", #v, itest_got_ ? itest_got_ : "(null)", expect);         \
        }                                                                                          \
        skiff_value_free(itest_want_);                                                             \
    } while (0)

/* Spawns fn with JSON args/kwargs and returns the call; fails the test on error. */
static inline skiff_call *itest_spawn_json(skiff_function *fn, const char *args, const char *kwargs)
{
    skiff_value *a = itest_json(args), *k = kwargs ? itest_json(kwargs) : NULL;
    skiff_call *call = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_function_spawn(fn, a, k, &call, &err), &err);
    ASSERT_NOT_NULL(call);
    skiff_value_free(a);
    skiff_value_free(k);
    return call;
}

/* skiff_call_get that must succeed; returns the result. */
static inline skiff_value *itest_get(skiff_call *call, double timeout)
{
    skiff_value *v = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_SKIFF_OK(skiff_call_get(call, timeout, &v, &err), &err);
    return v;
}

/* Runs the CLI's `container list` and returns its stdout (malloc'd JSON). */
static inline char *itest_containers(void)
{
    struct itest_run r = itest_cli(NULL, "container", "list", NULL);
    if (r.status != 0)
        FAIL("skiff container list: exit %d: %s", r.status, r.err);
    free(r.err);
    return r.out;
}

/* The containers the server reports (`skiff container list`), as a list of maps with app,
 * function, pid, state... (the caller frees it). */
static inline skiff_value *itest_container_list(void)
{
    char *text = itest_containers();
    skiff_value *v = itest_json(text);
    free(text);
    if (skiff_value_type(v) == SKIFF_MAP && skiff_map_get(v, "containers")) {
        skiff_value *list = skiff_value_copy(skiff_map_get(v, "containers"));
        skiff_value_free(v);
        v = list;
    }
    if (skiff_value_type(v) != SKIFF_LIST)
        FAIL("skiff container list did not print a JSON list");
    return v;
}

/* Containers of app/function (function NULL: any) in state (NULL: any state); their pids go to
 * pids[0..max) when pids is not NULL. */
static inline int itest_container_count(const char *app, const char *function, const char *state,
                                        int64_t *pids, int max)
{
    skiff_value *list = itest_container_list();
    int n = 0;
    for (size_t i = 0; i < skiff_list_len(list); i++) {
        const skiff_value *c = skiff_list_get(list, i);
        const char *a = skiff_value_get_string(skiff_map_get(c, "app"), NULL);
        const char *f = skiff_value_get_string(skiff_map_get(c, "function"), NULL);
        const char *st = skiff_value_get_string(skiff_map_get(c, "state"), NULL);
        if (!a || strcmp(a, app) || (function && (!f || strcmp(f, function))) ||
            (state && (!st || strcmp(st, state))))
            continue;
        if (pids && n < max)
            pids[n] = skiff_value_get_int(skiff_map_get(c, "pid"));
        n++;
    }
    skiff_value_free(list);
    return n;
}

/* How many times needle occurs in haystack. */
static inline int itest_count(const char *haystack, const char *needle)
{
    int n = 0;
    size_t len = strlen(needle);
    for (const char *p = haystack; len && (p = strstr(p, needle)); p += len)
        n++;
    return n;
}

static void itest_setup(void);

int main(int argc, char **argv)
{
    itest_build();
    itest_src();
    setvbuf(stdout, NULL, _IOLBF, 0);
    unit_fail_hook = itest_on_failure;
    /* The file's server; a failure in start-up or setup ends the run here. */
    itest_server_start(&itest_server, itest_server_options);
    itest_setup();
    int rc = unit_run(argc, argv);
    /* Stopping cleanly is part of passing: a crash, a hang or a sanitizer report at shutdown
     * fails the run (itest_server_stop says why and exits 1). */
    itest_server_stop(&itest_server);
    return rc;
}

#endif /* SKIFF_TESTS_ITEST_H */
