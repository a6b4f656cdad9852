/*
 * buf.h - a growable byte buffer with a hard size cap.
 *
 * Used for frames being assembled or received. Every buffer has a maximum size: growing past it
 * fails (the caller turns that into a RequestSizeError) instead of eating memory.
 */
#ifndef SKIFF_COMMON_BUF_H
#define SKIFF_COMMON_BUF_H

#include <stddef.h>

struct buf {
    char *data; /* len bytes in use, cap allocated */
    size_t len;
    size_t cap;
    size_t max; /* the cap's cap: buf_reserve fails beyond it; 0 means SIZE_MAX */
};

void buf_init(struct buf *b, size_t max);
void buf_deinit(struct buf *b);
/* Failures of buf_reserve and buf_append. */
#define BUF_TOO_BIG (-1) /* the buffer would grow past b->max */
#define BUF_NOMEM (-2)   /* out of memory */

/* Makes room for n more bytes. 0, BUF_TOO_BIG or BUF_NOMEM. */
int buf_reserve(struct buf *b, size_t n);
/* Appends n bytes. 0, BUF_TOO_BIG or BUF_NOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);
/* Drops the first n bytes (n <= len), keeping the rest. */
void buf_consume(struct buf *b, size_t n);
/* Frees the memory when the buffer has grown large and is now empty (keeps small ones). */
void buf_shrink(struct buf *b);

#endif
