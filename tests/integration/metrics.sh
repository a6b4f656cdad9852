#!/usr/bin/env bash
# metrics.sh - GET /metrics: refused without a token (401) or with a bad one, served with the
# X-Skiff headers and with Authorization: Bearer ID:SECRET; `promtool check metrics` accepts the
# text of a server that ran calls, failures, a class's method and a web request; the counters
# match what was done (inputs by status, container starts, HTTP codes, store commits).
source "$SKIFF_SRC/tests/integration/lib.sh"

start_server
deploy examples/square.c
deploy examples/web.c

http_setup

# value NAME_WITH_LABELS: the sample's value in $OUT (empty when absent).
value() { printf '%s\n' "$OUT" | awk -v k="$1" '$1 == k { print $2 }'; }

begin "401 without a token, with a wrong one, or a container-less bad Bearer"
http "$H/metrics"
expect_eq "$CODE" 401 "no token"
expect_contains "$OUT" AuthError "error body"
http -H "X-Skiff-Token-Id: $TOKEN_ID" -H "X-Skiff-Token-Secret: wrong" "$H/metrics"
expect_eq "$CODE" 401 "wrong secret"
http -H "Authorization: Bearer $TOKEN_ID:wrong" "$H/metrics"
expect_eq "$CODE" 401 "wrong Bearer secret"
http -H "Authorization: Bearer nonsense" "$H/metrics"
expect_eq "$CODE" 401 "Bearer without a colon"

begin "calls, failures, a method and a web request move the counters"
for x in 1 2 3; do ok call my-shared-app square "$x"; done
expect_exit 1 call my-shared-app square '"text"'
ok call my-shared-app MyLifecycleClass.foo
http "$H/web/web-demo-greet?name=Ada"
expect_eq "$CODE" 200 "web request"
ok spawn my-shared-app square 7
ok get "$OUT" --timeout 30

begin "the text is valid Prometheus exposition (promtool check metrics)"
http "${AUTH[@]}" "$H/metrics"
expect_eq "$CODE" 200 "status with the X-Skiff headers"
curl -s -D "$T/headers" -o /dev/null "${AUTH[@]}" "$H/metrics"
expect_contains "$(cat "$T/headers")" "text/plain; version=0.0.4" "content type"
printf '%s\n' "$OUT" >"$T/metrics.txt"
RC=0
PROM_OUT=$(promtool check metrics <"$T/metrics.txt" 2>&1) || RC=$?
[[ $RC -eq 0 ]] || { printf '%s\n' "$PROM_OUT" >&2; fail "promtool check metrics refused the text"; }
for name in skiff_inputs_total skiff_input_duration_seconds skiff_backlog skiff_containers \
    skiff_container_starts_total skiff_cold_start_seconds skiff_http_requests_total \
    skiff_store_commit_seconds process_resident_memory_bytes process_open_fds \
    process_cpu_seconds_total process_start_time_seconds; do
    expect_contains "$OUT" "# TYPE $name " "TYPE line of $name"
done

begin "the counters match the calls made"
expect_eq "$(value 'skiff_inputs_total{app="my-shared-app",function="square",status="success"}')" 4 "square successes"
expect_eq "$(value 'skiff_inputs_total{app="my-shared-app",function="square",status="failure"}')" 1 "square failures"
expect_eq "$(value 'skiff_inputs_total{app="my-shared-app",function="MyLifecycleClass.foo",status="success"}')" 1 "method successes"
expect_eq "$(value 'skiff_inputs_total{app="web-demo",function="greet",status="success"}')" 1 "web successes"
expect_eq "$(value 'skiff_input_duration_seconds_count{app="my-shared-app",function="square"}')" 5 "durations observed"
expect_eq "$(value 'skiff_input_duration_seconds_bucket{app="my-shared-app",function="square",le="+Inf"}')" 5 "the +Inf bucket"
starts=$(value 'skiff_container_starts_total{app="my-shared-app",function="square",kind="process"}')
sstarts=$(value 'skiff_container_starts_total{app="my-shared-app",function="square",kind="sandbox"}')
expect_eq "$((starts + sstarts >= 1))" 1 "square's containers started ($starts + $sstarts)"
expect_eq "$(value 'skiff_cold_start_seconds_count{app="my-shared-app",function="square"}')" "$((starts + sstarts))" "a cold start per start"
expect_match "$(value 'skiff_containers{app="my-shared-app",function="square",state="idle"}')" '^[0-9]+$' "containers gauge"
expect_eq "$(value 'skiff_backlog{app="my-shared-app",function="square"}')" 0 "backlog"
expect_match "$(value 'skiff_http_requests_total{code="401"}')" '^[4-9]$' "401s counted"
expect_eq "$(value 'skiff_http_requests_total{code="200"}')" 1 "200s so far (the web request; a scrape counts once answered)"
expect_match "$(value 'skiff_store_commit_seconds_count')" '^[1-9][0-9]*$' "store commits (the spawn, deploys)"
expect_match "$(value 'process_resident_memory_bytes')" '^[1-9][0-9]*$' "resident memory"
expect_match "$(value 'process_open_fds')" '^[1-9][0-9]*$' "open fds"

begin "Authorization: Bearer ID:SECRET (a Prometheus scrape config) works too"
http -H "Authorization: Bearer $TOKEN_ID:$TOKEN_SECRET" "$H/metrics"
expect_eq "$CODE" 200 "Bearer"
expect_eq "$(value 'skiff_http_requests_total{code="200"}')" 3 "the earlier scrape counted"
http -H "Authorization: Bearer $TOKEN_ID:$TOKEN_SECRET" "$H/api/v1/apps/my-shared-app/square/stats"
expect_eq "$CODE" 200 "Bearer on the JSON API too"
http -H "Authorization: Basic $TOKEN_ID:$TOKEN_SECRET" "$H/api/v1/apps/my-shared-app/square/stats"
expect_eq "$CODE" 401 "not another scheme"

begin "a call-scope token may scrape"
ok token new --scope call
cid=$(json_field "$OUT" token_id)
csec=$(json_field "$OUT" token_secret)
http -H "Authorization: Bearer $cid:$csec" "$H/metrics"
expect_eq "$CODE" 200 "call-scope token"

begin "the Grafana dashboard's queries parse (promtool check rules)"
python3 - "$SKIFF_SRC/contrib/grafana-skiff.json" >"$T/rules.yml" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print("groups:\n  - name: grafana\n    rules:")
for i, p in enumerate(d["panels"]):
    for t in p["targets"]:
        e = (t["expr"].replace("$__rate_interval", "5m").replace("$app", ".*")
             .replace("$instance", ".*").replace("$job", ".*"))
        print(f"      - record: grafana:panel{i}:{t['refId']}\n        expr: {json.dumps(e)}")
PY
RC=0
PROM_OUT=$(promtool check rules "$T/rules.yml" 2>&1) || RC=$?
[[ $RC -eq 0 ]] || { printf '%s\n' "$PROM_OUT" >&2; fail "a Grafana query does not parse"; }
expect_contains "$PROM_OUT" "SUCCESS" "promtool"

begin "skiffd --no-metrics: /metrics answers 404, calls still work"
restart_server --no-metrics
ok call my-shared-app square 5
http "${AUTH[@]}" "$H/metrics"
expect_eq "$CODE" 404 "status"
expect_contains "$OUT" "--no-metrics" "says why"

finish
