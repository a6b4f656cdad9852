#!/usr/bin/env bash
# anon_wire.sh - bounded work on the protocol port (docs/security.md, "Anonymous clients and
# limits"): idle and dribbling sockets are closed at the HELLO deadline, at most --max-unauth
# wait at once, an authenticated client with nothing in progress is closed when idle (but not
# one waiting for a call); with a low open files limit (prlimit), hundreds of idle sockets and
# EMFILE do not lock a real client out, and skiffd raises its soft limit to the hard one. After
# HELLO, a 60 MB frame of nils is refused without growing the server by more than the frame, a
# client that never reads its replies does not make the server buffer them (backpressure: they
# all arrive once it reads), and arguments nested 100,000 deep are a DeserializationError
# naming the depth limit.
source "$SKIFF_SRC/tests/integration/lib.sh"

PY=/usr/bin/python3
CLIENT=$SKIFF_SRC/tests/security/limits_client.py
fact() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
secs_lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

start_server --hello-timeout 1 --max-unauth 50 --idle-timeout 2
deploy examples/square.c
deploy tests/security/apps/limits.c
ok call my-shared-app square 3

begin "idle sockets: at most --max-unauth at once, all closed at the HELLO deadline"
$PY "$CLIENT" idle "$SERVER_PORT" 200 2.5 >"$T/idle" &
IDLE=$!
sleep 0.5
start=$(date +%s%N)
ok call my-shared-app square 4
ms=$((($(date +%s%N) - start) / 1000000))
expect_eq "$OUT" 16 "a real client beside 200 idle sockets"
[[ $ms -lt $((2000 * SLOW)) ]] || fail "the call beside idle sockets took $ms ms"
wait "$IDLE"
out=$(cat "$T/idle")
log "  $out"
expect_eq "$(fact opened "$out")" 200 "sockets opened"
early=$(fact closed_early "$out")
[[ $early -ge 150 ]] || fail "only $early of 200 unauthenticated sockets closed at once (max 50)"
expect_eq "$(fact closed_late "$out")" 200 "all closed after the 1 s HELLO deadline"
out=$($PY "$CLIENT" dribble-hello "$SERVER_PORT")
log "  $out"
secs_lt "$(fact closed_after "$out")" "$((3 * SLOW))" || fail "a dribbled HELLO kept its socket: $out"

begin "idle authenticated clients are closed, those waiting for a call are not"
out=$($PY "$CLIENT" authed-idle "$SERVER_PORT" 10 0)
log "  $out"
expect_eq "$(fact closed "$out")" True "silent after HELLO"
secs_lt "$(fact seconds "$out")" "$((5 * SLOW))" || fail "closed late: $out"
out=$($PY "$CLIENT" authed-idle "$SERVER_PORT" 20 3)
log "  $out"
expect_eq "$(fact reply_op "$out")" 1 "the reply of a 3 s call past the 2 s idle timeout"

begin "after HELLO: a 60 MB frame of nils is refused, memory bounded by the frame"
base=$(fact hwm_kb "$($PY "$CLIENT" vmhwm "$SERVER_PID")")
out=$($PY "$CLIENT" nils "$SERVER_PORT" 60)
log "  $out"
expect_contains "$out" "type=DeserializationError" "error type"
expect_contains "$out" "the decoding limit" "the message names the limit"
expect_contains "$out" "closed=True" "the connection is closed"
peak=$(fact hwm_kb "$($PY "$CLIENT" vmhwm "$SERVER_PID")")
log "  VmHWM +$(((peak - base) / 1024)) MiB"
# The frame itself is held (at most the frame limit, 64 MiB), never its 1.4 GB of objects.
[[ $((peak - base)) -lt $((150 * 1024 * SLOW)) ]] || fail "VmHWM grew by $(((peak - base) / 1024)) MiB"
ok call my-shared-app square 5

begin "a client that never reads: replies wait unread, not in the server's memory"
ok spawn limits-app big 1048576
id=$OUT
ok get "$id"
rss0=$(fact rss_kb "$($PY "$CLIENT" vmhwm "$SERVER_PID")")
out=$($PY "$CLIENT" noread "$SERVER_PORT" "$id" 300 1.5 "$SERVER_PID")
log "  $out (RSS before: $((rss0 / 1024)) MiB)"
rss=$(fact rss_kb "$out")
# 4 MiB of replies, one more, and what reading them costs; the sanitizer pass keeps freed memory.
[[ $((rss - rss0)) -lt $((48 * 1024 * SLOW)) ]] ||
    fail "the server held $(((rss - rss0) / 1024)) MiB for a client that does not read"
expect_eq "$(fact replies "$out")" 300 "every reply arrives once it reads (backpressure, no drop)"
expect_eq "$(fact mb "$out")" 300 "their bytes"

begin "arguments nested 100,000 deep: DeserializationError naming the depth limit"
out=$($PY "$CLIENT" deep "$SERVER_PORT" my-shared-app square 100000)
log "  $out"
expect_contains "$out" "type=DeserializationError" "error type"
expect_contains "$out" "depth limit" "message"
ok call my-shared-app square 6

begin "a low open files limit: skiffd raises it; idle sockets and EMFILE do not lock clients out"
real=$SKIFFD
wrap() { # NOFILE: skiffd under that limit (soft:hard)
    printf '#!/bin/sh\nexec prlimit --nofile=%s -- %s "$@"\n' "$1" "$real" >"$T/skiffd-wrap"
    chmod +x "$T/skiffd-wrap"
    SKIFFD=$T/skiffd-wrap
}
wrap 256:2048
restart_server --hello-timeout 30
soft=$(awk '/^Max open files/ { print $4 }' "/proc/$SERVER_PID/limits")
expect_eq "$soft" 2048 "the soft limit raised to the hard one"
wrap 128:128
restart_server --hello-timeout 30
ok call my-shared-app square 7 # its container up before the descriptors run out
$PY "$CLIENT" idle "$SERVER_PORT" 300 1.5 >"$T/idle" &
IDLE=$!
sleep 1
ok call my-shared-app square 8
expect_eq "$OUT" 64 "a real client beside 300 idle sockets (at most 32 kept)"
wait "$IDLE"
log "  $(cat "$T/idle")"
restart_server --hello-timeout 30 --max-unauth 1000
ok call my-shared-app square 9
$PY "$CLIENT" idle "$SERVER_PORT" 300 2 >"$T/idle" &
IDLE=$!
sleep 1
sk call my-shared-app square 10
if [[ $RC -ne 0 ]]; then # its connection may have been among those closed at EMFILE: once more
    sk call my-shared-app square 10
fi
expect_eq "$OUT" 100 "a real client when the descriptors ran out"
wait "$IDLE"
log "  $(cat "$T/idle")"
grep -q "out of file descriptors" "$SERVER_LOG" || fail "EMFILE was never reached"
SKIFFD=$real

finish
