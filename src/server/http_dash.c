/*
 * http_dash.c - GET /metrics, and the web dashboard: its login, sessions, pages and JSON.
 *
 *   GET  /metrics                     Prometheus text (any token but a container's: the X-Skiff
 *                                     headers or Authorization: Bearer ID:SECRET)
 *   GET  /login?code=C                a one-time code (DASHBOARD_LOGIN) -> session cookie, 303 /
 *   GET  /                            the dashboard (with a session), else the login page
 *   GET  /dashboard/app.js, app.css   its assets (with a session)
 *   GET  /dashboard/api/...           its JSON (with a session, by the session token's scope)
 *   POST /dashboard/api/...           its actions (with a session and its CSRF header)
 *
 * A login code is 32 random bytes in hex, held in memory with the token that asked for it, used
 * once, and good for skiffd's --login-code-ttl seconds (5 minutes by default). It becomes a
 * session: another 32 random bytes in an HttpOnly, SameSite=Strict cookie, a server-side entry
 * holding a reference to the token (so a revoked or expired token ends its sessions) and a CSRF
 * token the page reads from /dashboard/api/session and sends back in X-Skiff-CSRF with every POST.
 * Sessions last DASH_SESSION_S seconds. Without a valid session nothing is served but the login
 * page, which holds no data. The session also stands for a token on the JSON API (/api/v1/, through
 * http_token): the dashboard cancels a call and reads its result and graph there.
 *
 * Live updates: GET /dashboard/events is a server-sent event stream (at most DASH_STREAMS at
 * once) that says every second what the dashboard's figures add up to (calls made, inputs done,
 * containers, backlog, log lines); the page reloads its JSON when that changes. A stream ends
 * when its session does.
 *
 * The assets are files under src/server/dashboard/, compiled in by the Makefile (xxd -i).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "apps.h"
#include "auth.h"
#include "calls.h"
#include "common/id.h"
#include "common/mem.h"
#include "common/prom.h"
#include "container.h"
#include "http.h"
#include "http_req.h"
#include "logs.h"
#include "metrics.h"
#include "sandbox.h"
#include "store.h"

/* The assets (generated from src/server/dashboard/ by xxd -i). */
extern unsigned char index_html[], app_js[], app_css[], login_html[];
extern unsigned int index_html_len, app_js_len, app_css_len, login_html_len;

#define DASH_CODES 64
#define DASH_SESSIONS 256
#define DASH_SESSION_S (12 * 3600)
#define SECRET_HEX 64
#define DASH_STREAMS 64

struct pass {
    char key[SECRET_HEX + 1]; /* the code or the session id; "" when free */
    char csrf[SECRET_HEX + 1];
    struct auth_token *token;
    int64_t expires; /* unix ms */
};

static struct pass codes[DASH_CODES];
static struct pass sessions[DASH_SESSIONS];

/* The event streams: the request and the session key it was opened with. */
struct event_stream {
    struct http_req *r;
    char key[SECRET_HEX + 1];
};
static struct event_stream streams[DASH_STREAMS];
static size_t n_streams;
static uv_timer_t tick;
static bool tick_on;

static const char *const cookie_name = "skiff_session";
static int64_t code_ttl_ms = 300000;

void http_dash_set_code_ttl(double seconds)
{
    code_ttl_ms = (int64_t)(seconds * 1000);
}

static int random_hex(char out[SECRET_HEX + 1])
{
    unsigned char raw[SECRET_HEX / 2];
    if (id_random(raw, sizeof raw) < 0)
        return -1;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

static void pass_clear(struct pass *p)
{
    auth_release(p->token);
    memset(p, 0, sizeof *p);
}

/* A free slot of table (n entries), clearing expired ones; the one expiring first when full. */
static struct pass *pass_slot(struct pass *table, size_t n)
{
    int64_t now = store_now_ms();
    struct pass *oldest = &table[0];
    for (size_t i = 0; i < n; i++) {
        if (table[i].key[0] && (table[i].expires <= now || auth_unusable(table[i].token)))
            pass_clear(&table[i]);
        if (!table[i].key[0])
            return &table[i];
        if (table[i].expires < oldest->expires)
            oldest = &table[i];
    }
    pass_clear(oldest);
    return oldest;
}

/* The live entry of table whose key is key (compared in constant time), or NULL. */
static struct pass *pass_find(struct pass *table, size_t n, const char *key)
{
    if (strlen(key) != SECRET_HEX)
        return NULL;
    int64_t now = store_now_ms();
    for (size_t i = 0; i < n; i++) {
        if (!table[i].key[0])
            continue;
        unsigned char diff = 0;
        for (size_t k = 0; k < SECRET_HEX; k++)
            diff |= (unsigned char)(table[i].key[k] ^ key[k]);
        if (diff)
            continue;
        if (table[i].expires <= now || auth_unusable(table[i].token)) {
            pass_clear(&table[i]);
            return NULL;
        }
        return &table[i];
    }
    return NULL;
}

int http_dash_new_code(struct auth_token *t, char *code, size_t size)
{
    if (size < SECRET_HEX + 1)
        return -1;
    struct pass *p = pass_slot(codes, DASH_CODES);
    if (random_hex(p->key) < 0) {
        p->key[0] = '\0';
        return -1;
    }
    p->token = t;
    p->expires = store_now_ms() + code_ttl_ms;
    memcpy(code, p->key, SECRET_HEX + 1);
    return 0;
}

/* r's session (from its Cookie header), or NULL. */
static struct pass *session_of(struct http_req *r)
{
    char want[32];
    snprintf(want, sizeof want, "%s=", cookie_name);
    for (const char *p = r->cookie; (p = strstr(p, want));) {
        if (p == r->cookie || p[-1] == ' ' || p[-1] == ';') {
            char id[SECRET_HEX + 1];
            size_t n = strcspn(p + strlen(want), "; ");
            if (n != SECRET_HEX)
                return NULL;
            memcpy(id, p + strlen(want), n);
            id[n] = '\0';
            return pass_find(sessions, DASH_SESSIONS, id);
        }
        p += strlen(want);
    }
    return NULL;
}

static bool safe_method(const struct http_req *r)
{
    return r->method == HTTP_GET || r->method == HTTP_HEAD;
}

/* The session's CSRF header matches (constant time). */
static bool csrf_ok(const struct http_req *r, const struct pass *s)
{
    if (strlen(r->csrf) != SECRET_HEX)
        return false;
    unsigned char diff = 0;
    for (size_t k = 0; k < SECRET_HEX; k++)
        diff |= (unsigned char)(s->csrf[k] ^ r->csrf[k]);
    return diff == 0;
}

struct auth_token *http_dash_session_token(struct http_req *r)
{
    struct pass *s = session_of(r);
    if (!s || (!safe_method(r) && !csrf_ok(r, s)))
        return NULL;
    const char *why;
    /* A new reference, as auth_login gives. */
    (void)why;
    return auth_ref(s->token);
}

/* --- answers ---------------------------------------------------------------------------------- */

static const char *const page_headers =
    "Cache-Control: no-store\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "X-Frame-Options: DENY\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "Content-Security-Policy: default-src 'self'; img-src 'self' data:; style-src 'self' "
    "'unsafe-inline'; frame-ancestors 'none'\r\n";

static void login_page(struct http_req *r, int status)
{
    http_respond(r, status, "text/html; charset=utf-8", (const char *)login_html, login_html_len,
                 page_headers);
}

static void json_buf(struct http_req *r, int rc, struct buf *b)
{
    if (rc)
        http_respond_error(r, 503, "MemoryError", "out of memory", NULL);
    else
        http_respond(r, 200, "application/json", b->data, b->len, "Cache-Control: no-store\r\n");
    buf_deinit(b);
}

/* Appends s as a JSON string (or null). */
static int jstr(struct buf *b, const char *s)
{
    return prom_json_string(b, s, s ? strlen(s) : 0);
}

/* --- /metrics --------------------------------------------------------------------------------- */

static void metrics(struct http_req *r)
{
    if (!metrics_enabled()) {
        http_respond_error(r, 404, "NotFoundError", "metrics are off (skiffd --no-metrics)", NULL);
        return;
    }
    struct auth_token *t = http_token(r);
    if (!t)
        return;
    enum auth_scope scope = auth_scope_of(t);
    auth_release(t);
    if (scope < AUTH_CALL) {
        http_respond_error(r, 401, "AuthError", "a container's token may not read /metrics", NULL);
        return;
    }
    struct buf b;
    buf_init(&b, 0);
    if (metrics_render(&b)) {
        buf_deinit(&b);
        http_respond_error(r, 503, "MemoryError", "out of memory writing the metrics", NULL);
        return;
    }
    http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len,
                 "Cache-Control: no-store\r\n");
    buf_deinit(&b);
}

/* --- login ------------------------------------------------------------------------------------ */

static void login(struct http_req *r)
{
    char code[SECRET_HEX + 8];
    struct pass *c =
        http_query_get(r, "code", code, sizeof code) ? pass_find(codes, DASH_CODES, code) : NULL;
    if (!c) {
        login_page(r, 401);
        return;
    }
    struct pass *s = pass_slot(sessions, DASH_SESSIONS);
    if (random_hex(s->key) < 0 || random_hex(s->csrf) < 0) {
        memset(s, 0, sizeof *s);
        http_respond_error(r, 503, "InternalError", "no randomness for a session", NULL);
        return;
    }
    s->token = c->token; /* the code's reference moves to the session */
    c->token = NULL;
    pass_clear(c);
    s->expires = store_now_ms() + DASH_SESSION_S * 1000LL;
    char headers[512];
    snprintf(headers, sizeof headers,
             "Location: /\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n"
             "Set-Cookie: %s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d\r\n",
             cookie_name, s->key, DASH_SESSION_S);
    http_respond(r, 303, "text/plain", "", 0, headers);
}

static void logout(struct http_req *r, struct pass *s)
{
    pass_clear(s);
    char headers[256];
    snprintf(headers, sizeof headers,
             "Set-Cookie: %s=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0\r\n", cookie_name);
    http_respond(r, 200, "application/json", "{}", 2, headers);
}

/* --- live updates ---------------------------------------------------------------------------- */

static void stream_gone(struct http_req *r)
{
    for (size_t i = 0; i < n_streams; i++)
        if (streams[i].r == r) {
            streams[i] = streams[--n_streams];
            break;
        }
    if (!n_streams && tick_on)
        uv_timer_stop(&tick);
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
    struct buf b;
    buf_init(&b, 0);
    int rc = buf_append(&b, "data: ", 6);
    rc = rc ? rc : metrics_summary_json(&b);
    if (!rc && b.len && b.data[b.len - 1] == '}') {
        b.len--;
        rc = prom_printf(&b, ",\"logs\":%lld}\n\n", (long long)logs_seq());
    }
    for (size_t i = n_streams; i-- > 0;) {
        struct http_req *r = streams[i].r;
        if (!pass_find(sessions, DASH_SESSIONS, streams[i].key)) { /* the session ended */
            stream_gone(r);
            r->on_gone = NULL;
            http_events_end(r);
        } else if (!rc) {
            http_events_send(r, b.data, b.len);
        }
    }
    buf_deinit(&b);
}

static void events(struct http_req *r, const struct pass *s)
{
    if (n_streams >= DASH_STREAMS) {
        http_respond_error(r, 503, "ResourceExhaustedError", "too many dashboard event streams",
                           NULL);
        return;
    }
    if (!tick_on) {
        uv_timer_init(http_loop(), &tick);
        tick_on = true;
    }
    if (!http_events_begin(r, "text/event-stream"))
        return; /* answered (and closed) already */
    if (!n_streams)
        uv_timer_start(&tick, on_tick, 1000, 1000);
    streams[n_streams].r = r;
    memcpy(streams[n_streams].key, s->key, sizeof streams[n_streams].key);
    n_streams++;
    r->on_gone = stream_gone;
    http_events_send(r, "retry: 2000\n\n", 13);
    on_tick(NULL);
}

/* --- the JSON ----------------------------------------------------------------------------------
 */

static bool need_scope(struct http_req *r, const struct pass *s, enum auth_scope want)
{
    if (auth_scope_of(s->token) >= want)
        return true;
    char msg[160];
    snprintf(msg, sizeof msg,
             "permission denied: this needs a token of scope %s; the session's "
             "token has scope %s",
             auth_scope_name(want), auth_scope_name(auth_scope_of(s->token)));
    http_respond_error(r, 403, "AuthError", msg, NULL);
    return false;
}

static const char *kind_of(const struct function *f)
{
    return f->is_class        ? "class"
           : f->cfg.web       ? "web"
           : f->cfg.generator ? "generator"
           : f->cls           ? "method"
                              : "function";
}

static void api_apps(struct http_req *r)
{
    struct buf b;
    buf_init(&b, 0);
    int rc = buf_append(&b, "{\"apps\":[", 9);
    bool first = true;
    for (struct app *a = apps_next(NULL); a && !rc; a = apps_next(a)) {
        rc = prom_printf(&b, "%s{\"app_id\":\"%s\",\"name\":", first ? "" : ",", a->id);
        first = false;
        rc = rc ? rc : jstr(&b, a->name);
        rc = rc ? rc
                : prom_printf(&b,
                              ",\"state\":\"%s\",\"version\":%d,\"created\":%lld,"
                              "\"functions\":[",
                              a->stopped ? "stopped" : "deployed", a->version,
                              (long long)a->created);
        bool ffirst = true;
        struct list_node *n, *t;
        list_for_each_safe(n, t, &a->functions)
        {
            struct function *f = container_of(n, struct function, app_link);
            if (!f->live || rc)
                continue;
            char url[512];
            rc = prom_printf(&b, "%s{\"name\":", ffirst ? "" : ",");
            ffirst = false;
            rc = rc ? rc : jstr(&b, f->name);
            rc = rc ? rc : prom_printf(&b, ",\"kind\":\"%s\",\"web_url\":", kind_of(f));
            rc = rc ? rc : jstr(&b, http_web_url(f, url, sizeof url) ? url : NULL);
            rc = rc ? rc
                    : prom_printf(&b, ",\"max_containers\":%d,\"timeout\":%g}",
                                  f->cfg.max_containers, f->cfg.timeout);
        }
        rc = rc ? rc : buf_append(&b, "]}", 2);
    }
    rc = rc ? rc : buf_append(&b, "]}", 2);
    json_buf(r, rc, &b);
}

static void api_function(struct http_req *r)
{
    char app[256], name[256];
    struct function *f = NULL;
    if (http_query_get(r, "app", app, sizeof app) &&
        http_query_get(r, "function", name, sizeof name))
        f = apps_lookup(app, name);
    if (!f) {
        struct app *a = apps_find(app);
        struct list_node *n, *t;
        if (a)
            list_for_each_safe(n, t, &a->functions)
            {
                struct function *g = container_of(n, struct function, app_link);
                if (g->live && !strcmp(g->name, name))
                    f = g;
            }
    }
    if (!f) {
        http_respond_error(r, 404, "NotFoundError", "no such function", NULL);
        return;
    }
    struct buf b;
    buf_init(&b, 0);
    json_buf(r, metrics_function_json(f, &b), &b);
}

static void api_containers(struct http_req *r)
{
    struct buf b;
    buf_init(&b, 0);
    int rc = buf_append(&b, "{\"containers\":[", 15);
    bool first = true;
    for (struct container *ct = container_next(NULL); ct && !rc; ct = container_next(ct)) {
        const struct function *owner = apps_owner(ct->fn);
        long long mem, cpu;
        sandbox_usage(ct->sandbox, &mem, &cpu);
        rc = prom_printf(&b, "%s{\"container_id\":\"%s\",\"app\":", first ? "" : ",", ct->id);
        first = false;
        rc = rc ? rc : jstr(&b, ct->fn->app->name);
        rc = rc ? rc : buf_append(&b, ",\"function\":", 12);
        rc = rc ? rc : jstr(&b, owner->name);
        rc = rc ? rc : buf_append(&b, ",\"params\":", 10);
        rc = rc ? rc : jstr(&b, ct->fn->params_key);
        rc = rc ? rc
                : prom_printf(&b,
                              ",\"state\":\"%s\",\"version\":%d,\"pid\":%d,\"inputs\":%d,"
                              "\"started\":%lld,\"sandboxed\":%s,\"forked\":%s,"
                              "\"memory_bytes\":%lld,\"cpu_seconds\":%.3f}",
                              container_state_name(ct->state), ct->version, ct->pid, ct->n_held,
                              (long long)ct->started / 1000, ct->sandboxed ? "true" : "false",
                              ct->forked ? "true" : "false", mem, cpu < 0 ? -1 : cpu / 1e6);
    }
    rc = rc ? rc : buf_append(&b, "]}", 2);
    json_buf(r, rc, &b);
}

static void api_calls(struct http_req *r)
{
    char app[256] = "", fn[256] = "", status[32] = "", call[ID_SIZE + 8] = "";
    http_query_get(r, "call_id", call, sizeof call);
    http_query_get(r, "app", app, sizeof app);
    http_query_get(r, "function", fn, sizeof fn);
    http_query_get(r, "status", status, sizeof status);
    struct buf b;
    buf_init(&b, 0);
    json_buf(r, metrics_calls_json(&b, app, fn, status, call), &b);
}

/* GET /dashboard/api/logs?app=A[&input=IN][&tail=N]: the app's last lines (default 200). */
static void api_logs(struct http_req *r)
{
    char app[256] = "", input[ID_SIZE + 8] = "", tail[16] = "";
    if (!http_query_get(r, "app", app, sizeof app) || !apps_find(app)) {
        http_respond_error(r, 404, "NotFoundError", "no such app", NULL);
        return;
    }
    http_query_get(r, "input", input, sizeof input);
    long n = http_query_get(r, "tail", tail, sizeof tail) ? strtol(tail, NULL, 10) : 200;
    struct buf b;
    buf_init(&b, 0);
    json_buf(r, logs_json(&b, app, input, n > 0 && n <= 5000 ? (size_t)n : 200), &b);
}

static void api_tokens(struct http_req *r)
{
    size_t n;
    struct auth_info *all = auth_list(&n);
    struct buf b;
    buf_init(&b, 0);
    int rc = buf_append(&b, "{\"tokens\":[", 11);
    for (size_t i = 0; i < n && !rc; i++)
        rc = prom_printf(&b,
                         "%s{\"token_id\":\"%s\",\"scope\":\"%s\",\"created\":%lld,"
                         "\"expires\":%lld,\"last_used\":%lld}",
                         i ? "," : "", all[i].id, auth_scope_name(all[i].scope),
                         (long long)all[i].created, (long long)(all[i].expires / 1000),
                         (long long)all[i].last_used);
    mem_free(all);
    rc = rc ? rc : buf_append(&b, "]}", 2);
    json_buf(r, rc, &b);
}

static void api_session(struct http_req *r, const struct pass *s)
{
    char body[256];
    snprintf(body, sizeof body, "{\"csrf\":\"%s\",\"scope\":\"%s\",\"token_id\":\"%s\"}", s->csrf,
             auth_scope_name(auth_scope_of(s->token)), auth_id(s->token));
    http_respond(r, 200, "application/json", body, strlen(body), "Cache-Control: no-store\r\n");
}

/* POST /dashboard/api/apps/<name>/stop and /dashboard/api/tokens/<id>/revoke. */
static void action(struct http_req *r, struct pass *s, const char *rest)
{
    char what[16], name[ID_SIZE + 64];
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : 0;
    const char *verb = slash ? strchr(slash + 1, '/') : NULL;
    if (!slash || n >= sizeof what || !verb || (size_t)(verb - slash - 1) >= sizeof name) {
        http_respond_error(r, 404, "NotFoundError", "no such action", NULL);
        return;
    }
    memcpy(what, rest, n);
    what[n] = '\0';
    memcpy(name, slash + 1, (size_t)(verb - slash - 1));
    name[verb - slash - 1] = '\0';
    verb++;
    if (!strcmp(what, "apps") && !strcmp(verb, "stop")) {
        if (!need_scope(r, s, AUTH_DEPLOY))
            return;
        if (apps_stop(name) < 0)
            http_respond_error(r, 404, "NotFoundError", "no such app", NULL);
        else
            http_respond_json(r, 200, "{\"stopped\":true}");
    } else if (!strcmp(what, "tokens") && !strcmp(verb, "revoke")) {
        if (!need_scope(r, s, AUTH_ADMIN))
            return;
        int rc = id_valid(name, "tk") ? auth_revoke_id(name) : -1;
        if (rc == -1)
            http_respond_error(r, 404, "NotFoundError", "there is no such token", NULL);
        else if (rc == -2)
            http_respond_error(r, 400, "InvalidError",
                               "that is the last admin token: make another first", NULL);
        else if (rc < 0)
            http_respond_error(r, 500, "InternalError", "the token could not be revoked", NULL);
        else
            http_respond_json(r, 200, "{\"revoked\":true}");
    } else {
        http_respond_error(r, 404, "NotFoundError", "no such action", NULL);
    }
}

static void api(struct http_req *r, struct pass *s, const char *what)
{
    if (!safe_method(r)) {
        if (r->method != HTTP_POST) {
            http_respond_error(r, 405, "InvalidError", "use GET or POST", NULL);
            return;
        }
        if (!csrf_ok(r, s)) {
            http_respond_error(r, 403, "AuthError",
                               "missing or wrong X-Skiff-CSRF header (cross-site request refused)",
                               NULL);
            return;
        }
        if (!strcmp(what, "logout"))
            logout(r, s);
        else
            action(r, s, what);
        return;
    }
    /* Each route answers once; r may be freed by then, so nothing is read after. */
    static const struct {
        const char *name;
        enum auth_scope scope;
        void (*fn)(struct http_req *r);
    } routes[] = {
        {"calls", AUTH_CALL, api_calls},         {"apps", AUTH_DEPLOY, api_apps},
        {"function", AUTH_DEPLOY, api_function}, {"containers", AUTH_DEPLOY, api_containers},
        {"logs", AUTH_DEPLOY, api_logs},         {"tokens", AUTH_ADMIN, api_tokens},
    };
    if (!strcmp(what, "session")) {
        api_session(r, s);
        return;
    }
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (!strcmp(what, routes[i].name)) {
            if (need_scope(r, s, routes[i].scope))
                routes[i].fn(r);
            return;
        }
    http_respond_error(r, 404, "NotFoundError", "no such dashboard endpoint", NULL);
}

void http_dash_handle(struct http_req *r)
{
    if (!strcmp(r->path, "/metrics")) {
        metrics(r);
        return;
    }
    if (!strcmp(r->path, "/login")) {
        login(r);
        return;
    }
    struct pass *s = session_of(r);
    bool page = !strcmp(r->path, "/") || !strcmp(r->path, "/index.html");
    if (!s) {
        if (page)
            login_page(r, 200);
        else if (!strncmp(r->path, "/dashboard/", 11))
            http_respond_error(r, 401, "AuthError",
                               "no dashboard session: run `skiff dashboard` for a login URL", NULL);
        else
            http_respond_error(r, 404, "NotFoundError",
                               "no such path: web endpoints are under /web/, the JSON API under "
                               "/api/v1/, the dashboard at /",
                               NULL);
        return;
    }
    if (page)
        http_respond(r, 200, "text/html; charset=utf-8", (const char *)index_html, index_html_len,
                     page_headers);
    else if (!strcmp(r->path, "/dashboard/app.js"))
        http_respond(r, 200, "text/javascript; charset=utf-8", (const char *)app_js, app_js_len,
                     page_headers);
    else if (!strcmp(r->path, "/dashboard/app.css"))
        http_respond(r, 200, "text/css; charset=utf-8", (const char *)app_css, app_css_len,
                     page_headers);
    else if (!strncmp(r->path, "/dashboard/api/", 15))
        api(r, s, r->path + 15);
    else if (!strcmp(r->path, "/dashboard/events") && safe_method(r))
        events(r, s);
    else
        http_respond_error(r, 404, "NotFoundError", "no such path", NULL);
}

void http_dash_close(void)
{
    n_streams = 0; /* their connections were closed first */
    if (tick_on) {
        tick_on = false;
        uv_close((uv_handle_t *)&tick, NULL);
    }
    for (size_t i = 0; i < DASH_CODES; i++)
        pass_clear(&codes[i]);
    for (size_t i = 0; i < DASH_SESSIONS; i++)
        pass_clear(&sessions[i]);
}
