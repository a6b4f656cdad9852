/*
 * id.h - object identifiers: a type prefix and a sortable unique suffix.
 *
 * "fc-" + 26 characters of Crockford base32: 48 bits of milliseconds since the epoch, then 80
 * bits that start random and count up within the same millisecond, so ids made by one process
 * sort in creation order (the ULID layout). Prefixes: ap- app, fu- function, fc- function call,
 * in- input, ta- container, tk- token.
 */
#ifndef SKIFF_COMMON_ID_H
#define SKIFF_COMMON_ID_H

#include <stdbool.h>
#include <stddef.h>

#define ID_SUFFIX_LEN 26
/* Room for any id with its NUL: a 2-letter prefix, '-', the suffix. */
#define ID_SIZE 32

/* Writes a new id with prefix ("fc", ...) to out. Thread-safe. */
void id_new(char out[ID_SIZE], const char *prefix);
/* True if s is a well-formed id with that prefix. */
bool id_valid(const char *s, const char *prefix);
/* Fills p with n bytes from the kernel's random source. 0 or -1. */
int id_random(void *p, size_t n);

#endif
