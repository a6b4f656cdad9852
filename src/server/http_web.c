/*
 * http_web.c - web endpoints: labels, URLs, and serving /web/<label> (docs/http-api.md).
 *
 * A function deployed with `web` is a web endpoint at http://<--http>/web/<label>. Its label is
 * its own (checked at deploy: 1-63 of [a-z0-9-]) or the default <app>-<function>, lowercased,
 * every character outside [a-z0-9-] turned into '-'; a default over 63 characters is cut to 56
 * and given "-" plus the first 6 hex digits of the SHA-256 of the whole default label, so that
 * long names stay distinct (modal-semantics.md, "Web endpoints"). Two live endpoints never share a
 * label: DEPLOY refuses it (http_check_labels). Labels are found by a scan over the live
 * functions: deployments hold few of them, and a scan needs no index to keep in step.
 *
 * A request becomes a call held in memory, like `remote` (web traffic leaves nothing on disk):
 * the query parameters and the members of a JSON object body are its keyword arguments (query
 * values typed by the function's signature: int, float and bool parameters parse their text).
 * The handler waits up to the web limit (skiffd --web-limit, default 150 s) and answers the
 * result as JSON, or the failure as a JSON error. Past the limit it answers 303 to
 * /web-result/<call_id> and a keeper (below) takes the call over: the result URL waits until
 * the call ends and can be reloaded for KEEP_MS after, without starting a new call. A client
 * that goes away before the limit is treated like a disconnected `remote` caller.
 */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "apps.h"
#include "calls.h"
#include "common/codec.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/signature.h"
#include "common/value.h"
#include "http.h"
#include "http_req.h"
#include "common/hmap.h"

/* The default label cut: 56 characters, a dash, 6 hex digits = 63. */
#define LABEL_CUT 56

enum { WEB_STARTING = 1, WEB_WAITING };

/* --- labels ----------------------------------------------------------------------------------- */

void http_label(const char *app, const char *function, const char *label,
                char out[HTTP_LABEL_MAX + 1])
{
    if (label && *label) {
        snprintf(out, HTTP_LABEL_MAX + 1, "%s", label);
        return;
    }
    char full[2 * 64 + 2];
    snprintf(full, sizeof full, "%s-%s", app, function);
    size_t n = strlen(full);
    for (size_t i = 0; i < n; i++) {
        char c = full[i];
        if (c >= 'A' && c <= 'Z')
            full[i] = (char)(c - 'A' + 'a');
        else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            full[i] = '-';
    }
    if (n <= HTTP_LABEL_MAX) {
        memcpy(out, full, n + 1);
        return;
    }
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)full, n, md);
    snprintf(out, HTTP_LABEL_MAX + 1, "%.*s-%02x%02x%02x", LABEL_CUT, full, md[0], md[1], md[2]);
}

static void fn_label(const struct function *fn, char out[HTTP_LABEL_MAX + 1])
{
    http_label(fn->app->name, fn->name, fn->cfg.web_label, out);
}

bool http_web_url(const struct function *fn, char *out, size_t size)
{
    const char *addr = http_addr();
    if (!fn->cfg.web || !addr)
        return false;
    char label[HTTP_LABEL_MAX + 1];
    fn_label(fn, label);
    snprintf(out, size, "http://%s/web/%s", addr, label);
    return true;
}

static bool label_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > HTTP_LABEL_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

/* The live web endpoint labelled label, or NULL. */
static struct function *find_label(const char *label)
{
    char l[HTTP_LABEL_MAX + 1];
    for (struct app *a = apps_next(NULL); a; a = apps_next(a)) {
        if (a->stopped)
            continue;
        struct list_node *n, *t;
        list_for_each_safe(n, t, &a->functions)
        {
            struct function *f = container_of(n, struct function, app_link);
            if (!f->live || !f->cfg.web)
                continue;
            fn_label(f, l);
            if (!strcmp(l, label))
                return f;
        }
    }
    return NULL;
}

const char *http_check_labels(const char *app, const struct deploy_fn *fns, size_t n, char *err,
                              size_t errlen)
{
    char li[HTTP_LABEL_MAX + 1], lj[HTTP_LABEL_MAX + 1];
    for (size_t i = 0; i < n; i++) {
        if (!fns[i].cfg.web || fns[i].is_class)
            continue;
        const char *own = fns[i].cfg.web_label;
        if (own && *own && !label_valid(own)) {
            snprintf(err, errlen,
                     "the web label '%s' of %s is not 1-63 characters of a-z, 0-9 and '-'", own,
                     fns[i].name);
            return err;
        }
        http_label(app, fns[i].name, own, li);
        for (size_t j = 0; j < i; j++) {
            if (!fns[j].cfg.web || fns[j].is_class)
                continue;
            http_label(app, fns[j].name, fns[j].cfg.web_label, lj);
            if (!strcmp(li, lj)) {
                snprintf(err, errlen, "%s and %s both claim the web label '%s'", fns[j].name,
                         fns[i].name, li);
                return err;
            }
        }
        struct function *other = find_label(li);
        if (other && strcmp(other->app->name, app)) {
            snprintf(err, errlen, "the web label '%s' of %s is taken by %s.%s", li, fns[i].name,
                     other->app->name, other->name);
            return err;
        }
    }
    return NULL;
}

/* --- arguments -------------------------------------------------------------------------------- */

/* A query value typed by the parameter it names (text for any other type). NULL when the text
 * does not parse as the type (message in err) or out of memory. */
static skiff_value *typed(const struct signature *sig, const char *name, const char *text,
                          skiff_error *err)
{
    int i = sig ? signature_find(sig, name) : -1;
    enum sig_type t = i >= 0 ? sig->params[i].type : SIG_STR;
    char *end;
    switch (t) {
    case SIG_INT: {
        long long v = strtoll(text, &end, 10);
        if (*text && !*end)
            return skiff_value_int(v);
        break;
    }
    case SIG_FLOAT: {
        double d = strtod(text, &end);
        if (*text && !*end)
            return skiff_value_double(d);
        break;
    }
    case SIG_BOOL:
        if (!strcmp(text, "true") || !strcmp(text, "1"))
            return skiff_value_bool(true);
        if (!strcmp(text, "false") || !strcmp(text, "0"))
            return skiff_value_bool(false);
        break;
    default: {
        skiff_value *v = skiff_value_string(text);
        if (!v)
            skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "query parameter '%s' is not UTF-8",
                            name);
        return v;
    }
    }
    skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "query parameter '%s' must be %s, not '%s'", name,
                    signature_type_name(t), text);
    return NULL;
}

/* The keyword arguments of r for fn: query parameters, then the members of a JSON object body.
 * SKIFF_OK with *out, or an error in err. */
static int web_kwargs(struct http_req *r, const struct signature *sig, skiff_value **out,
                      skiff_error *err)
{
    skiff_value *kw = skiff_value_map();
    if (!kw)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    for (const char *p = r->query; *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        char *k = klen ? http_decode(p, klen, true) : NULL;
        char *v = eq ? http_decode(eq + 1, len - klen - 1, true) : mem_strdup("");
        int rc = SKIFF_OK;
        if (klen && (!k || !v)) {
            rc = skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "malformed query string");
        } else if (klen) {
            if (skiff_map_get(kw, k))
                rc = skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                                     "query parameter '%s' is given twice", k);
            skiff_value *val = rc ? NULL : typed(sig, k, v, err);
            if (!rc && !val)
                rc = err->code ? err->code : SKIFF_ERR_NOMEM;
            if (!rc)
                rc = skiff_map_set(kw, k, val);
        }
        mem_free(k);
        mem_free(v);
        if (rc) {
            skiff_value_free(kw);
            return rc;
        }
        p += len + (amp ? 1 : 0);
    }
    if (r->body.len) {
        skiff_value *body = NULL;
        if (http_json_body(r, &body, err) != SKIFF_OK || skiff_value_type(body) != SKIFF_MAP ||
            value_has_pickle(body)) {
            if (!err->code && value_has_pickle(body))
                skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "%s", VALUE_PICKLE_REFUSED);
            skiff_value_free(body);
            skiff_value_free(kw);
            if (!err->code)
                skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                                "the body must be a JSON object of keyword arguments");
            return err->code;
        }
        for (size_t i = 0; i < skiff_map_len(body); i++) {
            const char *k = skiff_map_key(body, i);
            int rc = SKIFF_OK;
            if (skiff_map_get(kw, k))
                rc = skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                                     "argument '%s' is given twice (query and body)", k);
            else
                rc = skiff_map_set(kw, k, skiff_value_copy(skiff_map_value(body, i)));
            if (rc) {
                if (!err->code)
                    skiff_error_set(err, rc, NULL, "out of memory");
                skiff_value_free(body);
                skiff_value_free(kw);
                return rc;
            }
        }
        skiff_value_free(body);
    }
    *out = kw;
    return SKIFF_OK;
}

/* The argument payload of r for fn into b, checked against fn's signature. */
static int web_args(struct http_req *r, const struct function *fn, struct buf *b, skiff_error *err)
{
    struct signature sig = {0};
    bool have_sig = fn->cfg.signature && signature_parse(&sig, fn->cfg.signature, NULL) == 0;
    skiff_value *kw = NULL, *args = skiff_value_list();
    int rc = args ? web_kwargs(r, have_sig ? &sig : NULL, &kw, err)
                  : skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    if (!rc && have_sig) {
        const skiff_value *bound[SIG_MAX_PARAMS];
        rc = signature_bind(&sig, fn->name, args, kw, bound, err);
        if (rc)
            err->code = SKIFF_ERR_INVALID; /* the request's fault: 400, keeping the TypeError */
    }
    if (!rc && (rc = codec_encode_args(b, args, kw)) != SKIFF_OK)
        skiff_error_set(err, rc, NULL, "cannot encode the arguments");
    skiff_value_free(args);
    skiff_value_free(kw);
    signature_deinit(&sig);
    return rc;
}

/* --- raw endpoints ---------------------------------------------------------------------------- */

/* The one keyword argument of a raw endpoint's call: request = {method, path, query,
 * content_type, body}. SKIFF_OK or a failure in err. */
static int raw_args(struct http_req *r, const char *path, struct buf *b, skiff_error *err)
{
    skiff_value *args = skiff_value_list(), *kw = skiff_value_map(), *req = skiff_value_map();
    bool ok = args && kw && req &&
              skiff_map_set(req, "method", skiff_value_string(http_method_str(r->method))) == 0 &&
              skiff_map_set(req, "path", skiff_value_string(path)) == 0 &&
              skiff_map_set(req, "query", skiff_value_string(r->query ? r->query : "")) == 0 &&
              skiff_map_set(req, "content_type", skiff_value_string(r->content_type)) == 0 &&
              skiff_map_set(req, "body", skiff_value_bytes(r->body.data, r->body.len)) == 0;
    int rc = SKIFF_OK;
    if (!ok || skiff_map_set(kw, "request", req) != 0) {
        req = NULL; /* taken by skiff_map_set, even on failure */
        rc = skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                             "the request cannot be passed on (not UTF-8, or out of memory)");
    } else if ((rc = codec_encode_args(b, args, kw)) != SKIFF_OK) {
        skiff_error_set(err, rc, NULL, "cannot encode the request");
    }
    skiff_value_free(args);
    skiff_value_free(kw);
    return rc;
}

/* Appends "Name: value\r\n" for one response header of a raw endpoint, unless it is one the
 * server writes itself or it could split the answer. */
static void raw_header(struct buf *h, const char *name, const char *value, const char **ctype)
{
    if (!name || !value || strpbrk(name, "\r\n:") || strpbrk(value, "\r\n") || !*name)
        return;
    if (!strcasecmp(name, "content-type")) {
        *ctype = value;
        return;
    }
    if (!strcasecmp(name, "content-length") || !strcasecmp(name, "connection") ||
        !strcasecmp(name, "transfer-encoding"))
        return;
    buf_append(h, name, strlen(name));
    buf_append(h, ": ", 2);
    buf_append(h, value, strlen(value));
    buf_append(h, "\r\n", 2);
}

/* Answers r with a raw endpoint's result {status, headers, body}; a result of another shape is a
 * 502 naming what was wrong. */
static void respond_raw(struct http_req *r, const char *payload, size_t len)
{
    skiff_value *v = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    if (codec_decode_value(payload, len, &v, &err) != SKIFF_OK) {
        http_respond_skiff(r, &err);
        skiff_error_clear(&err);
        return;
    }
    const skiff_value *st = skiff_map_get(v, "status"), *hs = skiff_map_get(v, "headers");
    const skiff_value *body = skiff_map_get(v, "body");
    int64_t status = skiff_value_get_int(st);
    size_t blen = 0;
    const char *bp = skiff_value_type(body) == SKIFF_BYTES ? skiff_value_get_bytes(body, &blen)
                                                           : skiff_value_get_string(body, &blen);
    if (skiff_value_type(st) != SKIFF_INT || status < 100 || status > 599 ||
        (hs && skiff_value_type(hs) != SKIFF_LIST) || (body && !bp)) {
        http_respond_error(r, 502, "InvalidError",
                           "a raw web endpoint must return {\"status\": 100-599, \"headers\": "
                           "[[name, value], ...], \"body\": bytes or str}",
                           NULL);
        skiff_value_free(v);
        return;
    }
    struct buf h;
    buf_init(&h, 0);
    const char *ctype = "application/octet-stream";
    for (size_t i = 0; i < skiff_list_len(hs); i++) {
        const skiff_value *pair = skiff_list_get(hs, i);
        raw_header(&h, skiff_value_get_string(skiff_list_get(pair, 0), NULL),
                   skiff_value_get_string(skiff_list_get(pair, 1), NULL), &ctype);
    }
    buf_append(&h, "", 1);
    http_respond(r, (int)status, ctype, bp ? bp : "", blen, h.data);
    buf_deinit(&h);
    skiff_value_free(v);
}

/* --- serving ---------------------------------------------------------------------------------- */

/*
 * A keeper owns the call of one web request. Before the web limit it answers that request with
 * the outcome and goes. Past the limit it answers 303, enters `kept` under the call id, and
 * stays: result URL requests wait on it until the call ends, then read its copy of the outcome
 * until KEEP_MS after the end.
 */
struct keeper {
    struct call_listener listener; /* owns the call */
    char call_id[ID_SIZE];
    struct http_req *req; /* the request that started it, until answered */
    uv_timer_t timer;     /* the web limit of req */
    bool requires_auth;   /* result URLs need the token too */
    bool raw;             /* a raw endpoint: the result is the HTTP answer */
    bool redirected;      /* answered 303: in kept (and kept_list) */
    bool orphan;          /* past the limit but not in kept (no memory): freed when done */
    bool done;            /* the outcome below is final */
    char *value;          /* the result payload (success), owned */
    size_t value_len;
    skiff_error err;            /* the failure (code != SKIFF_OK) */
    int64_t expires;            /* loop ms past which a done keeper is dropped */
    struct list_node waiting;   /* result URL requests (struct http_req.wait_link) */
    struct list_node done_link; /* in done_list, oldest first, once done and redirected */
    struct list_node kept_link; /* in kept_list while redirected */
};

/* How long the outcome of a redirected web request stays readable after the call ends. */
#define KEEP_MS (24 * 3600 * 1000LL)

static struct hmap kept; /* call id -> redirected keeper */
static bool kept_ready;
static struct list_node done_list;
static struct list_node kept_list;

static void keeper_closed(uv_handle_t *h)
{
    struct keeper *k = h->data;
    mem_free(k->value);
    skiff_error_clear(&k->err);
    mem_free(k);
}

/* Frees k (asynchronously: its timer closes first). It must be out of kept and done_list. */
static void keeper_free(struct keeper *k)
{
    uv_timer_stop(&k->timer);
    uv_close((uv_handle_t *)&k->timer, keeper_closed);
}

/* Answers r with the outcome k holds. */
static void answer(struct http_req *r, const struct keeper *k)
{
    if (k->err.code)
        http_respond_skiff(r, &k->err);
    else if (k->raw)
        respond_raw(r, k->value, k->value_len);
    else
        http_respond_payload(r, 200, NULL, k->value, k->value_len, NULL);
}

/* Drops the kept outcomes whose time is up. */
static void sweep(void)
{
    int64_t now = (int64_t)uv_now(http_loop());
    while (!list_empty(&done_list)) {
        struct keeper *k = container_of(done_list.next, struct keeper, done_link);
        if (k->expires > now)
            break;
        list_remove(&k->done_link);
        list_remove(&k->kept_link);
        hmap_del(&kept, k->call_id);
        keeper_free(k);
    }
}

static void keeper_done(struct call_listener *l, const char *value, size_t len,
                        const skiff_error *err)
{
    struct keeper *k = container_of(l, struct keeper, listener);
    uv_timer_stop(&k->timer);
    if (!k->redirected) {
        /* Within the limit (or refused at once): the request gets the outcome. */
        struct http_req *r = k->req;
        k->req = NULL;
        if (err)
            http_respond_skiff(r, err);
        else if (k->raw)
            respond_raw(r, value, len);
        else
            http_respond_payload(r, 200, NULL, value, len, NULL);
        keeper_free(k);
        return;
    }
    if (k->orphan) {
        list_remove(&k->kept_link);
        keeper_free(k);
        return;
    }
    k->done = true;
    if (err) {
        k->err.code = err->code;
        k->err.type = mem_strdup(err->type ? err->type : skiff_code_name(err->code));
        k->err.message = mem_strdup(err->message ? err->message : "");
        k->err.traceback = err->traceback ? mem_strdup(err->traceback) : NULL;
    } else if (!(k->value = mem_alloc(len ? len : 1))) {
        skiff_error_set(&k->err, SKIFF_ERR_NOMEM, "MemoryError",
                        "the server ran out of memory holding the result");
    } else {
        memcpy(k->value, value, len);
        k->value_len = len;
    }
    k->expires = (int64_t)uv_now(http_loop()) + KEEP_MS;
    list_push(&done_list, &k->done_link);
    while (!list_empty(&k->waiting)) {
        struct http_req *r = container_of(k->waiting.next, struct http_req, wait_link);
        list_remove(&r->wait_link);
        answer(r, k);
    }
}

static void redirect(struct http_req *r, const char *call_id)
{
    char loc[128], body[160];
    snprintf(loc, sizeof loc, "Location: /web-result/%s\r\n", call_id);
    snprintf(body, sizeof body, "{\"call_id\":\"%s\",\"result_url\":\"/web-result/%s\"}", call_id,
             call_id);
    http_respond(r, 303, "application/json", body, strlen(body), loc);
}

/* The web limit passed: 303 to the result URL; the keeper stays for it. */
static void keeper_limit(uv_timer_t *t)
{
    struct keeper *k = t->data;
    struct http_req *r = k->req;
    k->req = NULL;
    k->redirected = true;
    list_push(&kept_list, &k->kept_link);
    if (hmap_put(&kept, k->call_id, k) < 0) {
        k->orphan = true;
        http_respond_error(r, 503, "MemoryError", "out of memory keeping the web request", NULL);
        return;
    }
    redirect(r, k->call_id);
}

/* The client of r went away before its answer. */
static void web_gone(struct http_req *r)
{
    struct keeper *k = r->handler_data;
    if (r->phase == WEB_WAITING) {
        list_remove(&r->wait_link); /* a result URL request */
        return;
    }
    /* The request that started the call: as for a blocking call whose caller disconnects. */
    k->req = NULL;
    calls_listener_gone(&k->listener);
    keeper_free(k);
}

/* Auth of a web request to fn, when fn asks for it. false after answering 401. */
static bool web_auth(struct http_req *r, bool requires_auth)
{
    return !requires_auth || http_check_token(r);
}

/* GET /web-result/<call_id>: the outcome of a redirected web request, once its call ends. */
static void web_result(struct http_req *r, const char *id)
{
    if (r->method != HTTP_GET) {
        http_respond_error_with(r, 405, "InvalidError", "a result URL answers GET", NULL,
                                "Allow: GET\r\n");
        return;
    }
    if (strlen(id) >= ID_SIZE || !id_valid(id, "fc")) {
        http_respond_error(r, 400, "InvalidError", "not a function call id (fc-...)", NULL);
        return;
    }
    sweep();
    struct keeper *k = kept_ready ? hmap_get(&kept, id) : NULL;
    if (!k) {
        http_respond_error(r, 404, "NotFoundError",
                           "no web request past its limit has this call id (or its result is "
                           "no longer kept)",
                           NULL);
        return;
    }
    if (!web_auth(r, k->requires_auth))
        return;
    if (k->done) {
        answer(r, k);
        return;
    }
    r->phase = WEB_WAITING;
    r->handler_data = k;
    r->on_gone = web_gone;
    list_push(&k->waiting, &r->wait_link);
}

size_t http_web_max_body(const char *path)
{
    if (strncmp(path, "/web/", 5) || !label_valid(path + 5))
        return 0;
    struct function *fn = find_label(path + 5);
    return fn ? fn->cfg.web_max_body : 0;
}

void http_web_handle(struct http_req *r)
{
    if (!kept_ready) {
        hmap_init(&kept);
        list_init(&done_list);
        list_init(&kept_list);
        kept_ready = true;
    }
    if (!strncmp(r->path, "/web-result/", 12)) {
        web_result(r, r->path + 12);
        return;
    }
    /* /web/<label>[/<path under it>] */
    char label[HTTP_LABEL_MAX + 2];
    const char *rest = strchr(r->path + 5, '/');
    size_t llen = rest ? (size_t)(rest - (r->path + 5)) : strlen(r->path + 5);
    snprintf(label, sizeof label, "%.*s", (int)(llen < sizeof label ? llen : sizeof label - 1),
             r->path + 5);
    struct function *fn = label_valid(label) ? find_label(label) : NULL;
    bool raw = fn && fn->cfg.web_method && !strcmp(fn->cfg.web_method, "ANY");
    if (fn && rest && !raw)
        fn = NULL; /* only raw endpoints have paths under their label */
    if (!fn) {
        char msg[200];
        snprintf(msg, sizeof msg, "no web endpoint is labelled '%.63s'", label);
        http_respond_error(r, 404, "NotFoundError", msg, NULL);
        return;
    }
    const char *want = fn->cfg.web_method ? fn->cfg.web_method : "GET";
    if (!raw && strcasecmp(want, http_method_str(r->method))) {
        char msg[160], allow[64];
        snprintf(msg, sizeof msg, "%s.%s answers %s requests, not %s", fn->app->name, fn->name,
                 want, http_method_str(r->method));
        snprintf(allow, sizeof allow, "Allow: %.16s\r\n", want);
        http_respond_error_with(r, 405, "InvalidError", msg, NULL, allow);
        return;
    }
    if (!web_auth(r, fn->cfg.web_requires_auth))
        return;
    struct buf args;
    buf_init(&args, 0);
    skiff_error err = SKIFF_ERROR_INIT;
    struct keeper *k = NULL;
    if ((raw ? raw_args(r, rest ? rest : "/", &args, &err) : web_args(r, fn, &args, &err)) !=
        SKIFF_OK) {
        http_respond_error(r, http_status_of(err.code), err.type, err.message, NULL);
        skiff_error_clear(&err);
    } else if (!(k = mem_calloc(1, sizeof *k))) {
        http_respond_error(r, 503, "MemoryError", "out of memory", NULL);
    } else {
        k->req = r;
        k->raw = raw;
        k->requires_auth = fn->cfg.web_requires_auth;
        k->listener.on_done = keeper_done;
        list_init(&k->waiting);
        list_init(&k->done_link);
        list_init(&k->kept_link);
        uv_timer_init(http_loop(), &k->timer);
        k->timer.data = k;
        uv_timer_start(&k->timer, keeper_limit, (uint64_t)(http_web_limit() * 1000), 0);
        r->phase = WEB_STARTING;
        r->handler_data = k;
        r->on_gone = web_gone;
        /* May answer (and free k) before it returns. */
        calls_start(&k->listener, fn, fn, args.data, args.len, false, true, k->call_id);
    }
    buf_deinit(&args);
}

void http_web_close(void)
{
    if (!kept_ready)
        return;
    /* The connections are closed: what is left are the redirected keepers. */
    while (!list_empty(&kept_list)) {
        struct keeper *k = container_of(kept_list.next, struct keeper, kept_link);
        list_remove(&k->kept_link);
        list_remove(&k->done_link);
        if (!k->done)
            calls_listener_gone(&k->listener);
        keeper_free(k);
    }
    hmap_deinit(&kept);
    kept_ready = false;
}
