/*
 * probe.c - the app the integration tests deploy to observe the server from the inside
 * (app "itest-probe"): which process ran an input (pid), when inputs run (files they create),
 * how containers scale and stop, and how crashes, timeouts and large results are handled.
 * Each function's limits are chosen for one test; see tests/integration/itest_*.c.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <skiff/app.h>

SKIFF_APP("itest-probe");

/* Sleeps ms milliseconds in small steps, returning early once the input is cancelled. */
static void nap(skiff_ctx *ctx, int64_t ms)
{
    for (int64_t left = ms; left > 0 && !skiff_ctx_cancelled(ctx); left -= 10) {
        struct timespec ts = {0, (left < 10 ? left : 10) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Creates the file at path (if one is given), appending the pid. */
static void mark(const char *path)
{
    if (!path || !*path)
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        char line[32];
        int n = snprintf(line, sizeof line, "%d\n", (int)getpid());
        if (write(fd, line, (size_t)n) < 0) {
            /* nothing to do: the test sees the file without the line */
        }
        close(fd);
    }
}

/* The container's pid. */
static int pid(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    *out = skiff_value_int(getpid());
    return 0;
}
SKIFF_FUNCTION(pid);

/* Echoes its argument. */
static int echo(skiff_ctx *ctx, skiff_value **out)
{
    *out = skiff_value_copy(skiff_arg(ctx, "x"));
    return *out ? 0 : skiff_raise(ctx, "MemoryError", "out of memory");
}
SKIFF_FUNCTION(echo, .signature = "x:any");

/* Marks `before` (optional), sleeps ms, marks `after` (optional), returns the pid. Up to 4
 * containers: the scale-up test runs several at once. A cancelled input returns early, without
 * marking `after`. */
static int sleep_ms(skiff_ctx *ctx, skiff_value **out)
{
    mark(skiff_arg_string(ctx, "before"));
    nap(ctx, skiff_arg_int(ctx, "ms"));
    if (skiff_ctx_cancelled(ctx))
        return skiff_raise(ctx, "Cancelled", "the input was cancelled while it slept");
    mark(skiff_arg_string(ctx, "after"));
    *out = skiff_value_int(getpid());
    return 0;
}
SKIFF_FUNCTION(sleep_ms, .signature = "ms:int, before:str?, after:str?", .max_containers = 4);

/* The same with at most one container, so further inputs stay pending while one runs. */
static int serial(skiff_ctx *ctx, skiff_value **out)
{
    return sleep_ms(ctx, out);
}
SKIFF_FUNCTION(serial, .signature = "ms:int, before:str?, after:str?", .max_containers = 1);

/* The pid, from containers that stop after 1 s idle. */
static int short_lived(skiff_ctx *ctx, skiff_value **out)
{
    return pid(ctx, out);
}
SKIFF_FUNCTION(short_lived, .scaledown_window = 1);

/* Sleeps ms, then fails with a ValueError whose message is msg. */
static int fail_after(skiff_ctx *ctx, skiff_value **out)
{
    (void)out;
    nap(ctx, skiff_arg_int(ctx, "ms"));
    return skiff_raise(ctx, "ValueError", "%s", skiff_arg_string(ctx, "msg"));
}
SKIFF_FUNCTION(fail_after, .signature = "msg:str, ms:int");

/* Crashes of the container while it runs an input. */
static int segv(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    (void)out;
    raise(SIGSEGV);
    return 0;
}
SKIFF_FUNCTION(segv);

static int abort_now(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    (void)out;
    abort();
}
SKIFF_FUNCTION(abort_now);

static int exit_now(skiff_ctx *ctx, skiff_value **out)
{
    (void)out;
    _exit((int)skiff_arg_int(ctx, "code"));
}
SKIFF_FUNCTION(exit_now, .signature = "code:int");

/* Runs past its 1 s timeout (ignoring cancellation, like a stuck function). */
static int too_slow(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    sleep(30);
    *out = skiff_value_int(getpid());
    return 0;
}
SKIFF_FUNCTION(too_slow, .timeout = 1);

/* A result of n bytes. */
static int big(skiff_ctx *ctx, skiff_value **out)
{
    int64_t n = skiff_arg_int(ctx, "n");
    char *p = calloc(1, (size_t)n + 1);
    if (!p)
        return skiff_raise(ctx, "MemoryError", "cannot allocate %lld bytes", (long long)n);
    *out = skiff_value_bytes(p, (size_t)n);
    free(p);
    return 0;
}
SKIFF_FUNCTION(big, .signature = "n:int");

/* x + y (y defaults to 0): maps with keyword arguments for every input. */
static int add(skiff_ctx *ctx, skiff_value **out)
{
    *out = skiff_value_int(skiff_arg_int(ctx, "x") + skiff_arg_int(ctx, "y"));
    return 0;
}
SKIFF_FUNCTION(add, .signature = "x:int, y:int?");

/* Fails with a ValueError for multiples of 3, returns x otherwise: failures in a map's place. */
static int not_three(skiff_ctx *ctx, skiff_value **out)
{
    int64_t x = skiff_arg_int(ctx, "x");
    if (x % 3 == 0)
        return skiff_raise(ctx, "ValueError", "%lld is a multiple of 3", (long long)x);
    *out = skiff_value_int(x);
    return 0;
}
SKIFF_FUNCTION(not_three, .signature = "x:int");

/* Sleeps a little longer for small x: completion order differs from input order. */
static int slower_first(skiff_ctx *ctx, skiff_value **out)
{
    int64_t x = skiff_arg_int(ctx, "x");
    nap(ctx, x < 8 ? 80 - 10 * x : 0);
    *out = skiff_value_int(x);
    return 0;
}
SKIFF_FUNCTION(slower_first, .signature = "x:int", .max_containers = 8);

/* Prints msg on stdout and "err: msg" on stderr (the logs test). */
static int shout(skiff_ctx *ctx, skiff_value **out)
{
    const char *msg = skiff_arg_string(ctx, "msg");
    printf("%s\n", msg);
    fflush(stdout);
    fprintf(stderr, "err: %s\n", msg);
    *out = NULL;
    return 0;
}
SKIFF_FUNCTION(shout, .signature = "msg:str");
