#!/usr/bin/env bash
# fresh_build.sh - the README's first commands on a fresh machine: `make demo`, `make test` and
# `make bench` install the Debian packages and then build, in that order, the first time.
#
# A fresh machine is simulated with stand-ins first on PATH: dpkg-query reports every package
# missing, pkg-config knows no package, until the stand-in apt-get "installs" them (it records
# the call and lets both go through to the real tools from then on). The build then goes through
# `make setup`, the step demo, test and bench take before anything else, into a build tree of its
# own. Once, a Makefile that asked pkg-config for its flags when it was read linked without
# them: this test fails on that again (the build stops with pkg-config's error, or the link fails).
# slow
source "$SKIFF_SRC/tests/integration/lib.sh"

fake=$T/fake-bin
state=$T/installed
mkdir -p "$fake"
real_pkg_config=$(command -v pkg-config)

cat >"$fake/dpkg-query" <<EOF
#!/bin/sh
# Every package missing until apt-get ran.
[ -e "$state" ] && exec /usr/bin/dpkg-query "\$@"
exit 1
EOF
cat >"$fake/apt-get" <<EOF
#!/bin/sh
echo "apt-get \$*" >>"$T/apt.log"
case "\$1" in install) touch "$state" ;; esac
exit 0
EOF
cat >"$fake/pkg-config" <<EOF
#!/bin/sh
echo "pkg-config \$* installed=\$([ -e "$state" ] && echo yes || echo no)" >>"$T/pkg.log"
[ -e "$state" ] && exec "$real_pkg_config" "\$@"
echo "Package \$2 was not found in the pkg-config search path." >&2
exit 1
EOF
chmod +x "$fake"/*

unset MAKEFLAGS MAKELEVEL MFLAGS
begin "make setup on a fresh machine installs, then builds"
PATH=$fake:$PATH run_cmd make -C "$SKIFF_SRC" --no-print-directory -j2 BUILD="$T/build" setup
[[ $RC -eq 0 ]] || { printf '%s\n' "$OUT" | tail -n 20 >&2; show_last; fail "make setup failed on a fresh machine"; }
expect_contains "$(cat "$T/apt.log")" "install" "apt-get install ran"
# pkg-config was never asked before the install ran (a Makefile reading flags early asks it then).
if grep -q 'installed=no' "$T/pkg.log" 2>/dev/null; then
    fail "pkg-config was asked before the packages were installed: $(grep 'installed=no' "$T/pkg.log" | head -n 1)"
fi
for f in bin/skiffd bin/skiff bin/skiff-worker lib/libskiff.so examples/call_square; do
    [[ -x $T/build/$f ]] || fail "make setup did not build $f"
done

begin "the freshly built server runs"
SKIFFD=$T/build/bin/skiffd
SKIFF=$T/build/bin/skiff
start_server
deploy "$SKIFF_SRC/examples/square.c"
ok call my-shared-app square 7
expect_eq "$OUT" 49 "square(7)"

begin "a build without the packages says so"
rm -f "$state"
PATH=$fake:$PATH run_cmd make -C "$SKIFF_SRC" --no-print-directory BUILD="$T/build2" all
expect_ne "$RC" 0 "exit status of a build without packages"
expect_contains "$OUT$ERR" "make deps" "the error names the fix"

finish
