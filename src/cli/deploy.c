/*
 * deploy.c - `skiff deploy APP.c|DIR|APP.py`: build an app, describe it, send it to the server.
 *
 *   1. build APP.c (or every .c of DIR) into a shared object in a private temporary directory
 *      (build.c: the system compiler $CC, else cc, with the libraries SKIFF_APP's .pkgs names),
 *      against the headers and libskiff of the tree `skiff` itself was run from: <prefix> is
 *      the parent of the directory holding the running binary, and the build tree (build/bin,
 *      build/lib, build/include) mirrors an install, so this works from both;
 *   2. run `<prefix>/bin/skiff-worker --describe` on it, which loads it and prints the app's name
 *      and its function and class definitions as JSON;
 *   3. check the names locally (a clear error before anything is sent), then send DEPLOY with
 *      the object's bytes and both lists of definitions, and print what was deployed as JSON.
 *
 * A Python app (APP.py, docs/python.md) is bundled instead of compiled: `python3 -m
 * skiff._deploy` (the package at <prefix>/lib/python3/dist-packages) imports it and writes a zip
 * of the file and the modules it imports from its own directory; step 2 is the same (skiff-worker
 * re-runs itself in python3 for a bundle), and the bundle is the code sent. --name NAME names an
 * unnamed `App()` (`skiff run`). --ephemeral sends DEPLOY's `ephemeral` and keeps the connection
 * open until standard input ends: `skiff run APP.py` holds its app that way, a pipe from the
 * Python process on stdin, so the app goes when that process does, however it ends.
 *
 * `skiff run APP.c FUNCTION [ARG...]` builds and describes a C app the same way, then deploys it
 * ephemerally (DEPLOY's `ephemeral`: the server stops and removes it when the connection that
 * deployed it closes) under a name of its own, calls FUNCTION on the same connection as `skiff
 * call` does, and stops the app.
 *
 * The compiler's and the worker's own messages reach the user's stderr with the user's file
 * names in place of the temporary ones.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "build.h"
#include "cli.h"
#include "client/ops.h"
#include "common/fn_defaults.h"
#include "common/mem.h"
#include "common/proto.h"

extern char **environ;

/* Largest description `skiff-worker --describe` may print: thousands of functions fit. */
#define DESCRIBE_MAX (1u << 20)
/* Longest app and function names (docs/protocol.md). */
#define NAME_MAX_LEN 63

static const char deploy_usage[] =
    "usage: skiff deploy APP.c|DIR [--name-check] [--ephemeral]\n"
    "       skiff deploy APP.py [--name-check] [--name APP] [--ephemeral]\n"
    "\n"
    "Compiles APP.c, or every .c file in DIR (its headers found there too), into a shared\n"
    "object with $CC (else cc) against skiff's headers and library and the libraries named by\n"
    "SKIFF_APP(\"name\", .pkgs = \"zlib ...\") (pkg-config names), reads the app's name,\n"
    "functions and classes from it (skiff-worker --describe), and deploys it. Implicit\n"
    "declarations, int conversions and undefined symbols are errors. A redeploy replaces the\n"
    "app's code; callers keep working by name. APP.py is a Python app: it is imported with\n"
    "/usr/bin/python3 ($SKIFF_PYTHON) and shipped with the modules it imports from its own\n"
    "directory; --name names an unnamed skiff.App().\n"
    "Prints {\"app\", \"app_id\", \"version\", \"functions\": [{\"name\", \"function_id\"}]}.\n"
    "--name-check compiles and checks the app and function names without deploying, and\n"
    "prints the definitions that would be deployed.\n"
    "--ephemeral deploys the app for as long as standard input stays open (`skiff run`): after\n"
    "printing, it waits for the end of its input, ignoring Ctrl-C, and the server removes the\n"
    "app when this command's connection closes, also if it is killed.\n"
    "Exit status: 0 success; 1 compiling, describing or deploying failed; 2 usage.\n";

/* The install prefix of the running binary: the parent of the directory holding it. */
static int find_prefix(char *out, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        fprintf(stderr, "skiff deploy: cannot find the running binary: %s\n", strerror(errno));
        return -1;
    }
    exe[n] = '\0';
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(exe, '/');
        if (!slash) {
            fprintf(stderr, "skiff deploy: cannot tell the install prefix of %s\n", exe);
            return -1;
        }
        *slash = '\0';
    }
    snprintf(out, size, "%s", exe[0] ? exe : "/");
    return 0;
}

/* Puts the skiff package under prefix first on PYTHONPATH (and keeps python3 from writing
 * __pycache__ next to the user's files). CLI_OK or CLI_FAILED. */
static int python_env(const char *prefix)
{
    char pkg[PATH_MAX + 64];
    snprintf(pkg, sizeof pkg, "%s/lib/python3/dist-packages", prefix);
    const char *old = getenv("PYTHONPATH");
    char *path = mem_alloc(strlen(pkg) + (old ? strlen(old) : 0) + 2);
    if (!path) {
        fputs("skiff deploy: out of memory\n", stderr);
        return CLI_FAILED;
    }
    sprintf(path, "%s%s%s", pkg, old && *old ? ":" : "", old && *old ? old : "");
    int e = setenv("PYTHONPATH", path, 1);
    mem_free(path);
    if (e < 0 || setenv("PYTHONDONTWRITEBYTECODE", "1", 1) < 0) {
        fprintf(stderr, "skiff: setenv: %s\n", strerror(errno));
        return CLI_FAILED;
    }
    return CLI_OK;
}

/* The interpreter the Python package is built for. */
static const char *python_path(void)
{
    const char *python = getenv("SKIFF_PYTHON");
    return python && *python ? python : "/usr/bin/python3";
}

/* Bundles the Python app src into b->so (in a new temporary directory) with python3 -m
 * skiff._deploy (name: the app's name when its App() has none, or NULL). CLI_OK or CLI_FAILED
 * (the import's traceback on stderr). */
static int bundle(const char *prefix, const char *src, const char *name, struct app_build *b)
{
    b->path = src;
    if (python_env(prefix) != CLI_OK || build_workdir(b) < 0)
        return CLI_FAILED;
    char *argv[] = {(char *)python_path(),
                    "-m",
                    "skiff._deploy",
                    "--bundle",
                    (char *)b->so,
                    (char *)src,
                    name ? "--name" : NULL,
                    (char *)name,
                    NULL};
    int st = build_run(argv, NULL, NULL);
    if (st != 0) {
        if (st > 0)
            fprintf(stderr, "skiff deploy: bundling the Python app %s failed\n", src);
        return CLI_FAILED;
    }
    return CLI_OK;
}

static bool is_python(const char *src)
{
    size_t n = strlen(src);
    return n > 3 && !strcmp(src + n - 3, ".py");
}

/* Shows what skiff-worker --describe printed on stderr, with the user's file names. */
static void show_worker_errors(const struct app_build *b, const char *file)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[65536];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    char *text = mem_strdup(buf);
    if (!text)
        return;
    build_tidy(b, &text);
    fputs(text, stderr);
    mem_free(text);
}

/* Runs skiff-worker --describe on the built object and parses its JSON into *out. The
 * worker's messages are shown with the user's file names (build_tidy). */
static int describe(const char *prefix, const struct app_build *b, skiff_value **out)
{
    char worker[PATH_MAX + 32];
    snprintf(worker, sizeof worker, "%s/bin/skiff-worker", prefix);
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        fprintf(stderr, "skiff deploy: pipe: %s\n", strerror(errno));
        return CLI_FAILED;
    }
    char *argv[] = {worker, "--describe", (char *)b->so, NULL};
    char errfile[PATH_MAX + 32];
    snprintf(errfile, sizeof errfile, "%s/describe.err", b->workdir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, errfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    int e = posix_spawn(&pid, worker, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (e != 0) {
        close(p[0]);
        fprintf(stderr, "skiff deploy: cannot run %s: %s\n", worker, strerror(e));
        return CLI_FAILED;
    }
    char *text = mem_alloc(DESCRIBE_MAX + 1);
    size_t len = 0;
    bool too_big = false;
    while (text) {
        ssize_t k = read(p[0], text + len, DESCRIBE_MAX - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        len += (size_t)k;
        if (len == DESCRIBE_MAX) {
            too_big = true;
            break;
        }
    }
    close(p[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    show_worker_errors(b, errfile);
    int rc = CLI_FAILED;
    if (!text) {
        fputs("skiff deploy: out of memory\n", stderr);
    } else if (WIFSIGNALED(status)) {
        fprintf(stderr, "skiff deploy: %s --describe was killed by signal %d (%s)\n", worker,
                WTERMSIG(status), strsignal(WTERMSIG(status)));
    } else if (WEXITSTATUS(status) != 0) {
        fprintf(stderr, "skiff deploy: %s cannot be loaded as a skiff app\n", b->path);
    } else if (too_big) {
        fprintf(stderr, "skiff deploy: %s --describe printed more than %u bytes\n", worker,
                DESCRIBE_MAX);
    } else {
        skiff_error err = SKIFF_ERROR_INIT;
        if (skiff_value_from_json(text, len, out, &err) == SKIFF_OK)
            rc = CLI_OK;
        else
            fprintf(stderr, "skiff deploy: %s --describe printed malformed JSON: %s\n", worker,
                    err.message ? err.message : "parse error");
        skiff_error_clear(&err);
    }
    mem_free(text);
    return rc;
}

static bool valid_name(const char *s, const char *extra)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr(extra, c)))
            return false;
    }
    return true;
}

/* The compiled app's .pkgs must be what the scan of its SKIFF_APP line found (build.h). */
static int check_pkgs(const struct app_build *b, const skiff_value *d)
{
    const char *built = skiff_value_get_string(skiff_map_get(d, "pkgs"), NULL);
    const char *scanned = b->pkgs ? b->pkgs : "";
    if (!strcmp(built ? built : "", scanned))
        return CLI_OK;
    fprintf(stderr,
            "%s: error: SKIFF_APP's .pkgs is \"%s\" in the compiled app but \"%s\" as written: "
            "write it as one string literal on the SKIFF_APP line, not through a macro\n",
            b->app_at, built ? built : "", scanned);
    return CLI_FAILED;
}

/* Checks the description's shape and names. Sets *app to its (borrowed) app name. */
static int check_description(const skiff_value *d, const char **app)
{
    const char *name = skiff_value_get_string(skiff_map_get(d, "app"), NULL);
    const skiff_value *fns = skiff_map_get(d, "functions");
    if (skiff_value_type(d) != SKIFF_MAP || !name || skiff_value_type(fns) != SKIFF_LIST) {
        fputs("skiff deploy: skiff-worker --describe printed no {\"app\": NAME, \"functions\": "
              "[...]}\n",
              stderr);
        return CLI_FAILED;
    }
    if (!valid_name(name, "._-")) {
        fprintf(stderr,
                "skiff deploy: the app name '%s' is not 1-63 characters of letters, digits, '.', "
                "'_' and '-'\n",
                name);
        return CLI_FAILED;
    }
    if (skiff_list_len(fns) == 0) {
        fprintf(stderr, "skiff deploy: app '%s' declares no functions (SKIFF_FUNCTION)\n", name);
        return CLI_FAILED;
    }
    for (size_t i = 0; i < skiff_list_len(fns); i++) {
        const skiff_value *f = skiff_list_get(fns, i);
        const char *fname = skiff_value_get_string(skiff_map_get(f, "name"), NULL);
        if (skiff_value_type(f) != SKIFF_MAP || !fname) {
            fprintf(stderr, "skiff deploy: function %zu of the description has no name\n", i);
            return CLI_FAILED;
        }
        if (!valid_name(fname, "_.")) {
            fprintf(stderr,
                    "skiff deploy: the function name '%s' is not 1-63 characters of letters, "
                    "digits, '_' and '.'\n",
                    fname);
            return CLI_FAILED;
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(fname, skiff_value_get_string(skiff_map_get(skiff_list_get(fns, j), "name"),
                                                      NULL))) {
                fprintf(stderr, "skiff deploy: app '%s' declares function '%s' twice\n", name,
                        fname);
                return CLI_FAILED;
            }
    }
    *app = name;
    return CLI_OK;
}

/* Reads the compiled app into *data (mem_alloc'd), within the protocol's code limit. */
static int read_code(const char *path, char **data, size_t *len)
{
    if (build_read_file(path, PROTO_CODE_MAX, data, len) == 0 && *len > 0)
        return CLI_OK;
    if (errno == EFBIG)
        fprintf(stderr, "skiff deploy: the compiled app is over the limit of %u bytes\n",
                PROTO_CODE_MAX);
    else
        fprintf(stderr, "skiff deploy: cannot read the compiled app: %s\n", strerror(errno));
    return CLI_FAILED;
}

/* Waits for the end of standard input (or a read error), ignoring Ctrl-C: the process that
 * started `skiff deploy --ephemeral` ends the app's life by closing the pipe, or by exiting. */
static void hold_until_eof(void)
{
    signal(SIGINT, SIG_IGN);
    char buf[256];
    for (;;) {
        ssize_t k = read(0, buf, sizeof buf);
        if (k == 0 || (k < 0 && errno != EINTR))
            return;
    }
}

/* Sends the deploy and prints {app, app_id, version, functions}. ephemeral: deploys it for as
 * long as standard input stays open: standard output is closed after the reply (so a reader
 * knows the app is there) and the connection is kept until then (hold_until_eof). */
static int send_deploy(struct cli *cli, const char *app, const skiff_value *fns,
                       const skiff_value *classes, const char *code, size_t len, bool ephemeral)
{
    skiff_client *client;
    int rc = cli_connect(cli, &client);
    if (rc != CLI_OK)
        return rc;
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *reply = NULL, *shown = skiff_value_map();
    if ((ephemeral
             ? client_deploy_ephemeral(client, app, code, len, fns, classes, &reply, &err)
             : client_deploy(client, app, code, len, fns, classes, &reply, &err)) != SKIFF_OK) {
        rc = cli_fail(&err);
    } else if (!shown || skiff_map_set(shown, "app", skiff_value_string(app)) != SKIFF_OK) {
        fputs("skiff: out of memory\n", stderr);
        rc = CLI_FAILED;
    } else {
        for (size_t i = 0; i < skiff_map_len(reply) && rc == CLI_OK; i++)
            if (skiff_map_set(shown, skiff_map_key(reply, i),
                              skiff_value_copy(skiff_map_value(reply, i))) != SKIFF_OK)
                rc = CLI_FAILED;
        if (rc == CLI_OK)
            rc = cli_print_json(shown);
        else
            fputs("skiff: out of memory\n", stderr);
    }
    skiff_value_free(reply);
    skiff_value_free(shown);
    skiff_error_clear(&err);
    if (rc == CLI_OK && ephemeral && fflush(stdout) == 0) {
        int nul = open("/dev/null", O_WRONLY | O_CLOEXEC); /* the reader sees the end */
        if (nul >= 0 && dup2(nul, 1) >= 0)
            hold_until_eof();
        if (nul >= 0)
            close(nul);
    }
    skiff_client_close(client);
    return rc;
}

/* Replaces, in one function's or class's configuration, the 0 that means "not set" by the
 * default the server applies (common/fn_defaults.h), so --name-check shows what will run. */
static int show_defaults(skiff_value *entry)
{
    static const struct {
        const char *key;
        double value;
        bool is_double;
    } defaults[] = {
        {"timeout", FN_DEFAULT_TIMEOUT, true},
        {"max_containers", FN_DEFAULT_MAX_CONTAINERS, false},
        {"scaledown_window", FN_DEFAULT_SCALEDOWN, true},
        {"max_inputs", FN_DEFAULT_MAX_INPUTS, false},
    };
    if (!skiff_map_get(entry, "timeout"))
        return CLI_OK; /* a method: its class carries the configuration */
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        const skiff_value *v = skiff_map_get(entry, defaults[i].key);
        bool unset = !v || (skiff_value_type(v) == SKIFF_INT && skiff_value_get_int(v) == 0) ||
                     (skiff_value_type(v) == SKIFF_DOUBLE && skiff_value_get_double(v) == 0);
        if (!unset)
            continue;
        skiff_value *d = defaults[i].is_double ? skiff_value_double(defaults[i].value)
                                               : skiff_value_int((int64_t)defaults[i].value);
        if (!d || skiff_map_set(entry, defaults[i].key, d) != SKIFF_OK)
            return CLI_FAILED;
    }
    /* target_inputs defaults to max_inputs. */
    const skiff_value *t = skiff_map_get(entry, "target_inputs");
    if (t && skiff_value_type(t) == SKIFF_INT && skiff_value_get_int(t) == 0) {
        skiff_value *m = skiff_value_copy(skiff_map_get(entry, "max_inputs"));
        if (!m || skiff_map_set(entry, "target_inputs", m) != SKIFF_OK)
            return CLI_FAILED;
    }
    return CLI_OK;
}

/* --name-check's output: the description with the defaults shown. */
static int print_checked(skiff_value *desc)
{
    const char *lists[] = {"functions", "classes"};
    for (size_t l = 0; l < 2; l++) {
        skiff_value *list = skiff_map_get(desc, lists[l]);
        for (size_t i = 0; list && i < skiff_list_len(list); i++)
            if (show_defaults(skiff_list_get(list, i)) != CLI_OK) {
                fputs("skiff: out of memory\n", stderr);
                return CLI_FAILED;
            }
    }
    return cli_print_json(desc);
}

int cmd_deploy(struct cli *cli, int argc, char **argv)
{
    const char **pos = mem_calloc((size_t)argc + 1, sizeof *pos);
    if (!pos) {
        fputs("skiff: out of memory\n", stderr);
        return CLI_FAILED;
    }
    struct cli_opt opts[] = {
        {.name = "--name-check"}, {.name = "--name", .has_value = true}, {.name = "--ephemeral"}};
    int npos, rc;
    bool help;
    char why[512];
    if (cli_getopt(argc, argv, opts, 3, &help, &cli->server, pos, &npos, why, sizeof why) < 0)
        rc = cli_usage_error(deploy_usage, "%s", why);
    else if (help)
        rc = fputs(deploy_usage, stdout) >= 0 ? CLI_OK : CLI_FAILED;
    else if (npos != 1)
        rc = cli_usage_error(deploy_usage, "deploy takes exactly one APP.c, DIR or APP.py");
    else if (opts[1].count && !is_python(pos[0]))
        rc = cli_usage_error(deploy_usage, "--name goes with a Python app (APP.py)");
    else if (access(pos[0], R_OK) < 0)
        rc = cli_usage_error(deploy_usage, "cannot read %s: %s", pos[0], strerror(errno));
    else
        rc = -1; /* go on */
    if (rc >= 0) {
        mem_free(pos);
        return rc;
    }
    char prefix[PATH_MAX];
    struct app_build b = {0};
    skiff_value *desc = NULL;
    char *code = NULL;
    size_t len = 0;
    const char *app = NULL;
    bool python = is_python(pos[0]);
    rc = CLI_FAILED;
    if (find_prefix(prefix, sizeof prefix) == 0 &&
        (python ? bundle(prefix, pos[0], opts[1].value, &b) == CLI_OK
                : build_prepare(&b, pos[0]) == 0 && build_compile(&b, prefix) == 0) &&
        describe(prefix, &b, &desc) == CLI_OK && check_description(desc, &app) == CLI_OK &&
        (python || check_pkgs(&b, desc) == CLI_OK)) {
        if (opts[0].count)
            rc = print_checked(desc);
        else if (read_code(b.so, &code, &len) == CLI_OK)
            rc = send_deploy(cli, app, skiff_map_get(desc, "functions"),
                             skiff_map_get(desc, "classes"), code, len, opts[2].count > 0);
    }
    build_free(&b);
    mem_free(code);
    skiff_value_free(desc);
    mem_free(pos);
    return rc;
}

/* `skiff run APP.py [--entrypoint NAME] [ARGS...]`: replaces this process with python3 -m
 * skiff._run (docs/python.md, "skiff run"), which deploys the app ephemerally under a name of
 * its own with `skiff deploy --name --ephemeral` (SKIFF_CLI: this binary) held for the run, and
 * runs its local entrypoint here; the app is removed when the run ends, however it ends. */
static int run_python(struct cli *cli, int argc, char **argv)
{
    char prefix[PATH_MAX], self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0 || find_prefix(prefix, sizeof prefix) < 0 || python_env(prefix) != CLI_OK)
        return CLI_FAILED;
    self[n] = '\0';
    if (setenv("SKIFF_CLI", self, 1) < 0 ||
        (cli->server && setenv("SKIFF_SERVER", cli->server, 1) < 0)) {
        fprintf(stderr, "skiff run: setenv: %s\n", strerror(errno));
        return CLI_FAILED;
    }
    char **av = mem_calloc((size_t)argc + 4, sizeof *av);
    if (!av) {
        fputs("skiff: out of memory\n", stderr);
        return CLI_FAILED;
    }
    int k = 0;
    av[k++] = (char *)python_path();
    av[k++] = "-m";
    av[k++] = "skiff._run";
    for (int i = 0; i < argc; i++)
        av[k++] = argv[i];
    av[k] = NULL;
    execv(av[0], av);
    fprintf(stderr, "skiff run: cannot run %s: %s\n", av[0], strerror(errno));
    mem_free(av);
    return CLI_FAILED;
}

static const char run_usage[] =
    "usage: skiff run APP.c|DIR FUNCTION [ARG ...] [--kwarg NAME=JSON ...] [--param NAME=JSON "
    "...]\n"
    "       skiff run APP.py [--entrypoint NAME] [--ARG VALUE ...]\n"
    "\n"
    "Builds the C app (as `skiff deploy`), deploys it for this run only under a name of its\n"
    "own (the app's name, \"-run-\" and a random suffix: a deployed app of the same name is\n"
    "untouched), calls FUNCTION with the arguments as `skiff call` does (a generator's items\n"
    "stream out, one line each), prints the result, and stops and removes the app. The app is\n"
    "ephemeral: the server removes it when this command's connection closes, so Ctrl-C, a\n"
    "failure or even kill -9 leaves nothing deployed; schedules of the app never run.\n"
    "APP.py runs a Python app's local entrypoint instead (docs/python.md).\n"
    "Exit status: as `skiff call`: 0 success; 1 building, deploying or the call failed;\n"
    "2 usage or bad JSON; 130 interrupted.\n";

/* The run's app name: the app's own (at most 50 characters), "-run-" and 8 random hex digits. */
static void run_name(const char *app, char *out, size_t size)
{
    unsigned char r[4] = {0};
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t k = read(fd, r, sizeof r);
        (void)k;
        close(fd);
    }
    snprintf(out, size, "%.50s-run-%02x%02x%02x%02x", app, r[0], r[1], r[2], r[3]);
}

/* Deploys the built app ephemerally as name on client, calls function, prints, stops it. */
static int run_deployed(skiff_client *client, const char *name, const skiff_value *desc,
                        const char *code, size_t len, const char *function, const skiff_value *args,
                        const skiff_value *kwargs, const skiff_value *params)
{
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *reply = NULL;
    /* From here Ctrl-C ends the process; the connection closing cancels the call and makes the
     * server remove the app. */
    cli_on_interrupt("the call is cancelled and the app removed");
    if (client_deploy_ephemeral(client, name, code, len, skiff_map_get(desc, "functions"),
                                skiff_map_get(desc, "classes"), &reply, &err) != SKIFF_OK) {
        int rc = cli_fail(&err);
        skiff_error_clear(&err);
        return rc;
    }
    skiff_value_free(reply);
    if (isatty(STDERR_FILENO)) /* for people: where its logs are while it runs */
        fprintf(stderr, "skiff run: deployed %s for this run (skiff logs %s)\n", name, name);
    struct cli_target t;
    int rc;
    if (cli_target_open(client, name, function, params, &t, &err) != SKIFF_OK ||
        skiff_function_hydrate(t.fn, &err) != SKIFF_OK) {
        rc = cli_fail(&err);
    } else {
        client_cancel_on_close(t.fn);
        rc = cli_call_print(t.fn, args, kwargs);
    }
    cli_target_close(&t);
    skiff_error_clear(&err);
    fflush(stdout);
    if (client_app_stop(client, name, &err) != SKIFF_OK) {
        fprintf(stderr,
                "skiff run: stopping %s: %s (the server removes it when this command's "
                "connection ends, or when it starts again)\n",
                name, err.message ? err.message : "failed");
        skiff_error_clear(&err);
    }
    return rc;
}

/* `skiff run APP.c|DIR FUNCTION [ARG...]`. */
static int run_c(struct cli *cli, int argc, char **argv)
{
    const char **pos = mem_calloc((size_t)argc + 1, sizeof *pos);
    const char **kws = mem_calloc((size_t)argc + 1, sizeof *kws);
    const char **prs = mem_calloc((size_t)argc + 1, sizeof *prs);
    struct cli_opt opts[] = {{.name = "--kwarg", .has_value = true, .values = kws},
                             {.name = "--param", .has_value = true, .values = prs}};
    skiff_value *args = NULL, *kwargs = NULL, *params = NULL, *desc = NULL;
    struct app_build b = {0};
    char *code = NULL;
    size_t len = 0;
    int npos, rc;
    bool help;
    char why[512], prefix[PATH_MAX];
    const char *app = NULL;
    if (!pos || !kws || !prs) {
        fputs("skiff: out of memory\n", stderr);
        rc = CLI_FAILED;
    } else if (cli_getopt(argc, argv, opts, 2, &help, &cli->server, pos, &npos, why, sizeof why) <
               0) {
        rc = cli_usage_error(run_usage, "%s", why);
    } else if (help) {
        rc = fputs(run_usage, stdout) >= 0 ? CLI_OK : CLI_FAILED;
    } else if (npos < 2) {
        rc = cli_usage_error(run_usage, "run needs APP.c (or DIR) and FUNCTION");
    } else if (access(pos[0], R_OK) < 0) {
        rc = cli_usage_error(run_usage, "cannot read %s: %s", pos[0], strerror(errno));
    } else if (cli_parse_call_args(pos + 2, npos - 2, kws, opts[0].count, &args, &kwargs, why,
                                   sizeof why) < 0 ||
               cli_parse_params(prs, opts[1].count, &params, why, sizeof why) < 0) {
        rc = cli_usage_error(run_usage, "%s", why);
    } else if (find_prefix(prefix, sizeof prefix) == 0 && build_prepare(&b, pos[0]) == 0 &&
               build_compile(&b, prefix) == 0 && describe(prefix, &b, &desc) == CLI_OK &&
               check_description(desc, &app) == CLI_OK && check_pkgs(&b, desc) == CLI_OK &&
               read_code(b.so, &code, &len) == CLI_OK) {
        char name[NAME_MAX_LEN + 1];
        run_name(app, name, sizeof name);
        skiff_client *client;
        rc = cli_connect(cli, &client);
        if (rc == CLI_OK) {
            rc = run_deployed(client, name, desc, code, len, pos[1], args, kwargs, params);
            skiff_client_close(client);
        }
    } else {
        rc = CLI_FAILED;
    }
    build_free(&b);
    mem_free(code);
    skiff_value_free(desc);
    skiff_value_free(args);
    skiff_value_free(kwargs);
    skiff_value_free(params);
    mem_free(pos);
    mem_free(kws);
    mem_free(prs);
    return rc;
}

int cmd_run(struct cli *cli, int argc, char **argv)
{
    /* The first word that is not an option decides: APP.py is a Python app. */
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--server") || !strncmp(argv[i], "--server=", 9)) {
            i += argv[i][8] == '\0';
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1] == '-')
            continue;
        if (is_python(argv[i]) || strstr(argv[i], ".py::"))
            return run_python(cli, argc, argv);
        break;
    }
    return run_c(cli, argc, argv);
}
