/*
 * rpc.c - the client connection: connect + HELLO, requests, reply dispatch (see rpc.h).
 *
 * Threads and the reader role. Many threads may use one client at once (a container runs
 * several inputs, each calling other functions through the same client). Each request:
 *
 *   1. under mu: (re)connect if needed, take the next rid, build the frame into c->out, register
 *      a struct waiter (on the caller's stack) and send the frame with one blocking write;
 *   2. wait: if no thread holds the reader role, take it and read the socket (mu released while
 *      blocked in recv). Every complete frame is matched by rid: another thread's reply is copied
 *      to its waiter, which is woken on its own condition variable; the holder's own reply is
 *      left in place in c->in and parsed in c->msg, and the holder returns with the role still
 *      held, so the common case (one thread, one request at a time) copies nothing and
 *      allocates nothing beyond the result. Threads without the role sleep until their reply
 *      is handed over or the role is passed to them;
 *   3. rpc_reply_release gives the role to the next waiting thread.
 *
 * Only the role holder, or a thread holding mu while nobody holds the role, closes the socket
 * (drop_conn): a writer whose send fails while someone is blocked in recv shuts the socket down
 * instead, so the reader wakes up, sees the end of the stream and drops the connection itself.
 * Dropping fails every registered waiter with the same error. A connection found closed while
 * idle (the server restarted) is replaced before the next request is sent.
 *
 * Streams. An asynchronous request (rpc_send) registers a waiter that points at a struct
 * rpc_sink instead of a thread: the reader copies each frame for it into the sink and keeps it
 * registered until the final OK or ERROR. A map keeps sending MAP_INPUTS while its outputs
 * stream back, and both directions can fill up, so while any asynchronous request is open
 * (nasync > 0) nothing is written with a blocking send: frames that do not fit in the socket at
 * once go to the write queue wq, and the reader polls for POLLIN and, while wq holds bytes,
 * POLLOUT, writing as the server reads. A thread that queues bytes while another polls wakes it
 * through the wake eventfd so it adds POLLOUT; while the reader sits in a plain recv (it started
 * before the first stream opened) the queuing thread flushes wq itself, which is safe because
 * somebody is reading. Without streams nothing changes: a request is one blocking send and its
 * reply one blocking recv, with no poll and no extra allocation.
 *
 * The asynchronous API (async.c) builds on this: every request can be sent without waiting and
 * answered into a sink, whose notify eventfd is written when a frame arrives; an event loop
 * watches that and the client's epoll descriptor (epfd: the socket, for input, and for room to
 * write while wq holds bytes) and calls rpc_sink_poll, which does the reader's I/O without ever
 * blocking when no other thread holds the role.
 */
#include "rpc.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/codec.h"
#include "common/mem.h"
#include "common/proto.h"
#include "common/value.h"

/* Bytes asked of the kernel per recv: a burst of pipelined replies arrives in one call. */
#define READ_CHUNK (64 * 1024)
/* Receive buffers up to this size are kept between replies; larger ones (grown for a large
 * result) are freed once empty. */
#define IN_KEEP (1024 * 1024)
/* A connection idle for longer than this (seconds) is checked for a close by the server before
 * a request is sent on it. Back-to-back calls skip the check (a syscall each); a server restart
 * takes far longer than this, so a handle that outlives one still reconnects cleanly. */
#define IDLE_CHECK 0.002
/* Default connect (and HELLO) timeout in seconds (skiff.h: "0: 10 s"). */
#define CONNECT_TIMEOUT_DEFAULT 10.0

/* A request awaiting its reply; lives on the requesting thread's stack, or for an asynchronous
 * request on the heap (owned by c->waiters until its final reply). */
struct waiter {
    struct list_node link; /* in c->waiters until done */
    uint64_t rid;
    struct rpc_sink *sink; /* an asynchronous request's sink, or NULL (a thread waits) */
    pthread_cond_t cond;   /* signalled when done, or when the reader role is passed here */
    bool done;             /* frame or fail is set */
    int fail;              /* SKIFF_OK: the reply is in frame (or in place, for the reader) */
    char *frame;           /* a reply body handed over by the reader (mem_alloc'd) */
    size_t len;
    char why[800]; /* the failure's message: the server address, then the reason */
};

static size_t frame_in_max(const struct skiff_client *c, bool hello)
{
    return hello ? PROTO_HELLO_MAX : c->payload_max + PROTO_FRAME_OVERHEAD;
}

/* Wakes a sink's owner: its condition variable, and its event loop through notify. */
static void sink_signal(struct rpc_sink *s)
{
    pthread_cond_signal(&s->cond);
    uint64_t one = 1;
    if (s->notify >= 0 && write(s->notify, &one, sizeof one) < 0 && errno != EAGAIN)
        return; /* cannot fail with a valid eventfd */
}

/* Fails every waiter with code and the formatted reason, closes the socket and forgets any
 * buffered input. Called with mu held, by the reader-role holder or while nobody holds it. */
__attribute__((format(printf, 3, 4))) static void drop_conn(struct skiff_client *c, int code,
                                                            const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->in.len = 0;
    c->in_off = 0;
    buf_shrink(&c->in);
    c->reading = false;
    c->wq.len = 0;
    buf_shrink(&c->wq);
    while (!list_empty(&c->waiters)) {
        struct waiter *w = container_of(c->waiters.next, struct waiter, link);
        list_remove(&w->link);
        if (w->sink) {
            struct rpc_sink *s = w->sink;
            if (s->fail == SKIFF_OK) {
                s->fail = code;
                snprintf(s->why, sizeof s->why, "%s: %s", c->server, why);
            }
            s->fail_rid = c->next_rid;
            s->live--;
            c->nasync--;
            mem_free(w);
            sink_signal(s);
            continue;
        }
        w->done = true;
        w->fail = code;
        snprintf(w->why, sizeof w->why, "%s: %s", c->server, why);
        pthread_cond_signal(&w->cond);
    }
}

/* Gives the reader role to the oldest thread waiting for a reply, and lets every thread waiting
 * on a sink try for it too. mu held, role just released. */
static void pass_role(struct skiff_client *c)
{
    bool passed = false;
    struct list_node *node, *tmp;
    list_for_each_safe(node, tmp, &c->waiters)
    {
        struct waiter *w = container_of(node, struct waiter, link);
        if (w->sink && w->sink->waiting) {
            pthread_cond_signal(&w->sink->cond);
        } else if (!w->sink && !passed) {
            pthread_cond_signal(&w->cond);
            passed = true;
        }
    }
}

/* Interrupts a reader blocked in poll so it looks at wq again. mu held. */
static void wake_reader(struct skiff_client *c)
{
    uint64_t one = 1;
    if (c->wake >= 0 && write(c->wake, &one, sizeof one) < 0 && errno != EAGAIN)
        return; /* cannot fail with a valid eventfd; the reader's poll still ends on any input */
}

/* Writes what the socket takes of wq now, without blocking. 0, or -1 with the reason in why
 * (the connection is broken). mu held. */
static int flush_some(struct skiff_client *c, const char **why)
{
    while (c->wq.len > 0) {
        ssize_t k = send(c->fd, c->wq.data, c->wq.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (k <= 0) {
            *why = k < 0 ? strerror(errno) : "the connection was closed";
            return -1;
        }
        buf_consume(&c->wq, (size_t)k);
    }
    buf_shrink(&c->wq);
    return 0;
}

/* Flushes wq completely while another thread holds the reader role and sits in a plain recv:
 * it reads, so blocking here on the server cannot deadlock. mu held, released while waiting for
 * the socket to become writable. */
static void flush_beside_reader(struct skiff_client *c)
{
    c->writing = true;
    while (c->fd >= 0 && c->wq.len > 0) {
        const char *why = NULL;
        if (flush_some(c, &why) < 0) {
            shutdown(c->fd, SHUT_RDWR); /* the reader sees the end and drops the connection */
            break;
        }
        if (c->wq.len == 0)
            break;
        struct pollfd p = {c->fd, POLLOUT, 0};
        pthread_mutex_unlock(&c->mu);
        poll(&p, 1, 100); /* a bounded wait: the reader may drop the connection meanwhile */
        pthread_mutex_lock(&c->mu);
    }
    c->writing = false;
}

/* Keeps epfd's interest in room to write in step with wq, so an event loop wakes to flush it.
 * mu held. */
static void watch_sync(struct skiff_client *c)
{
    bool want = c->wq.len > 0;
    if (c->epfd < 0 || c->fd < 0 || want == c->epout)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0u), .data.fd = c->fd};
    if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->epout = want;
}

/* Appends a built frame to wq and gets it moving: written now if the socket takes it, else by
 * the reader (woken if it polls) or by this thread beside a reader in a plain recv. A thread
 * that finds nobody reading leaves the rest for its own next wait, which takes the role. SKIFF_OK
 * or SKIFF_ERR_CONNECTION / SKIFF_ERR_NOMEM with err set. mu held. */
static int queue_frame(struct skiff_client *c, const char *p, size_t n, skiff_error *err)
{
    if (buf_append(&c->wq, p, n) < 0)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL,
                               "out of memory queueing a %zu-byte request", n);
    if (c->writing)
        return SKIFF_OK;
    const char *why = NULL;
    if (flush_some(c, &why) < 0) {
        skiff_error_set(err, SKIFF_ERR_CONNECTION, NULL,
                        "lost the connection to the skiff server at %s while sending: %s",
                        c->server, why);
        if (c->reading)
            shutdown(c->fd, SHUT_RDWR);
        else
            drop_conn(c, SKIFF_ERR_CONNECTION, "sending failed: %s", why);
        return SKIFF_ERR_CONNECTION;
    }
    if (c->wq.len > 0 && c->reading) {
        if (c->bare)
            flush_beside_reader(c);
        else
            wake_reader(c);
    }
    watch_sync(c);
    return SKIFF_OK;
}

/* Writes all n bytes. NULL, or the reason it failed. */
static const char *send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k < 0 ? strerror(errno) : "the connection was closed";
        p += k;
        n -= (size_t)k;
    }
    return NULL;
}

int rpc_reply_error(const struct wire_msg *m, skiff_error *err)
{
    int64_t code = SKIFF_ERR_INTERNAL;
    wire_get_int(m, "code", &code);
    if (code <= 0 || code > 0xffff)
        code = SKIFF_ERR_INTERNAL;
    if (err) {
        wire_get_error(m, err);
        err->code = (skiff_code)code;
    }
    return (int)code;
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads one whole frame from fd into c->in (which starts empty) before deadline. Returns its
 * body length (> 0), or minus a skiff_code with err set. Used only for HELLO, before fd is
 * shared. */
static long read_hello_reply(struct skiff_client *c, int fd, double deadline, skiff_error *err)
{
    for (;;) {
        long n = wire_frame_len(c->in.data, c->in.len, frame_in_max(c, true));
        if (n > 0)
            return n;
        if (n < 0) {
            skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                            "the server at %s does not speak the skiff protocol (its first reply "
                            "announces an impossible frame size)",
                            c->server);
            return -SKIFF_ERR_DESERIALIZATION;
        }
        double left = deadline - mono_now();
        struct pollfd p = {fd, POLLIN, 0};
        int k = left > 0 ? poll(&p, 1, (int)(left * 1000) + 1) : 0;
        if (k < 0 && errno == EINTR)
            continue;
        if (k == 0) {
            skiff_error_set(err, SKIFF_ERR_CONNECTION, NULL,
                            "the server at %s did not answer HELLO within %g s (is it a skiff "
                            "server?)",
                            c->server, c->connect_timeout);
            return -SKIFF_ERR_CONNECTION;
        }
        int rc = buf_reserve(&c->in, READ_CHUNK);
        if (rc == BUF_NOMEM) {
            skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory reading HELLO's reply");
            return -SKIFF_ERR_NOMEM;
        }
        ssize_t got =
            k < 0 || rc < 0 ? -1 : recv(fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            skiff_error_set(err, SKIFF_ERR_CONNECTION, NULL,
                            "the server at %s closed the connection during HELLO%s%s", c->server,
                            got < 0 ? ": " : "", got < 0 ? strerror(errno) : "");
            return -SKIFF_ERR_CONNECTION;
        }
        c->in.len += (size_t)got;
    }
}

/* Sends HELLO on fd and reads the answer before deadline. SKIFF_OK with the server's payload
 * limit in *payload_max, or the failure (the server's own for a refused token). mu held. */
static int hello(struct skiff_client *c, int fd, double deadline, size_t *payload_max,
                 skiff_error *err)
{
    c->in.len = 0;
    c->in_off = 0;
    c->out.len = 0;
    c->out.max = PROTO_HELLO_MAX;
    uint64_t rid = ++c->next_rid;
    struct wire_writer w;
    wire_begin(&w, &c->out, OP_HELLO, rid, 3);
    wire_str(&w, "token_id", c->token_id);
    wire_str(&w, "token_secret", c->token_secret);
    wire_str(&w, "client", "libskiff " SKIFF_VERSION);
    int rc = wire_end(&w);
    if (rc != SKIFF_OK)
        return skiff_error_set(err, rc, NULL, "cannot build HELLO for %s", c->server);
    const char *fail = send_all(fd, c->out.data, c->out.len);
    c->out.len = 0;
    if (fail)
        return skiff_error_set(err, SKIFF_ERR_CONNECTION, NULL,
                               "lost the connection to the skiff server at %s during HELLO: %s",
                               c->server, fail);
    long n = read_hello_reply(c, fd, deadline, err);
    if (n < 0)
        return (int)-n;
    if (wire_msg_parse(&c->msg, c->in.data + WIRE_HEADER, (size_t)n) < 0 || c->msg.rid != rid ||
        (c->msg.op != OP_OK && c->msg.op != OP_ERROR))
        return skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                               "the server at %s does not speak the skiff protocol (malformed "
                               "reply to HELLO)",
                               c->server);
    if (c->msg.op == OP_ERROR)
        return rpc_reply_error(&c->msg, err);
    int64_t pm = 0;
    if (!wire_get_int(&c->msg, "payload_max", &pm) || pm <= 0 ||
        (uint64_t)pm > PROTO_CODE_MAX * 16ull)
        pm = PROTO_PAYLOAD_MAX; /* absent or absurd: assume the documented default */
    *payload_max = (size_t)pm;
    buf_consume(&c->in, WIRE_HEADER + (size_t)n);
    return SKIFF_OK;
}

/* Opens the connection and authenticates. mu held, c->fd < 0, no waiters, nobody reading. */
static int open_conn(struct skiff_client *c, skiff_error *err)
{
    if (!c->token_id[0] || !c->token_secret[0])
        return skiff_error_set(
            err, SKIFF_ERR_AUTH, NULL,
            "no token to present to the skiff server at %s: set SKIFF_TOKEN_ID and "
            "SKIFF_TOKEN_SECRET, or token_id and token_secret in ~/.skiff.toml (skiffd writes "
            "that file for the local user on its first start; `skiff token new` makes more)",
            c->server);
    char why[256];
    double deadline = mono_now() + c->connect_timeout;
    int fd = addr_connect(&c->addr, c->connect_timeout, why, sizeof why);
    if (fd < 0)
        return skiff_error_set(err, SKIFF_ERR_CONNECTION, NULL,
                               "cannot connect to the skiff server at %s: %s", c->server, why);
    size_t payload_max = 0;
    int rc = hello(c, fd, deadline, &payload_max, err);
    if (rc != SKIFF_OK) {
        close(fd);
        c->in.len = 0;
        return rc;
    }
    c->fd = fd;
    c->epout = false;
    if (c->epfd >= 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev); /* cannot fail: a new fd, a valid epfd */
    }
    c->last_recv = mono_now();
    c->payload_max = payload_max;
    c->in.max = frame_in_max(c, false) + WIRE_HEADER + READ_CHUNK;
    return SKIFF_OK;
}

/* Makes sure there is a live connection. mu held. */
static int ensure_conn(struct skiff_client *c, skiff_error *err)
{
    if (c->fd >= 0 && !c->reading && list_empty(&c->waiters) &&
        mono_now() - c->last_recv > IDLE_CHECK) {
        /* Idle: if the server went away since the last reply (a restart), notice it now rather
         * than fail the request we are about to send. */
        char b;
        ssize_t k = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            drop_conn(c, SKIFF_ERR_CONNECTION, "the server closed the connection");
    }
    return c->fd >= 0 ? SKIFF_OK : open_conn(c, err);
}

/* Copies a frame for an asynchronous request into its sink; the final one (not STREAM) also
 * retires the request. mu held. */
static void to_sink(struct skiff_client *c, struct waiter *w, int op, const char *body, size_t n)
{
    struct rpc_sink *s = w->sink;
    struct rpc_frame *f = mem_alloc(sizeof *f + n);
    if (f) {
        f->next = NULL;
        f->len = n;
        memcpy(f->body, body, n);
        if (s->tail)
            s->tail->next = f;
        else
            s->head = f;
        s->tail = f;
    } else {
        if (s->fail == SKIFF_OK) {
            s->fail = SKIFF_ERR_NOMEM;
            snprintf(s->why, sizeof s->why, "out of memory receiving a %zu-byte frame", n);
        }
        s->fail_rid = c->next_rid; /* reported against every request sent so far */
    }
    if (op != OP_STREAM || !f) {
        list_remove(&w->link);
        s->live--;
        c->nasync--;
        mem_free(w);
    }
    sink_signal(s);
}

/* Copies a reply for another thread's request to its waiter and wakes it; a reply nobody waits
 * for (its requester gave up with the previous connection) is dropped. mu held. */
static void hand_over(struct skiff_client *c, uint64_t rid, int op, const char *body, size_t n)
{
    struct list_node *node, *tmp;
    list_for_each_safe(node, tmp, &c->waiters)
    {
        struct waiter *w = container_of(node, struct waiter, link);
        if (w->rid != rid)
            continue;
        if (w->sink) {
            to_sink(c, w, op, body, n);
            return;
        }
        list_remove(&w->link);
        w->done = true;
        w->frame = mem_alloc(n ? n : 1);
        if (w->frame) {
            memcpy(w->frame, body, n);
            w->len = n;
        } else {
            w->fail = SKIFF_ERR_NOMEM;
            snprintf(w->why, sizeof w->why, "out of memory receiving a %zu-byte reply", n);
        }
        pthread_cond_signal(&w->cond);
        return;
    }
}

/* Dispatches the complete frames buffered in c->in: other requests' frames are handed over;
 * self's reply (self may be NULL) stops the scan, left in place and parsed in c->msg (returns 1).
 * Returns 0 when more bytes are needed, -1 after dropping the connection (a frame over the
 * limit, or not a protocol message). Reader role and mu held. */
static int dispatch(struct skiff_client *c, struct waiter *self)
{
    size_t max = frame_in_max(c, false);
    while (c->in.len > c->in_off) {
        const char *p = c->in.data + c->in_off;
        long n = wire_frame_len(p, c->in.len - c->in_off, max);
        if (n < 0) {
            drop_conn(c, SKIFF_ERR_DESERIALIZATION,
                      "the server sent a frame over the %zu-byte limit; connection dropped", max);
            return -1;
        }
        if (n == 0)
            break;
        if (wire_msg_parse(&c->msg, p + WIRE_HEADER, (size_t)n) < 0) {
            drop_conn(c, SKIFF_ERR_DESERIALIZATION,
                      "the server sent a malformed frame (not a msgpack map with an op); "
                      "connection dropped");
            return -1;
        }
        if (self && c->msg.rid == self->rid) {
            list_remove(&self->link);
            c->in_cur = WIRE_HEADER + (size_t)n;
            return 1;
        }
        hand_over(c, c->msg.rid, c->msg.op, p + WIRE_HEADER, (size_t)n);
        c->in_off += WIRE_HEADER + (size_t)n;
    }
    if (c->in_off) {
        buf_consume(&c->in, c->in_off);
        c->in_off = 0;
    }
    if (c->in.len == 0 && c->in.cap > IN_KEEP)
        buf_deinit(&c->in); /* a big reply is gone: do not pin its memory */
    return 0;
}

/* Makes room in c->in for the rest of a large frame at once, or at least READ_CHUNK. 0, or -1
 * after dropping the connection. */
static int reserve_in(struct skiff_client *c)
{
    size_t want = READ_CHUNK;
    if (c->in.len >= WIRE_HEADER) {
        const unsigned char *h = (const unsigned char *)c->in.data;
        size_t total =
            WIRE_HEADER + ((size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3]);
        if (total > c->in.len && total - c->in.len > want)
            want = total - c->in.len;
    }
    if (buf_reserve(&c->in, want) < 0) {
        drop_conn(c, SKIFF_ERR_NOMEM, "out of memory receiving a reply; connection dropped");
        return -1;
    }
    return 0;
}

/* Accounts for a recv's result: 0 (bytes added, or nothing to read yet), or -1 after dropping
 * the connection (closed by the server, or an error e). */
static int received(struct skiff_client *c, ssize_t got, int e)
{
    if (got > 0) {
        c->in.len += (size_t)got;
        c->last_recv = mono_now();
        return 0;
    }
    if (got < 0 && (e == EAGAIN || e == EWOULDBLOCK || e == EINTR))
        return 0;
    if (got == 0)
        drop_conn(c, SKIFF_ERR_CONNECTION, "the server closed the connection");
    else
        drop_conn(c, SKIFF_ERR_CONNECTION, "lost the connection: %s", strerror(e));
    return -1;
}

/* One round of I/O for the reader-role holder: without streams, one blocking recv (the fast
 * path); with streams, or a deadline (timeout_ms >= 0), a poll for input, for room to write wq
 * and for the wake eventfd, then whatever is ready. Returns 0 (maybe nothing happened, when the
 * time ran out or the reader was woken), or -1 after dropping the connection. mu held, released
 * while blocked. */
static int io_step(struct skiff_client *c, int timeout_ms)
{
    if (reserve_in(c) < 0)
        return -1;
    int fd = c->fd;
    char *dst = c->in.data + c->in.len;
    size_t room = c->in.cap - c->in.len;
    ssize_t got;
    if (c->nasync == 0 && c->wq.len == 0 && timeout_ms < 0) {
        c->bare = true;
        pthread_mutex_unlock(&c->mu);
        do
            got = recv(fd, dst, room, 0);
        while (got < 0 && errno == EINTR);
        int e = errno;
        pthread_mutex_lock(&c->mu);
        c->bare = false;
        return received(c, got, e);
    }
    struct pollfd p[2] = {{fd, POLLIN, 0}, {c->wake, POLLIN, 0}};
    if (c->wq.len > 0 && !c->writing)
        p[0].events |= POLLOUT;
    c->polling = true;
    pthread_mutex_unlock(&c->mu);
    int k = poll(p, c->wake >= 0 ? 2 : 1, timeout_ms);
    pthread_mutex_lock(&c->mu);
    c->polling = false;
    if (k <= 0)
        return 0; /* time is up, or a signal: the caller looks again */
    if (p[1].revents & POLLIN) {
        uint64_t v;
        if (read(c->wake, &v, sizeof v) < 0 && errno != EAGAIN)
            return 0;
    }
    if (p[0].revents & POLLOUT && !c->writing) {
        const char *why = NULL;
        if (flush_some(c, &why) < 0) {
            drop_conn(c, SKIFF_ERR_CONNECTION, "sending failed: %s", why);
            return -1;
        }
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        got = recv(fd, dst, room, MSG_DONTWAIT);
        return received(c, got, errno);
    }
    return 0;
}

/* The reader role: reads and dispatches frames until self's reply is found (returns true, with
 * it parsed in c->msg and the role still held) or the connection drops (returns false, self
 * failed and the role released). mu held on entry and exit. */
static bool read_until(struct skiff_client *c, struct waiter *self)
{
    for (;;) {
        int r = dispatch(c, self);
        if (r != 0)
            return r > 0;
        if (io_step(c, -1) < 0)
            return false;
    }
}

/* Waits until self is answered. mu held. Returns SKIFF_OK with the reply in *r, or the failure
 * with err set. */
static int wait_reply(struct skiff_client *c, struct waiter *self, struct rpc_reply *r,
                      skiff_error *err)
{
    while (!self->done) {
        if (!c->reading) {
            c->reading = true;
            if (read_until(c, self)) {
                r->msg = &c->msg;
                r->in_place = true;
                r->frame = NULL;
                return SKIFF_OK;
            }
            continue;
        }
        pthread_cond_wait(&self->cond, &c->mu);
    }
    if (self->fail != SKIFF_OK) {
        if (self->fail == SKIFF_ERR_CONNECTION)
            return skiff_error_set(err, SKIFF_ERR_CONNECTION, NULL,
                                   "lost the connection to the skiff server at %s", self->why);
        return skiff_error_set(err, self->fail, NULL, "%s", self->why);
    }
    r->in_place = false;
    r->frame = self->frame;
    if (wire_msg_init(&r->own) < 0) {
        mem_free(r->frame);
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory parsing a reply");
    }
    if (wire_msg_parse(&r->own, r->frame, self->len) < 0) {
        /* The reader parsed this very frame; only running out of memory can fail here. */
        wire_msg_deinit(&r->own);
        mem_free(r->frame);
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory parsing a reply");
    }
    r->msg = &r->own;
    return SKIFF_OK;
}

void rpc_reply_release(struct skiff_client *c, struct rpc_reply *r)
{
    if (r->in_place) {
        pthread_mutex_lock(&c->mu);
        c->in_off += c->in_cur;
        c->in_cur = 0;
        c->reading = false;
        pass_role(c);
        pthread_mutex_unlock(&c->mu);
    } else {
        wire_msg_deinit(&r->own);
        mem_free(r->frame);
    }
    r->msg = NULL;
    r->frame = NULL;
    r->in_place = false;
}

/* Sends the built frame and waits. mu held. */
static int send_and_wait(struct skiff_client *c, uint64_t rid, struct rpc_reply *r,
                         skiff_error *err)
{
    struct waiter w;
    memset(&w, 0, sizeof w);
    w.rid = rid;
    pthread_cond_init(&w.cond, NULL);
    list_push(&c->waiters, &w.link);
    int rc = SKIFF_OK;
    const char *fail = NULL;
    if (c->nasync == 0 && c->wq.len == 0)
        fail = send_all(c->fd, c->out.data, c->out.len); /* the fast path: no stream open */
    else
        rc = queue_frame(c, c->out.data, c->out.len, err);
    c->out.len = 0;
    buf_shrink(&c->out);
    if (rc != SKIFF_OK) {
        list_remove(&w.link); /* err is set; the connection is dropped or dropping */
    } else if (fail) {
        list_remove(&w.link);
        rc = skiff_error_set(err, SKIFF_ERR_CONNECTION, NULL,
                             "lost the connection to the skiff server at %s while sending: %s",
                             c->server, fail);
        if (c->reading)
            shutdown(c->fd, SHUT_RDWR); /* the reader sees EOF and drops the connection */
        else
            drop_conn(c, SKIFF_ERR_CONNECTION, "sending failed: %s", fail);
    } else {
        rc = wait_reply(c, &w, r, err);
    }
    pthread_cond_destroy(&w.cond);
    return rc;
}

int rpc_request(struct skiff_client *c, rpc_build_fn build, void *arg, size_t frame_max,
                struct rpc_reply *r, skiff_error *err)
{
    /* The reply is received straight into *r: a handed-over reply's msg points at r->own. */
    pthread_mutex_lock(&c->mu);
    int rc = ensure_conn(c, err);
    if (rc == SKIFF_OK) {
        uint64_t rid = ++c->next_rid;
        c->out.len = 0;
        c->out.max = frame_max ? frame_max : c->payload_max + PROTO_FRAME_OVERHEAD;
        rc = build(c, &c->out, rid, arg, err);
        if (rc == SKIFF_OK)
            rc = send_and_wait(c, rid, r, err);
        else
            c->out.len = 0;
    }
    pthread_mutex_unlock(&c->mu);
    if (rc != SKIFF_OK)
        return rc;
    if (r->msg->op == OP_OK)
        return SKIFF_OK;
    if (r->msg->op == OP_ERROR)
        rc = rpc_reply_error(r->msg, err);
    else
        rc = skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                             "the server answered with an unexpected operation %d", r->msg->op);
    rpc_reply_release(c, r);
    return rc;
}

/* --- asynchronous requests ------------------------------------------------------------------ */

void rpc_sink_init(struct rpc_sink *s)
{
    memset(s, 0, sizeof *s);
    pthread_cond_init(&s->cond, NULL);
    s->notify = -1;
}

void rpc_frame_free(struct rpc_frame *f)
{
    mem_free(f);
}

void rpc_sink_deinit(struct skiff_client *c, struct rpc_sink *s)
{
    pthread_mutex_lock(&c->mu);
    struct list_node *node, *tmp;
    list_for_each_safe(node, tmp, &c->waiters)
    {
        struct waiter *w = container_of(node, struct waiter, link);
        if (w->sink == s) {
            list_remove(&w->link);
            c->nasync--;
            mem_free(w);
        }
    }
    pthread_mutex_unlock(&c->mu);
    while (s->head) {
        struct rpc_frame *f = s->head;
        s->head = f->next;
        mem_free(f);
    }
    s->tail = NULL;
    s->live = 0;
    pthread_cond_destroy(&s->cond);
}

int rpc_send(struct skiff_client *c, rpc_build_fn build, void *arg, size_t frame_max,
             struct rpc_sink *s, uint64_t *rid, skiff_error *err)
{
    struct waiter *w = mem_calloc(1, sizeof *w);
    if (!w)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    w->sink = s;
    list_init(&w->link);
    pthread_mutex_lock(&c->mu);
    if (c->wake < 0) {
        c->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (c->wake < 0) {
            pthread_mutex_unlock(&c->mu);
            mem_free(w);
            return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "cannot make an eventfd: %s",
                                   strerror(errno));
        }
    }
    int rc = ensure_conn(c, err);
    if (rc == SKIFF_OK) {
        w->rid = ++c->next_rid;
        if (rid)
            *rid = w->rid;
        c->out.len = 0;
        c->out.max = frame_max ? frame_max : c->payload_max + PROTO_FRAME_OVERHEAD;
        rc = build(c, &c->out, w->rid, arg, err);
    }
    if (rc == SKIFF_OK) {
        /* Registered first: the reply may be read by another thread before the send returns. */
        list_push(&c->waiters, &w->link);
        c->nasync++;
        s->live++;
        rc = queue_frame(c, c->out.data, c->out.len, err);
        if (rc != SKIFF_OK && c->fd >= 0) { /* shut down for the reader: w is still ours */
            list_remove(&w->link);
            c->nasync--;
            s->live--;
        } else if (rc != SKIFF_OK) {
            w = NULL; /* drop_conn failed every waiter and freed w: do not look at it */
        }
    }
    c->out.len = 0;
    buf_shrink(&c->out);
    pthread_mutex_unlock(&c->mu);
    if (rc != SKIFF_OK)
        mem_free(w);
    return rc;
}

/* The reader role for a sink's owner: dispatches and does I/O until s has a frame or has failed,
 * or deadline (monotonic seconds, < 0: none) passes. Returns false after dropping the connection
 * (the role is then released), true with the role still held. mu held. */
static bool pump_sink(struct skiff_client *c, struct rpc_sink *s, double deadline)
{
    for (bool polled = false;; polled = true) {
        if (dispatch(c, NULL) < 0)
            return false;
        if (s->head || s->fail != SKIFF_OK || s->live == 0)
            return true;
        int ms = 1000; /* no deadline: wake now and then all the same, to look at the sink */
        if (deadline >= 0) {
            double left = deadline - mono_now();
            if (left <= 0 && polled)
                return true;
            ms = left <= 0 ? 0 : (int)(left * 1000) + 1;
        }
        if (io_step(c, ms) < 0)
            return false;
    }
}

int rpc_sink_next(struct skiff_client *c, struct rpc_sink *s, int timeout_ms,
                  struct rpc_frame **out, skiff_error *err)
{
    double deadline = timeout_ms < 0 ? -1 : mono_now() + timeout_ms / 1000.0;
    bool looked = false; /* a timeout of 0 still reads what has arrived */
    pthread_mutex_lock(&c->mu);
    for (;;) {
        if (s->head) {
            struct rpc_frame *f = s->head;
            s->head = f->next;
            if (!s->head)
                s->tail = NULL;
            pthread_mutex_unlock(&c->mu);
            f->next = NULL;
            *out = f;
            return SKIFF_OK;
        }
        if (s->fail != SKIFF_OK) {
            int code = s->fail;
            pthread_mutex_unlock(&c->mu);
            if (code == SKIFF_ERR_CONNECTION)
                return skiff_error_set(err, code, NULL,
                                       "lost the connection to the skiff server at %s", s->why);
            return skiff_error_set(err, code, NULL, "%s", s->why);
        }
        if (s->live == 0) {
            pthread_mutex_unlock(&c->mu);
            return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                                   "no request is waiting for an answer on this stream");
        }
        if (looked && deadline >= 0 && mono_now() >= deadline) {
            pthread_mutex_unlock(&c->mu);
            return skiff_error_set(err, SKIFF_ERR_TIMEOUT, NULL, "nothing arrived within %d ms",
                                   timeout_ms);
        }
        if (!c->reading && c->fd < 0) { /* cannot happen while s has live requests: a
                                         * dropped connection fails them; kept as a guard */
            pthread_mutex_unlock(&c->mu);
            return skiff_error_set(err, SKIFF_ERR_CONNECTION, NULL,
                                   "lost the connection to the skiff server at %s", c->server);
        }
        if (!c->reading) {
            c->reading = true;
            if (pump_sink(c, s, deadline)) {
                c->reading = false;
                pass_role(c);
            }
            looked = true;
            continue;
        }
        if (c->wq.len > 0 && !c->writing) {
            if (c->bare)
                flush_beside_reader(c);
            else
                wake_reader(c);
        }
        s->waiting = true;
        if (deadline >= 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            double left = deadline - mono_now();
            if (left < 0)
                left = 0;
            ts.tv_sec += (time_t)left;
            ts.tv_nsec += (long)((left - (double)(time_t)left) * 1e9);
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s->cond, &c->mu, &ts);
        } else {
            pthread_cond_wait(&s->cond, &c->mu);
        }
        s->waiting = false;
        looked = true;
    }
}

/* The reader role without blocking: dispatches, then reads and writes what the connection allows
 * now, until a round changes nothing. Returns false after dropping the connection (the role is
 * then released), true with the role still held. mu held. */
static bool pump_nowait(struct skiff_client *c)
{
    for (;;) {
        if (dispatch(c, NULL) < 0)
            return false;
        size_t in = c->in.len, wq = c->wq.len;
        if (io_step(c, 0) < 0)
            return false;
        if (c->in.len == in && c->wq.len == wq)
            return true;
    }
}

int rpc_sink_poll(struct skiff_client *c, struct rpc_sink *s, struct rpc_frame **frames,
                  uint64_t *lost, skiff_error *err)
{
    pthread_mutex_lock(&c->mu);
    if (!c->reading && c->fd >= 0) {
        c->reading = true;
        if (pump_nowait(c)) {
            c->reading = false;
            pass_role(c);
        }
    }
    watch_sync(c);
    if (s->notify >= 0) { /* drained with the frames taken, under mu: no wakeup is lost */
        uint64_t v;
        if (read(s->notify, &v, sizeof v) < 0 && errno != EAGAIN)
            v = 0; /* nothing was signalled */
    }
    *frames = s->head;
    s->head = s->tail = NULL;
    int code = s->fail;
    *lost = s->fail_rid;
    if (code != SKIFF_OK) {
        if (code == SKIFF_ERR_CONNECTION)
            skiff_error_set(err, code, NULL, "lost the connection to the skiff server at %s",
                            s->why);
        else
            skiff_error_set(err, code, NULL, "%s", s->why);
        s->fail = SKIFF_OK;
        s->why[0] = '\0';
    }
    pthread_mutex_unlock(&c->mu);
    return code;
}

int rpc_epoll_fd(struct skiff_client *c, int *fd, skiff_error *err)
{
    pthread_mutex_lock(&c->mu);
    if (c->epfd < 0) {
        c->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (c->epfd >= 0 && c->fd >= 0) {
            struct epoll_event ev = {.events = EPOLLIN, .data.fd = c->fd};
            c->epout = false;
            epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->fd, &ev);
            watch_sync(c);
        }
    }
    int got = c->epfd;
    pthread_mutex_unlock(&c->mu);
    if (got < 0)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "cannot make an epoll descriptor: %s",
                               strerror(errno));
    *fd = got;
    return SKIFF_OK;
}

size_t rpc_queued_bytes(struct skiff_client *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = c->wq.len;
    pthread_mutex_unlock(&c->mu);
    return n;
}

struct simple {
    int op;
    const struct rpc_field *fields;
    size_t n;
};

static int build_simple(struct skiff_client *c, struct buf *out, uint64_t rid, void *arg,
                        skiff_error *err)
{
    (void)c;
    const struct simple *s = arg;
    struct wire_writer w;
    wire_begin(&w, out, s->op, rid, (uint32_t)s->n);
    for (size_t i = 0; i < s->n; i++) {
        const struct rpc_field *f = &s->fields[i];
        switch (f->kind) {
        case RPC_STR:
            wire_str(&w, f->key, f->str);
            break;
        case RPC_BIN:
            wire_bin(&w, f->key, f->bin, f->len);
            break;
        case RPC_BOOL:
            wire_bool(&w, f->key, f->b);
            break;
        case RPC_INT:
            wire_int(&w, f->key, f->i);
            break;
        case RPC_DOUBLE:
            wire_double(&w, f->key, f->d);
            break;
        case RPC_VALUE: {
            wire_key(&w, f->key);
            int rc = codec_pack_value(&w.pk, f->v);
            if (w.rc == SKIFF_OK)
                w.rc = rc;
            break;
        }
        }
    }
    int rc = wire_end(&w);
    if (rc == SKIFF_ERR_REQUEST_SIZE)
        return skiff_error_set(
            err, rc, NULL, "the request is over the server's frame limit of %zu bytes", out->max);
    if (rc == SKIFF_ERR_SERIALIZATION)
        return skiff_error_set(err, rc, NULL, "a value in the request nests deeper than %d levels",
                               CODEC_MAX_DEPTH);
    if (rc != SKIFF_OK)
        return skiff_error_set(err, rc, NULL, "cannot build the request");
    return SKIFF_OK;
}

int rpc_simple(struct skiff_client *c, int op, const struct rpc_field *fields, size_t n,
               size_t frame_max, struct rpc_reply *r, skiff_error *err)
{
    struct simple s = {op, fields, n};
    return rpc_request(c, build_simple, &s, frame_max, r, err);
}

int rpc_simple_send(struct skiff_client *c, int op, const struct rpc_field *fields, size_t n,
                    struct rpc_sink *s, uint64_t *rid, skiff_error *err)
{
    struct simple q = {op, fields, n};
    return rpc_send(c, build_simple, &q, 0, s, rid, err);
}

int rpc_reply_value(const struct wire_msg *m, skiff_value **out, skiff_error *err)
{
    skiff_value *map = skiff_value_map();
    if (!map)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    const msgpack_object_map *root = &m->root.via.map;
    for (uint32_t i = 0; i < root->size; i++) {
        const msgpack_object *k = &root->ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR)
            continue;
        const char *key = k->via.str.ptr;
        size_t kn = k->via.str.size;
        if ((kn == 2 && !memcmp(key, "op", 2)) || (kn == 3 && !memcmp(key, "rid", 3)))
            continue;
        skiff_value *v = NULL;
        int rc = codec_from_object(&root->ptr[i].val, &v, err);
        if (rc == SKIFF_OK) {
            rc = value_map_setn(map, key, kn, v);
            if (rc != SKIFF_OK)
                skiff_error_set(err, rc, NULL, "a reply field name is not valid UTF-8");
        }
        if (rc != SKIFF_OK) {
            skiff_value_free(map);
            return rc;
        }
    }
    *out = map;
    return SKIFF_OK;
}

size_t rpc_payload_max(struct skiff_client *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = c->payload_max;
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* True when options or the environment give all three settings, so ~/.skiff.toml is not needed
 * (and a malformed one does not matter). */
static bool fully_given(const skiff_client_options *o)
{
    const char *s = o && o->server ? o->server : getenv("SKIFF_SERVER");
    const char *i = o && o->token_id ? o->token_id : getenv("SKIFF_TOKEN_ID");
    const char *t = o && o->token_secret ? o->token_secret : getenv("SKIFF_TOKEN_SECRET");
    return s && *s && i && *i && t && *t;
}

int skiff_client_connect(const skiff_client_options *opts, skiff_client **out, skiff_error *err)
{
    if (!out)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "skiff_client_connect: out is NULL");
    double timeout = opts ? opts->connect_timeout : 0;
    if (!(timeout >= 0) || isinf(timeout))
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "connect_timeout must be a finite number of seconds >= 0");
    struct config cfg;
    int bad_line = 0;
    if (config_resolve(opts ? opts->server : NULL, opts ? opts->token_id : NULL,
                       opts ? opts->token_secret : NULL, &cfg, &bad_line) == -2 &&
        !fully_given(opts)) {
        char path[4096] = "~/.skiff.toml";
        config_path(path, sizeof path);
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "%s, line %d: expected key = \"value\" (keys: server, token_id, "
                               "token_secret)",
                               path, bad_line);
    }
    struct addr a;
    char why[256];
    if (addr_parse(cfg.server, &a, why, sizeof why) < 0)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "invalid skiff server address: %s",
                               why);
    skiff_client *c = mem_calloc(1, sizeof *c);
    if (!c)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    if (wire_msg_init(&c->msg) < 0) {
        mem_free(c);
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    }
    pthread_mutex_init(&c->mu, NULL);
    c->addr = a;
    memcpy(c->server, cfg.server, sizeof c->server);
    memcpy(c->token_id, cfg.token_id, sizeof c->token_id);
    memcpy(c->token_secret, cfg.token_secret, sizeof c->token_secret);
    c->connect_timeout = timeout > 0 ? timeout : CONNECT_TIMEOUT_DEFAULT;
    c->fd = -1;
    c->wake = -1;
    c->epfd = -1;
    list_init(&c->loops);
    c->payload_max = PROTO_PAYLOAD_MAX;
    list_init(&c->waiters);
    buf_init(&c->out, PROTO_HELLO_MAX);
    buf_init(&c->args, PROTO_PAYLOAD_MAX);
    buf_init(&c->wq, 0);
    buf_init(&c->in, PROTO_HELLO_MAX + WIRE_HEADER + READ_CHUNK);
    pthread_mutex_lock(&c->mu);
    int rc = open_conn(c, err);
    pthread_mutex_unlock(&c->mu);
    if (rc != SKIFF_OK) {
        skiff_client_close(c);
        return rc;
    }
    *out = c;
    return SKIFF_OK;
}

void skiff_client_close(skiff_client *c)
{
    if (!c)
        return;
    async_client_close(c);
    if (c->fd >= 0)
        close(c->fd);
    if (c->wake >= 0)
        close(c->wake);
    if (c->epfd >= 0)
        close(c->epfd);
    buf_deinit(&c->out);
    buf_deinit(&c->args);
    buf_deinit(&c->wq);
    buf_deinit(&c->in);
    wire_msg_deinit(&c->msg);
    pthread_mutex_destroy(&c->mu);
    explicit_bzero(c->token_secret, sizeof c->token_secret);
    mem_free(c);
}
