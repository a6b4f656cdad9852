#!/usr/bin/env bash
# anon_http.sh - what an anonymous HTTP client can cost skiffd (docs/security.md, "Anonymous
# clients and limits"): 60 MB bodies to a public POST endpoint and to the JSON API, by
# Content-Length and chunked, one after another and ten at once, are answered 413 as soon as the
# limit is passed, the server's peak RSS (VmHWM) stays within a bound, and a concurrent
# `skiff call` answers promptly throughout. A web function's own .max_body, a deeply nested JSON
# body (400 naming the limit, no crash), and a body dribbled slower than the request timeout
# (408, without holding up another request).
source "$SKIFF_SRC/tests/integration/lib.sh"

PY=/usr/bin/python3
CLIENT=$SKIFF_SRC/tests/security/limits_client.py
start_server
deploy examples/square.c
deploy tests/security/apps/limits.c
ok call my-shared-app square 3 # a container up: its start is not counted below

# fact KEY LINE: the value of KEY=... in LINE (limits_client.py's output).
fact() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
hwm_kb() { fact hwm_kb "$($PY "$CLIENT" vmhwm "$SERVER_PID")"; }

# Calls square in a loop in the background, writing each call's milliseconds to $T/lat.
start_caller() {
    : >"$T/lat"
    (
        while [[ ! -f $T/stop ]]; do
            s=$(date +%s%N)
            "$SKIFF" call my-shared-app square 7 >/dev/null 2>>"$T/caller.err" || echo 99999 >>"$T/lat"
            echo $((($(date +%s%N) - s) / 1000000)) >>"$T/lat"
            sleep 0.05
        done
    ) &
    CALLER=$!
}
stop_caller() {
    touch "$T/stop"
    wait "$CALLER" || true
    rm -f "$T/stop"
    MAX_LAT=$(sort -n "$T/lat" | tail -n 1)
    N_LAT=$(wc -l <"$T/lat")
}

base=$(hwm_kb)
log "skiffd VmHWM before the attacks: $((base / 1024)) MiB"

begin "a 60 MB POST to a public web endpoint: 413 at once, memory bounded, calls prompt"
start_caller
out=$($PY "$CLIENT" http-post "$HTTP_PORT" /web/limits-post 60000000)
log "  $out"
expect_eq "$(fact status "$out")" 413 "status"
expect_contains "$out" '"type":"RequestSizeError"' "error type"
expect_contains "$out" "limit of 1048576 bytes" "the message names the limit"
secs=$(fact seconds "$out")
[[ ${secs%.*} -lt $(scaled 3) ]] || fail "the 413 took $secs s"
out=$($PY "$CLIENT" http-post "$HTTP_PORT" /web/limits-post 60000000 chunked)
log "  chunked: $out"
expect_eq "$(fact status "$out")" 413 "status of a chunked body"
sent=$(fact sent_mb "$out")
[[ $sent -lt 30 ]] || fail "the server read $sent MiB of a chunked body before its 413"
out=$($PY "$CLIENT" http-post "$HTTP_PORT" /api/v1/apps/my-shared-app/square/call 60000000)
expect_eq "$(fact status "$out")" 413 "an anonymous JSON API request over the default limit"
# Ten at once.
pids=()
for i in $(seq 10); do
    $PY "$CLIENT" http-post "$HTTP_PORT" /web/limits-post 60000000 >"$T/par.$i" &
    pids+=($!)
done
for j in "${pids[@]}"; do wait "$j" || true; done
for i in $(seq 10); do
    expect_eq "$(fact status "$(cat "$T/par.$i")")" 413 "parallel request $i"
done
stop_caller
log "  concurrent calls: $N_LAT, slowest $MAX_LAT ms"
[[ $N_LAT -ge 3 ]] || fail "only $N_LAT concurrent calls completed"
[[ $MAX_LAT -lt $((2000 * SLOW)) ]] || fail "a concurrent call took $MAX_LAT ms"
peak=$(hwm_kb)
log "  VmHWM after: $((peak / 1024)) MiB (+$(((peak - base) / 1024)) MiB)"
# Bodies are refused before they are kept: 12 connections of at most 1 MiB each, plus reads.
[[ $((peak - base)) -lt $((64 * 1024 * SLOW)) ]] || fail "VmHWM grew by $(((peak - base) / 1024)) MiB"

begin "bodies under the limit still work; a function's own .max_body"
out=$($PY "$CLIENT" http-post "$HTTP_PORT" /web/limits-post 900000)
expect_eq "$(fact status "$out")" 200 "a 900 KB body under the 1 MiB default"
expect_contains "$out" "899991" "the function saw the whole body"
out=$($PY "$CLIENT" http-post "$HTTP_PORT" /web/limits-post 900000 chunked)
expect_eq "$(fact status "$out")" 200 "the same, chunked"
out=$($PY "$CLIENT" http-post "$HTTP_PORT" /web/limits-small 200)
expect_eq "$(fact status "$out")" 200 "200 bytes under .max_body = 256"
out=$($PY "$CLIENT" http-post "$HTTP_PORT" /web/limits-small 300)
expect_eq "$(fact status "$out")" 413 "300 bytes over .max_body = 256"
expect_contains "$out" "limit of 256 bytes" "the message names the endpoint's limit"
out=$($PY "$CLIENT" http-post "$HTTP_PORT" /web/limits-small 300 chunked)
expect_eq "$(fact status "$out")" 413 "the same, chunked"
TOKEN_ID=$(sed -n 's/^token_id *= *"\(.*\)"/\1/p' "$HOME/.skiff.toml")
TOKEN_SECRET=$(sed -n 's/^token_secret *= *"\(.*\)"/\1/p' "$HOME/.skiff.toml")
out=$($PY "$CLIENT" http-post "$HTTP_PORT" /api/v1/apps/my-shared-app/square/call 2000000 \
    "$TOKEN_ID" "$TOKEN_SECRET")
expect_ne "$(fact status "$out")" 413 "a JSON API request with a token may pass the default"

begin "a body of many small values: 400 naming the value budget, not a stalled loop"
$PY -c 'n = 500000; print("{\"a\": [" + ",".join(["0"] * n) + "]}")' >"$T/zeros.json"
start=$(date +%s%N)
code=$(curl -s -o "$T/zeros" -w '%{http_code}' -X POST --data-binary "@$T/zeros.json" "http://127.0.0.1:$HTTP_PORT/web/limits-post")
ms=$((($(date +%s%N) - start) / 1000000))
expect_eq "$code" 400 "status of 500,000 zeros in 1 MB"
expect_contains "$(cat "$T/zeros")" "more than 16384 values" "the message names the limit"
log "  answered in $ms ms"
$PY -c 'n = 15000; print("{\"a\": [" + ",".join(["0"] * n) + "]}")' >"$T/zeros.json"
code=$(curl -s -o "$T/zeros" -w '%{http_code}' -X POST --data-binary "@$T/zeros.json" "http://127.0.0.1:$HTTP_PORT/web/limits-post")
expect_eq "$code" 200 "15,000 values are within the budget"

begin "JSON nested 100,000 and 10,000 deep: 400 naming the limit, the server goes on"
$PY -c 'print("{\"a\": " + "[" * 100000 + "]" * 100000 + "}")' >"$T/deep.json"
code=$(curl -s -o "$T/deep" -w '%{http_code}' -X POST --data-binary "@$T/deep.json" "http://127.0.0.1:$HTTP_PORT/web/limits-post")
expect_eq "$code" 400 "status"
expect_contains "$(cat "$T/deep")" "limit" "the message names the limit"
$PY -c 'print("{\"a\": " + "[" * 10000 + "]" * 10000 + "}")' >"$T/deep.json"
code=$(curl -s -o "$T/deep" -w '%{http_code}' -X POST --data-binary "@$T/deep.json" "http://127.0.0.1:$HTTP_PORT/web/limits-post")
expect_eq "$code" 400 "status of 10,000 deep (within the value budget)"
expect_contains "$(cat "$T/deep")" "depth" "the message names the depth limit"
deep=$($PY -c 'print("{\"a\": " + "[" * 40 + "]" * 40 + "}")')
code=$(curl -s -o "$T/deep" -w '%{http_code}' -X POST --data-binary "$deep" "http://127.0.0.1:$HTTP_PORT/web/limits-post")
expect_eq "$code" 400 "40 deep, past the 32 of values"
expect_contains "$(cat "$T/deep")" "32" "the message names the limit"
ok call my-shared-app square 5

begin "a body dribbled slower than the request timeout: 408, another request unharmed"
restart_server --http-timeout 1
$PY "$CLIENT" http-dribble "$HTTP_PORT" /web/limits-post >"$T/dribble" &
DRIB=$!
sleep 0.3
out=$($PY "$CLIENT" http-post "$HTTP_PORT" /web/limits-post 100)
expect_eq "$(fact status "$out")" 200 "a request beside the slow one"
wait "$DRIB"
out=$(cat "$T/dribble")
log "  $out"
expect_eq "$(fact status "$out")" 408 "the dribbled request"
secs=$(fact seconds "$out")
[[ ${secs%.*} -lt $(scaled 5) ]] || fail "the 408 came after $secs s"

finish
