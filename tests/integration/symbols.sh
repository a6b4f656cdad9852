#!/usr/bin/env bash
# symbols.sh - libskiff exports only its public API: the shared library's dynamic symbols and
# the static library's global symbols all start with skiff (skiff_ public, skiff__ internal
# hooks between the runtime's parts), so a program may have its own buf_init, mem_alloc or
# wire_begin. A client that defines such names links statically against libskiff.a and runs.
source "$SKIFF_SRC/tests/integration/lib.sh"

begin "libskiff.so exports only skiff names"
bad=$(nm -D --defined-only "$SKIFF_BUILD/lib/libskiff.so" | awk 'NF == 3 { print $3 }' | grep -v '^skiff' || true)
[[ -z $bad ]] || fail "libskiff.so exports: $(head -n 5 <<<"$bad" | tr '\n' ' ')"

begin "libskiff.a's global symbols are only skiff names"
bad=$(nm -g --defined-only "$SKIFF_BUILD/lib/libskiff.a" | awk 'NF == 3 { print $3 }' | grep -v '^skiff' || true)
[[ -z $bad ]] || fail "libskiff.a has global: $(head -n 5 <<<"$bad" | tr '\n' ' ')"

begin "a static client with its own buf_init and mem_alloc links and runs"
cat >"$T/clash.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <skiff/skiff.h>

/* Names libskiff uses inside: a user's own must not clash. */
int buf_init(void) { return 7; }
void *mem_alloc(size_t n) { (void)n; return NULL; }

int main(void)
{
    skiff_value *v = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    if (skiff_value_from_json("[1, 2]", 6, &v, &err) != SKIFF_OK)
        return 1;
    char *json = skiff_value_to_json(v);
    printf("%s %d\n", json, buf_init());
    free(json);
    skiff_value_free(v);
    return 0;
}
C
read -r -a libs <<<"$(pkg-config --libs libuv msgpack sqlite3 jansson libcrypto)"
# The sanitizer pass's library needs the sanitizers' runtimes.
[[ -n ${SKIFF_SANITIZE:-} && ${SKIFF_SANITIZE:-} != 0 ]] && libs+=(-fsanitize=address,undefined)
run_cmd cc -std=c11 -I"$SKIFF_BUILD/include" -o "$T/clash" "$T/clash.c" "$SKIFF_BUILD/lib/libskiff.a" \
    "${libs[@]}" -lpthread -ldl
[[ $RC -eq 0 ]] || { show_last; fail "linking a client with its own buf_init against libskiff.a failed"; }
run_cmd "$T/clash"
expect_eq "$OUT" "[1,2] 7" "the client's own buf_init and libskiff's JSON"
finish
