#!/usr/bin/env bash
# auth.sh - issue 2, point 9 through the CLI: skiffd's first start writes ~/.skiff.toml (mode
# 0600, the server's address and a token) so `skiff` needs no set-up; bad or missing tokens are
# refused with a clear error (exit 1, AuthError); `skiff token new` makes a token that works.
# shellcheck disable=SC2030,SC2031,SC2119 # subshells change HOME on purpose
source "$SKIFF_SRC/tests/integration/lib.sh"

start_server
deploy examples/square.c

begin "first start writes ~/.skiff.toml"
[[ -f $HOME/.skiff.toml ]] || fail "no $HOME/.skiff.toml"
mode=$(stat -c %a "$HOME/.skiff.toml")
expect_eq "$mode" 600 "mode of ~/.skiff.toml"
toml=$(cat "$HOME/.skiff.toml")
expect_contains "$toml" "127.0.0.1:$SERVER_PORT" "server in ~/.skiff.toml"
expect_match "$toml" 'token_id *= *"[^"]+"' "token_id in ~/.skiff.toml"
expect_match "$toml" 'token_secret *= *"[^"]+"' "token_secret in ~/.skiff.toml"

begin "the CLI needs nothing but that file"
(
    unset SKIFF_SERVER
    ok call my-shared-app square 6
    expect_eq "$OUT" 36 "square(6) with only ~/.skiff.toml"
)

begin "a restart keeps the file and the token"
before=$(cat "$HOME/.skiff.toml")
restart_server
expect_eq "$(cat "$HOME/.skiff.toml")" "$before" "the config file after a restart"
ok call my-shared-app square 7

begin "a bad secret is refused"
token_id=$(sed -n 's/^token_id *= *"\(.*\)"/\1/p' "$HOME/.skiff.toml")
SKIFF_TOKEN_ID=$token_id SKIFF_TOKEN_SECRET=wrong-secret expect_exit 1 call my-shared-app square 2
expect_contains "$ERR" "AuthError" "stderr"
expect_eq "$OUT" "" "stdout"

begin "an unknown token is refused"
SKIFF_TOKEN_ID=tk-00000000000000000000000000 SKIFF_TOKEN_SECRET=x expect_exit 1 app list
expect_contains "$ERR" "AuthError" "stderr"

begin "no token at all is refused"
(
    export HOME=$T/empty-home
    mkdir -p "$HOME"
    expect_exit 1 call my-shared-app square 2
    expect_contains "$ERR" "Auth" "stderr"
)

begin "skiff token new makes a second token that works"
ok token new
new_id=$(json_field "$OUT" token_id)
new_secret=$(json_field "$OUT" token_secret)
[[ -n $new_id && -n $new_secret ]] || fail "token new printed no token_id / token_secret: $OUT"
expect_ne "$new_id" "$token_id" "the new token id"
(
    export HOME=$T/other-home
    mkdir -p "$HOME"
    SKIFF_TOKEN_ID=$new_id SKIFF_TOKEN_SECRET=$new_secret ok call my-shared-app square 8
    expect_eq "$OUT" 64 "square(8) with the new token"
)

begin "the server refuses a client that does not speak the protocol"
# Something that is not a HELLO frame: the connection is closed, the server carries on.
exec 3<>"/dev/tcp/127.0.0.1/$SERVER_PORT"
printf 'GET / HTTP/1.0\r\n\r\n' >&3
timeout 5 cat <&3 >/dev/null || fail "the server kept a connection that sent garbage open"
exec 3<&-
ok call my-shared-app square 9
expect_eq "$OUT" 81 "square(9) afterwards"

finish
