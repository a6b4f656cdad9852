/*
 * calls.c - function calls from request to outcome (see calls.h).
 *
 * Replies are only ever appended to a conn's output here; the loop sends them after the store's
 * group commit, so the id of a spawned call cannot reach its client before the call is on disk.
 */
#include "calls.h"

#include <stdio.h>
#include <string.h>

#include "apps.h"
#include "common/hmap.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/proto.h"
#include "conn.h"
#include "sched.h"
#include "store.h"

/* A GET waiting for a call to end. */
struct waiter {
    struct conn *conn;
    uint64_t rid;
    struct call *call;
    uv_timer_t timer; /* the GET's timeout, when it has one */
    bool timed;
    struct list_node call_link;
    struct list_node conn_link;
};

static uv_loop_t *loop;
static struct hmap calls_by_id;
static double retention_s;
static uv_timer_t expire_timer;
/* Durable outcomes whose commit failed, retried by retry_timer (linked by queue_link). */
static struct list_node retry = {&retry, &retry};
static uv_timer_t retry_timer;

/* Seconds between retries of failed outcome writes (disk full: give the operator time). */
#define RETRY_INTERVAL_MS 1000

const char *calls_status_name(enum call_status st)
{
    static const char *const names[] = {"pending",    "running", "success",      "failure",
                                        "terminated", "timeout", "init_failure", "expired"};
    return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "unknown";
}

static bool final(enum call_status st)
{
    return st >= ST_SUCCESS;
}

static void call_free(struct call *call)
{
    hmap_del(&calls_by_id, call->id);
    mem_free(call->args);
    mem_free(call->result);
    skiff_error_clear(&call->err);
    mem_free(call);
}

/* Frees call once nothing refers to it any more. */
static void maybe_free(struct call *call)
{
    if (final(call->status) && call->store_pending == 0 && list_empty(&call->waiters) &&
        !call->sync_conn && !call->spawn_conn && !call->container &&
        !list_linked(&call->queue_link))
        call_free(call);
}

static struct call *call_new(struct function *fn, const char *args, size_t len, const char *parent)
{
    struct call *call = mem_calloc(1, sizeof *call);
    if (!call)
        return NULL;
    call->args = mem_alloc(len ? len : 1);
    if (!call->args) {
        mem_free(call);
        return NULL;
    }
    if (len)
        memcpy(call->args, args, len);
    call->args_len = len;
    id_new(call->id, "fc");
    id_new(call->input_id, "in");
    snprintf(call->parent, sizeof call->parent, "%s", parent ? parent : "");
    call->fn = fn;
    call->status = ST_PENDING;
    call->created = store_now_ms();
    list_init(&call->sync_link);
    list_init(&call->waiters);
    list_init(&call->queue_link);
    if (hmap_put(&calls_by_id, call->id, call) < 0) {
        mem_free(call->args);
        mem_free(call);
        return NULL;
    }
    return call;
}

/* --- replies ---------------------------------------------------------------------------------- */

static void send_value(struct conn *c, uint64_t rid, const struct call *call, const char *value,
                       size_t len)
{
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, rid, call ? 3 : 1);
    if (call) {
        wire_str(&w, "call_id", call->id);
        wire_str(&w, "function_id", call->fn->id);
    }
    wire_bin(&w, "value", value ? value : "", len);
    if (wire_end(&w) != SKIFF_OK) {
        log_warn("%s: cannot queue a %zu-byte result, closing", c->peer, len);
        conn_close(c);
    }
}

static void send_err(struct conn *c, uint64_t rid, const skiff_error *err)
{
    if (wire_error(conn_out(c), rid, err) != SKIFF_OK)
        conn_close(c);
}

/* The outcome of an ended call: the result, or its error. with_ids for the reply to CALL. */
static void send_outcome(struct conn *c, uint64_t rid, const struct call *call, bool with_ids)
{
    if (call->status == ST_SUCCESS)
        send_value(c, rid, with_ids ? call : NULL, call->result, call->result_len);
    else
        send_err(c, rid, &call->err);
}

/* --- waiters ---------------------------------------------------------------------------------- */

static void waiter_closed(uv_handle_t *h)
{
    mem_free(h->data);
}

static void waiter_free(struct waiter *w)
{
    list_remove(&w->call_link);
    list_remove(&w->conn_link);
    if (w->timed) {
        uv_timer_stop(&w->timer);
        uv_close((uv_handle_t *)&w->timer, waiter_closed);
    } else {
        mem_free(w);
    }
}

static void waiter_timeout(uv_timer_t *t)
{
    struct waiter *w = t->data;
    struct call *call = w->call;
    conn_error(w->conn, w->rid, SKIFF_ERR_TIMEOUT,
               "function call %s has not finished yet (status %s)", call->id,
               calls_status_name(call->status));
    waiter_free(w);
    maybe_free(call);
}

static void add_waiter(struct conn *c, uint64_t rid, struct call *call, int64_t timeout_ms)
{
    struct waiter *w = mem_calloc(1, sizeof *w);
    if (!w) {
        conn_error(c, rid, SKIFF_ERR_NOMEM, "out of memory");
        return;
    }
    w->conn = c;
    w->rid = rid;
    w->call = call;
    list_push(&call->waiters, &w->call_link);
    list_push(&c->waiters, &w->conn_link);
    if (timeout_ms > 0) {
        uv_timer_init(loop, &w->timer);
        w->timer.data = w;
        w->timed = true;
        uv_timer_start(&w->timer, waiter_timeout, (uint64_t)timeout_ms, 0);
    }
}

/* --- requests --------------------------------------------------------------------------------- */

void calls_request(struct conn *c, uint64_t rid, struct function *fn, const char *args,
                   size_t args_len, bool spawn, const char *parent)
{
    struct call *call = call_new(fn, args, args_len, parent);
    if (!call) {
        conn_error(c, rid, SKIFF_ERR_NOMEM, "out of memory queueing the call");
        return;
    }
    list_push(&c->calls, &call->sync_link);
    if (spawn) {
        call->durable = true;
        call->spawn_conn = c;
        call->spawn_rid = rid;
        store_queue_spawn(call); /* acknowledged and queued in calls_spawn_committed */
        return;
    }
    call->sync_conn = c;
    call->sync_rid = rid;
    sched_enqueue(call);
}

void calls_spawn_committed(struct call *call, bool ok)
{
    struct conn *c = call->spawn_conn;
    call->spawn_conn = NULL;
    list_remove(&call->sync_link);
    if (!ok) {
        if (c)
            conn_error(c, call->spawn_rid, SKIFF_ERR_INTERNAL,
                       "the server could not store the call (see its log; is the disk full?)");
        call->status = ST_FAILURE; /* never acknowledged: forget it */
        maybe_free(call);
        return;
    }
    call->acked = true;
    if (c) {
        struct wire_writer w;
        wire_begin(&w, conn_out(c), OP_OK, call->spawn_rid, 2);
        wire_str(&w, "call_id", call->id);
        wire_str(&w, "function_id", call->fn->id);
        if (wire_end(&w) != SKIFF_OK)
            conn_close(c);
    }
    sched_enqueue(call);
}

void calls_restore(const char *call_id, const char *input_id, const char *parent,
                   struct function *fn, int64_t created, char *args, size_t args_len)
{
    struct call *call = mem_calloc(1, sizeof *call);
    if (!call) {
        mem_free(args);
        log_error("out of memory restoring call %s", call_id);
        return;
    }
    snprintf(call->id, sizeof call->id, "%s", call_id);
    snprintf(call->input_id, sizeof call->input_id, "%s", input_id);
    snprintf(call->parent, sizeof call->parent, "%s", parent);
    call->fn = fn;
    call->args = args;
    call->args_len = args_len;
    call->created = created;
    call->durable = call->acked = true;
    list_init(&call->sync_link);
    list_init(&call->waiters);
    list_init(&call->queue_link);
    if (hmap_put(&calls_by_id, call->id, call) < 0) {
        mem_free(args);
        mem_free(call);
        log_error("out of memory restoring call %s", call_id);
        return;
    }
    sched_enqueue(call);
}

void calls_finish(struct call *call, enum call_status status, const char *result, size_t len,
                  const skiff_error *err)
{
    if (final(call->status))
        return;
    call->status = status;
    mem_free(call->args);
    call->args = NULL;
    call->args_len = 0;
    if (status == ST_SUCCESS) {
        call->result = mem_alloc(len ? len : 1);
        if (call->result) {
            if (len)
                memcpy(call->result, result, len);
            call->result_len = len;
        } else {
            call->status = ST_FAILURE;
            skiff_error_set(&call->err, SKIFF_ERR_NOMEM, NULL,
                            "the server ran out of memory holding the result");
        }
    } else {
        call->err.code = err->code;
        call->err.type = mem_strdup(err->type ? err->type : skiff_code_name(err->code));
        call->err.message = mem_strdup(err->message ? err->message : "");
        call->err.traceback = err->traceback ? mem_strdup(err->traceback) : NULL;
    }
    if (call->sync_conn) {
        send_outcome(call->sync_conn, call->sync_rid, call, true);
        list_remove(&call->sync_link);
        call->sync_conn = NULL;
    }
    while (!list_empty(&call->waiters)) {
        struct waiter *w = container_of(call->waiters.next, struct waiter, call_link);
        send_outcome(w->conn, w->rid, call, false);
        waiter_free(w);
    }
    if (call->durable)
        store_queue_outcome(call);
    maybe_free(call);
}

static void retry_outcomes(uv_timer_t *t);

void calls_outcome_committed(struct call *call, bool ok)
{
    if (!ok) {
        /* Keep it in memory (GET still answers) and try again later. */
        if (!list_linked(&call->queue_link)) {
            list_push(&retry, &call->queue_link);
            if (!uv_is_active((uv_handle_t *)&retry_timer))
                uv_timer_start(&retry_timer, retry_outcomes, RETRY_INTERVAL_MS, 0);
        }
        return;
    }
    maybe_free(call);
}

static void retry_outcomes(uv_timer_t *t)
{
    (void)t;
    while (!list_empty(&retry)) {
        struct call *call = container_of(retry.next, struct call, queue_link);
        list_remove(&call->queue_link);
        store_queue_outcome(call);
    }
}

/* Parses and validates a call id from a request; replies with an error when it is bad. */
static bool check_id(struct conn *c, uint64_t rid, const char *call_id)
{
    if (id_valid(call_id, "fc"))
        return true;
    conn_error(c, rid, SKIFF_ERR_INVALID, "'%s' is not a function call id (fc-...)", call_id);
    return false;
}

/* Answers from the store for a call no longer in memory. */
static void get_stored(struct conn *c, uint64_t rid, const char *call_id)
{
    struct stored_call sc;
    int found = store_get_call(call_id, &sc);
    if (found < 0) {
        conn_error(c, rid, SKIFF_ERR_INTERNAL, "the server could not read call %s", call_id);
        return;
    }
    if (found == 0) {
        conn_error(c, rid, SKIFF_ERR_NOT_FOUND, "function call %s does not exist", call_id);
        return;
    }
    if (sc.status == ST_EXPIRED || (sc.expires && sc.expires < store_now_ms())) {
        conn_error(c, rid, SKIFF_ERR_OUTPUT_EXPIRED,
                   "the result of function call %s has expired (results are kept for %.0f s)",
                   call_id, retention_s);
    } else if (sc.status == ST_SUCCESS) {
        send_value(c, rid, NULL, sc.result, sc.result_len);
    } else if (final((enum call_status)sc.status)) {
        send_err(c, rid, &sc.err);
    } else {
        conn_error(c, rid, SKIFF_ERR_INTERNAL, "call %s is unfinished but not scheduled", call_id);
    }
    store_call_clear(&sc);
}

void calls_get(struct conn *c, uint64_t rid, const char *call_id, int64_t timeout_ms)
{
    if (!check_id(c, rid, call_id))
        return;
    struct call *call = hmap_get(&calls_by_id, call_id);
    if (!call) {
        get_stored(c, rid, call_id);
        return;
    }
    if (final(call->status)) {
        send_outcome(c, rid, call, false);
        return;
    }
    if (timeout_ms == 0) {
        conn_error(c, rid, SKIFF_ERR_TIMEOUT, "function call %s has not finished yet (status %s)",
                   call->id, calls_status_name(call->status));
        return;
    }
    add_waiter(c, rid, call, timeout_ms);
}

static void cancel(struct call *call, bool terminate, const char *why)
{
    sched_cancel(call, terminate);
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_error_set(&err, SKIFF_ERR_CANCELLED, NULL, "function call %s was cancelled%s%s", call->id,
                    why ? ": " : "", why ? why : "");
    calls_finish(call, ST_TERMINATED, NULL, 0, &err);
    skiff_error_clear(&err);
}

void calls_cancel_request(struct conn *c, uint64_t rid, const char *call_id, bool terminate)
{
    if (!check_id(c, rid, call_id))
        return;
    struct call *call = hmap_get(&calls_by_id, call_id);
    if (call) {
        if (!final(call->status)) {
            log_info("cancelling %s (%s)%s", call->id, calls_status_name(call->status),
                     terminate ? ", terminating its containers" : "");
            cancel(call, terminate, NULL);
        }
        conn_ok(c, rid);
        return;
    }
    struct stored_call sc;
    int found = store_get_call(call_id, &sc);
    if (found > 0) {
        store_call_clear(&sc);
        conn_ok(c, rid); /* already finished: nothing to do */
    } else if (found == 0) {
        conn_error(c, rid, SKIFF_ERR_NOT_FOUND, "function call %s does not exist", call_id);
    } else {
        conn_error(c, rid, SKIFF_ERR_INTERNAL, "the server could not read call %s", call_id);
    }
}

void calls_info(struct conn *c, uint64_t rid, const char *call_id)
{
    if (!check_id(c, rid, call_id))
        return;
    struct call *call = hmap_get(&calls_by_id, call_id);
    struct stored_call sc;
    int found = 1;
    const struct function *fn;
    int status;
    int64_t created;
    if (call) {
        fn = call->fn;
        status = call->status;
        created = call->created;
    } else {
        found = store_get_call(call_id, &sc);
        if (found <= 0) {
            if (found == 0)
                conn_error(c, rid, SKIFF_ERR_NOT_FOUND, "function call %s does not exist", call_id);
            else
                conn_error(c, rid, SKIFF_ERR_INTERNAL, "the server could not read call %s",
                           call_id);
            return;
        }
        fn = apps_function(sc.function_id);
        status = sc.status;
        if (final((enum call_status)status) && sc.expires && sc.expires < store_now_ms())
            status = ST_EXPIRED;
        created = sc.created;
        store_call_clear(&sc);
    }
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, rid, 6);
    wire_str(&w, "call_id", call_id);
    wire_str(&w, "function_id", fn ? fn->id : "");
    wire_str(&w, "app", fn ? fn->app->name : "");
    wire_str(&w, "function", fn ? fn->name : "");
    wire_str(&w, "status", calls_status_name((enum call_status)status));
    wire_int(&w, "created", created / 1000);
    if (wire_end(&w) != SKIFF_OK)
        conn_close(c);
}

void calls_terminate_queued(struct function *fn, const char *why)
{
    while (!list_empty(&fn->queue)) {
        struct call *call = container_of(fn->queue.next, struct call, queue_link);
        cancel(call, false, why);
    }
}

void calls_conn_closed(struct conn *c)
{
    while (!list_empty(&c->waiters)) {
        struct waiter *w = container_of(c->waiters.next, struct waiter, conn_link);
        struct call *call = w->call;
        waiter_free(w);
        maybe_free(call);
    }
    while (!list_empty(&c->calls)) {
        struct call *call = container_of(c->calls.next, struct call, sync_link);
        list_remove(&call->sync_link);
        if (call->spawn_conn == c) {
            call->spawn_conn = NULL; /* the spawn still completes; nobody hears of it */
            continue;
        }
        call->sync_conn = NULL;
        /* Nobody waits for a blocking call any more: drop it if it has not started; a running
         * one finishes and its result is discarded. */
        if (call->status == ST_PENDING)
            cancel(call, false, "its caller disconnected");
        maybe_free(call);
    }
}

static void expire(uv_timer_t *t)
{
    (void)t;
    int n = store_expire(store_now_ms());
    if (n > 0)
        log_info("expired the results of %d calls", n);
}

int calls_init(uv_loop_t *l, double retention)
{
    loop = l;
    retention_s = retention;
    store_set_retention(retention);
    hmap_init(&calls_by_id);
    uv_timer_init(loop, &expire_timer);
    uv_timer_init(loop, &retry_timer);
    /* Sweep often enough that a short retention (tests) shows, at most once a minute. */
    uint64_t every = (uint64_t)(retention * 1000 / 2);
    if (every < 1000)
        every = 1000;
    if (every > 60000)
        every = 60000;
    uv_timer_start(&expire_timer, expire, 0, every);
    uv_unref((uv_handle_t *)&expire_timer);
    uv_unref((uv_handle_t *)&retry_timer);
    return 0;
}

void calls_shutdown(void)
{
    uv_close((uv_handle_t *)&expire_timer, NULL);
    uv_close((uv_handle_t *)&retry_timer, NULL);
}

void calls_deinit(void)
{
    for (size_t i = 0; i < calls_by_id.cap; i++) {
        struct hmap_slot *s = &calls_by_id.slots[i];
        if (s->val) {
            struct call *call = s->val;
            mem_free(call->args);
            mem_free(call->result);
            skiff_error_clear(&call->err);
            mem_free(call);
        }
    }
    hmap_deinit(&calls_by_id);
}
