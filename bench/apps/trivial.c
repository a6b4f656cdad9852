/*
 * trivial.c - the app the benchmarks call (app "bench"): echo(x) returns its argument, so a
 * measurement is the cost of skiff itself, not of the function.
 */
#include <skiff/app.h>

SKIFF_APP("bench");

static int echo(skiff_ctx *ctx, skiff_value **out)
{
    *out = skiff_value_copy(skiff_arg(ctx, "x"));
    return *out ? 0 : skiff_raise(ctx, "MemoryError", "out of memory");
}
SKIFF_FUNCTION(echo, .signature = "x:any");
