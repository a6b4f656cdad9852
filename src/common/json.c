/*
 * json.c - skiff_value <-> JSON with jansson: the edges of skiff (CLI, HTTP).
 *
 * JSON has no bytes, so bytes travel as the one-key object {"$bytes": "<base64>"} (standard
 * alphabet, padded; base64 by OpenSSL). Integers that fit in 64 bits stay ints; other numbers
 * become doubles. Non-finite doubles have no JSON form and are written as null.
 */
#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "mem.h"
#include "value.h"

static int from_json(json_t *j, skiff_value **out, int depth, skiff_error *err);

/* True if s[0..n) is padded standard base64: alphabet characters, then at most two '=' at the
 * very end. (EVP_DecodeBlock alone accepts misplaced padding.) */
static bool base64_valid(const char *s, size_t n)
{
    if (n % 4)
        return false;
    size_t pad = 0;
    while (pad < 2 && pad < n && s[n - 1 - pad] == '=')
        pad++;
    for (size_t i = 0; i < n - pad; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return false;
    }
    return true;
}

/* Decodes a {"$bytes": "..."} object's base64 text (checked with base64_valid); NULL when out of
 * memory. */
static skiff_value *bytes_from_base64(const char *s, size_t n)
{
    unsigned char *raw = mem_alloc(n / 4 * 3 + 1);
    if (!raw)
        return NULL;
    int len = n ? EVP_DecodeBlock(raw, (const unsigned char *)s, (int)n) : 0;
    skiff_value *v = NULL;
    if (len >= 0) {
        /* EVP_DecodeBlock counts the padding as zero bytes: drop them. */
        if (n && s[n - 1] == '=')
            len--;
        if (n > 1 && s[n - 2] == '=')
            len--;
        v = skiff_value_bytes(raw, (size_t)len);
    }
    mem_free(raw);
    return v;
}

static int from_json(json_t *j, skiff_value **out, int depth, skiff_error *err)
{
    /* The same rule as the msgpack codec: at most CODEC_MAX_DEPTH arrays and objects deep. */
    if (depth >= CODEC_MAX_DEPTH && (json_is_array(j) || json_is_object(j)))
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "JSON nested more than %d arrays and objects deep", CODEC_MAX_DEPTH);
    skiff_value *v = NULL;
    switch (json_typeof(j)) {
    case JSON_NULL:
        v = skiff_value_nil();
        break;
    case JSON_TRUE:
        v = skiff_value_bool(true);
        break;
    case JSON_FALSE:
        v = skiff_value_bool(false);
        break;
    case JSON_INTEGER:
        v = skiff_value_int((int64_t)json_integer_value(j));
        break;
    case JSON_REAL:
        v = skiff_value_double(json_real_value(j));
        break;
    case JSON_STRING:
        v = skiff_value_stringn(json_string_value(j), json_string_length(j));
        break;
    case JSON_ARRAY: {
        v = skiff_value_list();
        size_t i;
        json_t *item;
        json_array_foreach(j, i, item)
        {
            if (!v)
                break;
            skiff_value *c;
            int rc = from_json(item, &c, depth + 1, err);
            if (rc != SKIFF_OK) {
                skiff_value_free(v);
                return rc;
            }
            if (skiff_list_append(v, c) != SKIFF_OK) {
                skiff_value_free(v);
                v = NULL;
            }
        }
        break;
    }
    case JSON_OBJECT: {
        json_t *b = json_object_get(j, "$bytes");
        if (b && json_object_size(j) == 1) {
            if (!json_is_string(b))
                return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                                       "\"$bytes\" must hold a base64 string");
            if (!base64_valid(json_string_value(b), json_string_length(b)))
                return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                                       "\"$bytes\" is not valid base64");
            v = bytes_from_base64(json_string_value(b), json_string_length(b));
            break;
        }
        v = skiff_value_map();
        const char *key;
        size_t key_len;
        json_t *item;
        json_object_keylen_foreach(j, key, key_len, item)
        {
            if (!v)
                break;
            skiff_value *c;
            int rc = from_json(item, &c, depth + 1, err);
            if (rc != SKIFF_OK) {
                skiff_value_free(v);
                return rc;
            }
            rc = value_map_addn(v, key, key_len, c); /* jansson's object keys are distinct */
            if (rc != SKIFF_OK) {
                skiff_value_free(v);
                if (rc == SKIFF_ERR_INVALID)
                    return skiff_error_set(err, rc, NULL, "object key holds a NUL character");
                v = NULL;
            }
        }
        break;
    }
    }
    if (!v)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory reading JSON");
    *out = v;
    return SKIFF_OK;
}

size_t codec_json_values(const char *text, size_t len, size_t max)
{
    size_t count = 0;
    bool in_word = false; /* inside a number or a literal (true, false, null) */
    for (size_t i = 0; i < len && count <= max; i++) {
        char c = text[i];
        if (c == '"') {
            count++;
            in_word = false;
            for (i++; i < len && text[i] != '"'; i++)
                if (text[i] == '\\')
                    i++;
            continue;
        }
        bool word = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-' || c == '+' ||
                    c == '.' || (c >= 'A' && c <= 'Z');
        if (c == '[' || c == '{' || (word && !in_word))
            count++;
        in_word = word;
    }
    return count;
}

/* A copy of text[0..len) with ".0" after every integer that does not fit in 64 bits, so that
 * jansson reads those as doubles instead of refusing them. NULL when out of memory. */
static char *widen_big_integers(const char *text, size_t len, size_t *out_len)
{
    /* A widened integer has at least 19 digits and gains 2 characters: half again is plenty. */
    char *out = mem_alloc(len * 3 / 2 + 16);
    if (!out)
        return NULL;
    size_t o = 0;
    bool in_string = false;
    for (size_t i = 0; i < len;) {
        char c = text[i];
        if (in_string) {
            out[o++] = text[i++];
            if (c == '\\' && i < len)
                out[o++] = text[i++];
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
            out[o++] = text[i++];
            continue;
        }
        if (c != '-' && !(c >= '0' && c <= '9')) {
            out[o++] = text[i++];
            continue;
        }
        /* A number: copy it; widen it if it is an integer beyond int64. */
        size_t start = i;
        bool integer = true;
        while (i < len && strchr("+-0123456789.eE", text[i])) {
            if (strchr(".eE", text[i]))
                integer = false;
            i++;
        }
        memcpy(out + o, text + start, i - start);
        o += i - start;
        if (integer) {
            char num[64];
            size_t n = i - start < sizeof num - 1 ? i - start : sizeof num - 1;
            memcpy(num, text + start, n);
            num[n] = '\0';
            errno = 0;
            (void)strtoll(num, NULL, 10);
            if (errno == ERANGE || i - start >= sizeof num - 1) {
                memcpy(out + o, ".0", 2);
                o += 2;
            }
        }
    }
    *out_len = o;
    return out;
}

int skiff_value_from_json(const char *text, size_t len, skiff_value **out, skiff_error *err)
{
    json_error_t je;
    const size_t flags = JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL;
    json_t *j = json_loadb(text, len, flags, &je);
    if (!j && strstr(je.text, "too big")) {
        size_t wide_len;
        char *wide = widen_big_integers(text, len, &wide_len);
        if (!wide)
            return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory reading JSON");
        j = json_loadb(wide, wide_len, flags, &je);
        mem_free(wide);
    }
    if (!j)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "invalid JSON at line %d column %d: %s", je.line, je.column,
                               je.text);
    int rc = from_json(j, out, 0, err);
    json_decref(j);
    return rc;
}

static json_t *to_json(const skiff_value *v)
{
    switch (skiff_value_type(v)) {
    case SKIFF_NIL:
        return json_null();
    case SKIFF_BOOL:
        return json_boolean(v->u.b);
    case SKIFF_INT:
        return json_integer((json_int_t)v->u.i);
    case SKIFF_DOUBLE:
        return isfinite(v->u.d) ? json_real(v->u.d) : json_null();
    case SKIFF_STRING:
        return json_stringn_nocheck(v->u.s.p, v->u.s.n);
    case SKIFF_BYTES: {
        if (v->u.s.n > (size_t)INT32_MAX / 2)
            return NULL;
        char *text = mem_alloc((v->u.s.n + 2) / 3 * 4 + 1);
        if (!text)
            return NULL;
        EVP_EncodeBlock((unsigned char *)text, (const unsigned char *)v->u.s.p, (int)v->u.s.n);
        json_t *o = json_pack("{s:s}", "$bytes", text);
        mem_free(text);
        return o;
    }
    case SKIFF_LIST: {
        json_t *a = json_array();
        for (size_t i = 0; a && i < v->u.list.n; i++) {
            json_t *c = to_json(v->u.list.items[i]);
            if (!c || json_array_append_new(a, c)) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case SKIFF_MAP: {
        json_t *o = json_object();
        for (size_t i = 0; o && i < v->u.map.n; i++) {
            json_t *c = to_json(v->u.map.vals[i]);
            if (!c || json_object_set_new_nocheck(o, v->u.map.keys[i], c)) {
                json_decref(o);
                return NULL;
            }
        }
        return o;
    }
    }
    return NULL;
}

char *skiff_value_to_json(const skiff_value *v)
{
    json_t *j = to_json(v);
    if (!j)
        return NULL;
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    json_decref(j);
    return s;
}
