#!/usr/bin/env bash
# restart.sh - issue 2, points 4 and 6 through the CLI: spawned calls survive kill -9 of skiffd
# (pending ones complete after the restart, finished ones keep their results), results survive
# a clean restart, and with a short --retention a result expires: `get` then fails (exit 1,
# OutputExpiredError), which is different from "still running" (exit 124).
# shellcheck disable=SC2119 # restart_server without options
source "$SKIFF_SRC/tests/integration/lib.sh"

start_server
deploy examples/jobs.c

begin "spawned calls survive kill -9"
ok spawn example train_model '"done-before"' '{"seconds": 0}'
done_id=$OUT
ok get "$done_id"
done_result=$OUT
ids=()
for i in 1 2 3 4 5; do
    ok spawn example train_model "\"pending-$i\"" '{"seconds": 1}'
    ids+=("$OUT")
done
kill9_server
start_server
for i in 1 2 3 4 5; do
    ok get "${ids[$((i - 1))]}" --timeout "$(scaled 30)"
    expect_contains "$OUT" "\"job_id\":\"pending-$i\"" "result of pending-$i after the restart"
done
ok get "$done_id" --timeout 0
expect_eq "$OUT" "$done_result" "a finished result after kill -9"

begin "results and apps survive a clean restart"
restart_server
ok get "$done_id" --timeout 0
expect_eq "$OUT" "$done_result" "a finished result after a restart"
ok get "${ids[0]}" --timeout 0
expect_contains "$OUT" '"job_id":"pending-1"' "result after a second restart"
ok call example train_model '"after-restart"' '{"seconds": 0}'
expect_contains "$OUT" '"status":"done"' "calling a deployed app after restarts"

begin "an expired result is OutputExpiredError, not a timeout"
restart_server --retention 1
ok spawn example train_model '"short-lived"' '{"seconds": 0}'
id=$OUT
ok get "$id"
ok spawn example train_model '"still-running"' '{"seconds": 5}'
running=$OUT
# The result goes once the retention has passed; poll until it does.
expired() { sk get "$id" --timeout 0; [[ $RC -ne 0 ]]; }
wait_until 15 "the result to expire" expired
expect_eq "$RC" 1 "exit status of get of an expired result"
expect_contains "$ERR" "OutputExpiredError" "stderr"
expect_exit 124 get "$running" --timeout 0
expect_exit 1 get fc-00000000000000000000000000
expect_contains "$ERR" "NotFoundError" "an id that never existed"

finish
