/*
 * attacker.c - the app tests/security/escape.sh deploys (app "sec-attacker"): from inside a real
 * container it tries each way out of the sandbox that was once found to work, and the normal
 * things a function must still be able to do, and returns what happened as a map of name ->
 * outcome ("ok", or the name of the errno: "EPERM", "ENOENT", "EROFS"...), plus what
 * /proc/self/status and /proc/self/uid_map say. The same probe runs in a plain function and in a
 * method of a class whose enter_snap hook makes its containers forks of a snapshot template.
 */
#define _GNU_SOURCE /* setns, unshare, the CLONE_NEW* flags */
#include <errno.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <skiff/app.h>

SKIFF_APP("sec-attacker");

/* "ok" when ok, else the name of errno. */
static const char *outcome(bool ok)
{
    if (ok)
        return "ok";
    switch (errno) {
    case EPERM:
        return "EPERM";
    case EACCES:
        return "EACCES";
    case ENOENT:
        return "ENOENT";
    case EROFS:
        return "EROFS";
    case ESRCH:
        return "ESRCH";
    case EINVAL:
        return "EINVAL";
    case ENOSYS:
        return "ENOSYS";
    case EBUSY:
        return "EBUSY";
    default:
        return strerror(errno);
    }
}

static void put(skiff_value *m, const char *key, const char *what)
{
    skiff_map_set(m, key, skiff_value_string(what));
}

/* The value of the field `name:` of /proc/self/status (tabs and spaces trimmed), or "?". */
static void status_field(skiff_value *m, const char *status, const char *name, const char *key)
{
    char want[64];
    snprintf(want, sizeof want, "\n%s:", name);
    const char *p = strstr(status, want);
    char val[128] = "?";
    if (p) {
        p += strlen(want);
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strcspn(p, "\n");
        snprintf(val, sizeof val, "%.*s", (int)(n < sizeof val ? n : sizeof val - 1), p);
        for (char *c = val; *c; c++)
            if (*c == '\t')
                *c = ' ';
    }
    put(m, key, val);
}

/* Reads up to size-1 bytes of path into buf. Bytes read, or -1. */
static ssize_t slurp(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, size - 1);
    int e = errno;
    close(fd);
    errno = e;
    buf[n > 0 ? n : 0] = '\0';
    return n;
}

/* Opening path for writing: "ok" (it opened) or why not. */
static const char *open_write(const char *path)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0)
        close(fd);
    return outcome(fd >= 0);
}

/* Creating path: "ok" (created, then removed) or why not. */
static const char *create(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return outcome(false);
    close(fd);
    unlink(path);
    return "ok";
}

static void *thread_main(void *arg)
{
    return arg;
}

/* fork + exec of /bin/sh -c CMD, its stdout (first line) into out. "ok" or why not. */
static const char *run_sh(const char *cmd, char *out, size_t size)
{
    int p[2];
    out[0] = '\0';
    if (pipe(p) < 0)
        return outcome(false);
    pid_t pid = fork();
    if (pid < 0)
        return outcome(false);
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    ssize_t n = read(p[0], out, size - 1);
    out[n > 0 ? n : 0] = '\0';
    out[strcspn(out, "\n")] = '\0';
    close(p[0]);
    int status;
    waitpid(pid, &status, 0);
    errno = ECHILD;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : "failed";
}

/* Connecting to the abstract unix socket name (made on the host): "ok" or why not. */
static const char *connect_abstract(const char *name)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t n = strlen(name);
    if (n + 1 > sizeof a.sun_path)
        n = sizeof a.sun_path - 1;
    memcpy(a.sun_path + 1, name, n); /* sun_path[0] stays 0: abstract */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return outcome(false);
    int rc = connect(fd, (struct sockaddr *)&a,
                     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n));
    int e = errno;
    close(fd);
    errno = e;
    return outcome(rc == 0);
}

/* Every probe; data: the server's data directory on the host, server_pid: its host pid,
 * host_file: a file of the host's /tmp, abstract: an abstract unix socket listening on the
 * host. */
static skiff_value *run_probes(const char *data, int64_t server_pid, const char *host_file,
                               const char *abstract)
{
    skiff_value *m = skiff_value_map();
    char buf[8192], path[512];

    /* Who we are. */
    if (slurp("/proc/self/status", buf + 1, sizeof buf - 1) > 0) {
        buf[0] = '\n';
        status_field(m, buf, "CapEff", "cap_eff");
        status_field(m, buf, "CapPrm", "cap_prm");
        status_field(m, buf, "CapInh", "cap_inh");
        status_field(m, buf, "CapBnd", "cap_bnd");
        status_field(m, buf, "CapAmb", "cap_amb");
        status_field(m, buf, "NoNewPrivs", "no_new_privs");
        status_field(m, buf, "Seccomp", "seccomp");
        status_field(m, buf, "Uid", "uid");
    }
    static const char *const maps[][2] = {{"/proc/self/uid_map", "uid_map"},
                                          {"/proc/self/gid_map", "gid_map"}};
    for (int i = 0; i < 2; i++) {
        /* "inside outside count" per line, in one line with single spaces ("+" between lines) */
        char line[256] = "";
        if (slurp(maps[i][0], buf, sizeof buf) > 0)
            for (char *save, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                unsigned long a, b, c;
                if (sscanf(l, "%lu %lu %lu", &a, &b, &c) == 3)
                    snprintf(line + strlen(line), sizeof line - strlen(line), "%s%lu %lu %lu",
                             line[0] ? "+" : "", a, b, c);
            }
        put(m, maps[i][1], line);
    }

    /* Mounts: none may change. */
    put(m, "umount_proc", outcome(umount2("/proc", MNT_DETACH) == 0));
    put(m, "mount_tmpfs", outcome(mount("tmpfs", "/tmp", "tmpfs", 0, NULL) == 0));
    put(m, "remount_rw", outcome(mount(NULL, "/usr", NULL, MS_REMOUNT | MS_BIND, NULL) == 0));
    put(m, "pivot_root", outcome(syscall(SYS_pivot_root, "/tmp", "/tmp") == 0));
    put(m, "chroot", outcome(chroot("/tmp") == 0));

    /* The server's namespaces (nsenter): its pid is not even there, and setns is refused. */
    snprintf(path, sizeof path, "/proc/%lld/ns/mnt", (long long)server_pid);
    int nsfd = open(path, O_RDONLY | O_CLOEXEC);
    put(m, "server_ns", outcome(nsfd >= 0));
    if (nsfd >= 0)
        close(nsfd);
    put(m, "server_pid_visible", outcome(kill((pid_t)server_pid, 0) == 0));
    nsfd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    put(m, "setns", outcome(nsfd >= 0 && setns(nsfd, 0) == 0));
    if (nsfd >= 0)
        close(nsfd);
    put(m, "nsenter", run_sh("nsenter -t 1 -m true 2>/dev/null", buf, sizeof buf));

    /* The kernel's settings and secrets. */
    put(m, "core_pattern", open_write("/proc/sys/kernel/core_pattern"));
    put(m, "sysrq_trigger", open_write("/proc/sysrq-trigger"));
    ssize_t kcore = slurp("/proc/kcore", buf, 64);
    put(m, "kcore", kcore > 0 ? "readable" : kcore == 0 ? "empty" : outcome(false));
    ssize_t keys = slurp("/proc/keys", buf, 64);
    put(m, "proc_keys", keys > 0 ? "readable" : keys == 0 ? "empty" : outcome(false));

    /* The host's files. */
    put(m, "shadow", outcome(access("/etc/shadow", F_OK) == 0));
    put(m, "gshadow", outcome(access("/etc/gshadow", F_OK) == 0));
    put(m, "data_dir", outcome(access(data, F_OK) == 0));
    snprintf(path, sizeof path, "%s/skiff.db", data);
    put(m, "skiff_db", outcome(slurp(path, buf, 16) >= 0));
    put(m, "host_tmp_file", outcome(access(host_file, F_OK) == 0));
    put(m, "write_usr", create("/usr/sec-attacker"));
    put(m, "write_root", create("/sec-attacker"));
    put(m, "write_etc", create("/etc/sec-attacker"));

    /* System calls the seccomp filter refuses. */
    errno = 0;
    put(m, "ptrace", outcome(ptrace(PTRACE_ATTACH, 1, NULL, NULL) == 0));
    put(m, "unshare", outcome(unshare(CLONE_NEWUSER) == 0));
    put(m, "unshare_ns", outcome(unshare(CLONE_NEWNS) == 0));
    put(m, "bpf", outcome(syscall(SYS_bpf, 0, NULL, 0) == 0));
    put(m, "keyctl",
        outcome(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0) >= 0));
    put(m, "add_key", outcome(syscall(SYS_add_key, "user", "k", "v", 1, -3) >= 0));
    put(m, "perf_event_open", outcome(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0) >= 0));
    put(m, "userfaultfd", outcome(syscall(SYS_userfaultfd, 0) >= 0));
    put(m, "open_by_handle_at", outcome(syscall(SYS_open_by_handle_at, -1, NULL, 0) >= 0));
    put(m, "kexec_load", outcome(syscall(SYS_kexec_load, 0, 0, NULL, 0) == 0));
    put(m, "init_module", outcome(syscall(SYS_init_module, NULL, 0, "") == 0));
    put(m, "personality", outcome(personality(ADDR_NO_RANDOMIZE) != -1));
    put(m, "clone_newns",
        outcome(syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, NULL, NULL, NULL, 0) >= 0));
    put(m, "io_uring", outcome(syscall(SYS_io_uring_setup, 1, buf) >= 0));

    /* Abstract unix sockets are the network namespace's, which containers share with the host:
     * Landlock (where the kernel has its scopes) keeps the host's out of reach. */
    put(m, "abstract_socket", connect_abstract(abstract));

    /* What functions need. */
    put(m, "write_tmp", create("/tmp/sec-attacker"));
    pthread_t th;
    put(m, "thread",
        outcome(pthread_create(&th, NULL, thread_main, NULL) == 0 && pthread_join(th, NULL) == 0));
    char said[256];
    const char *sh = run_sh("echo from-sh", said, sizeof said);
    put(m, "sh", !strcmp(sh, "ok") && !strcmp(said, "from-sh") ? "ok" : "failed");
    put(m, "passwd",
        slurp("/etc/passwd", buf, sizeof buf) > 0 && strstr(buf, "root:") ? "ok" : "failed");
    put(m, "urandom", outcome(slurp("/dev/urandom", buf, 17) == 16));
    put(m, "dev_null", open_write("/dev/null"));
    return m;
}

/* The probe, from a plain function's container. */
static int escape(skiff_ctx *ctx, skiff_value **out)
{
    *out = run_probes(skiff_arg_string(ctx, "data"), skiff_arg_int(ctx, "server_pid"),
                      skiff_arg_string(ctx, "host_file"), skiff_arg_string(ctx, "abstract"));
    return 0;
}
SKIFF_FUNCTION(escape, .signature = "data:str, server_pid:int, host_file:str, abstract:str");

/* A class whose containers are forks of a snapshot template (its enter_snap hook). */
struct snapped {
    int64_t built;
};

static int build(skiff_ctx *ctx)
{
    struct snapped *self = skiff_self(ctx);
    self->built = (int64_t)getpid();
    return 0;
}
SKIFF_CLASS(Snapped, struct snapped, .params = "tag:str", .enter_snap = {build});

/* The probe, from a container forked from the template, plus the template's pid ("snap_pid",
 * which the fork inherited) and its own. */
static int escape_fork(skiff_ctx *ctx, skiff_value **out)
{
    struct snapped *self = skiff_self(ctx);
    skiff_value *m =
        run_probes(skiff_arg_string(ctx, "data"), skiff_arg_int(ctx, "server_pid"),
                   skiff_arg_string(ctx, "host_file"), skiff_arg_string(ctx, "abstract"));
    skiff_map_set(m, "snap_pid", skiff_value_int(self->built));
    skiff_map_set(m, "pid", skiff_value_int(getpid()));
    *out = m;
    return 0;
}
SKIFF_METHOD(Snapped, escape_fork,
             .signature = "data:str, server_pid:int, host_file:str, abstract:str");

/* A class of forked containers with a memory limit: 128 MiB each, so 256 MiB for the template's
 * cgroup, which it shares with its one container (max_containers 1). */
struct hog {
    int64_t built;
};

static int hog_build(skiff_ctx *ctx)
{
    struct hog *self = skiff_self(ctx);
    self->built = 1;
    return 0;
}
SKIFF_CLASS(Hog, struct hog, .params = "tag:str", .enter_snap = {hog_build}, .memory = 128,
            .max_containers = 1);

/* Allocates and touches mib MiB, then returns mib. */
static int eat(skiff_ctx *ctx, skiff_value **out)
{
    int64_t mib = skiff_arg_int(ctx, "mib");
    for (int64_t i = 0; i < mib; i++) {
        char *block = malloc(1 << 20);
        if (!block)
            return skiff_raise(ctx, "MemoryError", "malloc failed after %lld MiB", (long long)i);
        memset(block, 1, 1 << 20); /* kept: the memory stays in use until the container ends */
    }
    *out = skiff_value_int(mib);
    return 0;
}
SKIFF_METHOD(Hog, eat, .signature = "mib:int");
