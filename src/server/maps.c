/*
 * maps.c - calls with many inputs (see calls.h, "map" and "spawn_map"): MAP_START, MAP_INPUTS
 * (inputs added in order, durable ones acknowledged after their commit) and OUTPUTS (a live
 * map's outputs to the connection that owns it, once each; a durable call's outputs or items,
 * first from the store and then as they complete, to any reader).
 */
#include <stdio.h>
#include <string.h>

#include "apps.h"
#include "calls_int.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/proto.h"
#include "conn.h"
#include "sched.h"
#include "store.h"
#include "stream.h"

/* --- maps ------------------------------------------------------------------------------------- */

void calls_map_start(struct conn *c, uint64_t rid, struct function *fn, struct function *pool,
                     bool spawn, const char *parent, char made[ID_SIZE])
{
    made[0] = '\0';
    if (!calls__kind_ok(TO(c, rid), fn, false, false, spawn ? "spawn_map" : "map"))
        return;
    struct call *call = calls__call_new(fn, pool, spawn ? CK_SPAWN_MAP : CK_MAP, parent);
    if (!call) {
        conn_error(c, rid, SKIFF_ERR_NOMEM, "out of memory starting the map");
        return;
    }
    memcpy(made, call->id, ID_SIZE);
    if (spawn) {
        call->durable = true;
        call->spawn_conn = c;
        call->spawn_rid = rid;
        list_push(&c->calls, &call->conn_link);
        store_queue(SW_CALL, call, NULL);
        return;
    }
    call->owner = c;
    call->owner_rid = rid;
    list_push(&c->calls, &call->conn_link);
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, rid, 2);
    wire_str(&w, "call_id", call->id);
    wire_str(&w, "function_id", fn->id);
    if (wire_end(&w) != SKIFF_OK)
        conn_close(c);
}

void calls_inputs_committed(void *ack_p, bool ok)
{
    struct inputs_ack *ack = ack_p;
    struct call *call = ack->call;
    call->store_pending--;
    if (ack->conn) {
        if (ok) {
            struct wire_writer w;
            wire_begin(&w, conn_out(ack->conn), OP_OK, ack->rid, 1);
            wire_int(&w, "count", ack->start + ack->count);
            if (wire_end(&w) != SKIFF_OK)
                conn_close(ack->conn);
        } else {
            conn_error(ack->conn, ack->rid, SKIFF_ERR_INTERNAL,
                       "the server could not store the inputs (see its log; is the disk full?)");
        }
        list_remove(&ack->conn_link);
    }
    for (uint32_t i = ack->start; i < ack->start + ack->count; i++) {
        struct input *in = calls_input_at(call, i);
        if (!in)
            continue;
        if (!ok) {
            /* Never acknowledged: these inputs do not exist (one cancelled meanwhile goes once
             * the write of its outcome, which failed with this commit, reports back). */
            if (!in->store_pending)
                calls__input_free(in);
            continue;
        }
        in->stored = true;
        if (!calls__final(in->status))
            sched_enqueue(in);
        else
            calls__maybe_free_input(in); /* cancelled before its commit: its outcome follows */
    }
    if (!ok && call->n_inputs == ack->start + ack->count) {
        call->n_inputs = ack->start;
        if (call->closed && !call->cancelled)
            call->closed = false; /* the closing batch failed: the client may send it again */
    }
    mem_free(ack);
    calls__maybe_free_call(call);
}

/* Finds a map call for a MAP_INPUTS / OUTPUTS request; replies with an error when there is none
 * this conn may use. */
static struct call *map_for(struct conn *c, uint64_t rid, const char *call_id)
{
    if (!calls__check_id(TO(c, rid), call_id))
        return NULL;
    struct call *call = calls_find(call_id);
    if (!call) {
        struct stored_call sc;
        int found = store_get_call(call_id, &sc);
        if (found > 0)
            store_call_clear(&sc);
        if (found < 0)
            calls__db_error(TO(c, rid), call_id);
        else if (found > 0)
            conn_error(c, rid, SKIFF_ERR_INVALID, "function call %s takes no more inputs", call_id);
        else
            calls__not_a_call(TO(c, rid), call_id);
        return NULL;
    }
    if (!calls__is_map(call)) {
        conn_error(c, rid, SKIFF_ERR_INVALID, "function call %s is not a map", call_id);
        return NULL;
    }
    if (call->kind == CK_MAP && call->owner != c) {
        conn_error(c, rid, SKIFF_ERR_INVALID,
                   "map %s belongs to another connection (only spawn_map calls can be shared)",
                   call_id);
        return NULL;
    }
    return call;
}

void calls_map_inputs(struct conn *c, uint64_t rid, const char *call_id, int64_t start,
                      const void *args_array, bool last)
{
    const msgpack_object *arr = args_array;
    struct call *call = map_for(c, rid, call_id);
    if (!call)
        return;
    if (call->cancelled) {
        conn_error(c, rid, SKIFF_ERR_CANCELLED, "function call %s was cancelled", call_id);
        return;
    }
    if (call->closed) {
        conn_error(c, rid, SKIFF_ERR_INVALID,
                   "function call %s has all its inputs (%u): no more can be added", call_id,
                   call->n_inputs);
        return;
    }
    if (start != (int64_t)call->n_inputs) {
        conn_error(c, rid, SKIFF_ERR_INVALID,
                   "inputs of %s start at %lld, but the call has %u: inputs must come in order "
                   "without gaps or repeats",
                   call_id, (long long)start, call->n_inputs);
        return;
    }
    uint32_t n = arr->via.array.size;
    if ((uint64_t)call->n_inputs + n > UINT32_MAX - 1) {
        conn_error(c, rid, SKIFF_ERR_RESOURCE_EXHAUSTED, "a call holds at most %u inputs",
                   UINT32_MAX - 1);
        return;
    }
    if (!call->durable && (uint64_t)call->n_live + n > PROTO_MAP_HELD_MAX) {
        conn_error(c, rid, SKIFF_ERR_RESOURCE_EXHAUSTED,
                   "map %s holds %u inputs whose outputs were not read yet; %u more would pass "
                   "the limit of %u: read OUTPUTS before adding more (no input was added)",
                   call_id, call->n_live, n, PROTO_MAP_HELD_MAX);
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *o = &arr->via.array.ptr[i];
        if (o->type != MSGPACK_OBJECT_BIN) {
            conn_error(c, rid, SKIFF_ERR_INVALID,
                       "args[%u] is not bin (msgpack [args, kwargs]): no input was added", i);
            return;
        }
        if (o->via.bin.size > calls__payload_max()) {
            conn_error(c, rid, SKIFF_ERR_REQUEST_SIZE,
                       "the arguments of input %u are %u bytes, over the limit of %zu",
                       call->n_inputs + i, o->via.bin.size, calls__payload_max());
            return;
        }
    }
    if (calls__inputs_reserve(call, call->n_inputs + n) < 0)
        goto nomem;
    uint32_t first = call->n_inputs;
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *o = &arr->via.array.ptr[i];
        if (!calls__input_new(call, first + i, o->via.bin.ptr, o->via.bin.size, false)) {
            for (uint32_t k = 0; k < i; k++)
                calls__input_free(calls_input_at(call, first + k));
            goto nomem;
        }
    }
    call->n_inputs = first + n;
    if (last)
        call->closed = true;
    if (call->durable) {
        struct inputs_ack *ack = mem_calloc(1, sizeof *ack);
        if (!ack) {
            for (uint32_t k = 0; k < n; k++)
                calls__input_free(calls_input_at(call, first + k));
            call->n_inputs = first;
            call->closed = false;
            goto nomem;
        }
        ack->conn = c;
        ack->rid = rid;
        ack->call = call;
        ack->start = first;
        ack->count = n;
        list_push(&c->acks, &ack->conn_link);
        call->store_pending++;
        store_queue_inputs(call, first, n, ack, last);
        return;
    }
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, rid, 1);
    wire_int(&w, "count", call->n_inputs);
    if (wire_end(&w) != SKIFF_OK)
        conn_close(c);
    for (uint32_t i = 0; i < n; i++)
        sched_enqueue(calls_input_at(call, first + i));
    calls__maybe_end_map(call);
    return;
nomem:
    conn_error(c, rid, SKIFF_ERR_NOMEM, "out of memory adding inputs: none was added");
}

static void map_owner_gone(struct stream *s, void *owner)
{
    (void)s;
    struct call *call = owner;
    call->out = NULL;
}

/* OUTPUTS of the live map this conn owns. */
static void outputs_map(struct conn *c, uint64_t rid, struct call *call, uint32_t from)
{
    if (call->out) {
        conn_error(c, rid, SKIFF_ERR_INVALID, "map %s already has an OUTPUTS stream", call->id);
        return;
    }
    call->out = stream_new(c, rid, call, map_owner_gone);
    if (!call->out) {
        conn_error(c, rid, SKIFF_ERR_NOMEM, "out of memory");
        return;
    }
    for (uint32_t i = call->base > from ? call->base : from, end = call->n_inputs; i < end; i++) {
        struct input *in = calls_input_at(call, i);
        if (!in || !calls__final(in->status))
            continue;
        calls__deliver_map_output(in);
        calls__maybe_free_input(in);
    }
    calls__maybe_end_map(call);
}

/* Packs the stored outputs of a spawn_map into a reader's stream (store_each_output). */
static void stored_output(void *arg, uint32_t index, const struct stored_outcome *o)
{
    struct reader *r = arg;
    if (r->call && calls_input_at(r->call, index))
        return; /* in memory: sent below, or when it ends */
    if (calls__expired(o)) {
        skiff_error err = {SKIFF_ERR_OUTPUT_EXPIRED, "OutputExpiredError", "the result has expired",
                           NULL};
        calls__pack_output(stream_item(r->s), index, ST_FAILURE, NULL, 0, &err);
    } else {
        calls__pack_output(stream_item(r->s), index, o->status, o->result, o->result_len, &o->err);
    }
    stream_item_done(r->s);
}

static void stored_item(void *arg, uint32_t seq, const char *value, size_t len)
{
    struct reader *r = arg;
    calls__stream_gen_item(r->s, seq, value, len);
}

/* OUTPUTS of a durable call (spawn_map or spawned generator), possibly not in memory. */
static void outputs_durable(struct conn *c, uint64_t rid, const char *call_id, uint32_t from)
{
    store_flush(); /* whatever is queued becomes readable */
    struct call *call = calls_find(call_id);
    struct stored_call sc;
    int found = store_get_call(call_id, &sc);
    if (found < 0) {
        calls__db_error(TO(c, rid), call_id);
        return;
    }
    if (!call && found == 0) {
        calls__not_a_call(TO(c, rid), call_id);
        return;
    }
    enum call_kind kind = call ? call->kind : (enum call_kind)sc.kind;
    if (kind == CK_SINGLE) {
        if (found > 0)
            store_call_clear(&sc);
        conn_error(c, rid, SKIFF_ERR_INVALID, "function call %s has one output: read it with get",
                   call_id);
        return;
    }
    struct reader *r = mem_calloc(1, sizeof *r);
    struct stream *s = r ? stream_new(c, rid, r, calls__reader_gone) : NULL;
    if (!s) {
        mem_free(r);
        if (found > 0)
            store_call_clear(&sc);
        conn_error(c, rid, SKIFF_ERR_NOMEM, "out of memory");
        return;
    }
    r->s = s;
    r->from = from;
    r->call = call;
    list_init(&r->call_link);
    if (found > 0 && calls__expired(&sc.outcome) && calls__final(sc.outcome.status)) {
        store_call_clear(&sc);
        stream_free(s);
        mem_free(r);
        conn_error(c, rid, SKIFF_ERR_OUTPUT_EXPIRED, "the outputs of function call %s have expired",
                   call_id);
        return;
    }
    int rc = kind == CK_GEN ? store_each_item(call_id, from, stored_item, r)
                            : store_each_output(call_id, from, stored_output, r);
    if (rc < 0) {
        if (found > 0)
            store_call_clear(&sc);
        stream_free(s);
        mem_free(r);
        calls__db_error(TO(c, rid), call_id);
        return;
    }
    if (call) {
        list_push(&call->readers, &r->call_link);
        if (kind == CK_SPAWN_MAP) {
            for (uint32_t i = call->base > from ? call->base : from, end = call->n_inputs; i < end;
                 i++) {
                struct input *in = calls_input_at(call, i);
                if (in && calls__final(in->status))
                    calls__stream_output(s, in);
            }
            if (calls__complete(call))
                calls__reader_end(r);
        } else {
            struct input *in = calls_input_at(call, 0);
            if (!in || calls__final(in->status))
                calls__reader_end(r);
            else
                stream_send(s); /* the stored items, even none: the reader knows they all came */
        }
    } else {
        /* Everything is on disk: end with what the store says. */
        stream_flush(s);
        if (kind == CK_GEN && sc.outcome.status != ST_SUCCESS)
            calls__send_err(c, rid, &sc.outcome.err);
        else if (kind == CK_GEN)
            calls__send_stream_end(c, rid, NULL, sc.items, false);
        else
            calls__send_stream_end(c, rid, NULL, sc.n_inputs, false);
        stream_free(s);
        mem_free(r);
    }
    if (found > 0)
        store_call_clear(&sc);
}

void calls_outputs(struct conn *c, uint64_t rid, const char *call_id, int64_t from)
{
    if (!calls__check_id(TO(c, rid), call_id))
        return;
    if (from < 0 || from > UINT32_MAX) {
        conn_error(c, rid, SKIFF_ERR_INVALID, "field 'from' is out of range");
        return;
    }
    struct call *call = calls_find(call_id);
    if (call && call->kind == CK_MAP) {
        if (call->owner != c) {
            conn_error(c, rid, SKIFF_ERR_INVALID,
                       "map %s belongs to another connection (only spawn_map calls can be "
                       "shared)",
                       call_id);
            return;
        }
        outputs_map(c, rid, call, (uint32_t)from);
        return;
    }
    if (call && call->kind == CK_GEN && !call->durable) {
        conn_error(c, rid, SKIFF_ERR_INVALID,
                   "function call %s is streamed to its caller and is not kept", call_id);
        return;
    }
    outputs_durable(c, rid, call_id, (uint32_t)from);
}
