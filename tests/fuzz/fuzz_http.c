/*
 * fuzz_http.c - fuzz target for skiffd's HTTP request path (src/server/http.c), without a socket.
 *
 * The server's own http.c is compiled into this file, so the bytes go through exactly its
 * parser callbacks, limits (headers, per-endpoint bodies by Content-Length and chunked, 431,
 * 413, 400), pipelining queue and pause/resume, target splitting and routing, the answer and
 * error builders, query and percent decoding. Only what lies beyond the HTTP layer is stubbed:
 * the route handlers (which answer at once, later or never, decode the query and the JSON body
 * as the real ones do, or answer a msgpack body as a result payload), the token check and the
 * calls module. A connection is one end of a socketpair (no network); the other end is drained
 * and discarded after each read, so answers are written and pipelining goes on.
 *
 * Input: the first byte chooses how the rest is cut into reads (1 to 16 pieces); the rest is
 * what a client sends. Built with libFuzzer by scripts/fuzz.sh, or with tests/fuzz/replay.c to
 * replay the corpus in the test run.
 */
#include "server/http.c"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* --- stubs of what lies beyond the HTTP layer --------------------------------------------------
 */

/* One token, tk-fuzz:sesame; a login returns a dummy reference. */
static int fuzz_token;

struct auth_token *auth_login(const char *id, const char *secret, const char **why)
{
    if (!strcmp(id, "tk-fuzz") && !strcmp(secret, "sesame"))
        return (struct auth_token *)&fuzz_token;
    *why = "is unknown or its secret is wrong";
    return NULL;
}

void auth_release(struct auth_token *t)
{
    (void)t;
}

void auth_log_refused(const char *where, const char *id, const char *why)
{
    (void)where;
    (void)id;
    (void)why;
}

void calls_listener_gone(struct call_listener *l)
{
    (void)l;
}

bool conn_make_room(void)
{
    return true;
}

size_t http_web_max_body(const char *path)
{
    return !strcmp(path, "/web/small") ? 64 : 0;
}

void http_web_close(void)
{
}

void http_dash_close(void)
{
}

void metrics_http(int status)
{
    (void)status;
}

struct auth_token *http_dash_session_token(struct http_req *r)
{
    (void)r;
    return NULL;
}

void http_dash_handle(struct http_req *r)
{
    http_respond_error(r, 404, "NotFoundError", "no such path", NULL);
}

static volatile unsigned read_sink;

/* Requests left unanswered by a handler ("wait" in the path): answered at the end, in reverse. */
static struct http_req *waiting[HTTP_PIPELINE + 1];
static size_t n_waiting;

static void gone(struct http_req *r)
{
    for (size_t i = 0; i < n_waiting; i++)
        if (waiting[i] == r)
            waiting[i] = waiting[--n_waiting];
}

void http_web_handle(struct http_req *r)
{
    char name[64];
    if (strstr(r->path, "wait") && n_waiting < HTTP_PIPELINE) {
        r->on_gone = gone;
        waiting[n_waiting++] = r;
        return;
    }
    if (http_query_get(r, "name", name, sizeof name))
        read_sink += (unsigned char)name[0]; /* the read is kept */
    skiff_value *v = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    if (r->body.len && http_json_body(r, &v, &err) != SKIFF_OK) {
        http_respond_skiff(r, &err);
        skiff_error_clear(&err);
        return;
    }
    skiff_value_free(v);
    if (!http_check_token(r))
        return;
    http_respond_json(r, 200, "{}");
}

void http_api_handle(struct http_req *r)
{
    /* The body as a result payload (msgpack), as a finished call's answer is sent. */
    http_respond_payload(r, 200, strstr(r->path, "key") ? "result" : NULL, r->body.data,
                         r->body.len, strstr(r->path, "prefix") ? "\"call_id\":\"fc-x\"," : NULL);
}

/* --- driver ------------------------------------------------------------------------------------
 */

static bool ready;

/* True while the input's connection is open (it is the only one; closing unlinks it). */
static bool alive(void)
{
    return !list_empty(&all_conns);
}

/* Lets the loop finish writes, and discards what reached the client's end. */
static void drain(int fd)
{
    char sink[65536];
    for (int i = 0; i < 64; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        if (read(fd, sink, sizeof sink) <= 0)
            break;
    }
}

static void setup(void)
{
    log_set_level(LOG_ERROR); /* 413s and 408s are logged at info: not news here */
    loop = uv_default_loop();
    opts.addr = "127.0.0.1:0";
    opts.request_timeout = 30;
    opts.web_limit = 150;
    opts.body_max = 4096;
    opts.payload_max = 8192;
    opts.max_conns = 8;
    settings_init();
    ready = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready)
        setup();
    if (size < 1)
        return 0;
    size_t pieces = (data[0] & 15) + 1;
    data++;
    size--;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        return 0;
    struct http_conn *hc = conn_new();
    if (!hc) {
        close(sv[0]);
        close(sv[1]);
        return 0;
    }
    uv_tcp_open(&hc->tcp, sv[0]);
    snprintf(hc->peer, sizeof hc->peer, "fuzz");
    n_waiting = 0;
    size_t step = size / pieces + 1, off = 0;
    /* The loop frees a closed conn (drain runs it): alive says whether hc is still there. */
    while (off < size && alive()) {
        size_t n = size - off < step ? size - off : step;
        /* Each read gets its own exact-size copy, so reads past it are caught. */
        char *chunk = mem_alloc(n);
        if (!chunk)
            break;
        memcpy(chunk, data + off, n);
        if (!hc->stop && !hc->paused)
            parse(hc, chunk, n);
        else if (hc->paused)
            resume(hc);
        mem_free(chunk);
        off += n;
        drain(sv[1]);
    }
    /* Late answers, newest first (so earlier ones wait behind), then the connection goes. */
    while (n_waiting && alive()) {
        struct http_req *r = waiting[--n_waiting];
        r->on_gone = NULL;
        http_respond_json(r, 200, "{\"late\":true}");
    }
    n_waiting = 0;
    drain(sv[1]);
    if (alive())
        conn_close(hc);
    uv_run(loop, UV_RUN_NOWAIT);
    close(sv[1]);
    return 0;
}
