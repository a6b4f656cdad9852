/*
 * prom.h - pieces of the Prometheus text exposition format (version 0.0.4) that skiffd's
 * /metrics writes: escaped label values and formatted appends to a buffer; and the JSON strings
 * of the dashboard's answers. Pure functions, so that the unit tests check them without a
 * server.
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

/* Appends n bytes of s as a quoted JSON string (s NULL: null). Control characters and < > &
 * become \u escapes (a value never opens markup where a page shows it). 0 or a buf error. */
int prom_json_string(struct buf *b, const char *s, size_t n);

#endif
