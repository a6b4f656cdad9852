/*
 * prom.c - the Prometheus text format's escaping and a formatted append (see prom.h).
 */
#include "common/prom.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int prom_escape_label(struct buf *b, const char *s)
{
    int rc = 0;
    for (const char *p = s; *p && !rc;) {
        size_t n = strcspn(p, "\\\"\n");
        rc = buf_append(b, p, n);
        p += n;
        if (!*p || rc)
            break;
        rc = buf_append(b, *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : "\\n", 2);
        p++;
    }
    return rc;
}

int prom_printf(struct buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof small)
        return buf_append(b, small, (size_t)n);
    int rc = buf_reserve(b, (size_t)n + 1);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int prom_json_string(struct buf *b, const char *s, size_t n)
{
    if (!s)
        return buf_append(b, "null", 4);
    int rc = buf_append(b, "\"", 1);
    for (size_t i = 0; i < n && !rc;) {
        size_t run = i;
        while (run < n && (unsigned char)s[run] >= 0x20 && !strchr("\"\\<>&", s[run]))
            run++;
        rc = buf_append(b, s + i, run - i);
        if (rc || run == n)
            break;
        unsigned char c = (unsigned char)s[run];
        rc = c == '"' || c == '\\' ? prom_printf(b, "\\%c", c) : prom_printf(b, "\\u%04x", c);
        i = run + 1;
    }
    return rc ? rc : buf_append(b, "\"", 1);
}
