/*
 * proto.h - the client side of the protocol on the server: authentication and requests.
 */
#ifndef SKIFF_SERVER_PROTO_H
#define SKIFF_SERVER_PROTO_H

#include <stddef.h>

#include "common/buf.h"
#include "conn.h"

struct proto_limits {
    size_t payload_max; /* largest argument or result payload */
    size_t frame_max;   /* largest frame after HELLO (the deploy's code included) */
};

/* The ops for client connections. limits is copied. */
const struct conn_ops *proto_client_ops(const struct proto_limits *limits);

/* The canonical encoding (docs/protocol.md, "Class parameters") of the params payload p[0..n)
 * (one msgpack map) into out: the map re-packed with its keys sorted bytewise. NULL, or what is
 * wrong with it (not a map, a value that is not an int, str, bytes or bool, a name twice). */
const char *proto_canonical_params(const char *p, size_t n, struct buf *out);

#endif
