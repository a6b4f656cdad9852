/*
 * schedule.h - functions that run on their own: `.period_s = N` and `.cron = "m h dom mon dow"`.
 *
 * Each scheduled function (a live plain function of a running app, not an ephemeral one, whose
 * configuration has period_s or cron) has a libuv timer. When it is due, the server makes a spawned
 * call of the function with no arguments (calls_start): a durable call like any other, so it shows
 * in the logs, the call graph and the stats, and gets the function's timeout and retries. The rules
 * (docs/app-sdk.md, "Schedules"):
 *   - a period schedule runs every period_s seconds counted from the deploy that set it, a cron
 *     schedule at each matching minute (UTC);
 *   - a run still pending, running or waiting for a retry when the next is due makes that next
 *     run be skipped (one run at a time; the log says so);
 *   - the time of the last run (or of the deploy that set the schedule) is kept in the store's
 *     `schedules` table, so a restart continues the schedule: a run missed while the server was
 *     down runs once at start-up (at most one catch-up, however many were missed), and a run
 *     made just before a restart is not made again;
 *   - a redeploy with the same schedule keeps its timing; a changed one starts again from the
 *     redeploy; stopping the app or removing the schedule ends it and forgets its times.
 * Times are the wall clock (unix ms); timers wait at most a minute at a time, so a clock that
 * jumps is noticed within a minute.
 */
#ifndef SKIFF_SERVER_SCHEDULE_H
#define SKIFF_SERVER_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/id.h"

struct function;

/* A period's bounds (seconds): a second is the timers' grain; a year guards against typos. */
#define SCHEDULE_PERIOD_MIN 1.0
#define SCHEDULE_PERIOD_MAX (366.0 * 86400)

/* Sets up the module on loop (its table in the store). 0, or -1 (logged). Call after
 * store_open and before apps_start_all. */
int schedule_init(uv_loop_t *loop);
/* Shutdown: closes the timers (the loop then winds down); then schedule_deinit frees. */
void schedule_shutdown(void);
void schedule_deinit(void);

/* f was deployed, redeployed, stopped or loaded at start-up: arms, re-arms or ends its
 * schedule as its configuration and liveness now say. Safe on any function; does nothing
 * before schedule_init. */
void schedule_function_changed(struct function *f);

/* What STATS shows of a function's schedule. */
struct schedule_view {
    const char *spec;      /* "every 5s" or "cron 0 9 * * 1" (borrowed) */
    int64_t next_ms;       /* unix ms of the next run */
    const char *last_call; /* the "fc-" id of the last run, or NULL */
    uint64_t runs;         /* runs started since the server started */
    uint64_t skipped;      /* runs skipped (the previous one had not finished) */
};

/* Fills *out and returns true when f has a schedule; false otherwise (out untouched). The
 * strings live until the schedule changes. */
bool schedule_view(const struct function *f, struct schedule_view *out);

#endif
