/*
 * gen.c - generator streams (skiff.h, "Generators"): remote_gen and reading a spawned
 * generator's items (get_gen).
 *
 * Both are one streaming request answered into an rpc_sink: CALL with gen=true for remote_gen,
 * OUTPUTS for a spawned generator. Each STREAM frame carries items [seq, 0, value]; the stream
 * keeps the current frame and hands its items out one at a time, checking that seq counts up
 * from 0 without gaps, so an item lost or repeated is a clear DeserializationError rather than a
 * silent reordering. The final OK ends the stream (its count must match); a final ERROR is the
 * generator's failure, reported after the items yielded before it. A stream freed before its end
 * stops listening: the rest of its items are dropped as they arrive. The asynchronous twins
 * (remote_gen_async in async.c, get_gen_async here) make the same stream with the event loop's
 * eventfd as the sink's notify and hand it to the loop (async_track_gen).
 */
#include <string.h>

#include "async.h"
#include "common/codec.h"
#include "common/mem.h"
#include "common/proto.h"
#include "fn.h"
#include "rpc.h"

struct skiff_gen {
    skiff_client *c;
    struct rpc_sink sink;
    struct wire_msg msg;     /* the frame being read, parsed */
    struct rpc_frame *frame; /* the STREAM frame whose items are being handed out, or NULL */
    uint32_t next;           /* its next item */
    size_t count;            /* items delivered */
    size_t frames;           /* frames received (STREAM, or the final reply) */
    bool done;               /* the final OK arrived and every item was delivered */
    int fail;                /* SKIFF_OK, or the failure every further next returns */
    skiff_error ferr;
};

static int gen_new(skiff_client *c, skiff_gen **out, skiff_error *err)
{
    skiff_gen *g = mem_calloc(1, sizeof *g);
    if (!g || wire_msg_init(&g->msg) < 0) {
        mem_free(g);
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    }
    g->c = c;
    rpc_sink_init(&g->sink);
    *out = g;
    return SKIFF_OK;
}

int gen_remote(skiff_function *fn, const skiff_value *args, const skiff_value *kwargs, int notify,
               skiff_gen **out, skiff_error *err)
{
    if (!fn || !out)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_function_remote_gen: fn and out must not be NULL");
    skiff_gen *g;
    int rc = gen_new(fn->client, &g, err);
    if (rc != SKIFF_OK)
        return rc;
    g->sink.notify = notify;
    rc = function_send_call(fn, args, kwargs, &g->sink, err);
    if (rc != SKIFF_OK) {
        skiff_gen_free(g);
        return rc;
    }
    *out = g;
    return SKIFF_OK;
}

int skiff_function_remote_gen(skiff_function *fn, const skiff_value *args,
                              const skiff_value *kwargs, skiff_gen **out, skiff_error *err)
{
    return gen_remote(fn, args, kwargs, -1, out, err);
}

static int build_outputs(struct skiff_client *c, struct buf *out, uint64_t rid, void *arg,
                         skiff_error *err)
{
    (void)c;
    const skiff_call *call = arg;
    struct wire_writer w;
    wire_begin(&w, out, OP_OUTPUTS, rid, 2);
    wire_str(&w, "call_id", call->id);
    wire_int(&w, "from", 0);
    int rc = wire_end(&w);
    return rc == SKIFF_OK ? SKIFF_OK : skiff_error_set(err, rc, NULL, "cannot build OUTPUTS");
}

int skiff_call_get_gen(skiff_call *call, skiff_gen **out, skiff_error *err)
{
    if (!call || !out)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_call_get_gen: call and out must not be NULL");
    return gen_call_outputs(call, -1, out, err);
}

int gen_call_outputs(skiff_call *call, int notify, skiff_gen **out, skiff_error *err)
{
    if (call->kind != SKIFF_CALL_GENERATOR)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "%s is not a generator call: read it with skiff_call_get%s",
                               call->id, call->kind == SKIFF_CALL_SINGLE ? "" : "_index");
    skiff_gen *g;
    int rc = gen_new(call->client, &g, err);
    if (rc != SKIFF_OK)
        return rc;
    g->sink.notify = notify;
    rc = rpc_send(call->client, build_outputs, call, 0, &g->sink, NULL, err);
    if (rc != SKIFF_OK) {
        skiff_gen_free(g);
        return rc;
    }
    *out = g;
    return SKIFF_OK;
}

/* Records the stream's failure (the first wins) and returns it through err. */
static int gen_fail(skiff_gen *g, int code, const skiff_error *e, skiff_error *err)
{
    if (g->fail == SKIFF_OK) {
        g->fail = code;
        skiff_error_set(&g->ferr, (skiff_code)code, e ? e->type : NULL, "%s",
                        e && e->message ? e->message : skiff_code_name((skiff_code)code));
        if (e && e->traceback)
            g->ferr.traceback = mem_strdup(e->traceback);
    }
    if (err) {
        skiff_error_set(err, g->ferr.code, g->ferr.type, "%s", g->ferr.message);
        if (g->ferr.traceback)
            err->traceback = mem_strdup(g->ferr.traceback);
    }
    return g->fail;
}

/* Hands out the current frame's next item. SKIFF_OK with *item, SKIFF_DONE when the frame has
 * none left, or a failure. */
static int take_item(skiff_gen *g, skiff_value **item, skiff_error *err)
{
    const msgpack_object *items = wire_get(&g->msg, "items");
    if (!items || items->type != MSGPACK_OBJECT_ARRAY || g->next >= items->via.array.size)
        return SKIFF_DONE;
    const msgpack_object *it = &items->via.array.ptr[g->next++];
    skiff_error e = SKIFF_ERROR_INIT;
    if (it->type != MSGPACK_OBJECT_ARRAY || it->via.array.size < 3 ||
        it->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        it->via.array.ptr[0].via.u64 != g->count ||
        it->via.array.ptr[2].type != MSGPACK_OBJECT_BIN) {
        skiff_error_set(&e, SKIFF_ERR_DESERIALIZATION, NULL,
                        "the server sent a malformed or out-of-sequence generator item (expected "
                        "item %zu)",
                        g->count);
    } else {
        const msgpack_object *v = &it->via.array.ptr[2];
        skiff_value *val = NULL;
        if (client_decode_result(v->via.bin.ptr, v->via.bin.size, &val, &e) == SKIFF_OK) {
            g->count++;
            *item = val;
            return SKIFF_OK;
        }
    }
    int rc = gen_fail(g, e.code, &e, err);
    skiff_error_clear(&e);
    return rc;
}

int skiff_gen_next(skiff_gen *g, skiff_value **item, skiff_error *err)
{
    if (!g || !item)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_gen_next: the stream and item must not be NULL");
    return gen_next_wait(g, -1, item, err);
}

int gen_next_wait(skiff_gen *g, int timeout_ms, skiff_value **item, skiff_error *err)
{
    for (;;) {
        if (g->fail != SKIFF_OK)
            return gen_fail(g, g->fail, NULL, err);
        if (g->done)
            return SKIFF_DONE;
        if (g->frame) {
            int rc = take_item(g, item, err);
            if (rc != SKIFF_DONE)
                return rc;
            rpc_frame_free(g->frame);
            g->frame = NULL;
        }
        struct rpc_frame *f = NULL;
        skiff_error e = SKIFF_ERROR_INIT;
        int rc = rpc_sink_next(g->c, &g->sink, timeout_ms, &f, &e);
        if (rc == SKIFF_ERR_TIMEOUT && timeout_ms >= 0) {
            skiff_error_clear(&e);
            return SKIFF_AGAIN;
        }
        if (rc == SKIFF_OK)
            g->frames++;
        if (rc == SKIFF_OK && wire_msg_parse(&g->msg, f->body, f->len) < 0)
            rc = skiff_error_set(&e, SKIFF_ERR_DESERIALIZATION, NULL,
                                 "the server sent a malformed frame");
        if (rc != SKIFF_OK) {
            rpc_frame_free(f);
            rc = gen_fail(g, rc, &e, err);
            skiff_error_clear(&e);
            return rc;
        }
        int64_t count = -1;
        if (g->msg.op == OP_STREAM) {
            g->frame = f;
            g->next = 0;
            continue;
        }
        if (g->msg.op == OP_ERROR) {
            wire_get_error(&g->msg, &e);
            int64_t code = SKIFF_ERR_INTERNAL;
            wire_get_int(&g->msg, "code", &code);
            rc = code > 0 && code <= 0xffff ? (int)code : SKIFF_ERR_INTERNAL;
        } else if (g->msg.op != OP_OK) {
            rc = skiff_error_set(&e, SKIFF_ERR_DESERIALIZATION, NULL,
                                 "the server answered a generator with operation %d", g->msg.op);
        } else if (wire_get_int(&g->msg, "count", &count) && count != (int64_t)g->count) {
            rc = skiff_error_set(&e, SKIFF_ERR_DESERIALIZATION, NULL,
                                 "the generator yielded %lld items but %zu arrived",
                                 (long long)count, g->count);
        } else {
            g->done = true;
        }
        rpc_frame_free(f);
        if (rc != SKIFF_OK)
            gen_fail(g, rc, &e, NULL);
        skiff_error_clear(&e);
    }
}

size_t gen_frames(const skiff_gen *g)
{
    return g->frames;
}

size_t skiff_gen_count(const skiff_gen *g)
{
    return g ? g->count : 0;
}

void skiff_gen_free(skiff_gen *g)
{
    if (!g)
        return;
    rpc_sink_deinit(g->c, &g->sink);
    rpc_frame_free(g->frame);
    wire_msg_deinit(&g->msg);
    skiff_error_clear(&g->ferr);
    mem_free(g);
}

int skiff_call_get_gen_async(skiff_call *call, skiff_item_cb item_cb, skiff_done_cb done_cb,
                             void *userdata, skiff_error *err)
{
    if (!call || !item_cb || !done_cb)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_call_get_gen_async: the call and both callbacks must not "
                               "be NULL");
    int efd;
    int rc = async_notify_fd(call->client, &efd, err);
    skiff_gen *g = NULL;
    if (rc == SKIFF_OK)
        rc = gen_call_outputs(call, efd, &g, err);
    if (rc != SKIFF_OK)
        return rc;
    return async_track_gen(call->client, g, item_cb, done_cb, userdata, err);
}
