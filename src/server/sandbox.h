/*
 * sandbox.h - container isolation: namespaces, a read-only host, a private /tmp and cgroup limits.
 *
 * A sandboxed container is a small init process (pid 1 of a new pid namespace, in new user, mount,
 * ipc and uts namespaces, inside a cgroup of its own that holds the container's cpu, memory and
 * pids limits) and the worker it forks as pid 2: root of its user namespace but an unprivileged
 * uid on the host, without capabilities, with no_new_privs and a seccomp filter, in a new root
 * (pivot_root) that holds only what functions need. A snapshot template runs in one too, and the
 * containers it forks inherit all of it. The server watches the init through a pidfd; the init
 * reaps everything in the namespace and, when the worker ends, reports the worker's wait status
 * and exits, which takes every other process of the namespace with it. Where the server lacks
 * what this needs (root, cgroup controllers, user namespaces...), sandbox_init says so once,
 * loudly, and containers run as plain processes (container.c, uv_spawn) with no_new_privs.
 */
#ifndef SKIFF_SERVER_SANDBOX_H
#define SKIFF_SERVER_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* The operator's settings (skiffd options). */
struct sandbox_opts {
    bool disabled;        /* --no-sandbox: plain processes, no probing */
    int memory_mib;       /* --container-memory: default memory limit, 0 unlimited */
    int pids;             /* --container-pids: processes and threads per container, 0 unlimited */
    double cpu;           /* --container-cpu: default cpu limit in cores, 0 unlimited */
    const char *data_dir; /* the data directory (app code lives there) */
    const char *worker;   /* path of skiff-worker */
    const char *listen;   /* the server's listen address (a unix socket stays reachable) */
    unsigned uid;         /* --container-uid: host uid and gid of the containers' root (0: the
                             default, SANDBOX_DEFAULT_UID) */
};

/* The host uid (and gid) of a container's root: unprivileged, above the range of real users
 * and system accounts, as Docker's user namespace remapping starts there. */
#define SANDBOX_DEFAULT_UID 100000u

/* A sandboxed worker finds the app's code (a sealed copy in memory) on this descriptor and
 * loads it by this path (container.c and template.c pass it as --code). */
#define SANDBOX_CODE_FD 4
#define SANDBOX_CODE_PATH "/proc/self/fd/4"

/* The default pids limit: generous for threads and helpers, small enough to stop a fork bomb. */
#define SANDBOX_DEFAULT_PIDS 512

/* Probes what sandboxing needs (root, cgroup v1 or v2 with the memory, pids and cpu
 * controllers, the namespaces, mount_setattr) by starting a trial sandbox, creates the server's
 * cgroup tree, and removes trees left by servers that were killed. Logs one line saying whether
 * containers are sandboxed and, if not, why. Returns true when containers will be sandboxed;
 * never fails the server. Borrows opts' strings until sandbox_deinit. */
bool sandbox_init(const struct sandbox_opts *opts);
/* Removes the spare container and the server's cgroup tree (containers must be gone). Safe
 * without sandbox_init and more than once; also registered with atexit by sandbox_init, so an
 * early exit of the server cleans up too (only in the process that made the tree). */
void sandbox_deinit(void);
/* True when containers are sandboxed (sandbox_init succeeded). */
bool sandbox_enabled(void);

struct sandbox;

/* How a sandboxed container ended: the worker's exit status or signal (as uv_process_t's exit
 * callback reports them), whether the kernel killed something in it for exceeding its memory
 * limit (then memory_mib is that limit), and setup_error: why the sandbox could not be set up,
 * or NULL. Valid during the callback only. */
struct sandbox_exit {
    int64_t status;
    int sig;
    bool oom;
    int memory_mib;
    const char *setup_error;
};
typedef void (*sandbox_exit_cb)(struct sandbox *sb, const struct sandbox_exit *ex, void *data);

/* A volume: the host directory src (in the data directory) bound read-write at dst (an
 * absolute path, common/resources.h) in the container's root. */
struct sandbox_volume {
    const char *src;
    const char *dst;
};
/* The most volumes a container mounts. */
#define SANDBOX_MAX_VOLUMES 8

/* What to start: the worker's argv and envp (borrowed for the call), the socket end to put on
 * its fd 3 (borrowed; the caller closes its copy), and the function's limits (0: the operator's
 * default). */
struct sandbox_spawn {
    const char *id; /* the container id: its cgroup's and hostname's name */
    char *const *argv;
    char *const *envp;
    int fd3;          /* the worker's socket to the server */
    int fd1, fd2;     /* its stdout and stderr (the write ends of the server's log pipes), or -1 */
    const char *code; /* the app's code file (host path), handed over on SANDBOX_CODE_FD */
    double cpu;
    int memory_mib;
    int pids;  /* the pids limit, 0: the operator's */
    int share; /* how many containers the limits are for (0 or 1: this one): a snapshot template
                  and the containers it forks share its cgroup, whose limits are then share
                  times a container's, and one OOM kill takes one process, not the group (v2's
                  memory.oom.group stays 0) */
    const struct sandbox_volume *volumes; /* bound read-write in its root (a container with
                                             volumes is made for it: never the spare) */
    int nvolumes;
};
/* The largest share (sandbox_spawn) a sandbox's limits are multiplied by. */
#define SANDBOX_MAX_SHARE 64

/* NULL when a volume may be mounted at dst in a container's root, else why not: dst is, holds
 * or lies in a path the root binds from the host (the runtime, the system). */
const char *sandbox_volume_problem(const char *dst, char *why, size_t whylen);

/* Starts a sandboxed container. On success returns the sandbox with *pid set to the init's pid
 * (as the server sees it); exit_cb(data) runs once when it has ended, after which the caller
 * must call sandbox_free. NULL on failure, with the reason in errbuf (nothing is left behind;
 * exit_cb is never called). */
struct sandbox *sandbox_start(uv_loop_t *loop, const struct sandbox_spawn *sp, sandbox_exit_cb cb,
                              void *data, int *pid, char *errbuf, size_t errlen);
/* The host pid of the process that is ns_pid in the sandbox's pid namespace (a container its
 * snapshot template forked), found among the processes of its cgroup; -1 if there is none. */
int sandbox_host_pid(const struct sandbox *sb, int ns_pid);
/* The kernel's OOM kills so far in the sandbox's memory cgroup, and its memory limit in MiB
 * (0: none). */
long sandbox_oom_kills(const struct sandbox *sb);
int sandbox_memory_mib(const struct sandbox *sb);
/* Kills every process of the sandbox (SIGKILL). Its exit callback follows. */
void sandbox_kill(struct sandbox *sb);
/* The memory (bytes) and CPU time (microseconds) sb's cgroup has used so far, each -1 when it
 * cannot be read (sb NULL: a plain process, or a container forked into its template's). */
void sandbox_usage(const struct sandbox *sb, long long *memory_bytes, long long *cpu_us);
/* Releases a sandbox after its exit callback (closes its handle, removes its cgroup). */
void sandbox_free(struct sandbox *sb);

#endif
