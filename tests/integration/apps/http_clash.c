/*
 * http_clash.c - two web endpoints claiming one label: the deploy must fail
 * (tests/integration/http.sh).
 */
#include <skiff/app.h>

SKIFF_APP("http-clash");

static int one(skiff_ctx *ctx, skiff_value **out)
{
    *out = skiff_value_int(1);
    return *out ? 0 : skiff_raise(ctx, "MemoryError", "out of memory");
}
SKIFF_FUNCTION(one, .signature = "", .web = {"GET", "same-label"});

static int two(skiff_ctx *ctx, skiff_value **out)
{
    *out = skiff_value_int(2);
    return *out ? 0 : skiff_raise(ctx, "MemoryError", "out of memory");
}
SKIFF_FUNCTION(two, .signature = "", .web = {"GET", "same-label"});
