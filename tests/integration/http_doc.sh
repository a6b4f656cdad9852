#!/usr/bin/env bash
# http_doc.sh - the curl examples of docs/http-api.md, run against a real skiffd: every `$ `
# line of a `console` block is run with bash and must print the lines below it. In the expected
# text `…` matches anything, and call ids in the output compare as `fc-…`; `$AUTH` becomes the
# two token headers and CALL_ID the id that the last spawn printed as {"call_id": ...}.
source "$SKIFF_SRC/tests/integration/lib.sh"

start_server
deploy examples/web.c
deploy examples/square.c
deploy examples/jobs.c

SKIFF_HTTP="http://127.0.0.1:$HTTP_PORT"
SKIFF_TOKEN_ID=$(sed -n 's/^token_id *= *"\(.*\)"/\1/p' "$HOME/.skiff.toml")
SKIFF_TOKEN_SECRET=$(sed -n 's/^token_secret *= *"\(.*\)"/\1/p' "$HOME/.skiff.toml")
[[ -n $SKIFF_TOKEN_ID && -n $SKIFF_TOKEN_SECRET ]] || fail "no token in ~/.skiff.toml"
AUTH=(-H "X-Skiff-Token-Id: $SKIFF_TOKEN_ID" -H "X-Skiff-Token-Secret: $SKIFF_TOKEN_SECRET")
CALL_ID=""
doc=$SKIFF_SRC/docs/http-api.md

# run_example CMD EXPECTED: runs one example and compares its output.
n=0
run_example() {
    local cmd=$1 want=$2 line raw got pattern id
    n=$((n + 1))
    begin "docs/http-api.md example $n: $cmd"
    line=${cmd//'$AUTH'/'"${AUTH[@]}"'}
    raw=$(eval "$line" 2>&1 </dev/null) || true
    id=$(grep -oE '^\{"call_id":"fc-[0-9A-Z]{26}"\}$' <<<"$raw" | head -1 || true)
    if [[ -n $id ]]; then
        CALL_ID=${id:12:29}
    fi
    got=$(sed -E 's/fc-[0-9A-Z]{26}/fc-…/g' <<<"$raw")
    pattern=${want//\\/\\\\}
    pattern=${pattern//\*/\\*}
    pattern=${pattern//\?/\\?}
    pattern=${pattern//\[/\\[}
    pattern=${pattern//…/*}
    # shellcheck disable=SC2053
    if [[ $got != $pattern ]]; then
        fail "$(printf 'example: %s\nexpected: %s\ngot:      %s' "$cmd" "$want" "$got")"
    fi
}

cmd="" want="" inblock=0 count=0
while IFS= read -r text; do
    if [[ $text == '```console' ]]; then
        inblock=1
        continue
    fi
    if [[ $text == '```'* ]]; then
        [[ -z $cmd ]] || run_example "$cmd" "$want"
        cmd="" want="" inblock=0
        continue
    fi
    [[ $inblock -eq 1 ]] || continue
    if [[ $text == '$ '* ]]; then
        [[ -z $cmd ]] || run_example "$cmd" "$want"
        cmd=${text:2} want=""
        count=$((count + 1))
    else
        want=${want:+$want$'\n'}$text
    fi
done <"$doc"
[[ $count -ge 10 ]] || fail "only $count examples found in $doc"
finish
