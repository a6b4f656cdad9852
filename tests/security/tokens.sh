#!/usr/bin/env bash
# tokens.sh - issue 8: token scopes, expiry and revocation, through the CLI (SKIFF_TOKEN_ID and
# SKIFF_TOKEN_SECRET in the environment) and the JSON API. Each scope is allowed what the table
# in docs/security.md gives it and refused the rest with an AuthError naming the scope needed;
# an expired token is refused; a revoked one is refused and the connections that presented it
# are closed; tokens of an older skiffd become admin tokens on upgrade; a flood of refused
# tokens writes a bounded number of log lines.
# shellcheck disable=SC2030,SC2031 # subshells change the environment on purpose
source "$SKIFF_SRC/tests/integration/lib.sh"

start_server
deploy examples/square.c
API="http://127.0.0.1:$HTTP_PORT/api/v1"

# new_token [OPTIONS...]: makes a token with the admin token; sets NEW_ID and NEW_SECRET.
new_token() {
    ok token new "$@"
    NEW_ID=$(json_field "$OUT" token_id)
    NEW_SECRET=$(json_field "$OUT" token_secret)
    [[ $NEW_ID == tk-* && ${#NEW_SECRET} -eq 64 ]] || fail "token new $* printed no token: $OUT"
}

# as ID SECRET CMD...: runs `skiff CMD...` with that token.
as() {
    local id=$1 secret=$2
    shift 2
    SKIFF_TOKEN_ID=$id SKIFF_TOKEN_SECRET=$secret sk "$@"
}

# allowed ID SECRET CMD...: the command works with that token.
allowed() {
    as "$@"
    [[ $RC -eq 0 ]] || { show_last; fail "skiff ${*:3} was refused to token $1"; }
}

# refused NEED ID SECRET CMD...: the command is refused, naming the scope it needs.
refused() {
    local need=$1
    shift
    as "$@"
    [[ $RC -eq 1 ]] || { show_last; fail "skiff ${*:3}: expected a refusal (exit 1), got $RC"; }
    expect_contains "$ERR" "AuthError: permission denied:" "skiff ${*:3}"
    expect_contains "$ERR" "needs a token of scope $need" "skiff ${*:3}"
}

# http_status ID SECRET METHOD PATH [BODY]: the status of a JSON API request with that token.
http_status() {
    curl -s -o "$T/http_body" -w '%{http_code}' -X "$3" -H "X-Skiff-Token-Id: $1" \
        -H "X-Skiff-Token-Secret: $2" ${5:+-d "$5"} "$API$4"
}

begin "token new makes a call token by default; --scope and --expires are checked"
new_token
call_id=$NEW_ID call_secret=$NEW_SECRET
expect_eq "$(json_field "$OUT" scope)" call "default scope"
expect_eq "$(json_field "$OUT" expires)" null "default expiry"
new_token --scope deploy
deploy_id=$NEW_ID deploy_secret=$NEW_SECRET
expect_eq "$(json_field "$OUT" scope)" deploy "scope"
new_token --scope admin
admin2_id=$NEW_ID admin2_secret=$NEW_SECRET
expect_eq "$(json_field "$OUT" scope)" admin "scope"
expect_exit 2 token new --scope root
expect_contains "$ERR" "--scope is admin, deploy or call" "stderr"
for bad in 0s 10x -5m 1.5h 99999d; do
    expect_exit 2 token new --expires "$bad"
    expect_contains "$ERR" "--expires wants a duration" "stderr for --expires $bad"
done

begin "a call token calls, spawns, maps and reads calls, and nothing more"
allowed "$call_id" "$call_secret" call my-shared-app square 6
expect_eq "$OUT" 36 "call"
allowed "$call_id" "$call_secret" spawn my-shared-app square 7
fc=$OUT
allowed "$call_id" "$call_secret" get "$fc" --timeout 30
expect_eq "$OUT" 49 "get"
allowed "$call_id" "$call_secret" graph "$fc" --json
allowed "$call_id" "$call_secret" cancel "$fc"
allowed "$call_id" "$call_secret" stats my-shared-app square
SKIFF_TOKEN_ID=$call_id SKIFF_TOKEN_SECRET=$call_secret sk_in $'[2]\n[3]' map my-shared-app square
expect_eq "$RC" 0 "map with a call token"
expect_eq "$OUT" $'4\n9' "map"
refused deploy "$call_id" "$call_secret" app list
refused deploy "$call_id" "$call_secret" container list
refused deploy "$call_id" "$call_secret" logs my-shared-app
refused deploy "$call_id" "$call_secret" app stop my-shared-app
refused deploy "$call_id" "$call_secret" deploy "$SKIFF_SRC/examples/square.c"
refused admin "$call_id" "$call_secret" token new
refused admin "$call_id" "$call_secret" token list
refused admin "$call_id" "$call_secret" token revoke "$deploy_id"

begin "a deploy token deploys and manages apps, and no tokens"
allowed "$deploy_id" "$deploy_secret" deploy "$SKIFF_SRC/examples/square.c"
allowed "$deploy_id" "$deploy_secret" app list
expect_contains "$OUT" my-shared-app "app list"
allowed "$deploy_id" "$deploy_secret" container list
allowed "$deploy_id" "$deploy_secret" logs my-shared-app
allowed "$deploy_id" "$deploy_secret" call my-shared-app square 8
expect_eq "$OUT" 64 "call"
refused admin "$deploy_id" "$deploy_secret" token new --scope call
refused admin "$deploy_id" "$deploy_secret" token list
refused admin "$deploy_id" "$deploy_secret" token revoke "$call_id"

begin "an admin token does everything"
allowed "$admin2_id" "$admin2_secret" token list
allowed "$admin2_id" "$admin2_secret" app list
allowed "$admin2_id" "$admin2_secret" call my-shared-app square 9
expect_eq "$OUT" 81 "call"

begin "the JSON API takes every scope for calls and refuses bad tokens"
for pair in "$call_id:$call_secret" "$deploy_id:$deploy_secret" "$admin2_id:$admin2_secret"; do
    st=$(http_status "${pair%%:*}" "${pair#*:}" POST /apps/my-shared-app/square/call '{"args": [3]}')
    expect_eq "$st" 200 "HTTP call with token ${pair%%:*}"
    expect_contains "$(cat "$T/http_body")" '"result":9' "HTTP call result"
done
st=$(http_status "$call_id" "$call_secret" POST /apps/my-shared-app/square/spawn '{"args": [4]}')
expect_eq "$st" 202 "HTTP spawn with a call token"
hfc=$(json_field "$(cat "$T/http_body")" call_id)
st=$(http_status "$call_id" "$call_secret" GET "/calls/$hfc?timeout=30")
expect_eq "$st" 200 "HTTP get with a call token"
st=$(http_status "$call_id" "$call_secret" GET "/calls/$fc/graph")
expect_eq "$st" 200 "HTTP graph with a call token"
st=$(http_status "$call_id" "$call_secret" GET /apps/my-shared-app/square/stats)
expect_eq "$st" 200 "HTTP stats with a call token"
st=$(http_status "$call_id" wrong POST /apps/my-shared-app/square/call '{"args": [3]}')
expect_eq "$st" 401 "HTTP call with a wrong secret"

begin "token list shows ids, scopes and times, never secrets"
ok token list
list=$OUT
for id in "$call_id" "$deploy_id" "$admin2_id"; do
    expect_contains "$list" "\"token_id\":\"$id\"" "token list"
done
expect_match "$list" "\"token_id\":\"$call_id\",\"scope\":\"call\",\"created\":[0-9]+,\"expires\":null,\"expired\":false,\"last_used\":[0-9]+" "the call token's entry"
for secret in "$call_secret" "$deploy_secret" "$admin2_secret"; do
    [[ $list != *"$secret"* ]] || fail "token list shows a secret"
done
[[ $list != *secret* ]] || fail "token list has a secret field: $list"

begin "an expired token is refused (wire and HTTP)"
new_token --scope call --expires 3s
short_id=$NEW_ID short_secret=$NEW_SECRET
[[ $(json_field "$OUT" expires) =~ ^[0-9]+$ ]] || fail "no expiry time in $OUT"
allowed "$short_id" "$short_secret" call my-shared-app square 2
expect_eq "$OUT" 4 "call before the expiry"
# An open connection made before the expiry: a map that waits on a fifo for its next line.
mkfifo "$T/map_in"
SKIFF_TOKEN_ID=$short_id SKIFF_TOKEN_SECRET=$short_secret \
    "$SKIFF" map my-shared-app square <"$T/map_in" >"$T/map_out" 2>"$T/map_err" &
map_pid=$!
exec 5>"$T/map_in"
echo '[5]' >&5
map_first() { [[ $(cat "$T/map_out") == 25 ]]; }
wait_until 10 "the map's first result" map_first
# And a stream that sends no request after its first: a follow of the logs, with a deploy token
# that expires as soon.
new_token --scope deploy --expires 3s
SKIFF_TOKEN_ID=$NEW_ID SKIFF_TOKEN_SECRET=$NEW_SECRET \
    "$SKIFF" logs my-shared-app --follow >"$T/efollow_out" 2>"$T/efollow_err" &
efollow_pid=$!
sleep 3.5
as "$short_id" "$short_secret" call my-shared-app square 2
expect_eq "$RC" 1 "exit status of a call with an expired token"
expect_contains "$ERR" "has expired" "a call with an expired token"
st=$(http_status "$short_id" "$short_secret" POST /apps/my-shared-app/square/call '{"args": [3]}')
expect_eq "$st" 401 "HTTP call with an expired token"
expect_contains "$(cat "$T/http_body")" "has expired" "HTTP body"
# The server closed the map's connection when its token expired: the map ends by itself (its
# stdin still open), failing.
map_ended() { ! kill -0 "$map_pid" 2>/dev/null; }
wait_until 10 "the map to end after its token expired" map_ended
exec 5>&-
map_rc=0
wait "$map_pid" || map_rc=$?
expect_ne "$map_rc" 0 "exit status of the map whose token expired while it ran"
expect_eq "$(cat "$T/map_out")" 25 "the map's output (nothing after the expiry)"
grep -q "closing: its token $short_id has expired" "$SERVER_LOG" ||
    fail "the server did not say it closed the map's connection for its expired token"
efollow_ended() { ! kill -0 "$efollow_pid" 2>/dev/null; }
wait_until 10 "skiff logs --follow to end after its token expired" efollow_ended
efollow_rc=0
wait "$efollow_pid" || efollow_rc=$?
expect_ne "$efollow_rc" 0 "exit status of the follower whose token expired"
ok token list
expect_match "$OUT" "\"token_id\":\"$short_id\",\"scope\":\"call\",\"created\":[0-9]+,\"expires\":[0-9]+,\"expired\":true" "the expired token's entry"

begin "a revoked token is refused, and its open connections are closed"
new_token --scope deploy
rev_id=$NEW_ID rev_secret=$NEW_SECRET
SKIFF_TOKEN_ID=$rev_id SKIFF_TOKEN_SECRET=$rev_secret \
    "$SKIFF" logs my-shared-app --follow >"$T/follow_out" 2>"$T/follow_err" &
follow_pid=$!
# The follow is connected once the server has logged its HELLO's connection: wait until the
# token has been used.
used() {
    sk token list
    [[ $OUT =~ \"token_id\":\"$rev_id\"[^}]*\"last_used\":[0-9]+ ]]
}
wait_until 10 "the follower to connect" used
kill -0 "$follow_pid" 2>/dev/null || fail "skiff logs --follow ended early: $(cat "$T/follow_err")"
ok token revoke "$rev_id"
follow_ended() { ! kill -0 "$follow_pid" 2>/dev/null; }
wait_until 10 "skiff logs --follow to end after its token was revoked" follow_ended
follow_rc=0
wait "$follow_pid" || follow_rc=$?
expect_ne "$follow_rc" 0 "exit status of the follower whose token was revoked"
as "$rev_id" "$rev_secret" app list
expect_eq "$RC" 1 "exit status with a revoked token"
expect_contains "$ERR" "was refused" "a revoked token"
st=$(http_status "$rev_id" "$rev_secret" POST /apps/my-shared-app/square/call '{"args": [3]}')
expect_eq "$st" 401 "HTTP call with a revoked token"
ok token list
[[ $OUT != *"$rev_id"* ]] || fail "token list still shows the revoked token"
expect_exit 1 token revoke "$rev_id"
expect_contains "$ERR" "NotFoundError" "revoking it again"

begin "the last admin token cannot be revoked"
ok token revoke "$admin2_id"
admin_id=$(sed -n 's/^token_id *= *"\(.*\)"/\1/p' "$HOME/.skiff.toml")
expect_exit 1 token revoke "$admin_id"
expect_contains "$ERR" "last admin token" "revoking the last admin token"
ok app list

begin "tokens of an older skiffd become admin tokens on upgrade"
stop_server
python3 - "$T/data/skiff.db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.executescript("""
CREATE TABLE old(token_id TEXT PRIMARY KEY, secret_hash BLOB NOT NULL, created INTEGER NOT NULL);
INSERT INTO old SELECT token_id, secret_hash, created FROM tokens;
DROP TABLE tokens;
ALTER TABLE old RENAME TO tokens;
""")
db.commit()
EOF
start_server
ok token list
expect_match "$OUT" "\"token_id\":\"$admin_id\",\"scope\":\"admin\"" "the first token after the upgrade"
expect_match "$OUT" "\"token_id\":\"$call_id\",\"scope\":\"admin\"" "a call token of the old schema"
allowed "$deploy_id" "$deploy_secret" token list

begin "a flood of refused tokens writes a bounded number of log lines"
before=$(grep -c "refused token" "$SERVER_LOG" || true)
for i in $(seq 1 150); do
    SKIFF_TOKEN_ID=tk-00000000000000000000000000 SKIFF_TOKEN_SECRET=bad "$SKIFF" app list \
        >/dev/null 2>&1 || true
done
for i in $(seq 1 50); do
    curl -s -o /dev/null -H "X-Skiff-Token-Id: $call_id" -H "X-Skiff-Token-Secret: bad$i" \
        "$API/apps/my-shared-app/square/stats" || true
done
# The server is still there and answers.
ok call my-shared-app square 11
expect_eq "$OUT" 121 "a call after the flood"
after=$(grep -c "refused token" "$SERVER_LOG" || true)
logged=$((after - before))
[[ $logged -ge 1 && $logged -le 10 ]] ||
    fail "200 refused tokens wrote $logged log lines (want 1 to 10 a minute)"
grep -q "more refusals this minute are only counted" "$SERVER_LOG" ||
    fail "no line says that further refusals are only counted"

finish
