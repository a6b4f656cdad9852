#!/usr/bin/env bash
# http_stream.sh - the JSON API's NDJSON streams: a generator's items arrive as it yields them,
# a map's results in order or as they come (return_exceptions), bad bodies answered 400, a client
# that stops reading holds a bounded amount of the server's memory, a client that leaves cancels
# the stream; and a call id from /call reads back with skiff get and /calls/ID.
source "$SKIFF_SRC/tests/integration/lib.sh"

start_server
deploy tests/integration/apps/streams.c
deploy examples/square.c

H="http://127.0.0.1:$HTTP_PORT"
TOKEN_ID=$(sed -n 's/^token_id *= *"\(.*\)"/\1/p' "$HOME/.skiff.toml")
TOKEN_SECRET=$(sed -n 's/^token_secret *= *"\(.*\)"/\1/p' "$HOME/.skiff.toml")
AUTH=(-H "X-Skiff-Token-Id: $TOKEN_ID" -H "X-Skiff-Token-Secret: $TOKEN_SECRET")
API="$H/api/v1/apps/itest-streams"

# http ARGS...: curl; sets RC, OUT (the body), CODE (the status) and HEAD (the headers).
http() {
    RC=0
    curl -s -D "$T/head" -o "$T/body" -w '%{http_code}' "${AUTH[@]}" "$@" >"$T/code" 2>"$T/err" \
        </dev/null || RC=$?
    OUT=$(cat "$T/body" 2>/dev/null || true)
    CODE=$(cat "$T/code")
    HEAD=$(tr -d '\r' <"$T/head")
}

begin "a generator's call streams its items as NDJSON while it runs"
# 3 items 1.5 s apart: the first two lines must be there well before the generator ends.
curl -sN "${AUTH[@]}" -d '{"args": [3, 1500]}' "$API/ticks/call" >"$T/gen" 2>/dev/null &
CURL=$!
wait_until 10 "the first item" grep -q '^{"item":0}$' "$T/gen"
lines=$(wc -l <"$T/gen")
[[ $lines -le 2 ]] || fail "the first item came only with the end ($lines lines)"
expect_match "$(head -n1 "$T/gen")" '^\{"call_id":"fc-[0-9A-Z]+"\}$' "first line: the call id"
wait "$CURL"
expect_eq "$(tail -n +2 "$T/gen")" '{"item":0}
{"item":1}
{"item":2}
{"done":true,"count":3}' "items and the last line"
http -d '{"args": [2, 0]}' "$API/ticks/call"
expect_eq "$CODE" 200 "status"
expect_contains "$HEAD" "Content-Type: application/x-ndjson" "content type"
expect_contains "$HEAD" "Transfer-Encoding: chunked" "chunked"
http --http1.0 -d '{"args": [2, 0]}' "$API/ticks/call"
expect_eq "$(tail -n +2 <<<"$OUT")" '{"item":0}
{"item":1}
{"done":true,"count":2}' "HTTP/1.0: the stream as it is, ended by closing"
expect_contains "$HEAD" "Connection: close" "HTTP/1.0 closes"
[[ $HEAD != *chunked* ]] || fail "chunks sent to an HTTP/1.0 client"

begin "a map streams its results in order, or as they come"
http -d '[[1], [2], [4], {"args": [5]}, {"kwargs": {"x": 10}}]' "$API/inv/map"
expect_eq "$CODE" 200 "status"
expect_eq "$(tail -n +2 <<<"$OUT")" '{"index":0,"result":100}
{"index":1,"result":50}
{"index":2,"result":25}
{"index":3,"result":20}
{"index":4,"result":10}
{"done":true,"count":5}' "ordered results"
printf '[1]\n[2]\n\n[4]\n' >"$T/nd"
http -H 'Content-Type: application/x-ndjson' --data-binary @"$T/nd" "$API/inv/map?order=false"
expect_eq "$(tail -n +2 <<<"$OUT" | sort)" '{"done":true,"count":3}
{"index":0,"result":100}
{"index":1,"result":50}
{"index":2,"result":25}' "NDJSON body, unordered"
expect_eq "$(tail -n1 <<<"$OUT")" '{"done":true,"count":3}' "the end comes last"
http -d '[]' "$API/inv/map"
expect_eq "$(tail -n +2 <<<"$OUT")" '{"done":true,"count":0}' "an empty map"

begin "a map's failed input: the end of the map, or one line with return_exceptions"
http -d '[[1], [0], [2]]' "$API/inv/map"
expect_eq "$(tail -n +2 <<<"$OUT" | sed -E 's/line [0-9]+, in/line N, in/')" '{"index":0,"result":100}
{"done":false,"index":1,"error":{"type":"ValueError","message":"cannot invert 0","traceback":"  File \"streams.c\", line N, in inv"}}' "first failure ends it"
http -d '[[1], [0], [2]]' "$API/inv/map?return_exceptions=true"
expect_contains "$OUT" '{"index":1,"error":{"type":"ValueError","message":"cannot invert 0"' "exception as a line"
expect_contains "$OUT" '{"index":2,"result":50}' "and the map goes on"
expect_eq "$(tail -n1 <<<"$OUT")" '{"done":true,"count":3}' "the end"

begin "bad map bodies and options are 400, unknown functions 404"
for body in '{"args": [1]}' '[1, 2]' '[[1], {"args": 1}]' '[{"args": [1], "x": 2}]' 'not json' \
    '[{"$pickle": {"$bytes": "AA=="}}]'; do
    http -d "$body" "$API/inv/map"
    expect_eq "$CODE" 400 "status of body $body"
    expect_contains "$OUT" '"type":"InvalidError"' "error of body $body"
done
printf '[1]\n{oops\n' >"$T/nd"
http -H 'Content-Type: application/x-ndjson' --data-binary @"$T/nd" "$API/inv/map"
expect_eq "$CODE" 400 "status of a bad NDJSON line"
expect_contains "$OUT" "line 2" "the bad line named"
http -d '[[1]]' "$API/inv/map?order=maybe"
expect_eq "$CODE" 400 "bad order"
http -d '[[1]]' "$API/nosuch/map"
expect_eq "$CODE" 404 "unknown function"
http -d '[[1]]' "$API/ticks/map"
expect_eq "$CODE" 400 "a map of a generator"
# A generator's stream starts at once: its failure is the last line.
http -d '{"args": ["x", 1]}' "$API/ticks/call"
expect_eq "$CODE" 200 "a generator failing before its first item"
expect_eq "$(tail -n +2 <<<"$OUT")" '{"done":false,"error":{"type":"TypeError","message":"ticks() argument '"'n'"' must be int, not str"}}' "its failure"

begin "a call id from /call reads back with skiff get and /calls/ID"
http -d '{"args": [7]}' "$H/api/v1/apps/my-shared-app/square/call"
id=$(sed -n 's/.*"call_id":"\(fc-[0-9A-Z]*\)".*/\1/p' <<<"$OUT")
expect_match "$id" '^fc-' "call id"
ok get "$id"
expect_eq "$OUT" 49 "skiff get"
http "$H/api/v1/calls/$id"
expect_eq "$OUT" '{"result":49}' "GET /calls/ID"
restart_server
ok get "$id"
expect_eq "$OUT" 49 "skiff get after a restart"

begin "a client that stops reading holds bounded memory; one that leaves cancels the stream"
hwm() { sed -n 's/^VmHWM: *\([0-9]*\) kB/\1/p' "/proc/$SERVER_PID/status"; }
before=$(hwm)
# 4096 items of 64 KiB (256 MiB) to a client that reads nothing: the server cuts it off past
# its stream bound instead of holding them.
exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
body='{"args":[4096]}'
printf 'POST /api/v1/apps/itest-streams/big/call HTTP/1.1\r\nHost: x\r\nX-Skiff-Token-Id: %s\r\nX-Skiff-Token-Secret: %s\r\nContent-Length: %d\r\n\r\n%s' \
    "$TOKEN_ID" "$TOKEN_SECRET" ${#body} "$body" >&3
wait_until 60 "the stream cut off" grep -q "streamed answer was cut off" "$SERVER_LOG"
exec 3<&-
after=$(hwm)
log "VmHWM before $before kB, after $after kB"
[[ $((after - before)) -lt 100000 ]] || fail "the server's peak memory grew by $((after - before)) kB"
# A generator whose client leaves is cancelled.
curl -sN "${AUTH[@]}" -d '{"args": [1000, 200]}' "$API/ticks/call" >"$T/gen2" 2>/dev/null &
CURL=$!
wait_until 10 "the first item" grep -q '^{"item":1}$' "$T/gen2"
gid=$(sed -n '1s/.*"\(fc-[0-9A-Z]*\)".*/\1/p' "$T/gen2")
kill "$CURL"
wait "$CURL" || true
running() { curl -s "${AUTH[@]}" "$API/ticks/stats" | grep -q '"num_running_inputs":0'; }
wait_until 10 "the generator $gid cancelled" running

begin "a map's log lines carry the id of the input that printed them"
# 300 inputs of a function that prints, one at a time on one container: the server sends the
# container many inputs ahead, so it holds several while each one prints.
body="[[0]$(for ((i = 1; i < 300; i++)); do printf ',[%d]' "$i"; done)]"
http -d "$body" "$API/shout/map"
expect_eq "$(tail -n1 <<<"$OUT")" '{"done":true,"count":300}' "the map"
logs_done() { sk logs itest-streams shout --json; [[ $OUT == *"whisper 299"* ]]; }
wait_until 10 "the last lines" logs_done
sk logs itest-streams shout --json
printf '%s\n' "$OUT" >"$T/logs"
# [ts, container, input, stream, text, function]; shout prints its own input id.
sed -nE 's/^\[[0-9]+,"ta-[0-9A-Z]+",("in-[0-9A-Z]+"|null),"stdout","shout ([0-9]+) (in-[0-9A-Z]+)".*/\2 \1 \3/p' \
    "$T/logs" | tr -d '"' >"$T/shout"
sed -nE 's/^\[[0-9]+,"ta-[0-9A-Z]+",("in-[0-9A-Z]+"|null),"stderr","whisper ([0-9]+)".*/\2 \1/p' \
    "$T/logs" | tr -d '"' >"$T/whisper"
expect_eq "$(wc -l <"$T/shout")" 300 "stdout lines"
expect_eq "$(wc -l <"$T/whisper")" 300 "stderr lines"
wrong=$(awk '$2 != "null" && $2 != $3' "$T/shout" | head -3)
expect_eq "$wrong" "" "stdout lines naming another input"
wrong=$(awk 'NR == FNR { id[$1] = $3; next } $2 != "null" && $2 != id[$1]' "$T/shout" "$T/whisper" | head -3)
expect_eq "$wrong" "" "stderr lines naming another input"
tagged=$(awk '$2 != "null"' "$T/shout" | wc -l)
log "$tagged of 300 inputs' lines carry their input id"
# Only the inputs printed before the server asked the container to announce its inputs (at
# most the first ones it was sent at once) may be untagged.
[[ $tagged -ge 200 ]] || fail "only $tagged of 300 stdout lines carry their input id"
[[ $(awk '$1 >= 200 && $2 == "null"' "$T/shout" | wc -l) -eq 0 ]] ||
    fail "lines of late inputs are untagged"

finish
