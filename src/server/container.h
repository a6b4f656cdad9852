/*
 * container.h - container processes: starting skiff-worker, talking to it, stopping it.
 *
 * A container is a skiff-worker process with one end of a socket pair on its fd 3 (docs/
 * protocol.md, "Container operations"). This module owns the process and the socket, and the
 * container's side of the input bookkeeping: the inputs it holds (sent, not yet finished), their
 * slots, and the batching of W_INPUTS frames (inputs given to a container during one loop
 * iteration leave in one frame, at container_flush_all). A container of a snapshot class's
 * pool is forked from the pool's template instead of started (template.h). Policy (which input runs
 * where, when to stop, what a lost input becomes) is sched.c's, which it tells about every event.
 */
#ifndef SKIFF_SERVER_CONTAINER_H
#define SKIFF_SERVER_CONTAINER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "common/id.h"
#include "common/list.h"

struct auth_token;
struct conn;
struct function;
struct input;
struct sandbox;

enum container_state { CT_STARTING, CT_IDLE, CT_BUSY, CT_STOPPING };

/* A cancelled input's slot: the worker still owes its output, which will be ignored. */
struct zombie {
    uint32_t slot;
    uint64_t deadline; /* loop ms: the container is killed if the input is still running then */
};

struct container {
    char id[ID_SIZE];
    struct function *fn;
    int version; /* the deployment whose code it runs */
    enum container_state state;
    int pid;
    int64_t started;   /* unix ms */
    uint64_t start_ns; /* uv_hrtime at its start, until it is ready (metrics.c) */
    uv_process_t proc;
    struct conn *conn; /* its socket; NULL once closed */
    uv_timer_t timer;  /* the earliest deadline of what it holds, or the idle window */
    bool exited;       /* the process has exited */
    bool killed;       /* we sent SIGKILL */
    bool crashed;      /* W_CRASH named crash_slot */
    uint32_t crash_slot;
    char *crash_message;   /* from W_CRASH */
    int handles;           /* open libuv handles; freed at 0 */
    char *exit_reason;     /* why we stopped it, for the inputs it held */
    char *end_why;         /* set while its exit waits for its socket's last messages */
    int end_sig;           /* the signal that ended it (with end_why) */
    uint32_t next_slot;    /* slots are never reused within a container */
    struct list_node held; /* inputs sent and not finished (struct input.link), oldest first */
    int n_held;
    int n_unsent;           /* the last n_unsent of held go out at the next flush */
    struct zombie *zombies; /* cancelled inputs whose output is still due */
    int n_zombies, cap_zombies;
    uv_pipe_t output[2];     /* its stdout and stderr, read into logs.c */
    bool output_open[2];     /* still being read */
    struct buf log_part[2];  /* an unfinished line of each (logs.c) */
    bool log_marks;          /* W_LOG_MARKS sent: the worker announces each input (W_STARTED) */
    bool log_marked;         /* a W_STARTED arrived: lines are log_input's (logs.c) */
    char log_input[ID_SIZE]; /* the input the last W_STARTED named, "" for none (a batch) */
    char log_fn[128];        /* its function (a class's method), "" for the container's own */
    size_t log_cut[2];       /* bytes of that line past the line limit, not kept (logs.c) */
    struct sandbox *sandbox; /* its namespaces and cgroup (sandbox.h), or NULL: a plain process */
    int exit_code;           /* the error for the inputs it held when it died: 0 (RemoteError),
                                or SKIFF_ERR_OUT_OF_MEMORY when it exceeded its memory limit */
    bool forked;             /* forked from its pool's snapshot template (template.h), whose
                                messages give its pid and its exit */
    bool sandboxed;          /* in a sandbox: its own (sandbox) or its template's */
    struct template *tmpl;   /* that template while it may still report on it, or NULL */
    struct list_node tmpl_link;
    struct list_node fn_link;
    struct list_node all_link;
    struct list_node dirty_link; /* on the flush list while n_unsent > 0 */
    /* Its own token (auth.h), revoked when its process ends. */
    struct auth_token *token;
};

struct container_env {
    const char *worker; /* path of skiff-worker */
    const char *server_addr;
    const char *token_id; /* the token the worker gets: each container's own */
    const char *token_secret;
    size_t payload_max; /* told to the worker: results over it are RequestSizeErrors */
    size_t max_frame;
};

/* Starts a container for fn's current version. NULL on failure (logged), with its cause in
 * err[0..errlen) (e.g. "socketpair: Too many open files"). */
struct container *container_start(uv_loop_t *loop, const struct container_env *env,
                                  struct function *fn, const char *code_path, char *err,
                                  size_t errlen);
/* Gives the container an input (it joins held and gets a slot); it leaves with the next
 * container_flush_all. */
void container_give(struct container *ct, struct input *in);
/* Takes in (held by ct) back: it is no longer the container's. */
void container_take_back(struct container *ct, struct input *in);
/* The held input with that slot, or NULL. */
struct input *container_held(struct container *ct, uint32_t slot);
/* Tells the worker a held input was cancelled (W_CANCEL) and takes it back; the slot stays a
 * zombie until its output arrives or grace_ms pass (then sched kills the container). */
void container_cancel(struct container *ct, struct input *in, uint64_t grace_ms);
/* Forgets a zombie slot; true if slot was one. */
bool container_forget_zombie(struct container *ct, uint32_t slot);
/* Sends every container's pending inputs (once per loop iteration). */
void container_flush_all(void);
/* Asks the container to finish and exit (W_STOP), killing it if it lingers. */
void container_stop(struct container *ct);
/* Kills the container now (SIGKILL); reason is reported to the inputs it holds. */
void container_kill(struct container *ct, const char *reason);

/* A forked container's process is pid (the template forked it). */
void container_forked_pid(struct container *ct, int pid);
/* A forked container's process ended: status is its exit status (-1: none), sig the signal that
 * killed it (0: none); reason (or NULL) says why when the template cannot tell (it died). */
/* A forked container was killed by the kernel's OOM killer in its template's cgroup, whose
 * memory limit is memory_mib (MiB, 0: none): it ends as a sandboxed one out of memory does. */
void container_forked_oom(struct container *ct, int memory_mib);
void container_forked_exited(struct container *ct, int64_t status, int sig, const char *reason);
/* Spawns skiff-worker (env->worker) with args and envp: its fd 3 is the socket of sock (made by
 * uv_spawn), its stdout and stderr pipes it makes into out[0] and out[1], or with out NULL the
 * server's stderr. 0 or a libuv error (then proc needs closing all the same). */
int container_spawn(uv_loop_t *loop, uv_process_t *proc, uv_exit_cb exit_cb,
                    const struct container_env *env, char **args, char **envp, struct conn *sock,
                    uv_pipe_t *out);
/* The worker's environment for the container or template id running fn (NULL: no secrets):
 * the minimal set (PATH, LANG, HOME, TZ), the runtime's settings passed on from the server's
 * environment (SKIFF_LOG, SKIFF_PYTHON, the sanitizers' options), the SKIFF_* it must get from
 * us (docs/protocol.md), and the pairs of fn's secrets; nothing else of the server's
 * environment (docs/security.md). A mem_alloc'd array holding its strings too (free it alone),
 * or NULL with the reason in why (a secret that no longer exists, out of memory). */
char **container_make_env(const struct container_env *env, const struct function *fn,
                          const char *id, char *why, size_t whylen);

/* Every container, for listings. */
struct container *container_next(struct container *prev);
const char *container_state_name(enum container_state st);

#endif
