#!/usr/bin/env bash
# deploy_build.sh - building apps (issue 10): libraries named by SKIFF_APP's .pkgs, apps of
# several files (`skiff deploy DIR`), C mistakes that fail the deploy instead of the container,
# and every error naming the user's file and line, never a temporary path or internal symbol.
source "$SKIFF_SRC/tests/integration/lib.sh"

# no_internals: the last command's stderr names no temporary file and no internal symbol.
no_internals() {
    [[ $ERR != *skiff-deploy-* && $ERR != *app.so* && $ERR != *skiff_app_definition* ]] ||
        fail "the error shows internals: $ERR"
}

mkdir -p "$T/z"
cat >"$T/z/zapp.c" <<'C'
#include <skiff/app.h>
#include <zlib.h>

SKIFF_APP("zapp", .pkgs = "zlib");

static int checksum(skiff_ctx *ctx, skiff_value **out)
{
    size_t n;
    const char *s = skiff_value_get_string(skiff_arg(ctx, "s"), &n);
    *out = skiff_value_int((int64_t)crc32(0, (const Bytef *)s, (uInt)n));
    return 0;
}
SKIFF_FUNCTION(checksum, .signature = "s:str");
C

start_server

begin "an app that links zlib through .pkgs deploys and runs"
ok deploy "$T/z/zapp.c"
ok call zapp checksum '"hello"'
expect_eq "$OUT" 907060870 "crc32 of hello"

begin "without .pkgs the link fails, naming the file, the line and the fix"
sed 's/, .pkgs = "zlib"//' "$T/z/zapp.c" >"$T/z/nolib.c"
expect_exit 1 deploy "$T/z/nolib.c"
expect_contains "$ERR" "nolib.c:10: undefined reference to \`crc32'" "the linker's message"
expect_contains "$ERR" '.pkgs = ' "the hint"
no_internals

begin "a package pkg-config does not know is named"
sed 's/"zlib"/"zlib-nonexistent"/' "$T/z/zapp.c" >"$T/z/badpkg.c"
expect_exit 1 deploy "$T/z/badpkg.c"
expect_contains "$ERR" "badpkg.c:4: error: the package 'zlib-nonexistent' of .pkgs is not installed" "message"
no_internals

begin ".pkgs that is not a literal on the SKIFF_APP line is refused"
sed 's/.pkgs = "zlib"/.pkgs = ZPKGS/; s/^#include <zlib.h>/#include <zlib.h>\n#define ZPKGS "zlib"/' "$T/z/zapp.c" >"$T/z/macro.c"
expect_exit 1 deploy "$T/z/macro.c"
expect_contains "$ERR" "must be a string literal" "message"

begin "an implicit declaration (a misspelt SDK call) fails the deploy at its line"
cat >"$T/typo.c" <<'C'
#include <skiff/app.h>
SKIFF_APP("typo-app");
static int f(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    *out = skiff_value_in(3);
    return 0;
}
SKIFF_FUNCTION(f);
C
expect_exit 1 deploy "$T/typo.c"
expect_contains "$ERR" "typo.c:6:" "file and line"
expect_contains "$ERR" "implicit declaration of function" "the mistake"
expect_contains "$ERR" "skiff_value_in" "the misspelt name"
no_internals
expect_exit 1 call typo-app f
expect_contains "$ERR" "NotFoundError" "nothing was deployed"

begin "a file without SKIFF_APP says so, by its name"
grep -v SKIFF_APP "$T/typo.c" | sed 's/skiff_value_in(/skiff_value_int(/' >"$T/noapp.c"
expect_exit 1 deploy "$T/noapp.c"
expect_contains "$ERR" "noapp.c declares no app: add SKIFF_APP" "message"
no_internals

begin "skiff deploy DIR builds every .c file of the directory, with its headers"
mkdir -p "$T/multi"
cat >"$T/multi/shared.h" <<'C'
#include <stdint.h>
int64_t triple(int64_t x);
C
cat >"$T/multi/main.c" <<'C'
#include <skiff/app.h>
#include "shared.h"
SKIFF_APP("multi-app");
static int f(skiff_ctx *ctx, skiff_value **out)
{
    *out = skiff_value_int(triple(skiff_arg_int(ctx, "x")));
    return 0;
}
SKIFF_FUNCTION(f, .signature = "x:int");
C
cat >"$T/multi/helpers.c" <<'C'
#include <skiff/app.h>
#include "shared.h"
int64_t triple(int64_t x) { return 3 * x; }
static int g(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    *out = skiff_value_string("from helpers.c");
    return 0;
}
SKIFF_FUNCTION(g);
C
ok deploy "$T/multi"
ok call multi-app f 14
expect_eq "$OUT" 42 "f from main.c using helpers.c"
ok call multi-app g
expect_eq "$OUT" '"from helpers.c"' "g declared in helpers.c"

begin "two SKIFF_APP in one directory: both places named"
printf '#include <skiff/app.h>\nSKIFF_APP("other");\n' >"$T/multi/second.c"
expect_exit 1 deploy "$T/multi"
expect_contains "$ERR" "second.c:2: error: a second SKIFF_APP (the first is at" "message"
expect_contains "$ERR" "main.c:3" "the first one's place"
rm "$T/multi/second.c"

begin "an empty directory, and a file that is not C"
mkdir -p "$T/empty"
expect_exit 1 deploy "$T/empty"
expect_contains "$ERR" "holds no .c file" "empty directory"
echo x >"$T/app.txt"
expect_exit 1 deploy "$T/app.txt"
expect_contains "$ERR" "is not a .c file or a directory" "not C"
finish
