/*
 * hmap.c - string-keyed hash map (see hmap.h). FNV-1a hashing, linear probing, tombstones for
 * deletion, rebuilt at 3/4 load (live + tombstones).
 */
#include "hmap.h"

#include <stdint.h>
#include <string.h>

#include "mem.h"

static const char tombstone;
#define HMAP_TOMBSTONE (&tombstone)

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

void hmap_init(struct hmap *m)
{
    memset(m, 0, sizeof *m);
}

void hmap_deinit(struct hmap *m)
{
    mem_free(m->slots);
    hmap_init(m);
}

static struct hmap_slot *find(const struct hmap *m, const char *key)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = hash(key) & mask;; i = (i + 1) & mask) {
        struct hmap_slot *s = &m->slots[i];
        if (!s->key)
            return NULL;
        if (s->key != HMAP_TOMBSTONE && !strcmp(s->key, key))
            return s;
    }
}

void *hmap_get(const struct hmap *m, const char *key)
{
    struct hmap_slot *s = find(m, key);
    return s ? s->val : NULL;
}

static int grow(struct hmap *m)
{
    size_t cap = m->cap ? m->cap : 16;
    while ((m->used + 1) * 2 > cap)
        cap *= 2;
    struct hmap_slot *slots = mem_calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        struct hmap_slot *s = &m->slots[i];
        if (!s->key || s->key == HMAP_TOMBSTONE)
            continue;
        size_t j = hash(s->key) & (cap - 1);
        while (slots[j].key)
            j = (j + 1) & (cap - 1);
        slots[j] = *s;
    }
    mem_free(m->slots);
    m->slots = slots;
    m->cap = cap;
    m->dead = 0;
    return 0;
}

int hmap_put(struct hmap *m, const char *key, void *val)
{
    struct hmap_slot *s = find(m, key);
    if (s) {
        s->val = val;
        return 0;
    }
    if ((m->used + m->dead + 1) * 4 > m->cap * 3 && grow(m) < 0)
        return -1;
    size_t mask = m->cap - 1;
    size_t i = hash(key) & mask;
    while (m->slots[i].key && m->slots[i].key != HMAP_TOMBSTONE)
        i = (i + 1) & mask;
    if (m->slots[i].key == HMAP_TOMBSTONE)
        m->dead--;
    m->slots[i].key = key;
    m->slots[i].val = val;
    m->used++;
    return 0;
}

void *hmap_del(struct hmap *m, const char *key)
{
    struct hmap_slot *s = find(m, key);
    if (!s)
        return NULL;
    void *val = s->val;
    s->key = HMAP_TOMBSTONE;
    s->val = NULL;
    m->used--;
    m->dead++;
    return val;
}
