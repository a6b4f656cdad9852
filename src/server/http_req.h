/*
 * http_req.h - one HTTP request as the route handlers (http_web.c, http_api.c) see it, and how
 * they answer it. Internal to the HTTP modules.
 *
 * http.c parses a request completely (headers and body, within the limits) before it hands it
 * to a handler, so a handler sees the method, the decoded path and query, the token headers and
 * the body. A handler answers exactly once with http_respond (or one of its helpers), at once or
 * later from a calls.c listener callback; http.c sends answers in request order. If the client
 * goes away first, http.c calls the request's on_gone (if set), tells calls.c
 * (calls_listener_gone on its listener) and frees it: a handler keeps no pointer to a request
 * past its on_gone.
 */
#ifndef SKIFF_SERVER_HTTP_REQ_H
#define SKIFF_SERVER_HTTP_REQ_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "calls.h"
#include "common/buf.h"
#include "common/id.h"
#include "common/list.h"

struct auth_token;
struct http_conn;

struct http_req {
    struct http_conn *hc;
    enum http_method method;
    struct buf url;     /* the request target as sent, NUL-terminated once complete */
    char *path;         /* decoded path (owned), set before the handler runs */
    char *query;        /* the raw query string (owned, may be ""), set before the handler */
    struct buf body;    /* the request body (capped at the server's body limit) */
    char token_id[128]; /* X-Skiff-Token-Id, or "" */
    char token_secret[128];
    char expect[128];        /* the Expect header, or "" */
    char content_type[128];  /* the Content-Type header, or "" (raw web endpoints see it) */
    char authorization[128]; /* the Authorization header ("Bearer ID:SECRET"), or "" */
    char cookie[512];        /* the Cookie header, or "" (the dashboard's session) */
    char csrf[128];          /* X-Skiff-CSRF (the dashboard's actions), or "" */
    bool keep_alive;         /* the client wants the connection kept */
    bool trusted;     /* carries a valid token (checked with the headers, for the body limit) */
    bool done;        /* answered: resp holds the bytes to send */
    bool dispatching; /* its handler is running: not freed until it returns, even if answered */
    bool streaming;   /* http_stream_begin'd: resp holds the chunks not yet sent */
    bool http10;      /* an HTTP/1.0 request: a stream is sent as it is, ended by closing */
    bool close;       /* close the connection after this answer */
    struct buf resp;
    /* handler state */
    struct call_listener listener;
    char call_id[ID_SIZE];
    int phase; /* the handler's own step */
    /* Called when the request is freed unanswered (the client went away), after which the
     * handler must forget it; NULL: nothing to do beyond calls_listener_gone(&listener). */
    void (*on_gone)(struct http_req *r);
    /* Streams: called on a later turn of the loop after http_poke, and when bytes of the
     * connection's output left (so a stream may make more); not after the stream ended. */
    void (*on_drain)(struct http_req *r);
    /* Called when the request is freed, answered or not (the handler frees its data). */
    void (*on_free)(struct http_req *r);
    void *handler_data;
    struct list_node poke_link; /* on http.c's list of streams to flush */
    struct list_node wait_link; /* the handler's own list (web result waiters) */
    struct list_node link;      /* in the connection's queue, in request order */
};

/* The server's settings (http.c). */
double http_web_limit(void);
uv_loop_t *http_loop(void);
const char *http_addr(void);

/* Answers r with status, content type and body; extra_headers ("Name: value\r\n"...) or NULL.
 * Out of memory: the connection is closed instead. */
void http_respond(struct http_req *r, int status, const char *ctype, const char *body, size_t len,
                  const char *extra_headers);
/* Starts an endless answer to r (server-sent events: status 200, content type ctype, no
 * length): its head goes out now, http_events_send adds to it, and the connection closes after
 * it (no request after r on the connection is read). It ends when the client goes away (on_gone)
 * or with http_events_end. false when it could not start (out of memory): r is answered and
 * freed. (The JSON API's NDJSON streams, which end, are http_stream_* below.) */
bool http_events_begin(struct http_req *r, const char *ctype);
/* Sends n more bytes of r's endless answer. false (nothing sent) while the client has not taken
 * what was sent before (over HTTP_OUT_HIGH unsent): a slow reader misses events. */
bool http_events_send(struct http_req *r, const char *p, size_t n);
/* Ends r's endless answer: the connection closes once it is sent. */
void http_events_end(struct http_req *r);
/* Answers with a JSON body (a NUL-terminated text). */
void http_respond_json(struct http_req *r, int status, const char *json);
/* Answers with the error body {"error": {"type", "message", "traceback"?}} and status. */
void http_respond_error(struct http_req *r, int status, const char *type, const char *message,
                        const char *traceback);
/* The same with extra headers (as for http_respond). */
void http_respond_error_with(struct http_req *r, int status, const char *type, const char *message,
                             const char *traceback, const char *extra_headers);
/* Appends `{"error":{"type","message","traceback"?}` to b, leaving the outer object open (the
 * caller adds members or "}"). 0 or a buf error. */
int http_error_json(struct buf *b, const char *type, const char *message, const char *traceback);
/* Answers with err, its code mapped to a status (docs/http-api.md, "Errors"). */
void http_respond_skiff(struct http_req *r, const skiff_error *err);
/* The HTTP status of an error code. */
int http_status_of(skiff_code code);
/* Answers with the JSON of a result payload (msgpack of one value) under key (NULL: the value
 * itself is the body), after the fields of prefix (a JSON object's members, or NULL). */
void http_respond_payload(struct http_req *r, int status, const char *key, const char *payload,
                          size_t len, const char *prefix);

/*
 * Streamed answers (NDJSON of the JSON API): a 200 with chunked transfer encoding whose chunks
 * the handler appends as they come. None of these sends or closes synchronously (so they may be
 * called from calls.c callbacks): the bytes leave on a later turn of the loop.
 * http_stream_begin starts the answer (instead of http_respond); http_stream_write appends one
 * chunk (-1 when out of memory: the connection is then closed); http_stream_end ends the answer
 * (r is freed once it is sent; the handler must have let go of calls.c by then);
 * http_stream_abort closes the connection (a client that does not read what it asked for), which
 * frees r as a client that went away does (on_gone, calls_listener_gone); http_stream_unsent
 * says how many bytes of r and its connection wait for the client; http_poke schedules r's
 * on_drain.
 */
void http_stream_begin(struct http_req *r, const char *ctype);
int http_stream_write(struct http_req *r, const char *data, size_t len);
void http_stream_end(struct http_req *r);
void http_stream_abort(struct http_req *r);
size_t http_stream_unsent(const struct http_req *r);
void http_poke(struct http_req *r);
/* Bytes of a stream's answer past which a handler that cannot pause its source cuts it off
 * (http_stream_abort), and below which a handler that can (a map) feeds more work. */
#define HTTP_STREAM_MAX (16u << 20)
#define HTTP_STREAM_LOW (1u << 20)

/* True if r carries a valid token of any scope (X-Skiff-Token-Id / X-Skiff-Token-Secret);
 * otherwise answers 401 AuthError and returns false. */
bool http_check_token(struct http_req *r);
/* The same, keeping the token: a new reference (auth_release it), or NULL after answering
 * 401. */
struct auth_token *http_token(struct http_req *r);
/* Decodes r's JSON body into *out. The body may hold at most one value per
 * HTTP_BYTES_PER_VALUE bytes of its body limit (so that no request's decoding holds the loop
 * for more than a few milliseconds): past it, or when the body is not JSON, an error in err
 * (DeserializationError naming the limit, or InvalidError). */
int http_json_body(struct http_req *r, skiff_value **out, skiff_error *err);
#define HTTP_BYTES_PER_VALUE 64

/* The decoded value of query parameter name into out (size bytes): true if present and it fits. */
bool http_query_get(const struct http_req *r, const char *name, char *out, size_t size);
/* Decodes %XX and (form) '+' of s[0..n) into a new string (owned). NULL when malformed or out of
 * memory. */
char *http_decode(const char *s, size_t n, bool plus);

/* The body limit of web endpoint path ("/web/<label>"): its function's max_body, or 0 when it
 * sets none or no endpoint has that label. */
size_t http_web_max_body(const char *path);

/* Route handlers: answer r (whose path starts with their prefix). */
void http_web_handle(struct http_req *r);
void http_api_handle(struct http_req *r);
/* /metrics, the dashboard (/, /login, /dashboard/...): http_dash.c. */
void http_dash_handle(struct http_req *r);
/* The token of r's dashboard session cookie (a new reference), or NULL: none, expired, or (for
 * a method other than GET and HEAD) without its CSRF header. */
struct auth_token *http_dash_session_token(struct http_req *r);
/* Shutdown of the web module (http_close, after the connections): drops the kept results. */
void http_web_close(void);

#endif
