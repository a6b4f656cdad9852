#!/usr/bin/env bash
# cli.sh - issue 2 through the `skiff` command line against a real skiffd: deploy and call
# (square, cube across apps, the call_square program), spawn / get --timeout 0 (exit 124) / get /
# get again, a failing job's error on stderr (type, message, traceback) with exit 1, unknown
# apps and functions, wrong arguments, cancel, usage errors (exit 2), --help everywhere, and the
# JSON listings (app list, container list).
source "$SKIFF_SRC/tests/integration/lib.sh"

start_server
deploy examples/square.c
deploy examples/another_app.c
deploy examples/jobs.c

begin "deploy prints JSON naming the app and its functions"
sk deploy "$SKIFF_SRC/examples/square.c"
expect_eq "$RC" 0 "exit status of a redeploy"
expect_contains "$OUT" "my-shared-app" "deploy output"
expect_contains "$OUT" "square" "deploy output"

begin "skiff call my-shared-app square 42"
ok call my-shared-app square 42
expect_eq "$OUT" 1764 "square(42)"
ok call my-shared-app square --kwarg x=5
expect_eq "$OUT" 25 "square(x=5)"

begin "examples/call_square through libskiff"
run_cmd "$SKIFF_BUILD/examples/call_square"
expect_eq "$RC" 0 "call_square exit status"
expect_contains "$OUT" 1764 "call_square output"

begin "skiff call another-app cube 42 (calls square from inside)"
ok call another-app cube 42
expect_eq "$OUT" 74088 "cube(42)"

begin "spawn, get --timeout 0 (124), get, get again"
ok spawn example train_model '"job-1"' '{"seconds": 2}'
id=$OUT
expect_match "$id" '^fc-[0-9A-Z]{26}$' "spawn output"
expect_exit 124 get "$id" --timeout 0
expect_eq "$OUT" "" "stdout of a get that timed out"
ok get "$id"
expect_contains "$OUT" '"job_id":"job-1"' "result"
expect_contains "$OUT" '"status":"done"' "result"
first=$OUT
ok get "$id" --timeout 0
expect_eq "$OUT" "$first" "the same result again"
ok get "$id" --timeout 5
expect_eq "$OUT" "$first" "the same result with a timeout"

begin "a failing job: type, message and traceback on stderr, exit 1"
ok spawn example train_model '"job-2"' '{"seconds": 0, "fail": true}'
id=$OUT
expect_exit 1 get "$id"
expect_eq "$OUT" "" "stdout of a failed get"
expect_contains "$ERR" "ValueError" "stderr"
expect_contains "$ERR" "jobs.c" "traceback on stderr"
expect_exit 1 call example train_model '"job-3"' '{"seconds": 0, "fail": true}'
expect_contains "$ERR" "ValueError" "stderr of call"
expect_contains "$ERR" "train_model" "traceback of call"

begin "unknown app or function: not found, naming both"
expect_exit 1 call no-such-app square 1
expect_contains "$ERR" "NotFoundError" "stderr"
expect_contains "$ERR" "no-such-app" "stderr"
expect_contains "$ERR" "square" "stderr"
expect_exit 1 call my-shared-app cubed 1
expect_contains "$ERR" "my-shared-app" "stderr"
expect_contains "$ERR" "cubed" "stderr"
expect_exit 1 spawn my-shared-app cubed 1
expect_contains "$ERR" "NotFoundError" "stderr of spawn"
expect_exit 1 get fc-00000000000000000000000000
expect_contains "$ERR" "NotFoundError" "get of an unknown id"

begin "wrong arguments: TypeError, exit 1"
expect_exit 1 call my-shared-app square
expect_contains "$ERR" "TypeError" "no argument"
expect_exit 1 call my-shared-app square 1 2
expect_contains "$ERR" "TypeError" "two arguments"
expect_exit 1 call my-shared-app square '"seven"'
expect_contains "$ERR" "TypeError" "a string"
ok call my-shared-app square 3
expect_eq "$OUT" 9 "square still works"

begin "usage errors exit 2"
expect_exit 2 call my-shared-app square '{not json'
expect_exit 2 call my-shared-app
expect_exit 2 frobnicate
expect_exit 2 get
expect_exit 2 get fc-00000000000000000000000000 --timeout soon
expect_exit 2 call my-shared-app square 1 --kwarg nonsense

begin "--help for every command"
ok --help
expect_contains "$OUT" "usage" "skiff --help"
for cmd in deploy call spawn get cancel map stats "app list" "app stop" "container list" "token new"; do
    # shellcheck disable=SC2086 # split "app list" into two words
    ok $cmd --help
    [[ -n $OUT ]] || fail "skiff $cmd --help printed nothing on stdout"
done

begin "cancel a running job: the waiter gets CancelledError"
ok spawn example train_model '"job-4"' '{"seconds": 30}'
id=$OUT
"$SKIFF" get "$id" >"$T/waiter.out" 2>"$T/waiter.err" &
waiter=$!
sleep 0.3
ok cancel "$id"
wrc=0
wait "$waiter" || wrc=$?
expect_eq "$wrc" 1 "exit status of the waiting get"
expect_contains "$(cat "$T/waiter.err")" "CancelledError" "the waiter's stderr"
expect_exit 1 get "$id" --timeout 0
expect_contains "$ERR" "CancelledError" "get after cancel"
ok cancel "$id"

begin "stats, app list and container list print JSON"
ok stats my-shared-app square
expect_contains "$OUT" "backlog" "stats"
ok app list
expect_contains "$OUT" '"my-shared-app"' "app list"
expect_contains "$OUT" '"another-app"' "app list"
expect_contains "$OUT" '"example"' "app list"
expect_match "$OUT" '"ap-[0-9A-Z]{26}"' "app list ids"
ok container list
expect_contains "$OUT" '"square"' "container list"
expect_match "$OUT" '"ta-[0-9A-Z]{26}"' "container ids"
expect_match "$OUT" '"pid": ?[0-9]+' "container pids"

begin "app stop: calls by name fail until the next deploy"
ok app stop another-app
expect_exit 1 call another-app cube 2
expect_contains "$ERR" "NotFoundError" "call of a stopped app"
deploy examples/another_app.c
ok call another-app cube 2
expect_eq "$OUT" 8 "cube after redeploy"

finish
