#!/usr/bin/env bash
# dashboard.sh - the web dashboard's HTTP side with curl: without a session only the login page
# (holding no data) and 401s; `skiff dashboard --url` gives a one-time URL that sets an
# HttpOnly, SameSite=Strict cookie once and is refused when reused, forged or expired; a
# call-scope token may not ask for one; the pages and JSON list the deployed apps, a running
# call, containers and tokens; actions are POSTs refused without the session's CSRF header;
# cancelling a call through the session cancels it; a non-admin session sees no tokens.
source "$SKIFF_SRC/tests/integration/lib.sh"

start_server --login-code-ttl 4
deploy examples/square.c
deploy tests/apps/faulty.c
http_setup

# login URL -> COOKIE (the session id), CSRF.
login() {
    ok dashboard --url "$@"
    URL=$OUT
    curl -s -D "$T/h" -o "$T/b" "$URL" >/dev/null
    HEAD=$(tr -d '\r' <"$T/h")
    COOKIE=$(printf '%s\n' "$HEAD" | sed -n 's/^Set-Cookie: skiff_session=\([0-9a-f]*\);.*/\1/p')
}

begin "without a session: the login page (no data), 401 on the JSON, 404 elsewhere"
http "$H/"
expect_eq "$CODE" 200 "login page"
expect_contains "$OUT" "skiff dashboard" "login page text"
if [[ $OUT == *my-shared-app* || $OUT == *tk-* || $OUT == *fc-* ]]; then
    fail "the login page shows data"
fi
http "$H/dashboard/api/apps"
expect_eq "$CODE" 401 "JSON without a session"
http "$H/dashboard/app.js"
expect_eq "$CODE" 401 "assets without a session"
http -H "Cookie: skiff_session=$(printf '%064d' 0)" "$H/dashboard/api/apps"
expect_eq "$CODE" 401 "forged session"
http "$H/nowhere"
expect_eq "$CODE" 404 "unknown path"

begin "skiff dashboard --url: a one-time URL setting an HttpOnly, SameSite=Strict cookie"
login
expect_match "$URL" "^http://127\\.0\\.0\\.1:$HTTP_PORT/login\\?code=[0-9a-f]{64}$" "URL"
expect_contains "$HEAD" "HTTP/1.1 303" "redirect"
expect_contains "$HEAD" "Location: /" "to the dashboard"
expect_match "$HEAD" "Set-Cookie: skiff_session=[0-9a-f]{64}; Path=/; HttpOnly; SameSite=Strict" "cookie"
S=(-H "Cookie: skiff_session=$COOKIE")
http "${S[@]}" "$H/"
expect_contains "$OUT" "/dashboard/app.js" "the dashboard page"
http "${S[@]}" "$H/dashboard/app.js"
expect_eq "$CODE" 200 "app.js with the session"
bytes=0
for p in / /dashboard/app.js /dashboard/app.css; do
    n=$(curl -s -o /dev/null -w '%{size_download} %{time_total}' "${S[@]}" "$H$p")
    bytes=$((bytes + ${n% *}))
    log "  $p: ${n% *} bytes in ${n#* } s"
    expect_eq "$(awk -v t="${n#* }" 'BEGIN { print (t < 1) }')" 1 "$p served within a second"
done
expect_eq "$((bytes < 200 * 1024))" 1 "the first page and its assets are under 200 KB ($bytes bytes)"

begin "a used, forged or missing code is refused"
curl -s -D "$T/h2" -o "$T/b2" "$URL" >/dev/null
expect_contains "$(cat "$T/h2")" "401" "reused code"
expect_eq "$(grep -c Set-Cookie "$T/h2" || true)" 0 "no cookie for a reused code"
http "$H/login?code=$(printf '%064d' 1)"
expect_eq "$CODE" 401 "forged code"
http "$H/login"
expect_eq "$CODE" 401 "no code"

begin "an unused code expires (here after 4 s)"
ok dashboard --url
OLD=$OUT
sleep 4.5
curl -s -D "$T/h4" -o /dev/null "$OLD" >/dev/null
expect_contains "$(cat "$T/h4")" "401" "expired code"
expect_eq "$(grep -c Set-Cookie "$T/h4" || true)" 0 "no cookie for an expired code"
expect_exit 2 dashboard extra

begin "a call-scope token may not ask for a login code"
ok token new --scope call
cid=$(json_field "$OUT" token_id)
csec=$(json_field "$OUT" token_secret)
SKIFF_TOKEN_ID=$cid SKIFF_TOKEN_SECRET=$csec sk dashboard --url
expect_eq "$RC" 1 "exit status"
expect_contains "$ERR" "DASHBOARD_LOGIN needs a token of scope deploy" "error"
expect_exit 2 dashboard extra
expect_exit 2 dashboard --bogus
ok dashboard --url --json
expect_match "$OUT" '^"http://127\.0\.0\.1:[0-9]+/login\?code=[0-9a-f]{64}"$' "--json: a JSON string"
ok dashboard --help
expect_contains "$OUT" "usage: skiff dashboard" "--help"

begin "the JSON lists apps, a running call, containers and tokens"
ok spawn faulty cancellable 60
CALL=$OUT
http "${S[@]}" "$H/dashboard/api/session"
CSRF=$(json_field "$OUT" csrf)
expect_match "$CSRF" '^[0-9a-f]{64}$' "CSRF token"
expect_eq "$(json_field "$OUT" scope)" admin "session scope"
http "${S[@]}" "$H/dashboard/api/apps"
expect_contains "$OUT" '"name":"my-shared-app"' "apps"
expect_contains "$OUT" '"name":"MyLifecycleClass"' "a class"
running() {
    http "${S[@]}" "$H/dashboard/api/calls?app=faulty&status=running"
    [[ $OUT == *"\"call_id\":\"$CALL\""* ]]
}
wait_until 30 "the call to run" running
http "${S[@]}" "$H/dashboard/api/calls?app=my-shared-app"
expect_eq "$OUT" '{"calls":[]}' "filtered by app"
http "${S[@]}" "$H/dashboard/api/containers"
expect_contains "$OUT" '"function":"cancellable"' "its container"
if grep -q "containers are sandboxed" "$SERVER_LOG"; then
    expect_match "$OUT" '"memory_bytes":[1-9][0-9]*,"cpu_seconds":(-1.000|[0-9.]+)' "memory (and CPU where its cgroup counts it) from its cgroup"
else
    log "(containers are not sandboxed here: no cgroup figures to check)"
fi
http "${S[@]}" "$H/dashboard/api/function?app=faulty&function=cancellable"
expect_contains "$OUT" '"running":1' "function figures"
http "${S[@]}" "$H/dashboard/api/tokens"
expect_contains "$OUT" "\"token_id\":\"$cid\"" "tokens"
ok call faulty say '"<b>markup & \"quotes\"</b>"'
http "${S[@]}" "$H/dashboard/api/logs?app=faulty&tail=1"
expect_contains "$OUT" '\u003cb\u003emarkup \u0026 \"quotes\"\u003c/b\u003e' "a log line, escaped"
http "${S[@]}" "$H/dashboard/api/logs?app=nope"
expect_eq "$CODE" 404 "logs of an unknown app"
http "${S[@]}" "$H/dashboard/api/calls?call_id=$CALL"
expect_contains "$OUT" "\"call_id\":\"$CALL\"" "one call by id"

begin "the event stream: server-sent events with a session, 401 without"
curl -s -N --max-time 3 -D "$T/eh" "${S[@]}" "$H/dashboard/events" >"$T/events" || true
expect_contains "$(cat "$T/eh")" "text/event-stream" "content type"
expect_match "$(grep -c '^data: {"calls":' "$T/events")" '^[2-9]$' "an event a second"
http "$H/dashboard/events"
expect_eq "$CODE" 401 "without a session"

begin "actions need the CSRF header; cancel through the session cancels the call"
http -X POST "${S[@]}" "$H/api/v1/calls/$CALL/cancel"
expect_eq "$CODE" 401 "cancel without the CSRF header"
http -X POST "${S[@]}" -H "X-Skiff-CSRF: $(printf '%064d' 0)" "$H/api/v1/calls/$CALL/cancel"
expect_eq "$CODE" 401 "cancel with a wrong CSRF header"
http -X POST "${S[@]}" "$H/dashboard/api/tokens/$cid/revoke"
expect_eq "$CODE" 403 "revoke without the CSRF header"
http -X POST "${S[@]}" -H "X-Skiff-CSRF: $CSRF" "$H/api/v1/calls/$CALL/cancel"
expect_eq "$CODE" 200 "cancel with it"
expect_exit 1 get "$CALL" --timeout 10
expect_contains "$ERR" "cancelled" "the call was cancelled"

begin "a deploy-scope session sees apps but no tokens; revoking its token ends it"
ok token new --scope deploy
did=$(json_field "$OUT" token_id)
dsec=$(json_field "$OUT" token_secret)
SKIFF_TOKEN_ID=$did SKIFF_TOKEN_SECRET=$dsec sk dashboard --url
expect_eq "$RC" 0 "deploy token asks"
curl -s -D "$T/h3" -o /dev/null "$OUT" >/dev/null
DC=$(tr -d '\r' <"$T/h3" | sed -n 's/^Set-Cookie: skiff_session=\([0-9a-f]*\);.*/\1/p')
http -H "Cookie: skiff_session=$DC" "$H/dashboard/api/tokens"
expect_eq "$CODE" 403 "tokens need admin"
http -H "Cookie: skiff_session=$DC" "$H/dashboard/api/apps"
expect_eq "$CODE" 200 "apps"
http -X POST "${S[@]}" -H "X-Skiff-CSRF: $CSRF" "$H/dashboard/api/tokens/$did/revoke"
expect_eq "$CODE" 200 "revoke from the admin session"
http -H "Cookie: skiff_session=$DC" "$H/dashboard/api/apps"
expect_eq "$CODE" 401 "the revoked token's session ended"

begin "stop an app from the session"
http -X POST "${S[@]}" -H "X-Skiff-CSRF: $CSRF" "$H/dashboard/api/apps/faulty/stop"
expect_eq "$CODE" 200 "stop"
ok app list
expect_contains "$OUT" '"stopped"' "the app is stopped"

begin "logout ends the session and its event stream"
curl -s -N --max-time 30 "${S[@]}" "$H/dashboard/events" >"$T/events2" &
stream=$!
sleep 1.5
start=$SECONDS
http -X POST "${S[@]}" -H "X-Skiff-CSRF: $CSRF" "$H/dashboard/api/logout"
expect_eq "$CODE" 200 "logout"
wait "$stream" || true
expect_eq "$((SECONDS - start < 10))" 1 "the stream ended with the session"
http "${S[@]}" "$H/dashboard/api/apps"
expect_eq "$CODE" 401 "after logout"

finish
