/*
 * sched.c - queues, dispatch and container pools (see sched.h).
 *
 * Counters on struct function: n_containers counts containers that can still take inputs
 * (starting, idle, busy); a container leaves that count when it is retired (asked to stop,
 * killed) even though its process may live a little longer. n_starting counts those not yet
 * ready. retire() is the one place both change.
 */
#include "sched.h"

#include <stdio.h>
#include <string.h>

#include "apps.h"
#include "calls.h"
#include "common/log.h"
#include "common/mem.h"
#include "container.h"

static uv_loop_t *loop;
static struct container_env env;
static char *env_strings[4];
static bool shutting_down; /* sched_shutdown ran: start nothing more */

int sched_init(uv_loop_t *l, const char *worker, const char *server_addr, const char *token_id,
               const char *token_secret, size_t payload_max, size_t max_frame)
{
    loop = l;
    env_strings[0] = mem_strdup(worker);
    env_strings[1] = mem_strdup(server_addr);
    env_strings[2] = mem_strdup(token_id);
    env_strings[3] = mem_strdup(token_secret);
    for (int i = 0; i < 4; i++)
        if (!env_strings[i])
            return -1;
    env.worker = env_strings[0];
    env.server_addr = env_strings[1];
    env.token_id = env_strings[2];
    env.token_secret = env_strings[3];
    env.payload_max = payload_max;
    env.max_frame = max_frame;
    return 0;
}

static bool serving(const struct function *fn)
{
    return fn->live && !fn->app->stopped;
}

/* Takes ct out of the pool: it will take no more inputs. */
static void retire(struct container *ct)
{
    if (ct->state == CT_STOPPING)
        return;
    if (ct->state == CT_STARTING)
        ct->fn->n_starting--;
    ct->fn->n_containers--;
    ct->state = CT_STOPPING;
}

static void start_container(struct function *fn)
{
    struct container *ct = container_start(loop, &env, fn, fn->app->code_path);
    if (!ct)
        return;
    list_push(&fn->containers, &ct->fn_link);
    fn->n_containers++;
    fn->n_starting++;
}

static void deadline(uv_timer_t *t)
{
    struct container *ct = t->data;
    struct call *call = ct->running;
    if (!call)
        return;
    struct function *fn = ct->fn;
    ct->running = NULL;
    call->container = NULL;
    fn->n_running--;
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_error_set(&err, SKIFF_ERR_FUNCTION_TIMEOUT, NULL,
                    "%s.%s() timed out after %g s (call %s); its container was stopped",
                    fn->app->name, fn->name, fn->cfg.timeout, call->id);
    calls_finish(call, ST_TIMEOUT, NULL, 0, &err);
    skiff_error_clear(&err);
    retire(ct);
    container_kill(ct, "its input ran past the function's timeout");
    sched_function_changed(fn);
}

static void idle_over(uv_timer_t *t)
{
    struct container *ct = t->data;
    struct function *fn = ct->fn;
    if (ct->state != CT_IDLE)
        return;
    if (fn->n_containers <= fn->cfg.min_containers && serving(fn) && ct->version == fn->version)
        return; /* kept warm */
    log_debug("container %s idle for %g s: stopping", ct->id, fn->cfg.scaledown_window);
    retire(ct);
    container_stop(ct);
}

static void assign(struct container *ct, struct call *call)
{
    struct function *fn = ct->fn;
    list_remove(&call->queue_link);
    fn->backlog--;
    call->status = ST_RUNNING;
    call->container = ct;
    ct->running = call;
    ct->state = CT_BUSY;
    fn->n_running++;
    uv_timer_start(&ct->timer, deadline, (uint64_t)(fn->cfg.timeout * 1000), 0);
    container_send_input(ct, call);
}

/* An idle container of fn's current version takes the next input, or waits. */
static void take_next(struct container *ct)
{
    struct function *fn = ct->fn;
    if (!list_empty(&fn->queue)) {
        assign(ct, container_of(fn->queue.next, struct call, queue_link));
        return;
    }
    ct->state = CT_IDLE;
    uv_timer_start(&ct->timer, idle_over, (uint64_t)(fn->cfg.scaledown_window * 1000), 0);
}

/* Puts queued inputs on idle containers and starts containers for the rest. */
static void dispatch(struct function *fn)
{
    if (shutting_down)
        return; /* queued inputs stay queued (durable ones in the store) */
    struct list_node *n, *t;
    list_for_each_safe(n, t, &fn->containers)
    {
        if (list_empty(&fn->queue))
            break;
        struct container *ct = container_of(n, struct container, fn_link);
        if (ct->state == CT_IDLE && ct->version == fn->version)
            take_next(ct);
    }
    if (!serving(fn))
        return;
    /* Each container still starting will take one queued input when ready. */
    while (fn->backlog > (size_t)fn->n_starting && fn->n_containers < fn->cfg.max_containers) {
        int before = fn->n_containers;
        start_container(fn);
        if (fn->n_containers == before)
            break; /* could not start one: the inputs wait for a container to free up */
    }
    while (fn->n_containers < fn->cfg.min_containers) {
        int before = fn->n_containers;
        start_container(fn);
        if (fn->n_containers == before)
            break;
    }
}

void sched_enqueue(struct call *call)
{
    struct function *fn = call->fn;
    if (!serving(fn)) {
        /* Stopped or redeployed without it between the request and now (a spawn's commit, a
         * restart): it can never run. */
        skiff_error err = SKIFF_ERROR_INIT;
        skiff_error_set(&err, SKIFF_ERR_CANCELLED, NULL,
                        "function call %s was terminated: %s.%s is no longer deployed", call->id,
                        fn->app->name, fn->name);
        calls_finish(call, ST_TERMINATED, NULL, 0, &err);
        skiff_error_clear(&err);
        return;
    }
    call->status = ST_PENDING;
    list_push(&fn->queue, &call->queue_link);
    fn->backlog++;
    dispatch(fn);
}

void sched_cancel(struct call *call, bool terminate_containers)
{
    (void)terminate_containers; /* one input per container: stopping the input stops it */
    struct function *fn = call->fn;
    if (list_linked(&call->queue_link) && call->status == ST_PENDING) {
        list_remove(&call->queue_link);
        fn->backlog--;
        return;
    }
    struct container *ct = call->container;
    if (!ct)
        return;
    ct->running = NULL;
    call->container = NULL;
    fn->n_running--;
    uv_timer_stop(&ct->timer);
    retire(ct);
    container_kill(ct, "its input was cancelled");
    dispatch(fn);
}

void sched_function_changed(struct function *fn)
{
    struct list_node *n, *t;
    list_for_each_safe(n, t, &fn->containers)
    {
        struct container *ct = container_of(n, struct container, fn_link);
        if (ct->state == CT_STOPPING)
            continue;
        if (fn->app->stopped && ct->running) {
            /* A stopped app's running inputs end now. */
            struct call *call = ct->running;
            ct->running = NULL;
            call->container = NULL;
            fn->n_running--;
            skiff_error err = SKIFF_ERROR_INIT;
            skiff_error_set(&err, SKIFF_ERR_CANCELLED, NULL,
                            "function call %s was terminated: the app %s was stopped", call->id,
                            fn->app->name);
            calls_finish(call, ST_TERMINATED, NULL, 0, &err);
            skiff_error_clear(&err);
            retire(ct);
            container_kill(ct, "its app was stopped");
            continue;
        }
        if (serving(fn) && ct->version == fn->version)
            continue;
        /* Old code or no longer served: idle ones stop now, busy ones after their input. */
        if (ct->state == CT_IDLE || ct->state == CT_STARTING) {
            retire(ct);
            container_stop(ct);
        }
    }
    dispatch(fn);
}

void sched_container_ready(struct container *ct)
{
    struct function *fn = ct->fn;
    if (ct->state != CT_STARTING)
        return;
    fn->n_starting--;
    ct->state = CT_IDLE;
    if (!serving(fn) || ct->version != fn->version) {
        retire(ct);
        container_stop(ct);
        return;
    }
    take_next(ct);
}

void sched_container_output(struct container *ct, const char *input_id, const char *value,
                            size_t len, const skiff_error *err)
{
    struct call *call = ct->running;
    struct function *fn = ct->fn;
    if (!call || strcmp(call->input_id, input_id)) {
        /* An output for an input that was cancelled or timed out meanwhile. */
        log_debug("container %s: output for %s ignored", ct->id, input_id);
        return;
    }
    ct->running = NULL;
    call->container = NULL;
    fn->n_running--;
    uv_timer_stop(&ct->timer);
    calls_finish(call,
                 err ? (err->code == SKIFF_ERR_INIT_FAILURE ? ST_INIT_FAILURE : ST_FAILURE)
                     : ST_SUCCESS,
                 value, len, err);
    if (ct->state == CT_STOPPING)
        return;
    if (!serving(fn) || ct->version != fn->version) {
        retire(ct);
        container_stop(ct);
        dispatch(fn);
        return;
    }
    take_next(ct);
}

/* Fails the oldest queued input with err (a container could not start for it). */
static void fail_head(struct function *fn, const skiff_error *err)
{
    if (list_empty(&fn->queue))
        return;
    struct call *call = container_of(fn->queue.next, struct call, queue_link);
    list_remove(&call->queue_link);
    fn->backlog--;
    calls_finish(call, ST_INIT_FAILURE, NULL, 0, err);
}

void sched_container_init_failed(struct container *ct, const skiff_error *err)
{
    struct function *fn = ct->fn;
    bool current = ct->version == fn->version;
    retire(ct);
    container_kill(ct, "it could not load its function");
    /* The same code fails the same way: every queued input of this version gets the error. */
    if (current)
        while (!list_empty(&fn->queue))
            fail_head(fn, err);
}

void sched_container_lost(struct container *ct)
{
    retire(ct);
    dispatch(ct->fn);
}

void sched_container_exited(struct container *ct, const char *why)
{
    struct function *fn = ct->fn;
    bool was_starting = ct->state == CT_STARTING;
    retire(ct);
    list_remove(&ct->fn_link);
    struct call *call = ct->running;
    if (call) {
        ct->running = NULL;
        call->container = NULL;
        fn->n_running--;
        skiff_error err = SKIFF_ERROR_INIT;
        skiff_error_set(&err, ct->exit_code ? (skiff_code)ct->exit_code : SKIFF_ERR_REMOTE, NULL,
                        "%s.%s() did not return: %s while running call %s", fn->app->name, fn->name,
                        why, call->id);
        calls_finish(call, ST_FAILURE, NULL, 0, &err);
        skiff_error_clear(&err);
    } else if (was_starting && !ct->killed && ct->version == fn->version) {
        /* Died before it was ready: fail one input, so a broken container cannot loop. */
        skiff_error err = SKIFF_ERROR_INIT;
        skiff_error_set(&err, SKIFF_ERR_INIT_FAILURE, NULL,
                        "the container for %s.%s could not start: %s", fn->app->name, fn->name,
                        why);
        fail_head(fn, &err);
        skiff_error_clear(&err);
    }
    dispatch(fn);
}

void sched_shutdown(void)
{
    shutting_down = true;
    for (struct container *ct = container_next(NULL); ct; ct = container_next(ct)) {
        if (ct->state != CT_STOPPING)
            retire(ct);
        container_kill(ct, "the server is shutting down");
    }
    for (int i = 0; i < 4; i++) {
        mem_free(env_strings[i]);
        env_strings[i] = NULL;
    }
}
