/*
 * faulty.c - app "faulty": functions that misbehave on purpose, for the integration tests of
 * containers, errors, limits and the call graph.
 *
 *   segv()                 dereferences NULL (the container dies of SIGSEGV)
 *   abort_now()            abort() (SIGABRT)
 *   exit_now(code?)        _exit(code), default 3 (nothing else runs: the status is exact)
 *   sleep_for(seconds)     sleeps, ignoring cancellation; returns seconds
 *   cancellable(seconds)   sleeps in 10 ms steps until done or cancelled; returns
 *                          {"cancelled": bool, "slept": seconds}
 *   big(n)                 n bytes (0x61 'a' each): over the payload limit -> RequestSizeError
 *   echo(...)              no signature: returns {"args": [...], "kwargs": {...}}
 *   fail(type, message)    fails with that error type and message
 *   fail_silently(code?)   returns code (default 1) without raising -> a generic "Error"
 *   nil_result()           returns 0 with no value -> nil
 *   typed(i:int, f:float, s:str, b:bytes?, flag:bool?)
 *                          returns {"i", "f" (always a float), "s", "b" (nil when omitted),
 *                          "flag"}
 *   pid()                  the container's process id (tests observe container reuse)
 *   info()                 {"input_id", "call_id", "container_id", "pid"}
 *   slow_square(x, seconds)  sleeps, then x*x
 *   timeout_fn(x, seconds) slow_square with .timeout = 1
 *   call(app, function, args?, kwargs?)
 *                          calls app.function from inside this function and returns its result;
 *                          its failure is raised again (traceback through both)
 *   say(message)           prints message on stdout and stderr (container logs); returns nil
 *   deep(n)                a list nested n levels deep (over 32 -> SerializationError)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <skiff/app.h>

SKIFF_APP("faulty");

/* Largest big(n) honoured: beyond any payload limit worth testing, below memory trouble. */
#define BIG_MAX (512LL << 20)

static void sleep_seconds(double seconds)
{
    if (!(seconds > 0))
        return;
    time_t whole = (time_t)seconds;
    struct timespec ts = {whole, (long)((seconds - (double)whole) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sets *out to v, or raises MemoryError when v is NULL (a constructor ran out of memory). */
static int give(skiff_ctx *ctx, skiff_value **out, skiff_value *v)
{
    if (!v)
        return skiff_raise(ctx, "MemoryError", "out of memory");
    *out = v;
    return 0;
}

/* Sets key to item in map, freeing the map on failure. The map, or NULL. */
static skiff_value *with(skiff_value *map, const char *key, skiff_value *item)
{
    if (map && skiff_map_set(map, key, item) == SKIFF_OK)
        return map;
    skiff_value_free(map);
    return NULL;
}

static int segv(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    (void)out;
    volatile int *p = NULL;
    *p = 1;
    return 0;
}
SKIFF_FUNCTION(segv, .signature = "");

static int abort_now(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    (void)out;
    abort();
}
SKIFF_FUNCTION(abort_now, .signature = "");

static int exit_now(skiff_ctx *ctx, skiff_value **out)
{
    (void)out;
    const skiff_value *code = skiff_arg(ctx, "code");
    fflush(NULL);
    _exit(code ? (int)skiff_value_get_int(code) : 3);
}
SKIFF_FUNCTION(exit_now, .signature = "code:int?");

static int sleep_for(skiff_ctx *ctx, skiff_value **out)
{
    double seconds = skiff_arg_double(ctx, "seconds");
    sleep_seconds(seconds);
    return give(ctx, out, skiff_value_double(seconds));
}
SKIFF_FUNCTION(sleep_for, .signature = "seconds:float");

static int cancellable(skiff_ctx *ctx, skiff_value **out)
{
    double seconds = skiff_arg_double(ctx, "seconds");
    double start = now(), end = start + seconds;
    bool cancelled = false;
    while (!(cancelled = skiff_ctx_cancelled(ctx)) && now() < end)
        sleep_seconds(0.01);
    skiff_value *m = with(skiff_value_map(), "cancelled", skiff_value_bool(cancelled));
    return give(ctx, out, with(m, "slept", skiff_value_double(now() - start)));
}
SKIFF_FUNCTION(cancellable, .signature = "seconds:float");

static int big(skiff_ctx *ctx, skiff_value **out)
{
    int64_t n = skiff_arg_int(ctx, "n");
    if (n < 0 || n > BIG_MAX)
        return skiff_raise(ctx, "ValueError", "big(%lld): n must be between 0 and %lld",
                           (long long)n, BIG_MAX);
    char *p = malloc(n ? (size_t)n : 1);
    if (!p)
        return skiff_raise(ctx, "MemoryError", "cannot allocate %lld bytes", (long long)n);
    memset(p, 'a', (size_t)n);
    skiff_value *v = skiff_value_bytes(p, (size_t)n);
    free(p);
    return give(ctx, out, v);
}
SKIFF_FUNCTION(big, .signature = "n:int");

static int echo(skiff_ctx *ctx, skiff_value **out)
{
    skiff_value *m = with(skiff_value_map(), "args", skiff_value_copy(skiff_ctx_args(ctx)));
    return give(ctx, out, with(m, "kwargs", skiff_value_copy(skiff_ctx_kwargs(ctx))));
}
SKIFF_FUNCTION(echo);

static int fail(skiff_ctx *ctx, skiff_value **out)
{
    (void)out;
    return skiff_raise(ctx, skiff_arg_string(ctx, "type"), "%s", skiff_arg_string(ctx, "message"));
}
SKIFF_FUNCTION(fail, .signature = "type:str, message:str");

static int fail_silently(skiff_ctx *ctx, skiff_value **out)
{
    (void)out;
    const skiff_value *code = skiff_arg(ctx, "code");
    return code ? (int)skiff_value_get_int(code) : 1;
}
SKIFF_FUNCTION(fail_silently, .signature = "code:int?");

static int nil_result(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    *out = NULL;
    return 0;
}
SKIFF_FUNCTION(nil_result, .signature = "");

static int typed(skiff_ctx *ctx, skiff_value **out)
{
    const skiff_value *b = skiff_arg(ctx, "b");
    skiff_value *m = with(skiff_value_map(), "i", skiff_value_int(skiff_arg_int(ctx, "i")));
    m = with(m, "f", skiff_value_double(skiff_arg_double(ctx, "f")));
    m = with(m, "s", skiff_value_string(skiff_arg_string(ctx, "s")));
    m = with(m, "b", b ? skiff_value_copy(b) : skiff_value_nil());
    m = with(m, "flag", skiff_value_bool(skiff_arg_bool(ctx, "flag")));
    return give(ctx, out, m);
}
SKIFF_FUNCTION(typed, .signature = "i:int, f:float, s:str, b:bytes?, flag:bool?");

static int pid(skiff_ctx *ctx, skiff_value **out)
{
    return give(ctx, out, skiff_value_int((int64_t)getpid()));
}
SKIFF_FUNCTION(pid, .signature = "");

static int info(skiff_ctx *ctx, skiff_value **out)
{
    skiff_value *m =
        with(skiff_value_map(), "input_id", skiff_value_string(skiff_ctx_input_id(ctx)));
    m = with(m, "call_id", skiff_value_string(skiff_ctx_call_id(ctx)));
    m = with(m, "container_id", skiff_value_string(skiff_ctx_container_id(ctx)));
    m = with(m, "pid", skiff_value_int((int64_t)getpid()));
    return give(ctx, out, m);
}
SKIFF_FUNCTION(info, .signature = "");

static int slow_square(skiff_ctx *ctx, skiff_value **out)
{
    int64_t x = skiff_arg_int(ctx, "x");
    sleep_seconds(skiff_arg_double(ctx, "seconds"));
    return give(ctx, out, skiff_value_int((int64_t)((uint64_t)x * (uint64_t)x)));
}
SKIFF_FUNCTION(slow_square, .signature = "x:int, seconds:float");

static int timeout_fn(skiff_ctx *ctx, skiff_value **out)
{
    return slow_square(ctx, out);
}
SKIFF_FUNCTION(timeout_fn, .signature = "x:int, seconds:float", .timeout = 1);

static int call(skiff_ctx *ctx, skiff_value **out)
{
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_client *client = skiff_ctx_client(ctx, &err);
    skiff_function *fn = NULL;
    skiff_value *result = NULL;
    int rc;
    if (client &&
        skiff_function_from_name(client, skiff_arg_string(ctx, "app"),
                                 skiff_arg_string(ctx, "function"), &fn, &err) == SKIFF_OK &&
        skiff_function_remote(fn, skiff_arg(ctx, "args"), skiff_arg(ctx, "kwargs"), &result,
                              &err) == SKIFF_OK) {
        *out = result;
        rc = 0;
    } else {
        rc = skiff_raise_error(ctx, &err);
    }
    skiff_function_free(fn);
    skiff_error_clear(&err);
    return rc;
}
SKIFF_FUNCTION(call, .signature = "app:str, function:str, args:list?, kwargs:map?");

static int say(skiff_ctx *ctx, skiff_value **out)
{
    (void)out;
    const char *msg = skiff_arg_string(ctx, "message");
    printf("%s\n", msg);
    fflush(stdout);
    fprintf(stderr, "%s\n", msg);
    return 0;
}
SKIFF_FUNCTION(say, .signature = "message:str");

static int deep(skiff_ctx *ctx, skiff_value **out)
{
    int64_t n = skiff_arg_int(ctx, "n");
    if (n < 0 || n > 1000)
        return skiff_raise(ctx, "ValueError", "deep(%lld): n must be between 0 and 1000",
                           (long long)n);
    skiff_value *v = skiff_value_nil();
    for (int64_t i = 0; v && i < n; i++)
        v = skiff_value_list_of(1, v);
    return give(ctx, out, v);
}
SKIFF_FUNCTION(deep, .signature = "n:int");
