/*
 * rpc.h - the client's connection to skiffd: requests out, replies matched back by rid.
 *
 * One connection per skiff_client, shared by every thread using the client. A request is built
 * into the client's reusable frame buffer and sent with one write; its caller then waits for the
 * reply with its rid. Replies may come in any order, so whichever waiting thread holds the
 * "reader role" reads the socket and hands other threads' replies over (see rpc.c). A lost
 * connection fails every request in flight with SKIFF_ERR_CONNECTION; the next request opens a
 * new connection (and authenticates again), so long-lived handles survive a server restart.
 */
#ifndef SKIFF_CLIENT_RPC_H
#define SKIFF_CLIENT_RPC_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <skiff/skiff.h>

#include "addr.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/list.h"
#include "common/wire.h"

struct skiff_client {
    pthread_mutex_t mu;              /* guards everything below except the reader-role fields */
    struct addr addr;                /* where the server is */
    char server[CONFIG_VALUE_MAX];   /* the address as given, for messages */
    char token_id[CONFIG_VALUE_MAX]; /* presented in HELLO; "" if none was configured */
    char token_secret[CONFIG_VALUE_MAX];
    double connect_timeout; /* seconds, > 0 */

    int fd;                   /* the connection, or -1 between connections */
    size_t payload_max;       /* the server's payload limit (from HELLO) */
    uint64_t next_rid;        /* last rid used; rids never repeat within a client */
    struct list_node waiters; /* struct waiter.link: requests sent and not yet answered */
    bool reading;             /* some thread holds the reader role */
    struct buf out;           /* the frame being built and sent (reused by every request) */
    struct buf args;          /* a CALL's encoded arguments (reused; max payload_max) */
    double last_recv;         /* monotonic seconds when the server last sent us bytes */
    struct buf wq;            /* request bytes accepted, not yet written (only while streams run) */
    int nasync;               /* asynchronous requests registered and not finally answered */
    int wake;                 /* eventfd interrupting a polling reader; -1 until the first stream */
    bool polling;             /* the reader-role holder is blocked in poll (write wake) */
    bool bare;                /* the reader-role holder is blocked in a plain recv */
    bool writing;             /* a thread flushes wq with mu released between polls */
    int epfd;                 /* epoll watching the connection for the async API; -1 until used */
    bool epout;               /* epfd also waits for room to write (wq holds bytes) */
    struct list_node loops;   /* struct aloop.link (async.c): each thread's async state */

    /* Reader role: only the thread holding it touches these (with or without mu). */
    struct buf in;       /* bytes received; frames start at in_off */
    size_t in_off;       /* start of the first unprocessed frame in in */
    size_t in_cur;       /* size (header included) of the reply the role holder is reading */
    struct wire_msg msg; /* the last frame parsed by the role holder */
};

/* A reply to one request. Either in place (msg is the client's parsed frame and the caller holds
 * the reader role until rpc_reply_release) or handed over by another thread (own parses frame). */
struct rpc_reply {
    struct wire_msg *msg; /* the reply; its op is OP_OK */
    struct wire_msg own;  /* storage for a handed-over reply */
    char *frame;          /* the handed-over frame body, or NULL */
    bool in_place;
};

/* Builds one request frame with rid into out (c->out), called with c->mu held. Returns SKIFF_OK,
 * or a skiff_code with err filled (nothing is then sent). */
typedef int (*rpc_build_fn)(struct skiff_client *c, struct buf *out, uint64_t rid, void *arg,
                            skiff_error *err);

/* Sends the request build() makes and waits for its reply. frame_max bounds the request frame
 * (0: the payload limit plus PROTO_FRAME_OVERHEAD). Returns SKIFF_OK with an OP_OK reply in *r,
 * which the caller must pass to rpc_reply_release (promptly: an in-place reply holds up other
 * threads' replies); the request's own error when the server answers OP_ERROR (err filled from
 * the reply, passed through unchanged); SKIFF_ERR_CONNECTION when the server cannot be reached
 * or the connection is lost before the reply; SKIFF_ERR_AUTH when a reconnect is refused;
 * SKIFF_ERR_DESERIALIZATION when the server sends a garbage frame (the connection is dropped);
 * SKIFF_ERR_NOMEM; or build's failure. *r is the caller's storage for the reply (r->msg may
 * point into it): it must stay put until released, and holds nothing to release on failure. */
int rpc_request(struct skiff_client *c, rpc_build_fn build, void *arg, size_t frame_max,
                struct rpc_reply *r, skiff_error *err);
/* Releases a reply from rpc_request (and with it the reader role, if held). */
void rpc_reply_release(struct skiff_client *c, struct rpc_reply *r);

/* Kinds of struct rpc_field. */
enum rpc_kind { RPC_STR, RPC_BIN, RPC_BOOL, RPC_INT, RPC_VALUE, RPC_DOUBLE };

/* One field of a simple request. */
struct rpc_field {
    const char *key;
    enum rpc_kind kind;
    const char *str; /* RPC_STR (NUL-terminated) */
    const void *bin; /* RPC_BIN: len bytes */
    size_t len;
    bool b;               /* RPC_BOOL */
    int64_t i;            /* RPC_INT */
    double d;             /* RPC_DOUBLE */
    const skiff_value *v; /* RPC_VALUE: packed as msgpack (bytes as bin) */
};

/* rpc_request for a request made of op and the n fields listed. Same returns. */
int rpc_simple(struct skiff_client *c, int op, const struct rpc_field *fields, size_t n,
               size_t frame_max, struct rpc_reply *r, skiff_error *err);

/* The code of an OP_ERROR reply (SKIFF_ERR_INTERNAL when it carries none that is valid), with err
 * (if non-NULL) filled from its type, message and traceback. */
int rpc_reply_error(const struct wire_msg *m, skiff_error *err);

/* The fields of a reply (all but op and rid) as a new skiff_value map in *out. SKIFF_OK,
 * SKIFF_ERR_DESERIALIZATION (a field that is not a valid value) or SKIFF_ERR_NOMEM. */
int rpc_reply_value(const struct wire_msg *m, skiff_value **out, skiff_error *err);

/* One frame answering an asynchronous request: its body (a msgpack map) and length. */
struct rpc_frame {
    struct rpc_frame *next;
    size_t len;
    char body[];
};

/* Where the frames answering asynchronous requests go, oldest first. Owned by the caller (a map
 * or a generator), which may send several requests to one sink. Fields are guarded by the
 * client's mu. */
struct rpc_sink {
    struct rpc_frame *head, *tail; /* frames received and not yet taken */
    pthread_cond_t cond;           /* signalled when a frame arrives or the sink fails */
    int live;                      /* requests of this sink not yet finally answered */
    int fail;                      /* SKIFF_OK, or why the sink's requests were lost */
    char why[800];                 /* the failure's message */
    bool waiting;                  /* its owner sleeps in rpc_sink_next */
    int notify;                    /* an eventfd written when a frame arrives or the sink fails
                                      (the async API's event loop watches it), or -1 */
    uint64_t fail_rid;             /* the last rid issued when a connection failed it: requests
                                      with a larger rid went out on a later connection */
};

/* Prepares an empty sink (no notify eventfd). */
void rpc_sink_init(struct rpc_sink *s);
/* Forgets every request of s still in flight (their late frames are dropped), frees the frames
 * not taken and destroys s. The requests themselves are not cancelled. */
void rpc_sink_deinit(struct skiff_client *c, struct rpc_sink *s);
/* Sends the request build() makes without waiting: its answers go to s, and its rid to *rid
 * (if rid is non-NULL) so the caller can tell the answers of several requests apart. Returns
 * SKIFF_OK once the frame is written or queued for writing; build's failure; SKIFF_ERR_CONNECTION
 * (cannot connect or the write failed), SKIFF_ERR_AUTH, SKIFF_ERR_NOMEM. frame_max as for
 * rpc_request. */
int rpc_send(struct skiff_client *c, rpc_build_fn build, void *arg, size_t frame_max,
             struct rpc_sink *s, uint64_t *rid, skiff_error *err);
/* Takes the oldest frame of s, waiting up to timeout_ms (-1: no limit, 0: do not wait) and
 * reading and writing the connection meanwhile when no other thread does. Returns SKIFF_OK with
 * the frame in *out (free it with rpc_frame_free); SKIFF_ERR_TIMEOUT when none came in time;
 * SKIFF_ERR_INVALID when s has no request left to answer; or the failure that lost s's requests
 * (SKIFF_ERR_CONNECTION, SKIFF_ERR_DESERIALIZATION, SKIFF_ERR_NOMEM), every time it is asked. */
int rpc_sink_next(struct skiff_client *c, struct rpc_sink *s, int timeout_ms,
                  struct rpc_frame **out, skiff_error *err);
void rpc_frame_free(struct rpc_frame *f);
/* rpc_send for a request made of op and the n fields listed. Same returns. */
int rpc_simple_send(struct skiff_client *c, int op, const struct rpc_field *fields, size_t n,
                    struct rpc_sink *s, uint64_t *rid, skiff_error *err);
/* Bytes of requests queued and not yet written: a producer (a map's inputs) holds back while
 * this is large, so the queue stays bounded. */
size_t rpc_queued_bytes(struct skiff_client *c);

/* The async API's poll without blocking: if no thread holds the reader role, takes it and reads
 * and writes the connection until nothing more can be done now (dispatching what arrived); then
 * drains s's notify eventfd and takes every frame of s at once into *frames (oldest first,
 * linked by next; NULL if none). Returns SKIFF_OK, or the failure that lost s's requests with
 * rids up to *lost (err set; requests with larger rids went out later and are still live),
 * which is then cleared from s so it can go on. */
int rpc_sink_poll(struct skiff_client *c, struct rpc_sink *s, struct rpc_frame **frames,
                  uint64_t *lost, skiff_error *err);
/* The client's epoll descriptor, readable when the connection has input (or room for queued
 * requests); made on first use. SKIFF_OK with *fd, or SKIFF_ERR_NOMEM. */
int rpc_epoll_fd(struct skiff_client *c, int *fd, skiff_error *err);
/* Frees every thread's async state of c (async.c): operations still pending are dropped and
 * their callbacks never run. Called by skiff_client_close. */
void async_client_close(struct skiff_client *c);

/* The server's payload limit as last announced (PROTO_PAYLOAD_MAX before the first HELLO). */
size_t rpc_payload_max(struct skiff_client *c);

#endif
