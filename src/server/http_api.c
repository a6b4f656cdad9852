/*
 * http_api.c - the JSON API under /api/v1/ (docs/http-api.md): skiff's calls for clients in any
 * language.
 *
 *   POST /api/v1/apps/<app>/<function>/call     {"args", "kwargs", "params"} -> result
 *   POST /api/v1/apps/<app>/<function>/spawn    same body -> {"call_id"}
 *   GET  /api/v1/apps/<app>/<function>/stats    -> the function's stats
 *   GET  /api/v1/calls/<call_id>?timeout=S      -> {"result"} (no timeout: wait until it ends)
 *   POST /api/v1/calls/<call_id>/cancel         ?terminate_containers=true
 *   GET  /api/v1/calls/<call_id>/graph          -> {"inputs": [...]}
 *
 * Every request carries a token (X-Skiff-Token-Id, X-Skiff-Token-Secret) of any scope; a
 * container's token may read (GET, cancel, graph) only the calls it spawned. Each route goes
 * through the same internal entry points as the binary protocol's request (calls_start as
 * CALL, calls_wait as GET, calls_cancel_by as CANCEL, graph_build as CALL_GRAPH, the pool's
 * counters as STATS), so the semantics and error types are the same; http_status_of maps the
 * error codes to statuses. A blocking call whose client disconnects before it starts running is
 * cancelled, as in the protocol.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps.h"
#include "auth.h"
#include "calls.h"
#include "common/codec.h"
#include "common/value.h"
#include "common/mem.h"
#include "common/proto.h"
#include "common/wire.h"
#include "graph.h"
#include "proto.h"
#include "http_req.h"

enum { API_CALL = 1, API_SPAWN, API_GET, API_CANCEL };

/* One path segment after *p (up to '/' or the end), copied into out; advances *p past it. */
static bool segment(const char **p, char *out, size_t size)
{
    const char *s = *p;
    size_t n = strcspn(s, "/");
    if (n == 0 || n >= size)
        return false;
    memcpy(out, s, n);
    out[n] = '\0';
    *p = s + n + (s[n] == '/');
    return true;
}

static void not_allowed(struct http_req *r, const char *want)
{
    char msg[96], allow[48];
    snprintf(msg, sizeof msg, "this URL answers %s, not %s", want, http_method_str(r->method));
    snprintf(allow, sizeof allow, "Allow: %s\r\n", want);
    http_respond_error_with(r, 405, "InvalidError", msg, NULL, allow);
}

static void api_done(struct call_listener *l, const char *value, size_t len, const skiff_error *err)
{
    struct http_req *r = container_of(l, struct http_req, listener);
    if (err) {
        http_respond_skiff(r, err);
        return;
    }
    char prefix[ID_SIZE + 32];
    switch (r->phase) {
    case API_CALL:
        snprintf(prefix, sizeof prefix, "\"call_id\":\"%s\",", r->call_id);
        http_respond_payload(r, 200, "result", value, len, prefix);
        break;
    case API_SPAWN:
        snprintf(prefix, sizeof prefix, "{\"call_id\":\"%s\"}", r->call_id);
        http_respond_json(r, 202, prefix);
        break;
    case API_GET:
        http_respond_payload(r, 200, "result", value, len, NULL);
        break;
    default:
        http_respond_json(r, 200, "{\"cancelled\":true}");
    }
}

/* The argument payload of a call request's body ({"args": [...], "kwargs": {...}, "params":
 * {...}}, all optional; an empty body: no arguments) into b, and a method's instance
 * parameters (canonical, docs/protocol.md "Class parameters") into params, left empty when
 * the body has none. false after answering 400. */
static bool body_args(struct http_req *r, struct buf *b, struct buf *params)
{
    skiff_value *body = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    const char *problem = NULL;
    if (r->body.len && http_json_body(r, &body, &err) != SKIFF_OK)
        problem = err.message;
    else if (r->body.len && skiff_value_type(body) != SKIFF_MAP)
        problem = "the body must be a JSON object {\"args\": [...], \"kwargs\": {...}}";
    else if (value_has_pickle(body)) /* a Python function would unpickle it: code, not data */
        problem = VALUE_PICKLE_REFUSED;
    skiff_value *args = skiff_map_get(body, "args"), *kwargs = skiff_map_get(body, "kwargs");
    if (!problem && args && skiff_value_type(args) != SKIFF_LIST)
        problem = "\"args\" must be a JSON array";
    if (!problem && kwargs && skiff_value_type(kwargs) != SKIFF_MAP)
        problem = "\"kwargs\" must be a JSON object";
    const skiff_value *pv = skiff_map_get(body, "params");
    if (!problem && pv && skiff_value_type(pv) != SKIFF_MAP)
        problem = "\"params\" must be a JSON object";
    for (size_t i = 0; !problem && i < skiff_map_len(body); i++)
        if (strcmp(skiff_map_key(body, i), "args") && strcmp(skiff_map_key(body, i), "kwargs") &&
            strcmp(skiff_map_key(body, i), "params"))
            problem = "the body holds only \"args\", \"kwargs\" and \"params\"";
    int rc = problem ? SKIFF_ERR_INVALID : codec_encode_args(b, args, kwargs);
    if (!problem && !rc && pv) {
        struct buf raw;
        buf_init(&raw, 0);
        rc = codec_encode_value(&raw, pv);
        if (!rc && (problem = proto_canonical_params(raw.data, raw.len, params)))
            rc = SKIFF_ERR_INVALID;
        buf_deinit(&raw);
    }
    if (rc && !problem)
        problem = rc == SKIFF_ERR_NOMEM ? "out of memory" : "the arguments cannot be encoded";
    if (problem)
        http_respond_error(r, rc == SKIFF_ERR_NOMEM ? 503 : 400,
                           rc == SKIFF_ERR_NOMEM ? "MemoryError" : "InvalidError", problem, NULL);
    skiff_value_free(body);
    skiff_error_clear(&err);
    return !problem;
}

/* The function app/name and in *pool where its calls run (a method's: the pool of its class
 * for params, canonical; empty: no parameters); NULL after answering 404 or 400. */
static struct function *resolve(struct http_req *r, const char *app, const char *name,
                                const struct buf *params, struct function **pool)
{
    struct function *fn = apps_lookup(app, name);
    if (fn && fn->method && fn->cls) {
        static const char empty_map = (char)0x80; /* a class without parameters */
        *pool = params->len ? apps_class_pool(fn->cls, params->data, params->len)
                            : apps_class_pool(fn->cls, &empty_map, 1);
        if (!*pool) {
            http_respond_error(r, 503, "MemoryError", "out of memory", NULL);
            return NULL;
        }
    } else if (fn && params->len) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s.%s is not a method of a class: it takes no params", app,
                 name);
        http_respond_error(r, 400, "InvalidError", msg, NULL);
        return NULL;
    } else {
        *pool = fn;
    }
    if (!fn || fn->is_class) {
        char msg[700];
        apps_lookup_failure(app, name, false, msg, sizeof msg);
        http_respond_error(r, 404, "NotFoundError", msg, NULL);
        return NULL;
    }
    return fn;
}

static void stats(struct http_req *r, const struct function *fn)
{
    int64_t headroom = (int64_t)fn->n_containers * fn->cfg.max_inputs - fn->n_running;
    char json[512];
    snprintf(json, sizeof json,
             "{\"backlog\":%zu,\"num_total_runners\":%d,\"num_running_inputs\":%d,"
             "\"input_headroom\":%lld,\"autoscaler\":{\"min_containers\":%d,"
             "\"max_containers\":%d,\"buffer_containers\":%d,\"scaledown_window\":%g}}",
             fn->backlog, fn->n_containers, fn->n_running, (long long)(headroom > 0 ? headroom : 0),
             fn->cfg.min_containers, fn->cfg.max_containers, fn->cfg.buffer_containers,
             fn->cfg.scaledown_window);
    http_respond_json(r, 200, json);
}

/* /api/v1/apps/<app>/<function>/<action> */
static void function_route(struct http_req *r, const char *rest, struct auth_token *t)
{
    char app[128], name[128], action[16];
    if (!segment(&rest, app, sizeof app) || !segment(&rest, name, sizeof name) ||
        !segment(&rest, action, sizeof action) || *rest) {
        http_respond_error(r, 404, "NotFoundError",
                           "want /api/v1/apps/<app>/<function>/{call,spawn,stats}", NULL);
        return;
    }
    bool is_stats = !strcmp(action, "stats");
    if (!is_stats && strcmp(action, "call") && strcmp(action, "spawn")) {
        http_respond_error(r, 404, "NotFoundError", "the actions are call, spawn and stats", NULL);
        return;
    }
    if (r->method != (is_stats ? HTTP_GET : HTTP_POST)) {
        not_allowed(r, is_stats ? "GET" : "POST");
        return;
    }
    struct buf args, params;
    buf_init(&args, 0);
    buf_init(&params, 1u << 20);
    struct function *pool, *fn;
    if (is_stats) {
        if ((fn = resolve(r, app, name, &params, &pool)))
            stats(r, pool);
    } else if (body_args(r, &args, &params) && (fn = resolve(r, app, name, &params, &pool))) {
        bool spawn = action[0] == 's';
        r->phase = spawn ? API_SPAWN : API_CALL;
        r->listener.on_done = api_done;
        r->call_id[0] = '\0';
        calls_start(&r->listener, fn, pool, args.data, args.len, spawn, false, r->call_id);
        if (spawn && r->call_id[0])
            auth_note_call(t, r->call_id);
    }
    buf_deinit(&params);
    buf_deinit(&args);
}

/* GET .../graph: the CALL_GRAPH reply frame, turned into JSON. */
static void graph(struct http_req *r, const char *id)
{
    struct buf frame;
    buf_init(&frame, 0);
    graph_build(&frame, 0, id);
    struct wire_msg m;
    skiff_value *v = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    if (frame.len <= 4 || wire_msg_init(&m) < 0) {
        http_respond_error(r, 503, "MemoryError", "out of memory building the graph", NULL);
        buf_deinit(&frame);
        return;
    }
    if (wire_msg_parse(&m, frame.data + 4, frame.len - 4) < 0) {
        http_respond_error(r, 500, "InternalFailure", "the graph could not be read back", NULL);
    } else if (m.op == OP_ERROR) {
        wire_get_error(&m, &err);
        http_respond_skiff(r, &err);
    } else if (codec_from_object(wire_get(&m, "inputs"), &v, &err) != SKIFF_OK) {
        http_respond_skiff(r, &err);
    } else {
        char *json = skiff_value_to_json(v);
        struct buf b;
        buf_init(&b, 0);
        if (json && !buf_append(&b, "{\"inputs\":", 10) && !buf_append(&b, json, strlen(json)) &&
            !buf_append(&b, "}", 1))
            http_respond(r, 200, "application/json", b.data, b.len, NULL);
        else
            http_respond_error(r, 503, "MemoryError", "out of memory encoding the graph", NULL);
        buf_deinit(&b);
        free(json); /* skiff_value_to_json's contract: malloc'd */
    }
    skiff_value_free(v);
    skiff_error_clear(&err);
    wire_msg_deinit(&m);
    buf_deinit(&frame);
}

/* /api/v1/calls/<call_id>[/cancel|/graph] */
static void call_route(struct http_req *r, const char *rest, const struct auth_token *tok)
{
    char id[ID_SIZE], action[16] = "";
    if (!segment(&rest, id, sizeof id) || (*rest && !segment(&rest, action, sizeof action)) ||
        *rest) {
        http_respond_error(r, 404, "NotFoundError", "want /api/v1/calls/<call_id>[/cancel|/graph]",
                           NULL);
        return;
    }
    if (!auth_owns_call(tok, id)) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "permission denied: a container's token may only read the calls its container "
                 "made, and %s is not one of them",
                 id);
        http_respond_error(r, 403, "AuthError", msg, NULL);
        return;
    }
    snprintf(r->call_id, sizeof r->call_id, "%s", id);
    r->listener.on_done = api_done;
    if (!action[0]) {
        if (r->method != HTTP_GET) {
            not_allowed(r, "GET");
            return;
        }
        char text[32], idx[32];
        int64_t timeout_ms = -1, index = -1;
        if (http_query_get(r, "timeout", text, sizeof text)) {
            char *end;
            double s = strtod(text, &end);
            if (*end || end == text || !(s >= 0) || s > 86400 * 365.0) {
                http_respond_error(r, 400, "InvalidError",
                                   "timeout wants a number of seconds (0: poll once)", NULL);
                return;
            }
            timeout_ms = (int64_t)(s * 1000);
        }
        if (http_query_get(r, "index", idx, sizeof idx)) {
            char *end;
            index = strtoll(idx, &end, 10);
            if (*end || end == idx || index < 0) {
                http_respond_error(r, 400, "InvalidError", "index wants an input index", NULL);
                return;
            }
        }
        r->phase = API_GET;
        calls_wait(&r->listener, r->call_id, timeout_ms, index);
    } else if (!strcmp(action, "cancel")) {
        if (r->method != HTTP_POST) {
            not_allowed(r, "POST");
            return;
        }
        char t[8] = "";
        http_query_get(r, "terminate_containers", t, sizeof t);
        r->phase = API_CANCEL;
        calls_cancel_by(&r->listener, r->call_id, !strcmp(t, "true") || !strcmp(t, "1"));
    } else if (!strcmp(action, "graph")) {
        if (r->method != HTTP_GET)
            not_allowed(r, "GET");
        else
            graph(r, r->call_id);
    } else {
        http_respond_error(r, 404, "NotFoundError", "the call actions are cancel and graph", NULL);
    }
}

void http_api_handle(struct http_req *r)
{
    /* Every route here needs no more than a container token may do (docs/security.md): what a
     * scope changes is which calls a container's token may read. */
    struct auth_token *t = http_token(r);
    if (!t)
        return;
    if (!strncmp(r->path, "/api/v1/apps/", 13))
        function_route(r, r->path + 13, t);
    else if (!strncmp(r->path, "/api/v1/calls/", 14))
        call_route(r, r->path + 14, t);
    else
        http_respond_error(r, 404, "NotFoundError",
                           "no such API path: see docs/http-api.md (/api/v1/apps/..., "
                           "/api/v1/calls/...)",
                           NULL);
    auth_release(t);
}
