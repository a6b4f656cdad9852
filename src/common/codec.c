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

/* Big-endian unsigned of w bytes at p. */
static size_t be(const unsigned char *p, int w)
{
    size_t v = 0;
    for (int i = 0; i < w; i++)
        v = v << 8 | p[i];
    return v;
}

long codec_scan(const char *p, size_t n, size_t max_objects, int max_depth, size_t *used)
{
    /* left[d]: objects still to read in the container open at depth d (left[0]: the top). */
    size_t left[CODEC_MAX_DEPTH + 2];
    if (max_depth > CODEC_MAX_DEPTH)
        max_depth = CODEC_MAX_DEPTH;
    const unsigned char *s = (const unsigned char *)p;
    size_t off = 0, count = 0;
    int depth = 0;
    left[0] = 1;
    for (;;) {
        while (left[depth] == 0) {
            if (depth == 0) {
                if (used)
                    *used = off;
                return (long)count;
            }
            depth--;
        }
        left[depth]--;
        if (off >= n)
            return CODEC_SCAN_MALFORMED;
        if (++count > max_objects)
            return CODEC_SCAN_TOO_MANY;
        unsigned c = s[off++];
        size_t skip = 0;  /* bytes of body after the header */
        size_t items = 0; /* objects inside, for a container */
        bool container = false;
        int w = 0; /* bytes of the length field */
        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
            /* fixint, nil, bool */
        } else if (c >= 0x80 && c <= 0x8f) {
            container = true, items = 2 * (c & 0x0f);
        } else if (c >= 0x90 && c <= 0x9f) {
            container = true, items = c & 0x0f;
        } else if (c >= 0xa0 && c <= 0xbf) {
            skip = c & 0x1f;
        } else {
            switch (c) {
            case 0xc4:
            case 0xd9:
                w = 1;
                break; /* bin8, str8 */
            case 0xc5:
            case 0xda:
                w = 2;
                break; /* bin16, str16 */
            case 0xc6:
            case 0xdb:
                w = 4;
                break; /* bin32, str32 */
            case 0xc7:
                w = 1, skip = 1;
                break; /* ext8: length, type */
            case 0xc8:
                w = 2, skip = 1;
                break; /* ext16 */
            case 0xc9:
                w = 4, skip = 1;
                break; /* ext32 */
            case 0xca:
            case 0xce:
            case 0xd2:
                skip = 4;
                break;
            case 0xcb:
            case 0xcf:
            case 0xd3:
                skip = 8;
                break;
            case 0xcc:
            case 0xd0:
                skip = 1;
                break;
            case 0xcd:
            case 0xd1:
                skip = 2;
                break;
            case 0xd4:
                skip = 2;
                break; /* fixext: type and 1, 2, 4, 8, 16 bytes */
            case 0xd5:
                skip = 3;
                break;
            case 0xd6:
                skip = 5;
                break;
            case 0xd7:
                skip = 9;
                break;
            case 0xd8:
                skip = 17;
                break;
            case 0xdc:
                container = true, w = 2;
                break; /* array16 */
            case 0xdd:
                container = true, w = 4;
                break; /* array32 */
            case 0xde:
                container = true, w = 2;
                break; /* map16 */
            case 0xdf:
                container = true, w = 4;
                break; /* map32 */
            default:
                return CODEC_SCAN_MALFORMED; /* 0xc1: never used */
            }
        }
        if (w) {
            if (n - off < (size_t)w)
                return CODEC_SCAN_MALFORMED;
            size_t len = be(s + off, w);
            off += (size_t)w;
            if (container)
                items = c >= 0xde ? 2 * len : len;
            else
                skip += len;
        }
        if (!container) {
            if (n - off < skip)
                return CODEC_SCAN_MALFORMED;
            off += skip;
            continue;
        }
        /* As codec_from_object counts: every list and map, empty ones too. */
        if (depth + 1 > max_depth)
            return CODEC_SCAN_TOO_DEEP;
        if (items == 0)
            continue;
        /* Every object takes at least a byte: a count beyond the bytes left is a lie. */
        if (items > n - off)
            return CODEC_SCAN_MALFORMED;
        left[++depth] = items;
    }
}

int codec_check(const char *p, size_t n, const char *what, skiff_error *err)
{
    long r = codec_scan(p, n, CODEC_MAX_VALUES, CODEC_MAX_DEPTH, NULL);
    if (r == CODEC_SCAN_TOO_DEEP)
        return skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                               "%s nested too deeply: more than %d lists and maps (the depth "
                               "limit)",
                               what, CODEC_MAX_DEPTH);
    if (r == CODEC_SCAN_TOO_MANY)
        return skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                               "%s holds more than %u values (the decoding limit)", what,
                               CODEC_MAX_VALUES);
    if (r == CODEC_SCAN_MALFORMED)
        return skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                               "malformed %s: truncated, not msgpack, or announces more elements "
                               "than it holds",
                               what);
    return SKIFF_OK;
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
    int rc = codec_check(p, n, "value", err);
    if (rc == SKIFF_OK)
        rc = unpack_one(p, n, &zone, &obj, err);
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
