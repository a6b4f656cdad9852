/*
 * version1.c - app "versioned", version 1: the same functions as version2.c with a
 * different answer, for the redeploy tests (callers keep working by name; inputs already running
 * finish on the code they started with).
 *
 *   version()              1
 *   slow_version(seconds)  sleeps, then 1
 */
#include <errno.h>
#include <time.h>

#include <skiff/app.h>

SKIFF_APP("versioned");

/* This file's version. */
#define VERSION 1

static int version(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    *out = skiff_value_int(VERSION);
    return *out ? 0 : skiff_raise(ctx, "MemoryError", "out of memory");
}
SKIFF_FUNCTION(version, .signature = "");

static int slow_version(skiff_ctx *ctx, skiff_value **out)
{
    double seconds = skiff_arg_double(ctx, "seconds");
    if (seconds > 0) {
        time_t whole = (time_t)seconds;
        struct timespec ts = {whole, (long)((seconds - (double)whole) * 1e9)};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    }
    *out = skiff_value_int(VERSION);
    return *out ? 0 : skiff_raise(ctx, "MemoryError", "out of memory");
}
SKIFF_FUNCTION(slow_version, .signature = "seconds:float");
