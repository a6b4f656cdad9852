/*
 * sandbox_probe.c - the app tests/integration/itest_sandbox.c deploys (app "itest-sandbox") to
 * look at a container's isolation from the inside: its namespaces, hostname, cgroup and file
 * system, and what happens when it uses too much memory or too many processes.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <skiff/app.h>

SKIFF_APP("itest-sandbox");

/* "ok", or the name of the errno a failed step left ("EROFS", ...). */
static const char *outcome(int ok)
{
    if (ok)
        return "ok";
    switch (errno) {
    case EROFS:
        return "EROFS";
    case EACCES:
        return "EACCES";
    case EPERM:
        return "EPERM";
    case ENOENT:
        return "ENOENT";
    case EAGAIN:
        return "EAGAIN";
    default:
        return strerror(errno);
    }
}

/* Creates the file path with content text (then keeps it). "ok" or the errno's name. */
static const char *create_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return outcome(0);
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return outcome(n == (ssize_t)strlen(text));
}

/* Reads a small text file (or readlink of a link when link is true) as a string value. */
static skiff_value *text_of(const char *path, bool link)
{
    char buf[4096];
    ssize_t n;
    if (link) {
        n = readlink(path, buf, sizeof buf - 1);
    } else {
        int fd = open(path, O_RDONLY);
        n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
        if (fd >= 0)
            close(fd);
    }
    if (n < 0)
        return skiff_value_string(outcome(0));
    buf[n] = '\0';
    return skiff_value_string(buf);
}

/* What the container sees: its pid and parent, its namespaces ("ns_pid": "pid:[...]", ...),
 * hostname and cgroups, whether it can write the host path `host` and the file /tmp/`tmp`, and
 * whether the host file `peek` exists. */
static int inside(skiff_ctx *ctx, skiff_value **out)
{
    static const char *const ns[] = {"pid", "mnt", "ipc", "uts", "net"};
    skiff_value *m = skiff_value_map();
    skiff_map_set(m, "pid", skiff_value_int(getpid()));
    skiff_map_set(m, "ppid", skiff_value_int(getppid()));
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        char path[64];
        char key[16];
        snprintf(path, sizeof path, "/proc/self/ns/%s", ns[i]);
        snprintf(key, sizeof key, "ns_%s", ns[i]);
        skiff_map_set(m, key, text_of(path, true));
    }
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    skiff_map_set(m, "hostname", skiff_value_string(host));
    skiff_map_set(m, "cgroup", text_of("/proc/self/cgroup", false));
    skiff_map_set(m, "write_host",
                  skiff_value_string(create_file(skiff_arg_string(ctx, "host"), "sandbox\n")));
    char tmp[256];
    snprintf(tmp, sizeof tmp, "/tmp/%s", skiff_arg_string(ctx, "tmp"));
    skiff_map_set(m, "write_tmp", skiff_value_string(create_file(tmp, "sandbox\n")));
    skiff_map_set(m, "peek",
                  skiff_value_string(outcome(access(skiff_arg_string(ctx, "peek"), F_OK) == 0)));
    *out = m;
    return 0;
}
SKIFF_FUNCTION(inside, .signature = "host:str, peek:str, tmp:str");

/* Whether /tmp/NAME exists in this container ("ok" or "ENOENT"), then creates it. */
static int tmp_mark(skiff_ctx *ctx, skiff_value **out)
{
    char path[256];
    snprintf(path, sizeof path, "/tmp/%s", skiff_arg_string(ctx, "name"));
    const char *before = outcome(access(path, F_OK) == 0);
    create_file(path, "mark\n");
    *out = skiff_value_string(before);
    return 0;
}
SKIFF_FUNCTION(tmp_mark, .signature = "name:str");

/* The same in a separate function, hence a separate container. */
static int tmp_mark_other(skiff_ctx *ctx, skiff_value **out)
{
    return tmp_mark(ctx, out);
}
SKIFF_FUNCTION(tmp_mark_other, .signature = "name:str");

/* Allocates and touches mib MiB, holds it for a moment, returns mib. */
static int hog(skiff_ctx *ctx, skiff_value **out)
{
    int64_t mib = skiff_arg_int(ctx, "mib");
    char **blocks = calloc((size_t)mib + 1, sizeof *blocks);
    if (!blocks)
        return skiff_raise(ctx, "MemoryError", "calloc");
    for (int64_t i = 0; i < mib; i++) {
        blocks[i] = malloc(1 << 20);
        if (!blocks[i])
            return skiff_raise(ctx, "MemoryError", "malloc failed after %lld MiB", (long long)i);
        memset(blocks[i], (int)i + 1, 1 << 20);
    }
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
    for (int64_t i = 0; i < mib; i++)
        free(blocks[i]);
    free(blocks);
    *out = skiff_value_int(mib);
    return 0;
}
SKIFF_FUNCTION(hog, .signature = "mib:int");

/* A fork bomb that counts: forks up to n children that wait, stops at the first failure, then
 * kills and reaps them. Returns {"forked": count, "error": "ok" or the failure's errno name}. */
static int forkbomb(skiff_ctx *ctx, skiff_value **out)
{
    int64_t n = skiff_arg_int(ctx, "n");
    pid_t *kids = calloc((size_t)n + 1, sizeof *kids);
    if (!kids)
        return skiff_raise(ctx, "MemoryError", "calloc");
    int64_t forked = 0;
    const char *error = "ok";
    while (forked < n) {
        pid_t p = fork();
        if (p < 0) {
            error = outcome(0);
            break;
        }
        if (p == 0) {
            pause();
            _exit(0);
        }
        kids[forked++] = p;
    }
    for (int64_t i = 0; i < forked; i++)
        kill(kids[i], SIGKILL);
    for (int64_t i = 0; i < forked; i++)
        waitpid(kids[i], NULL, 0);
    free(kids);
    skiff_value *m = skiff_value_map();
    skiff_map_set(m, "forked", skiff_value_int(forked));
    skiff_map_set(m, "error", skiff_value_string(error));
    *out = m;
    return 0;
}
SKIFF_FUNCTION(forkbomb, .signature = "n:int");

/* Spins for ms of wall time; returns the cpu time it got, in ms. */
static int spin(skiff_ctx *ctx, skiff_value **out)
{
    struct timespec t0, now, c0, c1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    double ms = (double)skiff_arg_int(ctx, "ms");
    volatile unsigned long x = 0;
    do {
        for (int i = 0; i < 100000; i++)
            x += (unsigned long)i;
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((double)(now.tv_sec - t0.tv_sec) * 1e3 + (double)(now.tv_nsec - t0.tv_nsec) / 1e6 <
             ms);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    *out = skiff_value_double((double)(c1.tv_sec - c0.tv_sec) * 1e3 +
                              (double)(c1.tv_nsec - c0.tv_nsec) / 1e6);
    return 0;
}
SKIFF_FUNCTION(spin, .signature = "ms:int");
