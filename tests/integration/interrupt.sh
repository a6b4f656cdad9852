#!/usr/bin/env bash
# interrupt.sh - Ctrl-C on the command line (issue 10): `skiff call` and `skiff map` cancel what
# they started, even inputs already running, and say so; `skiff get` stops waiting, leaves the
# call running and says how to cancel it. Exit status 130 (128 + SIGINT) in each case.
source "$SKIFF_SRC/tests/integration/lib.sh"

start_server
deploy examples/jobs.c

running() { # the number of inputs of example.train_model running now
    sk stats example train_model --json
    json_field "$OUT" num_running_inputs
}
wait_running() { # N: waits until N inputs run (N+: at least N)
    local want=$1
    check() {
        local n
        n=$(running)
        if [[ $want == *+ ]]; then [[ -n $n && $n -ge ${want%+} ]]; else [[ $n == "$want" ]]; fi
    }
    wait_until 20 "$want running inputs" check
}

# interrupt CMD...: runs the CLI in the background, waits until an input runs, sends SIGINT,
# and leaves its exit status in RC and its stderr in ERR.
interrupt() {
    "$SKIFF" "$@" >"$T/int.out" 2>"$T/int.err" <"$T/int.in" &
    local pid=$!
    wait_running 1+
    kill -INT "$pid"
    RC=0
    wait "$pid" || RC=$?
    ERR=$(cat "$T/int.err")
}

begin "Ctrl-C on call cancels the running call"
: >"$T/int.in"
interrupt call example train_model '"long-1"' '{"seconds": 60}'
expect_eq "$RC" 130 "exit status"
expect_contains "$ERR" "skiff: interrupted: the call is cancelled" "message"
wait_running 0 # the cancel grace is 5 s; without the cancel it would run for 60 s

begin "Ctrl-C on map cancels the map's inputs"
printf '["m-%d", {"seconds": 60}]\n' 1 2 >"$T/int.in"
interrupt map example train_model
expect_eq "$RC" 130 "exit status"
expect_contains "$ERR" "skiff: interrupted: the map is cancelled" "message"
wait_running 0

begin "Ctrl-C on get stops waiting; the call goes on"
sk spawn example train_model '"long-2"' '{"seconds": 60}'
id=$OUT
: >"$T/int.in"
interrupt get "$id"
expect_eq "$RC" 130 "exit status"
expect_contains "$ERR" "$id goes on; \`skiff cancel $id\` stops it" "message"
sleep 1
expect_eq "$(running)" 1 "the spawned call still runs"
ok cancel "$id"
wait_running 0
finish
