#!/usr/bin/env bash
# http.sh - skiffd's HTTP side through real requests (curl, and raw sockets where curl is too
# polite): web endpoint URLs from deploy / skiff url, typed query and JSON body arguments and
# their 400s, the 303 past the web limit and its reloadable result URL, token-protected
# endpoints, labels (long defaults, clashes refused at deploy), the JSON API's errors, and the
# server holding up: keep-alive, pipelined answers in order, 413, 431, 400, and a slow client
# answered 408 without blocking another.
source "$SKIFF_SRC/tests/integration/lib.sh"

# Short limits so the test sees them: web requests redirect after 1 s, a request must arrive
# within 1 s, bodies and payloads hold at most 4 KiB.
start_server --web-limit 1 --http-timeout 1 --max-payload 4096
deploy examples/web.c
deploy examples/square.c
deploy examples/jobs.c

http_setup # H, TOKEN_ID, TOKEN_SECRET, AUTH, and http ARGS... (sets RC, OUT, CODE, ERR)

# raw REQUEST_BYTES: sends the bytes on a new connection and prints everything the server sends
# back until it closes (at most 10 s).
raw() {
    local out
    exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
    printf '%b' "$1" >&3
    out=$(timeout "$(scaled 10)" cat <&3 || true)
    exec 3<&-
    printf '%s' "$out"
}

begin "deploy and skiff url give each web endpoint its URL"
sk deploy "$SKIFF_SRC/examples/web.c"
expect_contains "$OUT" "\"web_url\":\"$H/web/web-demo-greet\"" "deploy output"
expect_contains "$OUT" "\"web_url\":\"$H/web/add\"" "deploy output (own label)"
ok url web-demo greet
url=$OUT
expect_eq "$url" "$H/web/web-demo-greet" "skiff url"
http "$url?name=Grace"
expect_eq "$CODE" 200 "status"
expect_eq "$OUT" '{"message":"Hello, Grace!"}' "greet through its URL"
expect_exit 1 url my-shared-app square
expect_contains "$ERR" "is not a web endpoint" "skiff url of a plain function"

begin "arguments: query (typed by the signature), JSON body, and their 400s"
http "$H/web/web-demo-greet?name=caf%C3%A9+au+lait"
expect_eq "$OUT" '{"message":"Hello, café au lait!"}' "decoded query value"
http "$H/web/web-demo-slow?seconds=0.01"
expect_eq "$OUT" '{"slept":0.01}' "float query parameter"
http "$H/web/web-demo-slow?seconds=soon"
expect_eq "$CODE" 400 "status of an untyped value"
expect_contains "$OUT" "query parameter 'seconds' must be float, not 'soon'" "message"
http "$H/web/web-demo-greet"
expect_eq "$CODE" 400 "status without a required argument"
expect_contains "$OUT" '"type":"TypeError"' "type"
expect_contains "$OUT" "missing 1 required argument: 'name'" "message"
http "$H/web/web-demo-greet?name=a&nick=b"
expect_eq "$CODE" 400 "status of an unexpected argument"
expect_contains "$OUT" "unexpected keyword argument 'nick'" "message"
http "$H/web/web-demo-greet?name=a&name=b"
expect_eq "$CODE" 400 "status of a repeated parameter"
expect_contains "$OUT" "given twice" "message"
http -X POST -d '[1, 2]' "$H/web/add"
expect_eq "$CODE" 400 "status of a body that is not an object"
expect_contains "$OUT" '"type":"InvalidError"' "type"
http -X POST -d '{"a": 1' "$H/web/add"
expect_eq "$CODE" 400 "status of malformed JSON"
http -X POST -d '{"a": 1}' "$H/web/add?b=2"
expect_eq "$OUT" '{"sum":3}' "query and body together"
http -X POST -d '{"a": 1, "b": 2}' "$H/web/add?b=2"
expect_eq "$CODE" 400 "status of an argument in query and body"

begin "statuses: 404 unknown label, 405 wrong method, 500 failing function"
http "$H/web/Not_A_Label"
expect_eq "$CODE" 404 "status of a malformed label"
http "$H/web/nothing-here"
expect_eq "$CODE" 404 "status of an unknown label"
expect_contains "$OUT" '"type":"NotFoundError"' "type"
http -D "$T/headers" -X DELETE "$H/web/add"
expect_eq "$CODE" 405 "status of the wrong method"
expect_contains "$(cat "$T/headers")" "Allow: POST" "Allow header"
http "$H/web/web-demo-fail"
expect_eq "$CODE" 500 "status of a failing function"
expect_contains "$OUT" '"type":"ValueError","message":"this endpoint always fails"' "error"
expect_contains "$OUT" '"traceback":' "traceback"
http "$H/nowhere"
expect_eq "$CODE" 404 "status of a path outside /web and /api"

begin "past the web limit: 303 to a result URL that waits, and reloads without a new call"
http -D "$T/headers" "$H/web/web-demo-slow?seconds=2.5"
expect_eq "$CODE" 303 "status past the limit"
location=$(sed -n 's/^Location: *\(.*\)\r$/\1/p' "$T/headers")
expect_match "$location" '^/web-result/fc-[0-9A-Z]{26}$' "Location"
expect_contains "$OUT" "\"result_url\":\"$location\"" "body"
http -L "$H$location"
expect_eq "$CODE" 200 "status of the result URL (waiting for the call)"
expect_eq "$OUT" '{"slept":2.5}' "result"
# A reload answers at once: no new call (which would sleep 2.5 s again).
start=$(date +%s%N)
http "$H$location"
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
expect_eq "$CODE" 200 "status of a reload"
expect_eq "$OUT" '{"slept":2.5}' "result on reload"
[[ $elapsed_ms -lt 2000 ]] || fail "the reload took ${elapsed_ms} ms: did it start a new call?"
calls=$(sqlite3 "$T/data/skiff.db" "SELECT count(*) FROM calls c JOIN functions f ON f.function_id = c.function_id WHERE f.name = 'slow'" 2>&1 || true)
expect_eq "$calls" 0 "web calls stored on disk"
http -X DELETE "$H$location"
expect_eq "$CODE" 405 "DELETE of a result URL"
http "$H/web-result/fc-01M81V46FNCX6XZJ10FC3NENV9"
expect_eq "$CODE" 404 "result URL of an unknown call"
ok spawn my-shared-app square 3
http "$H/web-result/$OUT"
expect_eq "$CODE" 404 "result URL of a call that is no web request"
http "$H/web-result/nonsense"
expect_eq "$CODE" 400 "result URL of a malformed id"

begin "a web client that leaves early: its call is dropped, the server goes on"
curl -s -m 0.3 "$H/web/web-demo-slow?seconds=0.8" >/dev/null 2>&1 || true
curl -s -m 0.3 "$H/web/web-demo-slow?seconds=0.8" >/dev/null 2>&1 || true
http "$H/web/web-demo-greet?name=still"
expect_eq "$OUT" '{"message":"Hello, still!"}' "answer after clients left"

begin "an endpoint that requires a token"
http "$H/web/secret"
expect_eq "$CODE" 401 "status without a token"
http -H "X-Skiff-Token-Id: $TOKEN_ID" -H "X-Skiff-Token-Secret: 0000" "$H/web/secret"
expect_eq "$CODE" 401 "status with a wrong secret"
expect_contains "$OUT" '"type":"AuthError"' "type"
http "${AUTH[@]}" "$H/web/secret"
expect_eq "$CODE" 200 "status with the token"
expect_eq "$OUT" '"the token opened this"' "result"
http "$H/web/web-demo-greet?name=x" "${AUTH[@]}"
expect_eq "$CODE" 200 "a token on an open endpoint is fine"

begin "labels: a long default is cut with a hash; clashes are deploy errors"
deploy tests/integration/apps/http_labels.c
ok url An.App_With-A-Rather-Long-Name-For-Labels long_function_name_for_the_label
expect_eq "$OUT" "$H/web/an-app-with-a-rather-long-name-for-labels-long-function--aeef5b" "label"
http "${OUT//\"/}"
expect_eq "$OUT" '"long label"' "the long-label endpoint answers"
sk deploy "$SKIFF_SRC/tests/integration/apps/http_clash.c"
expect_ne "$RC" 0 "exit status of a deploy with two endpoints on one label"
expect_contains "$ERR" "both claim the web label 'same-label'" "error"
sk deploy "$SKIFF_SRC/tests/integration/apps/http_taken.c"
expect_ne "$RC" 0 "exit status of a deploy taking another app's label"
expect_contains "$ERR" "the web label 'add' of add is taken by web-demo.add" "error"
ok app stop web-demo
http -X POST -d '{"a": 1, "b": 2}' "$H/web/add"
expect_eq "$CODE" 404 "a stopped app's endpoint"
deploy tests/integration/apps/http_taken.c
http -X POST "$H/web/add"
expect_eq "$OUT" '0' "the label now belongs to http-taken"
ok app stop http-taken
deploy examples/web.c

begin "JSON API: errors of each route"
A="$H/api/v1"
http -H "X-Skiff-Token-Id: $TOKEN_ID" -H "X-Skiff-Token-Secret: bad" "$A/calls/fc-01M81V46FNCX6XZJ10FC3NENV9"
expect_eq "$CODE" 401 "a bad token"
http "${AUTH[@]}" "$A/calls/fc-01M81V46FNCX6XZJ10FC3NENV9/graph"
expect_eq "$CODE" 404 "graph of an unknown call"
http "${AUTH[@]}" "$A/apps/nope/square/stats"
expect_eq "$CODE" 404 "stats of an unknown app"
expect_contains "$OUT" "the app is not deployed" "message"
http "${AUTH[@]}" "$A/calls/fc-01M81V46FNCX6XZJ10FC3NENV9?timeout=soon"
expect_eq "$CODE" 400 "a malformed timeout"
http "${AUTH[@]}" -X DELETE "$A/calls/fc-01M81V46FNCX6XZJ10FC3NENV9"
expect_eq "$CODE" 405 "the wrong method"
http "${AUTH[@]}" "$A/apps/my-shared-app/square/call"
expect_eq "$CODE" 405 "GET of call"
http "${AUTH[@]}" -d '{"args": 5}' "$A/apps/my-shared-app/square/call"
expect_eq "$CODE" 400 "args that are no array"
http "${AUTH[@]}" -d '{"args": [], "extra": 1}' "$A/apps/my-shared-app/square/call"
expect_eq "$CODE" 400 "an unknown body member"
http "${AUTH[@]}" -d '{"args": ["x"]}' "$A/apps/my-shared-app/square/call"
expect_eq "$CODE" 500 "the function's own failure"
expect_contains "$OUT" '"type":"TypeError"' "type"
http "${AUTH[@]}" -d '{"args": [{"$bytes": "AAEC"}]}' "$A/apps/my-shared-app/square/call"
expect_contains "$OUT" "not bytes" "bytes reach the function as bytes"
http "${AUTH[@]}" "$A/apps/my-shared-app/square/frobnicate"
expect_eq "$CODE" 404 "an unknown action"
http "${AUTH[@]}" "$A/elsewhere"
expect_eq "$CODE" 404 "an unknown API path"

begin "JSON API: a blocking call's result, then get of it by id"
http "${AUTH[@]}" -d '{"args": [12]}' "$A/apps/my-shared-app/square/call"
expect_eq "$CODE" 200 "status"
id=$(grep -oE 'fc-[0-9A-Z]{26}' <<<"$OUT")
expect_eq "$OUT" "{\"call_id\":\"$id\",\"result\":144}" "body"

begin "JSON API: a method on an instance with parameters"
deploy tests/integration/apps/features.c
http "${AUTH[@]}" -d '{"params": {"loud": true, "word": "hola"}}' "$A/apps/itest-features/Greeter.greet/call"
expect_eq "$CODE" 200 "status"
expect_contains "$OUT" '"result":["hola, WORLD",1,' "entered with the instance's parameters"
http "${AUTH[@]}" -d '{}' "$A/apps/itest-features/Greeter.greet/call"
expect_eq "$CODE" 500 "a required parameter missing"
expect_contains "$OUT" "word" "the message names it"
http "${AUTH[@]}" -d '{"params": {"word": 1.5}}' "$A/apps/itest-features/Greeter.greet/call"
expect_eq "$CODE" 400 "a parameter that is no int, str, bytes or bool"
http "${AUTH[@]}" -d '{"params": ["hola"]}' "$A/apps/itest-features/Greeter.greet/call"
expect_eq "$CODE" 400 "params that are no object"
http "${AUTH[@]}" -d '{"args": [3], "params": {"word": "x"}}' "$A/apps/my-shared-app/square/call"
expect_eq "$CODE" 400 "params for a plain function"
expect_contains "$OUT" "takes no params" "message"

begin "JSON API and CLI share calls: spawned over HTTP, read by skiff get, and the other way"
http "${AUTH[@]}" -d '{"args": [9]}' "$A/apps/my-shared-app/square/spawn"
expect_eq "$CODE" 202 "status of a spawn"
id=$(grep -oE 'fc-[0-9A-Z]{26}' <<<"$OUT")
ok get "$id" --timeout 30
expect_eq "$OUT" 81 "skiff get of the call spawned over HTTP"
ok spawn my-shared-app square 11
http "${AUTH[@]}" "$A/calls/$OUT?timeout=30"
expect_eq "$OUT" '{"result":121}' "HTTP get of the call spawned by the CLI"
http "${AUTH[@]}" "$A/apps/my-shared-app/square/stats"
expect_match "$OUT" '^\{"backlog":0,"num_total_runners":[0-9]+,"num_running_inputs":0,' "stats"

begin "keep-alive: one connection for several requests"
curl -sv -o "$T/b1" "$H/web/web-demo-greet?name=a" -o "$T/b2" "$H/web/web-demo-greet?name=b" \
    2>"$T/verbose" || true
expect_eq "$(cat "$T/b1") $(cat "$T/b2")" '{"message":"Hello, a!"} {"message":"Hello, b!"}' "answers"
expect_contains "$(cat "$T/verbose")" "Re-using existing connection" "curl reused the connection"

begin "pipelining: three requests at once, answered in request order"
out=$(raw "GET /web/web-demo-slow?seconds=0.5 HTTP/1.1\r\nHost: x\r\n\r\nGET /web/web-demo-greet?name=second HTTP/1.1\r\nHost: x\r\n\r\nGET /web/nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
# Bodies end without a newline: the next answer's status line follows at once.
bodies=$(tr -d '\r' <<<"$out" | sed 's|HTTP/1.1 |\nHTTP/1.1 |g' | grep '^{' | tr '\n' ' ')
expect_eq "$bodies" '{"slept":0.5} {"message":"Hello, second!"} {"error":{"type":"NotFoundError","message":"no web endpoint is labelled '"'nothing'"'"}} ' "bodies in order"
expect_eq "$(grep -o "HTTP/1.1 [0-9]*" <<<"$out" | tr "\n" " ")" "HTTP/1.1 200 HTTP/1.1 200 HTTP/1.1 404 " "statuses in order"

begin "a deep pipeline (past the 64 requests held at once) is answered whole and in order"
reqs=""
for i in $(seq 1 150); do
    reqs+="GET /web/web-demo-greet?name=n$i HTTP/1.1\r\nHost: x\r\n\r\n"
done
out=$(raw "${reqs}GET /web/web-demo-greet?name=last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
names=$(grep -oE 'Hello, [a-z0-9]+' <<<"$out" | cut -c8- | tr '\n' ' ')
expect_eq "$names" "$(seq -f 'n%g' 1 150 | tr '\n' ' ')last " "answers in request order"

begin "limits: 413 body, 431 headers, 400 malformed; the server goes on"
big=$(head -c 5000 /dev/zero | tr '\0' 'x')
http -X POST -d "{\"a\": \"$big\"}" "$H/web/add"
expect_eq "$CODE" 413 "a body over the limit"
expect_contains "$OUT" '"type":"RequestSizeError"' "type"
pad=$(head -c 2000 /dev/zero | tr '\0' ' ')
start=$(date +%s%N)
http -X POST -d "{\"a\": 1, \"b\": 2}$pad" "$H/web/add"
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
expect_eq "$OUT" '{"sum":3}' "a 2 KB body (curl asks with Expect: 100-continue)"
[[ $elapsed_ms -lt $((800 * SLOW)) ]] || fail "the 2 KB body took ${elapsed_ms} ms: no 100 Continue?"
http -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' 'y')" "$H/web/web-demo-greet?name=a"
expect_eq "$CODE" 431 "headers over 16 KiB"
out=$(raw "THIS IS NOT HTTP\r\n\r\n")
expect_contains "$out" "HTTP/1.1 400 Bad Request" "malformed request"
expect_contains "$out" "Connection: close" "closes after the 400"
out=$(raw "GET /web/web-demo-greet?name=a HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n")
expect_contains "$out" "HTTP/1.1 400" "a malformed Content-Length"
http "$H/web/web-demo-greet?name=after"
expect_eq "$OUT" '{"message":"Hello, after!"}' "the server still answers"

begin "a slow client gets 408 and does not hold up another"
exec 4<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
printf 'GET /web/web-demo-greet?name=slow HTTP/1.1\r\nHost: x\r\n' >&4
start=$(date +%s%N)
http "$H/web/web-demo-greet?name=quick"
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
expect_eq "$OUT" '{"message":"Hello, quick!"}' "the other client's answer"
[[ $elapsed_ms -lt $((900 * SLOW)) ]] || fail "the other client waited ${elapsed_ms} ms"
slow=$(timeout "$(scaled 10)" cat <&4 || true)
exec 4<&-
expect_contains "$slow" "HTTP/1.1 408 Request Timeout" "the slow client's answer"
expect_contains "$slow" '"type":"RequestTimeout"' "its body"

begin "an idle keep-alive connection is closed after the timeout"
exec 4<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
start=$(date +%s)
idle=$(timeout "$(scaled 10)" cat <&4 || true)
exec 4<&-
expect_eq "$idle" "" "nothing sent on an idle connection"
[[ $(($(date +%s) - start)) -lt $(scaled 5) ]] || fail "the idle connection stayed open"

begin "skiffd stops cleanly with a web call past its limit still running"
http "$H/web/web-demo-slow?seconds=5"
expect_eq "$CODE" 303 "status past the limit"

finish
