/*
 * coldstart.c - the app bench/bench_coldstart.c calls (app "bench-coldstart"): first() returns
 * the id of the container that ran it, and its containers stop after 1 ms idle, so a call made
 * a little later always needs a new container: its latency is a cold start.
 *
 * Two classes measure snapshot starts: each builds a table with about 50 ms of work when its
 * instance is entered, Snapped in an enter_snap hook (run once, in the pool's template, which
 * the containers are forked from), Plain in an ordinary enter hook (run in every container).
 * Their start() is first().
 */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

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

/* How long entering an instance works, in milliseconds: "something expensive". */
#define BUILD_MS 50
#define TABLE_SIZE (1 << 16)

struct table {
    uint64_t cell[TABLE_SIZE];
    uint64_t rounds;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Fills the table round after round for BUILD_MS of CPU work. */
static int build(skiff_ctx *ctx)
{
    struct table *t = skiff_self(ctx);
    double end = now_ms() + BUILD_MS;
    uint64_t x = 88172645463325252ull;
    while (now_ms() < end) {
        for (int i = 0; i < TABLE_SIZE; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            t->cell[i] += x;
        }
        t->rounds++;
    }
    return 0;
}

/* The classes' method: first() under a name of its own (a method and a function of one app
 * cannot share a name in the worker's lookup). */
static int start(skiff_ctx *ctx, skiff_value **out)
{
    return first(ctx, out);
}

SKIFF_CLASS(Snapped, struct table, .enter_snap = {build}, .scaledown_window = 0.001);
SKIFF_METHOD(Snapped, start, .signature = "");
SKIFF_CLASS(Plain, struct table, .enter = {build}, .scaledown_window = 0.001);
SKIFF_METHOD(Plain, start, .signature = "");
