/*
 * container.h - container processes: starting skiff-worker, talking to it, stopping it.
 *
 * A container is a skiff-worker process with one end of a socket pair on its fd 3 (docs/
 * protocol.md, "Container operations"). This module owns the process and the socket; policy
 * (which input runs where, when to stop) is sched.c's, which it tells about every event.
 */
#ifndef SKIFF_SERVER_CONTAINER_H
#define SKIFF_SERVER_CONTAINER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/id.h"
#include "common/list.h"

struct call;
struct conn;
struct function;
struct sandbox;

enum container_state { CT_STARTING, CT_IDLE, CT_BUSY, CT_STOPPING };

struct container {
    char id[ID_SIZE];
    struct function *fn;
    int version; /* the deployment whose code it runs */
    enum container_state state;
    int pid;
    int64_t started;      /* unix ms */
    struct call *running; /* the input it runs (CT_BUSY) */
    uv_process_t proc;
    struct conn *conn;       /* its socket; NULL once closed */
    uv_timer_t timer;        /* the running input's deadline, or the idle window */
    bool exited;             /* the process has exited */
    bool killed;             /* we sent SIGKILL */
    int handles;             /* open libuv handles; freed at 0 */
    char *exit_reason;       /* why it stopped, for the input it ran */
    struct sandbox *sandbox; /* its namespaces and cgroup (sandbox.h), or NULL: a plain process */
    int exit_code;           /* the error for the input it ran when it died: 0 (RemoteError), or
                                SKIFF_ERR_OUT_OF_MEMORY when it exceeded its memory limit */
    struct list_node fn_link;
    struct list_node all_link;
};

struct container_env {
    const char *worker; /* path of skiff-worker */
    const char *server_addr;
    const char *token_id;
    const char *token_secret;
    size_t payload_max; /* told to the worker: results over it are RequestSizeErrors */
    size_t max_frame;
};

/* Starts a container for fn's current version. NULL on failure (logged). */
struct container *container_start(uv_loop_t *loop, const struct container_env *env,
                                  struct function *fn, const char *code_path);
/* Sends the input of call. 0 or -1 (the container is then being stopped). */
int container_send_input(struct container *ct, struct call *call);
/* Asks the container to finish and exit (W_STOP), killing it if it lingers. */
void container_stop(struct container *ct);
/* Kills the container now (SIGKILL); reason is reported to its running input. */
void container_kill(struct container *ct, const char *reason);

/* Every container, for listings. */
struct container *container_next(struct container *prev);
const char *container_state_name(enum container_state st);

#endif
