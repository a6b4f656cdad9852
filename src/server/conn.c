/*
 * conn.c - framed connections (see conn.h).
 */
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/proto.h"
#include "apps.h"
#include "stream.h"

/* Bytes asked of the kernel per read: large enough that a burst of pipelined frames arrives in
 * one callback. */
#define READ_CHUNK (64 * 1024)
/* Bytes asked per read before HELLO is accepted. */
#define READ_CHUNK_UNAUTH (4 * 1024)

static struct list_node dirty = {&dirty, &dirty};
static struct list_node all_conns = {&all_conns, &all_conns};
static struct list_node listeners = {&listeners, &listeners};
/* Unauthenticated clients, oldest first (struct conn.unauth_link). */
static struct list_node unauth = {&unauth, &unauth};
static size_t n_unauth;
static struct conn_limits limits = {CONN_HELLO_TIMEOUT, CONN_IDLE_TIMEOUT, CONN_MAX_UNAUTH,
                                    CONN_OUT_HIGH};
static uv_loop_t *limits_loop;
static uv_timer_t sweep_timer; /* enforces the HELLO deadline and the idle timeout */
static bool sweeping;
static uint64_t emfile_logged; /* loop time of the last "out of descriptors" warning */

struct listener {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    const struct conn_ops *ops;
    size_t max_frame;
    bool is_tcp;
    struct list_node link;
};

static struct conn *conn_alloc(const struct conn_ops *ops, void *owner, size_t max_frame)
{
    struct conn *c = mem_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (wire_msg_init(&c->msg) < 0) {
        mem_free(c);
        return NULL;
    }
    c->ops = ops;
    c->owner = owner;
    c->max_frame = max_frame;
    buf_init(&c->in, max_frame + WIRE_HEADER + READ_CHUNK);
    /* Output may queue a few large replies for a slow reader; past this the reader is dropped. */
    buf_init(&c->out, 4 * (max_frame + WIRE_HEADER));
    buf_init(&c->wbuf, 0);
    list_init(&c->dirty_link);
    list_push(&all_conns, &c->all_link);
    list_init(&c->calls);
    list_init(&c->waiters);
    list_init(&c->streams);
    list_init(&c->acks);
    list_init(&c->unauth_link);
    c->h.handle.data = c;
    return c;
}

static void on_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    list_remove(&c->all_link);
    buf_deinit(&c->in);
    buf_deinit(&c->out);
    buf_deinit(&c->wbuf);
    wire_msg_deinit(&c->msg);
    mem_free(c);
}

void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (list_linked(&c->unauth_link)) {
        list_remove(&c->unauth_link);
        n_unauth--;
    }
    if (c->dirty) {
        list_remove(&c->dirty_link);
        c->dirty = false;
    }
    stream_conn_closed(c); /* first: their owners detach before the calls are dropped */
    if (c->ops->on_close)
        c->ops->on_close(c);
    uv_close(&c->h.handle, on_closed);
}

struct buf *conn_out(struct conn *c)
{
    if (!c->dirty && !c->closing) {
        list_push(&dirty, &c->dirty_link);
        c->dirty = true;
    }
    return &c->out;
}

void conn_error(struct conn *c, uint64_t rid, skiff_code code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (wire_error_msg(conn_out(c), rid, code, NULL, msg) != SKIFF_OK) {
        log_warn("%s: output over its limit, closing", c->peer);
        conn_close(c);
    }
}

void conn_ok(struct conn *c, uint64_t rid)
{
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, rid, 0);
    if (wire_end(&w) != SKIFF_OK)
        conn_close(c);
}

static void flush(struct conn *c);
static void unhold(struct conn *c);

/* Bytes of c's output not yet taken by the kernel. */
static size_t unsent(const struct conn *c)
{
    return c->out.len + (c->writing ? c->wbuf.len : 0);
}

static void on_written(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    c->writing = false;
    c->wbuf.len = 0;
    buf_shrink(&c->wbuf);
    if (c->closing)
        return;
    if (status < 0) {
        log_debug("%s: write failed: %s", c->peer, uv_strerror(status));
        conn_close(c);
        return;
    }
    if (c->out.len)
        flush(c);
    else if (c->linger)
        conn_close(c);
    if (!c->closing && c->held)
        unhold(c);
}

static void flush(struct conn *c)
{
    if (c->writing || c->closing)
        return;
    if (!c->out.len) {
        if (c->linger)
            conn_close(c);
        return;
    }
    uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
    int n = uv_try_write(&c->h.stream, &b, 1);
    if (n == UV_EAGAIN || n == UV_ENOSYS)
        n = 0;
    if (n < 0) {
        log_debug("%s: write failed: %s", c->peer, uv_strerror(n));
        conn_close(c);
        return;
    }
    buf_consume(&c->out, (size_t)n);
    if (!c->out.len) {
        buf_shrink(&c->out);
        if (c->linger)
            conn_close(c);
        else if (c->held)
            unhold(c);
        return;
    }
    /* The rest goes out with uv_write from wbuf; new replies keep collecting in out. */
    struct buf t = c->wbuf;
    c->wbuf = c->out;
    c->out = t;
    c->out.max = c->wbuf.max;
    c->wbuf.max = 0;
    c->out.len = 0;
    b = uv_buf_init(c->wbuf.data, (unsigned)c->wbuf.len);
    c->wreq.data = c;
    c->writing = true;
    int rc = uv_write(&c->wreq, &c->h.stream, &b, 1, on_written);
    if (rc < 0) {
        c->writing = false;
        conn_close(c);
    }
}

void conn_close_after_flush(struct conn *c)
{
    if (c->closing || c->linger)
        return;
    c->linger = true;
    uv_read_stop(&c->h.stream);
    conn_out(c); /* make sure a flush happens */
}

static void listener_closed(uv_handle_t *h)
{
    mem_free(h->data);
}

void conn_close_all(void)
{
    if (sweeping) {
        sweeping = false;
        uv_close((uv_handle_t *)&sweep_timer, NULL);
    }
    while (!list_empty(&listeners)) {
        struct listener *l = container_of(listeners.next, struct listener, link);
        list_remove(&l->link);
        if (uv_is_closing(&l->h.handle))
            continue;
        if (l->h.handle.type == UV_UNKNOWN_HANDLE)
            mem_free(l); /* never initialised */
        else
            uv_close(&l->h.handle, listener_closed);
    }
    struct list_node *n, *t;
    list_for_each_safe(n, t, &all_conns)
    {
        struct conn *c = container_of(n, struct conn, all_link);
        conn_close(c);
    }
}

struct conn *conn_next(struct conn *prev)
{
    struct list_node *n = prev ? prev->all_link.next : all_conns.next;
    return n == &all_conns ? NULL : container_of(n, struct conn, all_link);
}

bool conn_pending(void)
{
    return !list_empty(&dirty);
}

void conn_flush_all(void)
{
    while (!list_empty(&dirty)) {
        struct conn *c = container_of(dirty.next, struct conn, dirty_link);
        list_remove(&c->dirty_link);
        c->dirty = false;
        flush(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *out)
{
    (void)hint;
    struct conn *c = h->data;
    /* A stranger's HELLO is small: its reads are too, so an idle stranger holds little. */
    size_t want = c->client && !c->authed ? READ_CHUNK_UNAUTH : READ_CHUNK;
    /* When a large frame is arriving, make room for all of it at once. */
    if (c->in.len >= WIRE_HEADER) {
        const unsigned char *p = (const unsigned char *)c->in.data;
        size_t flen = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
        if (flen <= c->max_frame && flen + WIRE_HEADER > c->in.len + want)
            want = flen + WIRE_HEADER - c->in.len;
    }
    if (buf_reserve(&c->in, want) < 0) {
        *out = uv_buf_init(NULL, 0);
        return;
    }
    *out = uv_buf_init(c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len));
}

/* For a container's conn (one with an owner): whether the n bytes at p, the start of a frame
 * (perhaps not all of it yet), can begin a message as the worker writes them: a map whose first
 * key is "op" (wire_begin's order). Garbage is caught by its first bytes, not after the length
 * its first four announce has arrived, which may be never. */
static bool frame_start_ok(const char *p, size_t n)
{
    static const unsigned char op[] = {0xa2, 'o', 'p'};
    if (n <= WIRE_HEADER)
        return true;
    const unsigned char *b = (const unsigned char *)p + WIRE_HEADER;
    n -= WIRE_HEADER;
    size_t at = b[0] >= 0x80 && b[0] <= 0x8f ? 1 : b[0] == 0xde ? 3 : b[0] == 0xdf ? 5 : 0;
    if (!at)
        return false;
    for (size_t i = 0; i < sizeof op && at + i < n; i++)
        if (b[at + i] != op[i])
            return false;
    return true;
}

/* Why a container frame over its object budget is refused (it names WIRE_CONTAINER_OBJECTS_MAX). */
static const char container_too_many[] =
    "a frame of more than 524288 msgpack objects (the decoding limit of a container frame)";
_Static_assert(WIRE_CONTAINER_OBJECTS_MAX == 524288, "container_too_many names the limit");

/* Closes c, whose peer sent what no peer may (why, for the log and for on_close). */
static void cut_off(struct conn *c, const char *why)
{
    log_warn("%s: %s, closing", c->peer, why);
    c->error = why;
    conn_close(c);
}

/* Parses and handles the complete frames in c->in, until the conn closes, lingers or (a client)
 * has more unsent output than the limit: then reading stops, the rest waits in `in`. */
static void consume(struct conn *c)
{
    size_t off = 0;
    while (!c->closing && !c->linger) {
        if (c->client && unsent(c) > limits.out_high) {
            if (!c->held) {
                c->held = true;
                uv_read_stop(&c->h.stream);
            }
            break;
        }
        long len = wire_frame_len(c->in.data + off, c->in.len - off, c->max_frame);
        if (len < 0 && c->owner) {
            cut_off(c, "a frame of a bad length (empty or over the frame limit)");
            return;
        }
        if (len < 0) {
            /* A stranger's garbage is no news: logged only at debug, so it cannot grow the log. */
            log_msg(c->authed || !c->client ? LOG_WARN : LOG_DEBUG,
                    "%s: bad frame length (empty or over %zu bytes), closing", c->peer,
                    c->max_frame);
            conn_close(c);
            return;
        }
        if (c->owner && !frame_start_ok(c->in.data + off, c->in.len - off)) {
            cut_off(c, "a frame that does not start as a message");
            return;
        }
        if (len == 0)
            break;
        const char *body = c->in.data + off + WIRE_HEADER;
        off += WIRE_HEADER + (size_t)len;
        int rc = wire_msg_parse(&c->msg, body, (size_t)len);
        if (rc == -2 && c->owner) {
            cut_off(c, container_too_many);
            return;
        }
        if (rc < 0 && c->owner) {
            cut_off(c, "a frame that is not a valid message");
            return;
        }
        if (rc == -2) {
            log_warn("%s: a frame of %ld bytes holds more msgpack objects than allowed, closing",
                     c->peer, len);
            conn_error(c, 0, SKIFF_ERR_DESERIALIZATION,
                       "frame refused: it holds more than one msgpack object per %d bytes (plus "
                       "%d) or more than %u objects (the decoding limit)",
                       WIRE_BYTES_PER_OBJECT, WIRE_OBJECTS_FREE, WIRE_OBJECTS_MAX);
            conn_close_after_flush(c);
            break;
        }
        if (rc < 0) {
            log_msg(c->authed || !c->client ? LOG_WARN : LOG_DEBUG, "%s: malformed frame, closing",
                    c->peer);
            conn_close(c);
            return;
        }
        bool was_authed = c->authed;
        if (limits_loop)
            c->last_frame = uv_now(limits_loop);
        c->ops->on_frame(c, &c->msg);
        if (c->authed && !was_authed && list_linked(&c->unauth_link)) {
            list_remove(&c->unauth_link);
            n_unauth--;
        }
    }
    if (!c->closing) {
        buf_consume(&c->in, off);
        buf_shrink(&c->in);
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *out);

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    struct conn *c = s->data;
    if (n == UV_ENOBUFS) {
        log_warn("%s: out of memory for input, closing", c->peer);
        conn_close(c);
        return;
    }
    if (n < 0) {
        if (n != UV_EOF)
            log_debug("%s: read failed: %s", c->peer, uv_strerror((int)n));
        conn_close(c);
        return;
    }
    c->in.len += (size_t)n;
    consume(c);
}

/* Backpressure released: once c's unsent output is below half the limit, the requests already
 * read are handled and reading resumes. */
static void unhold(struct conn *c)
{
    if (!c->held || c->closing || unsent(c) > limits.out_high / 2)
        return;
    c->held = false;
    consume(c);
    if (!c->held && !c->closing && !c->linger && uv_read_start(&c->h.stream, on_alloc, on_read) < 0)
        conn_close(c);
}

int conn_start(struct conn *c)
{
    return uv_read_start(&c->h.stream, on_alloc, on_read);
}

struct conn *conn_new_pipe(uv_loop_t *loop, const struct conn_ops *ops, void *owner,
                           size_t max_frame)
{
    struct conn *c = conn_alloc(ops, owner, max_frame);
    if (!c)
        return NULL;
    if (uv_pipe_init(loop, &c->h.pipe, 0) < 0) {
        on_closed(&c->h.handle);
        return NULL;
    }
    c->h.handle.data = c;
    snprintf(c->peer, sizeof c->peer, "container");
    c->msg.objects_max = WIRE_CONTAINER_OBJECTS_MAX;
    return c;
}

static void on_connection(uv_stream_t *server, int status)
{
    struct listener *l = server->data;
    if (status < 0) {
        /* Out of descriptors: libuv has already accepted and closed the waiting connections with
         * its reserve descriptor (and says so only when that failed); make room for the next. */
        if (status == UV_EMFILE || status == UV_ENFILE) {
            conn_make_room();
            return;
        }
        log_warn("accept failed: %s", uv_strerror(status));
        return;
    }
    struct conn *c = conn_alloc(l->ops, NULL, l->max_frame);
    if (!c) {
        log_error("out of memory accepting a connection");
        return;
    }
    int rc = l->is_tcp ? uv_tcp_init(server->loop, &c->h.tcp)
                       : uv_pipe_init(server->loop, &c->h.pipe, 0);
    c->h.handle.data = c;
    if (rc < 0) {
        on_closed(&c->h.handle);
        return;
    }
    c->closing = true; /* until accepted: a failed accept must not call on_close */
    if (uv_accept(server, &c->h.stream) < 0) {
        uv_close(&c->h.handle, on_closed);
        return;
    }
    c->closing = false;
    conn_make_room();
    c->client = true;
    c->msg.budget = true;
    c->since = c->last_frame = uv_now(server->loop);
    if (n_unauth >= limits.max_unauth && !list_empty(&unauth)) {
        struct conn *old = container_of(unauth.next, struct conn, unauth_link);
        log_debug("%s: closed unauthenticated (%zu clients without HELLO at once)", old->peer,
                  n_unauth);
        conn_close(old);
    }
    list_push(&unauth, &c->unauth_link);
    n_unauth++;
    /* Strangers get small frames until their HELLO is accepted (proto.c raises the limit). */
    if (c->max_frame > PROTO_HELLO_MAX)
        c->max_frame = PROTO_HELLO_MAX;
    if (l->is_tcp) {
        uv_tcp_nodelay(&c->h.tcp, 1);
        struct sockaddr_storage sa;
        int len = sizeof sa;
        char host[48] = "?";
        if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&sa, &len) == 0) {
            if (sa.ss_family == AF_INET6)
                uv_ip6_name((struct sockaddr_in6 *)&sa, host, sizeof host);
            else
                uv_ip4_name((struct sockaddr_in *)&sa, host, sizeof host);
            snprintf(c->peer, sizeof c->peer, "client %s:%d", host,
                     ntohs(((struct sockaddr_in *)&sa)->sin_port));
        }
    } else {
        snprintf(c->peer, sizeof c->peer, "client (unix)");
    }
    if (conn_start(c) < 0)
        conn_close(c);
}

int conn_listen(uv_loop_t *loop, const char *addr, const struct conn_ops *ops, size_t max_frame)
{
    struct listener *l = mem_calloc(1, sizeof *l);
    if (!l)
        return UV_ENOMEM;
    l->ops = ops;
    l->max_frame = max_frame;
    int rc;
    if (!strncmp(addr, "unix:", 5)) {
        const char *path = addr + 5;
        rc = uv_pipe_init(loop, &l->h.pipe, 0);
        if (rc == 0) {
            unlink(path); /* a stale socket from an earlier run */
            rc = uv_pipe_bind(&l->h.pipe, path);
        }
    } else {
        l->is_tcp = true;
        char host[256];
        const char *colon = strrchr(addr, ':');
        if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof host) {
            log_error("bad listen address '%s': want HOST:PORT or unix:PATH", addr);
            mem_free(l);
            return UV_EINVAL;
        }
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (*end || port < 0 || port > 65535) {
            log_error("bad port in '%s'", addr);
            mem_free(l);
            return UV_EINVAL;
        }
        struct sockaddr_storage sa;
        if (host[0] == '[') {
            size_t hl = strlen(host);
            if (host[hl - 1] == ']')
                host[hl - 1] = '\0';
            rc = uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)&sa);
        } else {
            rc = uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&sa);
        }
        if (rc == 0)
            rc = uv_tcp_init(loop, &l->h.tcp);
        if (rc == 0)
            rc = uv_tcp_bind(&l->h.tcp, (struct sockaddr *)&sa, 0);
    }
    l->h.handle.data = l;
    list_push(&listeners, &l->link);
    if (rc == 0)
        rc = uv_listen(&l->h.stream, 1024, on_connection);
    if (rc < 0) {
        if (rc != UV_EADDRINUSE) /* the caller may wait for it: it says so itself */
            log_error("cannot listen on %s: %s", addr, uv_strerror(rc));
        list_remove(&l->link);
        if (l->h.handle.type == UV_UNKNOWN_HANDLE)
            mem_free(l); /* never initialised */
        else
            uv_close(&l->h.handle, listener_closed);
        return rc;
    }
    return 0;
}

/* True when an authenticated client has nothing in progress: no call, waiter, stream, pending
 * acknowledgement, unsent output, unread request or ephemeral app it deployed (`skiff run`:
 * closing its connection would remove the app mid-run). */
static bool idle(const struct conn *c)
{
    return list_empty(&c->calls) && list_empty(&c->waiters) && list_empty(&c->streams) &&
           list_empty(&c->acks) && !c->writing && !c->out.len && !c->held && !c->linger &&
           !apps_owns(c);
}

static void on_sweep(uv_timer_t *t)
{
    uint64_t now = uv_now(t->loop);
    uint64_t hello_ms = (uint64_t)(limits.hello_timeout * 1000);
    while (!list_empty(&unauth)) {
        struct conn *c = container_of(unauth.next, struct conn, unauth_link);
        if (now - c->since < hello_ms)
            break; /* the rest are younger */
        log_debug("%s: no HELLO within %.3g s, closing", c->peer, limits.hello_timeout);
        conn_close(c);
    }
    if (!(limits.idle_timeout > 0))
        return;
    uint64_t idle_ms = (uint64_t)(limits.idle_timeout * 1000);
    struct list_node *n, *tmp;
    list_for_each_safe(n, tmp, &all_conns)
    {
        struct conn *c = container_of(n, struct conn, all_link);
        if (c->client && c->authed && !c->closing && idle(c) && now - c->last_frame >= idle_ms) {
            log_debug("%s: idle for %.3g s, closing", c->peer, limits.idle_timeout);
            conn_close(c);
        }
    }
}

void conn_set_limits(uv_loop_t *loop, const struct conn_limits *l)
{
    limits = *l;
    if (limits.max_unauth < 1)
        limits.max_unauth = 1;
    limits_loop = loop;
    if (!sweeping) {
        uv_timer_init(loop, &sweep_timer);
        uv_unref((uv_handle_t *)&sweep_timer);
        sweeping = true;
    }
    /* A quarter of the shorter timeout, between 10 ms and 1 s: deadlines hold within 25%. */
    double shortest = limits.hello_timeout;
    if (limits.idle_timeout > 0 && limits.idle_timeout < shortest)
        shortest = limits.idle_timeout;
    uint64_t every = (uint64_t)(shortest * 250);
    every = every < 10 ? 10 : every > 1000 ? 1000 : every;
    uv_timer_start(&sweep_timer, on_sweep, every, every);
}

bool conn_make_room(void)
{
    /* A descriptor free after this accept? (Descriptors are given lowest first, so a dup that
     * succeeds says nothing is wasted by asking.) */
    int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0);
    if (fd >= 0) {
        close(fd);
        return true;
    }
    if (errno != EMFILE && errno != ENFILE)
        return true;
    if (!list_empty(&unauth))
        conn_close(container_of(unauth.next, struct conn, unauth_link));
    uint64_t now = limits_loop ? uv_now(limits_loop) : 1;
    if (!emfile_logged || now - emfile_logged >= 10000) {
        emfile_logged = now;
        log_warn("out of file descriptors (%s): the oldest unauthenticated client is closed to "
                 "make room",
                 strerror(errno));
    }
    return false;
}

size_t conn_unauth_count(void)
{
    return n_unauth;
}

size_t conn_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            log_warn("cannot raise the open files limit to %llu: %s", (unsigned long long)want,
                     strerror(errno));
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur == RLIM_INFINITY ? (size_t)1 << 20 : (size_t)rl.rlim_cur;
}
