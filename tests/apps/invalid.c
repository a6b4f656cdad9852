/*
 * invalid.c - an app that breaks every rule `skiff deploy` checks, for the tests of
 * `skiff-worker --describe` and deploy errors: a bad app name, a malformed signature, a timeout
 * outside 1 s .. 24 h and more warm containers than allowed containers. Describing it must fail
 * and name each problem.
 */
#include <skiff/app.h>

SKIFF_APP("not a valid name!");

static int bad_signature(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    *out = NULL;
    return 0;
}
SKIFF_FUNCTION(bad_signature, .signature = "x:integer, y");

static int bad_limits(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    *out = NULL;
    return 0;
}
SKIFF_FUNCTION(bad_limits, .timeout = 0.5, .min_containers = 5, .max_containers = 2);
