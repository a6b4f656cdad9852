#!/usr/bin/env bash
# readme_doc.sh - listings in the README and docs that introduce themselves as "The app
# (`examples/FILE`" or "The program (`examples/FILE`" are the file's own text: each such ```c
# block must appear, line for line, in that file (so the docs cannot drift from code that is
# built and run). Then the docs' job queue program runs against a real server.
source "$SKIFF_SRC/tests/integration/lib.sh"

checked=0
cd "$SKIFF_SRC"
docs=(README.md docs/*.md)
cd - >/dev/null
for doc in "${docs[@]}"; do
    while IFS= read -r file; do
        begin "$doc: the listing of $file"
        # The first ```c block after the line that introduces it.
        awk -v f="$file" '
            (index($0, "The app (`" f) == 1 || index($0, "The program (`" f) == 1) { found = 1; next }
            found && /^```c$/ { inblock = 1; next }
            inblock && /^```$/ { exit }
            inblock { print }' "$SKIFF_SRC/$doc" >"$T/listing"
        [[ -s $T/listing ]] || fail "no listing follows the line naming $file"
        /usr/bin/python3 -c 'import sys
want = open(sys.argv[1]).read().rstrip("\n")
sys.exit(0 if want in open(sys.argv[2]).read() else 1)' "$T/listing" "$SKIFF_SRC/$file" ||
            fail "the listing of $file in $doc is not the text of the file"
        checked=$((checked + 1))
    done < <(grep -oE '^The (app|program) \(`examples/[a-z_]*\.c' "$SKIFF_SRC/$doc" | sed -E 's/^The (app|program) \(`//')
done
[[ $checked -ge 2 ]] || fail "expected the README's app and the client docs' program, found $checked listings"

begin "the job queue of docs/client-api.md"
start_server
deploy examples/jobs.c
run_cmd "$SKIFF_BUILD/examples/job_queue" submit job-1 0.5
expect_eq "$RC" 0 "submit's exit status"
expect_match "$OUT" '^fc-[0-9A-Z]{26}$' "submit prints the call id"
id=$OUT
run_cmd "$SKIFF_BUILD/examples/job_queue" poll "$id"
expect_eq "$OUT" running "a poll right away"
poll_done() {
    run_cmd "$SKIFF_BUILD/examples/job_queue" poll "$id"
    [[ $OUT == *'"status":"done"'* ]]
}
wait_until 10 "the job's result" poll_done
expect_contains "$OUT" '"job_id":"job-1"' "the result"
finish
