/*
 * mem.c - allocation wrappers with a failure hook for tests (see mem.h).
 */
#include "mem.h"

#include <stdlib.h>
#include <string.h>

/* Countdown to the first injected failure; negative means never fail. Only tests set it, before
 * threads exist, so a plain variable is enough. */
static long fail_countdown = -1;

static int should_fail(void)
{
    if (fail_countdown < 0)
        return 0;
    if (fail_countdown == 0)
        return 1;
    fail_countdown--;
    return 0;
}

void mem_fail_after(long n)
{
    fail_countdown = n;
}

void *mem_alloc(size_t n)
{
    return should_fail() ? NULL : malloc(n ? n : 1);
}

void *mem_calloc(size_t count, size_t size)
{
    return should_fail() ? NULL : calloc(count ? count : 1, size ? size : 1);
}

void *mem_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : realloc(p, n ? n : 1);
}

char *mem_strndup(const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *d = mem_alloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

char *mem_strdup(const char *s)
{
    return s ? mem_strndup(s, strlen(s)) : NULL;
}

void mem_free(void *p)
{
    free(p);
}
