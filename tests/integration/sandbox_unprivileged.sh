#!/usr/bin/env bash
# sandbox_unprivileged.sh - issue 4, point 1: a skiffd without the privileges to sandbox (here:
# not root) says so in one line at start and runs its containers as plain processes, which work
# as before; issue 8: with no_new_privs, the one thing it can still take from them. skiffd runs as the user nobody through setpriv (util-linux); without root or setpriv
# there is nothing to test and the script says so.
# shellcheck disable=SC2034 # SKIFFD is read by lib.sh's start_server
if [[ $(id -u) -ne 0 ]] || ! command -v setpriv >/dev/null; then
    echo "skip: running skiffd as another user needs root and setpriv"
    echo "0 passed, 0 failed"
    exit 0
fi
source "$SKIFF_SRC/tests/integration/lib.sh"

# Everything the server reads or writes must be reachable by nobody: lib.sh's directory $T
# (data, log), a HOME of nobody's own, and the test's temporary directories above $T.
p=$T
while [[ $p == /tmp/?* ]]; do
    chmod o+x "$p"
    p=${p%/*}
done
chmod 0777 "$T"
export HOME=$T/home
mkdir -p "$HOME"
chown nobody "$HOME"
cat >"$T/skiffd-as-nobody" <<WRAP
#!/bin/sh
exec setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$SKIFF_BUILD/bin/skiffd" "\$@"
WRAP
chmod 0755 "$T/skiffd-as-nobody"
SKIFFD=$T/skiffd-as-nobody

start_server --container-memory 32
deploy tests/integration/apps/sandbox_probe.c

begin "one line at start says why containers are not sandboxed"
log_text=$(cat "$SERVER_LOG")
expect_eq "$(grep -c 'containers run as plain processes' "$SERVER_LOG")" 1 "lines about it"
expect_contains "$log_text" "skiffd is not running as root" "the reason"
expect_eq "$(grep -c 'containers are sandboxed' "$SERVER_LOG")" 0 "claims of a sandbox"

begin "functions run as plain processes in the host's namespaces"
ok call itest-sandbox inside '"/dev/null"' '"/"' "\"${T#/tmp/}/written\""
expect_contains "$OUT" '"write_tmp":"ok"' "writing the host's /tmp"
[[ -f $T/written ]] || fail "the function's file is not in the host's /tmp"
expect_contains "$OUT" "\"ns_pid\":\"$(readlink /proc/self/ns/pid)\"" "the pid namespace"
expect_contains "$OUT" "\"ns_mnt\":\"$(readlink /proc/self/ns/mnt)\"" "the mount namespace"
expect_match "$OUT" '"pid":[0-9]{3,}' "a host pid"

begin "what can still be taken from plain containers is: no_new_privs"
deploy tests/security/apps/attacker.c
ok call sec-attacker escape '"/nonexistent"' 1 '"/nonexistent"' '"none"'
expect_eq "$(json_field "$OUT" no_new_privs)" 1 "NoNewPrivs of a plain container"
expect_contains "$(cat "$SERVER_LOG")" "NOT sandboxed" "the warning"

begin "no memory limit is enforced, and the server says nothing more"
ok call itest-sandbox hog 64
expect_eq "$OUT" 64 "MiB allocated past --container-memory 32"
expect_eq "$(grep -c 'containers run as plain processes' "$SERVER_LOG")" 1 "lines about it"

finish
