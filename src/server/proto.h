/*
 * proto.h - the client side of the protocol on the server: authentication and requests.
 */
#ifndef SKIFF_SERVER_PROTO_H
#define SKIFF_SERVER_PROTO_H

#include <stddef.h>

#include "conn.h"

struct proto_limits {
    size_t payload_max; /* largest argument or result payload */
    size_t frame_max;   /* largest frame after HELLO (the deploy's code included) */
};

/* The ops for client connections. limits is copied. */
const struct conn_ops *proto_client_ops(const struct proto_limits *limits);

#endif
