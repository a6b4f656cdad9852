/*
 * value.h - internals of skiff_value shared by the codecs (msgpack, JSON).
 *
 * A value is a tagged node; lists and maps own their children. Maps keep insertion order and are
 * searched linearly: argument maps are small, and order makes encoding deterministic.
 */
#ifndef SKIFF_COMMON_VALUE_H
#define SKIFF_COMMON_VALUE_H

#include <skiff/skiff.h>

struct skiff_value {
    skiff_type type;
    union {
        bool b;
        int64_t i;
        double d;
        struct {
            char *p;  /* NUL-terminated for strings, so they can be used as C strings */
            size_t n; /* length without the terminator */
        } s;          /* SKIFF_STRING and SKIFF_BYTES */
        struct {
            skiff_value **items;
            size_t n, cap;
        } list;
        struct {
            char **keys;
            skiff_value **vals;
            size_t n, cap;
        } map;
    } u;
};

/* True if p[0..n) is valid UTF-8 (no overlongs, no surrogates). */
bool utf8_valid(const char *p, size_t n);

/* Sets key (n bytes, copied; must be valid UTF-8 without NUL) to item in map, taking item.
 * SKIFF_OK, SKIFF_ERR_INVALID, SKIFF_ERR_NOMEM. */
int value_map_setn(skiff_value *map, const char *key, size_t n, skiff_value *item);

#endif
