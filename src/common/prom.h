/*
 * prom.h - pieces of the Prometheus text exposition format (version 0.0.4) that skiffd's
 * /metrics writes: escaped label values and formatted appends to a buffer. Pure functions, so
 * that the unit tests check them without a server.
 */
#ifndef SKIFF_COMMON_PROM_H
#define SKIFF_COMMON_PROM_H

#include <stddef.h>

#include "common/buf.h"

/* Appends s as a label value's inside (no quotes): backslash, double quote and newline become
 * \\, \" and \n, as the format requires. 0 or a buf error. */
int prom_escape_label(struct buf *b, const char *s);
/* Appends printf-style text to b. 0 or a buf error (or -1 on a formatting error). */
int prom_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
