/*
 * sandbox.c - container isolation (see sandbox.h).
 *
 * Start-up (sandbox_init) finds the cgroup hierarchies: cgroup v2 when its root offers the
 * memory, pids and cpu controllers, else the v1 hierarchies of those three. In each, the server
 * makes a tree `skiffd-<pid>` under its own cgroup (so the containers stay inside whatever
 * limits the server itself runs under; in v2 only if that cgroup can hand the controllers down,
 * else under the root) and removes `skiffd-<pid>` trees whose server is gone. A
 * trial container then runs every setup step once; any failure there is the one line that says
 * containers run as plain processes, and why.
 *
 * A container is made ahead of need, as the *spare*: the server makes a cgroup `spare-N` in
 * each hierarchy and clone3()s the init with new pid, mount, ipc and uts namespaces, a pidfd, and
 * (v2) straight into its cgroup. The init runs in a copy of the server's memory and does only
 * async-signal-safe system calls: it drops every descriptor of the server's but an order socket
 * and a status pipe, joins its cgroups (v1: a write to cgroup.procs, which costs an RCU grace
 * period, ~10 ms, the reason for the spare), makes every mount private and read-only
 * (mount_setattr, recursive), mounts a private tmpfs on /tmp (re-attaching, read-only, the few
 * host paths under /tmp the worker needs: the data directory, the worker's install prefix, the
 * server's unix socket) and on /dev/shm, a fresh /proc for the new pid namespace, and waits for
 * its order. When a container starts, the server renames the spare's cgroups to the container
 * id, writes the limits (memory without swap, pids, cpu quota), sends the order (hostname, the
 * worker's argv and envp, its socket as SCM_RIGHTS) and makes the next spare. The init sets the
 * hostname and vforks the worker as pid 2 with the socket on fd 3. It then reaps whatever the
 * namespace orphans; when the worker ends it writes the worker's wait status to the status pipe
 * and exits, which kills anything left in the namespace. The worker is not pid 1 because pid 1
 * ignores signals it does not handle (a crash handler re-raising SIGABRT would survive), and the
 * init reports the status through a pipe because it cannot die of a signal of its own.
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
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
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
/* Host paths under /tmp that stay visible in the private /tmp. */
#define MAX_KEEP 3
/* cpu.max / cpu.cfs_period_us: the kernel's default period, 100 ms. */
#define CPU_PERIOD_US 100000
/* The smallest quota the kernel accepts is 1 ms. */
#define CPU_MIN_QUOTA_US 1000

enum hier_kind { H_V2, H_MEMORY, H_PIDS, H_CPU };

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
    int nkeep;
    char keep[MAX_KEEP][PATH_MAX];
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
    ST_PRIVATE,
    ST_READONLY,
    ST_KEEP,
    ST_TMP,
    ST_GRAFT,
    ST_SHM,
    ST_PROC,
    ST_HOSTNAME,
    ST_FDS,
    ST_ORDER,
    ST_VFORK,
    ST_EXEC,
    ST_COUNT
};

static const char *const step_names[ST_COUNT] = {
    [ST_SIGNALS] = "set up its signals",
    [ST_CGROUP] = "join its cgroup",
    [ST_PRIVATE] = "make its mounts private",
    [ST_READONLY] = "make the host read-only (mount_setattr)",
    [ST_KEEP] = "keep a path under /tmp",
    [ST_TMP] = "mount a private /tmp",
    [ST_GRAFT] = "re-attach a path under /tmp",
    [ST_SHM] = "mount a private /dev/shm",
    [ST_PROC] = "mount /proc",
    [ST_HOSTNAME] = "set its hostname",
    [ST_FDS] = "arrange its file descriptors",
    [ST_ORDER] = "read its orders from the server",
    [ST_VFORK] = "start the worker",
    [ST_EXEC] = "exec the worker",
};

/* Everything the init needs from the server before clone3 (the init must not allocate). The
 * container's own settings come later, in an order (below). */
struct plan {
    bool trial;             /* the start-up probe: set everything up, then exit 0 */
    int status_fd;          /* write end of the status pipe */
    int ctl_fd;             /* the init's end of the order socket (-1 for the trial) */
    int procs_fd[MAX_HIER]; /* cgroup.procs to join (v1; v2 clones into the cgroup) */
    int nprocs;
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

/* mkdir -p of path (absolute) inside the new /tmp. 0 or -1. */
static int init_mkdirs(const char *path)
{
    char p[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof p)
        return -1;
    memcpy(p, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
            return -1;
        p[i] = c;
    }
    return 0;
}

/* Unblocks every signal (clone3's CLONE_CLEAR_SIGHAND already reset the server's handlers; the
 * signals it ignores, SIGPIPE, stay ignored in the init and are reset for the worker). */
static int init_default_signals(void)
{
    sigset_t none;
    sigemptyset(&none);
    return sigprocmask(SIG_SETMASK, &none, NULL);
}

/* The mounts: private, the host read-only, private /tmp (with the kept paths) and /dev/shm,
 * a /proc of the new pid namespace. */
static void init_mounts(int sfd)
{
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        init_fail(sfd, ST_PRIVATE);
    struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID};
    if (mount_setattr(-1, "/", AT_RECURSIVE, &ro, sizeof ro) < 0)
        init_fail(sfd, ST_READONLY);
    int trees[MAX_KEEP];
    for (int i = 0; i < S.nkeep; i++) {
        trees[i] =
            open_tree(AT_FDCWD, S.keep[i], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (trees[i] < 0)
            init_fail(sfd, ST_KEEP);
    }
    if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
        init_fail(sfd, ST_TMP);
    for (int i = 0; i < S.nkeep; i++) {
        if (init_mkdirs(S.keep[i]) < 0 ||
            move_mount(trees[i], "", AT_FDCWD, S.keep[i], MOVE_MOUNT_F_EMPTY_PATH) < 0)
            init_fail(sfd, ST_GRAFT);
        close(trees[i]);
    }
    if (mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0 &&
        errno != ENOENT)
        init_fail(sfd, ST_SHM);
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        init_fail(sfd, ST_PROC);
}

/* The worker's stdout and stderr as the order gave them (-1: the init's own stderr). */
static int order_out = -1, order_err = -1;

/* The worker, in the vfork child: stdin /dev/null, stdout and stderr to the server's log pipes
 * (as plain containers), the socket on fd 3 (placed there by the init), then exec. */
static __attribute__((noreturn)) void init_exec_worker(char *const *argv, char *const *envp)
{
    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, 0) < 0 || dup2(order_out >= 0 ? order_out : 2, 1) < 0 ||
        (order_err >= 0 && dup2(order_err, 2) < 0))
        init_fail(4, ST_FDS);
    if (null > 4)
        close(null);
    /* Default dispositions, as libuv gives plain containers. */
    for (int s = 1; s < 32; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL);
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
        char buf[CMSG_SPACE(3 * sizeof(int))];
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
    /* The socket, then (optionally) the worker's stdout and stderr. */
    int fds[3] = {-1, -1, -1};
    size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    if (nfds < 1 || nfds > 3)
        init_fail(4, ST_ORDER);
    memcpy(fds, CMSG_DATA(c), nfds * sizeof(int));
    int sock = fds[0];
    order_out = fds[1];
    order_err = fds[2];
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
    for (int i = 0; i < p->nprocs; i++) {
        if (write(5 + i, "0", 1) != 1)
            init_fail(4, ST_CGROUP);
        close(5 + i);
    }
    init_mounts(4);
    const char *host = "skiff-trial";
    char **argv = NULL, **envp = NULL;
    if (!p->trial)
        init_wait_order(&host, &argv, &envp);
    if (sethostname(host, strlen(host)) < 0)
        init_fail(4, ST_HOSTNAME);
    if (p->trial)
        _exit(0);
    pid_t worker = vfork();
    if (worker < 0)
        init_fail(4, ST_VFORK);
    if (worker == 0)
        init_exec_worker(argv, envp);
    close(3);
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
                         double cpu, char *errbuf, size_t errlen)
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
    if (h->kind == H_V2 && set_limit(dir, "memory.oom.group", "1", true, errbuf, errlen) < 0)
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
    sandbox_exit_cb cb;
    void *data;
    char dirs[MAX_HIER][PATH_MAX]; /* its cgroup in each hierarchy */
    int ndirs;
};

/* The next spare is made as soon as one is taken, so a container start finds its init already
 * in its namespaces and cgroup: joining a cgroup v1 costs a RCU grace period (~10 ms here), and
 * that wait then happens between starts instead of in one. */
static struct sandbox *spare;
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
    a.flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | SANDBOX_CLONE_PIDFD |
              SANDBOX_CLONE_CLEAR_SIGHAND;
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

/* Makes a sandbox whose init sets itself up and then waits for its order (trial: exits 0 once
 * set up). NULL on failure with errbuf set. */
static struct sandbox *prepare(bool trial, char *errbuf, size_t errlen)
{
    struct sandbox *sb = mem_calloc(1, sizeof *sb);
    if (!sb) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    sb->pidfd = sb->status_fd = sb->ctl_fd = -1;
    char name[32];
    snprintf(name, sizeof name, "%s-%u", trial ? "trial" : "spare", ++spare_seq);
    struct plan p = {.trial = trial, .ctl_fd = -1};
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
        (!trial && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0)) {
        e = errno;
        snprintf(errbuf, errlen, "pipe or socketpair: %s", strerror(e));
    } else {
        p.status_fd = pipefd[1];
        p.ctl_fd = ctl[1];
        sb->pid = clone_init(&p, v2 ? fds[0] : -1, &sb->pidfd);
        e = sb->pid < 0 ? errno : 0;
        if (sb->pid < 0)
            snprintf(errbuf, errlen, "cannot create the namespaces (clone3): %s", strerror(e));
    }
    for (int i = 0; i < S.nhier; i++)
        close(fds[i]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    if (ctl[1] >= 0)
        close(ctl[1]);
    sb->status_fd = pipefd[0];
    sb->ctl_fd = ctl[0];
    if (e || sb->pid < 0) {
        if (sb->status_fd >= 0)
            close(sb->status_fd);
        if (sb->ctl_fd >= 0)
            close(sb->ctl_fd);
        remove_dirs(sb);
        mem_free(sb);
        return NULL;
    }
    return sb;
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
        if (cgroup_limits(&S.hier[i], sb->dirs[i], sb->memory_mib, S.opts.pids, cpu, errbuf,
                          errlen) < 0)
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
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(3 * sizeof(int))];
    } cm;
    memset(&cm, 0, sizeof cm);
    int fds[3] = {sp->fd3, sp->fd1, sp->fd2};
    size_t nfds = sp->fd1 >= 0 && sp->fd2 >= 0 ? 3 : 1;
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
    if (!spare && !(spare = prepare(false, err, sizeof err)))
        log_warn("cannot prepare a spare container: %s", err);
}

struct sandbox *sandbox_start(uv_loop_t *loop, const struct sandbox_spawn *sp, sandbox_exit_cb cb,
                              void *data, int *pid, char *errbuf, size_t errlen)
{
    int memory_mib = sp->memory_mib > 0 ? sp->memory_mib : S.opts.memory_mib;
    double cpu = sp->cpu > 0 ? sp->cpu : S.opts.cpu;
    struct sandbox *sb = NULL;
    /* The spare, else a new one; a spare that died meanwhile is replaced once. */
    for (int attempt = 0; attempt < 2 && !sb; attempt++) {
        sb = spare;
        spare = NULL;
        if (!sb && !(sb = prepare(false, errbuf, errlen)))
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
    refill();
    return sb;
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

/* Adds the directory path to the kept paths if it lies under /tmp (resolved). */
static void keep_if_tmp(const char *path)
{
    char real[PATH_MAX];
    if (!path || !realpath(path, real) || strncmp(real, "/tmp/", 5) != 0)
        return;
    for (int i = 0; i < S.nkeep; i++) {
        size_t n = strlen(S.keep[i]);
        if (!strncmp(real, S.keep[i], n) && (real[n] == '/' || real[n] == '\0'))
            return; /* already inside a kept path */
    }
    if (S.nkeep < MAX_KEEP)
        snprintf(S.keep[S.nkeep++], PATH_MAX, "%s", real);
}

/* The host paths the worker needs that the private /tmp would hide. */
static void find_keep_paths(void)
{
    char buf[PATH_MAX];
    S.nkeep = 0;
    /* The worker's install prefix (bin/.. holds lib/ with libskiff.so). */
    if (realpath(S.opts.worker, buf)) {
        for (int up = 0; up < 2; up++) {
            char *slash = strrchr(buf, '/');
            if (slash && slash != buf)
                *slash = '\0';
        }
        keep_if_tmp(buf);
    }
    keep_if_tmp(S.opts.data_dir);
    if (S.opts.listen && !strncmp(S.opts.listen, "unix:", 5)) {
        snprintf(buf, sizeof buf, "%s", S.opts.listen + 5);
        char *slash = strrchr(buf, '/');
        if (slash && slash != buf)
            *slash = '\0';
        keep_if_tmp(buf);
    }
}

/* Runs one trial container that sets everything up and exits. NULL or why not. */
static const char *trial(char *why, size_t len)
{
    char err[512];
    struct sandbox *sb = prepare(true, err, sizeof err);
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
        find_keep_paths();
        no = trial(why, sizeof why);
    }
    if (no) {
        sandbox_deinit();
        log_warn("containers run as plain processes, without namespaces or cpu/memory/pids "
                 "limits: %s",
                 no);
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
    log_info("containers are sandboxed (pid, mount, ipc, uts namespaces; cgroup %s; defaults: %s; "
             "0 is unlimited)",
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
