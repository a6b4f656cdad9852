#!/usr/bin/env bash
# cli_docs.sh - the command line's documentation stays complete: every command `skiff --help`
# lists has a section in docs/cli.md, an entry in the man page skiff.1 and a place in the bash
# completion; every option `skiffd --help` lists is in skiffd.8; both man pages render without
# warnings; the completion script is valid bash and completes commands.
source "$SKIFF_SRC/tests/integration/lib.sh"

commands=$("$SKIFF" --help | sed -n '/^Commands:/,/^$/p' | awk 'NF && $1 != "Commands:" && /^  [a-z]/ { print $1 }' | sort -u)
[[ $(wc -l <<<"$commands") -ge 10 ]] || fail "could not read the commands from skiff --help: $commands"
"$SKIFF" completion bash >"$T/completion.bash"

begin "every command is documented, in the man page and completed"
for c in $commands; do
    grep -q "^## $c\$" "$SKIFF_SRC/docs/cli.md" || fail "docs/cli.md has no '## $c' section"
    grep -q "^\\.B $c" "$SKIFF_SRC/man/skiff.1" || fail "man/skiff.1 has no entry for $c"
    grep -q "^    $c)" "$T/completion.bash" || fail "the completion does not know $c"
done

begin "every skiffd option is in skiffd.8"
for o in $("$SKIFFD" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
    grep -qF -- "${o//-/\\-}" "$SKIFF_SRC/man/skiffd.8" || fail "man/skiffd.8 does not describe $o"
done

begin "the man pages render without warnings"
for m in man/skiff.1 man/skiffd.8; do
    run_cmd groff -man -ww -z "$SKIFF_SRC/$m"
    [[ $RC -eq 0 && -z $ERR ]] || fail "$m: $ERR"
done

begin "the completion script is valid bash and completes commands and subcommands"
bash -n "$T/completion.bash" || fail "syntax error in the completion script"
got=$(bash -c 'source "$1"; COMP_WORDS=(skiff ca); COMP_CWORD=1; _skiff; echo "${COMPREPLY[*]}"' _ "$T/completion.bash")
expect_eq "$got" "call cancel" "completion of 'ca'"
got=$(bash -c 'source "$1"; COMP_WORDS=(skiff app ""); COMP_CWORD=2; _skiff; echo "${COMPREPLY[*]}"' _ "$T/completion.bash")
expect_eq "$got" "list stop" "completion of 'app '"
finish
