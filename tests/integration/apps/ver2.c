/*
 * ver2.c - version 2 of the app "itest-versioned", for the redeploy test: the same functions
 * as ver1.c returning 2, so a caller can tell which code ran an input.
 */
#include <time.h>

#include <skiff/app.h>

SKIFF_APP("itest-versioned");

/* Sleeps ms milliseconds, then returns this file's version. */
static int version(skiff_ctx *ctx, skiff_value **out)
{
    int64_t ms = skiff_arg_int(ctx, "ms");
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    *out = skiff_value_int(2);
    return 0;
}
SKIFF_FUNCTION(version, .signature = "ms:int?");
