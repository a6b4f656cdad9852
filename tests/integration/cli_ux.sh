#!/usr/bin/env bash
# cli_ux.sh - the command line made for people: usage errors are one line and a pointer to
# --help (never the whole help), "did you mean" for commands, functions, classes and methods,
# a connection error says how to start skiffd, and `skiff url` prints the bare URL.
source "$SKIFF_SRC/tests/integration/lib.sh"

begin "an unknown command: one line, with the nearest command"
expect_exit 2 cal 1
expect_eq "$(head -n 1 <<<"$ERR")" "skiff: unknown command 'cal': did you mean 'call'?" "first line"
expect_eq "$(wc -l <<<"$ERR")" 3 "lines of the error (reason, usage line, pointer to --help)"
expect_contains "$ERR" "see 'skiff --help'" "pointer"
expect_exit 2 frobnicate
[[ $ERR != *"did you mean"* ]] || fail "no suggestion for a word that is not a typo: $ERR"

begin "a usage error: the reason, the usage line and the command's --help"
expect_exit 2 deploy
expect_eq "$ERR" "skiff: deploy takes exactly one APP.c, DIR or APP.py
usage: skiff deploy APP.c|DIR [--name-check] [--ephemeral]
see 'skiff deploy --help'" "deploy's usage error"
expect_exit 2 get
expect_eq "$(wc -l <<<"$ERR")" 3 "get's usage error lines"
expect_contains "$ERR" "see 'skiff get --help'" "get's pointer"

begin "the server down: the error says how to start it"
SKIFF_TOKEN_ID=tk-none SKIFF_TOKEN_SECRET=none sk --server 127.0.0.1:1 app list
expect_eq "$RC" 1 "exit status"
expect_contains "$ERR" "ConnectionError" "error type"
expect_contains "$ERR" "skiffd" "the hint names skiffd"

start_server
deploy examples/square.c
deploy examples/web.c

begin "a misspelt function, class or method: did you mean"
expect_exit 1 call my-shared-app sqare 2
expect_contains "$ERR" "Lookup failed for Function 'sqare' from the 'my-shared-app' app" "message"
expect_contains "$ERR" "did you mean 'square'?" "suggestion"
expect_exit 1 call my-shared-app MyLifecycleClass.fo
expect_contains "$ERR" "did you mean 'MyLifecycleClass.foo'?" "method suggestion"
expect_exit 1 call my-shared-app MyLifecyleClass.foo
expect_contains "$ERR" "did you mean 'MyLifecycleClass" "class suggestion"
expect_exit 1 call my-shared-app zzzzzz
[[ $ERR != *"did you mean"* ]] || fail "a suggestion for a name near nothing: $ERR"

begin "skiff url prints the bare URL (and a JSON string with --json)"
ok url web-demo greet
expect_match "$OUT" '^http://127\.0\.0\.1:[0-9]+/web/web-demo-greet$' "bare URL"
run_cmd curl -s "$OUT?name=Ada"
expect_eq "$OUT" '{"message":"Hello, Ada!"}' "curl of \$(skiff url)?name=Ada"
ok url web-demo greet --json
expect_match "$OUT" '^"http://127\.0\.0\.1:[0-9]+/web/web-demo-greet"$' "--json"
begin "lists are tables on a terminal, JSON in a pipe or with --json"
ok call my-shared-app MyLifecycleClass.foo
# script(1) gives the command a terminal; its output comes back with CRs.
tty_out=$(SKIFF="$SKIFF" script -qec '"$SKIFF" app list; "$SKIFF" container list; "$SKIFF" stats my-shared-app square' /dev/null | tr -d '\r')
expect_match "$tty_out" 'APP +STATE +VERSION +DEPLOYED +FUNCTIONS +SCHEDULES +ID' "app list header"
expect_match "$tty_out" 'my-shared-app +deployed +1 +(just now|[0-9]+s ago) +MyLifecycleClass.foo, square' "app list row"
expect_match "$tty_out" 'MyLifecycleClass +\{\} +(idle|busy)' "a class pool's params as a value"
expect_match "$tty_out" 'num_total_runners: +[0-9]' "stats as fields"
[[ $tty_out != *'"name"'* ]] || fail "JSON on a terminal: $tty_out"
ok app list
expect_match "$OUT" '^\[\{"app_id":"ap-' "app list in a pipe is JSON"
ok container list --json
expect_contains "$OUT" '"params":{}' "params are JSON, not a string of JSON"
ok stats my-shared-app square --json
expect_contains "$OUT" '"num_total_runners":' "stats --json"
ok call my-shared-app square 3 --json
expect_eq "$OUT" 9 "--json is accepted everywhere"
finish
