/*
 * conn.h - framed connections on the server's event loop: clients and containers alike.
 *
 * A conn reads bytes into `in`, cuts them into frames and hands each parsed frame to its ops'
 * on_frame. Replies are appended to `out` with the wire.h builders (conn_out) and sent in one
 * batch per loop iteration by conn_flush_all, which the loop calls after the store has committed
 * (so a reply that acknowledges something durable never leaves before the commit). A write that
 * does not complete at once continues with uv_write while new output collects behind it.
 *
 * Closing is asynchronous (libuv): conn_close stops reading, calls ops->on_close at once (so the
 * owner detaches everything that points at the conn) and frees the conn in the close callback.
 *
 * Limits on clients (accepted connections; containers' pipes have none), set by
 * conn_set_limits: a client must have its HELLO accepted within hello_timeout of its connect, or
 * it is closed; at most max_unauth clients may be unauthenticated at once (a new one closes the
 * oldest of them, and so does an accept that took the last free descriptor); an authenticated
 * client with nothing in progress (no call, waiter, stream, pending acknowledgement or unsent
 * output) is closed after idle_timeout without a frame. Backpressure: while a client's unsent
 * output (queued and in flight) is over out_high, its further requests stay unread in `in` and
 * reading stops; both resume once the output drains below half of it. Requests answered from a
 * frame already read may add one reply beyond out_high, so the output a client holds is bounded by
 * out_high plus one frame; streams it asked for (map outputs, followed logs) by the output buffer's
 * max.
 */
#ifndef SKIFF_SERVER_CONN_H
#define SKIFF_SERVER_CONN_H

#include <stdbool.h>
#include <uv.h>

#include "common/buf.h"
#include "common/list.h"
#include "common/wire.h"

struct auth_token;
struct conn;

struct conn_ops {
    /* A frame arrived. The msg is valid only during the call. */
    void (*on_frame)(struct conn *c, struct wire_msg *msg);
    /* The connection is closing (peer gone, error or conn_close); called once. */
    void (*on_close)(struct conn *c);
};

struct conn {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    const struct conn_ops *ops;
    void *owner;     /* what the conn belongs to (a container), or NULL for clients */
    struct buf in;   /* received, not yet parsed */
    struct buf out;  /* replies not yet handed to the kernel */
    struct buf wbuf; /* bytes of the uv_write in flight */
    uv_write_t wreq;
    struct wire_msg msg;
    size_t max_frame; /* largest frame accepted now (small until authenticated) */
    bool authed;      /* HELLO accepted (clients) */
    bool closing;
    bool writing;                 /* wreq in flight */
    bool dirty;                   /* on the flush list */
    bool linger;                  /* close once the output is sent */
    bool client;                  /* an accepted connection (limits apply) */
    bool held;                    /* reading stopped: unsent output over the limit (backpressure) */
    uint64_t since;               /* loop time (ms) of the accept */
    uint64_t last_frame;          /* loop time (ms) of the last frame received */
    struct list_node unauth_link; /* in the unauthenticated clients, oldest first */
    struct list_node dirty_link;
    struct list_node all_link; /* every open conn, for shutdown */
    struct list_node calls;    /* calls this client waits for or owns (struct call.conn_link) */
    struct list_node waiters;  /* GET waiters of this client (struct waiter.conn_link) */
    struct list_node streams;  /* streaming replies in progress (struct stream.conn_link) */
    struct list_node acks;     /* MAP_INPUTS awaiting their commit (calls.c) */
    char peer[64];             /* for logs */
    const char *error;         /* why the conn was cut off (a frame that is not a message), for
                                  on_close; NULL when it closed for any other reason */
    /* The token HELLO presented (a reference, auth.h), or NULL. */
    struct auth_token *token;
};

struct conn_limits {
    double hello_timeout; /* seconds from connect to an accepted HELLO */
    double idle_timeout;  /* seconds an authenticated client with nothing in progress may stay
                             silent; 0: forever */
    size_t max_unauth;    /* unauthenticated clients at once */
    size_t out_high;      /* bytes of unsent output past which a client's reading pauses */
};

/* Defaults of conn_limits (docs/server.md). */
#define CONN_HELLO_TIMEOUT 10.0
#define CONN_IDLE_TIMEOUT 600.0
#define CONN_MAX_UNAUTH 1024
#define CONN_OUT_HIGH (4u << 20)

/* Raises the soft limit of open files to the hard limit; returns the limit now in force (for
 * sizing connection limits). */
size_t conn_raise_nofile(void);
/* Sets the client limits and starts their timer on loop (call before conn_listen). */
void conn_set_limits(uv_loop_t *loop, const struct conn_limits *limits);
/* After an accept: when no descriptor is left, closes the oldest unauthenticated client (the
 * next accept then succeeds instead of being closed by libuv's reserve-descriptor trick) and
 * returns false; true when there was room. For every listener (HTTP too). */
bool conn_make_room(void);
/* Unauthenticated clients now (for tests and stats). */
size_t conn_unauth_count(void);

/* Starts listening on addr ("HOST:PORT" or "unix:PATH"); accepted connections get ops and
 * max_frame. 0, or a negative libuv error (message logged). */
int conn_listen(uv_loop_t *loop, const char *addr, const struct conn_ops *ops, size_t max_frame);

/* A conn over a new uv_pipe_t for a child process's socket (pass &c->h.pipe to uv_spawn with
 * UV_CREATE_PIPE); start reading with conn_start after the spawn. Its frames may hold at most
 * WIRE_CONTAINER_OBJECTS_MAX msgpack objects: a bigger one is cut off (on_close sees c->error).
 * NULL when out of memory. */
struct conn *conn_new_pipe(uv_loop_t *loop, const struct conn_ops *ops, void *owner,
                           size_t max_frame);
/* Starts reading. 0 or a negative libuv error. */
int conn_start(struct conn *c);

/* The conn's output buffer, for appending frames with wire_begin/wire_end; marks the conn for
 * the next flush. */
struct buf *conn_out(struct conn *c);
/* Appends an OP_ERROR reply. */
void conn_error(struct conn *c, uint64_t rid, skiff_code code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Appends an OP_OK reply with no fields. */
void conn_ok(struct conn *c, uint64_t rid);
/* Stops reading and closes the conn once its output has been sent (after an error reply that
 * ends the conversation). */
void conn_close_after_flush(struct conn *c);
/* Closes the conn (idempotent). */
void conn_close(struct conn *c);

/* Every open conn (clients and containers), for a walk: the one after prev (NULL: the first),
 * or NULL after the last. Closing conns during the walk is allowed. */
struct conn *conn_next(struct conn *prev);

/* Shutdown: closes the listeners and every conn. */
void conn_close_all(void);

/* Sends the output of every conn with something to send. */
void conn_flush_all(void);
/* True when some conn has output waiting for conn_flush_all. */
bool conn_pending(void);

#endif
