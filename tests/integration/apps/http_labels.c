/*
 * http_labels.c - a web endpoint whose default label is over 63 characters (tests/integration/
 * http.sh): app and function names long enough that <app>-<function> is cut to 56 characters,
 * "-" and 6 hex digits of its SHA-256.
 */
#include <skiff/app.h>

SKIFF_APP("An.App_With-A-Rather-Long-Name-For-Labels");

static int long_function_name_for_the_label(skiff_ctx *ctx, skiff_value **out)
{
    *out = skiff_value_string("long label");
    return *out ? 0 : skiff_raise(ctx, "MemoryError", "out of memory");
}
SKIFF_FUNCTION(long_function_name_for_the_label, .signature = "", .web = {"GET"});
