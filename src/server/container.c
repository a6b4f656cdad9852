/*
 * container.c - container processes (see container.h).
 *
 * A container's process is either a plain child (uv_spawn, which also makes the socket pair),
 * or, when the server can sandbox (sandbox.h), an init in its own namespaces and cgroup that
 * runs the worker, or, for a snapshot class's pool, a child forked by the pool's template
 * (template.h), which reports its pid and its exit; in the last two the socket pair and output
 * pipes are made here. All end in process_ended, which names the cause (a signal, an exit
 * status, the memory limit, our own kill) for the running input.
 */
#include "container.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "apps.h"
#include "auth.h"
#include "calls.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/proto.h"
#include "conn.h"
#include "logs.h"
#include "metrics.h"
#include "sandbox.h"
#include "secrets.h"
#include "sched.h"
#include "store.h"
#include "template.h"
#include "volumes.h"

/* How long a container asked to stop may take before it is killed. */
#define STOP_GRACE_MS 5000
/* How long a container whose socket closed may take to exit on its own before it is killed:
 * enough for the kernel to deliver a crashed worker's status, short enough not to hold an input. */
#define SOCKET_GONE_GRACE_MS 1000
/* How long an exited container's socket may take to reach its end (its last messages read)
 * before the container is ended without them: a child it left behind may hold the socket. */
#define EXIT_READ_GRACE_MS 1000

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
        buf_deinit(&ct->log_part[0]);
        buf_deinit(&ct->log_part[1]);
        mem_free(ct->exit_reason);
        mem_free(ct->end_why);
        mem_free(ct->crash_message);
        mem_free(ct->zombies);
        mem_free(ct);
    }
}

static void drain_output(struct container *ct);

/* --- messages from the worker ----------------------------------------------------------------- */

static const char *obj_str(const msgpack_object *o, size_t *n)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return NULL;
    *n = o->via.str.size;
    return o->via.str.ptr;
}

/* A malloc'd copy of a msgpack string (NULL for nil or anything else). */
static char *obj_dup(const msgpack_object *o)
{
    size_t n;
    const char *p = obj_str(o, &n);
    return p && !memchr(p, 0, n) ? mem_strndup(p, n) : NULL;
}

/* One W_OUTPUTS entry. false if it is malformed. */
static bool output_entry(struct container *ct, const msgpack_object *e)
{
    if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < 3)
        return false;
    const msgpack_object *f = e->via.array.ptr;
    if (f[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || f[0].via.u64 > UINT32_MAX ||
        f[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    uint32_t slot = (uint32_t)f[0].via.u64;
    uint64_t kind = f[1].via.u64;
    switch (kind) {
    case 0: /* result */
    case 2: /* generator item */
        if (f[2].type != MSGPACK_OBJECT_BIN)
            return false;
        sched_container_output(ct, slot, (int)kind, f[2].via.bin.ptr, f[2].via.bin.size, NULL, 0);
        return true;
    case 1: { /* failure */
        if (e->via.array.size < 5 || f[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return false;
        skiff_error err = SKIFF_ERROR_INIT;
        err.code = f[2].via.u64 && f[2].via.u64 < 1000 ? (skiff_code)f[2].via.u64 : SKIFF_ERR_USER;
        err.type = obj_dup(&f[3]);
        err.message = obj_dup(&f[4]);
        err.traceback = e->via.array.size > 5 ? obj_dup(&f[5]) : NULL;
        sched_container_output(ct, slot, 1, NULL, 0, &err, 0);
        skiff_error_clear(&err);
        return true;
    }
    case 3: /* generator done */
        if (f[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return false;
        sched_container_output(ct, slot, 3, NULL, 0, NULL, f[2].via.u64);
        return true;
    default:
        return false;
    }
}

static void on_frame(struct conn *c, struct wire_msg *m)
{
    struct container *ct = c->owner;
    switch (m->op) {
    case OP_W_READY: {
        int64_t pid = 0;
        wire_get_int(m, "pid", &pid);
        log_debug("container %s ready (pid %d)", ct->id, (int)pid);
        metrics_container_ready(ct);
        sched_container_ready(ct);
        return;
    }
    case OP_W_OUTPUTS: {
        /* What the worker printed before it answered is in its pipes already: take it now, so
         * the lines are tagged with the inputs that printed them. */
        drain_output(ct);
        const msgpack_object *arr = wire_get(m, "outputs");
        if (!arr || arr->type != MSGPACK_OBJECT_ARRAY)
            break;
        uint32_t i;
        for (i = 0; i < arr->via.array.size && !ct->killed; i++)
            if (!output_entry(ct, &arr->via.array.ptr[i]))
                break;
        if (i < arr->via.array.size && !ct->killed)
            break;
        return;
    }
    case OP_W_STARTED: {
        /* What the previous input printed is in the pipes already (the worker flushed before
         * it wrote this): it goes as that input's, then the lines are the new one's. */
        int64_t slot = -1;
        wire_get_int(m, "slot", &slot);
        drain_output(ct);
        logs_input_switch(ct);
        const struct input *in =
            slot >= 0 && slot <= UINT32_MAX ? container_held(ct, (uint32_t)slot) : NULL;
        snprintf(ct->log_input, sizeof ct->log_input, "%s", in ? in->id : "");
        snprintf(ct->log_fn, sizeof ct->log_fn, "%s", in && in->call ? in->call->fn->name : "");
        ct->log_marked = true;
        struct wire_writer w;
        wire_begin(&w, conn_out(ct->conn), OP_W_STARTED_OK, 0, 0);
        if (wire_end(&w) != SKIFF_OK)
            container_kill(ct, "its log message could not be answered");
        return;
    }
    case OP_W_CRASH: {
        int64_t slot = -1, sig = 0;
        wire_get_int(m, "slot", &slot);
        wire_get_int(m, "signal", &sig);
        if (slot >= 0 && slot <= UINT32_MAX) {
            ct->crashed = true;
            ct->crash_slot = (uint32_t)slot;
            mem_free(ct->crash_message);
            ct->crash_message = wire_dup_str(m, "message");
        }
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
    char what[64];
    snprintf(what, sizeof what, "an unexpected or malformed message (op %d)", m->op);
    sched_container_broken(ct, what);
}

static void socket_gone_overdue(uv_timer_t *t)
{
    container_kill(t->data, "its socket closed");
}

static void end_now(struct container *ct);

static void on_conn_close(struct conn *c)
{
    struct container *ct = c->owner;
    ct->conn = NULL;
    if (c->error)
        sched_container_broken(ct, c->error); /* garbage: its inputs fail now */
    if (ct->end_why) {
        end_now(ct); /* it exited first; now everything it sent has been read */
        return;
    }
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

static void container_end(struct container *ct, const char *why, int sig);

static void exit_read_overdue(uv_timer_t *t)
{
    end_now(t->data);
}

/* The end of a container's process, plain or sandboxed: why it ended (for its running input).
 * Its exit status can arrive before its socket's last messages (W_INIT_FAILED, W_CRASH,
 * outputs) were read: then the end waits for the socket to reach its end, so none of them is
 * lost, and the scheduler is told after (read_rest false: at once). ex: how a sandbox ended, or
 * NULL for a plain process. */
static void process_ended(struct container *ct, int64_t status, int sig,
                          const struct sandbox_exit *ex, bool read_rest)
{
    ct->exited = true;
    auth_revoke(ct->token);
    ct->token = NULL;
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
    if (sig && !ct->killed && !ct->exit_reason && !(ex && ex->oom))
        /* Nobody in the server sent it: a crash, or a kill from outside (an operator, the
         * kernel); either way the operator should hear of it. */
        log_warn("container %s (%s.%s, pid %d) was killed by signal %d (SIG%s), which the server "
                 "did not send",
                 ct->id, ct->fn->app->name, ct->fn->name, ct->pid, sig,
                 sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
    else if (ex && (ex->oom || ex->setup_error))
        log_warn("container %s (%s.%s, pid %d) ended: %s", ct->id, ct->fn->app->name, ct->fn->name,
                 ct->pid, why);
    else
        log_debug("container %s (pid %d) ended: %s", ct->id, ct->pid, why);
    if (read_rest && ct->conn && (ct->end_why = mem_strdup(why))) {
        ct->end_sig = sig;
        uv_timer_start(&ct->timer, exit_read_overdue, EXIT_READ_GRACE_MS, 0);
        return;
    }
    container_end(ct, why, sig);
}

/* Ends a container whose exit waited for its socket (read to its end, or the grace is over). */
static void end_now(struct container *ct)
{
    char *why = ct->end_why;
    ct->end_why = NULL;
    container_end(ct, why, ct->end_sig);
    mem_free(why);
}

/* The scheduler is told that ct ended (why, sig) and its handles close. */
static void container_end(struct container *ct, const char *why, int sig)
{
    if (ct->conn)
        conn_close(ct->conn);
    uv_timer_stop(&ct->timer);
    list_remove(&ct->all_link);
    list_remove(&ct->dirty_link);
    template_forget(ct);
    sched_container_exited(ct, why, ct->exit_reason ? 0 : sig);
    if (ct->sandbox) {
        sandbox_free(ct->sandbox);
        ct->sandbox = NULL;
    } else if (!ct->forked) {
        uv_close((uv_handle_t *)&ct->proc, handle_closed);
    }
    uv_close((uv_handle_t *)&ct->timer, handle_closed);
}

void container_forked_pid(struct container *ct, int pid)
{
    ct->pid = pid;
    if (ct->killed && !ct->exited)
        kill(pid, SIGKILL); /* killed before the template had forked it */
}

void container_forked_exited(struct container *ct, int64_t status, int sig, const char *reason)
{
    if (ct->end_why && reason) {
        end_now(ct); /* its template ends: no waiting for the rest of its socket */
        return;
    }
    if (ct->exited)
        return;
    if (reason && !ct->exit_reason)
        ct->exit_reason = mem_strdup(reason);
    /* An exit the template saw is read to the end like any other; one it reports for its own
     * reasons (it could not fork, it ended) ends the container now. */
    process_ended(ct, status, sig, NULL, !reason);
}

void container_forked_oom(struct container *ct, int memory_mib)
{
    if (ct->exited)
        return;
    struct sandbox_exit ex = {.sig = SIGKILL, .oom = true, .memory_mib = memory_mib};
    process_ended(ct, 0, SIGKILL, &ex, true);
}

static void on_process_exit(uv_process_t *p, int64_t status, int sig)
{
    process_ended(p->data, status, sig, NULL, true);
}

static void on_sandbox_exit(struct sandbox *sb, const struct sandbox_exit *ex, void *data)
{
    (void)sb;
    process_ended(data, ex->status, ex->sig, ex, true);
}

/* --- output (logs) ---------------------------------------------------------------------------- */

/* Output is read into one buffer: the loop is single-threaded and logs.c copies what it keeps. */
static char output_buf[64 * 1024];

static void output_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)h;
    (void)hint;
    *b = uv_buf_init(output_buf, sizeof output_buf);
}

/* ct printed while it held more than one input: from now on its worker announces each input
 * before running it (W_LOG_MARKS), so each line names the input that printed it. Containers
 * that never print so never pay for it. */
static void ask_marks(struct container *ct)
{
    if (ct->log_marks || ct->n_held < 2 || ct->killed || !ct->conn)
        return;
    ct->log_marks = true;
    struct wire_writer w;
    wire_begin(&w, conn_out(ct->conn), OP_W_LOG_MARKS, 0, 0);
    if (wire_end(&w) != SKIFF_OK)
        container_kill(ct, "its log message could not be sent");
}

/* Stream i of ct ended (end of file or an error): its last line is kept, its pipe closed. */
static void output_done(struct container *ct, int i)
{
    if (!ct->output_open[i])
        return;
    ct->output_open[i] = false;
    logs_stream_ended(ct, i + 1);
    uv_close((uv_handle_t *)&ct->output[i], handle_closed);
}

/* Reads whatever ct's output pipes hold now, without waiting (the pipes are non-blocking; the
 * loop's own read callback then finds them empty). */
static void drain_output(struct container *ct)
{
    for (int i = 0; i < 2; i++) {
        uv_os_fd_t fd;
        if (!ct->output_open[i] || uv_fileno((uv_handle_t *)&ct->output[i], &fd) < 0)
            continue;
        for (int rounds = 0; rounds < 16; rounds++) { /* bounded: a chatty worker waits its turn */
            ssize_t n = read(fd, output_buf, sizeof output_buf);
            if (n <= 0)
                break;
            logs_output(ct, i + 1, output_buf, (size_t)n);
            ask_marks(ct);
        }
    }
}

static void output_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct container *ct = s->data;
    int i = (uv_pipe_t *)s == &ct->output[1];
    if (n > 0) {
        logs_output(ct, i + 1, b->base, (size_t)n);
        ask_marks(ct);
    } else if (n < 0)
        output_done(ct, i);
}

/* The minimal environment every container gets (docs/security.md, "What a function sees"). */
static const char *const base_env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8",
                                       "HOME=/tmp", "TZ=UTC"};
/* Settings of the runtime passed on from the server's environment when set: the log level, the
 * Python interpreter, and the sanitizers' options of a sanitizer build. */
static const char *const passed_env[] = {"SKIFF_LOG", "SKIFF_PYTHON", "ASAN_OPTIONS",
                                         "UBSAN_OPTIONS", "LSAN_OPTIONS"};
#define NBASE (sizeof base_env / sizeof base_env[0])
#define NPASSED (sizeof passed_env / sizeof passed_env[0])
/* The runtime's own variables (SKIFF_SERVER, the token, the container id, the payload limit). */
#define NRUNTIME 5
/* The most bytes of secrets a container's environment holds: it travels in one order to a
 * sandbox (sandbox.c, ORDER_MAX) and must leave room for the arguments. */
#define ENV_SECRETS_MAX (64u << 10)

char **container_make_env(const struct container_env *env, const struct function *fn,
                          const char *id, char *why, size_t whylen)
{
    char *sec = NULL;
    size_t sec_len = 0, nsec = 0;
    if (fn && secrets_env(&fn->cfg, &sec, &sec_len, &nsec, why, whylen) < 0)
        return NULL;
    if (sec_len > ENV_SECRETS_MAX) {
        snprintf(why, whylen, "its secrets hold %zu bytes; a container takes at most %u", sec_len,
                 ENV_SECRETS_MAX);
        mem_free(sec);
        return NULL;
    }
    char runtime[2048];
    int used = snprintf(runtime, sizeof runtime,
                        "SKIFF_SERVER=%s%cSKIFF_TOKEN_ID=%s%cSKIFF_TOKEN_SECRET=%s%c"
                        "SKIFF_CONTAINER_ID=%s%cSKIFF_PAYLOAD_MAX=%zu%c",
                        env->server_addr, 0, env->token_id, 0, env->token_secret, 0, id, 0,
                        env->payload_max, 0);
    size_t passed_len = 0;
    for (size_t i = 0; i < NPASSED; i++) {
        const char *v = getenv(passed_env[i]);
        passed_len += v ? strlen(passed_env[i]) + strlen(v) + 2 : 0;
    }
    if (used < 0 || (size_t)used >= sizeof runtime) {
        snprintf(why, whylen, "the server's address is too long");
        mem_free(sec);
        return NULL;
    }
    size_t nptr = NBASE + NPASSED + NRUNTIME + nsec + 1;
    size_t size = nptr * sizeof(char *) + passed_len + (size_t)used + sec_len;
    char **out = mem_alloc(size);
    if (!out) {
        snprintf(why, whylen, "out of memory");
        mem_free(sec);
        return NULL;
    }
    char *text = (char *)(out + nptr);
    size_t k = 0;
    /* Secrets first: a later string of the same name would be ignored by getenv. Then the
     * runtime's, which no secret may name (SKIFF_* keys are refused), then the defaults that a
     * secret's key of the same name replaces. */
    memcpy(text, sec ? sec : "", sec_len);
    for (char *p = text; p < text + sec_len; p += strlen(p) + 1)
        out[k++] = p;
    text += sec_len;
    memcpy(text, runtime, (size_t)used);
    for (char *p = text; p < text + used; p += strlen(p) + 1)
        out[k++] = p;
    text += used;
    for (size_t i = 0; i < NPASSED; i++) {
        const char *v = getenv(passed_env[i]);
        if (!v)
            continue;
        out[k++] = text;
        text += sprintf(text, "%s=%s", passed_env[i], v) + 1;
    }
    for (size_t i = 0; i < NBASE; i++) {
        size_t name = strcspn(base_env[i], "=") + 1;
        bool shadowed = false;
        for (size_t j = 0; j < nsec; j++)
            shadowed |= !strncmp(out[j], base_env[i], name);
        if (!shadowed)
            out[k++] = (char *)base_env[i];
    }
    out[k] = NULL;
    mem_free(sec);
    return out;
}

int container_spawn(uv_loop_t *loop, uv_process_t *proc, uv_exit_cb exit_cb,
                    const struct container_env *env, char **args, char **envp, struct conn *sock,
                    uv_pipe_t *out)
{
    uv_stdio_container_t stdio[4];
    stdio[0].flags = UV_IGNORE;
    for (int i = 0; i < 2; i++) {
        if (out) {
            /* stdout and stderr come back on pipes, for the logs */
            stdio[1 + i].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
            stdio[1 + i].data.stream = (uv_stream_t *)&out[i];
        } else {
            stdio[1 + i].flags = UV_INHERIT_FD;
            stdio[1 + i].data.fd = 2;
        }
    }
    stdio[3].flags = UV_CREATE_PIPE | UV_READABLE_PIPE | UV_WRITABLE_PIPE;
    stdio[3].data.stream = &sock->h.stream;
    uv_process_options_t opts = {0};
    opts.exit_cb = exit_cb;
    opts.file = env->worker;
    opts.args = args;
    opts.env = envp;
    opts.stdio = stdio;
    opts.stdio_count = 4;
    return uv_spawn(loop, proc, &opts);
}

/* Why the last container_start failed, for its caller. */
static char start_error[256];

/* Records (and logs) why ct could not start. */
static void start_failed(const struct container *ct, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void start_failed(const struct container *ct, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(start_error, sizeof start_error, fmt, ap);
    va_end(ap);
    log_error("cannot start a container for %s.%s: %s", ct->fn->app->name, ct->fn->name,
              start_error);
}

/* Starts the worker as a plain child process (uv_spawn, which makes the socket pair). 0 or a
 * libuv error; on error the process handle needs closing unless it is UV_ENOMEM from us. */
static int spawn_plain(uv_loop_t *loop, struct container *ct, const struct container_env *env,
                       char **args, char **envp)
{
    ct->proc.data = ct;
    int rc =
        container_spawn(loop, &ct->proc, on_process_exit, env, args, envp, ct->conn, ct->output);
    if (rc == 0)
        ct->pid = ct->proc.pid;
    return rc;
}

/* Makes the container's socket pair and output pipes here, for a sandbox or a template to pass
 * on: our ends go to ct's conn and output pipes, the worker's ends to fds[0] (socket), fds[1]
 * (stdout) and fds[2] (stderr), which the caller closes. 0 or -1 (logged); nothing but the
 * container's conn is left to close on failure. */
static int make_channels(struct container *ct, int fds[3])
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        start_failed(ct, "socketpair: %s", strerror(errno));
        return -1;
    }
    int rc = uv_pipe_open(&ct->conn->h.pipe, sv[0]);
    if (rc < 0) {
        start_failed(ct, "%s", uv_strerror(rc));
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    /* stdout and stderr come back on pipes, for the logs. */
    int out[2][2] = {{-1, -1}, {-1, -1}};
    for (int i = 0; i < 2; i++)
        if (pipe2(out[i], O_CLOEXEC) < 0 || uv_pipe_open(&ct->output[i], out[i][0]) < 0) {
            start_failed(ct, "pipe: %s", strerror(errno));
            for (int k = 0; k <= i; k++) {
                if (out[k][1] >= 0)
                    close(out[k][1]);
                if (k == i && out[k][0] >= 0)
                    close(out[k][0]); /* not yet owned by its uv_pipe_t */
            }
            close(sv[1]);
            return -1;
        }
    fds[0] = sv[1];
    fds[1] = out[0][1];
    fds[2] = out[1][1];
    return 0;
}

/* Starts the worker in a sandbox (sandbox.c) with the socket pair made here. 0 or -1 (logged);
 * nothing but the container's conn is left to close on failure. */
static int spawn_sandboxed(struct container *ct, char **args, char **envp, const char *code_path)
{
    int fds[3];
    if (make_channels(ct, fds) < 0)
        return -1;
    struct sandbox_spawn sp = {.id = ct->id,
                               .argv = args,
                               .envp = envp,
                               .fd3 = fds[0],
                               .fd1 = fds[1],
                               .fd2 = fds[2],
                               .code = code_path,
                               .cpu = ct->fn->cfg.cpu,
                               .memory_mib = ct->fn->cfg.memory};
    char err[512];
    struct volume_mounts vm;
    if (volumes_mounts(&ct->fn->cfg, &vm, err, sizeof err) == 0) {
        sp.volumes = vm.v;
        sp.nvolumes = vm.n;
        ct->sandbox = sandbox_start(uv_handle_get_loop((uv_handle_t *)&ct->conn->h.handle), &sp,
                                    on_sandbox_exit, ct, &ct->pid, err, sizeof err);
        volumes_mounts_free(&vm);
    }
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    if (!ct->sandbox) {
        start_failed(ct, "%s", err);
        return -1;
    }
    return 0;
}

/* Has the pool's snapshot template fork the worker (template.c), with the socket pair and
 * pipes made here. 0 or -1 (logged); nothing but the container's conn is left to close. */
static int spawn_forked(uv_loop_t *loop, struct container *ct, const struct container_env *env,
                        const char *code_path)
{
    int fds[3];
    if (make_channels(ct, fds) < 0)
        return -1;
    int rc = template_fork(loop, env, ct, code_path, fds);
    if (rc < 0)
        start_failed(ct, "its snapshot template could not start");
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    return rc;
}

struct container *container_start(uv_loop_t *loop, const struct container_env *env,
                                  struct function *fn, const char *code_path, char *err,
                                  size_t errlen)
{
    snprintf(err, errlen, "out of memory");
    struct container *ct = mem_calloc(1, sizeof *ct);
    if (!ct)
        return NULL;
    id_new(ct->id, "ta");
    ct->fn = fn;
    ct->version = apps_owner(fn)->version;
    ct->state = CT_STARTING;
    ct->started = store_now_ms();
    ct->start_ns = uv_hrtime();
    list_init(&ct->fn_link);
    list_init(&ct->held);
    list_init(&ct->dirty_link);
    ct->conn = conn_new_pipe(loop, &container_ops, ct, env->max_frame);
    if (!ct->conn) {
        mem_free(ct);
        return NULL;
    }
    /* Its own token, for calls from its functions: minted now, revoked when it ends. */
    char token_id[ID_SIZE], token_secret[AUTH_SECRET_LEN + 1];
    ct->token = auth_container_new(token_id, token_secret);
    struct container_env own = *env;
    own.token_id = token_id;
    own.token_secret = token_secret;
    env = &own;
    char env_why[300] = "out of memory";
    char **envp = ct->token ? container_make_env(env, fn, ct->id, env_why, sizeof env_why) : NULL;
    /* A plain function: --function NAME; a class's pool: --class NAME --params B64. */
    char *args[] = {(char *)env->worker,
                    "--fd",
                    "3",
                    "--code",
                    (char *)code_path,
                    fn->params_key ? "--class" : "--function",
                    fn->name,
                    "--container",
                    ct->id,
                    fn->params_key ? "--params" : NULL,
                    fn->params_key,
                    NULL};
    for (int i = 0; i < 2; i++) {
        uv_pipe_init(loop, &ct->output[i], 0);
        ct->output[i].data = ct;
        buf_init(&ct->log_part[i], 2 * LOGS_LINE_MAX);
    }
    list_init(&ct->tmpl_link);
    ct->forked = template_wanted(fn);
    /* Forked containers are in their template's sandbox, not one of their own (template.h). */
    bool sandboxed = !ct->forked && sandbox_enabled();
    if (sandboxed)
        args[4] = SANDBOX_CODE_PATH;   /* the code comes on a descriptor (sandbox.h) */
    ct->sandboxed = sandbox_enabled(); /* a forked one is in its template's */
    int rc = !envp        ? UV_ENOMEM
             : ct->forked ? (spawn_forked(loop, ct, env, code_path) < 0 ? UV_EINVAL : 0)
             : sandboxed  ? (spawn_sandboxed(ct, args, envp, code_path) < 0 ? UV_EINVAL : 0)
                          : spawn_plain(loop, ct, env, args, envp);
    mem_free(envp);
    /* Without a process handle of its own: sandboxed or forked. */
    bool no_proc = sandboxed || ct->forked;
    if (rc < 0) {
        if (!envp)
            start_failed(ct, "%s", env_why);
        else if (!no_proc)
            start_failed(ct, "%s: %s", env->worker, uv_strerror(rc));
        auth_revoke(ct->token);
        ct->token = NULL;
        struct conn *c = ct->conn;
        ct->conn = NULL;
        c->ops = &detached_ops;
        conn_close(c);
        /* The two output pipes, and the process handle uv_spawn initialised though it
         * failed. */
        ct->handles = envp && !no_proc ? 3 : 2;
        uv_close((uv_handle_t *)&ct->output[0], handle_closed);
        uv_close((uv_handle_t *)&ct->output[1], handle_closed);
        if (envp && !no_proc)
            uv_close((uv_handle_t *)&ct->proc, handle_closed);
        snprintf(err, errlen, "%s", start_error);
        return NULL;
    }
    uv_timer_init(loop, &ct->timer);
    ct->timer.data = ct;
    /* The timer, the two output pipes, and the process handle of a plain one. */
    ct->handles = no_proc ? 3 : 4;
    for (int i = 0; i < 2; i++) {
        ct->output_open[i] = true;
        if (uv_read_start((uv_stream_t *)&ct->output[i], output_alloc, output_read) < 0)
            output_done(ct, i);
    }
    list_push(&all, &ct->all_link);
    metrics_container_started(ct);
    if (conn_start(ct->conn) < 0)
        container_kill(ct, "its socket could not be read");
    log_debug("container %s started for %s.%s v%d (pid %d%s)", ct->id, fn->app->name, fn->name,
              ct->version, ct->pid,
              sandboxed    ? ", sandboxed"
              : ct->forked ? ", forked from its snapshot template"
                           : "");
    return ct;
}

static struct list_node dirty = {&dirty, &dirty};

void container_give(struct container *ct, struct input *in)
{
    in->container = ct;
    in->slot = ct->next_slot++;
    calls_input_ran_on(in, ct->id);
    list_push(&ct->held, &in->link);
    ct->n_held++;
    ct->n_unsent++;
    if (!list_linked(&ct->dirty_link))
        list_push(&dirty, &ct->dirty_link);
}

void container_take_back(struct container *ct, struct input *in)
{
    /* An input taken back before it was sent must not be sent: it is one of the last n_unsent
     * of held, and the rest keep their order. */
    if (ct->n_unsent > 0) {
        int k = 0;
        for (struct list_node *n = ct->held.prev; n != &ct->held && k < ct->n_unsent;
             n = n->prev, k++)
            if (n == &in->link) {
                ct->n_unsent--;
                break;
            }
    }
    list_remove(&in->link);
    in->container = NULL;
    ct->n_held--;
}

struct input *container_held(struct container *ct, uint32_t slot)
{
    struct list_node *n;
    for (n = ct->held.next; n != &ct->held; n = n->next) {
        struct input *in = container_of(n, struct input, link);
        if (in->slot == slot)
            return in;
    }
    return NULL;
}

void container_cancel(struct container *ct, struct input *in, uint64_t grace_ms)
{
    bool sent = true;
    int k = 0;
    for (struct list_node *n = ct->held.prev; n != &ct->held && k < ct->n_unsent; n = n->prev, k++)
        if (n == &in->link)
            sent = false;
    uint32_t slot = in->slot;
    container_take_back(ct, in);
    if (!sent || !ct->conn)
        return;
    if (ct->n_zombies == ct->cap_zombies) {
        int cap = ct->cap_zombies ? ct->cap_zombies * 2 : 4;
        struct zombie *z = mem_realloc(ct->zombies, (size_t)cap * sizeof *z);
        if (!z) {
            container_kill(ct, "the server ran out of memory cancelling an input");
            return;
        }
        ct->zombies = z;
        ct->cap_zombies = cap;
    }
    ct->zombies[ct->n_zombies++] = (struct zombie){slot, uv_now(ct->timer.loop) + grace_ms};
    struct wire_writer w;
    wire_begin(&w, conn_out(ct->conn), OP_W_CANCEL, 0, 1);
    wire_int(&w, "slot", slot);
    if (wire_end(&w) != SKIFF_OK)
        container_kill(ct, "its cancel message could not be sent");
}

bool container_forget_zombie(struct container *ct, uint32_t slot)
{
    for (int i = 0; i < ct->n_zombies; i++)
        if (ct->zombies[i].slot == slot) {
            ct->zombies[i] = ct->zombies[--ct->n_zombies];
            return true;
        }
    return false;
}

/* Sends ct's unsent inputs in one W_INPUTS frame (more when they would pass the frame limit). */
static void send_inputs(struct container *ct)
{
    while (ct->n_unsent > 0 && ct->conn) {
        struct list_node *first = ct->held.prev;
        for (int k = 1; k < ct->n_unsent; k++)
            first = first->prev;
        /* Count what fits in one frame. */
        size_t budget = ct->conn->max_frame - PROTO_FRAME_OVERHEAD / 2, bytes = 0;
        int n = 0;
        for (struct list_node *p = first; p != &ct->held && n < ct->n_unsent; p = p->next) {
            size_t len = container_of(p, struct input, link)->args_len + 2 * ID_SIZE + 32;
            if (n > 0 && bytes + len > budget)
                break;
            bytes += len;
            n++;
        }
        struct wire_writer w;
        wire_begin(&w, conn_out(ct->conn), OP_W_INPUTS, 0, 1);
        wire_key(&w, "inputs");
        wire_pack_array(&w, (size_t)n);
        struct list_node *p = first;
        for (int k = 0; k < n; k++, p = p->next) {
            struct input *in = container_of(p, struct input, link);
            msgpack_pack_array(&w.pk, 5);
            msgpack_pack_uint32(&w.pk, in->slot);
            msgpack_pack_str_with_body(&w.pk, in->id, strlen(in->id));
            msgpack_pack_str_with_body(&w.pk, in->call->id, strlen(in->call->id));
            const char *method = in->call->fn->method;
            if (method)
                msgpack_pack_str_with_body(&w.pk, method, strlen(method));
            else
                msgpack_pack_nil(&w.pk);
            msgpack_pack_bin_with_body(&w.pk, in->args ? in->args : "", in->args_len);
        }
        ct->n_unsent -= n;
        if (wire_end(&w) != SKIFF_OK) {
            container_kill(ct, "its inputs could not be sent");
            return;
        }
    }
}

void container_flush_all(void)
{
    while (!list_empty(&dirty)) {
        struct container *ct = container_of(dirty.next, struct container, dirty_link);
        list_remove(&ct->dirty_link);
        send_inputs(ct);
    }
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
    else if (ct->forked) {
        /* Its template reports the exit; one not forked yet is killed when its pid comes. */
        if (ct->pid > 0)
            kill(ct->pid, SIGKILL);
    } else
        uv_process_kill(&ct->proc, SIGKILL);
}
