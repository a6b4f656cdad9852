#!/usr/bin/env bash
# tokens_container.sh - issue 8: the token a container gets is its own, scoped to what functions
# do, and dies with the container. A function (tests/security/apps/token_probe.c) uses the token
# in its environment to try what a hostile function would: mint and list tokens, list, deploy and
# stop apps, read another app's logs and calls (libskiff, the raw protocol and the JSON API). All
# of it must be refused, while calling a function and reading back its own spawned call works.
# Then the token, taken out of the container, stops working once the container has ended; the
# same holds in a container forked from a snapshot template.
# shellcheck disable=SC2030,SC2031 # subshells change the environment on purpose
source "$SKIFF_SRC/tests/integration/lib.sh"

start_server
deploy examples/square.c
deploy tests/security/apps/token_probe.c

# A call of another app, made by the admin: the victim whose data the probe tries to read.
ok spawn my-shared-app square 3
victim=$OUT
ok get "$victim" --timeout 30
expect_eq "$OUT" 9 "the victim call's result"

# check_probe JSON WHERE: every forbidden attempt refused, every allowed one worked.
check_probe() {
    local json=$1 where=$2 k
    for k in token_new token_new_admin token_list token_revoke; do
        expect_match "$json" "\"$k\": *\"AuthError: permission denied: [A-Z_]+ needs a token of scope admin" "$where: $k"
    done
    for k in app_list container_list deploy app_stop logs autoscaler; do
        expect_match "$json" "\"$k\": *\"AuthError: permission denied: [A-Z_]+ needs a token of scope deploy" "$where: $k"
    done
    for k in get_other info_other graph_other outputs_other cancel_other from_id_other; do
        expect_match "$json" "\"$k\": *\"AuthError: permission denied: a container's token may only read the calls its container made" "$where: $k"
    done
    expect_match "$json" '"http_get_other": *"403 \{.{0,4}error.{0,6}type.{0,4}:.{0,2}AuthError' "$where: HTTP GET of another app's call"
    expect_match "$json" '"hello": *"ok"' "$where: HELLO with the container's token"
    expect_match "$json" '"call": *"ok 16"' "$where: a call of another app's function"
    expect_match "$json" '"spawn_get_own": *"ok 25"' "$where: its own spawned call read back"
    expect_match "$json" '"get_own_raw": *"ok"' "$where: its own spawned call read back (raw GET)"
    expect_match "$json" '"http_spawn": *"202 ' "$where: a spawn over HTTP"
    expect_match "$json" '"http_get_own": *"200 \{.{0,3}result.{0,3}:36\}' "$where: its own HTTP spawn read back"
}

begin "a function cannot use its container's token beyond calls"
ok call sec-token-probe probe "\"$victim\"" '"my-shared-app"' "$HTTP_PORT"
check_probe "$OUT" "plain container"
# Nothing it tried took effect: the victim app is still deployed and its call unharmed.
ok call my-shared-app square 7
expect_eq "$OUT" 49 "the victim app after the probe"
ok get "$victim" --timeout 0
expect_eq "$OUT" 9 "the victim call after the probe"

begin "a container from a snapshot template is held to the same"
ok call sec-token-probe Snap.snap_probe "\"$victim\"" '"my-shared-app"' "$HTTP_PORT"
check_probe "$OUT" "forked container"
grep -q "snapshot template .* started for sec-token-probe" "$SERVER_LOG" ||
    fail "no snapshot template started for the Snap class (the forked case was not tried)"

begin "each container has its own token, different from the server's and the template's"
ok call sec-token-probe whoami
plain=$OUT
plain_id=$(sed -n 's/^\["\([^"]*\)".*/\1/p' <<<"$plain")
plain_secret=$(sed -n 's/^\["[^"]*", *"\([^"]*\)".*/\1/p' <<<"$plain")
[[ $plain_id == tk-* && ${#plain_secret} -eq 64 ]] || fail "whoami gave no token: $plain"
admin_id=$(sed -n 's/^token_id *= *"\(.*\)"/\1/p' "$HOME/.skiff.toml")
expect_ne "$plain_id" "$admin_id" "the container's token id"
ok call sec-token-probe Snap.snap_whoami
snap=$OUT
tmpl_id=$(sed -n 's/^\["\([^"]*\)".*/\1/p' <<<"$snap")
forked_id=$(sed -n 's/^\["[^"]*", *"\([^"]*\)".*/\1/p' <<<"$snap")
forked_secret=$(sed -n 's/^\["[^"]*", *"[^"]*", *"\([^"]*\)".*/\1/p' <<<"$snap")
[[ $tmpl_id == tk-* && $forked_id == tk-* ]] || fail "snap_whoami gave no tokens: $snap"
expect_ne "$forked_id" "$tmpl_id" "the forked container's token (vs its template's)"
expect_ne "$forked_id" "$plain_id" "the forked container's token (vs the plain container's)"

begin "while its container runs, the token works from outside only within its scope"
(
    export SKIFF_TOKEN_ID=$plain_id SKIFF_TOKEN_SECRET=$plain_secret
    ok call my-shared-app square 5
    expect_eq "$OUT" 25 "a call with the container's token"
    expect_exit 1 app list
    expect_contains "$ERR" "needs a token of scope deploy" "app list with the container's token"
    expect_exit 1 token new
    expect_contains "$ERR" "needs a token of scope admin" "token new with the container's token"
    expect_exit 1 get "$victim" --timeout 0
    expect_contains "$ERR" "may only read the calls its container made" "get of another's call"
)

begin "the token dies with its container"
ok app stop sec-token-probe
gone() {
    sk container list
    [[ $RC -eq 0 && $OUT != *sec-token-probe* ]]
}
wait_until 30 "the probe's containers to end" gone
for pair in "$plain_id:$plain_secret" "$forked_id:$forked_secret"; do
    (
        export SKIFF_TOKEN_ID=${pair%%:*} SKIFF_TOKEN_SECRET=${pair#*:}
        expect_exit 1 call my-shared-app square 5
        expect_contains "$ERR" "AuthError" "a call with an ended container's token"
        expect_contains "$ERR" "was refused" "a call with an ended container's token"
    )
done
# Over HTTP too.
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "X-Skiff-Token-Id: $plain_id" \
    -H "X-Skiff-Token-Secret: $plain_secret" -d '{"args": [2]}' \
    "http://127.0.0.1:$HTTP_PORT/api/v1/apps/my-shared-app/square/call")
expect_eq "$code" 401 "HTTP status of a call with an ended container's token"

finish
