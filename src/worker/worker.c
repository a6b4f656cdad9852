/*
 * worker.c - skiff-worker's command line (see worker.h, and docs/protocol.md "Container
 * operations").
 *
 *     skiff-worker --fd 3 --code PATH --function NAME --container ID
 *     skiff-worker --fd 3 --code PATH --class NAME [--params B64] --container ID
 *         run as a container of a function, or of a class instance (params: base64 of the
 *         msgpack map of its parameters): the server's socket on fd 3
 *     skiff-worker --template --fd 3 --code PATH --class NAME [--params B64] --container ID
 *         a class's snapshot template: runs the enter_snap hooks once, then forks a container
 *         for each order of the server (template.c)
 *     skiff-worker --describe PATH
 *         print the app's declarations as JSON (used by `skiff deploy`)
 *
 * The container id defaults to $SKIFF_CONTAINER_ID. Exit status: 0 done, 1 failure, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "worker.h"

static const char usage[] =
    "usage: skiff-worker --fd FD --code PATH --function NAME [--container ID]\n"
    "       skiff-worker --fd FD --code PATH --class NAME [--params B64] [--container ID]\n"
    "       skiff-worker --template --fd FD --code PATH --class NAME [--params B64]\n"
    "       skiff-worker --describe PATH\n"
    "\n"
    "Runs one function (or one instance of a class) of a skiff app as a container of skiffd:\n"
    "loads the app's shared object,\n"
    "then executes the inputs the server sends on the socket FD (docs/protocol.md). skiffd\n"
    "starts it; there is no reason to run it by hand except --describe, which prints the app's\n"
    "name and functions as JSON.\n";

/* The container's log prefix, "worker ta-...". */
static char log_name[64];

/* Parses a file descriptor number. True with *fd set when s is one. */
static bool parse_fd(const char *s, int *fd)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > 1 << 20)
        return false;
    *fd = (int)v;
    return true;
}

static int bad_usage(const char *why, const char *arg)
{
    fprintf(stderr, "skiff-worker: %s%s%s\n%s", why, arg ? " " : "", arg ? arg : "", usage);
    return 2;
}

int skiff__worker_main(int argc, char **argv)
{
    struct worker_opts o = {.fd = -1};
    const char *describe = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        const char **slot = !strcmp(a, "--code")        ? &o.code
                            : !strcmp(a, "--function")  ? &o.function
                            : !strcmp(a, "--class")     ? &o.cls
                            : !strcmp(a, "--params")    ? &o.params
                            : !strcmp(a, "--container") ? &o.container_id
                            : !strcmp(a, "--describe")  ? &describe
                                                        : NULL;
        if (!strcmp(a, "--template")) {
            o.template_mode = true;
            continue;
        }
        bool is_fd = !strcmp(a, "--fd");
        if (!slot && !is_fd)
            return bad_usage("unknown argument", a);
        if (i + 1 >= argc)
            return bad_usage("missing value after", a);
        const char *v = argv[++i];
        if (is_fd) {
            if (!parse_fd(v, &o.fd))
                return bad_usage("--fd wants a file descriptor number, not", v);
        } else {
            *slot = v;
        }
    }
    /* A Python app's bundle: the same command again in python3 (python.c). */
    if (!worker_preloaded() && !worker_preload_failed(NULL) &&
        worker_is_bundle(describe ? describe : o.code))
        return worker_exec_python(argc, argv);
    if (describe) {
        if (o.code || o.function || o.cls || o.params || o.fd >= 0)
            return bad_usage("--describe takes no other options", NULL);
        return worker_describe(describe);
    }
    if (o.fd < 0 || !o.code || !o.function == !o.cls)
        return bad_usage("--fd, --code and one of --function or --class are required", NULL);
    if (o.params && !o.cls)
        return bad_usage("--params goes with --class", NULL);
    if (o.template_mode && !o.cls)
        return bad_usage("--template goes with --class", NULL);
    if (!o.container_id)
        o.container_id = getenv("SKIFF_CONTAINER_ID");
    if (!o.container_id || !*o.container_id)
        o.container_id = "ta-unknown";
    snprintf(log_name, sizeof log_name, "worker %s", o.container_id);
    log_set_name(log_name);
    return worker_run(&o);
}
