/*
 * sandbox.c - container isolation (see sandbox.h).
 *
 * Start-up (sandbox_init) finds the cgroup hierarchies: cgroup v2 when its root offers the
 * memory, pids and cpu controllers, else the v1 hierarchies of those three. In each, the server
 * makes a tree `skiffd-<pid>` under its own cgroup (so the containers stay inside whatever
 * limits the server itself runs under; in v2 only if that cgroup can hand the controllers down,
 * else under the root) and removes `skiffd-<pid>` trees whose server is gone. It then plans the
 * containers' root (the host paths to bind, plan_root), builds the worker's seccomp filter with
 * libseccomp into a BPF program in memory (filter_build: the init cannot call libseccomp), and
 * runs a trial container through every setup step, the worker's lockdown included; any failure
 * there is the one line that says containers run as plain processes, and why.
 *
 * A container is made ahead of need, as the *spare*: the server makes a cgroup `spare-N` in
 * each hierarchy and clone3()s the init with new user, pid, mount, ipc and uts namespaces, a
 * pidfd, and (v2) straight into its cgroup, then writes the user namespace's uid_map and gid_map
 * (container root = S.uid on the host, nothing else mapped) and tells the init to go on. The
 * init runs in a copy of the server's memory and does only async-signal-safe system calls: it
 * drops every descriptor of the server's but an order socket and a status pipe, joins its
 * cgroups (v1: a write to cgroup.procs, which costs an RCU grace period, ~10 ms, one reason for
 * the spare), makes its mounts private and clones the host paths of the new root (open_tree,
 * read-only, nosuid, nodev; still with the server's uid, as their directories may be the
 * server's alone); once mapped, it drops the host's supplementary groups and becomes root of its
 * namespace, mounts the new root (a tmpfs over /tmp of its mount namespace) with a private /tmp,
 * the clones, a minimal /dev and a new /proc with its dangerous corners masked or read-only (the
 * kernel lets a user namespace mount proc only while a full one is visible, so before the host's
 * root goes), pivot_root()s into it, detaches the host's root, makes its root read-only and waits
 * for its order. When a container starts, the server renames the spare's cgroups to the
 * container id, writes the limits (memory without swap, pids, cpu quota), sends the order
 * (hostname, the worker's argv and envp; its socket, the app's code as a sealed memfd and its
 * stdout and stderr as SCM_RIGHTS) and, a moment later, makes the next spare. The init sets the
 * hostname and vforks the worker as pid 2 with the socket on fd 3 and the code on fd 4; the
 * worker drops every capability, locks the securebits, sets no_new_privs, installs the seccomp
 * filter and execs. The init then reaps whatever the namespace orphans; when the worker ends it
 * writes the worker's wait status to the status pipe and exits, which kills anything left in the
 * namespace. The worker is not pid 1 because pid 1 ignores signals it does not handle (a crash
 * handler re-raising SIGABRT would survive), and the init reports the status through a pipe
 * because it cannot die of a signal of its own.
 *
 * The server polls the pidfd (libuv reaps only the children it spawned itself, so the init is
 * ours to wait for), reads the status record, and asks the container's memory cgroup whether
 * the kernel's OOM killer ran there: that is how an input that exceeded its memory becomes an
 * OutOfMemoryError. Setup failures come back through the same pipe as a step and an errno.
 */
#include "sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/securebits.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* clone3's argument block (linux/sched.h's struct clone_args, which clashes with sched.h). */
struct clone3_args {
    uint64_t flags;
    uint64_t pidfd;
    uint64_t child_tid;
    uint64_t parent_tid;
    uint64_t exit_signal;
    uint64_t stack;
    uint64_t stack_size;
    uint64_t tls;
    uint64_t set_tid;
    uint64_t set_tid_size;
    uint64_t cgroup;
};
#define SANDBOX_CLONE_PIDFD 0x00001000ULL
#define SANDBOX_CLONE_INTO_CGROUP 0x200000000ULL
#define SANDBOX_CLONE_CLEAR_SIGHAND 0x100000000ULL

/* At most three hierarchies: v2's one, or v1's memory, pids and cpu. */
#define MAX_HIER 3
/* Host paths bound (read-only) into a container's new root, and paths masked there. */
#define MAX_BINDS 48
#define MAX_MASKS 4
/* cpu.max / cpu.cfs_period_us: the kernel's default period, 100 ms. */
#define CPU_PERIOD_US 100000
/* The smallest quota the kernel accepts is 1 ms. */
#define CPU_MIN_QUOTA_US 1000

enum hier_kind { H_V2, H_MEMORY, H_PIDS, H_CPU };

/* Landlock's scopes (kernel 6.12, Landlock ABI 6), defined here as the installed headers may
 * predate them: a worker may neither connect to an abstract unix socket made outside its
 * sandbox (those are scoped by network namespace, and containers share the host's) nor signal a
 * process outside it. */
#define LANDLOCK_ABI_SCOPES 6
#define SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define SCOPE_SIGNAL (1ULL << 1)
struct landlock_scope_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};
#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#endif

/* A host path in a container's new root: src bound read-only at dst (the same path but for the
 * runtime's socket), or (is_link) a symbolic link dst -> src as the host has it. */
struct bind {
    char src[PATH_MAX];
    char dst[PATH_MAX];
    bool dir;       /* a directory (bound with what is mounted under it) */
    bool is_link;   /* a symbolic link to recreate */
    bool is_socket; /* the server's unix socket, bound once it exists */
};

struct hier {
    enum hier_kind kind;
    char tree[PATH_MAX]; /* the server's tree: <mount><own cgroup>/skiffd-<pid> */
};

static struct {
    bool enabled;
    pid_t owner; /* the server process that made the tree (children never remove it) */
    struct sandbox_opts opts;
    int nhier;
    struct hier hier[MAX_HIER];
    struct bind binds[MAX_BINDS];
    int nbinds;
    char masks[MAX_MASKS][PATH_MAX]; /* host paths hidden under an empty tmpfs in the clones */
    int nmasks;
    char sock[PATH_MAX];      /* the server's unix socket, or "" */
    unsigned uid;             /* the host uid and gid of the containers' root */
    struct sock_fprog filter; /* the seccomp filter (built at start-up) */
    uint64_t landlock_scopes; /* the Landlock scopes the kernel offers (0: none) */
} S;

/* --- small file helpers ----------------------------------------------------------------------- */

/* Writes the string s to the file at path. 0 or -1 (errno). */
static int write_file(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, s, strlen(s));
    int e = errno;
    close(fd);
    errno = e;
    return n == (ssize_t)strlen(s) ? 0 : -1;
}

/* Reads up to size-1 bytes of the file at path into buf, NUL-terminated. Bytes read or -1. */
static ssize_t read_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = 0;
    ssize_t r;
    while (n + 1 < size && (r = read(fd, buf + n, size - 1 - n)) > 0)
        n += (size_t)r;
    close(fd);
    buf[n] = '\0';
    return (ssize_t)n;
}

/* Formats path from fmt into out (PATH_MAX bytes). False if it does not fit. */
__attribute__((format(printf, 2, 3))) static bool path_fmt(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, PATH_MAX, fmt, ap);
    va_end(ap);
    return n >= 0 && n < PATH_MAX;
}

/* --- the init (pid 1 of the container) ------------------------------------------------------- */

/* Records on the status pipe, init -> server. */
enum rec_kind { REC_SETUP_FAILED = 1, REC_WORKER_STATUS = 2 };
struct status_rec {
    int kind;
    int value; /* the failed step (enum step) or the worker's wait status */
    int err;   /* errno of the failed step */
};

enum step {
    ST_SIGNALS,
    ST_CGROUP,
    ST_MAPPED,
    ST_IDS,
    ST_PRIVATE,
    ST_CLONE,
    ST_ROOT,
    ST_BIND,
    ST_VOLUME,
    ST_PROC,
    ST_MASK,
    ST_DEV,
    ST_TMP,
    ST_PIVOT,
    ST_READONLY,
    ST_HOSTNAME,
    ST_FDS,
    ST_ORDER,
    ST_VFORK,
    ST_CAPS,
    ST_LANDLOCK,
    ST_SECCOMP,
    ST_EXEC,
    ST_COUNT
};

static const char *const step_names[ST_COUNT] = {
    [ST_SIGNALS] = "set up its signals",
    [ST_CGROUP] = "join its cgroup",
    [ST_MAPPED] = "wait for its user namespace's uid and gid maps",
    [ST_IDS] = "become root of its user namespace (setgroups, setresgid, setresuid)",
    [ST_PRIVATE] = "make its mounts private",
    [ST_CLONE] = "clone a host path for its root (open_tree, mount_setattr)",
    [ST_ROOT] = "mount the tmpfs of its new root",
    [ST_VOLUME] = "mount a volume (open_tree, move_mount)",
    [ST_BIND] = "bind a host path into its new root",
    [ST_PROC] = "mount /proc",
    [ST_MASK] = "mask or write-protect a path of /proc",
    [ST_DEV] = "make its /dev",
    [ST_TMP] = "mount a private /tmp",
    [ST_PIVOT] = "pivot_root into its new root",
    [ST_READONLY] = "make its root read-only",
    [ST_HOSTNAME] = "set its hostname",
    [ST_FDS] = "arrange its file descriptors",
    [ST_ORDER] = "read its orders from the server",
    [ST_VFORK] = "start the worker",
    [ST_CAPS] = "drop the worker's capabilities",
    [ST_LANDLOCK] = "scope the worker with Landlock",
    [ST_SECCOMP] = "install the worker's seccomp filter",
    [ST_EXEC] = "exec the worker",
};

/* Everything the init needs from the server before clone3 (the init must not allocate). The
 * container's own settings come later, in an order (below). */
struct plan {
    bool trial;             /* the start-up probe: set everything up, then exit 0 */
    bool with_socket;       /* the server's unix socket exists: bind it */
    int status_fd;          /* write end of the status pipe */
    int ctl_fd;             /* the init's end of the order socket */
    int procs_fd[MAX_HIER]; /* cgroup.procs to join (v1; v2 clones into the cgroup) */
    int nprocs;
    const struct sandbox_volume *volumes; /* bound read-write (the server's memory, copied) */
    int nvolumes;
};

/* An order, server -> parked init, on a SOCK_SEQPACKET socket with the worker's socket as
 * SCM_RIGHTS: this header, then NUL-terminated strings: the hostname, argc argv strings (the
 * first is the worker's path), envc environment strings. */
struct order_hdr {
    uint32_t argc;
    uint32_t envc;
};
/* The largest order: the worker's arguments and the server's environment. */
#define ORDER_MAX (128 * 1024)
#define ORDER_MAX_STRINGS 4096

/* The init's copy of its order: its own memory (the server's pages are copy-on-write). */
static char order_buf[ORDER_MAX];
static char *order_argv[ORDER_MAX_STRINGS + 2];

static void init_write(int fd, const struct status_rec *r)
{
    ssize_t n;
    do
        n = write(fd, r, sizeof *r);
    while (n < 0 && errno == EINTR);
}

static __attribute__((noreturn)) void init_fail(int fd, enum step st)
{
    struct status_rec r = {REC_SETUP_FAILED, (int)st, errno};
    init_write(fd, &r);
    _exit(127);
}

/* Copies the strings a, b into out (PATH_MAX). False if they do not fit. */
static bool init_join(char *out, const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na + nb >= PATH_MAX)
        return false;
    memcpy(out, a, na);
    memcpy(out + na, b, nb + 1);
    return true;
}

/* mkdir -p of the parents of path (absolute), and of path itself when self. 0 or -1. */
static int init_mkdirs(const char *path, bool self)
{
    char p[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof p)
        return -1;
    memcpy(p, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && (p[i] != '\0' || !self))
            continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
            return -1;
        p[i] = c;
    }
    return 0;
}

/* Makes the mount point path in the new root: a directory, or an empty file. 0 or -1. */
static int init_mount_point(const char *path, bool dir)
{
    if (init_mkdirs(path, dir) < 0)
        return -1;
    if (dir)
        return 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0444);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

/* A detached copy (open_tree) of the host path src, recursive for a directory, with attrs set
 * on every mount of it. Its descriptor, or -1. */
static int init_clone(const char *src, bool dir, uint64_t attrs)
{
    unsigned rec = dir ? AT_RECURSIVE : 0;
    int fd = open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec);
    if (fd < 0)
        return -1;
    struct mount_attr a = {.attr_set = attrs};
    if (mount_setattr(fd, "", AT_EMPTY_PATH | rec, &a, sizeof a) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Attaches the detached tree fd at path (made as a directory or an empty file) and closes fd.
 * 0 or -1. */
static int init_attach(int fd, const char *path, bool dir)
{
    int rc = init_mount_point(path, dir) < 0
                 ? -1
                 : move_mount(fd, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* Sets attrs on the mount at path (and those under it when recursive). 0 or -1. */
static int init_setattr(const char *path, bool recursive, uint64_t attrs)
{
    struct mount_attr a = {.attr_set = attrs};
    return mount_setattr(AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, &a, sizeof a);
}

/* Unblocks every signal (clone3's CLONE_CLEAR_SIGHAND already reset the server's handlers; the
 * signals it ignores, SIGPIPE, stay ignored in the init and are reset for the worker). */
static int init_default_signals(void)
{
    sigset_t none;
    sigemptyset(&none);
    return sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Waits for the server to write the user namespace's maps, then becomes its root: no host
 * supplementary group (root's would stay otherwise), uid and gid 0 inside, the unprivileged S.uid
 * and gid outside. Raw system calls: libc's wrappers would signal the server's threads, which
 * the init does not have. */
static void init_become_root(void)
{
    char go;
    ssize_t n;
    do
        n = recv(3, &go, 1, 0);
    while (n < 0 && errno == EINTR);
    if (n != 1) {
        if (n == 0)
            _exit(0); /* the server let go of this spare */
        init_fail(4, ST_MAPPED);
    }
    if (syscall(SYS_setgroups, 0, NULL) < 0 || syscall(SYS_setresgid, 0, 0, 0) < 0 ||
        syscall(SYS_setresuid, 0, 0, 0) < 0)
        init_fail(4, ST_IDS);
}

/* Where the new root is put together before pivot_root: a tmpfs mounted over /tmp of the
 * container's mount namespace (the host paths it needs are cloned before it covers /tmp). */
#define NEWROOT "/tmp"

/* Flags of the read-only binds of host paths. */
#define RO_ATTRS (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)

/* /proc, then its dangerous corners: masked (an empty read-only file or directory over them)
 * or read-only, as runc and crun do by default. */
static void init_proc(void)
{
    static const char *const masked_files[] = {
        "kcore",       "keys",          "timer_list", "sched_debug", "latency_stats",
        "timer_stats", "kallsyms",      "kmsg",       "vmallocinfo", "pagetypeinfo",
        "slabinfo",    "sysrq-trigger", "config.gz",  "modules",     NULL};
    static const char *const masked_dirs[] = {"acpi", "asound", "scsi", "firmware", "driver", NULL};
    static const char *const readonly[] = {"sys", "irq", "bus", "fs", "tty", NULL};
    char path[PATH_MAX];
    if (init_mkdirs(NEWROOT "/proc", true) < 0 ||
        mount("proc", NEWROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        init_fail(4, ST_PROC);
    struct stat st;
    for (const char *const *f = masked_files; *f; f++) {
        if (!init_join(path, NEWROOT "/proc/", *f) || lstat(path, &st) < 0)
            continue;
        if (mount(NEWROOT "/dev/null", path, NULL, MS_BIND, NULL) < 0 ||
            init_setattr(path, false, RO_ATTRS | MOUNT_ATTR_NOEXEC) < 0)
            init_fail(4, ST_MASK);
    }
    for (const char *const *d = masked_dirs; *d; d++) {
        if (!init_join(path, NEWROOT "/proc/", *d) || lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        if (mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "size=4k,mode=0555") < 0)
            init_fail(4, ST_MASK);
    }
    for (const char *const *r = readonly; *r; r++) {
        if (!init_join(path, NEWROOT "/proc/", *r) || lstat(path, &st) < 0)
            continue;
        if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0 ||
            init_setattr(path, true, RO_ATTRS | MOUNT_ATTR_NOEXEC) < 0)
            init_fail(4, ST_MASK);
    }
}

/* A minimal /dev: a tmpfs with the host's null, zero, full, random, urandom and tty bound in,
 * a private /dev/shm, a devpts of its own (newinstance) and the usual symbolic links. */
static void init_dev(void)
{
    static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty", NULL};
    static const char *const links[][2] = {{"ptmx", "pts/ptmx"},
                                           {"fd", "/proc/self/fd"},
                                           {"stdin", "/proc/self/fd/0"},
                                           {"stdout", "/proc/self/fd/1"},
                                           {"stderr", "/proc/self/fd/2"}};
    char src[PATH_MAX], dst[PATH_MAX];
    if (init_mkdirs(NEWROOT "/dev", true) < 0 ||
        mount("tmpfs", NEWROOT "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") < 0)
        init_fail(4, ST_DEV);
    for (const char *const *n = nodes; *n; n++) {
        int fd;
        if (!init_join(src, "/dev/", *n) || !init_join(dst, NEWROOT "/dev/", *n) ||
            (fd = init_clone(src, false, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC)) < 0 ||
            init_attach(fd, dst, false) < 0)
            init_fail(4, ST_DEV);
    }
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
        if (!init_join(dst, NEWROOT "/dev/", links[i][0]) || symlink(links[i][1], dst) < 0)
            init_fail(4, ST_DEV);
    if (mkdir(NEWROOT "/dev/shm", 01777) < 0 ||
        mount("tmpfs", NEWROOT "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0 ||
        mkdir(NEWROOT "/dev/pts", 0755) < 0 ||
        mount("devpts", NEWROOT "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=0620") < 0)
        init_fail(4, ST_DEV);
}

/* The container's file system: a fresh root (tmpfs) holding read-only binds of only what
 * functions need (S.binds: /usr, /lib*, /bin, /sbin, a few files of /etc, the skiff runtime,
 * the server's unix socket), a new /proc with its dangerous corners masked, a minimal /dev and
 * a private /tmp; then pivot_root into it, the host's root detached, and the root read-only.
 * First the host paths are cloned (open_tree) into fds, still with the server's uid (their
 * directories may be the server's alone) and before the new root covers /tmp, where some may
 * live. */
static void init_clone_binds(const struct plan *p, int *fds, int *vol_fds)
{
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        init_fail(4, ST_PRIVATE);
    /* Volumes first: they live in the data directory, which the masks below hide. Only the
     * volume's own directory, read-write (nothing mounted under it comes along). */
    for (int i = 0; i < p->nvolumes; i++)
        if ((vol_fds[i] =
                 init_clone(p->volumes[i].src, false, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)) < 0)
            init_fail(4, ST_VOLUME);
    /* The data directory when a bound path holds it (a runtime built inside it): an empty,
     * read-only directory over it here, which the recursive clone below takes along. */
    for (int i = 0; i < S.nmasks; i++)
        if (mount("tmpfs", S.masks[i], "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "size=4k,mode=0000") < 0)
            init_fail(4, ST_CLONE);
    for (int i = 0; i < S.nbinds; i++) {
        const struct bind *b = &S.binds[i];
        fds[i] = -1;
        if (b->is_link || (b->is_socket && !p->with_socket))
            continue;
        fds[i] = init_clone(b->src, b->dir, RO_ATTRS);
        if (fds[i] < 0)
            init_fail(4, ST_CLONE);
    }
}

/* The rest of the container's file system, as its root of the user namespace: the new root
 * with the clones fds (init_clone_binds) attached, /proc, /dev, /tmp, then pivot_root. */
static void init_mounts(const struct plan *p, const int *fds, const int *vol_fds)
{
    if (mount("tmpfs", NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") < 0)
        init_fail(4, ST_ROOT);
    /* /tmp first: binds of paths under it (a runtime or socket there) go on top. */
    if (mkdir(NEWROOT "/tmp", 01777) < 0 ||
        mount("tmpfs", NEWROOT "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
        init_fail(4, ST_TMP);
    char path[PATH_MAX];
    for (int i = 0; i < S.nbinds; i++) {
        const struct bind *b = &S.binds[i];
        if (!init_join(path, NEWROOT, b->dst))
            init_fail(4, ST_BIND);
        if (b->is_link) {
            if (init_mkdirs(path, false) < 0 || symlink(b->src, path) < 0)
                init_fail(4, ST_BIND);
        } else if (fds[i] >= 0 && init_attach(fds[i], path, b->dir) < 0) {
            init_fail(4, ST_BIND);
        }
    }
    for (int i = 0; i < p->nvolumes; i++)
        if (!init_join(path, NEWROOT, p->volumes[i].dst) || init_attach(vol_fds[i], path, true) < 0)
            init_fail(4, ST_VOLUME);
    init_dev();
    init_proc(); /* while the host's /proc is still there (the kernel wants to see one) */
    if (chdir(NEWROOT) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
        umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
        init_fail(4, ST_PIVOT);
    if (init_setattr("/", false, RO_ATTRS) < 0)
        init_fail(4, ST_READONLY);
}

/* The worker's stdout and stderr as the order gave them (-1: the init's own stderr), and the
 * app's code (a sealed memfd, or -1). */
static int order_out = -1, order_err = -1, order_code = -1;

/* Drops every capability (effective, permitted, inheritable, ambient and the bounding set),
 * locks the securebits so that uid 0 gains none at exec, sets no_new_privs and installs the
 * seccomp filter. In the vfork child, just before exec. */
static void init_lockdown(void)
{
    if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                                     SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
                                     SECBIT_NO_CAP_AMBIENT_RAISE |
                                     SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED) < 0)
        init_fail(4, ST_CAPS);
    for (int cap = 0; cap < 64; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
            init_fail(4, ST_CAPS);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
        init_fail(4, ST_CAPS);
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &hdr, data) < 0)
        init_fail(4, ST_CAPS);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        init_fail(4, ST_SECCOMP);
    if (S.landlock_scopes) {
        struct landlock_scope_attr a = {0, 0, S.landlock_scopes};
        long fd = syscall(SYS_landlock_create_ruleset, &a, sizeof a, 0);
        if (fd < 0 || syscall(SYS_landlock_restrict_self, (int)fd, 0) < 0)
            init_fail(4, ST_LANDLOCK);
        close((int)fd);
    }
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &S.filter, 0, 0) < 0)
        init_fail(4, ST_SECCOMP);
}

/* The worker, in the vfork child: stdin /dev/null, stdout and stderr to the server's log pipes
 * (as plain containers), the socket on fd 3 (placed there by the init), the app's code on
 * SANDBOX_CODE_FD, then no capabilities, no_new_privs, the seccomp filter and exec. */
static __attribute__((noreturn)) void init_exec_worker(char *const *argv, char *const *envp)
{
    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, 0) < 0 || dup2(order_out >= 0 ? order_out : 2, 1) < 0 ||
        (order_err >= 0 && dup2(order_err, 2) < 0) ||
        (order_code >= 0 && dup2(order_code, SANDBOX_CODE_FD) < 0))
        init_fail(4, ST_FDS);
    if (null > SANDBOX_CODE_FD)
        close(null);
    /* Default dispositions, as libuv gives plain containers. */
    for (int s = 1; s < 32; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL);
    init_lockdown();
    execve(argv[0], argv, envp);
    init_fail(4, ST_EXEC);
}

/* Waits for the order on fd 3 and parses it: the hostname into *host, argv and envp (NULL
 * terminated) into order_argv, the worker's socket moved to fd 3. Exits quietly when the server
 * closes the socket instead (a spare it no longer needs, or it is gone). */
static void init_wait_order(const char **host, char ***argv, char ***envp)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(4 * sizeof(int))];
    } cm;
    struct iovec iov = {order_buf, sizeof order_buf - 1};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf};
    ssize_t n;
    do
        n = recvmsg(3, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        _exit(0);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    struct order_hdr hdr;
    errno = EPROTO;
    if (!c || c->cmsg_type != SCM_RIGHTS || (size_t)n < sizeof hdr ||
        (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
        init_fail(4, ST_ORDER);
    /* The socket, the app's code (or the socket again), then (optionally) the worker's stdout
     * and stderr. */
    int fds[4] = {-1, -1, -1, -1};
    size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    if (nfds < 2 || nfds > 4)
        init_fail(4, ST_ORDER);
    memcpy(fds, CMSG_DATA(c), nfds * sizeof(int));
    int sock = fds[0];
    order_code = fds[1];
    order_out = fds[2];
    order_err = fds[3];
    memcpy(&hdr, order_buf, sizeof hdr);
    order_buf[n] = '\0';
    size_t total = 1 + (size_t)hdr.argc + hdr.envc; /* hostname, argv, envp */
    if (hdr.argc < 1 || total + 2 > sizeof order_argv / sizeof order_argv[0])
        init_fail(4, ST_ORDER);
    char *s = order_buf + sizeof hdr, *end = order_buf + n;
    for (size_t i = 0; i < total; i++, s += strlen(s) + 1) {
        if (s >= end)
            init_fail(4, ST_ORDER);
        order_argv[i <= hdr.argc ? i : i + 1] = s; /* envp after argv's NULL */
    }
    order_argv[1 + hdr.argc] = NULL;
    order_argv[total + 1] = NULL;
    if (dup2(sock, 3) < 0)
        init_fail(4, ST_FDS);
    close(sock);
    *host = order_argv[0];
    *argv = order_argv + 1;
    *envp = order_argv + 2 + hdr.argc;
}

/* pid 1 of the container. Never returns. */
static __attribute__((noreturn)) void init_main(const struct plan *p)
{
    if (init_default_signals() < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
        init_fail(p->status_fd, ST_SIGNALS);
    /* First drop every descriptor of the server's (a copy of another container's socket would
     * hide its end): fd 3 the order socket, 4 the status pipe, 5... the cgroups to join. */
    int keep[2 + MAX_HIER] = {p->ctl_fd, p->status_fd}, high[2 + MAX_HIER];
    for (int i = 0; i < p->nprocs; i++)
        keep[2 + i] = p->procs_fd[i];
    for (int i = 0; i < 2 + p->nprocs; i++)
        if (keep[i] >= 0 && (high[i] = fcntl(keep[i], F_DUPFD_CLOEXEC, 16)) < 0)
            init_fail(p->status_fd, ST_FDS);
    for (int i = 0; i < 2 + p->nprocs; i++)
        if (keep[i] >= 0 ? dup3(high[i], 3 + i, O_CLOEXEC) < 0 : close(3 + i) < 0 && errno != EBADF)
            init_fail(p->status_fd, ST_FDS);
    if (syscall(SYS_close_range, 5u + (unsigned)p->nprocs, ~0u, 0u) < 0)
        init_fail(4, ST_FDS);
    /* The cgroups first, still with the server's credentials. */
    for (int i = 0; i < p->nprocs; i++) {
        if (write(5 + i, "0", 1) != 1)
            init_fail(4, ST_CGROUP);
        close(5 + i);
    }
    int fds[MAX_BINDS], vol_fds[SANDBOX_MAX_VOLUMES];
    init_clone_binds(p, fds, vol_fds);
    init_become_root();
    init_mounts(p, fds, vol_fds);
    /* Nothing of the init's may be read through /proc/1 by the worker. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        init_fail(4, ST_SIGNALS);
    const char *host = "skiff-trial";
    char **argv = NULL, **envp = NULL;
    if (!p->trial)
        init_wait_order(&host, &argv, &envp);
    if (sethostname(host, strlen(host)) < 0)
        init_fail(4, ST_HOSTNAME);
    if (p->trial) { /* the worker's lockdown too, in a child that then just ends */
        pid_t probe = vfork();
        if (probe == 0) {
            init_lockdown();
            _exit(0);
        }
        int status = 0;
        while (probe > 0 && waitpid(probe, &status, 0) < 0 && errno == EINTR)
            ;
        _exit(probe > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 127);
    }
    pid_t worker = vfork();
    if (worker < 0)
        init_fail(4, ST_VFORK);
    if (worker == 0)
        init_exec_worker(argv, envp);
    close(3);
    if (order_code >= 0)
        close(order_code);
    for (;;) {
        int status;
        pid_t r = waitpid(-1, &status, __WALL);
        if (r == worker) {
            struct status_rec rec = {REC_WORKER_STATUS, status, 0};
            init_write(4, &rec);
            _exit(0);
        }
        if (r < 0 && errno != EINTR)
            _exit(126);
    }
}

/* --- cgroups --------------------------------------------------------------------------------- */

/* True if word is one of the sep-separated words of list (which this cuts up). */
static bool word_in(char *list, const char *sep, const char *word)
{
    for (char *save, *tok = strtok_r(list, sep, &save); tok; tok = strtok_r(NULL, sep, &save))
        if (!strcmp(tok, word))
            return true;
    return false;
}

/* The mount point of the hierarchy holding controller ctrl (v1, fstype cgroup) or of cgroup2
 * (ctrl NULL), from /proc/self/mountinfo, into out (PATH_MAX). True if found. */
static bool find_mount(const char *ctrl, char *out)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        /* id parent maj:min root mountpoint options [optional...] - fstype source superoptions */
        char root[PATH_MAX], mnt[PATH_MAX], fstype[64], super[1024];
        char *dash = strstr(line, " - ");
        if (!dash || sscanf(line, "%*d %*d %*s %4095s %4095s", root, mnt) != 2 ||
            sscanf(dash + 3, "%63s %*s %1023s", fstype, super) != 2 || strcmp(root, "/") != 0)
            continue;
        if (!ctrl)
            found = !strcmp(fstype, "cgroup2");
        else
            found = !strcmp(fstype, "cgroup") && word_in(super, ",", ctrl);
        if (found)
            snprintf(out, PATH_MAX, "%s", mnt);
    }
    fclose(f);
    return found;
}

/* The server's own cgroup in the v1 hierarchy of ctrl, or in v2 (ctrl NULL), from
 * /proc/self/cgroup, into out (PATH_MAX). True if found. */
static bool own_cgroup(const char *ctrl, char *out)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        if (!ctrl)
            found = !strcmp(line, "0") && c1[1] == '\0';
        else
            found = word_in(c1 + 1, ",", ctrl);
        if (found)
            snprintf(out, PATH_MAX, "%s", strcmp(c2 + 1, "/") ? c2 + 1 : "");
    }
    fclose(f);
    return found;
}

/* True if the space-separated list in file path names every word of want. */
static bool file_has_words(const char *path, const char *const *want)
{
    char buf[1024];
    for (; *want; want++)
        if (read_file(path, buf, sizeof buf) < 0 || !word_in(buf, " \n", *want))
            return false;
    return true;
}

/* Removes the cgroup dir, killing whatever still runs in it and waiting up to wait_ms for it to
 * leave. 0 or -1 (errno; EBUSY while its processes are still dying). */
static int cgroup_remove(const char *dir, int wait_ms)
{
    if (rmdir(dir) == 0 || errno == ENOENT)
        return 0;
    char path[PATH_MAX], pids[4096];
    if (path_fmt(path, "%s/cgroup.procs", dir) && read_file(path, pids, sizeof pids) > 0) {
        for (char *save, *tok = strtok_r(pids, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save))
            kill((pid_t)atoi(tok), SIGKILL);
        for (int i = 0; i < wait_ms && rmdir(dir) < 0 && errno == EBUSY; i++)
            usleep(1000);
    }
    return rmdir(dir) == 0 || errno == ENOENT ? 0 : -1;
}

/* How long the removal of a tree waits for processes killed in it: they are gone a moment after
 * SIGKILL, but a loaded machine can stretch that moment. Only start-up and shutdown wait. */
#define TREE_WAIT_MS 3000

/* Removes a `skiffd-<pid>` tree and the container cgroups in it. */
static void tree_remove(const char *tree)
{
    DIR *d = opendir(tree);
    if (d) {
        struct dirent *e;
        char path[PATH_MAX];
        while ((e = readdir(d)))
            if (e->d_type == DT_DIR && e->d_name[0] != '.' &&
                path_fmt(path, "%s/%s", tree, e->d_name) && cgroup_remove(path, TREE_WAIT_MS) < 0)
                log_debug("cannot remove the cgroup %s: %s", path, strerror(errno));
        closedir(d);
    }
    if (cgroup_remove(tree, TREE_WAIT_MS) < 0)
        log_warn("cannot remove the cgroup %s: %s", tree, strerror(errno));
}

/* True if pid is a running skiffd (its tree is not stale). */
static bool server_alive(long pid)
{
    char path[64], comm[64];
    snprintf(path, sizeof path, "/proc/%ld/comm", pid);
    return read_file(path, comm, sizeof comm) > 0 && !strcmp(comm, "skiffd\n");
}

/* Removes the trees of servers that are gone from the directory parent. */
static void sweep_stale(const char *parent)
{
    DIR *d = opendir(parent);
    if (!d)
        return;
    struct dirent *e;
    char path[PATH_MAX];
    while ((e = readdir(d))) {
        char *end;
        if (strncmp(e->d_name, "skiffd-", 7) != 0)
            continue;
        long pid = strtol(e->d_name + 7, &end, 10);
        if (*end || pid <= 0 || pid == (long)getpid() || server_alive(pid))
            continue;
        if (path_fmt(path, "%s/%s", parent, e->d_name)) {
            log_info("removing the cgroup tree %s of a skiffd that is gone", path);
            tree_remove(path);
        }
    }
    closedir(d);
}

/* Makes the server's tree under parent for the next hierarchy (after removing stale trees
 * there). NULL or why not, in why. */
static const char *make_tree(enum hier_kind kind, const char *parent, char *why, size_t len)
{
    struct hier *h = &S.hier[S.nhier];
    char path[PATH_MAX];
    h->kind = kind;
    if (!path_fmt(h->tree, "%s/skiffd-%ld", parent, (long)getpid())) {
        snprintf(why, len, "the cgroup path under %s is too long", parent);
        return why;
    }
    sweep_stale(parent);
    if (mkdir(h->tree, 0755) < 0 && errno != EEXIST) {
        snprintf(why, len, "cannot create the cgroup %s: %s", h->tree, strerror(errno));
        return why;
    }
    S.nhier++;
    if (kind == H_V2 && (!path_fmt(path, "%s/cgroup.subtree_control", h->tree) ||
                         write_file(path, "+memory +pids +cpu") < 0)) {
        snprintf(why, len, "cannot enable the controllers in %s: %s", h->tree, strerror(errno));
        return why;
    }
    return NULL;
}

/* cgroup v2 mounted at mnt, the server in own: the tree goes under own if own can hand the
 * memory, pids and cpu controllers down (a non-root cgroup that holds processes cannot: "no
 * internal processes"), else under the root of the hierarchy. NULL or why not. */
static const char *setup_v2(const char *mnt, const char *own, char *why, size_t len)
{
    const char *const parents[] = {own, ""};
    for (int t = 0; t < (own[0] ? 2 : 1); t++) {
        char parent[PATH_MAX], path[PATH_MAX];
        if (!path_fmt(parent, "%s%s", mnt, parents[t]) ||
            !path_fmt(path, "%s/cgroup.subtree_control", parent)) {
            snprintf(why, len, "the cgroup path under %s is too long", mnt);
            return why;
        }
        if (write_file(path, "+memory +pids +cpu") == 0)
            return make_tree(H_V2, parent, why, len);
        snprintf(why, len, "cannot enable the memory, pids and cpu controllers in %s: %s", parent,
                 strerror(errno));
    }
    return why;
}

/* Finds the hierarchies and makes the server's tree in each. NULL or why not. */
static const char *cgroups_setup(char *why, size_t len)
{
    static const char *const v2_ctrls[] = {"memory", "pids", "cpu", NULL};
    static const char *const v1_ctrls[] = {"memory", "pids", "cpu"};
    static const enum hier_kind v1_kinds[] = {H_MEMORY, H_PIDS, H_CPU};
    char mnt[PATH_MAX], own[PATH_MAX], path[PATH_MAX], parent[PATH_MAX];
    S.nhier = 0;
    if (find_mount(NULL, mnt) && own_cgroup(NULL, own) &&
        path_fmt(path, "%s/cgroup.controllers", mnt) && file_has_words(path, v2_ctrls))
        return setup_v2(mnt, own, why, len);
    /* v1: the tree under the server's own cgroup in each hierarchy (v1 has no rule against
     * processes beside child cgroups). */
    for (int i = 0; i < 3; i++) {
        if (!find_mount(v1_ctrls[i], mnt) || !own_cgroup(v1_ctrls[i], own)) {
            snprintf(why, len,
                     "no cgroup v2 with the memory, pids and cpu controllers, and no "
                     "cgroup v1 %s hierarchy",
                     v1_ctrls[i]);
            return why;
        }
        if (!path_fmt(parent, "%s%s", mnt, own)) {
            snprintf(why, len, "the cgroup path under %s is too long", mnt);
            return why;
        }
        if (make_tree(v1_kinds[i], parent, why, len))
            return why;
    }
    return NULL;
}

/* Writes one limit file of a container's cgroup dir; missing optional files are fine. */
static int set_limit(const char *dir, const char *file, const char *value, bool optional,
                     char *errbuf, size_t errlen)
{
    char path[PATH_MAX];
    if (!path_fmt(path, "%s/%s", dir, file) ||
        (write_file(path, value) < 0 && !(optional && errno == ENOENT))) {
        snprintf(errbuf, errlen, "cannot set %s/%s to %s: %s", dir, file, value, strerror(errno));
        return -1;
    }
    return 0;
}

/* Writes the limits that belong to hierarchy h into the container's dir. 0 or -1. */
static int cgroup_limits(const struct hier *h, const char *dir, int memory_mib, int pids,
                         double cpu, bool oom_group, char *errbuf, size_t errlen)
{
    char v[64];
    bool mem = h->kind == H_V2 || h->kind == H_MEMORY;
    if (mem && memory_mib > 0) {
        snprintf(v, sizeof v, "%lld", (long long)memory_mib << 20);
        bool v2 = h->kind == H_V2;
        if (set_limit(dir, v2 ? "memory.max" : "memory.limit_in_bytes", v, false, errbuf, errlen) <
                0 ||
            set_limit(dir, v2 ? "memory.swap.max" : "memory.memsw.limit_in_bytes", v2 ? "0" : v,
                      true, errbuf, errlen) < 0)
            return -1;
    }
    /* One OOM kill takes the whole container (v2; in v1 the init ends the namespace anyway). */
    if (h->kind == H_V2 && oom_group &&
        set_limit(dir, "memory.oom.group", "1", true, errbuf, errlen) < 0)
        return -1;
    if ((h->kind == H_V2 || h->kind == H_PIDS) && pids > 0) {
        snprintf(v, sizeof v, "%d", pids);
        if (set_limit(dir, "pids.max", v, false, errbuf, errlen) < 0)
            return -1;
    }
    if ((h->kind == H_V2 || h->kind == H_CPU) && cpu > 0) {
        long quota = (long)(cpu * CPU_PERIOD_US);
        if (quota < CPU_MIN_QUOTA_US)
            quota = CPU_MIN_QUOTA_US;
        if (h->kind == H_V2) {
            snprintf(v, sizeof v, "%ld %d", quota, CPU_PERIOD_US);
            return set_limit(dir, "cpu.max", v, false, errbuf, errlen);
        }
        snprintf(v, sizeof v, "%d", CPU_PERIOD_US);
        if (set_limit(dir, "cpu.cfs_period_us", v, false, errbuf, errlen) < 0)
            return -1;
        snprintf(v, sizeof v, "%ld", quota);
        return set_limit(dir, "cpu.cfs_quota_us", v, false, errbuf, errlen);
    }
    return 0;
}

/* --- containers ------------------------------------------------------------------------------ */

struct sandbox {
    uv_poll_t poll; /* on the pidfd, once started */
    int pidfd;
    int status_fd; /* read end of the status pipe */
    int ctl_fd;    /* the server's end of the order socket, until the order is sent */
    int pid;
    int memory_mib; /* the limit in force (0: none) */
    bool exited;
    bool with_socket; /* its root shows the server's unix socket */
    sandbox_exit_cb cb;
    void *data;
    char dirs[MAX_HIER][PATH_MAX]; /* its cgroup in each hierarchy */
    int ndirs;
};

/* The next spare is made as soon as one is taken, so a container start finds its init already
 * in its namespaces and cgroup: joining a cgroup v1 costs a RCU grace period (~10 ms here), and
 * that wait then happens between starts instead of in one. */
static struct sandbox *spare;
/* How long after a start the next spare is made. */
#define REFILL_DELAY_MS 5
/* Names spares' cgroups until they become a container's. */
static unsigned spare_seq;

/* Container cgroups still busy when their container ended (they are empty a moment later):
 * retried whenever another container ends; what is left goes with the tree at shutdown. */
#define MAX_LATER 32
static char later[MAX_LATER][PATH_MAX];
static int nlater;

/* Removes a sandbox's cgroups without blocking the loop. */
static void remove_dirs(struct sandbox *sb)
{
    for (int i = 0; i < nlater;)
        if (cgroup_remove(later[i], 0) == 0)
            memcpy(later[i], later[--nlater], PATH_MAX);
        else
            i++;
    for (int i = 0; i < sb->ndirs; i++) {
        if (cgroup_remove(sb->dirs[i], 0) == 0)
            continue;
        if (errno == EBUSY && nlater < MAX_LATER)
            memcpy(later[nlater++], sb->dirs[i], PATH_MAX);
        else
            log_warn("cannot remove the cgroup %s: %s", sb->dirs[i], strerror(errno));
    }
    sb->ndirs = 0;
}

/* Makes the cgroup `name` in every hierarchy and opens, per hierarchy, what the init needs to
 * join it: cgroup.procs (v1) or the directory (v2, for CLONE_INTO_CGROUP), into fds. 0, or -1
 * with errbuf set and nothing left behind. */
static int make_cgroups(struct sandbox *sb, const char *name, int *fds, char *errbuf, size_t errlen)
{
    for (int i = 0; i < S.nhier; i++)
        fds[i] = -1;
    for (int i = 0; i < S.nhier; i++) {
        char path[PATH_MAX];
        bool v2 = S.hier[i].kind == H_V2;
        if (!path_fmt(sb->dirs[i], "%s/%s", S.hier[i].tree, name) ||
            !path_fmt(path, "%s%s", sb->dirs[i], v2 ? "" : "/cgroup.procs")) {
            snprintf(errbuf, errlen, "the cgroup path of %s is too long", name);
            goto fail;
        }
        if (mkdir(sb->dirs[i], 0755) < 0) {
            snprintf(errbuf, errlen, "cannot create the cgroup %s: %s", sb->dirs[i],
                     strerror(errno));
            goto fail;
        }
        sb->ndirs = i + 1;
        fds[i] = open(path, (v2 ? O_RDONLY | O_DIRECTORY : O_WRONLY) | O_CLOEXEC);
        if (fds[i] < 0) {
            snprintf(errbuf, errlen, "cannot open %s: %s", path, strerror(errno));
            goto fail;
        }
    }
    return 0;
fail:
    for (int i = 0; i < S.nhier; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    remove_dirs(sb);
    return -1;
}

/* The kernel's OOM kill count in the container's memory cgroup (0 if it cannot be read). */
static long oom_kills(const struct sandbox *sb)
{
    for (int i = 0; i < sb->ndirs; i++) {
        const char *file = S.hier[i].kind == H_V2       ? "memory.events"
                           : S.hier[i].kind == H_MEMORY ? "memory.oom_control"
                                                        : NULL;
        char path[PATH_MAX], buf[1024];
        if (!file || !path_fmt(path, "%s/%s", sb->dirs[i], file) ||
            read_file(path, buf, sizeof buf) < 0)
            continue;
        for (char *save, *line = strtok_r(buf, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save))
            if (!strncmp(line, "oom_kill ", 9))
                return atol(line + 9);
    }
    return 0;
}

static void on_pidfd(uv_poll_t *h, int status, int events)
{
    struct sandbox *sb = h->data;
    (void)status;
    (void)events;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid((idtype_t)P_PIDFD, (id_t)sb->pidfd, &si, WEXITED | WNOHANG) < 0) {
        log_error("waiting for container init %d: %s", sb->pid, strerror(errno));
        si.si_code = CLD_KILLED;
        si.si_status = SIGKILL;
    } else if (si.si_pid == 0) {
        return; /* not yet */
    }
    uv_poll_stop(&sb->poll);
    sb->exited = true;
    struct sandbox_exit ex = {0};
    if (si.si_code == CLD_EXITED)
        ex.status = si.si_status;
    else
        ex.sig = si.si_status;
    char setup[256];
    struct status_rec rec;
    while (read(sb->status_fd, &rec, sizeof rec) == (ssize_t)sizeof rec) {
        if (rec.kind == REC_WORKER_STATUS) {
            ex.status = WIFEXITED(rec.value) ? WEXITSTATUS(rec.value) : 0;
            ex.sig = WIFSIGNALED(rec.value) ? WTERMSIG(rec.value) : 0;
        } else if (rec.kind == REC_SETUP_FAILED && rec.value >= 0 && rec.value < ST_COUNT) {
            snprintf(setup, sizeof setup, "the container's init could not %s: %s",
                     step_names[rec.value], strerror(rec.err));
            ex.setup_error = setup;
        }
    }
    ex.oom = oom_kills(sb) > 0;
    ex.memory_mib = sb->memory_mib;
    sb->cb(sb, &ex, sb->data);
}

/* Starts an init with plan p, in the v2 cgroup cgroup_fd (or -1). Its pid, with the pidfd in
 * *pidfd; -1 with errno on failure. */
static pid_t clone_init(const struct plan *p, int cgroup_fd, int *pidfd)
{
    struct clone3_args a;
    memset(&a, 0, sizeof a);
    a.flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS |
              SANDBOX_CLONE_PIDFD | SANDBOX_CLONE_CLEAR_SIGHAND;
    a.pidfd = (uint64_t)(uintptr_t)pidfd;
    a.exit_signal = SIGCHLD;
    if (cgroup_fd >= 0) {
        a.flags |= SANDBOX_CLONE_INTO_CGROUP;
        a.cgroup = (uint64_t)cgroup_fd;
    }
    long pid = syscall(SYS_clone3, &a, sizeof a);
    if (pid == 0)
        init_main(p);
    return (pid_t)pid;
}

/* Kills (when kill_it) and reaps the init, blocking; its wait status goes to *si. */
static void reap(struct sandbox *sb, bool kill_it, siginfo_t *si)
{
    memset(si, 0, sizeof *si);
    if (kill_it)
        syscall(SYS_pidfd_send_signal, sb->pidfd, SIGKILL, NULL, 0);
    while (waitid((idtype_t)P_PIDFD, (id_t)sb->pidfd, si, WEXITED) < 0 && errno == EINTR)
        ;
}

/* Kills the init of a sandbox that was never started (or waits for a trial's to exit), reaps
 * it and frees everything. Its wait status goes to *si when si is not NULL. */
static void discard(struct sandbox *sb, bool kill_it, siginfo_t *si)
{
    siginfo_t ignored;
    reap(sb, kill_it, si ? si : &ignored);
    close(sb->pidfd);
    close(sb->status_fd);
    if (sb->ctl_fd >= 0)
        close(sb->ctl_fd);
    remove_dirs(sb);
    mem_free(sb);
}

/* Writes the user namespace's maps of the init pid: its root is S.uid (and gid) on the host,
 * and nothing else is mapped. The init may still drop its supplementary groups (setgroups is
 * left allowed for that: without capabilities the worker cannot call it). 0 or -1 (errno). */
static int write_maps(pid_t pid)
{
    char path[64], map[64];
    snprintf(map, sizeof map, "0 %u 1\n", S.uid);
    snprintf(path, sizeof path, "/proc/%d/uid_map", (int)pid);
    if (write_file(path, map) < 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/gid_map", (int)pid);
    return write_file(path, map);
}

/* True when the server's unix socket exists (a spare made before it cannot show it). The first
 * time, its group becomes the containers' gid with mode 0660: connecting needs write permission,
 * which the containers' root (an unprivileged uid on the host) has no other way to get; other
 * local users still cannot connect. */
static bool socket_ready(void)
{
    static bool opened;
    struct stat st;
    if (!S.sock[0] || stat(S.sock, &st) < 0 || !S_ISSOCK(st.st_mode))
        return false;
    if (!opened && (chown(S.sock, (uid_t)-1, (gid_t)S.uid) < 0 || chmod(S.sock, 0660) < 0))
        log_warn("containers may not reach the server's socket %s: %s", S.sock, strerror(errno));
    opened = true;
    return true;
}

/* Makes a sandbox whose init sets itself up and then waits for its order (trial: exits 0 once
 * set up). NULL on failure with errbuf set. */
static struct sandbox *prepare(bool trial, const struct sandbox_spawn *sp, char *errbuf,
                               size_t errlen)
{
    struct sandbox *sb = mem_calloc(1, sizeof *sb);
    if (!sb) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    sb->pidfd = sb->status_fd = sb->ctl_fd = -1;
    char name[32];
    snprintf(name, sizeof name, "%s-%u", trial ? "trial" : "spare", ++spare_seq);
    struct plan p = {.trial = trial, .ctl_fd = -1, .with_socket = socket_ready()};
    if (sp && sp->nvolumes > 0) {
        p.volumes = sp->volumes;
        p.nvolumes = sp->nvolumes > SANDBOX_MAX_VOLUMES ? SANDBOX_MAX_VOLUMES : sp->nvolumes;
    }
    sb->with_socket = p.with_socket;
    int fds[MAX_HIER], pipefd[2] = {-1, -1}, ctl[2] = {-1, -1};
    if (make_cgroups(sb, name, fds, errbuf, errlen) < 0) {
        mem_free(sb);
        return NULL;
    }
    bool v2 = S.hier[0].kind == H_V2;
    for (int i = 0; !v2 && i < S.nhier; i++)
        p.procs_fd[p.nprocs++] = fds[i];
    int e = 0;
    if (pipe2(pipefd, O_CLOEXEC) < 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0) {
        e = errno;
        snprintf(errbuf, errlen, "pipe or socketpair: %s", strerror(e));
    } else {
        p.status_fd = pipefd[1];
        p.ctl_fd = ctl[1];
        sb->pid = clone_init(&p, v2 ? fds[0] : -1, &sb->pidfd);
        e = sb->pid < 0 ? errno : 0;
        if (sb->pid < 0) {
            snprintf(errbuf, errlen, "cannot create the namespaces (clone3): %s", strerror(e));
        } else if (write_maps(sb->pid) < 0 || send(ctl[0], "g", 1, MSG_NOSIGNAL) != 1) {
            e = errno;
            snprintf(errbuf, errlen, "cannot map the container's user namespace to uid %u: %s",
                     S.uid, strerror(e));
        }
    }
    for (int i = 0; i < S.nhier; i++)
        close(fds[i]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    if (ctl[1] >= 0)
        close(ctl[1]);
    sb->status_fd = pipefd[0];
    sb->ctl_fd = ctl[0];
    if (e && sb->pid > 0) {
        discard(sb, true, NULL);
        return NULL;
    }
    if (e || sb->pid < 0) {
        if (sb->status_fd >= 0)
            close(sb->status_fd);
        if (sb->ctl_fd >= 0)
            close(sb->ctl_fd);
        remove_dirs(sb);
        mem_free(sb);
        return NULL;
    }
    if (trial) { /* the init reads its go, then needs nothing more of the server */
        close(sb->ctl_fd);
        sb->ctl_fd = -1;
    }
    return sb;
}

/* The app's code, as containers get it: their root does not hold the data directory, and the
 * files there are the server's alone, so each gets a sealed copy in memory (memfd, read-only to
 * them) on SANDBOX_CODE_FD. Copies of the latest few code files are kept (a deploy writes a new
 * file; a changed one is copied again). */
#define CODE_CACHE 8
static struct {
    char path[PATH_MAX];
    struct stat st;
    int fd;
} code_cache[CODE_CACHE];
static unsigned code_next;

/* The memfd holding a copy of the code file path (the cache keeps it). -1 with errbuf set. */
static int code_fd(const char *path, char *errbuf, size_t errlen)
{
    struct stat st;
    if (!path || stat(path, &st) < 0) {
        snprintf(errbuf, errlen, "cannot read the app's code %s: %s", path ? path : "(none)",
                 strerror(path ? errno : EINVAL));
        return -1;
    }
    for (int i = 0; i < CODE_CACHE; i++) {
        const struct stat *c = &code_cache[i].st;
        if (code_cache[i].fd > 0 && !strcmp(code_cache[i].path, path) && c->st_ino == st.st_ino &&
            c->st_dev == st.st_dev && c->st_size == st.st_size &&
            c->st_mtim.tv_sec == st.st_mtim.tv_sec && c->st_mtim.tv_nsec == st.st_mtim.tv_nsec)
            return code_cache[i].fd;
    }
    int in = open(path, O_RDONLY | O_CLOEXEC);
    int fd = in < 0 ? -1 : memfd_create("skiff-app", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    static char chunk[64 * 1024];
    ssize_t n = 0;
    while (fd >= 0 && (n = read(in, chunk, sizeof chunk)) > 0)
        if (write(fd, chunk, (size_t)n) != n) {
            n = -1;
            break;
        }
    int e = errno;
    if (in >= 0)
        close(in);
    if (fd >= 0 && (n < 0 || fcntl(fd, F_ADD_SEALS,
                                   F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)) {
        e = errno;
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        snprintf(errbuf, errlen, "cannot copy the app's code %s for the container: %s", path,
                 strerror(e));
        return -1;
    }
    unsigned slot = code_next++ % CODE_CACHE;
    if (code_cache[slot].fd > 0)
        close(code_cache[slot].fd);
    snprintf(code_cache[slot].path, PATH_MAX, "%s", path);
    code_cache[slot].st = st;
    code_cache[slot].fd = fd;
    return fd;
}

/* Sends the order: renames the cgroups to the container's id, writes its limits, hands over
 * the worker's socket, argv and envp. 0, or -1 with errbuf set (the caller discards sb). */
static int send_order(struct sandbox *sb, const struct sandbox_spawn *sp, double cpu, char *errbuf,
                      size_t errlen)
{
    for (int i = 0; i < sb->ndirs; i++) {
        char to[PATH_MAX];
        if (!path_fmt(to, "%s/%s", S.hier[i].tree, sp->id) || rename(sb->dirs[i], to) < 0) {
            snprintf(errbuf, errlen, "cannot rename the cgroup %s to %s: %s", sb->dirs[i], sp->id,
                     strerror(errno));
            return -1;
        }
        memcpy(sb->dirs[i], to, sizeof to);
        int share = sp->share < 1                   ? 1
                    : sp->share > SANDBOX_MAX_SHARE ? SANDBOX_MAX_SHARE
                                                    : sp->share;
        int pids = sp->pids > 0 ? sp->pids : S.opts.pids;
        if (cgroup_limits(&S.hier[i], sb->dirs[i], sb->memory_mib,
                          pids > 0 && pids < INT_MAX / share ? pids * share : pids, cpu, share == 1,
                          errbuf, errlen) < 0)
            return -1;
    }
    static char buf[ORDER_MAX];
    struct order_hdr hdr = {0, 0};
    size_t n = sizeof hdr;
    const char *const *lists[] = {(const char *const[]){sp->id, NULL},
                                  (const char *const *)sp->argv, (const char *const *)sp->envp};
    for (int l = 0; l < 3; l++)
        for (const char *const *str = lists[l]; *str; str++) {
            size_t len = strlen(*str) + 1;
            if (n + len >= sizeof buf) { /* the init keeps a byte for a NUL */
                snprintf(errbuf, errlen, "the worker's arguments and environment are over %d KiB",
                         ORDER_MAX / 1024);
                return -1;
            }
            memcpy(buf + n, *str, len);
            n += len;
            hdr.argc += l == 1;
            hdr.envc += l == 2;
        }
    memcpy(buf, &hdr, sizeof hdr);
    int code = code_fd(sp->code, errbuf, errlen);
    if (code < 0)
        return -1;
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(4 * sizeof(int))];
    } cm;
    memset(&cm, 0, sizeof cm);
    int fds[4] = {sp->fd3, code, sp->fd1, sp->fd2};
    size_t nfds = sp->fd1 >= 0 && sp->fd2 >= 0 ? 4 : 2;
    struct iovec iov = {buf, n};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = cm.buf,
                        .msg_controllen = CMSG_SPACE(nfds * sizeof(int))};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
    ssize_t sent;
    do
        sent = sendmsg(sb->ctl_fd, &mh, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    if (sent != (ssize_t)n) {
        snprintf(errbuf, errlen, "cannot send the container its orders: %s",
                 sent < 0 ? strerror(errno) : "short write");
        return -1;
    }
    close(sb->ctl_fd);
    sb->ctl_fd = -1;
    return 0;
}

/* Makes the next spare; a failure only costs the next start its head start. */
static void refill(void)
{
    char err[512];
    if (!spare && !(spare = prepare(false, NULL, err, sizeof err)))
        log_warn("cannot prepare a spare container: %s", err);
}

static uv_timer_t refill_timer;
static bool refill_timer_ready;

static void on_refill(uv_timer_t *h)
{
    (void)h;
    refill();
}

/* Makes the next spare a moment after a start (REFILL_DELAY_MS): its setup (clone3, the maps,
 * some forty mounts) would otherwise compete for the cpu with the worker just started. A start
 * that comes sooner makes its own. */
static void refill_later(uv_loop_t *loop)
{
    if (!refill_timer_ready) {
        uv_timer_init(loop, &refill_timer);
        uv_unref((uv_handle_t *)&refill_timer);
        refill_timer_ready = true;
    }
    uv_timer_start(&refill_timer, on_refill, REFILL_DELAY_MS, 0);
}

/* True when directory a holds b or is b. */
static bool path_holds(const char *a, const char *b)
{
    size_t n = strlen(a);
    return !strncmp(a, b, n) && (b[n] == '\0' || b[n] == '/' || (n > 0 && a[n - 1] == '/'));
}

const char *sandbox_volume_problem(const char *dst, char *why, size_t whylen)
{
    for (int i = 0; i < S.nbinds; i++)
        if (path_holds(dst, S.binds[i].dst) || path_holds(S.binds[i].dst, dst)) {
            snprintf(why, whylen,
                     "volume path %s overlaps %s, which the container's root takes from the host",
                     dst, S.binds[i].dst);
            return why;
        }
    return NULL;
}

struct sandbox *sandbox_start(uv_loop_t *loop, const struct sandbox_spawn *sp, sandbox_exit_cb cb,
                              void *data, int *pid, char *errbuf, size_t errlen)
{
    int share = sp->share < 1 ? 1 : sp->share > SANDBOX_MAX_SHARE ? SANDBOX_MAX_SHARE : sp->share;
    int memory_mib = sp->memory_mib > 0 ? sp->memory_mib : S.opts.memory_mib;
    double cpu = sp->cpu > 0 ? sp->cpu : S.opts.cpu;
    if (memory_mib > 0)
        memory_mib = memory_mib > (1 << 24) / share ? 1 << 24 : memory_mib * share;
    cpu *= share;
    struct sandbox *sb = NULL;
    for (int i = 0; i < sp->nvolumes; i++) {
        char why[PATH_MAX + 100];
        const char *problem = sandbox_volume_problem(sp->volumes[i].dst, why, sizeof why);
        if (problem || sp->nvolumes > SANDBOX_MAX_VOLUMES) {
            snprintf(errbuf, errlen, "%s", problem ? problem : "too many volumes");
            return NULL;
        }
    }
    /* The spare, else a new one; a spare that died meanwhile is replaced once. A container with
     * volumes gets one made for it: the spare's root is already built. */
    for (int attempt = 0; attempt < 2 && !sb; attempt++) {
        if (sp->nvolumes == 0) {
            sb = spare;
            spare = NULL;
        }
        if (sb && !sb->with_socket && socket_ready()) { /* made before the server listened */
            discard(sb, true, NULL);
            sb = NULL;
        }
        if (!sb && !(sb = prepare(false, sp, errbuf, errlen)))
            return NULL;
        sb->memory_mib = memory_mib;
        if (send_order(sb, sp, cpu, errbuf, errlen) < 0) {
            discard(sb, true, NULL);
            sb = NULL;
        }
    }
    if (!sb)
        return NULL;
    sb->cb = cb;
    sb->data = data;
    fcntl(sb->status_fd, F_SETFL, O_NONBLOCK);
    int rc = uv_poll_init(loop, &sb->poll, sb->pidfd);
    if (rc < 0) {
        snprintf(errbuf, errlen, "cannot watch the container: %s", uv_strerror(rc));
        discard(sb, true, NULL);
        return NULL;
    }
    sb->poll.data = sb;
    if ((rc = uv_poll_start(&sb->poll, UV_READABLE, on_pidfd)) < 0) {
        snprintf(errbuf, errlen, "cannot watch the container: %s", uv_strerror(rc));
        siginfo_t si;
        reap(sb, true, &si);
        sandbox_free(sb); /* the handle's close callback frees the rest */
        return NULL;
    }
    *pid = sb->pid;
    refill_later(loop);
    return sb;
}

long sandbox_oom_kills(const struct sandbox *sb)
{
    return oom_kills(sb);
}

int sandbox_memory_mib(const struct sandbox *sb)
{
    return sb->memory_mib;
}

int sandbox_host_pid(const struct sandbox *sb, int ns_pid)
{
    char path[PATH_MAX], pids[16384];
    ssize_t n;
    if (sb->ndirs < 1 || !path_fmt(path, "%s/cgroup.procs", sb->dirs[0]) ||
        (n = read_file(path, pids, sizeof pids)) <= 0)
        return -1;
    /* Newest last, as a rule: the child just forked is found first from the end. */
    for (char *end = pids + n; end > pids;) {
        while (end > pids && end[-1] == '\n')
            *--end = '\0';
        char *tok = end;
        while (tok > pids && tok[-1] != '\n')
            tok--;
        end = tok;
        if (!*tok)
            continue;
        char status[4096];
        snprintf(path, sizeof path, "/proc/%.20s/status", tok);
        if (read_file(path, status, sizeof status) <= 0)
            continue;
        /* "NSpid:\t<host pid>\t...\t<pid in the innermost namespace>" */
        char *line = strstr(status, "\nNSpid:");
        if (!line)
            continue;
        line[strcspn(line + 1, "\n") + 1] = '\0';
        char *last = strrchr(line, '\t');
        if (last && atoi(last + 1) == ns_pid && strchr(line + 7, '\t') != last)
            return atoi(tok);
    }
    return -1;
}

void sandbox_kill(struct sandbox *sb)
{
    if (!sb->exited && syscall(SYS_pidfd_send_signal, sb->pidfd, SIGKILL, NULL, 0) < 0 &&
        errno != ESRCH)
        log_warn("cannot kill container init %d: %s", sb->pid, strerror(errno));
}

static void on_poll_closed(uv_handle_t *h)
{
    struct sandbox *sb = h->data;
    close(sb->pidfd);
    close(sb->status_fd);
    mem_free(sb);
}

void sandbox_free(struct sandbox *sb)
{
    remove_dirs(sb);
    uv_close((uv_handle_t *)&sb->poll, on_poll_closed);
}

/* --- start-up -------------------------------------------------------------------------------- */

/* Adds a bind of the host path src at dst (the same path when NULL) to the new root's list:
 * a directory, a file (followed through symbolic links when follow), or the symbolic link
 * itself. Missing paths are skipped. */
static void add_bind(const char *src, const char *dst, bool follow)
{
    struct stat st;
    if (S.nbinds >= MAX_BINDS || (follow ? stat(src, &st) : lstat(src, &st)) < 0)
        return;
    struct bind *b = &S.binds[S.nbinds];
    memset(b, 0, sizeof *b);
    snprintf(b->dst, PATH_MAX, "%s", dst ? dst : src);
    if (S_ISLNK(st.st_mode)) {
        ssize_t n = readlink(src, b->src, PATH_MAX - 1);
        if (n <= 0)
            return;
        b->src[n] = '\0';
        b->is_link = true;
    } else if (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)) {
        if (!realpath(src, b->src))
            return;
        b->dir = S_ISDIR(st.st_mode);
    } else {
        return;
    }
    S.nbinds++;
}

/* True if path is dir or lies under it. */
static bool path_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/')
        return true;
    return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0');
}

/* path made absolute (from the working directory) into abs (PATH_MAX bytes). */
static void absolute(const char *path, char *abs)
{
    char dir[PATH_MAX / 2];
    if (path[0] != '/' && getcwd(dir, sizeof dir))
        path_fmt(abs, "%s/%.*s", dir, PATH_MAX / 2 - 2, path);
    else
        snprintf(abs, PATH_MAX, "%s", path);
}

/* True if a directory bound so far holds the absolute path. */
static bool bound_dir_holds(const char *path)
{
    for (int i = 0; i < S.nbinds; i++)
        if (S.binds[i].dir && path_under(path, S.binds[i].src))
            return true;
    return false;
}

/* What a container's root holds (besides /proc, /dev and /tmp, made by the init): the host's
 * /usr and /bin, /sbin, /lib* (symbolic links where the host has them), the files of /etc that
 * programs need (never shadow, gshadow or anything of the server's), the skiff runtime (the
 * worker's install prefix, unless /usr holds it) and the server's unix socket (unless a bound
 * directory holds it already). The data directory is never bound; if a bound path holds it, an
 * empty directory hides it. */
static void plan_root(void)
{
    static const char *const top[] = {"/usr",   "/bin",   "/sbin",   "/lib",
                                      "/lib32", "/lib64", "/libx32", NULL};
    static const char *const etc[] = {"passwd",          "group",
                                      "hosts",           "resolv.conf",
                                      "nsswitch.conf",   "host.conf",
                                      "gai.conf",        "services",
                                      "protocols",       "networks",
                                      "ld.so.cache",     "ld.so.conf",
                                      "ld.so.conf.d",    "localtime",
                                      "timezone",        "ssl",
                                      "ca-certificates", "ca-certificates.conf",
                                      "alternatives",    "mime.types",
                                      "os-release",      "debian_version",
                                      "login.defs",      NULL};
    S.nbinds = 0;
    S.nmasks = 0;
    for (const char *const *t = top; *t; t++)
        add_bind(*t, NULL, false);
    char path[PATH_MAX];
    for (const char *const *e = etc; *e; e++) {
        snprintf(path, sizeof path, "/etc/%s", *e);
        add_bind(path, NULL, true);
    }
    if (S.nbinds < MAX_BINDS) { /* /etc/mtab, as the host usually has it */
        struct bind *b = &S.binds[S.nbinds++];
        memset(b, 0, sizeof *b);
        snprintf(b->src, PATH_MAX, "../proc/self/mounts");
        snprintf(b->dst, PATH_MAX, "/etc/mtab");
        b->is_link = true;
    }
    /* The runtime: the worker's install prefix (bin/.. holds lib/ with libskiff.so). */
    char prefix[PATH_MAX];
    if (realpath(S.opts.worker, prefix)) {
        for (int up = 0; up < 2; up++) {
            char *slash = strrchr(prefix, '/');
            if (slash && slash != prefix)
                *slash = '\0';
        }
        bool held = false;
        for (int i = 0; i < S.nbinds; i++)
            held |= S.binds[i].dir && path_under(prefix, S.binds[i].src);
        if (!held)
            add_bind(prefix, NULL, true);
    }
    S.sock[0] = '\0';
    if (S.opts.listen && !strncmp(S.opts.listen, "unix:", 5)) {
        /* Bound as a file once it exists (the server listens after this), unless a bound
         * directory shows it already. */
        absolute(S.opts.listen + 5, S.sock);
        if (S.nbinds < MAX_BINDS && !bound_dir_holds(S.sock)) {
            struct bind *b = &S.binds[S.nbinds++];
            memset(b, 0, sizeof *b);
            memcpy(b->src, S.sock, sizeof S.sock);
            memcpy(b->dst, S.sock, sizeof S.sock);
            b->is_socket = true;
        }
    }
    char data[PATH_MAX];
    if (S.opts.data_dir && realpath(S.opts.data_dir, data))
        for (int i = 0; i < S.nbinds && S.nmasks < MAX_MASKS; i++)
            if (S.binds[i].dir && path_under(data, S.binds[i].src)) {
                memcpy(S.masks[S.nmasks++], data, sizeof data);
                break;
            }
}

/* Docker's default seccomp profile, as a deny list: the worker may do everything else. */
static const char *const denied_syscalls[] = {
    /* mounts and namespaces: the container's file system and namespaces stay as they are */
    "mount", "umount", "umount2", "pivot_root", "chroot", "setns", "unshare", "move_mount",
    "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    /* other processes and the kernel's memory */
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "kexec_load",
    "kexec_file_load", "bpf", "perf_event_open", "userfaultfd", "lookup_dcookie",
    /* the kernel's keyrings and modules */
    "keyctl", "add_key", "request_key", "init_module", "finit_module", "delete_module",
    "create_module", "get_kernel_syms", "query_module",
    /* file handles (open_by_handle_at reads any file of a file system) */
    "open_by_handle_at", "name_to_handle_at",
    /* the machine: swap, reboot, accounting, clocks, logs, quotas, ports, the terminal */
    "swapon", "swapoff", "reboot", "acct", "settimeofday", "stime", "clock_settime",
    "clock_adjtime", "syslog", "quotactl", "quotactl_fd", "iopl", "ioperm", "vhangup", "nfsservctl",
    "uselib", "ustat", "sysfs", "_sysctl", "fanotify_init", "sethostname", "setdomainname", "vm86",
    "vm86old",
    /* NUMA placement of other processes' memory, and io_uring (a way around this filter) */
    "move_pages", "migrate_pages", "mbind", "set_mempolicy", "get_mempolicy", "io_uring_setup",
    "io_uring_enter", "io_uring_register", NULL};

/* Builds the worker's seccomp filter (libseccomp, exported to S.filter): every call of
 * denied_syscalls fails with EPERM, clone with a namespace flag too, clone3 with ENOSYS (its
 * flags sit in memory the filter cannot read; libc then falls back to clone), ioctl TIOCSTI and
 * TIOCLINUX (typing into a terminal), and personality flags that weaken the address space
 * (ASLR stays on). Other architectures' calls kill the process (libseccomp's default). NULL
 * or why not. */
static const char *filter_build(char *why, size_t len)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) {
        snprintf(why, len, "cannot build the seccomp filter (seccomp_init)");
        return why;
    }
    const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
    int rc = 0;
    for (const char *const *s = denied_syscalls; *s && rc == 0; s++) {
        int nr = seccomp_syscall_resolve_name(*s);
        if (nr != __NR_SCMP_ERROR && nr >= 0)
            rc = seccomp_rule_add(ctx, eperm, nr, 0);
    }
    static const uint64_t ns_flags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,   CLONE_NEWUSER,
                                        CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};
    for (size_t i = 0; i < sizeof ns_flags / sizeof ns_flags[0] && rc == 0; i++)
        rc = seccomp_rule_add(ctx, eperm, SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (rc == 0)
        rc = seccomp_rule_add(ctx, eperm, SCMP_SYS(ioctl), 1,
                              SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCSTI));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, eperm, SCMP_SYS(ioctl), 1,
                              SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCLINUX));
    /* personality: none of the flags that weaken the address space (ASLR off, readable
     * implies executable, a page at 0...); libseccomp cannot list Docker's allowed values
     * (several comparisons of one argument), so each flag is one rule. */
    static const uint64_t persona_flags[] = {
        ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, MMAP_PAGE_ZERO, ADDR_COMPAT_LAYOUT, ADDR_LIMIT_32BIT,
        ADDR_LIMIT_3GB,    FDPIC_FUNCPTRS,    SHORT_INODE,    WHOLE_SECONDS,      STICKY_TIMEOUTS};
    for (size_t i = 0; i < sizeof persona_flags / sizeof persona_flags[0] && rc == 0; i++)
        rc = seccomp_rule_add(ctx, eperm, SCMP_SYS(personality), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, persona_flags[i], persona_flags[i]));
    if (rc != 0) {
        seccomp_release(ctx);
        snprintf(why, len, "cannot build the seccomp filter: %s", strerror(-rc));
        return why;
    }
    int fd = memfd_create("skiff-seccomp", MFD_CLOEXEC);
    off_t size = -1;
    if (fd >= 0 && (rc = seccomp_export_bpf(ctx, fd)) == 0)
        size = lseek(fd, 0, SEEK_END);
    seccomp_release(ctx);
    struct sock_filter *prog = size > 0 ? mem_alloc((size_t)size) : NULL;
    if (!prog || pread(fd, prog, (size_t)size, 0) != size ||
        size % (off_t)sizeof(struct sock_filter) != 0) {
        if (fd >= 0)
            close(fd);
        mem_free(prog);
        snprintf(why, len, "cannot export the seccomp filter: %s", rc ? strerror(-rc) : "short");
        return why;
    }
    close(fd);
    mem_free(S.filter.filter);
    S.filter.filter = prog;
    S.filter.len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
    return NULL;
}

/* Runs one trial container that sets everything up and exits. NULL or why not. */
static const char *trial(char *why, size_t len)
{
    char err[512];
    struct sandbox *sb = prepare(true, NULL, err, sizeof err);
    if (!sb) {
        snprintf(why, len, "%s", err);
        return why;
    }
    struct status_rec rec;
    siginfo_t si;
    int fd = dup(sb->status_fd); /* discard closes the pipe; the record is read after it */
    discard(sb, false, &si);
    ssize_t n = fd >= 0 ? read(fd, &rec, sizeof rec) : -1;
    if (fd >= 0)
        close(fd);
    if (n == (ssize_t)sizeof rec && rec.kind == REC_SETUP_FAILED && rec.value >= 0 &&
        rec.value < ST_COUNT) {
        snprintf(why, len, "a trial container could not %s: %s", step_names[rec.value],
                 strerror(rec.err));
        return why;
    }
    if (si.si_code != CLD_EXITED || si.si_status != 0) {
        snprintf(why, len, "a trial container died (code %d, status %d)", si.si_code, si.si_status);
        return why;
    }
    return NULL;
}

bool sandbox_init(const struct sandbox_opts *opts)
{
    S.opts = *opts;
    S.enabled = false;
    char why[PATH_MAX + 256];
    const char *no = NULL;
    if (opts->disabled)
        no = "--no-sandbox";
    else if (geteuid() != 0)
        no = "skiffd is not running as root";
    if (!no)
        no = cgroups_setup(why, sizeof why);
    if (!no) {
        S.uid = opts->uid ? opts->uid : SANDBOX_DEFAULT_UID;
        long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
        S.landlock_scopes =
            abi >= LANDLOCK_ABI_SCOPES ? SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL : 0;
        plan_root();
        no = filter_build(why, sizeof why);
        if (!no)
            no = trial(why, sizeof why);
    }
    if (no) {
        sandbox_deinit();
        /* What can still be taken from plain containers: set-user-ID programs (they inherit
         * no_new_privs from the server, which runs none). */
        bool nnp = prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0;
        log_warn(
            "containers run as plain processes, NOT sandboxed: with the server's "
            "uid %d%s (no namespaces, capabilities kept, no seccomp filter, no cpu/memory/pids "
            "limits; only no_new_privs%s): %s",
            (int)geteuid(), geteuid() == 0 ? ", as ROOT on the host" : "",
            nnp ? "" : ", and not even that", no);
        return false;
    }
    S.enabled = true;
    refill();
    if (!S.owner) {
        S.owner = getpid();
        atexit(sandbox_deinit); /* an early exit of the server still removes its tree */
    }
    char limits[128];
    snprintf(limits, sizeof limits, "memory %d MiB, pids %d, cpu %g", S.opts.memory_mib,
             S.opts.pids, S.opts.cpu);
    log_info("containers are sandboxed (user namespace with root as uid %u, pid, mount, ipc, uts "
             "namespaces; a new root by pivot_root; no capabilities, no_new_privs, seccomp%s; "
             "cgroup %s; defaults: %s; 0 is unlimited)",
             S.uid, S.landlock_scopes ? ", Landlock scopes" : "",
             S.hier[0].kind == H_V2 ? "v2" : "v1", limits);
    return true;
}

void sandbox_deinit(void)
{
    if (S.owner && S.owner != getpid())
        return;
    if (spare) {
        discard(spare, true, NULL);
        spare = NULL;
    }
    for (int i = 0; i < S.nhier; i++)
        tree_remove(S.hier[i].tree);
    S.nhier = 0;
    nlater = 0;
    S.enabled = false;
}

bool sandbox_enabled(void)
{
    return S.enabled;
}

void sandbox_usage(const struct sandbox *sb, long long *memory_bytes, long long *cpu_us)
{
    *memory_bytes = *cpu_us = -1;
    for (int i = 0; sb && i < S.nhier && i < sb->ndirs; i++) {
        char path[PATH_MAX], text[512];
        enum hier_kind k = S.hier[i].kind;
        if ((k == H_V2 || k == H_MEMORY) &&
            path_fmt(path, "%s/%s", sb->dirs[i],
                     k == H_V2 ? "memory.current" : "memory.usage_in_bytes") &&
            read_file(path, text, sizeof text) > 0)
            *memory_bytes = atoll(text);
        if (k == H_V2 && path_fmt(path, "%s/cpu.stat", sb->dirs[i]) &&
            read_file(path, text, sizeof text) > 0) {
            const char *u = strstr(text, "usage_usec ");
            if (u)
                *cpu_us = atoll(u + 11);
        }
        if (k == H_CPU && path_fmt(path, "%s/cpuacct.usage", sb->dirs[i]) &&
            read_file(path, text, sizeof text) > 0)
            *cpu_us = atoll(text) / 1000; /* nanoseconds */
    }
}
