/*
 * wire.h - frames of the skiff protocol: building and parsing them.
 *
 * A frame is a 4-byte big-endian length N followed by N bytes holding one msgpack map. Every map
 * has "op" (an enum proto_op) and "rid" (the request id a reply answers; 0 where unused); the
 * other keys depend on the op (docs/protocol.md). Parsing uses one msgpack zone per reader,
 * cleared between frames, so reading a frame does not allocate once the zone has grown.
 */
#ifndef SKIFF_COMMON_WIRE_H
#define SKIFF_COMMON_WIRE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <skiff/skiff.h>

#include "buf.h"

#define WIRE_HEADER 4

/* Building: wire_begin, then exactly nfields field calls, then wire_end. */
struct wire_writer {
    struct buf *b;
    size_t start;       /* where this frame's header starts in b */
    msgpack_packer pk;  /* packs into b; use after wire_key for nested values */
    uint32_t want, got; /* fields announced and written (checked by wire_end) */
    int rc;             /* first failure: a codec_status() code, SKIFF_OK while none */
};

/* Starts a frame in b with op, rid and room for nfields further fields. */
void wire_begin(struct wire_writer *w, struct buf *b, int op, uint64_t rid, uint32_t nfields);
void wire_str(struct wire_writer *w, const char *key, const char *s); /* NULL s: nil */
void wire_strn(struct wire_writer *w, const char *key, const char *s, size_t n);
void wire_int(struct wire_writer *w, const char *key, int64_t v);
void wire_bool(struct wire_writer *w, const char *key, bool v);
void wire_double(struct wire_writer *w, const char *key, double v);
void wire_bin(struct wire_writer *w, const char *key, const void *p, size_t n);
/* Writes the key only; the caller packs the value with w->pk. */
void wire_key(struct wire_writer *w, const char *key);
/* Nested values inside a field started with wire_key (they do not count as fields). */
void wire_pack_array(struct wire_writer *w, size_t n);
void wire_pack_map(struct wire_writer *w, size_t n);
void wire_pack_str(struct wire_writer *w, const char *s); /* NULL s: nil */
void wire_pack_int(struct wire_writer *w, int64_t v);
/* Finishes the frame. SKIFF_OK, or the first failure (SKIFF_ERR_REQUEST_SIZE: over b->max,
 * SKIFF_ERR_NOMEM) after removing the partial frame from b. */
int wire_end(struct wire_writer *w);

/* An OP_ERROR reply for rid carrying err (code, type, message, traceback). */
int wire_error(struct buf *b, uint64_t rid, const skiff_error *err);
/* An OP_ERROR reply from its parts. */
int wire_error_msg(struct buf *b, uint64_t rid, skiff_code code, const char *type,
                   const char *message);

/* Reading. */

/* If p[0..n) starts with a whole frame, returns its body length (the frame is WIRE_HEADER + that
 * many bytes); 0 if more bytes are needed; -1 if the header announces an empty body (which no
 * message can be) or more than max bytes: the peer is broken and the connection should end. */
long wire_frame_len(const char *p, size_t n, size_t max);

struct wire_msg {
    msgpack_zone zone;
    msgpack_object root; /* a map */
    int op;
    uint64_t rid;
    /* When set (frames from clients, on the server), a frame may hold at most one msgpack object
     * per WIRE_BYTES_PER_OBJECT bytes beyond WIRE_OBJECTS_FREE, and never more than
     * WIRE_OBJECTS_MAX: the parsed objects (24 bytes each) then cost at most 12 times the frame
     * and 24 MB, however the frame is built. Protocol frames carry payloads as bin, far below
     * that density. */
    bool budget;
    /* When non-zero (frames from containers), a frame may hold at most that many msgpack objects
     * whatever its length (WIRE_CONTAINER_OBJECTS_MAX). */
    size_t objects_max;
};

#define WIRE_BYTES_PER_OBJECT 2
#define WIRE_OBJECTS_FREE 4096
#define WIRE_OBJECTS_MAX (1u << 20)

/* Container frames carry results and items as bin payloads (one object each, whatever their
 * size), so their objects are counted per frame, not per byte: a worker puts at most
 * WIRE_OUTPUTS_MAX entries in one W_OUTPUTS frame (each at most 7 objects: a failure), and the
 * server refuses a container frame of more than WIRE_CONTAINER_OBJECTS_MAX objects (its parsed
 * form then costs at most 12 MB, however the frame is built: a 60 MB frame of nils once cost
 * 1.5 GB). */
#define WIRE_OUTPUTS_MAX (1u << 16)
#define WIRE_CONTAINER_OBJECTS_MAX (8u * WIRE_OUTPUTS_MAX)

/* 0 or -1 (out of memory). */
int wire_msg_init(struct wire_msg *m);
void wire_msg_deinit(struct wire_msg *m);
/* Parses a frame body. 0, or -1 if it is not exactly one msgpack map with an integer op (the
 * connection should then be dropped: the peer does not speak the protocol), or -2 when m->budget
 * is set and the frame holds more objects than it allows, or more than m->objects_max (nothing
 * was allocated). */
int wire_msg_parse(struct wire_msg *m, const char *body, size_t n);

/* Field access: each returns true and writes its out parameter only when key is present with
 * the right type. */
const msgpack_object *wire_get(const struct wire_msg *m, const char *key);
bool wire_get_str(const struct wire_msg *m, const char *key, const char **p, size_t *n);
bool wire_get_int(const struct wire_msg *m, const char *key, int64_t *v);
bool wire_get_bool(const struct wire_msg *m, const char *key, bool *v);
bool wire_get_double(const struct wire_msg *m, const char *key, double *v);
bool wire_get_bin(const struct wire_msg *m, const char *key, const char **p, size_t *n);
/* A malloc'd NUL-terminated copy of string field key (must hold no NUL), or NULL. */
char *wire_dup_str(const struct wire_msg *m, const char *key);
/* Copies a string field into out (size bytes with the NUL). False when absent, not a string,
 * too long or holding a NUL. */
bool wire_copy_str(const struct wire_msg *m, const char *key, char *out, size_t size);
/* Fills err from an OP_ERROR message. */
void wire_get_error(const struct wire_msg *m, skiff_error *err);

/* Same field access on a nested msgpack map object. */
const msgpack_object *wire_obj_get(const msgpack_object *map, const char *key);

#endif
