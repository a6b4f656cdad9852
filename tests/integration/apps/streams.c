/*
 * streams.c - the app tests/integration/http_stream.sh deploys (app "itest-streams"): a slow
 * generator, a generator of large items, and a function that fails on 0, for the JSON API's
 * NDJSON streams of generators and maps; and a function that prints, for the input ids of a
 * map's log lines.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <skiff/app.h>

SKIFF_APP("itest-streams");

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Yields 0 .. n-1, ms milliseconds apart. */
static int ticks(skiff_ctx *ctx, skiff_value **out)
{
    (void)out;
    int64_t n = skiff_arg_int(ctx, "n"), ms = skiff_arg_int(ctx, "ms");
    for (int64_t i = 0; i < n; i++) {
        if (i)
            sleep_ms(ms);
        if (skiff_yield(ctx, skiff_value_int(i)) != SKIFF_OK)
            return skiff_raise(ctx, "RuntimeError", "could not yield item %lld", (long long)i);
    }
    return 0;
}
SKIFF_FUNCTION(ticks, .signature = "n:int, ms:int", .generator = true);

/* Yields n strings of 64 KiB each. */
static int big(skiff_ctx *ctx, skiff_value **out)
{
    (void)out;
    static char s[64 * 1024 + 1];
    memset(s, 'x', sizeof s - 1);
    int64_t n = skiff_arg_int(ctx, "n");
    for (int64_t i = 0; i < n; i++)
        if (skiff_yield(ctx, skiff_value_string(s)) != SKIFF_OK)
            return skiff_raise(ctx, "RuntimeError", "could not yield item %lld", (long long)i);
    return 0;
}
SKIFF_FUNCTION(big, .signature = "n:int", .generator = true);

/* 100 / x, printing "inv <x>" first; x = 0 is a ValueError. */
static int inv(skiff_ctx *ctx, skiff_value **out)
{
    int64_t x = skiff_arg_int(ctx, "x");
    printf("inv %lld\n", (long long)x);
    if (!x)
        return skiff_raise(ctx, "ValueError", "cannot invert 0");
    *out = skiff_value_int(100 / x);
    return 0;
}
SKIFF_FUNCTION(inv, .signature = "x:int", .max_inputs = 8);

/* Prints "shout <x> <its input id>" on stdout and "whisper <x>" on stderr, and returns its input
 * id: one input at a time, on one container, so a map's inputs queue up on it. */
static int shout(skiff_ctx *ctx, skiff_value **out)
{
    int64_t x = skiff_arg_int(ctx, "x");
    const char *id = skiff_ctx_input_id(ctx);
    printf("shout %lld %s\n", (long long)x, id);
    fprintf(stderr, "whisper %lld\n", (long long)x);
    *out = skiff_value_string(id);
    return 0;
}
SKIFF_FUNCTION(shout, .signature = "x:int", .max_containers = 1);
