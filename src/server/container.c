/*
 * container.c - container processes (see container.h).
 *
 * A container's process is either a plain child (uv_spawn, which also makes the socket pair),
 * or, when the server can sandbox (sandbox.h), an init in its own namespaces and cgroup that
 * runs the worker; then the socket pair is made here. Both end in process_ended, which names
 * the cause (a signal, an exit status, the memory limit, our own kill) for the running input.
 */
#include "container.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "apps.h"
#include "calls.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/proto.h"
#include "conn.h"
#include "sandbox.h"
#include "sched.h"
#include "store.h"

extern char **environ;

/* How long a container asked to stop may take before it is killed. */
#define STOP_GRACE_MS 5000
/* How long a container whose socket closed may take to exit on its own before it is killed:
 * enough for the kernel to deliver a crashed worker's status, short enough not to hold an input. */
#define SOCKET_GONE_GRACE_MS 1000

static struct list_node all = {&all, &all};

const char *container_state_name(enum container_state st)
{
    static const char *const names[] = {"starting", "idle", "busy", "stopping"};
    return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "unknown";
}

struct container *container_next(struct container *prev)
{
    struct list_node *n = prev ? prev->all_link.next : all.next;
    return n == &all ? NULL : container_of(n, struct container, all_link);
}

static void handle_closed(uv_handle_t *h)
{
    struct container *ct = h->data;
    if (--ct->handles == 0) {
        mem_free(ct->exit_reason);
        mem_free(ct);
    }
}

/* --- messages from the worker ----------------------------------------------------------------- */

static void on_frame(struct conn *c, struct wire_msg *m)
{
    struct container *ct = c->owner;
    switch (m->op) {
    case OP_W_READY: {
        int64_t pid = 0;
        wire_get_int(m, "pid", &pid);
        log_debug("container %s ready (pid %d)", ct->id, (int)pid);
        sched_container_ready(ct);
        return;
    }
    case OP_W_OUTPUT: {
        char input_id[ID_SIZE];
        const char *value;
        size_t len;
        if (!wire_copy_str(m, "input_id", input_id, sizeof input_id))
            break;
        if (wire_get_bin(m, "value", &value, &len)) {
            sched_container_output(ct, input_id, value, len, NULL);
            return;
        }
        skiff_error err = SKIFF_ERROR_INIT;
        wire_get_error(m, &err);
        if (err.code == SKIFF_OK)
            err.code = SKIFF_ERR_USER;
        sched_container_output(ct, input_id, NULL, 0, &err);
        skiff_error_clear(&err);
        return;
    }
    case OP_W_INIT_FAILED: {
        skiff_error err = SKIFF_ERROR_INIT;
        wire_get_error(m, &err);
        err.code = SKIFF_ERR_INIT_FAILURE;
        log_warn("container %s (%s.%s) failed to start: %s", ct->id, ct->fn->app->name,
                 ct->fn->name, err.message);
        sched_container_init_failed(ct, &err);
        skiff_error_clear(&err);
        return;
    }
    default:
        break;
    }
    log_warn("container %s sent an unexpected message (op %d): killing it", ct->id, m->op);
    container_kill(ct, "it broke the container protocol");
}

static void socket_gone_overdue(uv_timer_t *t)
{
    container_kill(t->data, "its socket closed");
}

static void on_conn_close(struct conn *c)
{
    struct container *ct = c->owner;
    ct->conn = NULL;
    if (ct->exited)
        return;
    /* The socket is gone: the worker cannot get or return inputs any more. A worker that
     * crashed closes its socket a moment before its exit status arrives; wait for that status
     * (it names the signal) and kill the process only if it lingers. */
    sched_container_lost(ct);
    uv_timer_start(&ct->timer, socket_gone_overdue, SOCKET_GONE_GRACE_MS, 0);
}

static const struct conn_ops container_ops = {on_frame, on_conn_close};
/* For the socket of a container that never started. */
static const struct conn_ops detached_ops = {NULL, NULL};

/* --- process ---------------------------------------------------------------------------------- */

/* The end of a container's process, plain or sandboxed: why it ended (for its running input),
 * then the scheduler is told and the process handles are closed. ex: how a sandbox ended, or
 * NULL for a plain process. */
static void process_ended(struct container *ct, int64_t status, int sig,
                          const struct sandbox_exit *ex)
{
    ct->exited = true;
    char why[512];
    if (ex && ex->oom) {
        ct->exit_code = SKIFF_ERR_OUT_OF_MEMORY;
        if (ex->memory_mib > 0)
            snprintf(why, sizeof why,
                     "the container ran out of memory: it exceeded its limit of %d MiB and was "
                     "killed",
                     ex->memory_mib);
        else
            snprintf(why, sizeof why,
                     "the container ran out of memory (it has no limit of its own: the host "
                     "had none left) and was killed");
    } else if (ct->exit_reason) {
        snprintf(why, sizeof why, "the container was stopped because %s", ct->exit_reason);
    } else if (ex && ex->setup_error) {
        snprintf(why, sizeof why, "%s", ex->setup_error);
    } else if (sig) {
        snprintf(why, sizeof why, "the container was killed by signal %d (%s)", sig,
                 strsignal(sig));
    } else {
        snprintf(why, sizeof why, "the container exited with status %d", (int)status);
    }
    if (ex && (ex->oom || ex->setup_error))
        log_warn("container %s (%s.%s, pid %d) ended: %s", ct->id, ct->fn->app->name, ct->fn->name,
                 ct->pid, why);
    else
        log_debug("container %s (pid %d) ended: %s", ct->id, ct->pid, why);
    if (ct->conn)
        conn_close(ct->conn);
    uv_timer_stop(&ct->timer);
    list_remove(&ct->all_link);
    sched_container_exited(ct, why);
    if (ct->sandbox) {
        sandbox_free(ct->sandbox);
        ct->sandbox = NULL;
    } else {
        uv_close((uv_handle_t *)&ct->proc, handle_closed);
    }
    uv_close((uv_handle_t *)&ct->timer, handle_closed);
}

static void on_process_exit(uv_process_t *p, int64_t status, int sig)
{
    process_ended(p->data, status, sig, NULL);
}

static void on_sandbox_exit(struct sandbox *sb, const struct sandbox_exit *ex, void *data)
{
    (void)sb;
    process_ended(data, ex->status, ex->sig, ex);
}

/* The worker's environment: ours without any SKIFF_* the worker must get from us, plus those. */
static char **make_env(const struct container_env *env, const struct container *ct, char *store,
                       size_t size)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **out = mem_calloc(n + 8, sizeof *out);
    if (!out)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "SKIFF_SERVER=", 13) && strncmp(environ[i], "SKIFF_TOKEN_", 12) &&
            strncmp(environ[i], "SKIFF_CONTAINER_ID=", 19) &&
            strncmp(environ[i], "SKIFF_PAYLOAD_MAX=", 18))
            out[k++] = environ[i];
    int used = snprintf(store, size,
                        "SKIFF_SERVER=%s%cSKIFF_TOKEN_ID=%s%cSKIFF_TOKEN_SECRET=%s%c"
                        "SKIFF_CONTAINER_ID=%s%cSKIFF_PAYLOAD_MAX=%zu%c",
                        env->server_addr, 0, env->token_id, 0, env->token_secret, 0, ct->id, 0,
                        env->payload_max, 0);
    if (used < 0 || (size_t)used >= size) {
        mem_free(out);
        return NULL;
    }
    for (char *p = store; p < store + used; p += strlen(p) + 1)
        out[k++] = p;
    out[k] = NULL;
    return out;
}

/* Starts the worker as a plain child process (uv_spawn, which makes the socket pair). 0 or a
 * libuv error; on error the process handle needs closing unless it is UV_ENOMEM from us. */
static int spawn_plain(uv_loop_t *loop, struct container *ct, const struct container_env *env,
                       char **args, char **envp)
{
    uv_stdio_container_t stdio[4];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = 2; /* worker stdout joins the server's log until logs are captured */
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    stdio[3].flags = UV_CREATE_PIPE | UV_READABLE_PIPE | UV_WRITABLE_PIPE;
    stdio[3].data.stream = &ct->conn->h.stream;
    uv_process_options_t opts = {0};
    opts.exit_cb = on_process_exit;
    opts.file = env->worker;
    opts.args = args;
    opts.env = envp;
    opts.stdio = stdio;
    opts.stdio_count = 4;
    ct->proc.data = ct;
    int rc = uv_spawn(loop, &ct->proc, &opts);
    if (rc == 0)
        ct->pid = ct->proc.pid;
    return rc;
}

/* Starts the worker in a sandbox (sandbox.c) with the socket pair made here. 0 or -1 (logged);
 * nothing but the container's conn is left to close on failure. */
static int spawn_sandboxed(struct container *ct, char **args, char **envp)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        log_error("cannot start a container for %s.%s: socketpair: %s", ct->fn->app->name,
                  ct->fn->name, strerror(errno));
        return -1;
    }
    int rc = uv_pipe_open(&ct->conn->h.pipe, sv[0]);
    if (rc < 0) {
        log_error("cannot start a container for %s.%s: %s", ct->fn->app->name, ct->fn->name,
                  uv_strerror(rc));
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    struct sandbox_spawn sp = {.id = ct->id,
                               .argv = args,
                               .envp = envp,
                               .fd3 = sv[1],
                               .cpu = ct->fn->cfg.cpu,
                               .memory_mib = ct->fn->cfg.memory};
    char err[512];
    ct->sandbox = sandbox_start(uv_handle_get_loop((uv_handle_t *)&ct->conn->h.handle), &sp,
                                on_sandbox_exit, ct, &ct->pid, err, sizeof err);
    close(sv[1]);
    if (!ct->sandbox) {
        log_error("cannot start a container for %s.%s: %s", ct->fn->app->name, ct->fn->name, err);
        return -1;
    }
    return 0;
}

struct container *container_start(uv_loop_t *loop, const struct container_env *env,
                                  struct function *fn, const char *code_path)
{
    struct container *ct = mem_calloc(1, sizeof *ct);
    if (!ct)
        return NULL;
    id_new(ct->id, "ta");
    ct->fn = fn;
    ct->version = fn->version;
    ct->state = CT_STARTING;
    ct->started = store_now_ms();
    list_init(&ct->fn_link);
    ct->conn = conn_new_pipe(loop, &container_ops, ct, env->max_frame);
    if (!ct->conn) {
        mem_free(ct);
        return NULL;
    }
    char envstore[2048];
    char **envp = make_env(env, ct, envstore, sizeof envstore);
    char *args[] = {(char *)env->worker, "--fd",   "3",           "--code", (char *)code_path,
                    "--function",        fn->name, "--container", ct->id,   NULL};
    bool sandboxed = sandbox_enabled();
    int rc = !envp       ? UV_ENOMEM
             : sandboxed ? (spawn_sandboxed(ct, args, envp) < 0 ? UV_EINVAL : 0)
                         : spawn_plain(loop, ct, env, args, envp);
    mem_free(envp);
    if (rc < 0) {
        if (!sandboxed)
            log_error("cannot start a container for %s.%s (%s): %s", fn->app->name, fn->name,
                      env->worker, uv_strerror(rc));
        struct conn *c = ct->conn;
        ct->conn = NULL;
        c->ops = &detached_ops;
        conn_close(c);
        if (envp && !sandboxed) {
            /* uv_spawn initialised the handle even though it failed: close it. */
            ct->handles = 1;
            uv_close((uv_handle_t *)&ct->proc, handle_closed);
        } else {
            mem_free(ct);
        }
        return NULL;
    }
    uv_timer_init(loop, &ct->timer);
    ct->timer.data = ct;
    ct->handles = sandboxed ? 1 : 2; /* the timer, and the process handle of a plain one */
    list_push(&all, &ct->all_link);
    if (conn_start(ct->conn) < 0)
        container_kill(ct, "its socket could not be read");
    log_debug("container %s started for %s.%s v%d (pid %d%s)", ct->id, fn->app->name, fn->name,
              ct->version, ct->pid, sandboxed ? ", sandboxed" : "");
    return ct;
}

int container_send_input(struct container *ct, struct call *call)
{
    if (!ct->conn)
        return -1;
    struct wire_writer w;
    wire_begin(&w, conn_out(ct->conn), OP_W_INPUT, 0, 3);
    wire_str(&w, "input_id", call->input_id);
    wire_str(&w, "call_id", call->id);
    wire_bin(&w, "args", call->args, call->args_len);
    if (wire_end(&w) != SKIFF_OK) {
        container_kill(ct, "its input could not be sent");
        return -1;
    }
    return 0;
}

static void stop_overdue(uv_timer_t *t)
{
    container_kill(t->data, "it did not stop when asked");
}

void container_stop(struct container *ct)
{
    if (ct->exited)
        return;
    if (ct->conn) {
        struct wire_writer w;
        wire_begin(&w, conn_out(ct->conn), OP_W_STOP, 0, 0);
        wire_end(&w);
    }
    uv_timer_start(&ct->timer, stop_overdue, STOP_GRACE_MS, 0);
}

void container_kill(struct container *ct, const char *reason)
{
    if (ct->exited || ct->killed)
        return;
    ct->killed = true;
    if (!ct->exit_reason && reason)
        ct->exit_reason = mem_strdup(reason);
    if (ct->sandbox)
        sandbox_kill(ct->sandbox);
    else
        uv_process_kill(&ct->proc, SIGKILL);
}
