#!/usr/bin/env bash
# dashboard_browser.sh - headless Chromium (Debian's chromium) drives the dashboard against a
# real skiffd through the DevTools protocol (tests/integration/cdp.py): the login page without a
# session, login through a one-time URL, refusal of the same URL reused and of an expired one,
# the pages list the deployed apps and a running call, the Cancel button cancels the call, the
# logs page and a call's page show what it printed, and a screenshot of the calls page is kept (its path printed: $TMPDIR/dashboard.png, kept with
# SKIFF_KEEP_TMP=1).
source "$SKIFF_SRC/tests/integration/lib.sh"

command -v chromium >/dev/null || fail "chromium is not installed (scripts/install-deps.sh)"
start_server --login-code-ttl 4
deploy examples/square.c
deploy tests/apps/faulty.c
http_setup

CHROME_PID=""
stop_chrome() {
    if [[ -n $CHROME_PID ]]; then
        kill "$CHROME_PID" 2>/dev/null
        wait "$CHROME_PID" 2>/dev/null
    fi
    CHROME_PID=""
}
trap 'rc=$?; stop_chrome; (exit $rc); on_exit' EXIT

chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --disable-dev-shm-usage \
    --user-data-dir="$T/chrome" --remote-debugging-port=0 --window-size=1280,800 about:blank \
    >"$T/chrome.log" 2>&1 &
CHROME_PID=$!
chrome_up() { [[ -s $T/chrome/DevToolsActivePort ]]; }
wait_until 60 "chromium's DevTools port" chrome_up
PORT=$(head -n 1 "$T/chrome/DevToolsActivePort")

# drive LINES...: runs the cdp.py commands; OUT is what it printed.
drive() {
    printf '%s\n' "$@" >"$T/script"
    RC=0
    OUT=$(python3 "$SKIFF_SRC/tests/integration/cdp.py" "$PORT" "$T/script" 2>"$T/cdp.err") || RC=$?
    ERR=$(cat "$T/cdp.err")
    [[ $RC -eq 0 ]] || { printf '%s\n' "$ERR" >&2; fail "the browser script failed"; }
}

begin "without a session the browser gets only the login page"
drive "goto $H/" "wait skiff dashboard" "absent my-shared-app"

begin "an expired login URL is refused"
ok dashboard --url
EXPIRED=$OUT
sleep 4.5
drive "goto $EXPIRED" "status" "wait already used or has expired" "absent my-shared-app"
expect_eq "$OUT" 401 "status of an expired code"

begin "the one-time URL logs in; the apps page lists the deployed apps"
ok spawn faulty cancellable 120
CALL=$OUT
ok dashboard --url
URL=$OUT
drive "goto $URL" "status" "wait my-shared-app" "wait faulty" "wait MyLifecycleClass"
expect_eq "$OUT" 200 "status after the login's redirect"

begin "the same URL again is refused (the session cookie stays)"
drive "goto $URL" "status" "wait already used or has expired"
expect_eq "$OUT" 401 "reused code"
drive "goto $H/#/apps" "wait my-shared-app"

begin "the calls page lists the running call; Cancel cancels it"
drive "goto $H/#/calls" "wait $CALL" "wait running" \
    "screenshot $TMPDIR/dashboard.png" "click [data-cancel=\"$CALL\"]" "wait terminated 30"
echo "screenshot: $TMPDIR/dashboard.png"
[[ -s $TMPDIR/dashboard.png ]] || fail "no screenshot"
expect_eq "$(head -c 4 "$TMPDIR/dashboard.png" | tail -c 3)" PNG "the screenshot is a PNG"
expect_exit 1 get "$CALL" --timeout 10
expect_contains "$ERR" "cancelled" "the call was cancelled"

begin "the call's page, the function page and the containers page render"
drive "goto $H/#/call/$CALL" "wait CancelledError" \
    "goto $H/#/fn/faulty/cancellable" "wait Backlog" "wait Failure rate" \
    "goto $H/#/containers" "wait Containers" "goto $H/#/tokens" "wait $TOKEN_ID"

begin "live updates: a call made elsewhere appears on the open calls page by itself"
drive "goto $H/#/calls" "wait Calls"
ok spawn my-shared-app square 12
NEW=$OUT
# The page's own refresh is every 10 s; the event stream makes it reload within about 1 s.
drive "wait $NEW 6" "absent connection lost"

begin "a phone-width window: no sideways scrolling of the page (tables scroll in their box)"
drive "viewport 390 844" "goto $H/#/calls" "wait Calls" "wait $NEW" \
    "eval document.documentElement.scrollWidth <= window.innerWidth" \
    "screenshot $TMPDIR/dashboard-phone.png" "goto $H/#/apps" "wait my-shared-app" \
    "eval document.documentElement.scrollWidth <= window.innerWidth" "viewport 1280 800"
expect_eq "$OUT" $'true\ntrue' "the page fits 390 px"
echo "screenshot (phone width): $TMPDIR/dashboard-phone.png"

begin "the logs page and a call's page show what its input printed"
ok call faulty say '"hello from the dashboard test"'
SAY=$(sk spawn faulty say '"the spawned call speaks"'; echo "$OUT")
ok get "$SAY" --timeout 30
drive "goto $H/#/logs/faulty" "wait hello from the dashboard test" \
    "goto $H/#/call/$SAY" "wait Logs of its inputs" "wait the spawned call speaks" \
    "absent hello from the dashboard test"

stop_chrome
finish
