#!/usr/bin/env bash
# install.sh - issue 2, point 10: `make install PREFIX=DIR` installs bin/skiff, bin/skiffd,
# bin/skiff-worker, the headers, the library and a pkg-config file; the installed skiffd runs,
# the installed `skiff deploy` compiles an app against the installed headers and library (found
# relative to itself), and a C program builds against the install with pkg-config.
# slow
source "$SKIFF_SRC/tests/integration/lib.sh"

prefix=$T/inst

begin "make install PREFIX=DIR"
# A make of its own, not the one running this suite (if any).
unset MAKEFLAGS MAKELEVEL MFLAGS
run_cmd make -C "$SKIFF_SRC" --no-print-directory BUILD="$SKIFF_BUILD" PREFIX="$prefix" install
[[ $RC -eq 0 ]] || { show_last; fail "make install failed"; }
for f in bin/skiff bin/skiffd bin/skiff-worker lib/libskiff.so lib/libskiff.a \
    include/skiff/skiff.h include/skiff/app.h lib/pkgconfig/skiff.pc share/man/man1/skiff.1 \
    share/man/man8/skiffd.8 share/bash-completion/completions/skiff; do
    [[ -e $prefix/$f ]] || fail "make install did not install $f"
done
[[ -x $prefix/bin/skiff && -x $prefix/bin/skiffd ]] || fail "installed programs not executable"

begin "pkg-config finds the install"
flags=$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --cflags --libs skiff)
expect_contains "$flags" "-I$prefix/include" "pkg-config --cflags"
expect_contains "$flags" "-L$prefix/lib" "pkg-config --libs"
expect_contains "$flags" "-lskiff" "pkg-config --libs"

begin "the installed server, deploy and call"
SKIFFD=$prefix/bin/skiffd
SKIFF=$prefix/bin/skiff
start_server
# Copy the app out of the source tree so nothing can come from there.
cp "$SKIFF_SRC/examples/square.c" "$T/square.c"
deploy "$T/square.c"
ok call my-shared-app square 42
expect_eq "$OUT" 1764 "square(42) through the installed tree"

begin "a client built against the install"
read -r -a pc <<<"$flags"
# Exactly as the docs say, no rpath or LD_LIBRARY_PATH of our own: skiff.pc carries the rpath.
run_cmd cc -std=c11 -o "$T/call_square" "$SKIFF_SRC/examples/call_square.c" "${pc[@]}"
[[ $RC -eq 0 ]] || { show_last; fail "building call_square against the install failed"; }
run_cmd env -u LD_LIBRARY_PATH "$T/call_square"
expect_eq "$RC" 0 "call_square exit status"
expect_contains "$OUT" 1764 "call_square output"

finish
