/*
 * codec.h - skiff_value <-> msgpack, and the argument payload.
 *
 * A result travels as the msgpack encoding of one value; arguments as the encoding of a
 * two-element array [args-list, kwargs-map]. The server never decodes either: it moves these
 * blobs between callers, its store and containers.
 */
#ifndef SKIFF_COMMON_CODEC_H
#define SKIFF_COMMON_CODEC_H

#include <msgpack.h>
#include <skiff/skiff.h>

#include "buf.h"

/* How many lists and maps may enclose one another in a value, on encode and decode (bounded so
 * a hostile payload cannot exhaust the stack): msgpack-c's unpacker stops at 32, so the encoder
 * refuses what the decoder would. */
#define CODEC_MAX_DEPTH 32

/* Decoding budgets. msgpack-c turns every object of a message into a 24-byte msgpack_object, and
 * codec_from_object every value into a 48-byte skiff_value plus its slot in a list: a payload of
 * 1-byte nils would cost 24 to 56 times its size. So every decode is first walked by codec_scan
 * (no allocation, no recursion), which refuses more than CODEC_MAX_VALUES objects or nesting
 * past CODEC_MAX_DEPTH before a byte is allocated: one decode costs at most about 120 MB
 * however large its input (wire.c holds protocol frames from clients to a tighter budget). */
#define CODEC_MAX_VALUES (2u << 20)

/* What codec_scan found wrong (negative), or else the object count (>= 1). */
#define CODEC_SCAN_MALFORMED (-1) /* truncated or not msgpack */
#define CODEC_SCAN_TOO_MANY (-2)  /* more than max_objects objects */
#define CODEC_SCAN_TOO_DEEP (-3)  /* lists and maps nested deeper than max_depth */

/* Walks the first msgpack object of p[0..n) without allocating: the count of its objects (every
 * array, map, key, element and scalar counts one) or a CODEC_SCAN_* failure. *used gets the
 * object's length in bytes when not NULL. */
long codec_scan(const char *p, size_t n, size_t max_objects, int max_depth, size_t *used);
/* Checks p[0..n) against CODEC_MAX_VALUES and CODEC_MAX_DEPTH: SKIFF_OK, or
 * SKIFF_ERR_DESERIALIZATION with a message in err naming the limit (what names what is decoded:
 * "value", "arguments"), also when it is malformed (truncated, or a list or map announcing more
 * elements than bytes follow: msgpack-c would allocate them all first). */
int codec_check(const char *p, size_t n, const char *what, skiff_error *err);

/* Counts the values in JSON text[0..len) (every number, string, literal, array, object and object
 * key counts one) without parsing it, stopping past max: at most max + 1. For budgets checked
 * before the parse (jansson then skiff_value cost about 0.3 us and 100 bytes a value). */
size_t codec_json_values(const char *text, size_t len, size_t max);

/* Appends the encoding of v to b. SKIFF_OK; SKIFF_ERR_REQUEST_SIZE when b would exceed its max;
 * SKIFF_ERR_SERIALIZATION when v nests deeper than CODEC_MAX_DEPTH; SKIFF_ERR_NOMEM. NULL v is
 * encoded as nil. */
int codec_encode_value(struct buf *b, const skiff_value *v);
/* Appends [args, kwargs]; NULL args means an empty list, NULL kwargs an empty map.
 * SKIFF_ERR_INVALID if args is not a list or kwargs not a map; otherwise as codec_encode_value. */
int codec_encode_args(struct buf *b, const skiff_value *args, const skiff_value *kwargs);
/* Packs v with an existing packer (for values nested in a larger message). */
int codec_pack_value(msgpack_packer *pk, const skiff_value *v);

/* Decodes exactly one value from p[0..n) into *out. SKIFF_OK, or SKIFF_ERR_DESERIALIZATION
 * (malformed, trailing bytes, non-string map keys, invalid UTF-8, integers beyond int64,
 * extension types) with a message in err, or SKIFF_ERR_NOMEM. */
int codec_decode_value(const char *p, size_t n, skiff_value **out, skiff_error *err);
/* Decodes an argument payload into a new list and map. Errors as codec_decode_value. */
int codec_decode_args(const char *p, size_t n, skiff_value **args, skiff_value **kwargs,
                      skiff_error *err);
/* Converts an already unpacked object. Errors as codec_decode_value. */
int codec_from_object(const msgpack_object *o, skiff_value **out, skiff_error *err);

/* The skiff_code for a msgpack_pack_* return value written through codec_buf_write:
 * SKIFF_OK, SKIFF_ERR_REQUEST_SIZE (buffer max reached) or SKIFF_ERR_NOMEM. */
int codec_status(int rc);
/* The msgpack_packer write callback for a struct buf (data is the buf). */
int codec_buf_write(void *data, const char *p, size_t n);

#endif
