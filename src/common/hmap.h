/*
 * hmap.h - a hash map from NUL-terminated string keys to pointers.
 *
 * Open addressing with linear probing; keys are borrowed (they usually point into the object
 * stored as the value, e.g. a call's id), so a key must outlive its entry. Used by the server to
 * find calls, inputs and functions by id.
 */
#ifndef SKIFF_COMMON_HMAP_H
#define SKIFF_COMMON_HMAP_H

#include <stddef.h>

struct hmap_slot {
    const char *key; /* NULL: empty; HMAP_TOMBSTONE: deleted */
    void *val;
};

struct hmap {
    struct hmap_slot *slots;
    size_t cap;  /* a power of two, or 0 */
    size_t used; /* live entries */
    size_t dead; /* tombstones */
};

void hmap_init(struct hmap *m);
void hmap_deinit(struct hmap *m);
/* The value of key, or NULL. */
void *hmap_get(const struct hmap *m, const char *key);
/* Inserts or replaces key -> val. 0, or -1 when out of memory (the map is unchanged). */
int hmap_put(struct hmap *m, const char *key, void *val);
/* Removes key; returns its value or NULL. */
void *hmap_del(struct hmap *m, const char *key);

#endif
