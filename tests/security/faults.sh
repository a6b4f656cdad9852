#!/usr/bin/env bash
# faults.sh - issue 8, faults: failures that are not the function's own error end promptly and
# say what happened. Garbage a function writes on its container's socket (fd 3) fails the call at
# once with a RemoteError (not a FunctionTimeoutError after the function's timeout) and the next
# call runs; a 60 MB frame of nils there is refused by the container frame's object budget
# without growing skiffd's VmHWM by more than the frame, while the biggest real batches (generator
# items piling up) pass it; a 10 MB log line is kept as its first 16 KiB plus a marker, not as empty lines; a
# container killed by someone else's signal is logged and its input runs again; a spawned
# generator read right after kill -9 and a restart gives every item once, in order, and
# `get --timeout` on an unfinished generator prints what came and exits 124; a store with
# corrupt pages is refused at start with the path and the recovery, `skiffd --check` says so,
# and the documented recovery gives a store the server starts on.
# (Container start failures: faults_start.c.)
# shellcheck disable=SC2119 # restart_server without options
source "$SKIFF_SRC/tests/integration/lib.sh"

start_server
deploy tests/security/apps/faults.c

begin "garbage on the container's socket fails the call at once"
for kind in text short op slot; do
    t0=$SECONDS
    expect_exit 1 call sec-faults garbage "\"$kind\""
    expect_contains "$ERR" "RemoteError" "garbage($kind): the error type"
    expect_contains "$ERR" "sent a malformed message" "garbage($kind): the error says why"
    expect_match "$ERR" "container ta-[0-9A-Z]+ sent" "garbage($kind): the error names the container"
    # The function's timeout is 120 s: a prompt answer is well under it.
    [[ $((SECONDS - t0)) -lt $(scaled 30) ]] || fail "garbage($kind) took $((SECONDS - t0)) s"
    expect_ne "$OUT" '"unreachable"' "garbage($kind): no result"
    ok call sec-faults ping
    expect_eq "$OUT" '"pong"' "a call after garbage($kind)"
done
expect_contains "$(cat "$SERVER_LOG")" "sent a malformed message" "the server log"

begin "a 60 MB frame of nils on the container's socket: cut off, memory bounded"
hwm_kb() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$SERVER_PID/status"; }
base=$(hwm_kb)
t0=$SECONDS
expect_exit 1 call sec-faults garbage '"nils"'
peak=$(hwm_kb)
log "  VmHWM $((base / 1024)) -> $((peak / 1024)) MiB (+$(((peak - base) / 1024)) MiB) for the frame"
expect_contains "$ERR" "RemoteError" "nils: the error type"
expect_contains "$ERR" "sent a malformed message" "nils: the error says why"
expect_contains "$ERR" "msgpack objects" "nils: the error names the limit"
[[ $((SECONDS - t0)) -lt $(scaled 30) ]] || fail "nils took $((SECONDS - t0)) s"
# The frame itself is kept while it arrives (60 MB); decoding it once cost 1.4 GB more.
[[ $((peak - base)) -lt $((200 * 1024 * SLOW)) ]] || fail "VmHWM grew by $(((peak - base) / 1024)) MiB"
ok call sec-faults ping
expect_eq "$OUT" '"pong"' "a call after the frame of nils"

begin "four generators yielding 400,000 items at once: the biggest real batches pass the budget"
# Items piling up while another thread writes fill W_OUTPUTS frames to the worker's 65,536
# entries (measured), a quarter of the container frame budget; a worker without that split
# sends frames over the budget and is cut off.
cut_before=$(grep -c "sent a malformed message" "$SERVER_LOG")
ids=()
for _ in 1 2 3 4; do
    ok spawn sec-faults burst 400000
    ids+=("$OUT")
done
for id in "${ids[@]}"; do
    ok get "$id" --timeout "$(scaled 60)"
    expect_eq "$(printf '%s\n' "$OUT" | grep -c .)" 400000 "items of $id"
done
expect_eq "$(grep -c "sent a malformed message" "$SERVER_LOG")" "$cut_before" "containers cut off"

begin "garbage before the container is ready fails the call, not a loop of containers"
deploy tests/security/apps/faults_init.c
t0=$SECONDS
expect_exit 1 call sec-faults-init ping
expect_contains "$ERR" "InitFailureError" "the error type"
expect_contains "$ERR" "sent a malformed message" "the error says why"
[[ $((SECONDS - t0)) -lt $(scaled 30) ]] || fail "the call took $((SECONDS - t0)) s"

begin "a 10 MB log line is cut with a marker"
ok call sec-faults long_line 10485760
logs_have_after() { sk logs sec-faults long_line && [[ $OUT == *"stdout| after"* ]]; }
wait_until 10 "the line after the long one in the logs" logs_have_after
lines=$(printf '%s\n' "$OUT" | grep -c 'stdout|')
expect_eq "$lines" 2 "stdout lines kept (the long one and 'after')"
long=$(printf '%s\n' "$OUT" | grep 'line cut')
expect_contains "$long" "xxxxxxxx... [line cut: $((10485760 - 16384)) bytes]" "the marker"
text=${long#*stdout| }
marker="... [line cut: 10469376 bytes]"
expect_eq "${#text}" $((16384 + ${#marker})) "the length of the line kept"
x_count=$(printf '%s' "$text" | tr -cd x | wc -c)
expect_eq "$x_count" 16384 "bytes of the line kept"

begin "a container killed from outside is logged and its input runs again"
ok spawn sec-faults sleep_for 4
id=$OUT
container_pid() {
    sk container list
    CPID=$(printf '%s' "$OUT" | tr '{' '\n' | grep '"function":"sleep_for"' |
        grep -o '"pid":[0-9]*' | head -1 | cut -d: -f2)
    [[ -n $CPID && $CPID -gt 0 ]]
}
wait_until 10 "the container of sleep_for" container_pid
kill -KILL "$CPID"
ok get "$id" --timeout "$(scaled 30)"
expect_eq "$OUT" "4.0" "the result of the input lost with its container"
killed_logged() {
    grep -E "container ta-[0-9A-Z]+ \(sec-faults.sleep_for, pid [0-9]+\) was killed by signal 9 \(SIGKILL\), which the server did not send" \
        "$SERVER_LOG" >/dev/null
}
wait_until 5 "the log line of the kill" killed_logged

begin "a spawned generator read after kill -9 and a restart: every item once, in order"
ok spawn sec-faults count 8 600
gen=$OUT
# --timeout 0 on a running generator: what was stored, then 124.
expect_exit 124 get "$gen" --timeout 0
expect_contains "$ERR" "has not finished" "get --timeout 0 of a running generator"
three_items() { sk get "$gen" --timeout 0; [[ $RC -eq 124 && $(printf '%s\n' "$OUT" | grep -c .) -ge 3 ]]; }
wait_until 20 "three items of the generator" three_items
expect_eq "$(printf '%s\n' "$OUT" | head -3 | tr '\n' ' ')" "0 1 2 " "the first items"
# --timeout S prints the items that come in S seconds, in order, then 124.
expect_exit 124 get "$gen" --timeout 0.5
expect_match "$(printf '%s\n' "$OUT" | tr '\n' ' ')" "^0 1 2 (3 )?" "items after --timeout 0.5"
kill9_server
start_server
ok get "$gen" --timeout "$(scaled 60)"
expect_eq "$(printf '%s\n' "$OUT" | tr '\n' ' ')" "0 1 2 3 4 5 6 7 " "every item once, in order"
# Read again from the store: the same.
ok get "$gen" --timeout 0
expect_eq "$(printf '%s\n' "$OUT" | tr '\n' ' ')" "0 1 2 3 4 5 6 7 " "every item once, read again"

begin "a corrupt store is refused at start, --check says so, .recover restores it"
ok spawn sec-faults count 3000 0
big=$OUT
ok get "$big" --timeout "$(scaled 60)"
stop_server
db=$T/data/skiff.db
[[ ! -e $db-wal || ! -s $db-wal ]] || fail "the WAL was not checkpointed by a clean stop"
expect_eq "$("$SKIFFD" --check "$T/data" >/dev/null 2>&1; echo $?)" 0 "--check of a whole store"
size=$(stat -c %s "$db")
pages=$((size / 4096))
[[ $pages -ge 8 ]] || fail "the store is too small to corrupt its middle ($size bytes)"
cp "$db" "$T/whole.db"
# Garbage over a quarter of the pages in the middle (not the first: the header stays readable).
dd if=/dev/urandom of="$db" bs=4096 seek=$((pages / 2 - pages / 8)) count=$((pages / 4 > 1 ? pages / 4 : 1)) conv=notrunc status=none
set +e
timeout "$(scaled 20)" "$SKIFFD" --data "$T/data" --listen "127.0.0.1:$SERVER_PORT" --http off \
    >"$T/start.out" 2>&1
rc=$?
set -e
expect_eq "$rc" 1 "the exit status of skiffd on a corrupt store (124: it kept running)"
start_out=$(cat "$T/start.out")
expect_contains "$start_out" "$db is corrupt" "the message names the file"
expect_contains "$start_out" ".recover" "the message gives the recovery"
expect_ne "$(port_open "$SERVER_PORT" && echo open)" "open" "nothing listens"
set +e
check_out=$("$SKIFFD" --check "$T/data" 2>&1)
rc=$?
set -e
expect_eq "$rc" 1 "the exit status of --check on a corrupt store"
expect_contains "$check_out" "$db" "--check names the file"
# The documented recovery (docs/server.md): .recover into a new file that replaces the corrupt
# one; where the sqlite3 shell is built without .recover, .dump with its ROLLBACK made a COMMIT.
if command -v sqlite3 >/dev/null; then
    if ! sqlite3 "$db" .recover 2>/dev/null | sqlite3 "$db.recovered" 2>/dev/null ||
        ! sqlite3 "$db.recovered" "SELECT count(*) FROM apps" >/dev/null 2>&1; then
        rm -f "$db.recovered"
        sqlite3 "$db" .dump 2>/dev/null | sed 's/^ROLLBACK; -- due to errors$/COMMIT;/' |
            sqlite3 "$db.recovered"
    fi
    mkdir "$T/corrupt"
    mv "$db" "$T/corrupt/"
    rm -f "$db-wal" "$db-shm"
    mv "$db.recovered" "$db"
    start_server
    ok app list
    expect_contains "$OUT" '"sec-faults"' "the apps after the recovery"
    ok call sec-faults ping
    expect_eq "$OUT" '"pong"' "a call after the recovery"
fi

finish
