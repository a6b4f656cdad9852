/*
 * sched.c - a test app with schedules (tests/integration/schedule.sh): tick runs every second
 * and prints a line per run; yearly is a cron schedule (New Year, UTC); plain is called as usual.
 */
#include <stdio.h>
#include <skiff/app.h>

SKIFF_APP("sched-test");

static int tick(skiff_ctx *ctx, skiff_value **out)
{
    printf("tick ran as %s\n", skiff_ctx_call_id(ctx));
    *out = skiff_value_string("ticked");
    return 0;
}
SKIFF_FUNCTION(tick, .period_s = 1, .signature = "note:str?");

static int yearly(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    printf("yearly ran\n");
    *out = NULL;
    return 0;
}
SKIFF_FUNCTION(yearly, .cron = "0 0 1 1 *"); /* never during a test */

static int plain(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    *out = skiff_value_int(7);
    return 0;
}
SKIFF_FUNCTION(plain);
