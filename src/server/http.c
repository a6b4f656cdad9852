/*
 * http.c - the HTTP/1.1 server on skiffd's loop: connections, parsing, answers in order.
 *
 * Bytes read from a connection go through libhttp-parser (http_parser_execute); its callbacks
 * collect one request at a time into a struct http_req (target, the two token headers, body).
 * A complete request joins the connection's queue and goes to its handler (/web/... to
 * http_web.c, /api/... to http_api.c), which answers at once or later. Answers leave strictly in
 * request order: a pipelined request answered early waits behind an earlier one still running.
 * At most HTTP_PIPELINE requests wait per connection; beyond that the parser is paused (its
 * unparsed bytes kept) and reading stops until the queue drains.
 *
 * Limits, each answered and then the connection closed, without touching other connections:
 * headers (request line included) over HTTP_HEADER_MAX -> 431; a body over the body limit ->
 * 413; a request whose headers and body take longer than the request timeout from its first
 * byte -> 408; anything the parser rejects -> 400. An idle keep-alive connection (nothing
 * queued, nothing half-read) is closed silently after the same timeout.
 *
 * Closing is asynchronous (libuv): the conn is unlinked, every request still waiting is
 * detached from calls.c, and the memory goes in the close callback.
 */
#include "http.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "calls.h"
#include "common/codec.h"
#include "common/value.h"
#include "common/log.h"
#include "common/mem.h"
#include "http_req.h"
#include "metrics.h"

/* conn.h (not included: its conn_close would clash with this file's). */
bool conn_make_room(void);

/* Request line plus headers: far above any browser or curl request, small enough that a client
 * cannot make the server hold much per connection. */
#define HTTP_HEADER_MAX (16 * 1024)
/* Answers a connection may have outstanding before reading pauses (pipelining depth). */
#define HTTP_PIPELINE 64
/* Bytes read at once. */
#define HTTP_READ_SIZE (64 * 1024)
/* Request bodies of clients without a valid token held at once, over all connections: past it
 * a new body is answered 503 at once (so the total an anonymous crowd can make the server hold
 * in bodies is this, whatever the number of connections). */
#define HTTP_BODIES_MAX (64u << 20)
/* Unsent answer bytes past which reading pauses until they drain below half (backpressure). */
#define HTTP_OUT_HIGH (4u << 20)
/* An answer's headers (status line, content headers, extra headers). */
#define HTTP_RESP_HEAD 1024

struct http_conn {
    uv_tcp_t tcp;
    http_parser parser;
    struct http_req *cur;   /* the request being parsed, or NULL */
    struct list_node queue; /* struct http_req.link: parsed, in order, not yet sent */
    size_t n_queued;
    struct buf pending; /* bytes read but not yet parsed (parser paused) */
    struct buf out;     /* answers ready to go, behind the write in flight */
    struct buf wbuf;    /* the bytes of the write in flight */
    uv_write_t wreq;
    uv_timer_t timer;  /* request timeout (408) or idle timeout */
    size_t head_bytes; /* of cur's request line and headers so far */
    size_t body_limit; /* of cur's body, set once its headers are complete */
    char field[32];    /* the header name being read (cut: only short names matter) */
    size_t field_len;
    char *value_to;   /* where the current header's value goes, or NULL */
    size_t value_cap; /* its size */
    size_t value_len;
    int fail; /* status to answer when the parser stops on our limit */
    bool in_field;
    bool writing;
    bool reading; /* uv_read_start is on */
    bool paused;  /* the parser is paused: too many queued */
    bool stop;    /* no more requests: an error or close answer is queued */
    bool closing;
    bool dead; /* a write failed: closing on the next turn of the loop (hc->timer) */
    struct list_node all_link;
    char peer[64];
};

static uv_loop_t *loop;
static uv_tcp_t listener;
static bool listening;
static struct http_options opts;
static char addr_copy[256];
static struct list_node all_conns; /* oldest first */
static size_t n_conns;
static size_t bodies_held; /* bytes in the bodies of untrusted requests (HTTP_BODIES_MAX) */
static http_parser_settings settings;
static struct list_node poked; /* struct http_req.poke_link: streams to flush on the next turn */
static uv_idle_t poke_idle;

uv_loop_t *http_loop(void)
{
    return loop;
}

double http_web_limit(void)
{
    return opts.web_limit;
}

const char *http_addr(void)
{
    return listening ? addr_copy : NULL;
}

/* --- requests --------------------------------------------------------------------------------- */

static struct http_req *req_new(struct http_conn *hc)
{
    struct http_req *r = mem_calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->hc = hc;
    buf_init(&r->url, HTTP_HEADER_MAX);
    buf_init(&r->body, opts.body_max);
    buf_init(&r->resp, 0);
    list_init(&r->link);
    list_init(&r->wait_link);
    list_init(&r->poke_link);
    return r;
}

static void req_free(struct http_req *r)
{
    if (!r->done) {
        if (r->on_gone)
            r->on_gone(r);
        calls_listener_gone(&r->listener);
    }
    if (r->on_free)
        r->on_free(r);
    list_remove(&r->link);
    list_remove(&r->poke_link);
    if (!r->trusted)
        bodies_held -= r->body.len;
    buf_deinit(&r->url);
    buf_deinit(&r->body);
    buf_deinit(&r->resp);
    mem_free(r->path);
    mem_free(r->query);
    mem_free(r);
}

/* --- connections ------------------------------------------------------------------------------ */

static void conn_closed(uv_handle_t *h)
{
    struct http_conn *hc = h->data;
    if (h == (uv_handle_t *)&hc->tcp) {
        /* The timer is closed second; free once both are gone. */
        uv_close((uv_handle_t *)&hc->timer, conn_closed);
        return;
    }
    buf_deinit(&hc->pending);
    buf_deinit(&hc->out);
    buf_deinit(&hc->wbuf);
    mem_free(hc);
}

static void conn_close(struct http_conn *hc)
{
    if (hc->closing)
        return;
    hc->closing = true;
    list_remove(&hc->all_link);
    n_conns--;
    if (hc->cur)
        req_free(hc->cur);
    hc->cur = NULL;
    while (!list_empty(&hc->queue))
        req_free(container_of(hc->queue.next, struct http_req, link));
    uv_timer_stop(&hc->timer);
    uv_close((uv_handle_t *)&hc->tcp, conn_closed);
}

static void arm_timer(struct http_conn *hc);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);
static void alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *b);
static void parse(struct http_conn *hc, const char *data, size_t n);

static void start_write(struct http_conn *hc);
static void conn_close_soon(struct http_conn *hc);
static void resume(struct http_conn *hc);
static bool can_resume(const struct http_conn *hc);

static void on_dead(uv_timer_t *t)
{
    conn_close(t->data);
}

/* Closes hc on the next turn of the loop: for failures met while a handler may be inside a
 * calls.c callback (which a synchronous close would re-enter). */
static void conn_close_soon(struct http_conn *hc)
{
    if (hc->dead || hc->closing)
        return;
    hc->dead = true;
    uv_timer_start(&hc->timer, on_dead, 0, 0);
}

static void poke(struct http_req *r);

static void write_done(uv_write_t *w, int status)
{
    struct http_conn *hc = w->data;
    hc->writing = false;
    hc->wbuf.len = 0;
    if (hc->closing)
        return;
    if (status < 0) {
        conn_close(hc);
        return;
    }
    start_write(hc);
    if (!hc->closing && can_resume(hc))
        resume(hc);
    /* A stream at the head may make more now that its bytes left. */
    if (!hc->closing && !list_empty(&hc->queue)) {
        struct http_req *r = container_of(hc->queue.next, struct http_req, link);
        if (r->streaming && !r->done && r->on_drain)
            poke(r);
    }
}

/* Sends what is in out; closes once everything is sent after a closing answer. */
static void start_write(struct http_conn *hc)
{
    if (hc->writing || hc->closing)
        return;
    if (hc->out.len == 0) {
        if (hc->stop && list_empty(&hc->queue))
            conn_close(hc);
        return;
    }
    struct buf t = hc->wbuf;
    hc->wbuf = hc->out;
    hc->out = t;
    hc->out.len = 0;
    uv_buf_t b = uv_buf_init(hc->wbuf.data, (unsigned)hc->wbuf.len);
    hc->wreq.data = hc;
    if (uv_write(&hc->wreq, (uv_stream_t *)&hc->tcp, &b, 1, write_done) < 0) {
        conn_close_soon(hc);
        return;
    }
    hc->writing = true;
}

/* Answer bytes not yet taken by the kernel. */
static size_t unsent(const struct http_conn *hc)
{
    return hc->out.len + hc->wbuf.len;
}

/* A paused parser may go on: few requests queued and little output unsent. */
static bool can_resume(const struct http_conn *hc)
{
    return hc->paused && hc->n_queued < HTTP_PIPELINE / 2 && unsent(hc) <= HTTP_OUT_HIGH / 2;
}

/* Moves the answered requests at the head of the queue to the output, in order. */
static void pump(struct http_conn *hc)
{
    while (!list_empty(&hc->queue)) {
        struct http_req *r = container_of(hc->queue.next, struct http_req, link);
        if (!r->done || r->dispatching) {
            /* A stream at the head sends what it has so far. (An answered request whose
             * handler still runs waits: the handler may still read it.) */
            if (!r->done && r->streaming && r->resp.len) {
                if (buf_append(&hc->out, r->resp.data, r->resp.len) != 0) {
                    conn_close_soon(hc);
                    break;
                }
                r->resp.len = 0;
            }
            break;
        }
        bool close = r->close || !r->keep_alive;
        if (buf_append(&hc->out, r->resp.data, r->resp.len) != 0)
            close = true;
        req_free(r);
        hc->n_queued--;
        if (close) {
            hc->stop = true;
            while (!list_empty(&hc->queue)) {
                req_free(container_of(hc->queue.next, struct http_req, link));
                hc->n_queued--;
            }
            break;
        }
    }
    start_write(hc);
    if (hc->closing)
        return;
    if (can_resume(hc))
        resume(hc);
    arm_timer(hc);
}

/* Queues a final answer of the connection's own (an error of the request being read): it goes
 * after the requests before it, then the connection closes. */
static void fail_conn(struct http_conn *hc, int status, const char *type, const char *message)
{
    if (hc->stop)
        return;
    struct http_req *r = hc->cur;
    hc->cur = NULL;
    if (!r && !(r = req_new(hc))) {
        conn_close(hc);
        return;
    }
    r->keep_alive = false;
    list_push(&hc->queue, &r->link);
    hc->n_queued++;
    http_respond_error(r, status, type, message, NULL);
    hc->stop = true;
    if (hc->reading) {
        uv_read_stop((uv_stream_t *)&hc->tcp);
        hc->reading = false;
    }
}

static void on_timeout(uv_timer_t *t)
{
    struct http_conn *hc = t->data;
    if (hc->dead)
        return;
    if (hc->cur) {
        log_debug("http %s: request not received within %.3g s: 408", hc->peer,
                  opts.request_timeout);
        fail_conn(hc, 408, "RequestTimeout", "the request was not received in time");
        pump(hc);
    } else if (list_empty(&hc->queue) && !hc->writing) {
        conn_close(hc); /* idle keep-alive connection */
    } else if (list_empty(&hc->queue)) {
        arm_timer(hc); /* an answer is still being sent: look again later */
    }
}

/* The request timeout runs while a request is being read; the idle timeout while nothing is
 * queued; none while answers are awaited. */
static void arm_timer(struct http_conn *hc)
{
    if (hc->closing || hc->dead)
        return;
    uint64_t ms = (uint64_t)(opts.request_timeout * 1000);
    if (hc->cur || list_empty(&hc->queue)) {
        if (!hc->cur || !uv_is_active((uv_handle_t *)&hc->timer))
            uv_timer_start(&hc->timer, on_timeout, ms ? ms : 1, 0);
    } else {
        uv_timer_stop(&hc->timer);
    }
}

static void resume(struct http_conn *hc)
{
    hc->paused = false;
    http_parser_pause(&hc->parser, 0);
    if (hc->pending.len) {
        /* Parse what was held back; parse() may pause again and keep the rest. */
        struct buf held = hc->pending;
        buf_init(&hc->pending, 0);
        parse(hc, held.data, held.len);
        buf_deinit(&held);
    }
    if (!hc->paused && !hc->stop && !hc->closing && !hc->reading) {
        if (uv_read_start((uv_stream_t *)&hc->tcp, alloc_cb, on_read) == 0)
            hc->reading = true;
    }
}

/* --- parser callbacks ------------------------------------------------------------------------- */

static int on_message_begin(http_parser *p)
{
    struct http_conn *hc = p->data;
    if (hc->closing || hc->stop)
        return -1;
    hc->cur = req_new(hc);
    if (!hc->cur)
        return -1;
    hc->head_bytes = 0;
    hc->field_len = 0;
    hc->in_field = false;
    hc->value_to = NULL;
    uv_timer_stop(&hc->timer);
    arm_timer(hc);
    return 0;
}

static int count_head(struct http_conn *hc, size_t n)
{
    hc->head_bytes += n;
    if (hc->head_bytes > HTTP_HEADER_MAX) {
        hc->fail = 431;
        return -1;
    }
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct http_conn *hc = p->data;
    if (count_head(hc, n) < 0)
        return -1;
    return buf_append(&hc->cur->url, at, n) == 0 ? 0 : -1;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct http_conn *hc = p->data;
    if (count_head(hc, n) < 0)
        return -1;
    if (!hc->in_field) {
        hc->in_field = true;
        hc->field_len = 0;
        hc->value_to = NULL;
    }
    for (size_t i = 0; i < n && hc->field_len < sizeof hc->field - 1; i++)
        hc->field[hc->field_len++] = (char)tolower((unsigned char)at[i]);
    hc->field[hc->field_len] = '\0';
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct http_conn *hc = p->data;
    if (count_head(hc, n) < 0)
        return -1;
    struct http_req *r = hc->cur;
    if (hc->in_field) {
        hc->in_field = false;
        hc->value_len = 0;
        hc->value_to = !strcmp(hc->field, "x-skiff-token-id")       ? r->token_id
                       : !strcmp(hc->field, "x-skiff-token-secret") ? r->token_secret
                       : !strcmp(hc->field, "expect")               ? r->expect
                       : !strcmp(hc->field, "content-type")         ? r->content_type
                       : !strcmp(hc->field, "authorization")        ? r->authorization
                       : !strcmp(hc->field, "cookie")               ? r->cookie
                       : !strcmp(hc->field, "x-skiff-csrf")         ? r->csrf
                                                                    : NULL;
        hc->value_cap = hc->value_to == r->cookie ? sizeof r->cookie : sizeof r->token_id;
    }
    if (!hc->value_to)
        return 0;
    /* The targets are 128 bytes (the cookie 512); a longer value is no valid token: keep it
     * empty. */
    if (hc->value_len + n >= hc->value_cap) {
        hc->value_to[0] = '\0';
        hc->value_to = NULL;
        return 0;
    }
    memcpy(hc->value_to + hc->value_len, at, n);
    hc->value_len += n;
    hc->value_to[hc->value_len] = '\0';
    return 0;
}

static bool split_target(struct http_req *r);

/* The largest body r may send, known from its target and token headers: a web endpoint's own
 * max_body, or twice the payload limit for a JSON API request with a valid token, or else the
 * server's default. */
static size_t body_limit(struct http_req *r)
{
    if (!split_target(r))
        return opts.body_max; /* answered 400 once complete */
    if (!strncmp(r->path, "/api/", 5)) {
        const char *why;
        struct auth_token *t = r->token_id[0] && r->token_secret[0]
                                   ? auth_login(r->token_id, r->token_secret, &why)
                                   : NULL;
        auth_release(t);
        if (t) {
            r->trusted = true;
            return opts.payload_max * 2 > opts.body_max ? opts.payload_max * 2 : opts.body_max;
        }
        return opts.body_max;
    }
    size_t own = http_web_max_body(r->path);
    return own ? own : opts.body_max;
}

/* "Authorization: Bearer ID:SECRET" (what a Prometheus scrape config sends) stands for the two
 * X-Skiff-Token headers when those are absent. */
static void bearer(struct http_req *r)
{
    if (r->token_id[0] || r->token_secret[0] || strncasecmp(r->authorization, "Bearer ", 7))
        return;
    const char *v = r->authorization + 7, *colon = strchr(v, ':');
    if (!colon || (size_t)(colon - v) >= sizeof r->token_id)
        return;
    memcpy(r->token_id, v, (size_t)(colon - v));
    r->token_id[colon - v] = '\0';
    snprintf(r->token_secret, sizeof r->token_secret, "%s", colon + 1);
}

static int on_headers_complete(http_parser *p)
{
    struct http_conn *hc = p->data;
    bearer(hc->cur);
    /* Checked before a byte of the body is kept: from Content-Length at once, and while a
     * chunked body streams in (the buffer's max). */
    hc->body_limit = body_limit(hc->cur);
    hc->cur->body.max = hc->body_limit;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > hc->body_limit) {
        hc->fail = 413;
        return -1;
    }
    if ((p->flags & F_CONTENTLENGTH) && !hc->cur->trusted &&
        p->content_length > HTTP_BODIES_MAX - bodies_held) {
        hc->fail = 503;
        return -1;
    }
    /* A client that asks first (curl does for bodies over 1 KiB) is told to go on, when no
     * earlier answer is due before this interim one. */
    if (!strcasecmp(hc->cur->expect, "100-continue") && list_empty(&hc->queue) &&
        hc->out.len == 0) {
        static const char go_on[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (buf_append(&hc->out, go_on, sizeof go_on - 1) == 0)
            start_write(hc);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct http_conn *hc = p->data;
    struct http_req *r = hc->cur;
    if (!r->trusted && n > HTTP_BODIES_MAX - bodies_held) {
        hc->fail = 503; /* a chunked body, or bodies that grew meanwhile */
        return -1;
    }
    int rc = buf_append(&r->body, at, n);
    if (rc == BUF_TOO_BIG)
        hc->fail = 413;
    if (rc == 0 && !r->trusted)
        bodies_held += n;
    return rc == 0 ? 0 : -1;
}

/* Splits the target into the decoded path and the raw query (once: later calls say how the first
 * went). false when malformed. */
static bool split_target(struct http_req *r)
{
    if (r->url.len && r->url.data[r->url.len - 1] == '\0')
        return r->path && r->query;
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (buf_append(&r->url, "", 1) != 0 ||
        http_parser_parse_url(r->url.data, r->url.len - 1, 0, &u) != 0 ||
        !(u.field_set & (1 << UF_PATH)))
        return false;
    r->path =
        http_decode(r->url.data + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len, false);
    if (u.field_set & (1 << UF_QUERY))
        r->query =
            mem_strndup(r->url.data + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
    else
        r->query = mem_strdup("");
    return r->path && r->query;
}

static void dispatch(struct http_req *r)
{
    if (!split_target(r)) {
        http_respond_error(r, 400, "InvalidError", "malformed request target", NULL);
        return;
    }
    if (!strncmp(r->path, "/web/", 5) || !strncmp(r->path, "/web-result/", 12))
        http_web_handle(r);
    else if (!strncmp(r->path, "/api/", 5))
        http_api_handle(r);
    else
        http_dash_handle(r);
}

static int on_message_complete(http_parser *p)
{
    struct http_conn *hc = p->data;
    struct http_req *r = hc->cur;
    hc->cur = NULL;
    r->method = (enum http_method)p->method;
    r->keep_alive = http_should_keep_alive(p);
    r->http10 = p->http_major == 1 && p->http_minor == 0;
    list_push(&hc->queue, &r->link);
    hc->n_queued++;
    uv_timer_stop(&hc->timer);
    bool keep = r->keep_alive;
    /* The handler may answer at once; r is freed only after it returns (pump skips it
     * meanwhile), so a handler may still read r after answering. */
    r->dispatching = true;
    dispatch(r);
    if (hc->closing)
        return -1; /* r went with the connection */
    r->dispatching = false;
    pump(hc);
    if (hc->closing)
        return -1;
    if (hc->n_queued >= HTTP_PIPELINE || unsent(hc) > HTTP_OUT_HIGH || !keep) {
        /* Stop here: the rest waits until the queue drains (or is never read). */
        hc->paused = keep;
        if (!keep)
            hc->stop = true;
        http_parser_pause(p, 1);
    }
    return 0;
}

/* --- reading ---------------------------------------------------------------------------------- */

static void parse(struct http_conn *hc, const char *data, size_t n)
{
    size_t done = http_parser_execute(&hc->parser, &settings, data, n);
    if (hc->closing)
        return;
    enum http_errno e = HTTP_PARSER_ERRNO(&hc->parser);
    if (e == HPE_PAUSED) {
        if (hc->paused && done < n && buf_append(&hc->pending, data + done, n - done) != 0)
            conn_close(hc);
        if (hc->reading && !hc->closing) {
            uv_read_stop((uv_stream_t *)&hc->tcp);
            hc->reading = false;
        }
    } else if (e != HPE_OK) {
        if (hc->fail == 431)
            fail_conn(hc, 431, "RequestSizeError", "the request's headers are too large");
        else if (hc->fail == 413) {
            char msg[160];
            snprintf(msg, sizeof msg,
                     "the request's body is over the limit of %zu bytes for this endpoint",
                     hc->body_limit);
            log_debug("http %s: a body over %zu bytes: 413", hc->peer, hc->body_limit);
            fail_conn(hc, 413, "RequestSizeError", msg);
        } else if (hc->fail == 503) {
            log_debug("http %s: request bodies of unauthenticated clients fill their %u MiB: 503",
                      hc->peer, HTTP_BODIES_MAX >> 20);
            fail_conn(hc, 503, "ResourceExhaustedError",
                      "the server holds too many request bodies now; try again");
        } else if (!hc->cur && e == HPE_CB_message_begin)
            conn_close(hc); /* out of memory */
        else
            fail_conn(hc, 400, "InvalidError", http_errno_description(e));
    }
    if (!hc->closing)
        pump(hc);
}

static void alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *b)
{
    (void)h;
    (void)size;
    char *p = mem_alloc(HTTP_READ_SIZE);
    *b = uv_buf_init(p, p ? HTTP_READ_SIZE : 0);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct http_conn *hc = s->data;
    if (n < 0) {
        mem_free(b->base);
        if (n == UV_EOF && !list_empty(&hc->queue) && !hc->cur) {
            /* The client is done sending (a half-close): answer what it asked, then close. */
            uv_read_stop(s);
            hc->reading = false;
            hc->stop = true;
            pump(hc);
            return;
        }
        /* Peer gone: nobody will read the answers, so waiting calls are dropped. */
        conn_close(hc);
        return;
    }
    if (n > 0 && !hc->stop)
        parse(hc, b->base, (size_t)n);
    mem_free(b->base);
}

/* A new connection with its handles initialised (its tcp not yet connected), or NULL. */
static struct http_conn *conn_new(void)
{
    struct http_conn *hc = mem_calloc(1, sizeof *hc);
    if (!hc)
        return NULL;
    uv_tcp_init(loop, &hc->tcp);
    uv_timer_init(loop, &hc->timer);
    hc->tcp.data = hc;
    hc->timer.data = hc;
    list_init(&hc->queue);
    list_push(&all_conns, &hc->all_link);
    n_conns++;
    buf_init(&hc->pending, 0);
    buf_init(&hc->out, 0);
    buf_init(&hc->wbuf, 0);
    http_parser_init(&hc->parser, HTTP_REQUEST);
    hc->parser.data = hc;
    return hc;
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    if (n_conns >= opts.max_conns) {
        /* Make room: the oldest connection with no request queued (idle, or still sending one:
         * a slow client is the likelier attacker) goes; with none, the new one is refused. */
        struct list_node *n, *t;
        list_for_each_safe(n, t, &all_conns)
        {
            struct http_conn *old = container_of(n, struct http_conn, all_link);
            if (old->n_queued == 0 && !old->writing) {
                conn_close(old);
                break;
            }
        }
    }
    struct http_conn *hc = conn_new();
    if (!hc)
        return;
    if (uv_accept(server, (uv_stream_t *)&hc->tcp) < 0 || n_conns > opts.max_conns) {
        conn_close(hc);
        return;
    }
    conn_make_room(); /* the last descriptor taken: an unauthenticated wire client goes */
    uv_tcp_nodelay(&hc->tcp, 1);
    struct sockaddr_storage sa;
    int len = sizeof sa;
    if (uv_tcp_getpeername(&hc->tcp, (struct sockaddr *)&sa, &len) == 0 && sa.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&sa, hc->peer, sizeof hc->peer);
    if (uv_read_start((uv_stream_t *)&hc->tcp, alloc_cb, on_read) < 0) {
        conn_close(hc);
        return;
    }
    hc->reading = true;
    arm_timer(hc);
}

/* --- answers ---------------------------------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 303:
        return "See Other";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return status < 500 ? "Client Error" : "Internal Server Error";
    }
}

void http_respond(struct http_req *r, int status, const char *ctype, const char *body, size_t len,
                  const char *extra_headers)
{
    struct http_conn *hc = r->hc;
    if (r->done)
        return;
    r->done = true;
    metrics_http(status);
    char head[HTTP_RESP_HEAD];
    bool close = r->close || !r->keep_alive;
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
                     status, reason(status), ctype, len, close ? "Connection: close\r\n" : "",
                     extra_headers ? extra_headers : "");
    if (n < 0 || (size_t)n >= sizeof head || buf_append(&r->resp, head, (size_t)n) != 0 ||
        buf_append(&r->resp, body, len) != 0) {
        log_warn("http %s: no memory for a %zu-byte answer: closing", hc->peer, len);
        r->resp.len = 0;
        r->close = true;
    }
    if (!hc->closing)
        pump(hc);
}

bool http_events_begin(struct http_req *r, const char *ctype)
{
    struct http_conn *hc = r->hc;
    char head[HTTP_RESP_HEAD];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nCache-Control: no-store\r\n"
                     "X-Accel-Buffering: no\r\nConnection: close\r\n\r\n",
                     ctype);
    metrics_http(200);
    r->streaming = true;
    r->close = true;
    hc->stop = true; /* nothing after it on this connection */
    if (n < 0 || (size_t)n >= sizeof head || buf_append(&r->resp, head, (size_t)n) != 0) {
        http_events_end(r);
        return false;
    }
    if (!hc->closing)
        pump(hc);
    return true;
}

bool http_events_send(struct http_req *r, const char *p, size_t n)
{
    struct http_conn *hc = r->hc;
    if (!r->streaming || r->done || hc->closing || unsent(hc) > HTTP_OUT_HIGH ||
        r->resp.len > HTTP_OUT_HIGH)
        return false;
    if (buf_append(&r->resp, p, n) != 0)
        return false;
    pump(hc);
    return true;
}

void http_events_end(struct http_req *r)
{
    if (r->done)
        return;
    r->streaming = false;
    r->done = true;
    r->close = true;
    if (!r->hc->closing)
        pump(r->hc);
}

void http_respond_json(struct http_req *r, int status, const char *json)
{
    http_respond(r, status, "application/json", json, strlen(json), NULL);
}

/* Appends s as a JSON string (quoted, escaped) to b. */
static int json_string(struct buf *b, const char *s)
{
    int rc = buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p && !rc; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            rc = buf_append(b, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            rc = buf_append(b, esc, 6);
        } else {
            rc = buf_append(b, p, 1);
        }
    }
    return rc ? rc : buf_append(b, "\"", 1);
}

int http_error_json(struct buf *b, const char *type, const char *message, const char *traceback)
{
    int rc = buf_append(b, "{\"error\":{\"type\":", 17);
    rc = rc ? rc : json_string(b, type);
    rc = rc ? rc : buf_append(b, ",\"message\":", 11);
    rc = rc ? rc : json_string(b, message ? message : "");
    if (traceback) {
        rc = rc ? rc : buf_append(b, ",\"traceback\":", 13);
        rc = rc ? rc : json_string(b, traceback);
    }
    return rc ? rc : buf_append(b, "}", 1);
}

void http_respond_error(struct http_req *r, int status, const char *type, const char *message,
                        const char *traceback)
{
    http_respond_error_with(r, status, type, message, traceback, NULL);
}

void http_respond_error_with(struct http_req *r, int status, const char *type, const char *message,
                             const char *traceback, const char *extra_headers)
{
    struct buf b;
    buf_init(&b, 0);
    int rc = http_error_json(&b, type, message, traceback);
    rc = rc ? rc : buf_append(&b, "}", 1);
    if (rc)
        r->close = true;
    http_respond(r, status, "application/json", rc ? "" : b.data, rc ? 0 : b.len, extra_headers);
    buf_deinit(&b);
}

int http_status_of(skiff_code code)
{
    switch (code) {
    case SKIFF_ERR_INVALID:
    case SKIFF_ERR_DESERIALIZATION:
    case SKIFF_ERR_SERIALIZATION:
        return 400;
    case SKIFF_ERR_AUTH:
        return 401;
    case SKIFF_ERR_NOT_FOUND:
        return 404;
    case SKIFF_ERR_CANCELLED:
        return 409;
    case SKIFF_ERR_OUTPUT_EXPIRED:
        return 410;
    case SKIFF_ERR_REQUEST_SIZE:
        return 413;
    case SKIFF_ERR_RESOURCE_EXHAUSTED:
        return 429;
    case SKIFF_ERR_NOMEM:
        return 503;
    case SKIFF_ERR_TIMEOUT:
        return 504;
    default:
        return 500; /* the function failed, timed out, crashed; or the server did */
    }
}

void http_respond_skiff(struct http_req *r, const skiff_error *err)
{
    http_respond_error(r, http_status_of(err->code),
                       err->type ? err->type : skiff_code_name(err->code), err->message,
                       err->traceback);
}

void http_respond_payload(struct http_req *r, int status, const char *key, const char *payload,
                          size_t len, const char *prefix)
{
    skiff_value *v = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    if (codec_decode_value(payload, len, &v, &err) != SKIFF_OK) {
        http_respond_skiff(r, &err);
        skiff_error_clear(&err);
        return;
    }
    if (value_has_pickle(v)) { /* Python-only data: say so rather than show its bytes */
        skiff_value_free(v);
        http_respond_error(r, 500, "DeserializationError", VALUE_PICKLE_MESSAGE, NULL);
        return;
    }
    char *json = skiff_value_to_json(v);
    skiff_value_free(v);
    if (!json) {
        http_respond_error(r, 503, "MemoryError", "out of memory encoding the result", NULL);
        return;
    }
    struct buf b;
    buf_init(&b, 0);
    int rc = 0;
    if (key) {
        rc = buf_append(&b, "{", 1);
        if (prefix && !rc)
            rc = buf_append(&b, prefix, strlen(prefix));
        rc = rc ? rc : json_string(&b, key);
        rc = rc ? rc : buf_append(&b, ":", 1);
    }
    rc = rc ? rc : buf_append(&b, json, strlen(json));
    if (key && !rc)
        rc = buf_append(&b, "}", 1);
    free(json); /* skiff_value_to_json's contract: malloc'd */
    if (rc)
        http_respond_error(r, 503, "MemoryError", "out of memory encoding the result", NULL);
    else
        http_respond(r, status, "application/json", b.data, b.len, NULL);
    buf_deinit(&b);
}

/* --- streamed answers ------------------------------------------------------------------------ */

/* The next turn of the loop: every poked stream's bytes go out, then its on_drain runs. */
static void on_poke(uv_idle_t *h)
{
    uv_idle_stop(h);
    struct list_node batch;
    list_init(&batch);
    while (!list_empty(&poked)) {
        struct list_node *n = poked.next;
        list_remove(n);
        list_push(&batch, n);
    }
    while (!list_empty(&batch)) {
        struct http_req *r = container_of(batch.next, struct http_req, poke_link);
        list_remove(&r->poke_link);
        struct http_conn *hc = r->hc;
        bool drain = r->streaming && !r->done && r->on_drain;
        if (drain)
            r->on_drain(r); /* may end the stream */
        if (!hc->closing)
            pump(hc); /* may free r */
    }
}

static void poke(struct http_req *r)
{
    if (list_linked(&r->poke_link))
        return;
    list_push(&poked, &r->poke_link);
    if (!uv_is_active((uv_handle_t *)&poke_idle))
        uv_idle_start(&poke_idle, on_poke);
}

void http_stream_begin(struct http_req *r, const char *ctype)
{
    char head[HTTP_RESP_HEAD];
    if (r->http10)
        r->close = true; /* HTTP/1.0 knows no chunks: the body ends when the connection does */
    bool close = r->close || !r->keep_alive;
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n%sCache-Control: no-cache\r\n%s\r\n",
                     ctype, r->http10 ? "" : "Transfer-Encoding: chunked\r\n",
                     close ? "Connection: close\r\n" : "");
    r->streaming = true;
    if (buf_append(&r->resp, head, (size_t)n) != 0)
        conn_close_soon(r->hc);
    poke(r);
}

int http_stream_write(struct http_req *r, const char *data, size_t len)
{
    char size[24];
    int n = snprintf(size, sizeof size, "%zx\r\n", len);
    if (!len)
        return 0;
    if (r->http10
            ? buf_append(&r->resp, data, len) != 0
            : buf_append(&r->resp, size, (size_t)n) != 0 || buf_append(&r->resp, data, len) != 0 ||
                  buf_append(&r->resp, "\r\n", 2) != 0) {
        log_warn("http %s: no memory for a streamed answer: closing", r->hc->peer);
        conn_close_soon(r->hc);
        return -1;
    }
    poke(r);
    return 0;
}

void http_stream_end(struct http_req *r)
{
    if (!r->http10 && buf_append(&r->resp, "0\r\n\r\n", 5) != 0)
        r->close = true;
    r->done = true;
    poke(r);
}

void http_stream_abort(struct http_req *r)
{
    log_info("http %s: a streamed answer was cut off (its client did not read it)", r->hc->peer);
    conn_close_soon(r->hc);
}

size_t http_stream_unsent(const struct http_req *r)
{
    return r->resp.len + unsent(r->hc);
}

void http_poke(struct http_req *r)
{
    poke(r);
}

/* --- request helpers -------------------------------------------------------------------------- */

int http_json_body(struct http_req *r, skiff_value **out, skiff_error *err)
{
    size_t max = r->body.max / HTTP_BYTES_PER_VALUE;
    if (max < 1024)
        max = 1024;
    if (codec_json_values(r->body.data, r->body.len, max) > max)
        return skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                               "the JSON body holds more than %zu values (the decoding limit of "
                               "this endpoint: one per %d bytes of its body limit)",
                               max, HTTP_BYTES_PER_VALUE);
    return skiff_value_from_json(r->body.data, r->body.len, out, err);
}

struct auth_token *http_token(struct http_req *r)
{
    if (!r->token_id[0] && !r->token_secret[0] && r->cookie[0]) {
        struct auth_token *t = http_dash_session_token(r);
        if (t)
            return t;
    }
    if (!r->token_id[0] || !r->token_secret[0]) {
        http_respond_error(r, 401, "AuthError",
                           "no token: send the headers X-Skiff-Token-Id and X-Skiff-Token-Secret",
                           NULL);
        return NULL;
    }
    const char *why;
    struct auth_token *t = auth_login(r->token_id, r->token_secret, &why);
    if (!t) {
        char where[96];
        snprintf(where, sizeof where, "http %s", r->hc->peer);
        auth_log_refused(where, r->token_id, why);
        char msg[160];
        snprintf(msg, sizeof msg, "the token was refused: it %s", why);
        http_respond_error(r, 401, "AuthError", msg, NULL);
    }
    return t;
}

bool http_check_token(struct http_req *r)
{
    struct auth_token *t = http_token(r);
    auth_release(t);
    return t != NULL;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

char *http_decode(const char *s, size_t n, bool plus)
{
    char *out = mem_alloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                mem_free(out);
                return NULL;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (plus && s[i] == '+') {
            out[o++] = ' ';
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

bool http_query_get(const struct http_req *r, const char *name, char *out, size_t size)
{
    size_t nlen = strlen(name);
    for (const char *p = r->query; *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        if (klen == nlen && !memcmp(p, name, nlen)) {
            char *v = eq ? http_decode(eq + 1, len - klen - 1, true) : mem_strdup("");
            bool ok = v && strlen(v) < size;
            if (ok)
                memcpy(out, v, strlen(v) + 1);
            mem_free(v);
            return ok;
        }
        p += len + (amp ? 1 : 0);
    }
    return false;
}

/* --- module ----------------------------------------------------------------------------------- */

/* The parser's callbacks and the connection list (tests/fuzz/fuzz_http.c calls it too). */
static void settings_init(void)
{
    list_init(&all_conns);
    list_init(&poked);
    memset(&settings, 0, sizeof settings);
    settings.on_message_begin = on_message_begin;
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
}

int http_start(uv_loop_t *l, const struct http_options *o)
{
    loop = l;
    opts = *o;
    if (!opts.max_conns)
        opts.max_conns = 1024;
    snprintf(addr_copy, sizeof addr_copy, "%s", o->addr);
    opts.addr = addr_copy;
    settings_init();
    uv_idle_init(loop, &poke_idle);

    char host[256];
    const char *colon = strrchr(addr_copy, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == addr_copy || *end || port < 0 || port > 65535 ||
        (size_t)(colon - addr_copy) >= sizeof host) {
        log_error("--http wants HOST:PORT, not '%s'", addr_copy);
        return UV_EINVAL;
    }
    memcpy(host, addr_copy, (size_t)(colon - addr_copy));
    host[colon - addr_copy] = '\0';
    struct sockaddr_in sa;
    int rc = uv_ip4_addr(host, (int)port, &sa);
    if (rc < 0) {
        log_error("--http wants an IPv4 HOST:PORT, not '%s'", addr_copy);
        return rc;
    }
    uv_tcp_init(loop, &listener);
    rc = uv_tcp_bind(&listener, (const struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&listener, 511, on_connection);
    if (rc < 0) {
        log_error("cannot serve HTTP on %s: %s", addr_copy, uv_strerror(rc));
        uv_close((uv_handle_t *)&listener, NULL);
        return rc;
    }
    listening = true;
    log_info("HTTP on %s (web endpoints under /web/, the JSON API under /api/v1/)", addr_copy);
    return 0;
}

void http_close(void)
{
    if (!listening)
        return;
    listening = false;
    uv_close((uv_handle_t *)&listener, NULL);
    uv_close((uv_handle_t *)&poke_idle, NULL);
    while (!list_empty(&all_conns))
        conn_close(container_of(all_conns.next, struct http_conn, all_link));
    http_web_close();
    http_dash_close();
}
