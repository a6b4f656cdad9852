#!/usr/bin/env bash
# demo.sh - a short tour of skiff (what `make demo` runs).
#
#   scripts/demo.sh [BUILD_DIR]       (default: build)
#
# Starts skiffd on a temporary data directory and free ports, with a temporary HOME so the
# user's own ~/.skiff.toml is never touched, deploys the examples and shows, one narrated step
# at a time: a call from the CLI and from C, a call across apps, spawn / poll / get, a failing
# job's error, and the server's listings. Stops the server at the end, whatever happens. Checks
# every step's output and exits non-zero if one is wrong.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
for f in bin/skiffd bin/skiff bin/skiff-worker examples/call_square; do
    [[ -x $build/$f ]] || { echo "demo: $build/$f is missing: run make first" >&2; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/skiff-demo.XXXXXX")
server_pid=""
stop() {
    if [[ -n $server_pid ]]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 1 250); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.02
        done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap stop EXIT

export HOME=$tmp/home
mkdir -p "$HOME"
unset SKIFF_SERVER SKIFF_TOKEN_ID SKIFF_TOKEN_SECRET SKIFF_DATA
export PATH=$build/bin:$build/examples:$PATH

if [[ -t 1 ]]; then bold=$'\e[1m' dim=$'\e[2m' red=$'\e[31m' off=$'\e[0m'; else bold="" dim="" red="" off=""; fi
say() { printf '\n%s# %s%s\n' "$bold" "$*" "$off"; }
die() {
    printf '%sdemo: %s%s\n' "$red" "$*" "$off" >&2
    if [[ -f $tmp/skiffd.log ]]; then
        echo "--- end of the server log ---" >&2
        tail -n 30 "$tmp/skiffd.log" >&2
    fi
    exit 1
}

# quoted ARGS...: the words as a shell would need them typed (quotes only where needed), so a
# shown command can be pasted.
quoted() {
    local w out=()
    for w in "$@"; do
        if [[ $w =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
            out+=("$w")
        else
            out+=("'${w//\'/\'\\\'\'}'")
        fi
    done
    printf '%s' "${out[*]}"
}

# run WANT_STATUS CMD...: shows the command and its output; checks the exit status; leaves the
# output in $out.
run() {
    local want=$1 rc=0
    shift
    printf '%s$ %s%s\n' "$dim" "$(quoted "$@")" "$off"
    "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    out=$(cat "$tmp/out")
    cat "$tmp/out" "$tmp/err"
    [[ $rc -eq $want ]] || die "'$*' exited $rc, expected $want"
}
expect() { [[ $out == *"$1"* ]] || die "expected '$1' in the output above"; }

source "$src/scripts/ports.sh"

port=$(free_port)
http=$(free_port)
say "Start the server (a temporary data directory; it writes \$HOME/.skiff.toml for the CLI)"
printf '%s$ skiffd --data %s --listen 127.0.0.1:%s --http 127.0.0.1:%s &%s\n' \
    "$dim" "$tmp/data" "$port" "$http" "$off"
skiffd --data "$tmp/data" --listen "127.0.0.1:$port" --http "127.0.0.1:$http" \
    >"$tmp/skiffd.log" 2>&1 </dev/null &
server_pid=$!
for _ in $(seq 1 500); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && [[ -f $HOME/.skiff.toml ]]; then
        break
    fi
    kill -0 "$server_pid" 2>/dev/null || die "skiffd exited at start-up"
    sleep 0.02
done
[[ -f $HOME/.skiff.toml ]] || die "skiffd did not come up"

say "Deploy three apps: my-shared-app (square), another-app (cube), example (train_model)"
cd "$src"
run 0 skiff deploy examples/square.c
run 0 skiff deploy examples/another_app.c
run 0 skiff deploy examples/jobs.c
run 0 skiff deploy examples/web.c

say "Call a function from the command line"
run 0 skiff call my-shared-app square 42
[[ $out == 1764 ]] || die "expected 1764"

say "The same from C: examples/call_square.c (skiff_function_lookup + skiff_function_remote)"
run 0 call_square
expect 1764

say "One app calling another: cube(x) = x * square.remote(x)"
run 0 skiff call another-app cube 42
[[ $out == 74088 ]] || die "expected 74088"

say "Spawn a job: the id comes back at once (the input is already on disk)"
run 0 skiff spawn example train_model '"job-1"' '{"seconds": 2}'
id=$out
[[ $id == fc-* ]] || die "expected an fc- id"

say "Poll it: exit status 124 means still running"
run 124 skiff get "$id" --timeout 0

say "Wait for it"
run 0 skiff get "$id"
expect '"status":"done"'

say "A job that fails: its error type, message and traceback, exit status 1"
run 1 skiff call example train_model '"job-2"' '{"seconds": 0, "fail": true}'
grep -q ValueError "$tmp/err" || die "expected a ValueError"

say "Many inputs at once: a map, one JSON array of arguments per line, results in order"
printf '%s$ seq 1 5 | sed %s | skiff map my-shared-app square%s\n' "$dim" "'s/.*/[&]/'" "$off"
out=$(seq 1 5 | sed 's/.*/[&]/' | skiff map my-shared-app square)
echo "$out"
[[ $out == $'1\n4\n9\n16\n25' ]] || die "expected 1 4 9 16 25"

say "A class: enter builds the state once per container, the method returns it"
run 0 skiff call my-shared-app MyLifecycleClass.foo
[[ $out == '"hello world"' ]] || die "expected \"hello world\""

say "A web endpoint, called with curl (examples/web.c)"
run 0 skiff url web-demo greet
url=$out
run 0 curl -s "$url?name=Ada"
expect '"Hello, Ada!"'

say "A secret: stored once, seen by the functions that declare it as environment variables"
run 0 skiff secret create greeting GREETING=Bonjour
run 0 skiff deploy examples/secrets.c
run 0 skiff call secrets-demo greet '"Ada"'
[[ $out == '"Bonjour, Ada!"' ]] || die "expected \"Bonjour, Ada!\""
run 0 skiff secret list
expect GREETING
[[ $out != *Bonjour* ]] || die "secret list showed a value"

say "The call graph of the spawned job"
run 0 skiff graph "$id"
expect example.train_model

say "Try a function without deploying the app for good: skiff run deploys it for one call"
run 0 skiff run examples/square.c square 7
[[ $out == 49 ]] || die "expected 49"

say "What the server runs (the run's app is gone)"
run 0 skiff app list
expect my-shared-app
run 0 skiff container list
expect '"square"'

say "Done: the server stops now"
