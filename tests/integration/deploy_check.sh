#!/usr/bin/env bash
# deploy_check.sh - `skiff deploy --name-check` shows the configuration that will run (the
# server's defaults in place of "not set"), and the server's deploy log line counts functions
# and classes as deploy lists them.
source "$SKIFF_SRC/tests/integration/lib.sh"

begin "--name-check shows the defaults"
ok deploy "$SKIFF_SRC/examples/square.c" --name-check
sq=$(/usr/bin/python3 -c 'import json,sys
d = json.loads(sys.stdin.read())
f = [f for f in d["functions"] if f["name"] == "square"][0]
c = d["classes"][0]
print(f["timeout"], f["max_containers"], f["scaledown_window"], f["max_inputs"], f["target_inputs"], c["timeout"])' <<<"$OUT")
expect_eq "$sq" "300.0 8 60.0 1 1 300.0" "timeout, max_containers, scaledown_window, max_inputs, target_inputs, the class's timeout"

begin "declared values are shown as declared"
cat >"$T/cfg.c" <<'C'
#include <skiff/app.h>
SKIFF_APP("cfg-app");
static int f(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    *out = skiff_value_nil();
    return 0;
}
SKIFF_FUNCTION(f, .timeout = 12, .max_containers = 3);
C
ok deploy "$T/cfg.c" --name-check
expect_contains "$OUT" '"timeout":12.0' "the declared timeout"
expect_contains "$OUT" '"max_containers":3' "the declared max_containers"

begin "the server's log counts functions and classes"
start_server
deploy examples/square.c
wait_until 5 "the deploy log line" grep -q 'deployed my-shared-app version 1 (2 functions, 1 class)' "$SERVER_LOG"
finish
