/*
 * list.h - intrusive doubly-linked lists (a struct list_node embedded in each element).
 *
 * The head is a node whose next/prev point at itself when empty. container_of recovers the
 * element from its node.
 */
#ifndef SKIFF_COMMON_LIST_H
#define SKIFF_COMMON_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list_node {
    struct list_node *next, *prev;
};

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void list_init(struct list_node *h)
{
    h->next = h->prev = h;
}

static inline bool list_empty(const struct list_node *h)
{
    return h->next == h;
}

/* True if n is linked into some list (nodes are list_init'ed when unlinked). */
static inline bool list_linked(const struct list_node *n)
{
    return n->next != n;
}

static inline void list_insert_before(struct list_node *pos, struct list_node *n)
{
    n->prev = pos->prev;
    n->next = pos;
    pos->prev->next = n;
    pos->prev = n;
}

/* Appends n at the tail of the list headed by h. */
static inline void list_push(struct list_node *h, struct list_node *n)
{
    list_insert_before(h, n);
}

/* Unlinks n and leaves it self-linked, so list_linked(n) is false and unlinking twice is safe. */
static inline void list_remove(struct list_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    list_init(n);
}

#define list_for_each_safe(pos, tmp, head)                                                         \
    for (pos = (head)->next, tmp = pos->next; pos != (head); pos = tmp, tmp = pos->next)

#endif
