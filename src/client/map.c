/*
 * map.c - calls with many inputs (skiff.h, "Maps"): map, starmap, for_each, spawn_map, and
 * reading a spawn_map's outputs (skiff_call_iter).
 *
 * A map is one function call on the server (MAP_START), fed by MAP_INPUTS requests and drained
 * by one streaming OUTPUTS request, all sent asynchronously into one rpc_sink, so inputs keep
 * going out while outputs come back (rpc.c never blocks writing while a stream is open). The
 * iterator drives everything from skiff_map_next: it pulls inputs from the source while the
 * window has room (inputs sent and not yet delivered to the caller: at most max_outstanding),
 * packs them into MAP_INPUTS chunks (many payloads per frame, CHUNK_BYTES at most besides one
 * large payload, so a frame stays under the server's limit), and waits on the sink for the next
 * frame when it has nothing to deliver. Because the window counts undelivered outputs, the
 * reorder buffer for ordered output is a ring of window slots indexed by input index, and the
 * memory of a map is bounded however many inputs it has.
 *
 * A spawn_map uses the same sending half without OUTPUTS: chunks go out while at most
 * SPAWN_INFLIGHT of them await their (durable) acknowledgement. skiff_call_iter uses the reading
 * half without inputs; its ring grows as needed because the server may send a kept call's
 * outputs in any order.
 *
 * An asynchronous map (map_start_async, for skiff_function_map_async) never waits: its MAP_START
 * goes into the sink like everything else and its answer, handled with the other frames, starts
 * the inputs and the OUTPUTS stream; the sink's notify eventfd tells the caller's event loop when
 * to call map_next_wait with no wait, and a failing map cancels its call without waiting for the
 * answer. The other asynchronous twins (starmap, map_source, for_each, spawn_map and its source
 * variant, call_iter) are the same maps with a notify eventfd, handed to the event loop with
 * async_track_map; an asynchronous spawn_map is driven by map_spawn_step. An asynchronous map
 * never asks its source outside the loop's process: not even for the first input, so a source
 * map starts without knowing whether it is empty.
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "async.h"
#include "client.h"
#include "common/codec.h"
#include "common/mem.h"
#include "common/proto.h"
#include "fn.h"
#include "rpc.h"

_Static_assert(SKIFF_MAP_WINDOW_MAX <= PROTO_MAP_HELD_MAX,
               "a map's window must fit what the server holds for a live map");

/* Payload bytes per MAP_INPUTS frame before it is sent: big enough that per-frame costs vanish,
 * small enough to interleave with other requests on the connection. */
#define CHUNK_BYTES (1u << 20)
/* Inputs per MAP_INPUTS frame at most (msgpack framing of this many payloads stays far below
 * PROTO_FRAME_OVERHEAD). */
#define CHUNK_INPUTS 4096
/* A map stops queueing inputs while this many request bytes wait to be written. */
#define QUEUE_MAX (4u << 20)
/* MAP_INPUTS requests of a spawn_map awaiting acknowledgement at once. */
#define SPAWN_INFLIGHT 4

/* One output waiting to be delivered. */
struct slot {
    bool have;
    size_t index;
    skiff_value *value;
    skiff_error error;
};

/* Inputs from lists zipped together, or from tuples (starmap). */
struct zip {
    const skiff_value *const *lists; /* n lists (a map), borrowed */
    const skiff_value *tuples;       /* starmap: a list of argument lists, borrowed */
    size_t n;
    size_t i;     /* the next input */
    size_t len;   /* inputs in all: the shortest list's length */
    bool starmap; /* the inputs are tuples */
};

struct skiff_map {
    skiff_client *c;
    skiff_function *fn; /* borrowed; NULL when reading a call's outputs */
    char call_id[ID_SIZE];
    bool started; /* the server has the call */
    bool spawn;   /* spawn_map: no outputs stream */

    skiff_value *kwargs; /* a copy, or NULL */
    bool unordered, return_exceptions;
    size_t window;

    skiff_map_source src;
    struct zip zip;            /* src's state when the inputs are lists */
    const skiff_value **lists; /* async: a copy of the caller's array of lists (zip.lists) */
    skiff_value *first;        /* the first input, pulled before starting */
    bool src_done;             /* no more inputs to pull */
    bool src_again;            /* the source said SKIFF_AGAIN: ask again after a short wait */
    bool last_sent;            /* MAP_INPUTS with last went out */
    int inflight;              /* MAP_INPUTS requests not yet answered */
    uint64_t outputs_rid;      /* the OUTPUTS request */
    bool outputs_done;         /* its final OK arrived */
    int64_t count;             /* the server's input count from OUTPUTS' OK, else -1 */
    struct buf payloads;       /* the pending chunk's encoded payloads, back to back */
    struct buf one;            /* one input being encoded */
    size_t *lens;              /* each payload's length */
    size_t nchunk;             /* payloads in the pending chunk */

    uint64_t sent, received, delivered, failures;
    int64_t backlog;

    struct slot *ring; /* ordered: slot index % cap; unordered: a FIFO from head */
    size_t cap, head, nready;

    struct rpc_sink sink;
    bool sink_ready;
    bool async;          /* never waits: started by map_start_async */
    bool starting;       /* async: MAP_START is out, its answer not yet handled */
    uint64_t start_rid;  /* async: the MAP_START request */
    uint64_t cancel_rid; /* async: the CANCEL request, whose answer is ignored */
    struct wire_msg msg;
    int fail; /* SKIFF_OK, or the failure every further next returns */
    skiff_error ferr;
    bool done; /* every output delivered */
};

/* --- inputs ----------------------------------------------------------------------------------- */

static int zip_next(void *ctx, skiff_value **args, skiff_error *err)
{
    struct zip *z = ctx;
    if (z->i >= z->len)
        return SKIFF_OK; /* *args stays NULL: the end */
    skiff_value *a;
    if (z->starmap) {
        a = skiff_value_copy(skiff_list_get(z->tuples, z->i));
    } else {
        a = skiff_value_list();
        for (size_t k = 0; a && k < z->n; k++)
            if (skiff_list_append(a, skiff_value_copy(skiff_list_get(z->lists[k], z->i))) !=
                SKIFF_OK) {
                skiff_value_free(a);
                a = NULL;
            }
    }
    if (!a)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory copying input %zu", z->i);
    z->i++;
    *args = a;
    return SKIFF_OK;
}

/* Sets the map's failure (the first one wins) from code and err's text. Returns code. */
static int fail_with(skiff_map *m, int code, const skiff_error *e)
{
    if (m->fail != SKIFF_OK)
        return m->fail;
    m->fail = code;
    skiff_error_set(&m->ferr, (skiff_code)code, e && e->type ? e->type : NULL, "%s",
                    e && e->message ? e->message : skiff_code_name((skiff_code)code));
    if (e && e->traceback)
        m->ferr.traceback = mem_strdup(e->traceback);
    return code;
}

/* Pulls the next input from the source into *args (NULL at the end). SKIFF_OK, SKIFF_AGAIN (no
 * input ready yet: src_again is set) or the map's failure. */
static int pull(skiff_map *m, skiff_value **args)
{
    *args = NULL;
    if (m->first) {
        *args = m->first;
        m->first = NULL;
        return SKIFF_OK;
    }
    skiff_error e = SKIFF_ERROR_INIT;
    skiff_value *a = NULL;
    int rc = m->src.next(m->src.ctx, &a, &e);
    if (rc == SKIFF_AGAIN) {
        skiff_value_free(a);
        skiff_error_clear(&e);
        m->src_again = true;
        return SKIFF_AGAIN;
    }
    if (rc != SKIFF_OK) {
        if (e.code == SKIFF_OK)
            skiff_error_set(&e, (skiff_code)rc, NULL, "the map's input source failed");
        fail_with(m, rc, &e);
        skiff_error_clear(&e);
        skiff_value_free(a);
        return rc;
    }
    if (a && skiff_value_type(a) != SKIFF_LIST) {
        skiff_value_free(a);
        skiff_error_set(&e, SKIFF_ERR_INVALID, NULL,
                        "input %llu of the map is not a list of positional arguments",
                        (unsigned long long)m->sent + m->nchunk);
        fail_with(m, SKIFF_ERR_INVALID, &e);
        skiff_error_clear(&e);
        return SKIFF_ERR_INVALID;
    }
    *args = a;
    return SKIFF_OK;
}

struct chunk_req {
    skiff_map *m;
    bool last;
};

static int build_inputs(struct skiff_client *c, struct buf *out, uint64_t rid, void *arg,
                        skiff_error *err)
{
    (void)c;
    const struct chunk_req *q = arg;
    skiff_map *m = q->m;
    struct wire_writer w;
    wire_begin(&w, out, OP_MAP_INPUTS, rid, 4);
    wire_str(&w, "call_id", m->call_id);
    wire_int(&w, "start", (int64_t)m->sent);
    wire_key(&w, "args");
    wire_pack_array(&w, m->nchunk);
    const char *p = m->payloads.data;
    for (size_t i = 0; i < m->nchunk; i++) {
        int rc = msgpack_pack_bin_with_body(&w.pk, p, m->lens[i]);
        if (rc != 0 && w.rc == SKIFF_OK)
            w.rc = codec_status(rc);
        p += m->lens[i];
    }
    wire_bool(&w, "last", q->last);
    int rc = wire_end(&w);
    if (rc == SKIFF_ERR_REQUEST_SIZE)
        return skiff_error_set(err, rc, NULL, "a chunk of map inputs is over the frame limit");
    if (rc != SKIFF_OK)
        return skiff_error_set(err, rc, NULL, "out of memory building map inputs");
    return SKIFF_OK;
}

/* Sends the pending chunk (possibly empty when last). */
static int send_chunk(skiff_map *m, bool last)
{
    struct chunk_req q = {m, last};
    skiff_error e = SKIFF_ERROR_INIT;
    int rc = rpc_send(m->c, build_inputs, &q, 0, &m->sink, NULL, &e);
    if (rc != SKIFF_OK) {
        fail_with(m, rc, &e);
        skiff_error_clear(&e);
        return rc;
    }
    m->inflight++;
    m->sent += m->nchunk;
    m->nchunk = 0;
    m->payloads.len = 0;
    buf_shrink(&m->payloads);
    if (last)
        m->last_sent = true;
    return SKIFF_OK;
}

/* Adds one input's payload to the pending chunk, sending the chunk first when it is full. */
static int add_input(skiff_map *m, skiff_value *args)
{
    skiff_error e = SKIFF_ERROR_INIT;
    size_t max = rpc_payload_max(m->c);
    int rc = function_encode_args(m->fn, &m->one, max, args, m->kwargs, &e);
    skiff_value_free(args);
    if (rc != SKIFF_OK) {
        fail_with(m, rc, &e);
        skiff_error_clear(&e);
        return rc;
    }
    size_t limit = CHUNK_BYTES < max ? CHUNK_BYTES : max;
    if (m->nchunk > 0 && (m->payloads.len + m->one.len > limit || m->nchunk == CHUNK_INPUTS)) {
        rc = send_chunk(m, false);
        if (rc != SKIFF_OK)
            return rc;
    }
    if (!m->lens) {
        m->lens = mem_calloc(CHUNK_INPUTS, sizeof *m->lens);
        if (!m->lens)
            return fail_with(m, SKIFF_ERR_NOMEM, NULL);
    }
    if (buf_append(&m->payloads, m->one.data, m->one.len) < 0)
        return fail_with(m, SKIFF_ERR_NOMEM, NULL);
    m->lens[m->nchunk++] = m->one.len;
    m->one.len = 0;
    buf_shrink(&m->one);
    return SKIFF_OK;
}

/* True while the map may take one more input from its source. */
static bool has_room(const skiff_map *m)
{
    if (rpc_queued_bytes(m->c) >= QUEUE_MAX)
        return false;
    if (m->spawn)
        return m->inflight < SPAWN_INFLIGHT;
    return m->sent + m->nchunk - m->delivered < m->window;
}

/* Sends as many inputs as the window allows, and the end of the inputs once the source has no
 * more. SKIFF_OK or the map's failure. */
static int feed(skiff_map *m)
{
    while (!m->src_done && m->fail == SKIFF_OK && has_room(m)) {
        skiff_value *args;
        int rc = pull(m, &args);
        if (rc == SKIFF_AGAIN)
            break; /* what is pending goes out now; the source is asked again later */
        if (rc != SKIFF_OK)
            return rc;
        if (!args) {
            m->src_done = true;
            break;
        }
        rc = add_input(m, args);
        if (rc != SKIFF_OK)
            return rc;
    }
    if (m->fail != SKIFF_OK)
        return m->fail;
    if (m->nchunk > 0 || (m->src_done && !m->last_sent))
        return send_chunk(m, m->src_done);
    return SKIFF_OK;
}

/* --- outputs ---------------------------------------------------------------------------------- */

/* Makes the ring big enough to hold index (ordered) or one more entry (unordered). */
static int ring_fit(skiff_map *m, size_t need)
{
    if (need <= m->cap)
        return SKIFF_OK;
    size_t cap = m->cap ? m->cap : 16;
    while (cap < need)
        cap *= 2;
    struct slot *r = mem_calloc(cap, sizeof *r);
    if (!r)
        return SKIFF_ERR_NOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->unordered && i < m->nready)
            r[i] = m->ring[(m->head + i) % m->cap]; /* the FIFO, unrolled from its head */
        else if (!m->unordered && m->ring[i].have)
            r[m->ring[i].index % cap] = m->ring[i];
    }
    mem_free(m->ring);
    m->ring = r;
    m->cap = cap;
    m->head = 0;
    return SKIFF_OK;
}

void call_item_error(const msgpack_object *o, uint32_t n, skiff_error *err)
{
    int64_t code = SKIFF_ERR_INTERNAL;
    if (n > 1 && o[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER && o[1].via.u64 <= 0xffff)
        code = (int64_t)o[1].via.u64;
    char type[128] = "", msg[4096] = "";
    if (n > 2 && o[2].type == MSGPACK_OBJECT_STR)
        snprintf(type, sizeof type, "%.*s", (int)o[2].via.str.size, o[2].via.str.ptr);
    if (n > 3 && o[3].type == MSGPACK_OBJECT_STR)
        snprintf(msg, sizeof msg, "%.*s", (int)o[3].via.str.size, o[3].via.str.ptr);
    skiff_error_set(err, (skiff_code)code, type[0] ? type : NULL, "%s", msg);
    if (err && n > 4 && o[4].type == MSGPACK_OBJECT_STR)
        err->traceback = mem_strndup(o[4].via.str.ptr, o[4].via.str.size);
}

/* Takes one output item [index, 0, value] or [index, code, type, message, traceback]. */
static int take_item(skiff_map *m, const msgpack_object *item)
{
    skiff_error e = SKIFF_ERROR_INIT;
    if (item->type != MSGPACK_OBJECT_ARRAY || item->via.array.size < 3 ||
        item->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        item->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        skiff_error_set(&e, SKIFF_ERR_DESERIALIZATION, NULL,
                        "the server sent a malformed map output");
        fail_with(m, SKIFF_ERR_DESERIALIZATION, &e);
        skiff_error_clear(&e);
        return m->fail;
    }
    const msgpack_object *o = item->via.array.ptr;
    uint64_t index = o[0].via.u64;
    bool bad = (!m->unordered && index < m->delivered) || (m->fn && index >= m->sent);
    if (!bad && !m->unordered) {
        if (ring_fit(m, (size_t)(index - m->delivered) + 1) != SKIFF_OK)
            return fail_with(m, SKIFF_ERR_NOMEM, NULL);
        bad = m->ring[index % m->cap].have;
    }
    if (bad) {
        skiff_error_set(&e, SKIFF_ERR_DESERIALIZATION, NULL,
                        "the server sent an output for input %llu, which is out of range or "
                        "already answered",
                        (unsigned long long)index);
        fail_with(m, SKIFF_ERR_DESERIALIZATION, &e);
        skiff_error_clear(&e);
        return m->fail;
    }
    struct slot s = {true, (size_t)index, NULL, SKIFF_ERROR_INIT};
    if (o[1].via.u64 == 0) {
        if (o[2].type != MSGPACK_OBJECT_BIN ||
            client_decode_result(o[2].via.bin.ptr, o[2].via.bin.size, &s.value, &e) != SKIFF_OK) {
            if (e.code == SKIFF_OK)
                skiff_error_set(&e, SKIFF_ERR_DESERIALIZATION, NULL, "output %llu carries no value",
                                (unsigned long long)index);
            int rc = fail_with(m, e.code, &e);
            skiff_error_clear(&e);
            return rc;
        }
    } else {
        call_item_error(o, item->via.array.size, &s.error);
        m->failures++;
    }
    m->received++;
    if (m->unordered) {
        if (ring_fit(m, m->nready + 1) != SKIFF_OK) {
            skiff_value_free(s.value);
            skiff_error_clear(&s.error);
            return fail_with(m, SKIFF_ERR_NOMEM, NULL);
        }
        m->ring[(m->head + m->nready) % m->cap] = s;
    } else {
        m->ring[index % m->cap] = s;
    }
    m->nready++;
    return SKIFF_OK;
}

static int build_outputs(struct skiff_client *c, struct buf *out, uint64_t rid, void *arg,
                         skiff_error *err);

/* Handles the answer to an asynchronous MAP_START: records the call, opens its OUTPUTS
 * stream. SKIFF_OK or the map's failure (e filled). */
static int started_async(skiff_map *m, skiff_error *e)
{
    m->starting = false;
    int rc = function_remember(m->fn, &m->msg, e);
    if (rc == SKIFF_OK)
        rc = call_id_from_reply(&m->msg, m->call_id, e);
    if (rc == SKIFF_OK) {
        m->started = true;
        if (!m->spawn)
            rc = rpc_send(m->c, build_outputs, m, 0, &m->sink, &m->outputs_rid, e);
    }
    return rc == SKIFF_OK ? SKIFF_OK : fail_with(m, rc, e);
}

/* Handles one frame of the sink: outputs, the end of the outputs, or a MAP_INPUTS answer. */
static int take_frame(skiff_map *m, struct rpc_frame *f)
{
    skiff_error e = SKIFF_ERROR_INIT;
    int rc = SKIFF_OK;
    if (wire_msg_parse(&m->msg, f->body, f->len) < 0) {
        skiff_error_set(&e, SKIFF_ERR_DESERIALIZATION, NULL, "the server sent a malformed frame");
        rc = fail_with(m, SKIFF_ERR_DESERIALIZATION, &e);
    } else if (m->msg.op == OP_ERROR) {
        wire_get_error(&m->msg, &e);
        int64_t code = SKIFF_ERR_INTERNAL;
        wire_get_int(&m->msg, "code", &code);
        rc = fail_with(m, code > 0 && code <= 0xffff ? (int)code : SKIFF_ERR_INTERNAL, &e);
    } else if (m->starting && m->msg.rid == m->start_rid) {
        rc = started_async(m, &e);
    } else if (m->cancel_rid && m->msg.rid == m->cancel_rid) {
        /* the answer to an asynchronous CANCEL: nothing to do */
    } else if (m->msg.rid != m->outputs_rid) {
        m->inflight--; /* a MAP_INPUTS acknowledgement */
    } else if (m->msg.op == OP_STREAM) {
        int64_t backlog;
        if (wire_get_int(&m->msg, "backlog", &backlog))
            m->backlog = backlog;
        const msgpack_object *items = wire_get(&m->msg, "items");
        if (items && items->type == MSGPACK_OBJECT_ARRAY)
            for (uint32_t i = 0; i < items->via.array.size && rc == SKIFF_OK; i++)
                rc = take_item(m, &items->via.array.ptr[i]);
    } else {
        m->outputs_done = true;
        int64_t count = -1;
        if (wire_get_int(&m->msg, "count", &count))
            m->count = count;
    }
    skiff_error_clear(&e);
    rpc_frame_free(f);
    return rc;
}

/* Waits up to timeout_ms (-1: no limit) for the next frame of the sink and handles it: SKIFF_OK,
 * SKIFF_AGAIN when none came in time, or the map's failure. While the source has said
 * SKIFF_AGAIN, waits at most SKIFF_MAP_AGAIN_MS and then lets the caller ask the source again. */
static int wait_frame(skiff_map *m, int timeout_ms)
{
    struct rpc_frame *f = NULL;
    skiff_error e = SKIFF_ERROR_INIT;
    bool again = m->src_again;
    m->src_again = false;
    int ms = again && (timeout_ms < 0 || timeout_ms > SKIFF_MAP_AGAIN_MS) ? SKIFF_MAP_AGAIN_MS
                                                                          : timeout_ms;
    int rc = rpc_sink_next(m->c, &m->sink, ms, &f, &e);
    if (rc == SKIFF_ERR_TIMEOUT && (again || timeout_ms >= 0)) {
        skiff_error_clear(&e);
        if (again && timeout_ms < 0)
            return SKIFF_OK;  /* ask the source again */
        m->src_again = again; /* an event loop's caller asks it again after a while */
        return SKIFF_AGAIN;
    }
    if (rc != SKIFF_OK) {
        fail_with(m, rc, &e);
        skiff_error_clear(&e);
        return rc;
    }
    return take_frame(m, f);
}

/* The next output ready for the caller, or NULL. */
static struct slot *ready(const skiff_map *m)
{
    if (!m->nready)
        return NULL;
    struct slot *s = m->unordered ? &m->ring[m->head] : &m->ring[m->delivered % m->cap];
    return s->have ? s : NULL;
}

/* Cancels the map's call on the server, best effort (an asynchronous map does not wait for the
 * answer). */
static void cancel_call(skiff_map *m)
{
    if (!m->started || m->spawn || m->outputs_done || !m->fn)
        return;
    struct rpc_field f[] = {
        {.key = "call_id", .kind = RPC_STR, .str = m->call_id},
        {.key = "terminate_containers", .kind = RPC_BOOL, .b = false},
    };
    struct rpc_reply r;
    if (m->async)
        rpc_simple_send(m->c, OP_CANCEL, f, 2, &m->sink, &m->cancel_rid, NULL);
    else if (rpc_simple(m->c, OP_CANCEL, f, 2, 0, &r, NULL) == SKIFF_OK)
        rpc_reply_release(m->c, &r);
    m->outputs_done = true;
}

/* Returns the map's failure through err. */
static int failed(skiff_map *m, skiff_error *err)
{
    if (err) {
        skiff_error_set(err, m->ferr.code, m->ferr.type, "%s", m->ferr.message);
        if (m->ferr.traceback)
            err->traceback = mem_strdup(m->ferr.traceback);
    }
    return m->fail;
}

int skiff_map_next(skiff_map *m, skiff_map_output *out, skiff_error *err)
{
    if (!m || !out)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_map_next: the map and out must not be NULL");
    return map_next_wait(m, out, -1, err);
}

int map_next_wait(skiff_map *m, skiff_map_output *out, int timeout_ms, skiff_error *err)
{
    for (;;) {
        if (m->fail != SKIFF_OK)
            return failed(m, err);
        if (m->done)
            return SKIFF_DONE;
        /* Keep the server busy: refill once half the window is free, even while outputs are
         * waiting to be delivered. */
        if (m->fn && !m->src_done && m->started &&
            (m->window - (m->sent + m->nchunk - m->delivered)) * 2 >= m->window &&
            feed(m) != SKIFF_OK)
            continue;
        struct slot *s = ready(m);
        if (s) {
            struct slot got = *s;
            memset(s, 0, sizeof *s);
            m->nready--;
            m->delivered++;
            if (m->unordered)
                m->head = (m->head + 1) % m->cap;
            if (got.error.code != SKIFF_OK && !m->return_exceptions) {
                fail_with(m, got.error.code, &got.error);
                skiff_error_clear(&got.error);
                cancel_call(m);
                return failed(m, err);
            }
            out->index = got.index;
            out->value = got.value;
            out->error = got.error;
            return SKIFF_OK;
        }
        if (!m->started && !m->starting) {
            m->done = true; /* an empty input */
            continue;
        }
        if (m->outputs_done) { /* the server sent them all: nothing may be missing */
            if (m->nready > 0 || (m->count >= 0 && m->delivered != (uint64_t)m->count)) {
                skiff_error e = SKIFF_ERROR_INIT;
                skiff_error_set(&e, SKIFF_ERR_DESERIALIZATION, NULL,
                                "the server ended the outputs after %llu of %lld",
                                (unsigned long long)m->delivered, (long long)m->count);
                fail_with(m, SKIFF_ERR_DESERIALIZATION, &e);
                skiff_error_clear(&e);
                continue;
            }
            m->done = true;
            continue;
        }
        if (m->fn && m->started && feed(m) != SKIFF_OK)
            continue;
        if (wait_frame(m, timeout_ms) == SKIFF_AGAIN)
            return SKIFF_AGAIN;
    }
}

/* --- starting --------------------------------------------------------------------------------- */

static int build_start(struct skiff_client *c, struct buf *out, uint64_t rid, void *arg,
                       skiff_error *err)
{
    (void)c;
    skiff_map *m = arg;
    const char *parent = client_parent_input();
    struct wire_writer w;
    wire_begin(&w, out, OP_MAP_START, rid, function_target_fields(m->fn) + 1 + (parent ? 1 : 0));
    function_put_target(&w, m->fn);
    wire_bool(&w, "spawn", m->spawn);
    if (parent)
        wire_str(&w, "parent_input_id", parent);
    int rc = wire_end(&w);
    if (rc != SKIFF_OK)
        return skiff_error_set(err, rc, NULL, "cannot build MAP_START");
    return SKIFF_OK;
}

static int build_outputs(struct skiff_client *c, struct buf *out, uint64_t rid, void *arg,
                         skiff_error *err)
{
    (void)c;
    skiff_map *m = arg;
    struct wire_writer w;
    wire_begin(&w, out, OP_OUTPUTS, rid, 2);
    wire_str(&w, "call_id", m->call_id);
    wire_int(&w, "from", 0);
    int rc = wire_end(&w);
    if (rc != SKIFF_OK)
        return skiff_error_set(err, rc, NULL, "cannot build OUTPUTS");
    return SKIFF_OK;
}

/* MAP_START, then (for a map) the OUTPUTS stream. */
static int start(skiff_map *m, skiff_error *err)
{
    struct rpc_reply r;
    int rc = rpc_request(m->c, build_start, m, 0, &r, err);
    if (rc != SKIFF_OK)
        return rc;
    rc = function_remember(m->fn, r.msg, err);
    if (rc == SKIFF_OK)
        rc = call_id_from_reply(r.msg, m->call_id, err);
    rpc_reply_release(m->c, &r);
    if (rc != SKIFF_OK)
        return rc;
    m->started = true;
    if (!m->spawn)
        rc = rpc_send(m->c, build_outputs, m, 0, &m->sink, &m->outputs_rid, err);
    return rc;
}

static skiff_map *map_new(skiff_client *c, skiff_function *fn, const skiff_map_options *o)
{
    skiff_map *m = mem_calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (wire_msg_init(&m->msg) < 0) {
        mem_free(m);
        return NULL;
    }
    m->c = c;
    m->fn = fn;
    m->backlog = -1;
    m->count = -1;
    m->window = o && o->max_outstanding ? o->max_outstanding : SKIFF_MAP_WINDOW_DEFAULT;
    m->unordered = o && o->unordered;
    m->return_exceptions = o && o->return_exceptions;
    buf_init(&m->payloads, 0);
    buf_init(&m->one, 0);
    rpc_sink_init(&m->sink);
    m->sink_ready = true;
    return m;
}

/* Checks the options shared by every map. */
static int check_options(const skiff_function *fn, const skiff_map_options *o, skiff_error *err)
{
    if (!fn)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "the function handle is NULL");
    if (o && o->max_outstanding > SKIFF_MAP_WINDOW_MAX)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "max_outstanding %zu is over the limit of %d", o->max_outstanding,
                               SKIFF_MAP_WINDOW_MAX);
    int rc = function_check_args(fn, NULL, o ? o->kwargs : NULL, err);
    return rc == SKIFF_OK ? function_check_kind(fn, false, err) : rc;
}

static int start_async(skiff_map *m, skiff_error *err)
{
    m->starting = true;
    int rc = rpc_send(m->c, build_start, m, 0, &m->sink, &m->start_rid, err);
    if (rc != SKIFF_OK)
        m->starting = false;
    return rc;
}

/* Creates a map (spawn: a spawn_map) over src and starts it unless its input is empty; with
 * notify >= 0 an asynchronous map whose sink writes notify. */
static int map_begin(skiff_function *fn, const skiff_map_source *src, const struct zip *zip,
                     const skiff_map_options *o, bool spawn, int notify, skiff_map **out,
                     skiff_error *err)
{
    int rc = check_options(fn, o, err);
    if (rc != SKIFF_OK)
        return rc;
    skiff_map *m = map_new(fn->client, fn, o);
    if (!m || (o && o->kwargs && !(m->kwargs = skiff_value_copy(o->kwargs)))) {
        skiff_map_free(m);
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    }
    m->spawn = spawn;
    m->async = notify >= 0;
    m->sink.notify = notify;
    if (zip && m->async && zip->lists) {
        /* The array often lives on the caller's stack, gone once the _async call returned. */
        m->lists = mem_calloc(zip->n, sizeof *m->lists);
        if (!m->lists) {
            skiff_map_free(m);
            return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
        }
        memcpy(m->lists, zip->lists, zip->n * sizeof *m->lists);
    }
    if (zip) {
        m->zip = *zip; /* the lists and tuples stay the caller's, borrowed */
        if (m->lists)
            m->zip.lists = m->lists;
        m->src.next = zip_next;
        m->src.ctx = &m->zip;
    } else {
        m->src = *src;
    }
    /* An asynchronous map asks its source only from the event loop's process. */
    rc = m->async && !zip ? SKIFF_AGAIN : pull(m, &m->first);
    if (rc == SKIFF_OK && !m->first && !spawn) {
        m->src_done = true; /* empty: done at once, nothing sent */
    } else if (rc == SKIFF_OK || rc == SKIFF_AGAIN) {
        /* not known to be empty yet: started all the same */
        rc = m->async ? start_async(m, err) : start(m, err);
    } else {
        failed(m, err);
    }
    if (rc != SKIFF_OK) {
        skiff_map_free(m);
        return rc;
    }
    *out = m;
    return SKIFF_OK;
}

/* Sets up zip over n lists. */
static int zip_init(struct zip *z, const skiff_value *const *lists, size_t n, bool starmap,
                    skiff_error *err)
{
    if (n == 0 || !lists)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "a map needs at least one input list");
    memset(z, 0, sizeof *z);
    z->lists = starmap ? NULL : lists;
    z->tuples = starmap ? lists[0] : NULL;
    z->n = n;
    z->starmap = starmap;
    z->len = SIZE_MAX;
    for (size_t k = 0; k < n; k++) {
        if (skiff_value_type(lists[k]) != SKIFF_LIST)
            return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                                   "map input %zu is a %s, not a list", k,
                                   skiff_type_name(skiff_value_type(lists[k])));
        size_t len = skiff_list_len(lists[k]);
        if (len < z->len)
            z->len = len;
    }
    if (starmap)
        for (size_t i = 0; i < z->len; i++)
            if (skiff_value_type(skiff_list_get(z->tuples, i)) != SKIFF_LIST)
                return skiff_error_set(
                    err, SKIFF_ERR_INVALID, NULL,
                    "starmap input %zu is a %s, not a list of arguments", i,
                    skiff_type_name(skiff_value_type(skiff_list_get(z->tuples, i))));
    return SKIFF_OK;
}

int skiff_function_map(skiff_function *fn, const skiff_value *const *lists, size_t n,
                       const skiff_map_options *opts, skiff_map **out, skiff_error *err)
{
    struct zip z;
    if (!out)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "skiff_function_map: out is NULL");
    int rc = zip_init(&z, lists, n, false, err);
    return rc == SKIFF_OK ? map_begin(fn, NULL, &z, opts, false, -1, out, err) : rc;
}

int skiff_function_map_source(skiff_function *fn, const skiff_map_source *src,
                              const skiff_map_options *opts, skiff_map **out, skiff_error *err)
{
    if (!out || !src || !src->next)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_function_map_source: src (with next) and out are needed");
    return map_begin(fn, src, NULL, opts, false, -1, out, err);
}

int map_start_async(skiff_function *fn, const skiff_value *const *lists, size_t n,
                    const skiff_map_options *opts, int notify, skiff_map **out, skiff_error *err)
{
    struct zip z;
    int rc = zip_init(&z, lists, n, false, err);
    return rc == SKIFF_OK ? map_begin(fn, NULL, &z, opts, false, notify, out, err) : rc;
}

int skiff_function_starmap(skiff_function *fn, const skiff_value *tuples,
                           const skiff_map_options *opts, skiff_map **out, skiff_error *err)
{
    struct zip z;
    if (!out)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "skiff_function_starmap: out is NULL");
    int rc = zip_init(&z, &tuples, 1, true, err);
    return rc == SKIFF_OK ? map_begin(fn, NULL, &z, opts, false, -1, out, err) : rc;
}

/* --- collecting, for_each, stats, free -------------------------------------------------------- */

/* {"error": {"code", "type", "message", "traceback"}} for a failed input. NULL: out of memory. */
static skiff_value *error_value(const skiff_error *e)
{
    skiff_value *inner = skiff_value_map(), *outer = skiff_value_map();
    bool ok = inner && outer;
    ok = ok && skiff_map_set(inner, "code", skiff_value_int(e->code)) == SKIFF_OK;
    ok = ok && skiff_map_set(inner, "type",
                             skiff_value_string(e->type ? e->type : skiff_code_name(e->code))) ==
                   SKIFF_OK;
    ok = ok && skiff_map_set(inner, "message", skiff_value_string(e->message ? e->message : "")) ==
                   SKIFF_OK;
    ok = ok && skiff_map_set(inner, "traceback",
                             e->traceback ? skiff_value_string(e->traceback) : skiff_value_nil()) ==
                   SKIFF_OK;
    if (ok) {
        ok = skiff_map_set(outer, "error", inner) == SKIFF_OK;
        inner = NULL;
    }
    skiff_value_free(inner);
    if (!ok) {
        skiff_value_free(outer);
        return NULL;
    }
    return outer;
}

int skiff_map_collect(skiff_map *m, skiff_value **results, skiff_error *err)
{
    if (!m || !results)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_map_collect: the map and results must not be NULL");
    skiff_value *list = skiff_value_list();
    if (!list)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    skiff_map_output o = {0};
    int rc;
    while ((rc = skiff_map_next(m, &o, err)) == SKIFF_OK) {
        skiff_value *v = o.error.code != SKIFF_OK ? error_value(&o.error) : o.value;
        if (o.error.code != SKIFF_OK)
            skiff_value_free(o.value);
        o.value = NULL;
        skiff_map_output_clear(&o);
        if (skiff_list_append(list, v) != SKIFF_OK) {
            rc = skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
            break;
        }
    }
    if (rc != SKIFF_DONE) {
        skiff_value_free(list);
        return rc;
    }
    *results = list;
    return SKIFF_OK;
}

int skiff_function_for_each(skiff_function *fn, const skiff_value *const *lists, size_t n,
                            const skiff_value *kwargs, bool ignore_exceptions, skiff_error *err)
{
    skiff_map_options o = {kwargs, true, ignore_exceptions, 0};
    skiff_map *m = NULL;
    int rc = skiff_function_map(fn, lists, n, &o, &m, err);
    if (rc != SKIFF_OK)
        return rc;
    skiff_map_output out = {0};
    while ((rc = skiff_map_next(m, &out, err)) == SKIFF_OK)
        skiff_map_output_clear(&out);
    skiff_map_free(m);
    return rc == SKIFF_DONE ? SKIFF_OK : rc;
}

void skiff_map_get_stats(const skiff_map *m, skiff_map_stats *out)
{
    if (!m || !out)
        return;
    memset(out, 0, sizeof *out);
    out->sent = m->sent;
    out->received = m->received;
    out->delivered = m->delivered;
    out->outstanding = m->sent - m->delivered;
    out->failures = m->failures;
    out->backlog = m->backlog;
    out->max_outstanding = m->window;
    out->inputs_done = m->src_done;
    out->window_full = m->fn && !m->src_done && out->outstanding >= m->window;
    out->output_ready = ready(m) != NULL;
}

const char *skiff_map_call_id(const skiff_map *m)
{
    return m && m->started ? m->call_id : NULL;
}

void skiff_map_output_clear(skiff_map_output *out)
{
    if (!out)
        return;
    skiff_value_free(out->value);
    skiff_error_clear(&out->error);
    out->value = NULL;
    out->index = 0;
}

void skiff_map_free(skiff_map *m)
{
    if (!m)
        return;
    if (!m->done)
        cancel_call(m); /* unfinished or failed: stop the inputs still queued */
    if (m->sink_ready)
        rpc_sink_deinit(m->c, &m->sink);
    for (size_t i = 0; i < m->cap; i++) {
        skiff_value_free(m->ring[i].value);
        skiff_error_clear(&m->ring[i].error);
    }
    mem_free(m->ring);
    skiff_value_free(m->first);
    skiff_value_free(m->kwargs);
    skiff_error_clear(&m->ferr);
    buf_deinit(&m->payloads);
    buf_deinit(&m->one);
    mem_free(m->lens);
    mem_free(m->lists);
    wire_msg_deinit(&m->msg);
    mem_free(m);
}

/* --- spawn_map and reading a call's outputs --------------------------------------------------- */

/* Sends every input of a spawn_map and waits for each chunk's acknowledgement. */
static int spawn_all(skiff_map *m, skiff_call **out, skiff_error *err)
{
    while (m->fail == SKIFF_OK && !(m->last_sent && m->inflight == 0)) {
        if (feed(m) != SKIFF_OK)
            break;
        if (m->inflight > 0 && (!has_room(m) || m->last_sent || m->src_again)) {
            wait_frame(m, -1);
        } else if (m->src_again) { /* nothing to wait for but the source */
            m->src_again = false;
            poll(NULL, 0, SKIFF_MAP_AGAIN_MS);
        }
    }
    if (m->fail != SKIFF_OK)
        return failed(m, err);
    return call_new(m->c, m->call_id, SKIFF_CALL_SPAWN_MAP, (size_t)m->sent, out, err);
}

static int spawn_map(skiff_function *fn, const skiff_map_source *src, const struct zip *zip,
                     const skiff_value *kwargs, skiff_call **out, skiff_error *err)
{
    if (!out)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "spawn_map: out is NULL");
    skiff_map_options o = {kwargs, false, false, 0};
    skiff_map *m = NULL;
    int rc = map_begin(fn, src, zip, &o, true, -1, &m, err);
    if (rc != SKIFF_OK)
        return rc;
    rc = spawn_all(m, out, err);
    skiff_map_free(m);
    return rc;
}

int skiff_function_spawn_map(skiff_function *fn, const skiff_value *const *lists, size_t n,
                             const skiff_value *kwargs, skiff_call **out, skiff_error *err)
{
    struct zip z;
    int rc = zip_init(&z, lists, n, false, err);
    return rc == SKIFF_OK ? spawn_map(fn, NULL, &z, kwargs, out, err) : rc;
}

int skiff_function_spawn_map_source(skiff_function *fn, const skiff_map_source *src,
                                    const skiff_value *kwargs, skiff_call **out, skiff_error *err)
{
    if (!src || !src->next)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "spawn_map: src (with next) is NULL");
    return spawn_map(fn, src, NULL, kwargs, out, err);
}

/* skiff_call_iter whose sink writes notify (an eventfd, or -1). */
static int call_iter(skiff_call *call, const skiff_map_options *opts, int notify, skiff_map **out,
                     skiff_error *err)
{
    if (call->kind == SKIFF_CALL_GENERATOR)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "%s is a generator call: read it with skiff_call_get_gen", call->id);
    skiff_map *m = map_new(call->client, NULL, opts);
    if (!m)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    memcpy(m->call_id, call->id, sizeof m->call_id);
    m->src_done = m->last_sent = m->started = true;
    m->sent = call->inputs;
    m->async = notify >= 0;
    m->sink.notify = notify;
    int rc = rpc_send(m->c, build_outputs, m, 0, &m->sink, &m->outputs_rid, err);
    if (rc != SKIFF_OK) {
        skiff_map_free(m);
        return rc;
    }
    *out = m;
    return SKIFF_OK;
}

int skiff_call_iter(skiff_call *call, const skiff_map_options *opts, skiff_map **out,
                    skiff_error *err)
{
    if (!call || !out)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_call_iter: call and out must not be NULL");
    return call_iter(call, opts, -1, out, err);
}

/* --- the asynchronous twins ------------------------------------------------------------------- */

bool map_source_waiting(const skiff_map *m)
{
    return m->src_again;
}

int map_spawn_step(skiff_map *m, skiff_call **call, skiff_error *err)
{
    for (;;) {
        if (m->fail != SKIFF_OK)
            return failed(m, err);
        if (m->started && m->last_sent && m->inflight == 0) {
            m->done = true;
            return call_new(m->c, m->call_id, SKIFF_CALL_SPAWN_MAP, (size_t)m->sent, call, err);
        }
        if (m->started && feed(m) != SKIFF_OK)
            continue;
        if (m->started && m->inflight == 0) {
            if (m->last_sent)
                continue;
            return SKIFF_AGAIN; /* the source said SKIFF_AGAIN: nothing to wait for but it */
        }
        if (wait_frame(m, 0) == SKIFF_AGAIN)
            return SKIFF_AGAIN;
    }
}

/* Starts an asynchronous map (spawn: a spawn_map) over src or zip and hands it to the calling
 * thread's loop in mode with the callbacks given. Returns as the twins. */
static int map_async(skiff_function *fn, const skiff_map_source *src, const struct zip *zip,
                     const skiff_map_options *o, bool spawn, enum async_map_mode mode,
                     skiff_output_cb output, skiff_done_cb done, skiff_call_cb call, void *ud,
                     skiff_error *err)
{
    int efd;
    int rc = async_notify_fd(fn->client, &efd, err);
    skiff_map *m = NULL;
    if (rc == SKIFF_OK)
        rc = map_begin(fn, src, zip, o, spawn, efd, &m, err);
    if (rc != SKIFF_OK)
        return rc;
    return async_track_map(fn->client, m, mode, output, done, call, ud, err);
}

/* SKIFF_ERR_INVALID naming the twin when fn or a callback is NULL. */
static int need(const void *fn, bool callbacks, const char *name, skiff_error *err)
{
    if (fn && callbacks)
        return SKIFF_OK;
    return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                           "%s: the function (or call) and the callbacks must not be NULL", name);
}

int skiff_function_starmap_async(skiff_function *fn, const skiff_value *tuples,
                                 const skiff_map_options *opts, skiff_output_cb output_cb,
                                 skiff_done_cb done_cb, void *userdata, skiff_error *err)
{
    struct zip z;
    int rc = need(fn, output_cb && done_cb, "skiff_function_starmap_async", err);
    if (rc == SKIFF_OK)
        rc = zip_init(&z, &tuples, 1, true, err);
    if (rc != SKIFF_OK)
        return rc;
    return map_async(fn, NULL, &z, opts, false, ASYNC_MAP_OUTPUTS, output_cb, done_cb, NULL,
                     userdata, err);
}

int skiff_function_map_source_async(skiff_function *fn, const skiff_map_source *src,
                                    const skiff_map_options *opts, skiff_output_cb output_cb,
                                    skiff_done_cb done_cb, void *userdata, skiff_error *err)
{
    int rc =
        need(fn, output_cb && done_cb && src && src->next, "skiff_function_map_source_async", err);
    if (rc != SKIFF_OK)
        return rc;
    return map_async(fn, src, NULL, opts, false, ASYNC_MAP_OUTPUTS, output_cb, done_cb, NULL,
                     userdata, err);
}

int skiff_function_for_each_async(skiff_function *fn, const skiff_value *const *lists, size_t n,
                                  const skiff_value *kwargs, bool ignore_exceptions,
                                  skiff_done_cb done_cb, void *userdata, skiff_error *err)
{
    struct zip z;
    skiff_map_options o = {kwargs, true, ignore_exceptions, 0};
    int rc = need(fn, done_cb != NULL, "skiff_function_for_each_async", err);
    if (rc == SKIFF_OK)
        rc = zip_init(&z, lists, n, false, err);
    if (rc != SKIFF_OK)
        return rc;
    return map_async(fn, NULL, &z, &o, false, ASYNC_MAP_DISCARD, NULL, done_cb, NULL, userdata,
                     err);
}

int skiff_function_spawn_map_async(skiff_function *fn, const skiff_value *const *lists, size_t n,
                                   const skiff_value *kwargs, skiff_call_cb cb, void *userdata,
                                   skiff_error *err)
{
    struct zip z;
    skiff_map_options o = {kwargs, false, false, 0};
    int rc = need(fn, cb != NULL, "skiff_function_spawn_map_async", err);
    if (rc == SKIFF_OK)
        rc = zip_init(&z, lists, n, false, err);
    if (rc != SKIFF_OK)
        return rc;
    return map_async(fn, NULL, &z, &o, true, ASYNC_MAP_SPAWN, NULL, NULL, cb, userdata, err);
}

int skiff_function_spawn_map_source_async(skiff_function *fn, const skiff_map_source *src,
                                          const skiff_value *kwargs, skiff_call_cb cb,
                                          void *userdata, skiff_error *err)
{
    skiff_map_options o = {kwargs, false, false, 0};
    int rc = need(fn, cb && src && src->next, "skiff_function_spawn_map_source_async", err);
    if (rc != SKIFF_OK)
        return rc;
    return map_async(fn, src, NULL, &o, true, ASYNC_MAP_SPAWN, NULL, NULL, cb, userdata, err);
}

int skiff_call_iter_async(skiff_call *call, const skiff_map_options *opts,
                          skiff_output_cb output_cb, skiff_done_cb done_cb, void *userdata,
                          skiff_error *err)
{
    int rc = need(call, output_cb && done_cb, "skiff_call_iter_async", err);
    int efd;
    if (rc == SKIFF_OK)
        rc = async_notify_fd(call->client, &efd, err);
    skiff_map *m = NULL;
    if (rc == SKIFF_OK)
        rc = call_iter(call, opts, efd, &m, err);
    if (rc != SKIFF_OK)
        return rc;
    return async_track_map(call->client, m, ASYNC_MAP_OUTPUTS, output_cb, done_cb, NULL, userdata,
                           err);
}
