/*
 * addr.h - server addresses for the client: parsing "HOST:PORT" / "[V6]:PORT" / "unix:PATH" and
 * opening a blocking stream socket to one within a time limit.
 */
#ifndef SKIFF_CLIENT_ADDR_H
#define SKIFF_CLIENT_ADDR_H

#include <stdbool.h>
#include <stddef.h>

/* Longest host name (RFC 1035 says 253) and unix socket path (sun_path is 108 on Linux). */
#define ADDR_HOST_MAX 256
#define ADDR_PATH_MAX 108

struct addr {
    bool is_unix;
    char host[ADDR_HOST_MAX]; /* TCP: a name or a literal, without IPv6 brackets */
    char port[8];             /* TCP: 1-65535 in decimal */
    char path[ADDR_PATH_MAX]; /* unix: the socket's path, NUL-terminated */
};

/* Parses s into a. 0 on success; -1 with the reason in why (why_size bytes, NUL-terminated)
 * when s is empty, has no port, a port outside 1-65535, an unbracketed IPv6 literal, an empty
 * host, or a unix path that is empty or too long. a is written only on success. */
int addr_parse(const char *s, struct addr *a, char *why, size_t why_size);

/* Connects to a within timeout seconds (> 0). Returns a blocking socket (close-on-exec; TCP with
 * TCP_NODELAY and SO_KEEPALIVE), or -1 with the reason in why (resolution failure, refused,
 * timed out, ...). */
int addr_connect(const struct addr *a, double timeout, char *why, size_t why_size);

#endif
