/*
 * wire.c - building and parsing protocol frames (see wire.h).
 */
#include "wire.h"

#include <string.h>

#include "codec.h"
#include "mem.h"
#include "proto.h"

static void key(struct wire_writer *w, const char *k)
{
    w->got++;
    if (w->rc == SKIFF_OK)
        w->rc = codec_status(msgpack_pack_str_with_body(&w->pk, k, strlen(k)));
}

static void check(struct wire_writer *w, int rc)
{
    if (w->rc == SKIFF_OK)
        w->rc = codec_status(rc);
}

void wire_begin(struct wire_writer *w, struct buf *b, int op, uint64_t rid, uint32_t nfields)
{
    static const char zero[WIRE_HEADER];
    w->b = b;
    w->start = b->len;
    w->want = nfields;
    w->got = 0;
    msgpack_packer_init(&w->pk, b, codec_buf_write);
    w->rc = codec_status(buf_append(b, zero, sizeof zero));
    check(w, msgpack_pack_map(&w->pk, nfields + 2));
    key(w, "op");
    check(w, msgpack_pack_int(&w->pk, op));
    key(w, "rid");
    check(w, msgpack_pack_uint64(&w->pk, rid));
    w->want += 2;
}

void wire_key(struct wire_writer *w, const char *k)
{
    key(w, k);
}

void wire_strn(struct wire_writer *w, const char *k, const char *s, size_t n)
{
    key(w, k);
    check(w, s ? msgpack_pack_str_with_body(&w->pk, s, n) : msgpack_pack_nil(&w->pk));
}

void wire_str(struct wire_writer *w, const char *k, const char *s)
{
    wire_strn(w, k, s, s ? strlen(s) : 0);
}

void wire_int(struct wire_writer *w, const char *k, int64_t v)
{
    key(w, k);
    check(w, msgpack_pack_int64(&w->pk, v));
}

void wire_bool(struct wire_writer *w, const char *k, bool v)
{
    key(w, k);
    check(w, v ? msgpack_pack_true(&w->pk) : msgpack_pack_false(&w->pk));
}

void wire_double(struct wire_writer *w, const char *k, double v)
{
    key(w, k);
    check(w, msgpack_pack_double(&w->pk, v));
}

void wire_bin(struct wire_writer *w, const char *k, const void *p, size_t n)
{
    key(w, k);
    check(w, msgpack_pack_bin_with_body(&w->pk, p, n));
}

void wire_pack_array(struct wire_writer *w, size_t n)
{
    check(w, msgpack_pack_array(&w->pk, n));
}

void wire_pack_map(struct wire_writer *w, size_t n)
{
    check(w, msgpack_pack_map(&w->pk, n));
}

void wire_pack_str(struct wire_writer *w, const char *s)
{
    check(w, s ? msgpack_pack_str_with_body(&w->pk, s, strlen(s)) : msgpack_pack_nil(&w->pk));
}

void wire_pack_int(struct wire_writer *w, int64_t v)
{
    check(w, msgpack_pack_int64(&w->pk, v));
}

int wire_end(struct wire_writer *w)
{
    if (w->rc == SKIFF_OK && w->got != w->want)
        w->rc = SKIFF_ERR_INTERNAL; /* a programming error: the field count is wrong */
    if (w->rc != SKIFF_OK) {
        w->b->len = w->start;
        return w->rc;
    }
    size_t n = w->b->len - w->start - WIRE_HEADER;
    unsigned char *h = (unsigned char *)w->b->data + w->start;
    h[0] = (unsigned char)(n >> 24);
    h[1] = (unsigned char)(n >> 16);
    h[2] = (unsigned char)(n >> 8);
    h[3] = (unsigned char)n;
    return SKIFF_OK;
}

int wire_error_msg(struct buf *b, uint64_t rid, skiff_code code, const char *type,
                   const char *message)
{
    struct wire_writer w;
    wire_begin(&w, b, OP_ERROR, rid, 3);
    wire_int(&w, "code", code);
    wire_str(&w, "type", type ? type : skiff_code_name(code));
    wire_str(&w, "message", message ? message : "");
    return wire_end(&w);
}

int wire_error(struct buf *b, uint64_t rid, const skiff_error *err)
{
    struct wire_writer w;
    wire_begin(&w, b, OP_ERROR, rid, err->traceback ? 4 : 3);
    wire_int(&w, "code", err->code);
    wire_str(&w, "type", err->type ? err->type : skiff_code_name(err->code));
    wire_str(&w, "message", err->message ? err->message : "");
    if (err->traceback)
        wire_str(&w, "traceback", err->traceback);
    return wire_end(&w);
}

long wire_frame_len(const char *p, size_t n, size_t max)
{
    if (n < WIRE_HEADER)
        return 0;
    const unsigned char *h = (const unsigned char *)p;
    size_t len = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
    if (len == 0 || len > max)
        return -1;
    return n - WIRE_HEADER >= len ? (long)len : 0;
}

/* Initial chunk of a reader's zone: enough for the objects of a typical frame. */
#define ZONE_CHUNK 4096

int wire_msg_init(struct wire_msg *m)
{
    memset(m, 0, sizeof *m);
    return msgpack_zone_init(&m->zone, ZONE_CHUNK) ? 0 : -1;
}

void wire_msg_deinit(struct wire_msg *m)
{
    msgpack_zone_destroy(&m->zone);
}

int wire_msg_parse(struct wire_msg *m, const char *body, size_t n)
{
    msgpack_zone_clear(&m->zone);
    /* Walked first, so a count that lies (a map announcing 2^32 entries in a few bytes, which
     * msgpack-c would allocate before finding out) is refused before any allocation. */
    size_t max = n;
    if (m->budget) {
        max = n / WIRE_BYTES_PER_OBJECT + WIRE_OBJECTS_FREE;
        max = max < WIRE_OBJECTS_MAX ? max : WIRE_OBJECTS_MAX;
    }
    if (m->objects_max && max > m->objects_max)
        max = m->objects_max;
    long r = codec_scan(body, n, max, CODEC_MAX_DEPTH, NULL);
    if (r == CODEC_SCAN_TOO_MANY)
        return -2;
    if (r < 0)
        return -1;
    size_t off = 0;
    if (msgpack_unpack(body, n, &off, &m->zone, &m->root) != MSGPACK_UNPACK_SUCCESS)
        return -1;
    if (m->root.type != MSGPACK_OBJECT_MAP)
        return -1;
    int64_t op;
    if (!wire_get_int(m, "op", &op) || op < 0 || op > 0xffff)
        return -1;
    m->op = (int)op;
    const msgpack_object *rid = wire_get(m, "rid");
    m->rid = rid && rid->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? rid->via.u64 : 0;
    return 0;
}

const msgpack_object *wire_obj_get(const msgpack_object *map, const char *k)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t kn = strlen(k);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *ko = &map->via.map.ptr[i].key;
        if (ko->type == MSGPACK_OBJECT_STR && ko->via.str.size == kn &&
            !memcmp(ko->via.str.ptr, k, kn))
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

const msgpack_object *wire_get(const struct wire_msg *m, const char *k)
{
    return wire_obj_get(&m->root, k);
}

bool wire_get_str(const struct wire_msg *m, const char *k, const char **p, size_t *n)
{
    const msgpack_object *o = wire_get(m, k);
    if (!o || o->type != MSGPACK_OBJECT_STR)
        return false;
    *p = o->via.str.ptr;
    *n = o->via.str.size;
    return true;
}

bool wire_get_int(const struct wire_msg *m, const char *k, int64_t *v)
{
    const msgpack_object *o = wire_get(m, k);
    if (!o)
        return false;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *v = (int64_t)o->via.u64;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return true;
    }
    return false;
}

bool wire_get_bool(const struct wire_msg *m, const char *k, bool *v)
{
    const msgpack_object *o = wire_get(m, k);
    if (!o || o->type != MSGPACK_OBJECT_BOOLEAN)
        return false;
    *v = o->via.boolean;
    return true;
}

bool wire_get_double(const struct wire_msg *m, const char *k, double *v)
{
    const msgpack_object *o = wire_get(m, k);
    if (!o)
        return false;
    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        *v = o->via.f64;
        return true;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *v = (double)o->via.u64;
        return true;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *v = (double)o->via.i64;
        return true;
    default:
        return false;
    }
}

bool wire_get_bin(const struct wire_msg *m, const char *k, const char **p, size_t *n)
{
    const msgpack_object *o = wire_get(m, k);
    if (!o || o->type != MSGPACK_OBJECT_BIN)
        return false;
    *p = o->via.bin.ptr;
    *n = o->via.bin.size;
    return true;
}

char *wire_dup_str(const struct wire_msg *m, const char *k)
{
    const char *p;
    size_t n;
    if (!wire_get_str(m, k, &p, &n) || memchr(p, 0, n))
        return NULL;
    return mem_strndup(p, n);
}

bool wire_copy_str(const struct wire_msg *m, const char *k, char *out, size_t size)
{
    const char *p;
    size_t n;
    if (!wire_get_str(m, k, &p, &n) || n >= size || memchr(p, 0, n))
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

void wire_get_error(const struct wire_msg *m, skiff_error *err)
{
    if (!err)
        return;
    skiff_error_clear(err);
    int64_t code = SKIFF_ERR_INTERNAL;
    wire_get_int(m, "code", &code);
    if (code <= 0 || code > 0xffff)
        code = SKIFF_ERR_INTERNAL;
    err->code = (skiff_code)code;
    err->type = wire_dup_str(m, "type");
    if (!err->type)
        err->type = mem_strdup(skiff_code_name(err->code));
    err->message = wire_dup_str(m, "message");
    if (!err->message)
        err->message = mem_strdup("");
    err->traceback = wire_dup_str(m, "traceback");
}
