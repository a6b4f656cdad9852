/*
 * coldstart.c - the app bench/bench_coldstart.c calls (app "bench-coldstart"): first() returns
 * the id of the container that ran it, and its containers stop after 1 ms idle, so a call made
 * a little later always needs a new container: its latency is a cold start.
 */
#include <stdlib.h>

#include <skiff/app.h>

SKIFF_APP("bench-coldstart");

static int first(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    const char *id = getenv("SKIFF_CONTAINER_ID");
    *out = skiff_value_string(id ? id : "");
    return *out ? 0 : skiff_raise(ctx, "MemoryError", "out of memory");
}
SKIFF_FUNCTION(first, .scaledown_window = 0.001);
