# lib.sh - helpers for skiff's shell integration tests (sourced, not run).
#
#   #!/usr/bin/env bash
#   source "$SKIFF_SRC/tests/integration/lib.sh"
#   start_server                          # skiffd on free ports, temp data dir, logs to a file
#   deploy examples/square.c
#   begin "square via the CLI"
#   sk call my-shared-app square 42       # sets RC, OUT, ERR; never exits the script
#   expect_eq "$RC" 0 "exit status"
#   expect_eq "$OUT" 1764 "result"
#   finish                                # prints `N passed, 0 failed`
#
# The script runs with `set -euo pipefail`; the first failed expectation prints what was
# expected and what came, the end of the server's log, and exits 1. On exit (any exit) the
# server is stopped; a clean stop (exit 0, no sanitizer report in its log) is part of passing.
#
# Environment (from scripts/run-tests.sh): SKIFF_BUILD (build tree), SKIFF_SRC (repository),
# HOME and TMPDIR (temporary, per test), SKIFF_SANITIZE=1 in the sanitizer pass (deadlines are
# tripled). skiffd writes $HOME/.skiff.toml on its first start, so `skiff` needs no setup;
# SKIFF_SERVER is exported as well once the server is up.
# shellcheck shell=bash

set -euo pipefail

: "${SKIFF_BUILD:?run through scripts/run-tests.sh (SKIFF_BUILD is not set)}"
: "${SKIFF_SRC:?run through scripts/run-tests.sh (SKIFF_SRC is not set)}"

SKIFF=${SKIFF:-$SKIFF_BUILD/bin/skiff}
SKIFFD=${SKIFFD:-$SKIFF_BUILD/bin/skiffd}
T=$(mktemp -d "${TMPDIR:-/tmp}/itest.XXXXXX")
SERVER_LOG=$T/skiffd.log
SERVER_PID=""
SERVER_PORT=""
HTTP_PORT=""
SERVER_ARGS=()
CASE=""
PASSED=0
SLOW=1
if [[ -n ${SKIFF_SANITIZE:-} && ${SKIFF_SANITIZE:-} != 0 ]]; then SLOW=3; fi
RC=0 OUT="" ERR=""

log() { printf '%s\n' "$*" >&2; }

# Seconds scaled for the sanitizer pass.
scaled() { echo $(($1 * SLOW)); }

dump_server_log() {
    if [[ -f $SERVER_LOG ]]; then
        log "----- last ${1:-40} lines of the skiffd log ($SERVER_LOG) -----"
        tail -n "${1:-40}" "$SERVER_LOG" >&2 || true
        log "-----"
    fi
}

fail() {
    log "FAIL${CASE:+ [$CASE]}: $*"
    dump_server_log 40
    exit 1
}

# A TCP port on 127.0.0.1 that no socket holds, listening or not (random, checked with ss).
source "$SKIFF_SRC/scripts/ports.sh" # free_port, port_open, wait_port

# start_server [SKIFFD OPTIONS...]: starts skiffd (the first time on new ports and data dir,
# later with the same ones) and waits until it accepts connections and ~/.skiff.toml exists.
start_server() {
    SERVER_ARGS=("$@")
    local fresh="" tries=0
    if [[ -z $SERVER_PORT ]]; then
        SERVER_PORT=$(free_port)
        HTTP_PORT=$(free_port)
        fresh=1
    fi
    while :; do
        start_server_once && return 0
        # Another test took a port between our check and the server's bind: new ones, if they
        # were new anyway (a restart keeps its ports).
        if [[ -n $fresh && $tries -lt 5 ]] && tail -n 3 "$SERVER_LOG" | grep -q "address already in use"; then
            tries=$((tries + 1))
            SERVER_PORT=$(free_port)
            HTTP_PORT=$(free_port)
            continue
        fi
        fail "skiffd exited during start-up"
    done
}

# One try of start_server: 0 once the server accepts connections, 1 if it exited.
start_server_once() {
    local asan=${ASAN_OPTIONS:-}
    if [[ $SLOW -gt 1 ]]; then
        # Functions that crash on purpose must die of their own signal, as in production.
        asan="${asan:+$asan:}handle_segv=0:handle_sigbus=0:handle_sigfpe=0"
    fi
    echo "=== lib.sh: starting skiffd on 127.0.0.1:$SERVER_PORT ${SERVER_ARGS[*]}" >>"$SERVER_LOG"
    ASAN_OPTIONS=$asan SKIFF_SERVER="" SKIFF_DATA="" \
        "$SKIFFD" --data "$T/data" --listen "127.0.0.1:$SERVER_PORT" \
        --http "127.0.0.1:$HTTP_PORT" "${SERVER_ARGS[@]}" </dev/null >>"$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    local deadline=$((SECONDS + $(scaled 15)))
    # The log after this run's marker must say it listens: an open port alone could still be a
    # process of a killed earlier run, about to go.
    until port_open "$SERVER_PORT" && [[ -f $HOME/.skiff.toml ]] &&
        sed -n '/=== lib.sh: starting skiffd/h; /=== lib.sh: starting skiffd/!H; ${x;p}' \
            "$SERVER_LOG" | grep -q " listening on "; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            SERVER_PID=""
            return 1
        fi
        [[ $SECONDS -lt $deadline ]] || fail "skiffd did not accept connections within $(scaled 15)s"
        sleep 0.02
    done
    export SKIFF_SERVER="127.0.0.1:$SERVER_PORT"
}

# The first sanitizer report in the server log, if any.
sanitizer_report() {
    grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$SERVER_LOG" 2>/dev/null || true
}

# try_stop_server: SIGTERM, then wait. Returns 0 on a clean stop (exit 0 in time, no sanitizer
# report in the log); otherwise sets STOP_ERR and returns 1. Never exits.
STOP_ERR=""
try_stop_server() {
    [[ -n $SERVER_PID ]] || return 0
    local pid=$SERVER_PID rc=0 deadline=$((SECONDS + $(scaled 10))) hit
    SERVER_PID=""
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
        if [[ $SECONDS -ge $deadline ]]; then
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            STOP_ERR="skiffd did not stop within $(scaled 10)s of SIGTERM"
            return 1
        fi
        sleep 0.02
    done
    wait "$pid" 2>/dev/null || rc=$?
    hit=$(sanitizer_report)
    if [[ -n $hit ]]; then
        STOP_ERR="sanitizer report in the server log: $hit"
        return 1
    fi
    if [[ $rc -ne 0 ]]; then
        STOP_ERR="skiffd exited with status $rc after SIGTERM (want 0)"
        return 1
    fi
}

# stop_server: a clean stop, or the test fails.
stop_server() {
    try_stop_server || fail "$STOP_ERR"
}

# kill9_server: the server dies as in a crash.
kill9_server() {
    [[ -n $SERVER_PID ]] || return 0
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# restart_server [OPTIONS...]: a clean stop, then a start on the same ports and data.
restart_server() {
    stop_server
    start_server "$@"
}

on_exit() {
    local rc=$?
    set +e
    if [[ -n $SERVER_PID ]]; then
        if [[ $rc -eq 0 ]]; then
            if ! try_stop_server; then
                log "FAIL: $STOP_ERR"
                dump_server_log 80
                rc=1
            fi
        else
            kill -KILL "$SERVER_PID" 2>/dev/null
            wait "$SERVER_PID" 2>/dev/null
        fi
    fi
    if [[ $rc -eq 0 && -n $CASE ]]; then
        echo "ok   $CASE"
        PASSED=$((PASSED + 1))
    fi
    if [[ $rc -eq 0 ]]; then
        echo "$PASSED passed, 0 failed"
    else
        echo "$PASSED passed, 1 failed"
    fi
    rm -rf "$T"
    exit "$rc"
}
trap on_exit EXIT

# begin NAME: starts a case (closing the previous one as passed).
begin() {
    if [[ -n $CASE ]]; then
        echo "ok   $CASE"
        PASSED=$((PASSED + 1))
    fi
    CASE=$1
}

# finish: closes the last case and stops the server cleanly.
finish() {
    begin ""
    stop_server
}

# sk ARGS...: runs the CLI; sets RC, OUT (stdout, trailing newline dropped) and ERR (stderr).
sk() {
    RC=0
    "$SKIFF" "$@" >"$T/out" 2>"$T/err" </dev/null || RC=$?
    OUT=$(cat "$T/out")
    ERR=$(cat "$T/err")
}

# sk_in INPUT ARGS...: same, with INPUT on stdin.
sk_in() {
    local input=$1
    shift
    RC=0
    "$SKIFF" "$@" >"$T/out" 2>"$T/err" <<<"$input" || RC=$?
    OUT=$(cat "$T/out")
    ERR=$(cat "$T/err")
}

# run_cmd CMD ARGS...: any program, same variables.
run_cmd() {
    RC=0
    "$@" >"$T/out" 2>"$T/err" </dev/null || RC=$?
    OUT=$(cat "$T/out")
    ERR=$(cat "$T/err")
}

show_last() { printf '  exit %s\n  stdout: %s\n  stderr: %s\n' "$RC" "$OUT" "$ERR" >&2; }

expect_eq() { # ACTUAL EXPECTED WHAT
    if [[ $1 != "$2" ]]; then
        show_last
        fail "${3:-value}: expected '$2', got '$1'"
    fi
}

expect_ne() { # ACTUAL UNEXPECTED WHAT
    if [[ $1 == "$2" ]]; then
        show_last
        fail "${3:-value}: did not expect '$2'"
    fi
}

expect_contains() { # HAYSTACK NEEDLE WHAT
    if [[ $1 != *"$2"* ]]; then
        show_last
        fail "${3:-output}: expected to contain '$2', got '$1'"
    fi
}

expect_match() { # STRING ERE WHAT
    if ! [[ $1 =~ $2 ]]; then
        show_last
        fail "${3:-output}: expected to match /$2/, got '$1'"
    fi
}

# expect_exit CODE ARGS...: runs the CLI with ARGS and checks its exit status.
expect_exit() {
    local want=$1
    shift
    sk "$@"
    if [[ $RC -ne $want ]]; then
        show_last
        fail "skiff $*: expected exit $want, got $RC"
    fi
}

# ok ARGS...: the CLI must succeed.
ok() { expect_exit 0 "$@"; }

# deploy FILE: skiff deploy of a file relative to the repository (or absolute).
deploy() {
    local f=$1
    [[ $f == /* ]] || f=$SKIFF_SRC/$f
    sk deploy "$f"
    [[ $RC -eq 0 ]] || { show_last; fail "skiff deploy $1 failed"; }
}

# wait_until SECONDS WHAT CMD...: polls CMD every 50 ms until it succeeds (deadline scaled).
wait_until() {
    local secs=$1 what=$2
    shift 2
    local deadline=$((SECONDS + $(scaled "$secs")))
    until "$@"; do
        [[ $SECONDS -lt $deadline ]] || fail "timed out after $(scaled "$secs")s waiting for $what"
        sleep 0.05
    done
}

# json_field JSON KEY: a top-level string or number field of a one-line JSON object (enough for
# the CLI's own output; no jq on a bare machine).
json_field() {
    local re="\"$2\"[[:space:]]*:[[:space:]]*(\"([^\"]*)\"|([-0-9.eE+]+|true|false|null))"
    if [[ $1 =~ $re ]]; then
        if [[ -n ${BASH_REMATCH[2]} || ${BASH_REMATCH[1]} == '""' ]]; then
            echo "${BASH_REMATCH[2]}"
        else
            echo "${BASH_REMATCH[3]}"
        fi
    fi
}

# http_setup: H (the server's HTTP base URL), TOKEN_ID, TOKEN_SECRET and AUTH (curl's token
# headers) from ~/.skiff.toml, and the function `http ARGS...` (curl; sets RC, OUT = the body,
# CODE = the status). After start_server.
http_setup() {
    H="http://127.0.0.1:$HTTP_PORT"
    TOKEN_ID=$(sed -n 's/^token_id *= *"\(.*\)"/\1/p' "$HOME/.skiff.toml")
    TOKEN_SECRET=$(sed -n 's/^token_secret *= *"\(.*\)"/\1/p' "$HOME/.skiff.toml")
    AUTH=(-H "X-Skiff-Token-Id: $TOKEN_ID" -H "X-Skiff-Token-Secret: $TOKEN_SECRET")
    CODE=""
    http() {
        RC=0
        curl -s -o "$T/body" -w '%{http_code}' "$@" >"$T/code" 2>"$T/err" </dev/null || RC=$?
        OUT=$(cat "$T/body" 2>/dev/null || true)
        CODE=$(cat "$T/code")
        ERR=$(cat "$T/err")
    }
}
