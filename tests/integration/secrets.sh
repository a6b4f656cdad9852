#!/usr/bin/env bash
# secrets.sh - `skiff secret` (issue 10): create, list (names and keys, never values), delete,
# --from-env, --force; a function sees its secrets as environment variables; deploy refuses an
# unknown secret; a secret deleted after the deploy fails the container's start with an
# InitFailureError naming it; bad input; values appear neither in `secret list`, the server's
# log nor `skiff logs`. And the minimal environment: a function does not see skiffd's.
source "$SKIFF_SRC/tests/integration/lib.sh"

VALUE="s3cr3t-$RANDOM-value"
MARKER="marker-$RANDOM-of-skiffd"

cat >"$T/envapp.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <skiff/app.h>

extern char **environ;

SKIFF_APP("envapp");

/* The value of one variable, or nil. */
static int get(skiff_ctx *ctx, skiff_value **out)
{
    const char *v = getenv(skiff_arg_string(ctx, "name"));
    *out = v ? skiff_value_string(v) : skiff_value_nil();
    return 0;
}
SKIFF_FUNCTION(get, .signature = "name:str", .secrets = "db, api");

/* The names of every variable, sorted by the test. */
static int names(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    *out = skiff_value_list();
    for (char **e = environ; *e; e++) {
        char name[256];
        size_t n = strcspn(*e, "=");
        if (n >= sizeof name)
            n = sizeof name - 1;
        memcpy(name, *e, n);
        name[n] = '\0';
        skiff_list_append(*out, skiff_value_string(name));
    }
    return 0;
}
SKIFF_FUNCTION(names, .signature = "");

/* Prints a line naming (not showing) the secret, for the logs. */
static int shout(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    const char *v = getenv("PASSWORD");
    printf("the secret db has a PASSWORD of %zu bytes\n", v ? strlen(v) : 0);
    fflush(stdout);
    *out = skiff_value_nil();
    return 0;
}
SKIFF_FUNCTION(shout, .signature = "", .secrets = "db");
C

cat >"$T/unknown.c" <<'C'
#include <skiff/app.h>
SKIFF_APP("unknown-secret");
static int f(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    *out = skiff_value_nil();
    return 0;
}
SKIFF_FUNCTION(f, .signature = "", .secrets = "nosuch");
C

cat >"$T/badname.c" <<'C'
#include <skiff/app.h>
SKIFF_APP("bad-secret-name");
static int f(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    *out = skiff_value_nil();
    return 0;
}
SKIFF_FUNCTION(f, .signature = "", .secrets = "ok,not/valid");
C

# skiffd runs with a marker in its environment: no function may see it.
export SKIFF_TEST_MARKER=$MARKER
export LEAKY_MARKER=$MARKER
start_server
unset SKIFF_TEST_MARKER LEAKY_MARKER

begin "secret create: pairs and --from-env"
ok secret create db "PASSWORD=$VALUE" USER=admin
expect_contains "$OUT" "PASSWORD" "the keys are shown"
expect_eq "$(grep -c -- "$VALUE" <<<"$OUT" || true)" 0 "the value is not in create's output"
API_KEY="from-env-$RANDOM" sk secret create api --from-env API_KEY
expect_eq "$RC" 0 "--from-env"

begin "secret list: names and keys, never values"
ok secret list --json
expect_contains "$OUT" '"name":"api"' "api listed"
expect_contains "$OUT" '"name":"db"' "db listed"
expect_contains "$OUT" '"PASSWORD"' "db's keys listed"
expect_contains "$OUT" '"API_KEY"' "api's keys listed"
if [[ $OUT == *"$VALUE"* || $OUT == *admin* ]]; then
    fail "secret list shows a value: $OUT"
fi

begin "an existing secret needs --force"
expect_exit 1 secret create db PASSWORD=other
expect_contains "$ERR" "already exists" "the error"
expect_contains "$ERR" "--force" "the hint"

begin "bad input is a usage error"
expect_exit 2 secret create db2 NOEQUALS
expect_contains "$ERR" "KEY=VALUE" "no '='"
expect_exit 2 secret create db2 1BAD=x
expect_contains "$ERR" "not a key" "a key starting with a digit"
expect_exit 2 secret create db2 SKIFF_TOKEN_ID=x
expect_contains "$ERR" "not a key" "a runtime variable"
expect_exit 2 secret create db2
expect_contains "$ERR" "at least one" "no pairs"
expect_exit 2 secret create db2 A=1 A=2
expect_contains "$ERR" "twice" "a key twice"
expect_exit 2 secret create db2 --from-env NOT_SET_ANYWHERE_$RANDOM
expect_contains "$ERR" "is not set" "--from-env of an unset variable"
expect_exit 1 secret create 'bad/name' A=1
expect_contains "$ERR" "secret name" "a bad name"
expect_exit 2 secret frobnicate
expect_exit 1 secret delete nosuch
expect_contains "$ERR" "no secret nosuch" "deleting an unknown secret"

begin "a function reads its secrets through getenv"
deploy "$T/envapp.c"
ok call envapp get '"PASSWORD"'
expect_eq "$OUT" "\"$VALUE\"" "PASSWORD from secret db"
ok call envapp get '"USER"'
expect_eq "$OUT" '"admin"' "USER from secret db"
ok call envapp get '"API_KEY"'
expect_match "$OUT" '^"from-env-[0-9]+"$' "API_KEY from secret api (--from-env)"

begin "the minimal environment: skiffd's own is not passed on"
ok call envapp get '"LEAKY_MARKER"'
expect_eq "$OUT" "null" "a variable of skiffd's environment"
ok call envapp get '"SKIFF_TEST_MARKER"'
expect_eq "$OUT" "null" "a SKIFF_* variable of skiffd's environment"
ok call envapp names
names=$(tr -d '[]"' <<<"$OUT" | tr ',' '\n' | sort | tr '\n' ' ')
allowed=" PATH LANG HOME TZ SKIFF_SERVER SKIFF_TOKEN_ID SKIFF_TOKEN_SECRET SKIFF_CONTAINER_ID SKIFF_PAYLOAD_MAX SKIFF_LOG SKIFF_PYTHON ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS "
for n in $names; do
    [[ $allowed == *" $n "* ]] || fail "a function without secrets sees $n (all: $names)"
done
expect_contains " $names" " PATH " "PATH is set"
ok call envapp get '"PATH"'
expect_eq "$OUT" '"/usr/local/bin:/usr/bin:/bin"' "PATH"

begin "a replaced secret reaches new containers"
ok secret create db "PASSWORD=$VALUE-2" USER=admin --force
ok app stop envapp
deploy "$T/envapp.c"
ok call envapp get '"PASSWORD"'
expect_eq "$OUT" "\"$VALUE-2\"" "the new value"

begin "values never reach the logs"
ok call envapp shout
wait_until 5 "shout's log line" bash -c "'$SKIFF' logs envapp shout | grep -q 'PASSWORD of'"
sk logs envapp
expect_eq "$RC" 0 "logs"
if [[ $OUT == *"$VALUE"* ]]; then fail "skiff logs shows the value"; fi
if grep -q -- "$VALUE" "$SERVER_LOG"; then fail "the server's log holds the value"; fi
expect_eq "$(grep -c 'stored secret db' "$SERVER_LOG")" 2 "the log names the secret's stores"

begin "deploy refuses an unknown secret"
expect_exit 1 deploy "$T/unknown.c"
expect_contains "$ERR" "nosuch" "the secret named"
expect_contains "$ERR" "does not exist" "the reason"
expect_exit 1 call unknown-secret f
expect_contains "$ERR" "NotFoundError" "the app was not deployed"

begin "deploy refuses a malformed .secrets"
expect_exit 1 deploy "$T/badname.c"
expect_contains "$ERR" "not/valid" "the bad name"

begin "a secret deleted after the deploy fails the start, naming it"
ok app stop envapp
deploy "$T/envapp.c"
ok secret delete api
ok secret list --json
if [[ $OUT == *'"api"'* ]]; then fail "api still listed: $OUT"; fi
ok call envapp names
expect_exit 1 call envapp get '"API_KEY"'
expect_contains "$ERR" "InitFailureError" "the error type"
expect_contains "$ERR" "secret api does not exist" "the secret named"

begin "and deploy then refuses it"
expect_exit 1 deploy "$T/envapp.c"
expect_contains "$ERR" "secret api" "deploy names the deleted secret"

begin "secrets and volumes need a deploy token: a call token is refused"
ok token new --scope call
call_id=$(json_field "$OUT" token_id)
call_secret=$(json_field "$OUT" token_secret)
for cmd in "secret list" "secret create x A=1" "secret delete db" "volume list" "volume create x"; do
    # shellcheck disable=SC2086
    SKIFF_TOKEN_ID=$call_id SKIFF_TOKEN_SECRET=$call_secret sk $cmd
    expect_eq "$RC" 1 "skiff $cmd with a call token"
    expect_contains "$ERR" "needs a token of scope deploy" "skiff $cmd with a call token"
done
ok token new --scope deploy
dep_id=$(json_field "$OUT" token_id)
dep_secret=$(json_field "$OUT" token_secret)
SKIFF_TOKEN_ID=$dep_id SKIFF_TOKEN_SECRET=$dep_secret sk secret list
expect_eq "$RC" 0 "secret list with a deploy token"

begin "the data directory stays private"
mode=$(stat -c %a "$T/data")
expect_eq "$mode" 700 "data dir mode"
db=$(find "$T/data" -maxdepth 1 -name '*.db' | head -1)
[[ -n $db ]] && expect_eq "$(stat -c %a "$db")" 600 "the store's mode"

finish
