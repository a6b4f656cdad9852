/*
 * codec.c - skiff_value <-> msgpack with msgpack-c (see codec.h).
 */
#include "codec.h"

#include <stdbool.h>
#include <string.h>

#include "mem.h"
#include "value.h"

int codec_buf_write(void *data, const char *p, size_t n)
{
    return buf_append(data, p, n);
}

int codec_status(int rc)
{
    if (rc == 0)
        return SKIFF_OK;
    return rc == BUF_NOMEM ? SKIFF_ERR_NOMEM : SKIFF_ERR_REQUEST_SIZE;
}

/* True if v is a list or map: the values that count toward CODEC_MAX_DEPTH. */
static bool nests(skiff_type t)
{
    return t == SKIFF_LIST || t == SKIFF_MAP;
}

static int pack(msgpack_packer *pk, const skiff_value *v, int depth)
{
    if (depth >= CODEC_MAX_DEPTH && nests(skiff_value_type(v)))
        return SKIFF_ERR_SERIALIZATION;
    int rc = 0;
    switch (skiff_value_type(v)) {
    case SKIFF_NIL:
        rc = msgpack_pack_nil(pk);
        break;
    case SKIFF_BOOL:
        rc = v->u.b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        break;
    case SKIFF_INT:
        rc = msgpack_pack_int64(pk, v->u.i);
        break;
    case SKIFF_DOUBLE:
        rc = msgpack_pack_double(pk, v->u.d);
        break;
    case SKIFF_STRING:
        rc = msgpack_pack_str_with_body(pk, v->u.s.p, v->u.s.n);
        break;
    case SKIFF_BYTES:
        rc = msgpack_pack_bin_with_body(pk, v->u.s.p, v->u.s.n);
        break;
    case SKIFF_LIST:
        rc = msgpack_pack_array(pk, v->u.list.n);
        for (size_t i = 0; !rc && i < v->u.list.n; i++) {
            int r = pack(pk, v->u.list.items[i], depth + 1);
            if (r != SKIFF_OK)
                return r;
        }
        break;
    case SKIFF_MAP:
        rc = msgpack_pack_map(pk, v->u.map.n);
        for (size_t i = 0; !rc && i < v->u.map.n; i++) {
            const char *k = v->u.map.keys[i];
            rc = msgpack_pack_str_with_body(pk, k, strlen(k));
            if (!rc) {
                int r = pack(pk, v->u.map.vals[i], depth + 1);
                if (r != SKIFF_OK)
                    return r;
            }
        }
        break;
    }
    return codec_status(rc);
}

int codec_pack_value(msgpack_packer *pk, const skiff_value *v)
{
    return pack(pk, v, 0);
}

/* On failure, drops what was partly written. */
static int encode_result(struct buf *b, size_t start, int rc)
{
    if (rc != SKIFF_OK)
        b->len = start;
    return rc;
}

int codec_encode_value(struct buf *b, const skiff_value *v)
{
    size_t start = b->len;
    msgpack_packer pk;
    msgpack_packer_init(&pk, b, codec_buf_write);
    return encode_result(b, start, pack(&pk, v, 0));
}

int codec_encode_args(struct buf *b, const skiff_value *args, const skiff_value *kwargs)
{
    if ((args && args->type != SKIFF_LIST) || (kwargs && kwargs->type != SKIFF_MAP))
        return SKIFF_ERR_INVALID;
    size_t start = b->len;
    msgpack_packer pk;
    msgpack_packer_init(&pk, b, codec_buf_write);
    int rc = codec_status(msgpack_pack_array(&pk, 2));
    if (rc == SKIFF_OK)
        rc = args ? pack(&pk, args, 1) : codec_status(msgpack_pack_array(&pk, 0));
    if (rc == SKIFF_OK)
        rc = kwargs ? pack(&pk, kwargs, 1) : codec_status(msgpack_pack_map(&pk, 0));
    return encode_result(b, start, rc);
}

static int bad(skiff_error *err, const char *what)
{
    return skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL, "malformed value: %s", what);
}

static int convert(const msgpack_object *o, skiff_value **out, skiff_error *err, int depth)
{
    if (depth >= CODEC_MAX_DEPTH &&
        (o->type == MSGPACK_OBJECT_ARRAY || o->type == MSGPACK_OBJECT_MAP))
        return bad(err, "nested too deeply");
    skiff_value *v = NULL;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        v = skiff_value_nil();
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        v = skiff_value_bool(o->via.boolean);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > INT64_MAX)
            return bad(err, "integer does not fit in 64 bits");
        v = skiff_value_int((int64_t)o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        v = skiff_value_int(o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        v = skiff_value_double(o->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        if (!utf8_valid(o->via.str.ptr, o->via.str.size))
            return bad(err, "string is not UTF-8");
        v = skiff_value_stringn(o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        v = skiff_value_bytes(o->via.bin.ptr, o->via.bin.size);
        break;
    case MSGPACK_OBJECT_ARRAY:
        v = skiff_value_list();
        for (uint32_t i = 0; v && i < o->via.array.size; i++) {
            skiff_value *item;
            int rc = convert(&o->via.array.ptr[i], &item, err, depth + 1);
            if (rc != SKIFF_OK) {
                skiff_value_free(v);
                return rc;
            }
            if (skiff_list_append(v, item) != SKIFF_OK) {
                skiff_value_free(v);
                v = NULL;
            }
        }
        break;
    case MSGPACK_OBJECT_MAP:
        v = skiff_value_map();
        for (uint32_t i = 0; v && i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR) {
                skiff_value_free(v);
                return bad(err, "map key is not a string");
            }
            skiff_value *item;
            int rc = convert(&kv->val, &item, err, depth + 1);
            if (rc != SKIFF_OK) {
                skiff_value_free(v);
                return rc;
            }
            /* msgpack-c hands out a NULL pointer for an empty string. */
            const char *key = kv->key.via.str.size ? kv->key.via.str.ptr : "";
            rc = value_map_addn(v, key, kv->key.via.str.size, item);
            if (rc == SKIFF_ERR_INVALID) {
                skiff_value_free(v);
                return bad(err, "map key is not UTF-8 or holds a NUL");
            }
            if (rc != SKIFF_OK) {
                skiff_value_free(v);
                v = NULL;
            }
        }
        /* A repeated key keeps its first place and its last value. Checked once for the whole
         * map, not at each key: a hostile map of a million keys costs O(n log n), not O(n^2). */
        if (v && value_map_dedupe(v) != SKIFF_OK) {
            skiff_value_free(v);
            v = NULL;
        }
        break;
    default:
        return bad(err, "unsupported msgpack type (extension)");
    }
    if (!v)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory decoding a value");
    *out = v;
    return SKIFF_OK;
}

int codec_from_object(const msgpack_object *o, skiff_value **out, skiff_error *err)
{
    return convert(o, out, err, 0);
}

/* Unpacks exactly one object filling p[0..n) into zone. */
static int unpack_one(const char *p, size_t n, msgpack_zone *zone, msgpack_object *obj,
                      skiff_error *err)
{
    size_t off = 0;
    msgpack_unpack_return r = msgpack_unpack(p, n, &off, zone, obj);
    /* msgpack-c also says "no memory" for input that nests past its stack or announces more
     * elements than could ever fit: from a peer that is malformed data, not a reason to retry. */
    if (r == MSGPACK_UNPACK_NOMEM_ERROR)
        return bad(err, "nested too deeply or announces more elements than it holds");
    if (r == MSGPACK_UNPACK_EXTRA_BYTES)
        return bad(err, "trailing bytes after the value");
    if (r != MSGPACK_UNPACK_SUCCESS)
        return bad(err, r == MSGPACK_UNPACK_CONTINUE ? "truncated" : "not msgpack");
    return SKIFF_OK;
}

int codec_decode_value(const char *p, size_t n, skiff_value **out, skiff_error *err)
{
    msgpack_zone zone;
    if (!msgpack_zone_init(&zone, 2048))
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory decoding a value");
    msgpack_object obj;
    int rc = unpack_one(p, n, &zone, &obj, err);
    if (rc == SKIFF_OK)
        rc = convert(&obj, out, err, 0);
    msgpack_zone_destroy(&zone);
    return rc;
}

int codec_decode_args(const char *p, size_t n, skiff_value **args, skiff_value **kwargs,
                      skiff_error *err)
{
    skiff_value *v;
    int rc = codec_decode_value(p, n, &v, err);
    if (rc != SKIFF_OK)
        return rc;
    if (v->type != SKIFF_LIST || v->u.list.n != 2 || v->u.list.items[0]->type != SKIFF_LIST ||
        v->u.list.items[1]->type != SKIFF_MAP) {
        skiff_value_free(v);
        return bad(err, "arguments are not [list, map]");
    }
    *args = v->u.list.items[0];
    *kwargs = v->u.list.items[1];
    v->u.list.n = 0;
    skiff_value_free(v);
    return SKIFF_OK;
}
