#!/usr/bin/env bash
# schedule.sh - functions that run on their own (issue 10): `.period_s = N` runs a function
# every N seconds as a spawned call (its lines in the logs, its calls readable with `skiff
# get`), `.cron` computes its next time in UTC, stopping the app stops the runs, a redeploy
# reschedules, a restart continues a schedule (no lost or doubled runs; one catch-up for runs
# missed while the server was down), and bad schedules are deploy errors naming the problem.
source "$SKIFF_SRC/tests/integration/lib.sh"

start_server

runs() { # the number of runs of sched-test.tick so far (its log lines)
    sk logs sched-test tick
    grep -c "tick ran as fc-" <<<"$OUT" || true
}
stat() { # KEY: a field of tick's (or $2's) stats
    sk stats sched-test "${2:-tick}" --json
    json_field "$OUT" "$1"
}

begin "a 1 s period runs repeatedly, each run a spawned call"
deploy tests/integration/apps/sched.c
more_than() { [[ $(runs) -ge $1 ]]; }
wait_until 15 "three runs of tick" more_than 3
last=$(stat last_call)
expect_match "$last" '^fc-' "stats name the last run's call"
sk get "$last" --timeout 10
expect_eq "$RC" 0 "the run's call can be read back"
expect_eq "$OUT" '"ticked"' "its result"
expect_eq "$(stat spec)" "every 1s" "stats show the schedule"
sk app list --json
expect_contains "$OUT" '"schedules":["yearly: cron 0 0 1 1 *","tick: every 1s"]' "app list shows them"

begin "a cron schedule's next time is the next matching minute (UTC)"
now=$(date +%s)
next=$(stat next_run yearly)
expect_eq "$(date -u -d "@$next" +%m-%d_%H:%M:%S)" "01-01_00:00:00" "\"0 0 1 1 *\" runs at New Year, UTC"
[[ $next -gt $now && $next -le $((now + 366 * 86400)) ]] || fail "next run $next is not within the year after $now"
expect_eq "$(stat runs yearly)" 0 "it has not run"
sk stats sched-test plain --json
expect_eq "$(json_field "$OUT" spec)" "" "an unscheduled function has no schedule"

begin "a restart continues the schedules: the same next times, runs go on"
before=$(stat next_run yearly)
n=$(runs)
restart_server
expect_eq "$(stat next_run yearly)" "$before" "the cron schedule's next run is unchanged"
expect_eq "$(stat runs yearly)" 0 "and it did not run at start-up"
wait_until 15 "tick runs again after the restart" more_than $((n + 2))

begin "runs missed while the server was down: one catch-up run at start-up"
stop_server
sleep 4 # three runs of tick missed
start_server
catchup() { [[ $(grep -c "schedule: sched-test.tick: catch-up run" "$SERVER_LOG") -ge 1 ]]; }
wait_until 10 "the catch-up run" catchup
sleep 0.5
expect_eq "$(grep -c "schedule: sched-test.tick: catch-up run" "$SERVER_LOG")" 1 "one catch-up, not three"

begin "a redeploy with other schedules reschedules them"
deploy tests/integration/apps/sched2.c
now=$(date +%s)
expect_eq "$(stat spec)" "every 3600s" "tick's new schedule"
next=$(stat next_run)
[[ $next -ge $((now + 3590)) && $next -le $((now + 3610)) ]] || fail "tick's next run $next is not an hour after $now"
sk stats sched-test yearly --json
expect_eq "$(json_field "$OUT" spec)" "" "yearly's schedule is gone"
sk app list --json
expect_contains "$OUT" '"schedules":["tick: every 3600s"]' "app list"

begin "stopping the app stops its runs"
deploy tests/integration/apps/sched.c
wait_until 15 "tick runs every second again" more_than $(($(runs) + 2))
n=$(runs)
ok app stop sched-test
sleep 3
deploy tests/integration/apps/sched2.c # readable again; tick now runs hourly
got=$(runs)
[[ $got -le $((n + 1)) ]] || fail "tick ran $((got - n)) times after the stop (at most 1 in flight)"
grep -q "schedule: sched-test.tick: ended" "$SERVER_LOG" || fail "the log does not say the schedule ended"

begin "bad schedules are deploy errors naming the problem"
bad() { # NAME DECLARATION EXPECTED: deploying a function so declared fails with EXPECTED
    cat >"$T/$1.c" <<APP
#include <skiff/app.h>
SKIFF_APP("bad-sched");
static int f(skiff_ctx *ctx, skiff_value **out) { (void)ctx; *out = NULL; return 0; }
SKIFF_FUNCTION(f, $2);
APP
    sk deploy "$T/$1.c"
    expect_eq "$RC" 1 "$1: exit status"
    expect_contains "$ERR" "$3" "$1: message"
}
bad cron5 '.cron = "*/5 * *"' "function 'f': cron \"*/5 * *\": '*/5 * *' has 3 fields; a cron schedule has 5"
bad cronrange '.cron = "61 * * * *"' "the minute field '61' is out of range 0-59"
bad never '.cron = "0 0 30 2 *"' "never matches a date"
bad required '.period_s = 5, .signature = "x:int, y?"' \
    "function 'f' runs on a schedule, with no arguments, but its parameter 'x' is required"
bad negative '.period_s = -5' "period_s -5 must be 1 s to a year"
bad fraction '.period_s = 0.5' "period_s 0.5 must be 1 s to a year"
bad both '.period_s = 60, .cron = "* * * * *"' "give either .period_s or .cron, not both"
bad generator '.generator = true, .period_s = 60' "a generator cannot run on a schedule"
bad web '.web = {"GET"}, .cron = "* * * * *"' "a web endpoint cannot run on a schedule"
cat >"$T/method.c" <<'APP'
#include <skiff/app.h>
SKIFF_APP("bad-sched");
struct st { int n; };
SKIFF_CLASS(C, struct st);
static int m(skiff_ctx *ctx, skiff_value **out) { (void)ctx; *out = NULL; return 0; }
SKIFF_METHOD(C, m, .period_s = 60);
APP
sk deploy "$T/method.c"
expect_eq "$RC" 1 "method: exit status"
expect_contains "$ERR" "method 'C.m' has a schedule; schedules are for plain functions" "method"
sk app list --json
[[ $OUT != *bad-sched* ]] || fail "a bad schedule was deployed: $OUT"

finish
