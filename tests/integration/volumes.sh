#!/usr/bin/env bash
# volumes.sh - `skiff volume` (issue 10): create, list, delete, put, get, ls; a function mounts
# a volume read-write (.volumes = "/data=NAME") and its files outlive the container and a
# restart of the server; a snapshot class's template mounts it too; deploy refuses an unknown
# volume and a mount path that is not absolute or lies in the container's system directories;
# delete is refused while a running app mounts the volume; the rest of the data directory stays
# out of sight; bad input.
source "$SKIFF_SRC/tests/integration/lib.sh"

cat >"$T/volapp.c" <<'C'
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <skiff/app.h>

SKIFF_APP("volapp");

/* A symbolic link in the volume: the server must never follow it. */
static int link_to(skiff_ctx *ctx, skiff_value **out)
{
    if (symlink(skiff_arg_string(ctx, "target"), skiff_arg_string(ctx, "path")) < 0)
        return skiff_raise(ctx, "OSError", "symlink failed");
    *out = skiff_value_nil();
    return 0;
}
SKIFF_FUNCTION(link_to, .signature = "target:str, path:str", .volumes = "/data=store");

static int put(skiff_ctx *ctx, skiff_value **out)
{
    const char *path = skiff_arg_string(ctx, "path");
    FILE *f = fopen(path, "w");
    if (!f)
        return skiff_raise(ctx, "OSError", "cannot open %s for writing", path);
    fputs(skiff_arg_string(ctx, "text"), f);
    fclose(f);
    *out = skiff_value_nil();
    return 0;
}
SKIFF_FUNCTION(put, .signature = "path:str, text:str", .volumes = "/data=store");

/* The file's text, or nil when there is none. */
static int get(skiff_ctx *ctx, skiff_value **out)
{
    FILE *f = fopen(skiff_arg_string(ctx, "path"), "r");
    char buf[4096];
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = '\0';
    *out = f ? skiff_value_string(buf) : skiff_value_nil();
    if (f)
        fclose(f);
    return 0;
}
SKIFF_FUNCTION(get, .signature = "path:str", .volumes = "/mnt/shared/vol=store,/scratch=other");

static int exists(skiff_ctx *ctx, skiff_value **out)
{
    struct stat st;
    *out = skiff_value_bool(stat(skiff_arg_string(ctx, "path"), &st) == 0);
    return 0;
}
SKIFF_FUNCTION(exists, .signature = "path:str", .volumes = "/data=store");

/* A snapshot class: its template's sandbox mounts the volume, and so its forks see it. */
struct snap {
    int unused;
};
static int warm(skiff_ctx *ctx)
{
    (void)ctx;
    return 0;
}
SKIFF_CLASS(Snap, struct snap, .enter_snap = {warm}, .volumes = "/data=store");

static int snap_get(skiff_ctx *ctx, skiff_value **out)
{
    return get(ctx, out);
}
SKIFF_METHOD(Snap, snap_get, .signature = "path:str");
C

# deploy_bad FILE-STEM VOLUMES: an app whose one function declares VOLUMES.
bad_app() {
    cat >"$T/$1.c" <<C
#include <skiff/app.h>
SKIFF_APP("$1");
static int f(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    *out = skiff_value_nil();
    return 0;
}
SKIFF_FUNCTION(f, .signature = "", .volumes = "$2");
C
}

start_server

begin "volume create and list"
ok volume create store
expect_contains "$OUT" '"name":"store"' "create's reply"
ok volume create other
ok volume list --json
expect_contains "$OUT" '"name":"store","size":0,"files":0' "an empty volume"
expect_exit 1 volume create store
expect_contains "$ERR" "already exists" "a second create"

begin "bad input"
expect_exit 1 volume create 'no/slash'
expect_contains "$ERR" "volume name" "a bad name"
expect_exit 2 volume put store
expect_exit 2 volume frobnicate
expect_exit 1 volume ls nosuch
expect_contains "$ERR" "no volume nosuch" "an unknown volume"
expect_exit 1 volume delete nosuch
printf 'x' >"$T/x"
expect_exit 1 volume put store "$T/x" ../escape
expect_contains "$ERR" "'..'" "a path out of the volume"
expect_exit 1 volume put store "$T/no-such-local-file" a
expect_exit 1 volume get store nothing-here "$T/out-file"
expect_contains "$ERR" "no file nothing-here" "get of a missing file"

begin "put, ls and get round trip (a file of several chunks, stdin, stdout)"
head -c 9000000 /dev/urandom >"$T/big"
ok volume put store "$T/big" /deep/dir/big.bin
expect_contains "$OUT" '"size":9000000' "put's size"
ok volume get store deep/dir/big.bin "$T/big.back"
cmp -s "$T/big" "$T/big.back" || fail "the file came back different"
sk_in "typed on stdin" volume put store - notes.txt
expect_eq "$RC" 0 "put from stdin"
ok volume get store notes.txt -
expect_eq "$OUT" "typed on stdin" "get to stdout"
ok volume ls store --json
expect_contains "$OUT" '"name":"deep","type":"dir"' "the directory"
expect_contains "$OUT" '"name":"notes.txt","type":"file","size":15' "the file"
ok volume ls store deep/dir
expect_contains "$OUT" '"name":"big.bin","type":"file","size":9000000' "ls of a subdirectory"
ok volume list --json
expect_contains "$OUT" '"size":9000015,"files":2' "list's size and files"

begin "a function writes, another container reads"
deploy "$T/volapp.c"
ok call volapp put '"/data/greeting.txt"' '"hello from a container"'
ok call volapp get '"/mnt/shared/vol/greeting.txt"'
expect_eq "$OUT" '"hello from a container"' "read back at another path"
ok call volapp get '"/mnt/shared/vol/notes.txt"'
expect_eq "$OUT" '"typed on stdin\n"' "a file put from the CLI"
ok volume get store greeting.txt -
expect_eq "$OUT" "hello from a container" "the container's file, from the CLI"
ok call volapp Snap.snap_get '"/data/greeting.txt"'
expect_eq "$OUT" '"hello from a container"' "a snapshot class's fork"

begin "the data directory stays out of sight"
ok call volapp exists "\"$T/data/volumes/store/greeting.txt\""
expect_eq "$OUT" false "the volume's host path"
ok call volapp exists "\"$T/data\""
expect_eq "$OUT" false "the data directory"
ok call volapp exists '"/data/greeting.txt"'
expect_eq "$OUT" true "while the volume is there"

begin "the server follows no link a container made"
printf 'host secret\n' >"$T/host-file"
mkdir -p "$T/host-dir"
ok call volapp link_to "\"$T/host-file\"" '"/data/evil-file"'
ok call volapp link_to "\"$T/host-dir\"" '"/data/evil-dir"'
expect_exit 1 volume get store evil-file -
expect_exit 1 volume put store "$T/x" evil-dir/planted
expect_exit 1 volume ls store evil-dir
[[ ! -e $T/host-dir/planted ]] || fail "a put went through the link"
ok volume ls store --json
expect_contains "$OUT" '"name":"evil-file","type":"link"' "ls shows the link as a link"
ok volume put store "$T/x" evil-file
expect_eq "$(cat "$T/host-file")" "host secret" "a put over the link replaces the link only"
ok volume ls store evil-file --json
expect_contains "$OUT" '"type":"file","size":1' "the link became the file put"

begin "files outlive a restart of the server"
restart_server
ok call volapp get '"/mnt/shared/vol/greeting.txt"'
expect_eq "$OUT" '"hello from a container"' "after the restart"
ok volume ls store --json
expect_contains "$OUT" greeting.txt "ls after the restart"

begin "delete is refused while a running app mounts the volume"
expect_exit 1 volume delete store
expect_contains "$ERR" "mounted by volapp" "the user named"
ok app stop volapp
ok volume delete other
ok volume list --json
if [[ $OUT == *'"other"'* ]]; then fail "other still listed: $OUT"; fi

begin "deploy refuses an unknown volume and bad mount paths"
bad_app unknown-vol "/data=nosuch"
expect_exit 1 deploy "$T/unknown-vol.c"
expect_contains "$ERR" "volume nosuch does not exist" "an unknown volume"
bad_app relative-vol "data=store"
expect_exit 1 deploy "$T/relative-vol.c"
expect_contains "$ERR" "not an absolute path" "a relative path"
bad_app usr-vol "/usr/local/data=store"
expect_exit 1 deploy "$T/usr-vol.c"
expect_contains "$ERR" "system directory" "under /usr"
bad_app proc-vol "/proc=store"
expect_exit 1 deploy "$T/proc-vol.c"
expect_contains "$ERR" "system directory" "/proc"
bad_app dots-vol "/data/../usr=store"
expect_exit 1 deploy "$T/dots-vol.c"
expect_contains "$ERR" "'..'" "a '..' component"
bad_app noeq-vol "/data"
expect_exit 1 deploy "$T/noeq-vol.c"
expect_contains "$ERR" "PATH=NAME" "no name"
bad_app overlap-vol "/data=store,/data/sub=store"
expect_exit 1 deploy "$T/overlap-vol.c"
expect_contains "$ERR" "overlap" "nested mounts"

begin "a volume deleted once its app stopped: the next deploy names it"
ok volume create gone
bad_app late-vol "/data=gone"
deploy "$T/late-vol.c"
expect_exit 1 volume delete gone
ok app stop late-vol
ok volume delete gone
expect_exit 1 deploy "$T/late-vol.c"
expect_contains "$ERR" "volume gone does not exist" "the volume named"

begin "plain containers cannot mount: a server without the sandbox refuses volumes"
restart_server --no-sandbox
expect_exit 1 deploy "$T/volapp.c"
expect_contains "$ERR" "need sandboxed containers" "deploy without the sandbox"
ok volume ls store --json
expect_contains "$OUT" greeting.txt "the volume is still there"

finish
