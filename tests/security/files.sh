#!/usr/bin/env bash
# files.sh - issue 8: the server's files are private. The data directory is 0700 and everything
# in it (skiff.db, its -wal and -shm, the lock, app objects and their directories) 0600 or 0700,
# also for files created while it runs; ~/.skiff.toml is 0600. A data directory left by an
# older skiffd (0755 and 0644) is made private on the next start.
source "$SKIFF_SRC/tests/integration/lib.sh"

DATA=$T/data

# check_private WHERE: the data directory and everything in it is private.
check_private() {
    local where=$1
    expect_eq "$(stat -c %a "$DATA")" 700 "$where: mode of the data directory"
    local bad
    bad=$(find "$DATA" -mindepth 1 \( -type d ! -perm 700 \) -o \( -type f ! -perm 600 \) \
        -printf '%m %p\n')
    [[ -z $bad ]] || fail "$where: files or directories that are not private:"$'\n'"$bad"
    local f
    for f in skiff.db skiff.db-wal skiff.db-shm skiffd.lock; do
        [[ -f $DATA/$f ]] || fail "$where: no $f in the data directory (what is checked?)"
    done
    find "$DATA/apps" -type f | grep -q . || fail "$where: no app object in the data directory"
}

start_server
deploy examples/square.c
ok spawn my-shared-app square 3
ok get "$OUT" --timeout 30

begin "a new data directory and its files are private"
check_private "first start"
expect_eq "$(stat -c %a "$HOME/.skiff.toml")" 600 "mode of ~/.skiff.toml"

begin "files of an older skiffd are made private on start"
stop_server
find "$DATA" -type d -exec chmod 755 {} +
find "$DATA" -type f -exec chmod 644 {} +
expect_eq "$(stat -c %a "$DATA/skiff.db")" 644 "mode of skiff.db before the restart"
start_server
check_private "after the upgrade"
grep -q "made [0-9]* files and directories of .* private" "$SERVER_LOG" ||
    fail "the start did not say that it made files private"
ok call my-shared-app square 4
expect_eq "$OUT" 16 "a call after the upgrade"

begin "files made while the server runs are private too"
deploy tests/integration/apps/probe.c
ok spawn my-shared-app square 5
ok get "$OUT" --timeout 30
check_private "after a new deploy"

finish
