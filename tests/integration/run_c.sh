#!/usr/bin/env bash
# run_c.sh - `skiff run APP.c FUNCTION [ARG...]` (issue 10): builds and deploys a C app for one
# call under a name of its own, prints the result (a generator's items as they come), exits as
# `skiff call` does, and never leaves the app deployed: not after a failure, not after Ctrl-C,
# not after kill -9 of the CLI, not after a crash of the server; a deployed app of the same name
# is untouched, and a run's schedules never fire.
source "$SKIFF_SRC/tests/integration/lib.sh"

start_server

apps() { # the names of the apps listed now, one line
    sk app list --json
    grep -o '"name":"[^"]*"' <<<"$OUT" | tr '\n' ' '
}
no_run_apps() { [[ $(apps) != *-run-* ]]; }

begin "run prints the result and removes the app"
deploy examples/square.c # a deployed app of the same name: untouched by the runs
sk run "$SKIFF_SRC"/examples/square.c square 7
expect_eq "$RC" 0 "exit status"
expect_eq "$OUT" 49 "result"
expect_eq "$(apps)" '"name":"my-shared-app" ' "only the deployed app is listed"
ok call my-shared-app square 3
expect_eq "$OUT" 9 "the deployed app still answers"
expect_eq "$(find "$T/data/apps" -name '*.so' | wc -l)" 1 "the run's code is gone from the data directory"

begin "a directory, keyword arguments, and a generator's items stream out"
mkdir -p "$T/dirapp"
cp "$SKIFF_SRC/tests/integration/apps/features.c" "$T/dirapp/"
sk run "$T/dirapp" count_up 3
expect_eq "$RC" 0 "exit status"
expect_eq "$OUT" $'0\n1\n2' "items"
sk run "$SKIFF_SRC"/examples/jobs.c train_model '"j-1"' --kwarg 'params={"seconds": 0}'
expect_eq "$RC" 0 "exit status"
expect_contains "$OUT" "j-1" "result"

begin "exit statuses as call: a failing call is 1, an unknown function 1, bad JSON 2"
sk run "$SKIFF_SRC"/examples/square.c square '"text"'
expect_eq "$RC" 1 "a failing call"
expect_contains "$ERR" "TypeError: square() argument 'x' must be int or float, not str" "its error"
sk run "$SKIFF_SRC"/examples/square.c sqare 2
expect_eq "$RC" 1 "an unknown function"
expect_contains "$ERR" "did you mean 'square'?" "a suggestion"
sk run "$SKIFF_SRC"/examples/square.c square '{bad'
expect_eq "$RC" 2 "bad JSON"
sk run "$SKIFF_SRC"/examples/square.c
expect_eq "$RC" 2 "no FUNCTION"
expect_contains "$ERR" "see 'skiff run --help'" "the usage hint"
sk run "$T/nosuch.c" f
expect_eq "$RC" 2 "a file that does not exist"
printf '#include <skiff/app.h>\nSKIFF_APP("broken");\nint f(void) { return undeclared(); }\n' >"$T/broken.c"
sk run "$T/broken.c" f
expect_eq "$RC" 1 "a file that does not compile"
expect_contains "$ERR" "broken.c:3" "the compiler's message names the user's file"
expect_eq "$(apps)" '"name":"my-shared-app" ' "nothing left deployed by the failures"

begin "Ctrl-C cancels the call and the app is removed"
running() {
    sk container list --json
    [[ $OUT == *'"inputs":1'* ]]
}
"$SKIFF" run "$SKIFF_SRC"/examples/jobs.c train_model '"long"' '{"seconds": 60}' >"$T/int.out" 2>"$T/int.err" &
pid=$!
wait_until 30 "the run's input runs" running
[[ $(apps) == *example-run-* ]] || fail "the run's app is not listed while it runs: $(apps)"
kill -INT "$pid"
RC=0
wait "$pid" || RC=$?
expect_eq "$RC" 130 "exit status"
expect_contains "$(cat "$T/int.err")" "the call is cancelled and the app removed" "message"
wait_until 10 "the run's app is gone" no_run_apps
idle() { ! running; }
wait_until 20 "the input stops" idle

begin "kill -9 of the CLI: the server removes the app when the connection closes"
"$SKIFF" run "$SKIFF_SRC"/examples/jobs.c train_model '"long"' '{"seconds": 60}' >/dev/null 2>&1 &
pid=$!
wait_until 30 "the run's input runs" running
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
wait_until 10 "the run's app is gone" no_run_apps
grep -q "the client that deployed ephemeral app example-run-.* left" "$SERVER_LOG" ||
    fail "the server log does not say why the app went"

begin "a server that dies during a run removes the app when it starts again"
"$SKIFF" run "$SKIFF_SRC"/examples/jobs.c train_model '"long"' '{"seconds": 60}' >/dev/null 2>&1 &
pid=$!
wait_until 30 "the run's input runs" running
kill9_server
wait "$pid" 2>/dev/null || true
start_server
expect_eq "$(apps)" '"name":"my-shared-app" ' "only the deployed app after the restart"
expect_eq "$(find "$T/data/apps" -name '*.so' | wc -l)" 1 "the run's code is gone"

begin "an app's schedules run only while it is deployed, and never during a run"
sk run "$SKIFF_SRC/tests/integration/apps/sched.c" plain
expect_eq "$OUT" 7 "result"
grep "schedule: sched-test-run-" "$SERVER_LOG" && fail "the run's schedules were armed"
expect_eq "$(apps)" '"name":"my-shared-app" ' "removed"

if [[ $SLOW -gt 1 ]]; then
    finish # the sanitizer pass: the Python extension cannot load an ASan libskiff
    exit 0
fi
begin "Python apps still run (skiff run APP.py)"
cat >"$T/hello.py" <<'PY'
import skiff
app = skiff.App()

@app.function()
def hello(name):
    return f"hello {name}"

@app.local_entrypoint()
def main(name: str = "x"):
    print(hello.remote(name))
PY
sk run "$T/hello.py" --name Ada
expect_eq "$RC" 0 "exit status"
expect_eq "$OUT" "hello Ada" "result"

finish
