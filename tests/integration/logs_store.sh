#!/usr/bin/env bash
# logs_store.sh - logs for people (issue 10): lines name their function (a class's method) and
# input, outlive a restart of the server, and are addressed as calls are: a function, a class,
# Cls.method, --param for one parameter set; an unknown name is a NotFoundError (exit 1) with a
# "did you mean". stats of Cls.method --param counts that pool's containers.
source "$SKIFF_SRC/tests/integration/lib.sh"

cat >"$T/chatty.c" <<'C'
#include <stdio.h>
#include <skiff/app.h>

SKIFF_APP("chatty");

static int hello(skiff_ctx *ctx, skiff_value **out)
{
    printf("hello from hello(%lld)\n", (long long)skiff_arg_int(ctx, "x"));
    fflush(stdout);
    *out = skiff_value_nil();
    return 0;
}
SKIFF_FUNCTION(hello, .signature = "x:int");

struct greeter {
    int unused;
};
SKIFF_CLASS(Greeter, struct greeter, .params = "word:str");

static int greet(skiff_ctx *ctx, skiff_value **out)
{
    fprintf(stderr, "greeting with %s\n", skiff_param_string(ctx, "word"));
    fflush(stderr);
    *out = skiff_value_string(skiff_param_string(ctx, "word"));
    return 0;
}
SKIFF_METHOD(Greeter, greet, .signature = "");
C

start_server
deploy "$T/chatty.c"
ok call chatty hello 7
ok call chatty Greeter.greet --param 'word="hi"'
ok call chatty Greeter.greet --param 'word="hey"'

has_line() { # ARGS... -- PATTERN: skiff logs ARGS prints a line matching PATTERN
    local args=() pattern
    while [[ $1 != -- ]]; do args+=("$1"); shift; done
    pattern=$2
    sk logs "${args[@]}"
    [[ $RC -eq 0 && $OUT =~ $pattern ]]
}

begin "a line names its function and input"
wait_until 5 "hello's line" has_line chatty hello -- 'ta-[0-9A-Z]+ hello in-[0-9A-Z]+ stdout\| hello from hello\(7\)'

begin "a class's lines: by method, by class, by parameter set"
wait_until 5 "the greetings" has_line chatty Greeter.greet -- 'greeting with hi'
expect_contains "$OUT" "greeting with hey" "both pools through the method"
expect_contains "$OUT" "Greeter.greet in-" "the method named on its lines"
ok logs chatty Greeter
expect_contains "$OUT" "greeting with hi" "the class's lines"
ok logs chatty Greeter.greet --param 'word="hey"'
expect_contains "$OUT" "greeting with hey" "the hey pool"
[[ $OUT != *"greeting with hi"* ]] || fail "--param word=hey shows the hi pool's lines: $OUT"
[[ $OUT != *"hello from"* ]] || fail "a method's logs show another function's lines: $OUT"

begin "an unknown function is a NotFoundError with a suggestion"
expect_exit 1 logs chatty helo
expect_contains "$ERR" "NotFoundError" "type"
expect_contains "$ERR" "did you mean 'hello'?" "suggestion"
expect_exit 1 logs nosuchapp
expect_contains "$ERR" "NotFoundError" "unknown app"

begin "stats of a method for one parameter set"
ok stats chatty Greeter.greet --param 'word="hi"' --json
expect_eq "$(json_field "$OUT" num_total_runners)" 1 "the hi pool's containers"
expect_exit 2 stats chatty Greeter.greet --param 'word'
expect_contains "$ERR" "see 'skiff stats --help'" "a bad --param"

begin "lines outlive a restart"
sleep 0.5 # the logs are written to the store every 250 ms
restart_server
ok logs chatty
expect_contains "$OUT" "hello from hello(7)" "hello's line after the restart"
expect_contains "$OUT" "greeting with hey" "a greeting after the restart"
grep -q 'loaded [0-9]* log lines' "$SERVER_LOG" || fail "the server did not say it loaded the lines"
finish
