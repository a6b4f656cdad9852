#!/usr/bin/env bash
# bench_http.sh - web endpoint requests per second under many connections, side by side with
# nginx serving a static file on the same machine (the ceiling for an HTTP server here).
#
#   bench/bench_http.sh [BUILD_DIR]       (run by bench/run.sh, i.e. `make bench`)
#
# Starts skiffd on free loopback ports with a temporary data directory and HOME, deploys
# examples/web.c, and drives GET /web/web-demo-greet?name=bench with wrk (BENCH_HTTP_CONNS
# connections, default 64, over 2 threads, for BENCH_HTTP_SECONDS, default 5) after a short
# warm-up; then the same load against nginx serving a file holding the same JSON answer. Prints
# both figures and the ratio skiff / nginx; the ratio is reported, never asserted. Every web
# request is a call (held in memory, like remote), so this measures the whole path: HTTP
# parsing, the arguments, scheduling, a container (greet runs up to 32 inputs at once) and back.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
conns=${BENCH_HTTP_CONNS:-64}
seconds=${BENCH_HTTP_SECONDS:-5}
wrk=$(command -v wrk || true)
nginx=$(command -v nginx || echo /usr/sbin/nginx)
if [[ -z $wrk || ! -x $nginx ]]; then
    echo "bench_http: wrk and nginx are needed (scripts/install-deps.sh installs them)" >&2
    exit 1
fi

source "$src/bench/lib.sh"
bench_begin skiff-bench-http
# rps URL: wrk's requests per second at URL (after a 1 s warm-up); non-2xx answers are errors.
rps() {
    "$wrk" -t2 -c"$conns" -d1s "$1" >/dev/null 2>&1 || true
    "$wrk" -t2 -c"$conns" -d"${seconds}s" "$1" >"$tmp/wrk.txt" 2>&1
    if grep -q "Non-2xx" "$tmp/wrk.txt"; then
        echo "bench_http: error answers from $1:" >&2
        cat "$tmp/wrk.txt" >&2
        return 1
    fi
    awk '$1 == "Requests/sec:" { print $2 }' "$tmp/wrk.txt"
}

export HOME=$tmp/home
mkdir -p "$HOME"
unset SKIFF_SERVER SKIFF_TOKEN_ID SKIFF_TOKEN_SECRET SKIFF_DATA
sport=$(free_port)
hport=$(free_port)
"$build/bin/skiffd" --data "$tmp/data" --listen "127.0.0.1:$sport" --http "127.0.0.1:$hport" \
    >"$tmp/skiffd.log" 2>&1 </dev/null &
pids+=($!)
wait_port "$sport" "${pids[-1]}" skiffd
for _ in $(seq 1 250); do [[ -f $HOME/.skiff.toml ]] && break; sleep 0.02; done
SKIFF_SERVER=127.0.0.1:$sport "$build/bin/skiff" deploy "$src/examples/web.c" >/dev/null

# nginx: one worker per core, a static file with the same answer, everything under $tmp.
nport=$(free_port)
mkdir -p "$tmp/nginx/www"
printf '{"message":"Hello, bench!"}' >"$tmp/nginx/www/greet"
# As root, nginx's workers would run as nobody, who cannot read the private temporary directory.
user=""
[[ $(id -u) -ne 0 ]] || user="user root;"
cat >"$tmp/nginx/nginx.conf" <<CONF
$user
worker_processes auto;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    server {
        listen 127.0.0.1:$nport;
        root $tmp/nginx/www;
        default_type application/json;
    }
}
CONF
"$nginx" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -g 'daemon off;' \
    >"$tmp/nginx/out" 2>&1 </dev/null &
pids+=($!)
wait_port "$nport" "${pids[-1]}" nginx

echo "web endpoint requests/s: wrk, $conns connections, 2 threads, ${seconds} s, loopback; $(nproc) cores"
body=$(curl -s "http://127.0.0.1:$hport/web/web-demo-greet?name=bench")
[[ $body == '{"message":"Hello, bench!"}' ]] || { echo "bench_http: unexpected answer $body" >&2; exit 1; }
s=$(rps "http://127.0.0.1:$hport/web/web-demo-greet?name=bench")
g=$(rps "http://127.0.0.1:$nport/greet")
ratio=$(awk -v a="$s" -v b="$g" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')
printf '%-44s %12s requests/s\n' "nginx, static file (the ceiling)" "$g"
printf '%-44s %12s requests/s\n' "skiff web endpoint (a function call each)" "$s"
printf '%-44s %12sx\n' "skiff / nginx" "$ratio"
