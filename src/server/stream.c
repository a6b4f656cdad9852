/*
 * stream.c - batched STREAM frames (see stream.h).
 *
 * Items are packed into the stream's own buffer as they come; framing copies them once into the
 * conn's output behind a header that knows their count. The copy is the price of not knowing
 * the count in advance (msgpack arrays announce it), and it buys one frame, one parse on the
 * client and one wake-up for a whole iteration's worth of items.
 */
#include "stream.h"

#include <string.h>

#include "common/codec.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/proto.h"
#include "common/wire.h"
#include "conn.h"

static struct list_node dirty = {&dirty, &dirty};

/* Items are framed early once this many bytes are waiting, so no frame nears the frame limit
 * (which is at least the payload limit plus PROTO_FRAME_OVERHEAD) on account of batching. */
#define STREAM_BATCH_BYTES (256u << 10)

struct stream *stream_new(struct conn *c, uint64_t rid, void *owner, stream_gone_fn on_gone)
{
    struct stream *s = mem_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->conn = c;
    s->rid = rid;
    s->owner = owner;
    s->on_gone = on_gone;
    s->backlog = -1;
    buf_init(&s->items, 0);
    msgpack_packer_init(&s->pk, &s->items, codec_buf_write);
    list_init(&s->dirty_link);
    list_push(&c->streams, &s->conn_link);
    return s;
}

void stream_free(struct stream *s)
{
    if (!s)
        return;
    list_remove(&s->dirty_link);
    list_remove(&s->conn_link);
    buf_deinit(&s->items);
    mem_free(s);
}

msgpack_packer *stream_item(struct stream *s)
{
    return &s->pk;
}

void stream_item_done(struct stream *s)
{
    s->n_items++;
    if (!list_linked(&s->dirty_link))
        list_push(&dirty, &s->dirty_link);
    if (s->items.len >= STREAM_BATCH_BYTES)
        stream_flush(s);
}

void stream_item_raw(struct stream *s, const void *p, size_t n)
{
    if (buf_append(&s->items, p, n) == 0)
        stream_item_done(s);
}

void stream_set_backlog(struct stream *s, int64_t backlog)
{
    s->backlog = backlog;
}

/* Frames the collected items now; with none, a frame only if empty_too. */
static void flush(struct stream *s, bool empty_too)
{
    list_remove(&s->dirty_link);
    if (s->n_items == 0 && !empty_too)
        return;
    struct wire_writer w;
    wire_begin(&w, conn_out(s->conn), OP_STREAM, s->rid, s->backlog >= 0 ? 2 : 1);
    if (s->backlog >= 0)
        wire_int(&w, "backlog", s->backlog);
    wire_key(&w, "items");
    wire_pack_array(&w, s->n_items);
    if (w.rc == SKIFF_OK && buf_append(w.b, s->items.data, s->items.len) != 0)
        w.rc = SKIFF_ERR_NOMEM;
    int rc = wire_end(&w);
    s->items.len = 0;
    s->n_items = 0;
    s->backlog = -1;
    buf_shrink(&s->items);
    if (rc != SKIFF_OK) {
        /* The reader is too far behind, or memory is out: what is queued goes, then the end. */
        log_warn("%s: a stream's output is over its limit, closing", s->conn->peer);
        conn_close_after_flush(s->conn);
    }
}

void stream_flush(struct stream *s)
{
    flush(s, false);
}

void stream_send(struct stream *s)
{
    flush(s, true);
}

void stream_flush_all(void)
{
    while (!list_empty(&dirty))
        stream_flush(container_of(dirty.next, struct stream, dirty_link));
}

void stream_conn_closed(struct conn *c)
{
    while (!list_empty(&c->streams)) {
        struct stream *s = container_of(c->streams.next, struct stream, conn_link);
        list_remove(&s->conn_link);
        if (s->on_gone)
            s->on_gone(s, s->owner);
        stream_free(s);
    }
}
