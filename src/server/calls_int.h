/*
 * calls_int.h - what calls.c shares with maps.c (the MAP_START / MAP_INPUTS / OUTPUTS requests):
 * the call and input objects' life, and the replies both send. Internal to those two files.
 */
#ifndef SKIFF_SERVER_CALLS_INT_H
#define SKIFF_SERVER_CALLS_INT_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "calls.h"
#include "store.h"

struct stream;

/* An OUTPUTS request on a durable call: gets every output (or item) from `from` on. */
struct reader {
    struct stream *s;
    struct call *call;
    uint32_t from;
    struct list_node call_link;
};

/* A MAP_INPUTS of a spawn_map waiting for its commit. */
struct inputs_ack {
    struct conn *conn;
    uint64_t rid;
    struct call *call;
    uint32_t start, count;
    struct list_node conn_link;
};

/* Where an answer goes: a client's request (c, rid), or an in-process listener (l). */
struct reply_to {
    struct conn *c;
    uint64_t rid;
    struct call_listener *l;
};
#define TO(c, rid) (&(struct reply_to){(c), (rid), NULL})

/* A new call of fn (run in pool) of that kind, registered by id; NULL when out of memory. */
struct call *calls__call_new(struct function *fn, struct function *pool, enum call_kind kind,
                             const char *parent);
/* True if call_id is an fc- id; else answers InvalidError to `to`. */
bool calls__check_id(const struct reply_to *to, const char *call_id);
/* True when the call has all its inputs and every one is final. */
bool calls__complete(const struct call *call);
/* Answers InternalFailure (the store could not be read) to `to`. */
void calls__db_error(const struct reply_to *to, const char *call_id);
/* Sends a final map input's output on its owner's OUTPUTS stream, once. */
void calls__deliver_map_output(struct input *in);
/* True if a stored outcome is past its retention. */
bool calls__expired(const struct stored_outcome *o);
/* True for the final statuses (ST_SUCCESS and after). */
bool calls__final(int st);
/* Frees an input and takes it out of its call's ring. */
void calls__input_free(struct input *in);
/* A new pending input at index holding args (copied, or taken when take); NULL when out
 * of memory. */
struct input *calls__input_new(struct call *call, uint32_t index, const char *args, size_t len,
                               bool take);
/* Makes room in the call's ring for indexes below n. 0 or -1 (out of memory). */
int calls__inputs_reserve(struct call *call, uint32_t n);
/* True for map and spawn_map calls. */
bool calls__is_map(const struct call *call);
/* True if fn may be called this way (gen, web); else answers InvalidError to `to`. */
bool calls__kind_ok(const struct reply_to *to, struct function *fn, bool gen, bool web,
                    const char *what);
/* Ends a map owner's OUTPUTS stream once everything is delivered. */
void calls__maybe_end_map(struct call *call);
/* Frees the call once nothing refers to it any more. */
void calls__maybe_free_call(struct call *call);
/* Frees the input once it is final and nothing needs it in memory. */
void calls__maybe_free_input(struct input *in);
/* Answers NotFoundError (no such call) to `to`. */
void calls__not_a_call(const struct reply_to *to, const char *call_id);
/* Packs one output item: [index, 0, value] or [index, code, type, message, traceback]. */
void calls__pack_output(msgpack_packer *pk, uint32_t index, int status, const char *value,
                        size_t len, const skiff_error *err);
/* Ends a reader's stream with its call's final reply and frees the reader. */
void calls__reader_end(struct reader *r);
/* A reader's conn closed (stream.h on_gone). */
void calls__reader_gone(struct stream *s, void *owner);
/* Appends an ERROR reply carrying err to c. */
void calls__send_err(struct conn *c, uint64_t rid, const skiff_error *err);
/* Appends the final OK of a stream: count (and the call's ids with with_ids). */
void calls__send_stream_end(struct conn *c, uint64_t rid, const struct call *call, uint32_t count,
                            bool with_ids);
/* Appends a generator item [seq, 0, value] to a stream. */
void calls__stream_gen_item(struct stream *s, uint32_t seq, const char *value, size_t len);
/* Appends a final input's output item to a stream. */
void calls__stream_output(struct stream *s, const struct input *in);

/* The server's payload limit (calls_init). */
size_t calls__payload_max(void);

#endif
