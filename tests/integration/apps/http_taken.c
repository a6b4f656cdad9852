/*
 * http_taken.c - a web endpoint claiming the label "add" that examples/web.c already holds: the
 * deploy must fail while web-demo is deployed (tests/integration/http.sh).
 */
#include <skiff/app.h>

SKIFF_APP("http-taken");

static int add(skiff_ctx *ctx, skiff_value **out)
{
    *out = skiff_value_int(0);
    return *out ? 0 : skiff_raise(ctx, "MemoryError", "out of memory");
}
SKIFF_FUNCTION(add, .signature = "", .web = {"POST", "add"});
