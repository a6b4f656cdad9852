/*
 * sched2.c - sched.c redeployed with other schedules (tests/integration/schedule.sh): tick now
 * runs hourly, yearly has no schedule, plain is gone.
 */
#include <stdio.h>
#include <skiff/app.h>

SKIFF_APP("sched-test");

static int tick(skiff_ctx *ctx, skiff_value **out)
{
    printf("tick ran as %s\n", skiff_ctx_call_id(ctx));
    *out = NULL;
    return 0;
}
SKIFF_FUNCTION(tick, .period_s = 3600);

static int yearly(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    *out = NULL;
    return 0;
}
SKIFF_FUNCTION(yearly);
