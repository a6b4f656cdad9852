/*
 * sched.c - queues, dispatch, container pools, deadlines and retries (see sched.h).
 *
 * Counters on struct function: n_containers counts containers that can still take inputs
 * (starting, idle, busy); a container leaves that count when it is retired (asked to stop,
 * killed) even though its process may live a little longer. n_starting counts those not yet
 * ready. retire() is the one place both change. n_running counts inputs held by containers.
 *
 * Each container's one timer serves whatever it waits for: the earliest deadline among the
 * inputs it holds and the cancelled inputs it still owes an output for, or, holding nothing,
 * the end of its idle window. arm() recomputes it after every change.
 */
#include "sched.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "apps.h"
#include "calls.h"
#include "common/log.h"
#include "common/mem.h"
#include "container.h"
#include "metrics.h"
#include "secrets.h"
#include "template.h"
#include "volumes.h"

/* Inputs a container may hold beyond what it runs at once, for functions whose inputs take
 * well under a millisecond: enough to cover a round trip to the worker at full speed. */
#define PREFETCH 64
/* An input "takes well under a millisecond" below this moving average. */
#define FAST_MS 0.5
/* How long a cancelled input may keep running before its container is killed. */
#define CANCEL_GRACE_MS 5000
/* What starting a container costs (ms), about: fork, exec, loading the app (docs/performance.md
 * has the measured cold start). The autoscaler does not start one for less work than this. */
#define START_COST_MS 5.0
/* Times an input may be lost with its container before it fails (docs/protocol.md). */
#define MAX_LOST 3
/* A container that could not start (out of file descriptors, processes, memory) is tried again
 * after START_RETRY_MS, doubling to START_RETRY_MAX_MS: the cause is often passing. After
 * START_ATTEMPTS starts in a row failed (about 6 s), the queued inputs of a function with no
 * container fail with the cause rather than wait for one that may never come. */
#define START_RETRY_MS 100
#define START_RETRY_MAX_MS 3200
#define START_ATTEMPTS 7

static uv_loop_t *loop;
static struct container_env env;
static char *env_strings[4];
static bool shutting_down; /* sched_shutdown ran: start nothing more */

/* Inputs waiting for a retry, soonest first, on one timer. */
struct delayed {
    struct input *in;
    uint64_t due; /* loop ms */
};
static struct delayed *delayed;
static size_t n_delayed, cap_delayed;
static uv_timer_t retry_timer;

static void dispatch(struct function *fn);

/* Functions waiting to try a container start again, on one timer (functions live as long as
 * the server: they are never freed while it runs). */
static struct function **start_waiting;
static size_t n_start_waiting, cap_start_waiting;
static uv_timer_t start_timer;

int sched_init(uv_loop_t *l, const char *worker, const char *server_addr, size_t payload_max,
               size_t max_frame)
{
    loop = l;
    env_strings[0] = mem_strdup(worker);
    env_strings[1] = mem_strdup(server_addr);
    for (int i = 0; i < 2; i++)
        if (!env_strings[i])
            return -1;
    env.worker = env_strings[0];
    env.server_addr = env_strings[1];
    env.payload_max = payload_max;
    env.max_frame = max_frame;
    uv_timer_init(loop, &retry_timer);
    uv_unref((uv_handle_t *)&retry_timer);
    uv_timer_init(loop, &start_timer);
    uv_unref((uv_handle_t *)&start_timer);
    return 0;
}

/* fn (a function or a class's pool) takes inputs. */
static bool serving(const struct function *fn)
{
    return apps_owner(fn)->live && !fn->app->stopped;
}

static int code_version(const struct function *fn)
{
    return apps_owner(fn)->version;
}

/* True when ct may take inputs: alive (one that exited takes none while its last messages are
 * read), running the code its function serves now. */
static bool current(const struct container *ct)
{
    return !ct->exited && serving(ct->fn) && ct->version == code_version(ct->fn);
}

/* Inputs one container may hold. */
static int capacity(const struct function *fn)
{
    int batch = fn->cfg.max_batch_size > 0 ? fn->cfg.max_batch_size : 1;
    int cap = fn->cfg.max_inputs * batch;
    if (fn->avg_ms > 0 && fn->avg_ms < FAST_MS)
        cap += PREFETCH;
    return cap;
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

static void fail_queue(struct function *fn, enum call_status status, const skiff_error *err);
static void fail_head(struct function *fn, const skiff_error *err);

static void start_due(uv_timer_t *t);

/* Arms the start timer for the soonest start retry waiting. */
static void arm_starts(void)
{
    uint64_t next = UINT64_MAX, now = uv_now(loop);
    for (size_t i = 0; i < n_start_waiting; i++)
        if (start_waiting[i]->start_retry_at < next)
            next = start_waiting[i]->start_retry_at;
    if (next == UINT64_MAX)
        uv_timer_stop(&start_timer);
    else
        uv_timer_start(&start_timer, start_due, next > now ? next - now : 0, 0);
}

static void start_due(uv_timer_t *t)
{
    (void)t;
    uint64_t now = uv_now(loop);
    /* Backwards, taking each due one out before its dispatch: a dispatch whose start fails again
     * appends its function at the end, past what is left to visit. */
    for (size_t i = n_start_waiting; i-- > 0;) {
        struct function *fn = start_waiting[i];
        if (fn->start_retry_at > now)
            continue;
        start_waiting[i] = start_waiting[--n_start_waiting];
        fn->start_retry_at = 0;
        dispatch(fn);
    }
    arm_starts();
}

/* A container start for fn failed (why): tried again after a backoff, or, after
 * START_ATTEMPTS failures in a row, the queued inputs fail if no container can take them. */
static void start_failed(struct function *fn, const char *why)
{
    if (++fn->start_failures >= START_ATTEMPTS) {
        fn->start_failures = 0;
        if (fn->n_containers == 0 && !list_empty(&fn->queue)) {
            skiff_error err = SKIFF_ERROR_INIT;
            skiff_error_set(&err, SKIFF_ERR_REMOTE, NULL,
                            "could not start a container for %s.%s (%d attempts): %s",
                            fn->app->name, fn->name, START_ATTEMPTS, why);
            log_warn("%s: failing the %zu queued input(s)", err.message, fn->backlog);
            fail_queue(fn, ST_FAILURE, &err);
            skiff_error_clear(&err);
            return;
        }
    }
    if (fn->start_retry_at)
        return;
    if (n_start_waiting == cap_start_waiting) {
        size_t cap = cap_start_waiting ? cap_start_waiting * 2 : 16;
        struct function **p = mem_realloc(start_waiting, cap * sizeof *p);
        if (!p)
            return; /* the next input or container event tries again */
        start_waiting = p;
        cap_start_waiting = cap;
    }
    int shift = fn->start_failures > 0 ? fn->start_failures - 1 : 0;
    uint64_t delay = (uint64_t)START_RETRY_MS << shift;
    if (delay > START_RETRY_MAX_MS)
        delay = START_RETRY_MAX_MS;
    fn->start_retry_at = uv_now(loop) + delay;
    start_waiting[n_start_waiting++] = fn;
    arm_starts();
}

static void start_container(struct function *fn)
{
    char why[400];
    /* A secret or volume deleted since the deploy: the queued inputs fail now, clearly. */
    if (secrets_check(&fn->cfg, why, sizeof why) < 0 ||
        volumes_check_start(&fn->cfg, why, sizeof why) < 0) {
        skiff_error err = SKIFF_ERROR_INIT;
        skiff_error_set(&err, SKIFF_ERR_INIT_FAILURE, NULL,
                        "cannot start a container for %s.%s: %s", fn->app->name, fn->name, why);
        log_warn("%s", err.message);
        fail_queue(fn, ST_FAILURE, &err);
        skiff_error_clear(&err);
        start_failed(fn, why);
        return;
    }
    struct container *ct = container_start(loop, &env, fn, fn->app->code_path, why, sizeof why);
    if (!ct) {
        start_failed(fn, why);
        return;
    }
    fn->start_failures = 0;
    list_push(&fn->containers, &ct->fn_link);
    fn->n_containers++;
    fn->n_starting++;
}

/* --- timers ----------------------------------------------------------------------------------- */

static void on_timer(uv_timer_t *t);

/* (Re)arms ct's timer for the earliest thing it waits for. */
static void arm(struct container *ct)
{
    if (ct->state == CT_STOPPING || ct->exited)
        return;
    uint64_t due = UINT64_MAX;
    if (!list_empty(&ct->held))
        due = container_of(ct->held.next, struct input, link)->deadline;
    for (int i = 0; i < ct->n_zombies; i++)
        if (ct->zombies[i].deadline < due)
            due = ct->zombies[i].deadline;
    if (due == UINT64_MAX) {
        if (ct->state == CT_STARTING)
            return;
        ct->state = CT_IDLE;
        due = uv_now(loop) + (uint64_t)(ct->fn->cfg.scaledown_window * 1000);
    }
    uint64_t now = uv_now(loop);
    uv_timer_start(&ct->timer, on_timer, due > now ? due - now : 0, 0);
}

/* Puts every input ct holds back in its queue (lost with the container, not their fault), or
 * fails the ones lost too often. */
static void requeue_held(struct container *ct)
{
    struct function *fn = ct->fn;
    /* Back at the head, in their order. */
    while (!list_empty(&ct->held)) {
        struct input *in = container_of(ct->held.prev, struct input, link);
        container_take_back(ct, in);
        fn->n_running--;
        if (++in->lost >= MAX_LOST) {
            skiff_error err = SKIFF_ERROR_INIT;
            skiff_error_set(&err, SKIFF_ERR_REMOTE, NULL,
                            "%s.%s() input %s was lost with its container %d times (last: %s)",
                            fn->app->name, fn->name, in->id, in->lost,
                            ct->exit_reason ? ct->exit_reason : "it died");
            calls_input_done(in, ST_FAILURE, NULL, 0, &err);
            skiff_error_clear(&err);
            continue;
        }
        in->status = ST_PENDING;
        list_insert_before(fn->queue.next, &in->link);
        fn->backlog++;
    }
}

/* Kills ct for reason; what it held goes back to the queue. */
static void kill_and_requeue(struct container *ct, const char *reason)
{
    struct function *fn = ct->fn;
    retire(ct);
    container_kill(ct, reason);
    requeue_held(ct);
    dispatch(fn);
}

static void retry_due(uv_timer_t *t);

static void arm_retries(void)
{
    if (!n_delayed) {
        uv_timer_stop(&retry_timer);
        return;
    }
    uint64_t now = uv_now(loop);
    uv_timer_start(&retry_timer, retry_due, delayed[0].due > now ? delayed[0].due - now : 0, 0);
}

/* Schedules in to run again after delay_ms. false when out of memory. */
static bool delay_input(struct input *in, uint64_t delay_ms)
{
    if (n_delayed == cap_delayed) {
        size_t cap = cap_delayed ? cap_delayed * 2 : 64;
        struct delayed *p = mem_realloc(delayed, cap * sizeof *p);
        if (!p)
            return false;
        delayed = p;
        cap_delayed = cap;
    }
    uint64_t due = uv_now(loop) + delay_ms;
    size_t i = n_delayed;
    while (i > 0 && delayed[i - 1].due > due) {
        delayed[i] = delayed[i - 1];
        i--;
    }
    delayed[i] = (struct delayed){in, due};
    n_delayed++;
    in->status = ST_PENDING;
    arm_retries();
    return true;
}

static void retry_due(uv_timer_t *t)
{
    (void)t;
    uint64_t now = uv_now(loop);
    size_t k = 0;
    while (k < n_delayed && delayed[k].due <= now)
        k++;
    struct delayed *due = mem_alloc(k ? k * sizeof *due : 1);
    if (!due) {
        uv_timer_start(&retry_timer, retry_due, 100, 0);
        return;
    }
    memcpy(due, delayed, k * sizeof *due);
    memmove(delayed, delayed + k, (n_delayed - k) * sizeof *delayed);
    n_delayed -= k;
    arm_retries();
    for (size_t i = 0; i < k; i++)
        sched_enqueue(due[i].in);
    mem_free(due);
}

/* True if in was waiting for a retry (it is taken off the list). */
static bool undelay(struct input *in)
{
    for (size_t i = 0; i < n_delayed; i++)
        if (delayed[i].in == in) {
            memmove(delayed + i, delayed + i + 1, (n_delayed - i - 1) * sizeof *delayed);
            n_delayed--;
            arm_retries();
            return true;
        }
    return false;
}

/* Ends a failed attempt of in: retried if its function's policy allows, else final. */
static void attempt_failed(struct input *in, enum call_status status, const skiff_error *err)
{
    const struct retry_policy *p = &in->call->pool->cfg.retries;
    if (in->attempts < p->max_retries && !in->call->cancelled && !shutting_down) {
        double delay = p->initial_delay * pow(p->backoff_coefficient, in->attempts);
        if (delay > p->max_delay)
            delay = p->max_delay;
        in->attempts++;
        log_debug("input %s failed (%s): retry %d of %d in %.3g s", in->id,
                  err->message ? err->message : "", in->attempts, p->max_retries, delay);
        if (delay_input(in, (uint64_t)(delay * 1000)))
            return;
    }
    calls_input_done(in, status, NULL, 0, err);
}

/* An input ran past its deadline on ct. */
static void timed_out(struct container *ct, struct input *in)
{
    struct function *fn = ct->fn;
    container_take_back(ct, in);
    fn->n_running--;
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_error_set(&err, SKIFF_ERR_FUNCTION_TIMEOUT, NULL,
                    "%s.%s() timed out after %g s (call %s); its container was stopped",
                    fn->app->name, fn->name, fn->cfg.timeout, in->call->id);
    attempt_failed(in, ST_TIMEOUT, &err);
    skiff_error_clear(&err);
    kill_and_requeue(ct, "an input ran past the function's timeout");
}

static void on_timer(uv_timer_t *t)
{
    struct container *ct = t->data;
    struct function *fn = ct->fn;
    uint64_t now = uv_now(loop);
    if (!list_empty(&ct->held)) {
        struct input *head = container_of(ct->held.next, struct input, link);
        if (head->deadline <= now) {
            timed_out(ct, head);
            return;
        }
    }
    for (int i = 0; i < ct->n_zombies; i++)
        if (ct->zombies[i].deadline <= now) {
            kill_and_requeue(ct, "a cancelled input did not return within the grace period");
            return;
        }
    if (ct->state == CT_IDLE && list_empty(&ct->held) && ct->n_zombies == 0) {
        if (fn->n_containers <= fn->cfg.min_containers && current(ct)) {
            arm(ct); /* kept warm */
            return;
        }
        log_debug("container %s idle for %g s: stopping", ct->id, fn->cfg.scaledown_window);
        retire(ct);
        container_stop(ct);
        dispatch(fn); /* min_containers may want a replacement */
        return;
    }
    arm(ct);
}

/* --- dispatch --------------------------------------------------------------------------------- */

static void assign(struct container *ct, struct input *in)
{
    struct function *fn = ct->fn;
    list_remove(&in->link);
    fn->backlog--;
    in->status = ST_RUNNING;
    uint64_t budget = (uint64_t)(fn->cfg.timeout * 1000);
    if (fn->cfg.max_batch_size > 0)
        budget += (uint64_t)fn->cfg.wait_ms; /* it may wait for its batch to fill */
    in->deadline = uv_now(loop) + budget;
    bool was_empty = list_empty(&ct->held);
    container_give(ct, in);
    ct->state = CT_BUSY;
    fn->n_running++;
    if (was_empty)
        arm(ct);
}

/* Fills ct from its function's queue up to its capacity. */
static void fill(struct container *ct)
{
    struct function *fn = ct->fn;
    int cap = capacity(fn);
    while (!list_empty(&fn->queue) && ct->n_held + ct->n_zombies < cap)
        assign(ct, container_of(fn->queue.next, struct input, link));
}

/* The number of containers the autoscaler wants for fn now. */
static int wanted(const struct function *fn)
{
    const struct fn_config *c = &fn->cfg;
    size_t work = fn->backlog + (size_t)fn->n_running;
    size_t per = (size_t)(c->target_inputs > 0 ? c->target_inputs : 1);
    size_t want = (work + per - 1) / per;
    /* A function whose inputs take a fraction of a millisecond: the containers it has will
     * finish the work sooner than a new one could start, so none is started for it. */
    if (fn->avg_ms > 0 && fn->n_containers > 0 &&
        (double)work * fn->avg_ms / ((double)fn->n_containers * c->max_inputs) < START_COST_MS &&
        want > (size_t)fn->n_containers)
        want = (size_t)fn->n_containers;
    if (work > 0)
        want += (size_t)c->buffer_containers;
    if (want < (size_t)c->min_containers)
        want = (size_t)c->min_containers;
    if (want > (size_t)c->max_containers)
        want = (size_t)c->max_containers;
    return (int)want;
}

/* Puts queued inputs on containers with room and starts containers for the rest. */
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
        if ((ct->state == CT_IDLE || ct->state == CT_BUSY) && current(ct))
            fill(ct);
    }
    if (!serving(fn))
        return;
    if (fn->start_retry_at)
        return; /* a start failed: the next waits for its backoff (start_due) */
    /* Containers still starting will each take a share of the queue when ready. */
    int want = wanted(fn);
    while (fn->n_containers < want &&
           (fn->backlog > (size_t)fn->n_starting * (size_t)fn->cfg.target_inputs ||
            fn->n_containers < fn->cfg.min_containers ||
            fn->n_containers - fn->n_running < fn->cfg.buffer_containers)) {
        int before = fn->n_containers;
        start_container(fn);
        if (fn->n_containers == before)
            break; /* could not start one: the inputs wait for a container to free up */
    }
}

void sched_enqueue(struct input *in)
{
    struct function *fn = in->call->pool;
    if (!serving(fn)) {
        /* Stopped or redeployed without it between the request and now (a spawn's commit, a
         * restart): it can never run. */
        skiff_error err = SKIFF_ERROR_INIT;
        skiff_error_set(&err, SKIFF_ERR_CANCELLED, NULL,
                        "function call %s was terminated: %s.%s is no longer deployed",
                        in->call->id, fn->app->name, fn->name);
        calls_input_done(in, ST_TERMINATED, NULL, 0, &err);
        skiff_error_clear(&err);
        return;
    }
    in->status = ST_PENDING;
    list_push(&fn->queue, &in->link);
    fn->backlog++;
    dispatch(fn);
}

void sched_cancel(struct input *in, bool terminate_containers)
{
    struct function *fn = in->call->pool;
    if (undelay(in))
        return;
    struct container *ct = in->container;
    if (!ct) {
        if (list_linked(&in->link)) {
            list_remove(&in->link);
            fn->backlog--;
        }
        return;
    }
    fn->n_running--;
    if (terminate_containers) {
        container_take_back(ct, in);
        kill_and_requeue(ct, "its input was cancelled with terminate_containers");
        return;
    }
    container_cancel(ct, in, CANCEL_GRACE_MS);
    arm(ct);
    dispatch(fn);
}

void sched_terminate_queued(struct function *fn, const char *why)
{
    while (!list_empty(&fn->queue)) {
        struct input *in = container_of(fn->queue.next, struct input, link);
        list_remove(&in->link);
        fn->backlog--;
        skiff_error err = SKIFF_ERROR_INIT;
        skiff_error_set(&err, SKIFF_ERR_CANCELLED, NULL, "function call %s was cancelled: %s",
                        in->call->id, why);
        calls_input_done(in, ST_TERMINATED, NULL, 0, &err);
        skiff_error_clear(&err);
    }
    for (size_t i = 0; i < n_delayed;) {
        struct input *in = delayed[i].in;
        if (in->call->pool != fn) {
            i++;
            continue;
        }
        undelay(in);
        skiff_error err = SKIFF_ERROR_INIT;
        skiff_error_set(&err, SKIFF_ERR_CANCELLED, NULL, "function call %s was cancelled: %s",
                        in->call->id, why);
        calls_input_done(in, ST_TERMINATED, NULL, 0, &err);
        skiff_error_clear(&err);
    }
}

/* Fails every input ct holds with err (its app was stopped). */
static void fail_held(struct container *ct, enum call_status status, const skiff_error *err)
{
    while (!list_empty(&ct->held)) {
        struct input *in = container_of(ct->held.next, struct input, link);
        container_take_back(ct, in);
        ct->fn->n_running--;
        calls_input_done(in, status, NULL, 0, err);
    }
}

void sched_function_changed(struct function *fn)
{
    if (fn->is_class) {
        /* The class's pools follow it. */
        for (size_t i = 0; i < fn->pools.cap; i++)
            if (fn->pools.slots[i].val)
                sched_function_changed(fn->pools.slots[i].val);
        return;
    }
    template_pool_changed(fn); /* a snapshot template of old code retires */
    struct list_node *n, *t;
    list_for_each_safe(n, t, &fn->containers)
    {
        struct container *ct = container_of(n, struct container, fn_link);
        if (ct->state == CT_STOPPING)
            continue;
        if (fn->app->stopped && !list_empty(&ct->held)) {
            /* A stopped app's running inputs end now. */
            skiff_error err = SKIFF_ERROR_INIT;
            skiff_error_set(&err, SKIFF_ERR_CANCELLED, NULL,
                            "function call was terminated: the app %s was stopped", fn->app->name);
            fail_held(ct, ST_TERMINATED, &err);
            skiff_error_clear(&err);
            retire(ct);
            container_kill(ct, "its app was stopped");
            continue;
        }
        if (current(ct))
            continue;
        /* Old code or no longer served: idle ones stop now, busy ones after their inputs. */
        if (ct->state == CT_IDLE || ct->state == CT_STARTING) {
            retire(ct);
            container_stop(ct);
        }
    }
    dispatch(fn);
}

/* --- container events ------------------------------------------------------------------------- */

void sched_container_ready(struct container *ct)
{
    struct function *fn = ct->fn;
    if (ct->state != CT_STARTING)
        return;
    fn->n_starting--;
    ct->state = CT_IDLE;
    if (!current(ct)) {
        retire(ct);
        container_stop(ct);
        return;
    }
    fill(ct);
    arm(ct);
    dispatch(fn);
}

/* After ct finished an input: more work, or stop if it is of old code. */
static void after_output(struct container *ct)
{
    struct function *fn = ct->fn;
    if (ct->state == CT_STOPPING)
        return;
    if (!current(ct)) {
        if (list_empty(&ct->held) && ct->n_zombies == 0) {
            retire(ct);
            container_stop(ct);
            dispatch(fn);
        }
        return;
    }
    fill(ct);
    arm(ct);
}

static bool is_zombie(const struct container *ct, uint32_t slot)
{
    for (int i = 0; i < ct->n_zombies; i++)
        if (ct->zombies[i].slot == slot)
            return true;
    return false;
}

void sched_container_broken(struct container *ct, const char *what)
{
    struct function *fn = ct->fn;
    if (ct->killed || ct->exited)
        return; /* already on its way out: its inputs are being dealt with */
    log_warn("container %s (%s.%s, pid %d) sent a malformed message (%s): killing it", ct->id,
             fn->app->name, fn->name, ct->pid, what);
    if (ct->state == CT_STARTING && ct->version == code_version(fn)) {
        /* Before it was ready (the app's own start-up wrote it): its replacement would do the
         * same, so one queued input fails, as for a container that dies before it is ready. */
        skiff_error err = SKIFF_ERROR_INIT;
        skiff_error_set(&err, SKIFF_ERR_INIT_FAILURE, NULL,
                        "the container for %s.%s could not start: container %s sent a malformed "
                        "message: %s",
                        fn->app->name, fn->name, ct->id, what);
        fail_head(fn, &err);
        skiff_error_clear(&err);
    }
    retire(ct);
    /* Whichever input wrote it, the conversation is lost for all of them: none is put back in
     * the queue as if the container had merely died. */
    while (!list_empty(&ct->held)) {
        struct input *in = container_of(ct->held.next, struct input, link);
        container_take_back(ct, in);
        fn->n_running--;
        skiff_error err = SKIFF_ERROR_INIT;
        skiff_error_set(&err, SKIFF_ERR_REMOTE, NULL,
                        "container %s sent a malformed message: %s; it was killed and %s.%s() "
                        "did not return (call %s)",
                        ct->id, what, fn->app->name, fn->name, in->call->id);
        attempt_failed(in, ST_FAILURE, &err);
        skiff_error_clear(&err);
    }
    container_kill(ct, "it sent a malformed message");
    dispatch(fn);
}

void sched_container_output(struct container *ct, uint32_t slot, int kind, const char *value,
                            size_t len, const skiff_error *err, uint64_t count)
{
    struct function *fn = ct->fn;
    struct input *in = container_held(ct, slot);
    if (!in) {
        /* An output for an input that was cancelled meanwhile (a zombie), or garbage. */
        if (!is_zombie(ct, slot)) {
            char what[96];
            snprintf(what, sizeof what, "an output for input slot %u, which it does not hold",
                     slot);
            sched_container_broken(ct, what);
        } else if (kind != 2 && container_forget_zombie(ct, slot)) {
            after_output(ct);
        }
        return;
    }
    if (kind == 2) {
        calls_gen_item(in, value, len);
        return;
    }
    (void)count;
    uint64_t took = uv_now(loop) + (uint64_t)(fn->cfg.timeout * 1000) - in->deadline;
    /* A moving average over about the last 16 inputs. */
    fn->avg_ms = fn->avg_ms > 0 ? fn->avg_ms + ((double)took - fn->avg_ms) / 16 : (double)took;
    if (fn->avg_ms <= 0)
        fn->avg_ms = 0.01; /* sub-millisecond: the loop clock does not see it */
    metrics_input_ran(in->call->fn, took);
    container_take_back(ct, in);
    fn->n_running--;
    if (kind == 1) {
        enum call_status st = err->code == SKIFF_ERR_INIT_FAILURE ? ST_INIT_FAILURE : ST_FAILURE;
        if (err->code == SKIFF_ERR_INIT_FAILURE || err->code == SKIFF_ERR_CANCELLED)
            calls_input_done(in, st, NULL, 0, err);
        else
            attempt_failed(in, st, err);
    } else {
        calls_input_done(in, ST_SUCCESS, value, len, NULL);
    }
    after_output(ct);
}

/* Fails every queued input of fn with err. */
static void fail_queue(struct function *fn, enum call_status status, const skiff_error *err)
{
    while (!list_empty(&fn->queue)) {
        struct input *in = container_of(fn->queue.next, struct input, link);
        list_remove(&in->link);
        fn->backlog--;
        calls_input_done(in, status, NULL, 0, err);
    }
}

/* Fails the oldest queued input with err (a container could not start for it). */
static void fail_head(struct function *fn, const skiff_error *err)
{
    if (list_empty(&fn->queue))
        return;
    struct input *in = container_of(fn->queue.next, struct input, link);
    list_remove(&in->link);
    fn->backlog--;
    calls_input_done(in, ST_INIT_FAILURE, NULL, 0, err);
}

void sched_container_init_failed(struct container *ct, const skiff_error *err)
{
    struct function *fn = ct->fn;
    bool cur = ct->version == code_version(fn);
    retire(ct);
    container_kill(ct, "it could not load its function");
    /* The same code fails the same way: every queued input of this version gets the error. */
    fail_held(ct, ST_INIT_FAILURE, err);
    if (cur)
        while (!list_empty(&fn->queue))
            fail_head(fn, err);
}

void sched_container_lost(struct container *ct)
{
    retire(ct);
    dispatch(ct->fn);
}

/* Fatal signals that user code raises itself (as opposed to SIGKILL from outside). */
static bool self_inflicted(int sig)
{
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGABRT || sig == SIGFPE || sig == SIGILL ||
           sig == SIGSYS || sig == SIGTRAP;
}

/* The input to blame for ct's death, or NULL: the one W_CRASH named, else the only one it held
 * when it died of its own accord (a crash or an exit, not a kill from outside or by us). */
static struct input *blamed(struct container *ct, int sig)
{
    if (ct->crashed)
        return container_held(ct, ct->crash_slot);
    if (ct->killed || ct->n_held != 1 || (sig && !self_inflicted(sig)))
        return NULL;
    return container_of(ct->held.next, struct input, link);
}

void sched_container_exited(struct container *ct, const char *why, int sig)
{
    struct function *fn = ct->fn;
    bool was_starting = ct->state == CT_STARTING;
    retire(ct);
    list_remove(&ct->fn_link);
    if (ct->exit_code) {
        /* Out of memory: every input it held shares the blame (one cannot tell which grew). */
        while (!list_empty(&ct->held)) {
            struct input *h = container_of(ct->held.next, struct input, link);
            container_take_back(ct, h);
            fn->n_running--;
            skiff_error err = SKIFF_ERROR_INIT;
            skiff_error_set(&err, (skiff_code)ct->exit_code, NULL,
                            "%s.%s() did not return: %s while running call %s", fn->app->name,
                            fn->name, why, h->call->id);
            attempt_failed(h, ST_FAILURE, &err);
            skiff_error_clear(&err);
        }
    }
    struct input *in = blamed(ct, sig);
    if (in) {
        container_take_back(ct, in);
        fn->n_running--;
        skiff_error err = SKIFF_ERROR_INIT;
        skiff_error_set(&err, SKIFF_ERR_REMOTE, NULL,
                        "%s.%s() did not return: %s while running call %s%s%s", fn->app->name,
                        fn->name, why, in->call->id, ct->crash_message ? ": " : "",
                        ct->crash_message ? ct->crash_message : "");
        attempt_failed(in, ST_FAILURE, &err);
        skiff_error_clear(&err);
    }
    if (!list_empty(&ct->held)) {
        requeue_held(ct);
    } else if (was_starting && !ct->killed && ct->version == code_version(fn)) {
        /* Died before it was ready: fail one input, so a broken container cannot loop. */
        skiff_error err = SKIFF_ERROR_INIT;
        skiff_error_set(&err, SKIFF_ERR_INIT_FAILURE, NULL,
                        "the container for %s.%s could not start: %s", fn->app->name, fn->name,
                        why);
        fail_head(fn, &err);
        skiff_error_clear(&err);
    }
    ct->n_zombies = 0;
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
    template_shutdown();
    uv_close((uv_handle_t *)&retry_timer, NULL);
    uv_close((uv_handle_t *)&start_timer, NULL);
    mem_free(start_waiting);
    start_waiting = NULL;
    n_start_waiting = cap_start_waiting = 0;
    mem_free(delayed);
    delayed = NULL;
    n_delayed = cap_delayed = 0;
    for (int i = 0; i < 4; i++) {
        mem_free(env_strings[i]);
        env_strings[i] = NULL;
    }
}
