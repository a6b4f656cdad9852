/*
 * mem.h - the one place all of skiff allocates through.
 *
 * Every allocation goes through these wrappers so that tests can make the Nth allocation fail
 * (mem_fail_after) and check that each caller turns it into an out-of-memory error instead of a
 * crash. They behave like their libc namesakes.
 */
#ifndef SKIFF_COMMON_MEM_H
#define SKIFF_COMMON_MEM_H

#include <stddef.h>

void *mem_alloc(size_t n);
void *mem_calloc(size_t count, size_t size);
void *mem_realloc(void *p, size_t n);
/* A copy of s (NULL if s is NULL or out of memory). */
char *mem_strdup(const char *s);
/* A NUL-terminated copy of the first n bytes of s. */
char *mem_strndup(const char *s, size_t n);
void mem_free(void *p);

/* Tests: make every allocation after the next n succeed fail (n < 0 turns failures off). */
void mem_fail_after(long n);

#endif
