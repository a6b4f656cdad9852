/*
 * template.c - snapshot templates (see template.h).
 *
 * A template is a child process with its own socket pair on fd 3, read by a conn like a
 * container's: in a sandbox of its own when the server sandboxes (sandbox.h: the containers it
 * forks inherit its namespaces, new root, capabilities, no_new_privs and seccomp filter, and
 * share its cgroup), else a plain process (uv_spawn). A sandboxed template names its children by
 * their pids in its pid namespace; the server finds their host pids in its cgroup. Orders to it are
 * tiny frames written straight to that socket with sendmsg, because a T_FORK carries three
 * descriptors (SCM_RIGHTS) and libuv's stream writes cannot carry more than one; the conn itself
 * never writes, so the two paths cannot interleave. The kernel queues a T_FORK order until the
 * template reads it, so orders go out at once, even while the template is still running its
 * enter_snap hooks.
 *
 * Ownership: the pool points at its current template (fn->tmpl); a retired template is off the
 * pool but lives on (in the `all` list) until its process ends. Each container forked from a
 * template is on its kids list until its process has ended (T_EXITED, or the template's own
 * end, which ends every container still on the list). A template's memory goes with its last
 * handle (process and grace timer).
 */
#include "template.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "apps.h"
#include "auth.h"
#include "common/id.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/proto.h"
#include "common/wire.h"
#include "conn.h"
#include "container.h"
#include "sandbox.h"
#include "sched.h"
#include "store.h"
#include "volumes.h"

/* How long a template whose socket closed may take to kill its containers and exit before it
 * is killed itself. */
#define GONE_GRACE_MS 2000

struct template
{
    char id[ID_SIZE]; /* "ta-...": names it in logs and in its worker's log prefix */
    struct function *pool;
    int version; /* the code version it runs */
    int pid;
    int64_t started;         /* unix ms, for the log line when ready */
    bool ready;              /* W_TEMPLATE_READY arrived: its enter_snap hooks ran */
    bool failed;             /* W_INIT_FAILED arrived */
    bool retired;            /* W_STOP sent: it forks no more */
    bool exited;             /* its process ended */
    bool finished;           /* ... and that was handled (finish) */
    char why[160];           /* how it ended */
    uv_process_t proc;       /* its process, when not sandboxed */
    struct sandbox *sandbox; /* its sandbox (sandbox.h), or NULL: a plain process */
    long oom_kills;          /* the OOM kills in its sandbox's cgroup already accounted for */
    uv_timer_t grace;        /* kills it when it lingers after its socket closed */
    int handles;             /* open libuv handles (proc, grace); freed at 0 */
    struct conn *conn;       /* its socket; NULL once closed */
    struct list_node kids;   /* containers forked from it (struct container.tmpl_link) */
    struct list_node link;   /* all templates */
    /* Its own token (its enter_snap hooks' calls), revoked at its end. */
    struct auth_token *token;
};

static struct list_node all = {&all, &all};
static bool shutting_down;

static void handle_closed(uv_handle_t *h)
{
    struct template *t = h->data;
    if (--t->handles == 0)
        mem_free(t);
}

static const char *pool_name(const struct template *t)
{
    return t->pool->name;
}

/* Kills t's process (its containers die with it). */
static void kill_template(struct template *t)
{
    if (t->exited)
        return;
    if (t->sandbox)
        sandbox_kill(t->sandbox);
    else
        uv_process_kill(&t->proc, SIGKILL);
}

/* Writes one frame from b to t's socket, with nfds descriptors attached. 0, or -1 (logged). */
static int send_frame(struct template *t, struct buf *b, const int *fds, int nfds)
{
    uv_os_fd_t fd;
    if (!t->conn || uv_fileno(&t->conn->h.handle, &fd) < 0)
        return -1;
    union {
        struct cmsghdr align;
        char space[CMSG_SPACE(3 * sizeof(int))];
    } control;
    struct iovec iov = {b->data, b->len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds > 0) {
        memset(&control, 0, sizeof control);
        mh.msg_control = control.space;
        mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
    }
    ssize_t k;
    do
        k = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (k < 0 && errno == EINTR);
    /* Orders are tiny and the template reads them promptly: a full socket means it is stuck. */
    if (k != (ssize_t)b->len) {
        log_error("cannot write to the snapshot template %s of %s.%s: %s", t->id,
                  t->pool->app->name, pool_name(t), k < 0 ? strerror(errno) : "short write");
        return -1;
    }
    return 0;
}

/* Retires t: it is off its pool and told to fork no more and exit after its containers. */
static void retire(struct template *t)
{
    if (t->pool->tmpl == t)
        t->pool->tmpl = NULL;
    if (t->retired || t->exited)
        return;
    t->retired = true;
    log_debug("retiring snapshot template %s of %s.%s v%d", t->id, t->pool->app->name, pool_name(t),
              t->version);
    struct buf b;
    buf_init(&b, 0);
    struct wire_writer w;
    wire_begin(&w, &b, OP_W_STOP, 0, 0);
    if (wire_end(&w) != SKIFF_OK || send_frame(t, &b, NULL, 0) < 0)
        kill_template(t);
    buf_deinit(&b);
}

/* The container forked from t that the message names, or NULL. */
static struct container *kid_of(struct template *t, const struct wire_msg *m)
{
    char id[ID_SIZE];
    if (!wire_copy_str(m, "container_id", id, sizeof id))
        return NULL;
    for (struct list_node *n = t->kids.next; n != &t->kids; n = n->next) {
        struct container *ct = container_of(n, struct container, tmpl_link);
        if (!strcmp(ct->id, id))
            return ct;
    }
    return NULL;
}

/* Fails every container still waiting for t to fork it: the template cannot start (err). The
 * same code fails the same way, so the pool's starts of this version are plain from now on, and
 * those fail the pool's inputs just as clearly. */
static void init_failed(struct template *t, const skiff_error *err)
{
    if (t->pool->tmpl == t) {
        t->pool->tmpl = NULL;
        t->pool->tmpl_broken = t->version;
    }
    log_warn("snapshot template %s of %s.%s failed to start: %s", t->id, t->pool->app->name,
             pool_name(t), err->message ? err->message : "");
    /* sched_container_init_failed only marks them: they end with the template's process. */
    for (struct list_node *n = t->kids.next; n != &t->kids; n = n->next) {
        struct container *ct = container_of(n, struct container, tmpl_link);
        if (ct->state != CT_STOPPING)
            sched_container_init_failed(ct, err);
    }
}

static void on_frame(struct conn *c, struct wire_msg *m)
{
    struct template *t = c->owner;
    switch (m->op) {
    case OP_W_TEMPLATE_READY:
        t->ready = true;
        log_info("snapshot template %s of %s.%s v%d ready in %lld ms (pid %d)", t->id,
                 t->pool->app->name, pool_name(t), t->version,
                 (long long)(store_now_ms() - t->started), t->pid);
        return;
    case OP_T_PID: {
        struct container *ct = kid_of(t, m);
        int64_t pid = 0;
        if (!wire_get_int(m, "pid", &pid) || pid <= 0 || pid > INT32_MAX)
            break;
        /* A sandboxed template names its child in its own pid namespace. */
        if (t->sandbox && (pid = sandbox_host_pid(t->sandbox, (int)pid)) <= 0) {
            log_warn("snapshot template %s forked a container the server cannot find", t->id);
            return; /* its T_EXITED (or the template's end) ends the container */
        }
        if (ct)
            container_forked_pid(ct, (int)pid);
        else
            kill((pid_t)pid, SIGKILL); /* a container we no longer know: it must not run */
        return;
    }
    case OP_T_EXITED: {
        struct container *ct = kid_of(t, m);
        int64_t pid = 0, status = -1, sig = 0;
        wire_get_int(m, "pid", &pid);
        wire_get_int(m, "status", &status);
        wire_get_int(m, "signal", &sig);
        /* Killed by the OOM killer in the cgroup it shares with its template. */
        long kills = t->sandbox && sig == SIGKILL ? sandbox_oom_kills(t->sandbox) : 0;
        if (kills > t->oom_kills) {
            t->oom_kills = kills;
            if (ct) {
                container_forked_oom(ct, sandbox_memory_mib(t->sandbox));
                return;
            }
        }
        if (ct)
            container_forked_exited(ct, status, (int)sig,
                                    pid <= 0 ? "its snapshot template could not fork it" : NULL);
        return;
    }
    case OP_W_INIT_FAILED: {
        skiff_error err = SKIFF_ERROR_INIT;
        wire_get_error(m, &err);
        err.code = SKIFF_ERR_INIT_FAILURE;
        t->failed = true;
        init_failed(t, &err);
        skiff_error_clear(&err);
        return;
    }
    default:
        break;
    }
    log_warn("snapshot template %s sent a malformed or unexpected message (op %d): killing it",
             t->id, m->op);
    kill_template(t);
}

static void finish(struct template *t);

static void gone_overdue(uv_timer_t *h)
{
    struct template *t = h->data;
    if (t->exited)
        finish(t);
    else
        kill_template(t);
}

static void on_conn_close(struct conn *c)
{
    struct template *t = c->owner;
    t->conn = NULL;
    if (t->exited) {
        finish(t); /* every message it sent before it died has been read */
        return;
    }
    /* Without its socket it kills its containers and exits; make sure it does. */
    uv_timer_start(&t->grace, gone_overdue, GONE_GRACE_MS, 0);
}

static const struct conn_ops template_ops = {on_frame, on_conn_close};
static const struct conn_ops detached_ops = {NULL, NULL};

/* t's process ended with status or sig; setup_error: why its sandbox could not be set up, or
 * NULL. */
static void ended(struct template *t, int64_t status, int sig, const char *setup_error)
{
    t->exited = true;
    if (setup_error)
        snprintf(t->why, sizeof t->why, "%s", setup_error);
    else if (sig)
        snprintf(t->why, sizeof t->why, "it was killed by signal %d (%s)", sig, strsignal(sig));
    else
        snprintf(t->why, sizeof t->why, "it exited with status %d", (int)status);
    /* What it sent before it died (W_INIT_FAILED, T_EXITED) may still be unread: its end is
     * handled once its socket has been read to the end (or after a grace period). */
    if (t->conn)
        uv_timer_start(&t->grace, gone_overdue, GONE_GRACE_MS, 0);
    else
        finish(t);
}

static void template_exited(uv_process_t *p, int64_t status, int sig)
{
    ended(p->data, status, sig, NULL);
}

static void sandbox_exited(struct sandbox *sb, const struct sandbox_exit *ex, void *data)
{
    (void)sb;
    ended(data, ex->status, ex->sig, ex->setup_error);
}

/* The end of t's process, once its last messages were read: its containers end, its handles
 * close. */
static void finish(struct template *t)
{
    if (t->finished)
        return;
    t->finished = true;
    auth_revoke(t->token);
    t->token = NULL;
    const char *why = t->why;
    if (!t->retired && !t->failed && !shutting_down) {
        if (!t->ready) {
            skiff_error err = SKIFF_ERROR_INIT;
            skiff_error_set(&err, SKIFF_ERR_INIT_FAILURE, NULL,
                            "the snapshot template of %s.%s could not start: %s",
                            t->pool->app->name, pool_name(t), why);
            t->failed = true;
            init_failed(t, &err);
            skiff_error_clear(&err);
        } else if (t->pool->tmpl == t) {
            log_warn("snapshot template %s of %s.%s v%d ended (%s): its pool starts containers "
                     "normally from now on",
                     t->id, t->pool->app->name, pool_name(t), t->version, why);
            t->pool->tmpl_broken = t->version;
        }
    } else {
        log_debug("snapshot template %s ended: %s", t->id, why);
    }
    if (t->pool->tmpl == t)
        t->pool->tmpl = NULL;
    /* Its containers died with it (PR_SET_PDEATHSIG) or were never forked: not of their own
     * accord, so nothing they held is blamed and no input fails for a start that never was
     * (those of a failed template were failed above). */
    while (!list_empty(&t->kids)) {
        struct container *ct = container_of(t->kids.next, struct container, tmpl_link);
        ct->killed = true;
        container_forked_exited(ct, -1, 0, "its snapshot template ended");
    }
    if (t->conn)
        conn_close(t->conn);
    list_remove(&t->link);
    uv_timer_stop(&t->grace);
    if (t->sandbox)
        sandbox_free(t->sandbox);
    else
        uv_close((uv_handle_t *)&t->proc, handle_closed);
    uv_close((uv_handle_t *)&t->grace, handle_closed);
}

/* Starts t's process in a sandbox (sandbox.h) with a socket pair made here; its forked
 * containers share the sandbox's cgroup, whose limits are for the pool's largest number of
 * containers and the template. 0 or -1 (logged). */
static int start_sandboxed(struct template *t, char **args, char **envp, const char *code_path)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        log_error("cannot start a snapshot template: socketpair: %s", strerror(errno));
        return -1;
    }
    int rc = uv_pipe_open(&t->conn->h.pipe, sv[0]);
    if (rc < 0) {
        log_error("cannot start a snapshot template: %s", uv_strerror(rc));
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    const struct function *fn = t->pool;
    struct sandbox_spawn sp = {.id = t->id,
                               .argv = args,
                               .envp = envp,
                               .fd3 = sv[1],
                               .fd1 = -1,
                               .fd2 = -1,
                               .code = code_path,
                               .cpu = fn->cfg.cpu,
                               .memory_mib = fn->cfg.memory,
                               .share = fn->cfg.max_containers + 1};
    char err[512];
    struct volume_mounts vm;
    if (volumes_mounts(&fn->cfg, &vm, err, sizeof err) == 0) {
        sp.volumes = vm.v;
        sp.nvolumes = vm.n;
        t->sandbox = sandbox_start(uv_handle_get_loop((uv_handle_t *)&t->conn->h.handle), &sp,
                                   sandbox_exited, t, &t->pid, err, sizeof err);
        volumes_mounts_free(&vm);
    }
    close(sv[1]);
    if (!t->sandbox) {
        log_error("cannot start the snapshot template of %s.%s: %s", t->pool->app->name,
                  t->pool->name, err);
        return -1;
    }
    return 0;
}

/* Starts the template of pool fn for its current version. NULL on failure (logged). */
static struct template *start(uv_loop_t *loop, const struct container_env *env, struct function *fn,
                              const char *code_path)
{
    struct template *t = mem_calloc(1, sizeof *t);
    if (!t)
        return NULL;
    id_new(t->id, "ta");
    t->pool = fn;
    t->version = apps_owner(fn)->version;
    t->started = store_now_ms();
    list_init(&t->kids);
    t->conn = conn_new_pipe(loop, &template_ops, t, env->max_frame);
    /* Its own token, as a container's (each forked container gets its own in T_FORK). */
    char token_id[ID_SIZE], token_secret[AUTH_SECRET_LEN + 1];
    t->token = t->conn ? auth_container_new(token_id, token_secret) : NULL;
    struct container_env own = *env;
    own.token_id = token_id;
    own.token_secret = token_secret;
    char why[300] = "out of memory";
    char **envp = t->token ? container_make_env(&own, fn, t->id, why, sizeof why) : NULL;
    if (!envp) {
        log_error("cannot start the snapshot template of %s.%s: %s", fn->app->name, fn->name, why);
        auth_revoke(t->token);
        if (t->conn) {
            t->conn->ops = &detached_ops;
            conn_close(t->conn);
        }
        mem_free(t);
        return NULL;
    }
    bool sandboxed = sandbox_enabled();
    char *args[] = {(char *)env->worker,
                    "--template",
                    "--fd",
                    "3",
                    "--code",
                    sandboxed ? SANDBOX_CODE_PATH : (char *)code_path,
                    "--class",
                    fn->name,
                    "--container",
                    t->id,
                    "--params",
                    fn->params_key,
                    NULL};
    /* Its own output (an enter_snap hook's prints) goes to the server's stderr; each forked
     * container gets its own pipes for the logs. */
    t->proc.data = t;
    int rc = sandboxed
                 ? start_sandboxed(t, args, envp, code_path)
                 : container_spawn(loop, &t->proc, template_exited, env, args, envp, t->conn, NULL);
    mem_free(envp);
    if (rc < 0) {
        log_error("cannot start the snapshot template of %s.%s (%s): %s", fn->app->name, fn->name,
                  env->worker, sandboxed ? "see above" : uv_strerror(rc));
        auth_revoke(t->token);
        t->conn->ops = &detached_ops;
        conn_close(t->conn);
        if (sandboxed) {
            mem_free(t);
            return NULL;
        }
        t->handles = 1;
        uv_close((uv_handle_t *)&t->proc, handle_closed);
        return NULL;
    }
    if (!sandboxed)
        t->pid = t->proc.pid;
    uv_timer_init(loop, &t->grace);
    t->grace.data = t;
    t->handles = sandboxed ? 1 : 2;
    list_push(&all, &t->link);
    if (conn_start(t->conn) < 0)
        kill_template(t);
    log_info("snapshot template %s started for %s.%s v%d (pid %d%s)", t->id, fn->app->name,
             fn->name, t->version, t->pid,
             sandboxed ? ", sandboxed with the containers it forks" : "");
    return t;
}

bool template_wanted(const struct function *fn)
{
    const struct function *owner = apps_owner(fn);
    return fn->params_key && owner != fn && owner->cfg.snapshot && !shutting_down &&
           fn->tmpl_broken != owner->version;
}

int template_fork(uv_loop_t *loop, const struct container_env *env, struct container *ct,
                  const char *code_path, const int fds[3])
{
    struct function *fn = ct->fn;
    struct template *t = fn->tmpl;
    if (t && t->version != apps_owner(fn)->version) {
        retire(t);
        t = NULL;
    }
    if (!t) {
        t = start(loop, env, fn, code_path);
        if (!t) {
            fn->tmpl_broken = apps_owner(fn)->version; /* its next starts are plain */
            return -1;
        }
        fn->tmpl = t;
    }
    struct buf b;
    buf_init(&b, 0);
    struct wire_writer w;
    wire_begin(&w, &b, OP_T_FORK, 0, 3);
    wire_str(&w, "container_id", ct->id);
    wire_str(&w, "token_id", env->token_id);
    wire_str(&w, "token_secret", env->token_secret);
    int rc = wire_end(&w) == SKIFF_OK ? send_frame(t, &b, fds, 3) : -1;
    buf_deinit(&b);
    /* The container is the template's either way: when the order could not be sent, the
     * template is dying or stuck, and its end (W_INIT_FAILED, or its exit) ends the container
     * as it ends every other one still waiting for it. */
    ct->tmpl = t;
    list_push(&t->kids, &ct->tmpl_link);
    if (rc < 0) {
        fn->tmpl_broken = t->version;
        retire(t);
        kill_template(t);
    }
    return 0;
}

void template_forget(struct container *ct)
{
    if (!ct->tmpl)
        return;
    list_remove(&ct->tmpl_link);
    ct->tmpl = NULL;
}

void template_pool_changed(struct function *fn)
{
    struct template *t = fn->tmpl;
    const struct function *owner = apps_owner(fn);
    if (t && (t->version != owner->version || !owner->live || fn->app->stopped))
        retire(t);
}

void template_shutdown(void)
{
    shutting_down = true;
    struct list_node *n, *next;
    list_for_each_safe(n, next, &all)
    {
        struct template *t = container_of(n, struct template, link);
        if (t->pool->tmpl == t)
            t->pool->tmpl = NULL;
        if (t->conn)
            conn_close(t->conn);
    }
}
