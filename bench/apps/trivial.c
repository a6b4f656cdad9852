/*
 * trivial.c - the app the benchmarks call (app "bench"): echo(x) returns its argument, so a
 * measurement is the cost of skiff itself, not of the function.
 */
#include <skiff/app.h>
#include <time.h>

SKIFF_APP("bench");

static int echo(skiff_ctx *ctx, skiff_value **out)
{
    *out = skiff_value_copy(skiff_arg(ctx, "x"));
    return *out ? 0 : skiff_raise(ctx, "MemoryError", "out of memory");
}
SKIFF_FUNCTION(echo, .signature = "x:any");

/* Sleeps ms milliseconds (returning early when cancelled): one container, so a burst of inputs
 * stays queued, for the memory benchmark. */
static int hold(skiff_ctx *ctx, skiff_value **out)
{
    for (int64_t left = skiff_arg_int(ctx, "ms"); left > 0 && !skiff_ctx_cancelled(ctx);
         left -= 10) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    *out = NULL;
    return 0;
}
SKIFF_FUNCTION(hold, .signature = "ms:int, pad:any?", .max_containers = 1);
