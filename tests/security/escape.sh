#!/usr/bin/env bash
# escape.sh - issue 8, containers: every way out of a container that was once found to work is
# tried from inside a real one (tests/security/apps/attacker.c) and must fail, from a plain
# function's container and from a container forked from a snapshot template alike: root with
# every capability, no seccomp and no no_new_privs; umount /proc, mount tmpfs, remount rw,
# nsenter into the server's namespaces; /proc/sys/kernel/core_pattern writable; /etc/shadow and the
# server's data directory (skiff.db) readable. What functions need still works: threads, fork and
# exec of /bin/sh, /etc/passwd, /dev/urandom, a private writable /tmp, calls to the server from
# inside (over TCP and over a unix socket). Needs a server that sandboxes (root, cgroups, user
# namespaces): elsewhere it checks that the server says, loudly, that it does not.
source "$SKIFF_SRC/tests/integration/lib.sh"

start_server
deploy tests/security/apps/attacker.c
deploy examples/square.c
deploy tests/integration/apps/fanout.c

if ! grep -q "containers are sandboxed" "$SERVER_LOG"; then
    begin "a server that cannot sandbox says so loudly"
    expect_eq "$(grep -c 'containers run as plain processes, NOT sandboxed' "$SERVER_LOG")" 1 \
        "the warning at start"
    echo "skip: this machine cannot sandbox (see the server log); the escapes were not tried"
    finish
    exit 0
fi

data=$(cd "$T/data" && pwd -P)
host_file=$T/host-file
touch "$host_file"
# The helper processes of this test go with it; the test's own status is kept for lib.sh.
listener="" unix_pid=""
end_helpers() {
    local rc=$?
    kill $listener $unix_pid 2>/dev/null || true
    (exit $rc)
    on_exit
}
trap end_helpers EXIT

# An abstract unix socket listening on the host (python3), for containers to fail to reach.
abstract=skiff-sec-$$
have_listener=""
if command -v python3 >/dev/null; then
    python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\0" + sys.argv[1]); s.listen(8); time.sleep(600)' "$abstract" &
    listener=$!
    have_listener=1
    sleep 0.3
fi
args=("\"$data\"" "$SERVER_PID" "\"$host_file\"" "\"$abstract\"")

# check_escapes WHERE: the attacker's report in $OUT, from a container of WHERE.
check_escapes() {
    local where=$1 r=$OUT
    field() { json_field "$r" "$1"; }
    begin "$where: root in a user namespace, without capabilities, with no_new_privs and seccomp"
    local zero=0000000000000000
    expect_eq "$(field cap_eff)" $zero "CapEff"
    expect_eq "$(field cap_prm)" $zero "CapPrm"
    expect_eq "$(field cap_inh)" $zero "CapInh"
    expect_eq "$(field cap_bnd)" $zero "CapBnd"
    expect_eq "$(field cap_amb)" $zero "CapAmb"
    expect_eq "$(field no_new_privs)" 1 "NoNewPrivs"
    expect_eq "$(field seccomp)" 2 "Seccomp (2: a filter)"
    expect_eq "$(field uid_map)" "0 100000 1" "uid_map: root is uid 100000 on the host, alone"
    expect_eq "$(field gid_map)" "0 100000 1" "gid_map"
    expect_eq "$(field uid)" "0 0 0 0" "uid 0 inside"

    begin "$where: no mount changes (umount /proc, mount tmpfs, remount rw, pivot_root, chroot)"
    expect_eq "$(field umount_proc)" EPERM "umount /proc"
    expect_eq "$(field mount_tmpfs)" EPERM "mount -t tmpfs"
    expect_eq "$(field remount_rw)" EPERM "mount -o remount,bind,rw /usr"
    expect_eq "$(field pivot_root)" EPERM "pivot_root"
    expect_eq "$(field chroot)" EPERM "chroot"

    begin "$where: the server's namespaces are out of reach (nsenter)"
    expect_eq "$(field server_ns)" ENOENT "/proc/<skiffd pid>/ns/mnt"
    expect_eq "$(field server_pid_visible)" ESRCH "kill -0 <skiffd pid>"
    expect_eq "$(field setns)" EPERM "setns"
    expect_eq "$(field nsenter)" failed "nsenter -t 1 -m"

    begin "$where: the kernel's settings and secrets"
    expect_ne "$(field core_pattern)" ok "opening /proc/sys/kernel/core_pattern for writing"
    expect_ne "$(field sysrq_trigger)" ok "opening /proc/sysrq-trigger for writing"
    expect_ne "$(field kcore)" readable "/proc/kcore"
    expect_ne "$(field proc_keys)" readable "/proc/keys"

    begin "$where: the host's files: shadow, the data directory, skiff.db, the host's /tmp"
    expect_eq "$(field shadow)" ENOENT "/etc/shadow"
    expect_eq "$(field gshadow)" ENOENT "/etc/gshadow"
    case $data in
    "$(cd "$SKIFF_BUILD" && pwd -P)"/*)
        # Inside the runtime's tree, which is bound: an empty, unreadable directory hides it.
        expect_ne "$(field skiff_db)" ok "skiff.db"
        ;;
    *)
        expect_eq "$(field data_dir)" ENOENT "the data directory"
        expect_eq "$(field skiff_db)" ENOENT "skiff.db"
        ;;
    esac
    expect_ne "$(field host_tmp_file)" ok "a file of the host's /tmp" # ENOENT there, EACCES
    # when the test's directory lies in the bound runtime tree
    expect_eq "$(field write_usr)" EROFS "writing /usr"
    expect_eq "$(field write_root)" EROFS "writing /"
    expect_eq "$(field write_etc)" EROFS "writing /etc"

    begin "$where: system calls the seccomp filter refuses"
    local call
    for call in ptrace unshare unshare_ns bpf keyctl add_key perf_event_open userfaultfd \
        open_by_handle_at kexec_load init_module personality clone_newns io_uring; do
        expect_eq "$(field $call)" EPERM "$call"
    done

    if [[ -n $have_listener ]] && grep -q "Landlock scopes" "$SERVER_LOG"; then
        begin "$where: the host's abstract unix sockets are out of reach (Landlock)"
        expect_eq "$(field abstract_socket)" EPERM "connecting to @$abstract"
    fi

    begin "$where: what functions need still works"
    for call in write_tmp thread sh passwd urandom dev_null; do
        expect_eq "$(field $call)" ok "$call"
    done
}

begin "the escapes from a function's container"
ok call sec-attacker escape "${args[@]}"
echo "  function: $OUT"
check_escapes "function"
# The host sees the container's processes as uid 100000.
expect_eq "$(grep -c 'user namespace with root as uid 100000' "$SERVER_LOG")" 1 "the start line"

begin "the escapes from a container forked from a snapshot template"
ok call sec-attacker Snapped.escape_fork "${args[@]}" --param 'tag="a"'
forked=$OUT
check_escapes "forked"
OUT=$forked
expect_eq "$(json_field "$OUT" snap_pid)" 2 "the template: the worker of its sandbox"
expect_match "$(json_field "$OUT" pid)" '^([3-9]|[1-9][0-9]+)$' "the fork: its child there"
expect_contains "$(cat "$SERVER_LOG")" "sandboxed with the containers it forks" "the log"
# The server knows the fork by its host pid (the template names it by its pid in the sandbox):
# the list's pid is the process whose innermost pid the function saw.
ns_pid=$(json_field "$forked" pid)
ok container list
host_pid=$(grep -oE '"function":"Snapped","version":[0-9]+,"pid":[0-9]+' <<<"$OUT" |
    head -n 1 | grep -oE '[0-9]+$' || true)
[[ -n $host_pid && -r /proc/$host_pid/status ]] || fail "no live forked container in the list: $OUT"
expect_ne "$host_pid" "$ns_pid" "the listed pid: the host's, not the sandbox's"
expect_eq "$(awk '/^NSpid:/ { print $2 " " $NF }' "/proc/$host_pid/status")" "$host_pid $ns_pid" \
    "the listed host pid's innermost pid"

begin "a forked container past its pool's memory limit fails with OutOfMemoryError"
ok call sec-attacker Hog.eat 8 --param 'tag="a"'
expect_eq "$OUT" 8 "a small meal"
sk call sec-attacker Hog.eat 2048 --param 'tag="a"'
expect_eq "$RC" 1 "exit status"
expect_contains "$ERR" "OutOfMemoryError" "the error"
expect_contains "$ERR" "limit of 256 MiB" "the pool's limit (128 MiB x (max_containers 1 + 1))"
ok call sec-attacker Hog.eat 8 --param 'tag="a"'
expect_eq "$OUT" 8 "the pool works afterwards"

begin "the host sees the containers' processes as uid 100000, not root"
ok container list
pids=$(grep -oE '"pid":[0-9]+' <<<"$OUT" | cut -d: -f2)
[[ -n $pids ]] || fail "no container in the list: $OUT"
for pid in $pids; do
    for p in $pid $(pgrep -P "$pid" || true); do
        owner=$(awk '/^Uid:/ { print $2 " " $3 " " $4 " " $5 }' "/proc/$p/status" 2>/dev/null || true)
        [[ -z $owner || $owner == "100000 100000 100000 100000" ]] ||
            fail "process $p of a container runs as uid $owner on the host"
    done
done
expect_contains "$OUT" '"sandboxed":true' "the list says sandboxed"
[[ $OUT != *'"sandboxed":false'* ]] || fail "a container (forked?) is listed as not sandboxed: $OUT"

begin "calls from inside a function reach the server over TCP"
ok call fanout fan 5
expect_eq "$OUT" 30 "the sum of squares"

# Another server on a unix socket (the token of ~/.skiff.toml is adopted), with another
# --container-uid: the socket is bound into its containers' root, its group is theirs.
begin "calls from inside a function reach the server over its unix socket"
# (In the runtime's own tree, which containers see as it is, the test's private directory would
# keep them from the socket: it goes under /tmp then.)
case $T in
"$(cd "$SKIFF_BUILD" && pwd -P)"/*) sock_dir=$(mktemp -d /tmp/skiff-sec.XXXXXX) ;;
*) sock_dir=$T/unix && mkdir -p "$sock_dir" ;;
esac
sock=$sock_dir/skiffd.sock
touch "$T/skiffd-unix.log"
"$SKIFFD" --data "$T/data-unix" --listen "unix:$sock" --http "127.0.0.1:$(free_port)" \
    --container-uid 200000 </dev/null >>"$T/skiffd-unix.log" 2>&1 &
unix_pid=$!
wait_until 15 "the unix socket server" grep -q " listening on " "$T/skiffd-unix.log"
SKIFF_SERVER=unix:$sock sk deploy "$SKIFF_SRC/examples/square.c"
expect_eq "$RC" 0 "deploy square"
SKIFF_SERVER=unix:$sock sk deploy "$SKIFF_SRC/tests/integration/apps/fanout.c"
expect_eq "$RC" 0 "deploy fanout"
SKIFF_SERVER=unix:$sock sk call fanout fan 4
expect_eq "$RC" 0 "exit status"
expect_eq "$OUT" 14 "the sum of squares"
grep -q "containers are sandboxed" "$T/skiffd-unix.log" || fail "the unix socket server does not sandbox"

begin "--container-uid: the containers' root is that uid on the host"
SKIFF_SERVER=unix:$sock sk deploy "$SKIFF_SRC/tests/security/apps/attacker.c"
expect_eq "$RC" 0 "deploy the attacker"
SKIFF_SERVER=unix:$sock sk call sec-attacker escape "${args[@]}"
expect_eq "$RC" 0 "exit status"
expect_eq "$(json_field "$OUT" uid_map)" "0 200000 1" "uid_map"
expect_eq "$(json_field "$OUT" cap_eff)" 0000000000000000 "CapEff"
kill -TERM $unix_pid
wait $unix_pid || fail "the unix socket server did not stop cleanly"
unix_pid=""
[[ $sock_dir == "$T"/* ]] || rm -rf "$sock_dir"

finish
