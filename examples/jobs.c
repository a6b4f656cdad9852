/*
 * jobs.c - app "example": a long-running job, the shape of work people spawn and poll.
 *
 *     skiff deploy examples/jobs.c
 *     skiff spawn example train_model '"job-1"' '{"seconds": 5}'    # prints fc-...
 *     skiff get fc-... --timeout 0                                    # exit 124 while running
 *     skiff call example train_model '"job-2"' '{"fail": true}'      # ValueError, exit 1
 *
 * train_model(job_id, params) "trains" for params.seconds (a number, default 0) in small steps,
 * stopping early with a CancelledError when the call is cancelled, then returns
 * {"job_id": job_id, "status": "done"}; with params.fail true it fails with a ValueError
 * mentioning the job id instead.
 */
#include <errno.h>
#include <time.h>

#include <skiff/app.h>

SKIFF_APP("example");

/* How often a running job checks whether it was cancelled. */
#define STEP_SECONDS 0.01
/* Longest job: a function's timeout is at most 24 h anyway. */
#define MAX_SECONDS 86400

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_for(double seconds)
{
    time_t whole = (time_t)seconds;
    struct timespec ts = {whole, (long)((seconds - (double)whole) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int train_model(skiff_ctx *ctx, skiff_value **out)
{
    const char *job_id = skiff_arg_string(ctx, "job_id");
    const skiff_value *params = skiff_arg(ctx, "params"); /* a map, or NULL / nil */
    const skiff_value *secs = skiff_map_get(params, "seconds");
    double seconds = 0;
    if (secs && skiff_value_type(secs) != SKIFF_NIL) {
        if (skiff_value_type(secs) != SKIFF_INT && skiff_value_type(secs) != SKIFF_DOUBLE)
            return skiff_raise(ctx, "TypeError", "job %s: params.seconds must be a number, not %s",
                               job_id, skiff_type_name(skiff_value_type(secs)));
        seconds = skiff_value_get_double(secs);
        if (!(seconds >= 0 && seconds <= MAX_SECONDS))
            return skiff_raise(ctx, "ValueError",
                               "job %s: params.seconds must be between 0 and %d, not %g", job_id,
                               MAX_SECONDS, seconds);
    }
    double end = now() + seconds;
    for (double left = seconds; left > 0; left = end - now()) {
        if (skiff_ctx_cancelled(ctx))
            return skiff_raise(ctx, "CancelledError", "job %s was cancelled after %.2f s", job_id,
                               seconds - left);
        sleep_for(left < STEP_SECONDS ? left : STEP_SECONDS);
    }
    if (skiff_value_get_bool(skiff_map_get(params, "fail")))
        return skiff_raise(ctx, "ValueError", "job %s failed: params.fail was set", job_id);
    skiff_value *result = skiff_value_map();
    if (!result || skiff_map_set(result, "job_id", skiff_value_string(job_id)) != SKIFF_OK ||
        skiff_map_set(result, "status", skiff_value_string("done")) != SKIFF_OK) {
        skiff_value_free(result);
        return skiff_raise(ctx, "MemoryError", "out of memory");
    }
    *out = result;
    return 0;
}
SKIFF_FUNCTION(train_model, .signature = "job_id:str, params:map?");
