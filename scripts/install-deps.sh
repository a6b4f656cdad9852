#!/usr/bin/env bash
# install-deps.sh - install the Debian (bookworm) packages skiff needs to build, test, demo and
# benchmark. Idempotent: when everything is present it checks with dpkg-query and returns at once,
# without touching the network.
#
#   scripts/install-deps.sh          build + tests + demo + bench
#   scripts/install-deps.sh --fuzz   also clang (libFuzzer), for scripts/fuzz.sh
#
# Runs as root without a terminal (CI). As another user it installs with sudo when that works
# without a password, and otherwise prints the apt-get command to run and fails.
set -euo pipefail

packages=(
    build-essential pkg-config # cc, make, and the flags of the libraries below
    libuv1-dev                 # the event loop (skiffd, libskiff)
    libmsgpack-dev             # the wire format
    libsqlite3-dev             # skiffd's store
    libjansson-dev             # JSON at the edges (CLI, HTTP)
    libssl-dev                 # libcrypto: token hashing, base64
    gearman-job-server libgearman-dev # the benchmark peer (make bench)
    libhttp-parser-dev         # skiffd's HTTP server (web endpoints, JSON API)
    libseccomp-dev             # the containers' seccomp filter
    curl                       # tests of the HTTP side
    wrk nginx-light            # make bench: HTTP load, and nginx as the static-file ceiling
    sqlite3                    # tests look inside skiffd's database
    zlib1g-dev                 # tests: an app that links a library through SKIFF_APP's .pkgs
    coreutils procps           # timeout, mktemp; ps/pgrep in tests
    iproute2                   # ss: the tests' free-port check
    groff-base                 # tests render the man pages
    clang-format               # make test checks the C sources' format (make format-check)
    xxd                        # the dashboard's assets compiled into skiffd
    prometheus                 # tests: promtool check metrics
    chromium                   # tests: a headless browser drives the dashboard
    python3-dev                # the Python package's extension (skiff._skiff)
    python3-pytest             # the Python tests (tests/python/)
    python3-flask              # a Python test app serves Flask (wsgi_app)
    python3-celery python3-redis redis-server # make bench: the Python peers (Celery + Redis,
    python3-distributed        # and Dask distributed)
)
if [[ ${1:-} == --fuzz ]]; then
    packages+=(clang)
fi

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    if [[ $status != installed ]]; then
        missing+=("$p")
    fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        echo "install-deps: these packages are missing and this user cannot install them:" >&2
        echo "    apt-get install -y ${missing[*]}" >&2
        echo "install-deps: run that as root, then try again." >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
