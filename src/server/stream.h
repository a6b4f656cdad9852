/*
 * stream.h - streaming replies: the STREAM frames a request gets before its final reply.
 *
 * A stream belongs to one request (a conn and a rid): a remote_gen CALL, an OUTPUTS request,
 * LOGS. Its owner appends items (each one msgpack value, usually an array) as they happen; items
 * are not sent one frame each but collected, and once per loop iteration stream_flush_all turns
 * every stream's collected items into one STREAM frame `{op: 3, rid, items: [...]}` on its conn
 * (before conn_flush_all sends it). A batch that would pass the frame limit is sent early.
 *
 * The final reply (OK or ERROR) is the owner's to send, after stream_flush (so it follows the
 * last items). A conn that closes takes its streams with it: the owner is told through on_gone
 * and must forget the stream, which is freed right after.
 */
#ifndef SKIFF_SERVER_STREAM_H
#define SKIFF_SERVER_STREAM_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/list.h"

struct conn;
struct stream;

/* Called when the stream's conn closes; the stream is freed when it returns. */
typedef void (*stream_gone_fn)(struct stream *s, void *owner);

struct stream {
    struct conn *conn;
    uint64_t rid;
    void *owner;
    stream_gone_fn on_gone;
    struct buf items;            /* packed items not yet framed */
    uint32_t n_items;            /* items in `items` */
    int64_t backlog;             /* sent as `backlog` with the next frame when >= 0 */
    msgpack_packer pk;           /* packs into items */
    struct list_node dirty_link; /* on the flush list while it holds items */
    struct list_node conn_link;  /* in conn->streams */
};

/* A new stream for the request rid on conn, or NULL when out of memory. */
struct stream *stream_new(struct conn *c, uint64_t rid, void *owner, stream_gone_fn on_gone);
/* Frees the stream (its unsent items are dropped; flush first to keep them). */
void stream_free(struct stream *s);

/* The packer to append one item with; call stream_item_done after packing it. */
msgpack_packer *stream_item(struct stream *s);
void stream_item_done(struct stream *s);
/* Appends an already packed item of n bytes. */
void stream_item_raw(struct stream *s, const void *p, size_t n);
/* Sets the backlog reported with the next frame. */
void stream_set_backlog(struct stream *s, int64_t backlog);

/* Frames the stream's collected items now. */
void stream_flush(struct stream *s);
/* The same, as one frame even when there are none (an empty STREAM frame tells the reader that
 * what came before it was all there was so far). */
void stream_send(struct stream *s);
/* Frames every stream's collected items (once per loop iteration, before conn_flush_all). */
void stream_flush_all(void);
/* The conn is closing: tells the owner of each of its streams and frees them. */
void stream_conn_closed(struct conn *c);

#endif
