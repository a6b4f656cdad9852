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
/* The key of the one-entry map {"$pickle": <bytes>} that carries a pickled Python object
 * between Python callers and Python functions (docs/python.md, "Values"). */
#define VALUE_PICKLE_KEY "$pickle"
/* True when v holds such a map anywhere: only a Python caller can read it, so libskiff's other
 * callers and the HTTP side refuse it with a clear error instead of showing its bytes. */
bool value_has_pickle(const skiff_value *v);
/* The refusal of such a map in arguments that arrive over HTTP (JSON): a Python function would
 * unpickle it, which runs code, so only the Python client (an authenticated binary-protocol
 * caller) may send one. */
#define VALUE_PICKLE_REFUSED                                                                       \
    "pickled Python objects ({\"$pickle\": ...}) are not accepted over HTTP: only the Python "     \
    "client sends them"
/* The message of that refusal. */
#define VALUE_PICKLE_MESSAGE                                                                       \
    "the result holds a pickled Python object ({\"$pickle\": ...}), which only a Python "          \
    "caller (the skiff package) can read"

/* Sets key (n bytes, copied; must be valid UTF-8 without NUL) to item in map, taking item.
 * SKIFF_OK, SKIFF_ERR_INVALID, SKIFF_ERR_NOMEM. */
int value_map_setn(skiff_value *map, const char *key, size_t n, skiff_value *item);
/* Appends key and item without looking for key in map first (a decoder filling a map in O(n)):
 * the caller knows the keys are distinct, or calls value_map_dedupe once the map is complete.
 * Same checks and returns as value_map_setn. */
int value_map_addn(skiff_value *map, const char *key, size_t n, skiff_value *item);
/* Leaves one entry per key, as repeated value_map_setn calls would have: the first position,
 * the last value. O(n log n). SKIFF_OK or SKIFF_ERR_NOMEM (the map is then unchanged). */
int value_map_dedupe(skiff_value *map);

#endif
