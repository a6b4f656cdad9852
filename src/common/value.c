/*
 * value.c - the skiff_value tree and the skiff_error helpers of the public API.
 */
#include "value.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

/* --- errors ----------------------------------------------------------------------------------- */

static const char *const code_names[] = {
    [SKIFF_OK] = "OK",
    [SKIFF_ERR_INVALID] = "InvalidError",
    [SKIFF_ERR_NOT_FOUND] = "NotFoundError",
    [SKIFF_ERR_TIMEOUT] = "TimeoutError",
    [SKIFF_ERR_OUTPUT_EXPIRED] = "OutputExpiredError",
    [SKIFF_ERR_FUNCTION_TIMEOUT] = "FunctionTimeoutError",
    [SKIFF_ERR_USER] = "Error",
    [SKIFF_ERR_REMOTE] = "RemoteError",
    [SKIFF_ERR_CANCELLED] = "CancelledError",
    [SKIFF_ERR_EXECUTION] = "ExecutionError",
    [SKIFF_ERR_INTERNAL] = "InternalFailure",
    [SKIFF_ERR_RESOURCE_EXHAUSTED] = "ResourceExhaustedError",
    [SKIFF_ERR_AUTH] = "AuthError",
    [SKIFF_ERR_CONNECTION] = "ConnectionError",
    [SKIFF_ERR_SERIALIZATION] = "SerializationError",
    [SKIFF_ERR_DESERIALIZATION] = "DeserializationError",
    [SKIFF_ERR_REQUEST_SIZE] = "RequestSizeError",
    [SKIFF_ERR_NOMEM] = "OutOfMemoryError",
    [SKIFF_ERR_INIT_FAILURE] = "InitFailureError",
    [SKIFF_ERR_OUT_OF_MEMORY] = "OutOfMemoryError",
};

const char *skiff_code_name(skiff_code code)
{
    if ((unsigned)code < sizeof code_names / sizeof code_names[0] && code_names[code])
        return code_names[code];
    return "Error";
}

void skiff_error_clear(skiff_error *err)
{
    if (!err)
        return;
    mem_free(err->type);
    mem_free(err->message);
    mem_free(err->traceback);
    *err = (skiff_error)SKIFF_ERROR_INIT;
}

int skiff_error_set(skiff_error *err, skiff_code code, const char *type, const char *fmt, ...)
{
    if (!err)
        return code;
    skiff_error_clear(err);
    err->code = code;
    err->type = mem_strdup(type ? type : skiff_code_name(code));
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    err->message = mem_strdup(msg);
    return code;
}

/* --- construction ----------------------------------------------------------------------------- */

static skiff_value *value_new(skiff_type t)
{
    skiff_value *v = mem_calloc(1, sizeof *v);
    if (v)
        v->type = t;
    return v;
}

skiff_value *skiff_value_nil(void)
{
    return value_new(SKIFF_NIL);
}

skiff_value *skiff_value_bool(bool b)
{
    skiff_value *v = value_new(SKIFF_BOOL);
    if (v)
        v->u.b = b;
    return v;
}

skiff_value *skiff_value_int(int64_t i)
{
    skiff_value *v = value_new(SKIFF_INT);
    if (v)
        v->u.i = i;
    return v;
}

skiff_value *skiff_value_double(double d)
{
    skiff_value *v = value_new(SKIFF_DOUBLE);
    if (v)
        v->u.d = d;
    return v;
}

static skiff_value *value_blob(skiff_type t, const void *p, size_t n)
{
    skiff_value *v = value_new(t);
    if (!v)
        return NULL;
    v->u.s.p = mem_alloc(n + 1);
    if (!v->u.s.p) {
        mem_free(v);
        return NULL;
    }
    if (n)
        memcpy(v->u.s.p, p, n);
    v->u.s.p[n] = '\0';
    v->u.s.n = n;
    return v;
}

bool utf8_valid(const char *s, size_t n)
{
    if (n == 0)
        return true; /* s may be NULL then (msgpack-c's empty strings): no pointer arithmetic */
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t len;
        unsigned min, cp;
        if ((c & 0xe0) == 0xc0) {
            len = 2, min = 0x80, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, min = 0x800, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, min = 0x10000, cp = c & 0x07;
        } else {
            return false;
        }
        if ((size_t)(end - p) < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((p[k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += len;
    }
    return true;
}

skiff_value *skiff_value_stringn(const char *s, size_t len)
{
    if (!s && len)
        return NULL;
    if (!utf8_valid(s, len))
        return NULL;
    return value_blob(SKIFF_STRING, s, len);
}

skiff_value *skiff_value_string(const char *s)
{
    return s ? skiff_value_stringn(s, strlen(s)) : NULL;
}

skiff_value *skiff_value_bytes(const void *p, size_t len)
{
    if (!p && len)
        return NULL;
    return value_blob(SKIFF_BYTES, p, len);
}

skiff_value *skiff_value_list(void)
{
    return value_new(SKIFF_LIST);
}

skiff_value *skiff_value_map(void)
{
    return value_new(SKIFF_MAP);
}

skiff_value *skiff_value_list_of(size_t n, ...)
{
    skiff_value *list = skiff_value_list();
    bool ok = list != NULL;
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        skiff_value *item = va_arg(ap, skiff_value *);
        if (!ok) {
            skiff_value_free(item);
            continue;
        }
        if (skiff_list_append(list, item) != SKIFF_OK)
            ok = false;
    }
    va_end(ap);
    if (!ok) {
        skiff_value_free(list);
        return NULL;
    }
    return list;
}

int skiff_list_append(skiff_value *list, skiff_value *item)
{
    if (!list || list->type != SKIFF_LIST || !item) {
        skiff_value_free(item);
        return SKIFF_ERR_INVALID;
    }
    if (list->u.list.n == list->u.list.cap) {
        size_t cap = list->u.list.cap ? list->u.list.cap * 2 : 4;
        skiff_value **items = mem_realloc(list->u.list.items, cap * sizeof *items);
        if (!items) {
            skiff_value_free(item);
            return SKIFF_ERR_NOMEM;
        }
        list->u.list.items = items;
        list->u.list.cap = cap;
    }
    list->u.list.items[list->u.list.n++] = item;
    return SKIFF_OK;
}

/* Appends key (n bytes, checked) and item to map without looking for key first. */
static int map_append(skiff_value *map, const char *key, size_t n, skiff_value *item)
{
    if (map->u.map.n == map->u.map.cap) {
        size_t cap = map->u.map.cap ? map->u.map.cap * 2 : 4;
        char **keys = mem_realloc(map->u.map.keys, cap * sizeof *keys);
        if (!keys) {
            skiff_value_free(item);
            return SKIFF_ERR_NOMEM;
        }
        map->u.map.keys = keys;
        skiff_value **vals = mem_realloc(map->u.map.vals, cap * sizeof *vals);
        if (!vals) {
            skiff_value_free(item);
            return SKIFF_ERR_NOMEM;
        }
        map->u.map.vals = vals;
        map->u.map.cap = cap;
    }
    char *k = mem_strndup(key, n);
    if (!k) {
        skiff_value_free(item);
        return SKIFF_ERR_NOMEM;
    }
    map->u.map.keys[map->u.map.n] = k;
    map->u.map.vals[map->u.map.n++] = item;
    return SKIFF_OK;
}

static bool key_ok(const skiff_value *map, const char *key, size_t n)
{
    return map && map->type == SKIFF_MAP && key && !memchr(key, 0, n) && utf8_valid(key, n);
}

int value_map_setn(skiff_value *map, const char *key, size_t n, skiff_value *item)
{
    if (!item || !key_ok(map, key, n)) {
        skiff_value_free(item);
        return SKIFF_ERR_INVALID;
    }
    for (size_t i = 0; i < map->u.map.n; i++) {
        if (strlen(map->u.map.keys[i]) == n && !memcmp(map->u.map.keys[i], key, n)) {
            skiff_value_free(map->u.map.vals[i]);
            map->u.map.vals[i] = item;
            return SKIFF_OK;
        }
    }
    return map_append(map, key, n, item);
}

int value_map_addn(skiff_value *map, const char *key, size_t n, skiff_value *item)
{
    if (!item || !key_ok(map, key, n)) {
        skiff_value_free(item);
        return SKIFF_ERR_INVALID;
    }
    return map_append(map, key, n, item);
}

/* qsort context for value_map_dedupe: the map's keys (qsort has no context argument). */
static char *const *dedupe_keys;

static int by_key_then_position(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = strcmp(dedupe_keys[x], dedupe_keys[y]);
    return c ? c : (x < y ? -1 : x > y);
}

int value_map_dedupe(skiff_value *map)
{
    size_t n = map->u.map.n;
    if (n < 2)
        return SKIFF_OK;
    size_t *order = mem_alloc(n * sizeof *order);
    if (!order)
        return SKIFF_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    dedupe_keys = map->u.map.keys;
    qsort(order, n, sizeof *order, by_key_then_position);
    dedupe_keys = NULL;
    /* In each run of one key: the first position keeps its place and takes the last value (as
     * setting the key again would); the others go. */
    bool *gone = NULL;
    for (size_t r = 0; r < n;) {
        size_t e = r + 1;
        while (e < n && !strcmp(map->u.map.keys[order[r]], map->u.map.keys[order[e]]))
            e++;
        if (e - r > 1) {
            if (!gone && !(gone = mem_calloc(n, sizeof *gone))) {
                mem_free(order);
                return SKIFF_ERR_NOMEM;
            }
            size_t first = order[r], last = order[e - 1];
            skiff_value_free(map->u.map.vals[first]);
            map->u.map.vals[first] = map->u.map.vals[last];
            map->u.map.vals[last] = NULL;
            for (size_t k = r + 1; k < e; k++)
                gone[order[k]] = true;
        }
        r = e;
    }
    if (gone) {
        size_t w = 0;
        for (size_t i = 0; i < n; i++) {
            if (gone[i]) {
                mem_free(map->u.map.keys[i]);
                skiff_value_free(map->u.map.vals[i]);
                continue;
            }
            map->u.map.keys[w] = map->u.map.keys[i];
            map->u.map.vals[w++] = map->u.map.vals[i];
        }
        map->u.map.n = w;
        mem_free(gone);
    }
    mem_free(order);
    return SKIFF_OK;
}

int skiff_map_set(skiff_value *map, const char *key, skiff_value *item)
{
    return value_map_setn(map, key, key ? strlen(key) : 0, item);
}

/* --- access ----------------------------------------------------------------------------------- */

skiff_type skiff_value_type(const skiff_value *v)
{
    return v ? v->type : SKIFF_NIL;
}

const char *skiff_type_name(skiff_type t)
{
    static const char *const names[] = {"nil", "bool",  "int",  "float",
                                        "str", "bytes", "list", "map"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

bool skiff_value_get_bool(const skiff_value *v)
{
    return v && v->type == SKIFF_BOOL ? v->u.b : false;
}

int64_t skiff_value_get_int(const skiff_value *v)
{
    return v && v->type == SKIFF_INT ? v->u.i : 0;
}

double skiff_value_get_double(const skiff_value *v)
{
    if (v && v->type == SKIFF_DOUBLE)
        return v->u.d;
    if (v && v->type == SKIFF_INT)
        return (double)v->u.i;
    return 0.0;
}

const char *skiff_value_get_string(const skiff_value *v, size_t *len)
{
    if (!v || v->type != SKIFF_STRING)
        return NULL;
    if (len)
        *len = v->u.s.n;
    return v->u.s.p;
}

const void *skiff_value_get_bytes(const skiff_value *v, size_t *len)
{
    if (!v || v->type != SKIFF_BYTES)
        return NULL;
    if (len)
        *len = v->u.s.n;
    return v->u.s.p;
}

size_t skiff_list_len(const skiff_value *v)
{
    return v && v->type == SKIFF_LIST ? v->u.list.n : 0;
}

skiff_value *skiff_list_get(const skiff_value *v, size_t i)
{
    return i < skiff_list_len(v) ? v->u.list.items[i] : NULL;
}

size_t skiff_map_len(const skiff_value *v)
{
    return v && v->type == SKIFF_MAP ? v->u.map.n : 0;
}

const char *skiff_map_key(const skiff_value *v, size_t i)
{
    return i < skiff_map_len(v) ? v->u.map.keys[i] : NULL;
}

skiff_value *skiff_map_value(const skiff_value *v, size_t i)
{
    return i < skiff_map_len(v) ? v->u.map.vals[i] : NULL;
}

skiff_value *skiff_map_get(const skiff_value *v, const char *key)
{
    if (!key)
        return NULL;
    for (size_t i = 0; i < skiff_map_len(v); i++)
        if (!strcmp(v->u.map.keys[i], key))
            return v->u.map.vals[i];
    return NULL;
}

skiff_value *skiff_value_copy(const skiff_value *v)
{
    if (!v)
        return NULL;
    switch (v->type) {
    case SKIFF_NIL:
        return skiff_value_nil();
    case SKIFF_BOOL:
        return skiff_value_bool(v->u.b);
    case SKIFF_INT:
        return skiff_value_int(v->u.i);
    case SKIFF_DOUBLE:
        return skiff_value_double(v->u.d);
    case SKIFF_STRING:
    case SKIFF_BYTES:
        return value_blob(v->type, v->u.s.p, v->u.s.n);
    case SKIFF_LIST: {
        skiff_value *l = skiff_value_list();
        for (size_t i = 0; l && i < v->u.list.n; i++) {
            skiff_value *c = skiff_value_copy(v->u.list.items[i]);
            if (!c || skiff_list_append(l, c) != SKIFF_OK) {
                skiff_value_free(l);
                return NULL;
            }
        }
        return l;
    }
    case SKIFF_MAP: {
        skiff_value *m = skiff_value_map();
        for (size_t i = 0; m && i < v->u.map.n; i++) {
            skiff_value *c = skiff_value_copy(v->u.map.vals[i]);
            if (!c || skiff_map_set(m, v->u.map.keys[i], c) != SKIFF_OK) {
                skiff_value_free(m);
                return NULL;
            }
        }
        return m;
    }
    }
    return NULL;
}

bool skiff_value_equal(const skiff_value *a, const skiff_value *b)
{
    if (skiff_value_type(a) != skiff_value_type(b))
        return false;
    if (!a || !b)
        return a == b || skiff_value_type(a) == SKIFF_NIL;
    switch (a->type) {
    case SKIFF_NIL:
        return true;
    case SKIFF_BOOL:
        return a->u.b == b->u.b;
    case SKIFF_INT:
        return a->u.i == b->u.i;
    case SKIFF_DOUBLE:
        return a->u.d == b->u.d;
    case SKIFF_STRING:
    case SKIFF_BYTES:
        return a->u.s.n == b->u.s.n && !memcmp(a->u.s.p, b->u.s.p, a->u.s.n);
    case SKIFF_LIST:
        if (a->u.list.n != b->u.list.n)
            return false;
        for (size_t i = 0; i < a->u.list.n; i++)
            if (!skiff_value_equal(a->u.list.items[i], b->u.list.items[i]))
                return false;
        return true;
    case SKIFF_MAP:
        if (a->u.map.n != b->u.map.n)
            return false;
        for (size_t i = 0; i < a->u.map.n; i++) {
            const skiff_value *o = skiff_map_get(b, a->u.map.keys[i]);
            if (!o || !skiff_value_equal(a->u.map.vals[i], o))
                return false;
        }
        return true;
    }
    return false;
}

void skiff_value_free(skiff_value *v)
{
    if (!v)
        return;
    switch (v->type) {
    case SKIFF_STRING:
    case SKIFF_BYTES:
        mem_free(v->u.s.p);
        break;
    case SKIFF_LIST:
        for (size_t i = 0; i < v->u.list.n; i++)
            skiff_value_free(v->u.list.items[i]);
        mem_free(v->u.list.items);
        break;
    case SKIFF_MAP:
        for (size_t i = 0; i < v->u.map.n; i++) {
            mem_free(v->u.map.keys[i]);
            skiff_value_free(v->u.map.vals[i]);
        }
        mem_free(v->u.map.keys);
        mem_free(v->u.map.vals);
        break;
    default:
        break;
    }
    mem_free(v);
}

bool value_has_pickle(const skiff_value *v)
{
    switch (skiff_value_type(v)) {
    case SKIFF_LIST:
        for (size_t i = 0; i < skiff_list_len(v); i++)
            if (value_has_pickle(skiff_list_get(v, i)))
                return true;
        return false;
    case SKIFF_MAP:
        if (skiff_map_len(v) == 1 && !strcmp(skiff_map_key(v, 0), VALUE_PICKLE_KEY) &&
            skiff_value_type(skiff_map_value(v, 0)) == SKIFF_BYTES)
            return true;
        for (size_t i = 0; i < skiff_map_len(v); i++)
            if (value_has_pickle(skiff_map_value(v, i)))
                return true;
        return false;
    default:
        return false;
    }
}
