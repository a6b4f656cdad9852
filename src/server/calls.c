/*
 * calls.c - function calls and inputs from request to outcome (see calls.h).
 *
 * Who hears of an outcome:
 *   - the owner: a blocking CALL gets the result as its reply; a remote_gen CALL gets the items
 *     on its stream, then its final reply; a map's OUTPUTS stream (call->out) gets each output
 *     once, after which the input is freed;
 *   - waiters: GET requests waiting for one input (index) of a call, with an optional timeout;
 *   - readers: OUTPUTS requests on a durable call (spawn_map, spawned generator), which first
 *     get what the store already holds and then each later output or item as it happens.
 * Replies are only ever appended to a conn's output here; the loop sends them after the store's
 * group commit, so the id of a spawned call cannot reach its client before the call is on disk.
 *
 * Memory: an input leaves memory once it is final and nothing needs it (its outcome is on disk,
 * or delivered for a map); a call leaves once it has no input in memory, no pending store write
 * and nobody attached. GET, OUTPUTS and CALL_INFO of a call not in memory read the store.
 */
#include "calls.h"
#include "metrics.h"
#include "calls_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "apps.h"
#include "common/codec.h"
#include "common/hmap.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/proto.h"
#include "conn.h"
#include "sched.h"
#include "store.h"
#include "stream.h"

/* A GET waiting for one input of a call to end. */
struct waiter {
    struct conn *conn; /* the GET's client, or NULL for a listener */
    uint64_t rid;
    struct call_listener *l; /* the in-process waiter, or NULL */
    struct call *call;
    uint32_t index;
    uv_timer_t timer; /* the GET's timeout, when it has one */
    bool timed;
    struct list_node call_link;
    struct list_node conn_link;
};

/* The calls made by one input, for the call graph (the input may have left memory). */
struct kids {
    char parent[ID_SIZE];
    struct list_node calls; /* struct call.sibling */
};

static uv_loop_t *loop;
static struct hmap calls_by_id;
static struct hmap kids_by_parent; /* parent input id -> struct kids */
static double retention_s;
static size_t payload_max;
static uv_timer_t expire_timer;
/* Durable outcomes whose commit failed, retried by retry_timer. */
static struct input **retry;
static size_t n_retry, cap_retry;
static uv_timer_t retry_timer;

/* Seconds between retries of failed outcome writes (disk full: give the operator time). */
#define RETRY_INTERVAL_MS 1000

const char *calls_status_name(enum call_status st)
{
    static const char *const names[] = {"pending",    "running", "success",      "failure",
                                        "terminated", "timeout", "init_failure", "expired"};
    return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "unknown";
}

const char *calls_kind_name(enum call_kind k)
{
    static const char *const names[] = {"single", "map", "spawn_map", "generator"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "unknown";
}

bool calls__final(int st)
{
    return st >= ST_SUCCESS;
}

bool calls__is_map(const struct call *call)
{
    return call->kind == CK_MAP || call->kind == CK_SPAWN_MAP;
}

/* Every input is final and no more can come. */
bool calls__complete(const struct call *call)
{
    return call->closed && call->n_final == call->n_inputs;
}

/* --- objects ---------------------------------------------------------------------------------- */

/*
 * The inputs of a call in memory. A map streams millions of inputs through the server while
 * only a window of them is in memory (the client bounds the inputs it has sent and not seen an
 * output for), so inputs are kept in a ring indexed by input index rather than an array of every
 * index: slot i % ring_cap holds input i for every live i in [base, base + ring_cap). Inputs
 * below base have all left memory; base moves up as the lowest ones leave.
 */
static struct input **slot(const struct call *call, uint32_t index)
{
    return &call->ring[index & (call->ring_cap - 1)];
}

struct input *calls_input_at(const struct call *call, uint32_t index)
{
    if (!call->ring_cap || index < call->base || index - call->base >= call->ring_cap)
        return NULL;
    struct input *in = *slot(call, index);
    return in && in->index == index ? in : NULL;
}

/* Makes room for inputs up to index n - 1. 0 or -1 (out of memory). */
int calls__inputs_reserve(struct call *call, uint32_t n)
{
    if (n <= call->base || n - call->base <= call->ring_cap)
        return 0;
    uint32_t need = n - call->base, cap = call->ring_cap ? call->ring_cap : 4;
    while (cap < need) {
        if (cap > UINT32_MAX / 2)
            return -1;
        cap *= 2;
    }
    struct input **ring = mem_calloc(cap, sizeof *ring);
    if (!ring)
        return -1;
    for (uint32_t i = 0; i < call->ring_cap; i++) {
        struct input *in = call->ring[i];
        if (in)
            ring[in->index & (cap - 1)] = in;
    }
    mem_free(call->ring);
    call->ring = ring;
    call->ring_cap = cap;
    return 0;
}

/* Moves base past the inputs that have left memory. */
static void advance_base(struct call *call)
{
    while (call->base < call->n_inputs && !calls_input_at(call, call->base))
        call->base++;
}

void calls__input_free(struct input *in)
{
    struct call *call = in->call;
    if (calls_input_at(call, in->index) == in) {
        *slot(call, in->index) = NULL;
        if (in->index == call->base)
            advance_base(call);
    }
    call->n_live--;
    mem_free(in->args);
    mem_free(in->result);
    mem_free(in->ran_on);
    skiff_error_clear(&in->err);
    mem_free(in);
}

/* Links call under its parent input (call graph). */
static void kids_add(struct call *call)
{
    list_init(&call->sibling);
    if (!call->parent[0])
        return;
    struct kids *k = hmap_get(&kids_by_parent, call->parent);
    if (!k) {
        k = mem_calloc(1, sizeof *k);
        if (!k)
            return; /* the graph is best effort */
        snprintf(k->parent, sizeof k->parent, "%s", call->parent);
        list_init(&k->calls);
        if (hmap_put(&kids_by_parent, k->parent, k) < 0) {
            mem_free(k);
            return;
        }
    }
    list_push(&k->calls, &call->sibling);
}

static void kids_remove(struct call *call)
{
    if (!list_linked(&call->sibling))
        return;
    list_remove(&call->sibling);
    struct kids *k = hmap_get(&kids_by_parent, call->parent);
    if (k && list_empty(&k->calls)) {
        hmap_del(&kids_by_parent, k->parent);
        mem_free(k);
    }
}

static void call_free(struct call *call)
{
    hmap_del(&calls_by_id, call->id);
    kids_remove(call);
    for (uint32_t i = 0; i < call->ring_cap; i++)
        if (call->ring[i])
            calls__input_free(call->ring[i]);
    mem_free(call->ring);
    mem_free(call);
}

/* Frees call once nothing refers to it any more. */
void calls__maybe_free_call(struct call *call)
{
    if (call->n_live == 0 && call->store_pending == 0 && calls__complete(call) && !call->owner &&
        !call->spawn_conn && !call->listener && list_empty(&call->waiters) &&
        list_empty(&call->readers) && !call->out)
        call_free(call);
}

/* Frees in once it is final and nothing needs it in memory. */
void calls__maybe_free_input(struct input *in)
{
    struct call *call = in->call;
    if (!calls__final(in->status) || in->store_pending || in->container || list_linked(&in->link))
        return;
    if (call->durable ? !in->stored : (call->kind == CK_MAP && !in->delivered))
        return;
    /* Its owner, waiters and readers were answered when it ended. */
    calls__input_free(in);
}

struct call *calls__call_new(struct function *fn, struct function *pool, enum call_kind kind,
                             const char *parent)
{
    struct call *call = mem_calloc(1, sizeof *call);
    if (!call)
        return NULL;
    id_new(call->id, "fc");
    snprintf(call->parent, sizeof call->parent, "%s", parent ? parent : "");
    call->fn = fn;
    call->pool = pool;
    call->kind = kind;
    call->closed = !calls__is_map(call);
    call->created = store_now_ms();
    list_init(&call->conn_link);
    list_init(&call->waiters);
    list_init(&call->readers);
    if (hmap_put(&calls_by_id, call->id, call) < 0) {
        mem_free(call);
        return NULL;
    }
    kids_add(call);
    metrics_call_new(call);
    return call;
}

/* A new input at index holding a copy of args (or taking it, when take is set). */
struct input *calls__input_new(struct call *call, uint32_t index, const char *args, size_t len,
                               bool take)
{
    if (calls__inputs_reserve(call, index + 1) < 0)
        return NULL;
    struct input *in = mem_calloc(1, sizeof *in);
    if (!in)
        return NULL;
    if (take) {
        in->args = (char *)args;
    } else {
        in->args = mem_alloc(len ? len : 1);
        if (!in->args) {
            mem_free(in);
            return NULL;
        }
        if (len)
            memcpy(in->args, args, len);
    }
    in->args_len = len;
    in->call = call;
    in->index = index;
    in->status = ST_PENDING;
    id_new(in->id, "in");
    list_init(&in->link);
    *slot(call, index) = in;
    call->n_live++;
    return in;
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

void calls__send_err(struct conn *c, uint64_t rid, const skiff_error *err)
{
    if (wire_error(conn_out(c), rid, err) != SKIFF_OK)
        conn_close(c);
}

/* The outcome of a final input: the result, or its error. with_ids for the reply to CALL. */
static void send_outcome(struct conn *c, uint64_t rid, const struct input *in, bool with_ids)
{
    if (in->status == ST_SUCCESS)
        send_value(c, rid, with_ids ? in->call : NULL, in->result, in->result_len);
    else
        calls__send_err(c, rid, &in->err);
}

/* The final OK of a stream over call: count (and the ids, for a remote_gen CALL). */
void calls__send_stream_end(struct conn *c, uint64_t rid, const struct call *call, uint32_t count,
                            bool with_ids)
{
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, rid, with_ids ? 3 : 1);
    if (with_ids) {
        wire_str(&w, "call_id", call->id);
        wire_str(&w, "function_id", call->fn->id);
    }
    wire_int(&w, "count", count);
    if (wire_end(&w) != SKIFF_OK)
        conn_close(c);
}

static void reply_err(const struct reply_to *to, const skiff_error *err)
{
    if (to->l)
        to->l->on_done(to->l, NULL, 0, err);
    else
        calls__send_err(to->c, to->rid, err);
}

static void reply_error(const struct reply_to *to, skiff_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_error(const struct reply_to *to, skiff_code code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!to->l) {
        conn_error(to->c, to->rid, code, "%s", msg);
        return;
    }
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_error_set(&err, code, NULL, "%s", msg);
    to->l->on_done(to->l, NULL, 0, &err);
    skiff_error_clear(&err);
}

static void reply_value(const struct reply_to *to, const char *value, size_t len)
{
    if (to->l)
        to->l->on_done(to->l, value ? value : "", len, NULL);
    else
        send_value(to->c, to->rid, NULL, value, len);
}

static void reply_ok(const struct reply_to *to)
{
    if (to->l)
        to->l->on_done(to->l, NULL, 0, NULL);
    else
        conn_ok(to->c, to->rid);
}

static void reply_outcome(const struct reply_to *to, const struct input *in)
{
    if (in->status == ST_SUCCESS)
        reply_value(to, in->result, in->result_len);
    else
        reply_err(to, &in->err);
}

void calls__pack_output(msgpack_packer *pk, uint32_t index, int status, const char *value,
                        size_t len, const skiff_error *err)
{
    if (status == ST_SUCCESS) {
        msgpack_pack_array(pk, 3);
        msgpack_pack_uint32(pk, index);
        msgpack_pack_int(pk, 0);
        msgpack_pack_bin_with_body(pk, value ? value : "", len);
        return;
    }
    const char *type = err->type ? err->type : skiff_code_name(err->code);
    const char *msg = err->message ? err->message : "";
    msgpack_pack_array(pk, 5);
    msgpack_pack_uint32(pk, index);
    msgpack_pack_int(pk, err->code);
    msgpack_pack_str_with_body(pk, type, strlen(type));
    msgpack_pack_str_with_body(pk, msg, strlen(msg));
    if (err->traceback)
        msgpack_pack_str_with_body(pk, err->traceback, strlen(err->traceback));
    else
        msgpack_pack_nil(pk);
}

void calls__stream_output(struct stream *s, const struct input *in)
{
    calls__pack_output(stream_item(s), in->index, in->status, in->result, in->result_len, &in->err);
    stream_item_done(s);
}

/* Packs one generator item [seq, 0, value]. */
void calls__stream_gen_item(struct stream *s, uint32_t seq, const char *value, size_t len)
{
    msgpack_packer *pk = stream_item(s);
    msgpack_pack_array(pk, 3);
    msgpack_pack_uint32(pk, seq);
    msgpack_pack_int(pk, 0);
    msgpack_pack_bin_with_body(pk, value ? value : "", len);
    stream_item_done(s);
}

/* --- waiters (GET) ---------------------------------------------------------------------------- */

static void waiter_closed(uv_handle_t *h)
{
    mem_free(h->data);
}

static void waiter_free(struct waiter *w)
{
    list_remove(&w->call_link);
    list_remove(&w->conn_link);
    if (w->l)
        w->l->waiter = NULL;
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
    struct input *in = calls_input_at(call, w->index);
    struct reply_to to = {w->conn, w->rid, w->l};
    enum call_status st = in ? (enum call_status)in->status : ST_PENDING;
    /* Count the call as held while the answer may start another wait on it. */
    call->store_pending++;
    waiter_free(w);
    reply_error(&to, SKIFF_ERR_TIMEOUT, "function call %s has not finished yet (status %s)",
                call->id, calls_status_name(st));
    call->store_pending--;
    calls__maybe_free_call(call);
}

static void add_waiter(const struct reply_to *to, struct call *call, uint32_t index,
                       int64_t timeout_ms)
{
    struct waiter *w = mem_calloc(1, sizeof *w);
    if (!w) {
        reply_error(to, SKIFF_ERR_NOMEM, "out of memory");
        return;
    }
    w->conn = to->c;
    w->rid = to->rid;
    w->l = to->l;
    w->call = call;
    w->index = index;
    list_init(&w->conn_link);
    list_push(&call->waiters, &w->call_link);
    if (w->l)
        w->l->waiter = w;
    else
        list_push(&to->c->waiters, &w->conn_link);
    if (timeout_ms > 0) {
        uv_timer_init(loop, &w->timer);
        w->timer.data = w;
        w->timed = true;
        uv_timer_start(&w->timer, waiter_timeout, (uint64_t)timeout_ms, 0);
    }
}

/* Answers the waiters of in (final). */
static void answer_waiters(struct input *in)
{
    struct list_node *n, *t;
    list_for_each_safe(n, t, &in->call->waiters)
    {
        struct waiter *w = container_of(n, struct waiter, call_link);
        if (w->index != in->index)
            continue;
        struct reply_to to = {w->conn, w->rid, w->l};
        waiter_free(w);
        reply_outcome(&to, in);
    }
}

/* --- readers (OUTPUTS of durable calls) ------------------------------------------------------- */

static void reader_free(struct reader *r)
{
    list_remove(&r->call_link);
    mem_free(r);
}

void calls__reader_gone(struct stream *s, void *owner)
{
    (void)s;
    struct reader *r = owner;
    struct call *call = r->call;
    reader_free(r);
    calls__maybe_free_call(call);
}

/* Ends a reader's stream with the call's final reply. */
void calls__reader_end(struct reader *r)
{
    struct call *call = r->call;
    struct stream *s = r->s;
    stream_flush(s);
    if (call->kind == CK_GEN) {
        struct input *in = calls_input_at(call, 0);
        if (in && in->status != ST_SUCCESS)
            calls__send_err(s->conn, s->rid, &in->err);
        else
            calls__send_stream_end(s->conn, s->rid, call, in ? in->gen_items : 0, false);
    } else {
        calls__send_stream_end(s->conn, s->rid, call, call->n_inputs, false);
    }
    stream_free(s);
    reader_free(r);
}

/* --- outcomes --------------------------------------------------------------------------------- */

static void queue_outcome(struct input *in)
{
    struct call *call = in->call;
    if (call->kind == CK_SPAWN_MAP)
        store_queue(SW_INPUT_OUTCOME, call, in);
    else
        store_queue(SW_CALL_OUTCOME, call, in);
}

/* The map owner's stream: sends in's output once, then lets it go. */
void calls__deliver_map_output(struct input *in)
{
    struct call *call = in->call;
    if (!call->out || in->delivered)
        return;
    calls__stream_output(call->out, in);
    in->delivered = true;
}

/* Ends a map owner's OUTPUTS once everything is delivered. */
void calls__maybe_end_map(struct call *call)
{
    if (call->kind != CK_MAP || !call->out || !calls__complete(call) || call->cancelled)
        return;
    struct stream *s = call->out;
    call->out = NULL;
    stream_flush(s);
    calls__send_stream_end(s->conn, s->rid, call, call->n_inputs, false);
    stream_free(s);
    call->owner = NULL;
    list_remove(&call->conn_link);
}

/* A listener's map: in's outcome (and, in order, those it unblocks) to on_item; on_done once
 * every outcome is out. */
static void deliver_to_listener(struct call *call, struct input *in)
{
    struct call_listener *l = call->listener;
    if (!call->ordered) {
        l->on_item(l, in->index, in->result, in->result_len,
                   in->status == ST_SUCCESS ? NULL : &in->err);
        in->delivered = true;
    }
    while (call->ordered && call->next_out < call->n_inputs) {
        struct input *x = calls_input_at(call, call->next_out);
        if (!x || !calls__final(x->status))
            break;
        l->on_item(l, x->index, x->result, x->result_len, x->status == ST_SUCCESS ? NULL : &x->err);
        x->delivered = true;
        call->next_out++;
        if (x != in)
            calls__maybe_free_input(x); /* in is the caller's to free */
    }
    if (calls__complete(call) && (!call->ordered || call->next_out == call->n_inputs)) {
        call->listener = NULL;
        l->call = NULL;
        l->on_done(l, NULL, call->n_inputs, NULL);
    }
}

/* Hands in's outcome to whoever waits for it. */
static void deliver(struct input *in)
{
    struct call *call = in->call;
    switch (call->kind) {
    case CK_SINGLE:
        if (call->owner) {
            send_outcome(call->owner, call->owner_rid, in, true);
            list_remove(&call->conn_link);
            call->owner = NULL;
        }
        if (call->listener && (!call->durable || call->kept)) {
            struct call_listener *l = call->listener;
            call->listener = NULL;
            l->call = NULL;
            reply_outcome(&(struct reply_to){NULL, 0, l}, in);
        }
        answer_waiters(in);
        break;
    case CK_GEN:
        if (call->out) {
            struct stream *s = call->out;
            call->out = NULL;
            stream_flush(s);
            if (in->status == ST_SUCCESS)
                calls__send_stream_end(s->conn, s->rid, call, in->gen_items, true);
            else
                calls__send_err(s->conn, s->rid, &in->err);
            stream_free(s);
            list_remove(&call->conn_link);
            call->owner = NULL;
        }
        if (call->listener) {
            struct call_listener *l = call->listener;
            call->listener = NULL;
            l->call = NULL;
            if (in->status == ST_SUCCESS)
                l->on_done(l, NULL, in->gen_items, NULL);
            else
                l->on_done(l, NULL, 0, &in->err);
        }
        while (!list_empty(&call->readers))
            calls__reader_end(container_of(call->readers.next, struct reader, call_link));
        break;
    case CK_MAP:
        if (call->listener)
            deliver_to_listener(call, in);
        calls__deliver_map_output(in);
        calls__maybe_end_map(call);
        break;
    case CK_SPAWN_MAP: {
        answer_waiters(in);
        struct list_node *n, *t;
        list_for_each_safe(n, t, &call->readers)
        {
            struct reader *r = container_of(n, struct reader, call_link);
            if (in->index >= r->from)
                calls__stream_output(r->s, in);
        }
        if (calls__complete(call))
            while (!list_empty(&call->readers))
                calls__reader_end(container_of(call->readers.next, struct reader, call_link));
        break;
    }
    }
}

void calls_input_done(struct input *in, enum call_status status, const char *result, size_t len,
                      const skiff_error *err)
{
    if (calls__final(in->status))
        return;
    struct call *call = in->call;
    in->status = (uint8_t)status;
    mem_free(in->args);
    in->args = NULL;
    in->args_len = 0;
    if (status == ST_SUCCESS) {
        in->result = mem_alloc(len ? len : 1);
        if (in->result) {
            if (len)
                memcpy(in->result, result, len);
            in->result_len = len;
        } else {
            in->status = ST_FAILURE;
            skiff_error_set(&in->err, SKIFF_ERR_NOMEM, NULL,
                            "the server ran out of memory holding the result");
        }
    } else {
        in->err.code = err->code;
        in->err.type = mem_strdup(err->type ? err->type : skiff_code_name(err->code));
        in->err.message = mem_strdup(err->message ? err->message : "");
        in->err.traceback = err->traceback ? mem_strdup(err->traceback) : NULL;
    }
    metrics_input_done(call->fn, in->status);
    call->n_final++;
    if (in->status != ST_SUCCESS)
        call->n_failed++;
    if (call->durable)
        queue_outcome(in);
    if (call->parent[0])
        store_queue_graph(call, in); /* after it leaves memory, the call graph reads this */
    deliver(in);
    if (call->durable && calls__complete(call) && call->kind == CK_SPAWN_MAP)
        store_queue(SW_CALL_OUTCOME, call, NULL);
    calls__maybe_free_input(in);
    calls__maybe_free_call(call);
}

void calls_gen_item(struct input *in, const char *value, size_t len)
{
    struct call *call = in->call;
    if (calls__final(in->status) || call->kind != CK_GEN)
        return;
    /* A new attempt (a retry, or a re-run after a restart) yields its items from the first
     * again: readers already have those up to gen_items, so each item is delivered once. */
    if (in->gen_run++ < in->gen_items)
        return;
    uint32_t seq = in->gen_items++;
    if (call->listener && call->listener->on_item)
        call->listener->on_item(call->listener, seq, value, len, NULL);
    if (call->out)
        calls__stream_gen_item(call->out, seq, value, len);
    if (call->durable) {
        store_queue_gen_item(call, seq, value, len);
        struct list_node *n, *t;
        list_for_each_safe(n, t, &call->readers)
        {
            struct reader *r = container_of(n, struct reader, call_link);
            if (seq >= r->from)
                calls__stream_gen_item(r->s, seq, value, len);
        }
    }
}

/* --- store verdicts --------------------------------------------------------------------------- */

static void retry_outcomes(uv_timer_t *t)
{
    (void)t;
    struct input **batch = retry;
    size_t n = n_retry;
    retry = NULL;
    n_retry = cap_retry = 0;
    for (size_t i = 0; i < n; i++) {
        batch[i]->store_pending--;
        queue_outcome(batch[i]);
    }
    mem_free(batch);
}

static void retry_later(struct input *in)
{
    if (n_retry == cap_retry) {
        size_t cap = cap_retry ? cap_retry * 2 : 64;
        struct input **p = mem_realloc(retry, cap * sizeof *p);
        if (!p) {
            log_error("out of memory: the outcome of %s stays in memory only", in->id);
            return;
        }
        retry = p;
        cap_retry = cap;
    }
    in->store_pending++; /* held until the retry queues it again */
    retry[n_retry++] = in;
    if (!uv_is_active((uv_handle_t *)&retry_timer))
        uv_timer_start(&retry_timer, retry_outcomes, RETRY_INTERVAL_MS, 0);
}

void calls_input_committed(struct input *in, bool ok)
{
    if (!ok) {
        retry_later(in);
        return;
    }
    struct call *call = in->call;
    if (calls__final(in->status))
        in->stored = true;
    calls__maybe_free_input(in);
    calls__maybe_free_call(call);
}

void calls_call_committed(struct call *call, bool ok)
{
    struct conn *c = call->spawn_conn;
    if (!call->acked) {
        /* The call's first write: acknowledge it now, or refuse it. */
        call->spawn_conn = NULL;
        list_remove(&call->conn_link);
        struct call_listener *l = call->listener;
        if (!call->kept || !ok) {
            call->listener = NULL;
            if (l)
                l->call = NULL;
        }
        if (!ok) {
            static const char why[] =
                "the server could not store the call (see its log; is the disk full?)";
            if (c)
                conn_error(c, call->spawn_rid, SKIFF_ERR_INTERNAL, "%s", why);
            call_free(call); /* never acknowledged: forget it */
            if (l)
                reply_error(&(struct reply_to){NULL, 0, l}, SKIFF_ERR_INTERNAL, why);
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
        struct input *in = calls_input_at(call, 0);
        if (in) {
            in->stored = true;
            sched_enqueue(in);
        }
        if (l && !call->kept) {
            call->store_pending++; /* held while the listener may start waiting on it */
            reply_ok(&(struct reply_to){NULL, 0, l});
            call->store_pending--;
        }
        calls__maybe_free_call(call);
        return;
    }
    if (!ok) {
        /* An outcome of a single call or the summary of a spawn_map: retried through its input,
         * or (map summary) on the next change. */
        struct input *in = calls_input_at(call, 0);
        if (in && call->kind != CK_SPAWN_MAP)
            retry_later(in);
        return;
    }
    struct input *in = calls_input_at(call, 0);
    if (in && call->kind != CK_SPAWN_MAP)
        calls__maybe_free_input(in);
    calls__maybe_free_call(call);
}

/* --- CALL ------------------------------------------------------------------------------------- */

/* web: the HTTP server serves fn as a web endpoint (the one way to call one). */
bool calls__kind_ok(const struct reply_to *to, struct function *fn, bool gen, bool web,
                    const char *what)
{
    if (fn->cfg.web && !web) {
        reply_error(to, SKIFF_ERR_INVALID,
                    "%s.%s is a web endpoint: call it over HTTP (%s is not allowed)", fn->app->name,
                    fn->name, what);
        return false;
    }
    if (!fn->cfg.web && web) {
        reply_error(to, SKIFF_ERR_NOT_FOUND, "%s.%s is not a web endpoint", fn->app->name,
                    fn->name);
        return false;
    }
    if (fn->cfg.generator && !gen) {
        reply_error(to, SKIFF_ERR_INVALID,
                    "%s.%s is a generator: use remote_gen (or spawn it as a generator), not %s",
                    fn->app->name, fn->name, what);
        return false;
    }
    if (!fn->cfg.generator && gen) {
        reply_error(to, SKIFF_ERR_INVALID, "%s.%s is not a generator: use remote or spawn, not %s",
                    fn->app->name, fn->name, what);
        return false;
    }
    return true;
}

void calls_request(struct conn *c, uint64_t rid, struct function *fn, struct function *pool,
                   const char *args, size_t args_len, unsigned flags, const char *parent,
                   char made[ID_SIZE])
{
    bool spawn = flags & CALL_SPAWN, gen = flags & CALL_GEN;
    made[0] = '\0';
    if (!calls__kind_ok(TO(c, rid), fn, gen, false,
                        gen     ? "remote_gen"
                        : spawn ? "spawn"
                                : "remote"))
        return;
    struct call *call = calls__call_new(fn, pool, gen ? CK_GEN : CK_SINGLE, parent);
    struct input *in = call ? calls__input_new(call, 0, args, args_len, false) : NULL;
    if (!in) {
        if (call)
            call_free(call);
        conn_error(c, rid, SKIFF_ERR_NOMEM, "out of memory queueing the call");
        return;
    }
    call->n_inputs = 1;
    memcpy(made, call->id, ID_SIZE);
    if (spawn) {
        call->durable = true;
        call->spawn_conn = c;
        call->spawn_rid = rid;
        list_push(&c->calls, &call->conn_link);
        store_queue(SW_CALL, call, in); /* acknowledged and queued in calls_call_committed */
        return;
    }
    call->owner = c;
    call->owner_rid = rid;
    call->cancel_on_close = flags & CALL_CANCEL_ON_CLOSE;
    list_push(&c->calls, &call->conn_link);
    if (gen && !(call->out = stream_new(c, rid, call, NULL))) {
        list_remove(&call->conn_link);
        call_free(call);
        conn_error(c, rid, SKIFF_ERR_NOMEM, "out of memory queueing the call");
        return;
    }
    sched_enqueue(in);
}

/* --- GET, CALL_INFO --------------------------------------------------------------------------- */

/* Validates a call id from a request; replies with an error when it is bad. */
bool calls__check_id(const struct reply_to *to, const char *call_id)
{
    if (id_valid(call_id, "fc"))
        return true;
    reply_error(to, SKIFF_ERR_INVALID, "'%s' is not a function call id (fc-...)", call_id);
    return false;
}

bool calls__expired(const struct stored_outcome *o)
{
    return o->status == ST_EXPIRED || (o->expires && o->expires < store_now_ms());
}

/* Answers GET from a stored outcome. */
static void send_stored(const struct reply_to *to, const char *call_id,
                        const struct stored_outcome *o)
{
    if (calls__expired(o))
        reply_error(
            to, SKIFF_ERR_OUTPUT_EXPIRED,
            "the result of function call %s has calls__expired (results are kept for %.0f s)",
            call_id, retention_s);
    else if (o->status == ST_SUCCESS)
        reply_value(to, o->result, o->result_len);
    else if (calls__final(o->status))
        reply_err(to, &o->err);
    else
        reply_error(to, SKIFF_ERR_INTERNAL, "call %s is unfinished but not scheduled", call_id);
}

void calls__db_error(const struct reply_to *to, const char *call_id)
{
    reply_error(to, SKIFF_ERR_INTERNAL, "the server could not read call %s", call_id);
}

void calls__not_a_call(const struct reply_to *to, const char *call_id)
{
    reply_error(to, SKIFF_ERR_NOT_FOUND, "function call %s does not exist", call_id);
}

/* GET of input index of a spawn_map, from the store. */
static void get_stored_input(const struct reply_to *to, const char *call_id, uint32_t index)
{
    struct stored_outcome o;
    int f = store_get_input(call_id, index, &o);
    if (f < 0)
        calls__db_error(to, call_id);
    else if (f == 0)
        calls__not_a_call(to, call_id);
    else
        send_stored(to, call_id, &o);
    if (f > 0)
        store_outcome_clear(&o);
}

/* GET of a call no longer in memory. */
static void get_stored(const struct reply_to *to, const char *call_id, int64_t index)
{
    struct stored_call sc;
    int found = store_get_call(call_id, &sc);
    if (found <= 0) {
        found < 0 ? calls__db_error(to, call_id) : calls__not_a_call(to, call_id);
        return;
    }
    if (sc.kind == CK_GEN) {
        reply_error(to, SKIFF_ERR_INVALID,
                    "function call %s is a generator: read its items with get_gen", call_id);
    } else if (sc.kind == CK_SPAWN_MAP && calls__final(sc.outcome.status) &&
               calls__expired(&sc.outcome)) {
        send_stored(to, call_id, &sc.outcome);
    } else if (sc.kind == CK_SPAWN_MAP) {
        if (index < 0) {
            reply_error(to, SKIFF_ERR_INVALID,
                        "function call %s has %u inputs: give the index of the one to get", call_id,
                        sc.n_inputs);
        } else if ((uint64_t)index >= sc.n_inputs) {
            reply_error(to, SKIFF_ERR_NOT_FOUND, "function call %s has no input %lld (%u)", call_id,
                        (long long)index, sc.n_inputs);
        } else {
            get_stored_input(to, call_id, (uint32_t)index);
        }
    } else {
        send_stored(to, call_id, &sc.outcome);
    }
    store_call_clear(&sc);
}

static void get_to(const struct reply_to *to, const char *call_id, int64_t timeout_ms,
                   int64_t index)
{
    if (!calls__check_id(to, call_id))
        return;
    struct call *call = hmap_get(&calls_by_id, call_id);
    if (!call) {
        store_flush(); /* outcomes queued this iteration become readable */
        call = hmap_get(&calls_by_id, call_id);
    }
    if (!call) {
        get_stored(to, call_id, index);
        return;
    }
    if (call->kind == CK_GEN) {
        reply_error(to, SKIFF_ERR_INVALID,
                    "function call %s is a generator: read its items with get_gen", call_id);
        return;
    }
    if (calls__is_map(call)) {
        if (index < 0) {
            reply_error(to, SKIFF_ERR_INVALID,
                        "function call %s has many inputs: give the index of the one to get",
                        call_id);
            return;
        }
        if ((uint64_t)index >= call->n_inputs) {
            if (call->closed) {
                reply_error(to, SKIFF_ERR_NOT_FOUND, "function call %s has no input %lld", call_id,
                            (long long)index);
                return;
            }
        }
    } else {
        index = 0;
    }
    struct input *in = calls_input_at(call, (uint32_t)index);
    if (!in && !calls__is_map(call)) {
        store_flush();
        get_stored(to, call_id, index);
        return;
    }
    if (!in && (uint64_t)index < call->n_inputs) {
        /* Final and gone from memory: the store has it. */
        if (call->kind == CK_MAP) {
            reply_error(to, SKIFF_ERR_OUTPUT_EXPIRED,
                        "the output of input %lld of map %s was already delivered",
                        (long long)index, call_id);
            return;
        }
        store_flush();
        get_stored_input(to, call_id, (uint32_t)index);
        return;
    }
    if (in && calls__final(in->status)) {
        reply_outcome(to, in);
        return;
    }
    if (timeout_ms == 0) {
        reply_error(to, SKIFF_ERR_TIMEOUT, "function call %s has not finished yet (status %s)",
                    call->id, calls_status_name(in ? (enum call_status)in->status : ST_PENDING));
        return;
    }
    add_waiter(to, call, (uint32_t)index, timeout_ms);
}

/* The status a call shows in CALL_INFO. */
static enum call_status call_status(const struct call *call)
{
    if (!calls__is_map(call)) {
        const struct input *in = calls_input_at(call, 0);
        return in ? (enum call_status)in->status : ST_SUCCESS;
    }
    if (call->cancelled)
        return ST_TERMINATED;
    if (!calls__complete(call))
        return call->n_final || call->n_live ? ST_RUNNING : ST_PENDING;
    return call->n_failed ? ST_FAILURE : ST_SUCCESS;
}

enum call_status calls_status_of(const struct call *call)
{
    return call_status(call);
}

void calls_info(struct conn *c, uint64_t rid, const char *call_id)
{
    if (!calls__check_id(TO(c, rid), call_id))
        return;
    struct call *call = hmap_get(&calls_by_id, call_id);
    struct stored_call sc;
    const struct function *fn;
    int status;
    int64_t created;
    uint32_t n_inputs;
    enum call_kind kind;
    if (call) {
        fn = call->fn;
        status = call_status(call);
        created = call->created;
        n_inputs = call->n_inputs;
        kind = call->kind;
    } else {
        store_flush();
        int found = store_get_call(call_id, &sc);
        if (found <= 0) {
            found < 0 ? calls__db_error(TO(c, rid), call_id)
                      : calls__not_a_call(TO(c, rid), call_id);
            return;
        }
        fn = apps_function(sc.function_id);
        status = sc.outcome.status;
        if (calls__final(status) && calls__expired(&sc.outcome))
            status = ST_EXPIRED;
        created = sc.created;
        n_inputs = sc.n_inputs;
        kind = (enum call_kind)sc.kind;
        store_call_clear(&sc);
    }
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, rid, 8);
    wire_str(&w, "call_id", call_id);
    wire_str(&w, "function_id", fn ? fn->id : "");
    wire_str(&w, "app", fn ? fn->app->name : "");
    wire_str(&w, "function", fn ? fn->name : "");
    wire_str(&w, "status", calls_status_name((enum call_status)status));
    wire_int(&w, "created", created / 1000);
    wire_int(&w, "inputs", n_inputs);
    wire_str(&w, "kind", calls_kind_name(kind));
    if (wire_end(&w) != SKIFF_OK)
        conn_close(c);
}

/* --- CANCEL ----------------------------------------------------------------------------------- */

static void cancel_input(struct input *in, bool terminate, const char *why)
{
    if (calls__final(in->status))
        return;
    sched_cancel(in, terminate);
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_error_set(&err, SKIFF_ERR_CANCELLED, NULL, "function call %s was cancelled%s%s",
                    in->call->id, why ? ": " : "", why ? why : "");
    calls_input_done(in, ST_TERMINATED, NULL, 0, &err);
    skiff_error_clear(&err);
}

/* Cancels every unfinished input of call; streams end with CancelledError. */
static void cancel_call(struct call *call, bool terminate, const char *why)
{
    call->cancelled = true;
    if (calls__is_map(call) && !call->closed) {
        call->closed = true; /* no more inputs will be accepted */
        if (call->durable)
            store_queue(SW_MAP_CLOSE, call, NULL);
    }
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_error_set(&err, SKIFF_ERR_CANCELLED, NULL, "function call %s was cancelled%s%s", call->id,
                    why ? ": " : "", why ? why : "");
    if (call->kind == CK_MAP && call->out) {
        struct stream *s = call->out;
        call->out = NULL;
        stream_flush(s);
        calls__send_err(s->conn, s->rid, &err);
        stream_free(s);
        call->owner = NULL;
        list_remove(&call->conn_link);
    }
    if (call->kind == CK_SPAWN_MAP)
        while (!list_empty(&call->readers)) {
            struct reader *r = container_of(call->readers.next, struct reader, call_link);
            stream_flush(r->s);
            calls__send_err(r->s->conn, r->s->rid, &err);
            stream_free(r->s);
            reader_free(r);
        }
    skiff_error_clear(&err);
    /* Hold the call while its inputs end (each end may try to free it). */
    call->store_pending++;
    for (uint32_t i = call->base, end = call->n_inputs; i < end; i++) {
        struct input *in = calls_input_at(call, i);
        if (in)
            cancel_input(in, terminate, why);
    }
    call->store_pending--;
    if (call->kind == CK_MAP)
        for (uint32_t i = call->base, end = call->n_inputs; i < end; i++) {
            struct input *in = calls_input_at(call, i);
            if (in && !in->delivered) {
                in->delivered = true; /* nobody will read it now */
                calls__maybe_free_input(in);
            }
        }
    calls__maybe_free_call(call);
}

static void cancel_to(const struct reply_to *to, const char *call_id, bool terminate)
{
    if (!calls__check_id(to, call_id))
        return;
    struct call *call = hmap_get(&calls_by_id, call_id);
    if (call) {
        if (!calls__complete(call) || !call->closed) {
            log_info("cancelling %s%s", call->id, terminate ? ", terminating its containers" : "");
            cancel_call(call, terminate, NULL);
        }
        reply_ok(to);
        return;
    }
    struct stored_call sc;
    int found = store_get_call(call_id, &sc);
    if (found > 0) {
        store_call_clear(&sc);
        reply_ok(to); /* already finished: nothing to do */
    } else {
        found < 0 ? calls__db_error(to, call_id) : calls__not_a_call(to, call_id);
    }
}

void calls_terminate_queued(struct function *fn, const char *why)
{
    sched_terminate_queued(fn, why);
}

void calls_get(struct conn *c, uint64_t rid, const char *call_id, int64_t timeout_ms, int64_t index)
{
    get_to(TO(c, rid), call_id, timeout_ms, index);
}

void calls_cancel_request(struct conn *c, uint64_t rid, const char *call_id, bool terminate)
{
    cancel_to(TO(c, rid), call_id, terminate);
}

/* --- in-process listeners (the HTTP server) ----------------------------------------------------
 */

/* A listener's call of one input: kind CK_SINGLE (kept: durable, the listener hears its
 * outcome; spawn: durable, acknowledged) or CK_GEN; what names it in errors. */
static void start_one(struct call_listener *l, struct function *fn, struct function *pool,
                      const char *args, size_t args_len, enum call_kind kind, unsigned flags,
                      bool web, char call_id[ID_SIZE])
{
    struct reply_to to = {NULL, 0, l};
    bool gen = kind == CK_GEN, durable = flags & (CALL_SPAWN | CALL_KEPT);
    if (!calls__kind_ok(&to, fn, gen, web,
                        gen                  ? "remote_gen"
                        : flags & CALL_SPAWN ? "spawn"
                                             : "remote"))
        return;
    if (args_len > payload_max) {
        reply_error(&to, SKIFF_ERR_REQUEST_SIZE,
                    "the arguments are %zu bytes, over the limit of %zu", args_len, payload_max);
        return;
    }
    struct call *call = calls__call_new(fn, pool, kind, NULL);
    struct input *in = call ? calls__input_new(call, 0, args, args_len, false) : NULL;
    if (!in) {
        if (call)
            call_free(call);
        reply_error(&to, SKIFF_ERR_NOMEM, "out of memory queueing the call");
        return;
    }
    call->n_inputs = 1;
    call->listener = l;
    call->cancel_on_close = gen; /* a stream nobody reads is cancelled */
    call->kept = flags & CALL_KEPT;
    l->call = call;
    snprintf(call_id, ID_SIZE, "%s", call->id);
    if (durable) {
        call->durable = true;
        store_queue(SW_CALL, call, in); /* answered or awaited in calls_call_committed */
        return;
    }
    sched_enqueue(in);
}

void calls_start(struct call_listener *l, struct function *fn, struct function *pool,
                 const char *args, size_t args_len, bool spawn, bool web, char call_id[ID_SIZE])
{
    start_one(l, fn, pool, args, args_len, CK_SINGLE, spawn ? CALL_SPAWN : 0, web, call_id);
}

void calls_start_kept(struct call_listener *l, struct function *fn, struct function *pool,
                      const char *args, size_t args_len, char call_id[ID_SIZE])
{
    start_one(l, fn, pool, args, args_len, CK_SINGLE, CALL_KEPT, false, call_id);
}

void calls_start_gen(struct call_listener *l, struct function *fn, struct function *pool,
                     const char *args, size_t args_len, char call_id[ID_SIZE])
{
    start_one(l, fn, pool, args, args_len, CK_GEN, 0, false, call_id);
}

bool calls_map_open(struct call_listener *l, struct function *fn, struct function *pool,
                    bool ordered, char call_id[ID_SIZE])
{
    struct reply_to to = {NULL, 0, l};
    if (!calls__kind_ok(&to, fn, false, false, "map"))
        return false;
    struct call *call = calls__call_new(fn, pool, CK_MAP, NULL);
    if (!call) {
        reply_error(&to, SKIFF_ERR_NOMEM, "out of memory starting the map");
        return false;
    }
    call->listener = l;
    call->ordered = ordered;
    call->cancel_on_close = true;
    l->call = call;
    snprintf(call_id, ID_SIZE, "%s", call->id);
    return true;
}

int calls_map_add(struct call_listener *l, const char *args, size_t args_len, bool last)
{
    struct call *call = l->call;
    if (!call || call->kind != CK_MAP || call->closed)
        return SKIFF_ERR_INVALID;
    if (call->cancelled)
        return SKIFF_ERR_CANCELLED;
    if (args && args_len > payload_max)
        return SKIFF_ERR_REQUEST_SIZE;
    if (args) {
        if (call->n_inputs >= UINT32_MAX - 1)
            return SKIFF_ERR_RESOURCE_EXHAUSTED;
        struct input *in = calls__input_new(call, call->n_inputs, args, args_len, false);
        if (!in)
            return SKIFF_ERR_NOMEM;
        call->n_inputs++;
        if (last)
            call->closed = true;
        sched_enqueue(in); /* may end it at once */
        return SKIFF_OK;
    }
    if (last) {
        call->closed = true;
        if (calls__complete(call) && (!call->ordered || call->next_out == call->n_inputs)) {
            call->listener = NULL;
            l->call = NULL;
            l->on_done(l, NULL, call->n_inputs, NULL);
            calls__maybe_free_call(call);
        }
    }
    return SKIFF_OK;
}

void calls_wait(struct call_listener *l, const char *call_id, int64_t timeout_ms, int64_t index)
{
    get_to(&(struct reply_to){NULL, 0, l}, call_id, timeout_ms, index);
}

void calls_cancel_by(struct call_listener *l, const char *call_id, bool terminate)
{
    cancel_to(&(struct reply_to){NULL, 0, l}, call_id, terminate);
}

void calls_listener_gone(struct call_listener *l)
{
    if (l->waiter) {
        struct call *call = l->waiter->call;
        waiter_free(l->waiter);
        calls__maybe_free_call(call);
    }
    struct call *call = l->call;
    if (!call)
        return;
    l->call = NULL;
    call->listener = NULL;
    if (call->durable && !call->kept) {
        calls__maybe_free_call(call); /* the spawn still completes; nobody hears of it */
        return;
    }
    if (call->kind != CK_SINGLE) { /* a stream: nobody reads it any more */
        if (!calls__complete(call) || call->kind == CK_MAP)
            cancel_call(call, false, "its caller disconnected"); /* may free it */
        else
            calls__maybe_free_call(call);
        return;
    }
    /* As for a client that disconnects during a blocking call. */
    struct input *in = calls_input_at(call, 0);
    if (in && in->status == ST_PENDING)
        cancel_call(call, false, "its caller disconnected");
    else
        calls__maybe_free_call(call);
}

/* --- restart ---------------------------------------------------------------------------------- */

struct call *calls_restore(const char *call_id, const char *parent, struct function *fn,
                           struct function *pool, enum call_kind kind, int64_t created,
                           uint32_t n_inputs, bool closed)
{
    struct call *call = mem_calloc(1, sizeof *call);
    if (!call)
        return NULL;
    snprintf(call->id, sizeof call->id, "%s", call_id);
    snprintf(call->parent, sizeof call->parent, "%s", parent);
    call->fn = fn;
    call->pool = pool;
    call->kind = kind;
    call->created = created;
    call->n_inputs = n_inputs;
    call->closed = closed;
    call->durable = call->acked = true;
    list_init(&call->conn_link);
    list_init(&call->waiters);
    list_init(&call->readers);
    if (hmap_put(&calls_by_id, call->id, call) < 0) {
        mem_free(call);
        return NULL;
    }
    kids_add(call);
    call->n_final = n_inputs; /* each unfinished input restored takes one back */
    call->base = n_inputs;    /* nothing in memory yet: calls_restore_input moves it down */
    return call;
}

void calls_restore_input(struct call *call, uint32_t index, const char *input_id, char *args,
                         size_t args_len)
{
    if (call->n_live == 0)
        call->base = index; /* the store hands them over in index order */
    struct input *in = calls__input_new(call, index, args, args_len, true);
    if (!in) {
        mem_free(args);
        log_error("out of memory restoring input %u of %s", index, call->id);
        return;
    }
    snprintf(in->id, sizeof in->id, "%s", input_id);
    in->stored = true;
    if (call->kind == CK_GEN) {
        /* The items stored before the restart stay; the re-run's repeats of them are dropped. */
        int64_t n = store_count_items(call->id);
        in->gen_items = n > 0 ? (uint32_t)n : 0;
    }
    call->n_final--;
    sched_enqueue(in);
}

/* --- connections ------------------------------------------------------------------------------ */

void calls_conn_closed(struct conn *c)
{
    while (!list_empty(&c->waiters)) {
        struct waiter *w = container_of(c->waiters.next, struct waiter, conn_link);
        struct call *call = w->call;
        waiter_free(w);
        calls__maybe_free_call(call);
    }
    while (!list_empty(&c->acks)) {
        struct inputs_ack *ack = container_of(c->acks.next, struct inputs_ack, conn_link);
        list_remove(&ack->conn_link);
        ack->conn = NULL; /* the inputs still commit and run; nobody hears of it */
    }
    while (!list_empty(&c->calls)) {
        struct call *call = container_of(c->calls.next, struct call, conn_link);
        list_remove(&call->conn_link);
        if (call->spawn_conn == c) {
            call->spawn_conn = NULL; /* the spawn still completes; nobody hears of it */
            continue;
        }
        call->owner = NULL;
        call->out = NULL; /* freed with the conn's streams */
        if (call->kind == CK_SINGLE) {
            /* Nobody waits for a blocking call any more: drop it if it has not started; a
             * running one finishes and its result is discarded. */
            struct input *in = calls_input_at(call, 0);
            if (in && (in->status == ST_PENDING || call->cancel_on_close))
                cancel_call(call, false, "its caller disconnected"); /* may free it */
            else
                calls__maybe_free_call(call);
        } else if (!calls__complete(call) || call->kind == CK_MAP) {
            cancel_call(call, false, "its caller disconnected"); /* may free it */
        } else {
            calls__maybe_free_call(call);
        }
    }
}

/* --- module ----------------------------------------------------------------------------------- */

static void expire(uv_timer_t *t)
{
    (void)t;
    int n = store_expire(store_now_ms());
    if (n > 0)
        log_info("expired the results of %d calls", n);
}

struct call *calls_find(const char *call_id)
{
    return hmap_get(&calls_by_id, call_id);
}

const struct list_node *calls_children(const char *parent)
{
    struct kids *k = hmap_get(&kids_by_parent, parent);
    return k ? &k->calls : NULL;
}

size_t calls_payload_limit(void)
{
    return payload_max;
}

size_t calls__payload_max(void)
{
    return payload_max;
}

void calls_input_ran_on(struct input *in, const char *ct_id)
{
    char *id = mem_strdup(ct_id);
    if (!id)
        return; /* best effort */
    mem_free(in->ran_on);
    in->ran_on = id;
    in->gen_run = 0; /* an attempt starts */
}

int calls_init(uv_loop_t *l, double retention, size_t max_payload)
{
    loop = l;
    hmap_init(&kids_by_parent);
    retention_s = retention;
    payload_max = max_payload;
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
            for (uint32_t k = 0; k < call->ring_cap; k++) {
                struct input *in = call->ring[k];
                if (in) {
                    mem_free(in->args);
                    mem_free(in->result);
                    mem_free(in->ran_on);
                    skiff_error_clear(&in->err);
                    mem_free(in);
                }
            }
            mem_free(call->ring);
            mem_free(call);
        }
    }
    hmap_deinit(&calls_by_id);
    for (size_t i = 0; i < kids_by_parent.cap; i++)
        mem_free(kids_by_parent.slots[i].val);
    hmap_deinit(&kids_by_parent);
    mem_free(retry);
    retry = NULL;
    n_retry = cap_retry = 0;
}
