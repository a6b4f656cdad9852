/*
 * http_api.c - the JSON API under /api/v1/ (docs/http-api.md): skiff's calls for clients in any
 * language.
 *
 *   POST /api/v1/apps/<app>/<function>/call     {"args", "kwargs", "params"} -> result (a
 *                                               generator: NDJSON items)
 *   POST /api/v1/apps/<app>/<function>/spawn    same body -> {"call_id"}
 *   POST /api/v1/apps/<app>/<function>/map      inputs (JSON array or NDJSON) -> NDJSON results
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
 * cancelled, as in the protocol; it is durable (calls_start_kept), so its id reads back anywhere.
 *
 * Streams (generators, maps) answer NDJSON through http.c's chunked answers: the listener's
 * on_item appends a line per item or outcome (never calling back into calls.c from there), and
 * the request's on_drain, on a later turn of the loop, feeds a map more inputs while the client
 * keeps up (a window of API_MAP_WINDOW inputs, none while HTTP_STREAM_LOW bytes are unsent) or
 * cancels a failed one. A generator cannot be paused: past HTTP_STREAM_MAX unsent bytes its
 * connection is closed, which cancels it like any client that leaves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

enum { API_CALL = 1, API_SPAWN, API_GET, API_CANCEL, API_STREAM };

/* The inputs in memory of a map per request before it waits for outputs, and the limit on the
 * inputs of one map request. */
#define API_MAP_WINDOW 1024

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

/* --- streams (NDJSON): generators and maps ---------------------------------------------------- */

/* A streamed call's state (r->handler_data). */
struct api_stream {
    struct buf enc;  /* a map's inputs: argument payloads back to back */
    size_t *offs;    /* input i is enc[offs[i], offs[i + 1]) */
    size_t n, next;  /* inputs, and the next one to add */
    size_t received; /* outcomes handed over */
    bool return_exceptions;
    bool closed; /* the map has all its inputs */
    bool failed; /* an input failed without return_exceptions: end and cancel on the next turn */
    bool cut;    /* cut off: the client did not read */
};

static void stream_free_data(struct http_req *r)
{
    struct api_stream *st = r->handler_data;
    if (!st)
        return;
    buf_deinit(&st->enc);
    mem_free(st->offs);
    mem_free(st);
    r->handler_data = NULL;
}

/* Appends one line (JSON text, then "\n") to the stream; a client that leaves more than
 * HTTP_STREAM_MAX unread is cut off (only a generator can get there: a map waits). */
static void stream_line(struct http_req *r, struct buf *line)
{
    struct api_stream *st = r->handler_data;
    if (st->cut)
        return;
    if (buf_append(line, "\n", 1) != 0 || http_stream_write(r, line->data, line->len) != 0) {
        st->cut = true;
        return;
    }
    if (http_stream_unsent(r) > HTTP_STREAM_MAX) {
        st->cut = true;
        http_stream_abort(r);
    }
}

/* Appends the JSON of a result payload to b (an error object when it cannot be shown). */
static int payload_json(struct buf *b, const char *value, size_t len)
{
    skiff_value *v = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    if (codec_decode_value(value, len, &v, &err) != SKIFF_OK) {
        rc = http_error_json(b, err.type ? err.type : skiff_code_name(err.code), err.message, NULL);
        rc = rc ? rc : buf_append(b, "}", 1);
    } else if (value_has_pickle(v)) {
        rc = http_error_json(b, "DeserializationError", VALUE_PICKLE_MESSAGE, NULL);
        rc = rc ? rc : buf_append(b, "}", 1);
    } else {
        char *json = skiff_value_to_json(v);
        rc = json ? buf_append(b, json, strlen(json)) : SKIFF_ERR_NOMEM;
        free(json); /* skiff_value_to_json's contract: malloc'd */
    }
    skiff_value_free(v);
    skiff_error_clear(&err);
    return rc;
}

/* Appends the last member "error":{...} of err to b (after "{" or a member and ","), closing
 * the object. */
static int error_members(struct buf *b, const skiff_error *err)
{
    struct buf e;
    buf_init(&e, 0);
    int rc = http_error_json(&e, err->type ? err->type : skiff_code_name(err->code), err->message,
                             err->traceback);
    rc = rc ? rc : buf_append(b, e.data + 1, e.len - 1);
    rc = rc ? rc : buf_append(b, "}", 1);
    buf_deinit(&e);
    return rc;
}

/* Writes the last line: {"done":true,"count":N}, or {"done":false,["index":I,]"error":{...}}. */
static void stream_last_line(struct http_req *r, size_t count, const skiff_error *err,
                             int64_t index)
{
    struct buf line;
    buf_init(&line, 0);
    char head[64];
    if (!err)
        snprintf(head, sizeof head, "{\"done\":true,\"count\":%zu}", count);
    else if (index >= 0)
        snprintf(head, sizeof head, "{\"done\":false,\"index\":%lld,", (long long)index);
    else
        snprintf(head, sizeof head, "{\"done\":false,");
    int rc = buf_append(&line, head, strlen(head));
    if (err && !rc)
        rc = error_members(&line, err);
    if (!rc)
        stream_line(r, &line);
    buf_deinit(&line);
}

/* The last line, then the answer ends (the listener is idle: on_done ran). */
static void stream_finish(struct http_req *r, size_t count, const skiff_error *err, int64_t index)
{
    stream_last_line(r, count, err, index);
    http_stream_end(r);
}

/* Starts the NDJSON answer with its first line, {"call_id":"fc-..."}. */
static void stream_start(struct http_req *r)
{
    http_stream_begin(r, "application/x-ndjson");
    struct buf line;
    buf_init(&line, 0);
    char head[ID_SIZE + 32];
    snprintf(head, sizeof head, "{\"call_id\":\"%s\"}", r->call_id);
    if (buf_append(&line, head, strlen(head)) == 0)
        stream_line(r, &line);
    buf_deinit(&line);
}

static void gen_item(struct call_listener *l, uint32_t index, const char *value, size_t len,
                     const skiff_error *err)
{
    (void)index;
    (void)err;
    struct http_req *r = container_of(l, struct http_req, listener);
    struct buf line;
    buf_init(&line, 0);
    if (!buf_append(&line, "{\"item\":", 8) && !payload_json(&line, value, len) &&
        !buf_append(&line, "}", 1))
        stream_line(r, &line);
    buf_deinit(&line);
}

static void stream_done(struct call_listener *l, const char *value, size_t len,
                        const skiff_error *err)
{
    (void)value;
    struct http_req *r = container_of(l, struct http_req, listener);
    struct api_stream *st = r->handler_data;
    if (!r->streaming) { /* refused before it began */
        if (err)
            http_respond_skiff(r, err);
        else
            http_respond_error(r, 500, "InternalFailure", "the stream ended before it began", NULL);
        return;
    }
    if (!st->failed)
        stream_finish(r, len, err, -1);
}

static void map_item(struct call_listener *l, uint32_t index, const char *value, size_t len,
                     const skiff_error *err)
{
    struct http_req *r = container_of(l, struct http_req, listener);
    struct api_stream *st = r->handler_data;
    st->received++;
    if (st->failed)
        return;
    if (err && !st->return_exceptions) {
        /* The map fails with its first failed input: the rest is cancelled on the next turn
         * (not from inside the scheduler's callback). */
        st->failed = true;
        stream_last_line(r, 0, err, index);
        http_poke(r);
        return;
    }
    struct buf line;
    buf_init(&line, 0);
    char head[48];
    snprintf(head, sizeof head, "{\"index\":%u,", index);
    int rc = buf_append(&line, head, strlen(head));
    if (err)
        rc = rc ? rc : error_members(&line, err);
    else if (!rc && !(rc = buf_append(&line, "\"result\":", 9)) &&
             !(rc = payload_json(&line, value, len)))
        rc = buf_append(&line, "}", 1);
    if (!rc)
        stream_line(r, &line);
    buf_deinit(&line);
    http_poke(r); /* room for more inputs */
}

/* Adds the map's inputs while the client keeps up: at most API_MAP_WINDOW without their
 * outcome, and none while HTTP_STREAM_LOW bytes of the answer wait for the client. */
static void map_feed(struct http_req *r)
{
    struct api_stream *st = r->handler_data;
    while (!r->done && !st->closed && !st->failed && !st->cut &&
           st->next - st->received < API_MAP_WINDOW && http_stream_unsent(r) < HTTP_STREAM_LOW) {
        bool last = st->next + 1 >= st->n;
        int rc = st->n ? calls_map_add(&r->listener, st->enc.data + st->offs[st->next],
                                       st->offs[st->next + 1] - st->offs[st->next], last)
                       : calls_map_add(&r->listener, NULL, 0, true);
        if (rc != SKIFF_OK) {
            skiff_error err = SKIFF_ERROR_INIT;
            skiff_error_set(&err, (skiff_code)rc, NULL, "input %zu could not be added: %s",
                            st->next, skiff_code_name((skiff_code)rc));
            st->failed = true;
            stream_last_line(r, 0, &err, (int64_t)st->next);
            http_poke(r);
            skiff_error_clear(&err);
            break;
        }
        st->next += st->n ? 1 : 0;
        st->closed = last;
    }
}

/* A stream's turn (http_poke, or bytes sent): a failed map is cancelled, a map fed. */
static void stream_drain(struct http_req *r)
{
    struct api_stream *st = r->handler_data;
    if (st->failed) {
        calls_listener_gone(&r->listener); /* cancels the map's other inputs */
        http_stream_end(r);
        return;
    }
    if (st->offs)
        map_feed(r);
}

static bool query_bool(struct http_req *r, const char *name, bool dflt, bool *out)
{
    char v[8];
    *out = dflt;
    if (!http_query_get(r, name, v, sizeof v))
        return true;
    if (!strcmp(v, "true") || !strcmp(v, "1"))
        *out = true;
    else if (!strcmp(v, "false") || !strcmp(v, "0"))
        *out = false;
    else
        return false;
    return true;
}

/* One map input from its JSON (an array of positional arguments, or {"args": [...], "kwargs":
 * {...}}) appended to st; NULL, or what is wrong with it. */
static const char *map_input(struct api_stream *st, const skiff_value *v, char *why, size_t size)
{
    const skiff_value *args = v, *kwargs = NULL;
    if (skiff_value_type(v) == SKIFF_MAP) {
        args = skiff_map_get(v, "args");
        kwargs = skiff_map_get(v, "kwargs");
        for (size_t i = 0; i < skiff_map_len(v); i++)
            if (strcmp(skiff_map_key(v, i), "args") && strcmp(skiff_map_key(v, i), "kwargs"))
                return "an input object holds only \"args\" and \"kwargs\"";
        if (args && skiff_value_type(args) != SKIFF_LIST)
            return "\"args\" must be a JSON array";
        if (kwargs && skiff_value_type(kwargs) != SKIFF_MAP)
            return "\"kwargs\" must be a JSON object";
    } else if (skiff_value_type(v) != SKIFF_LIST) {
        return "each input is a JSON array of arguments or {\"args\": [...], \"kwargs\": {...}}";
    }
    if (value_has_pickle(v))
        return VALUE_PICKLE_REFUSED;
    if (st->n % 64 == 0) {
        size_t *o = mem_realloc(st->offs, (st->n + 65) * sizeof *o);
        if (!o)
            return "out of memory";
        st->offs = o;
    }
    st->offs[st->n] = st->enc.len;
    int rc = codec_encode_args(&st->enc, args, kwargs);
    if (rc) {
        snprintf(why, size, "the arguments cannot be encoded (%s)", skiff_code_name(rc));
        return why;
    }
    if (st->enc.len - st->offs[st->n] > calls_payload_limit()) {
        snprintf(why, size, "the arguments are over the payload limit of %zu bytes",
                 calls_payload_limit());
        return why;
    }
    st->n++;
    st->offs[st->n] = st->enc.len;
    return NULL;
}

/* The map body (a JSON array of inputs, or NDJSON: one input a line, with the Content-Type
 * application/x-ndjson) into st; false after answering 400. */
static bool map_body(struct http_req *r, struct api_stream *st)
{
    bool nd = !strncasecmp(r->content_type, "application/x-ndjson", 20);
    skiff_value *v = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    const char *problem = NULL;
    char why[300];
    size_t budget = r->body.max / HTTP_BYTES_PER_VALUE;
    if (budget < 1024)
        budget = 1024;
    if (!nd) {
        if (http_json_body(r, &v, &err) != SKIFF_OK)
            problem = err.message;
        else if (skiff_value_type(v) != SKIFF_LIST)
            problem = "the body is a JSON array of inputs (or NDJSON with Content-Type "
                      "application/x-ndjson)";
        for (size_t i = 0; !problem && i < skiff_list_len(v); i++)
            if ((problem = map_input(st, skiff_list_get(v, i), why, sizeof why))) {
                char msg[260];
                snprintf(msg, sizeof msg, "input %zu: %s", i, problem);
                snprintf(why, sizeof why, "%s", msg);
                problem = why;
            }
    } else {
        const char *p = r->body.data, *end = r->body.data + r->body.len;
        size_t lineno = 0;
        while (!problem && p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *e = nl ? nl : end;
            lineno++;
            size_t len = (size_t)(e - p);
            while (len && (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t'))
                len--;
            if (len) {
                size_t used = codec_json_values(p, len, budget);
                if (used > budget) {
                    snprintf(why, sizeof why,
                             "the body holds more than %zu JSON values (the decoding limit of "
                             "this endpoint: one per %d bytes of its body limit)",
                             r->body.max / HTTP_BYTES_PER_VALUE, HTTP_BYTES_PER_VALUE);
                    problem = why;
                    break;
                }
                budget -= used;
                if (skiff_value_from_json(p, len, &v, &err) != SKIFF_OK) {
                    snprintf(why, sizeof why, "line %zu: %s", lineno, err.message);
                    problem = why;
                } else {
                    const char *bad = map_input(st, v, why, sizeof why);
                    if (bad) {
                        char msg[260];
                        snprintf(msg, sizeof msg, "line %zu: %s", lineno, bad);
                        snprintf(why, sizeof why, "%s", msg);
                        problem = why;
                    }
                }
                skiff_value_free(v);
                v = NULL;
                skiff_error_clear(&err);
            }
            p = e + 1;
        }
    }
    if (problem)
        http_respond_error(r, 400, "InvalidError", problem, NULL);
    skiff_value_free(v);
    skiff_error_clear(&err);
    return !problem;
}

/* POST .../call of a generator (a non-empty body as for call) or POST .../map: NDJSON. */
static void stream_route(struct http_req *r, struct function *fn, struct function *pool,
                         const struct buf *args, bool map)
{
    struct api_stream *st = mem_calloc(1, sizeof *st);
    if (!st) {
        http_respond_error(r, 503, "MemoryError", "out of memory", NULL);
        return;
    }
    buf_init(&st->enc, 0);
    r->handler_data = st;
    r->on_free = stream_free_data;
    r->on_drain = stream_drain;
    r->phase = API_STREAM;
    r->listener.on_done = stream_done;
    r->call_id[0] = '\0';
    if (!map) {
        r->listener.on_item = gen_item;
        calls_start_gen(&r->listener, fn, pool, args->data, args->len, r->call_id);
        if (r->call_id[0] && !r->done)
            stream_start(r);
        return;
    }
    bool ordered;
    if (!query_bool(r, "order", true, &ordered) ||
        !query_bool(r, "return_exceptions", false, &st->return_exceptions)) {
        http_respond_error(r, 400, "InvalidError", "order and return_exceptions want true or false",
                           NULL);
        return;
    }
    if (!map_body(r, st))
        return;
    r->listener.on_item = map_item;
    if (!calls_map_open(&r->listener, fn, pool, ordered, r->call_id))
        return;
    stream_start(r);
    map_feed(r);
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
    bool is_stats = !strcmp(action, "stats"), is_map = !strcmp(action, "map");
    if (!is_stats && !is_map && strcmp(action, "call") && strcmp(action, "spawn")) {
        http_respond_error(r, 404, "NotFoundError", "the actions are call, spawn, map and stats",
                           NULL);
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
    } else if (is_map) {
        /* The inputs are the body; a method's params come as the query parameter params (a
         * JSON object). */
        char pj[1024];
        bool ok = true;
        if (http_query_get(r, "params", pj, sizeof pj)) {
            skiff_value *pv = NULL;
            skiff_error err = SKIFF_ERROR_INIT;
            struct buf raw;
            buf_init(&raw, 0);
            const char *problem = NULL;
            if (skiff_value_from_json(pj, strlen(pj), &pv, &err) != SKIFF_OK ||
                skiff_value_type(pv) != SKIFF_MAP)
                problem = "params wants a JSON object";
            else if (codec_encode_value(&raw, pv) != SKIFF_OK)
                problem = "params cannot be encoded";
            else
                problem = proto_canonical_params(raw.data, raw.len, &params);
            if (problem) {
                http_respond_error(r, 400, "InvalidError", problem, NULL);
                ok = false;
            }
            buf_deinit(&raw);
            skiff_value_free(pv);
            skiff_error_clear(&err);
        }
        if (ok && (fn = resolve(r, app, name, &params, &pool)))
            stream_route(r, fn, pool, NULL, true);
    } else if (body_args(r, &args, &params) && (fn = resolve(r, app, name, &params, &pool))) {
        if (!strcmp(action, "call") && fn->cfg.generator) {
            stream_route(r, fn, pool, &args, false);
            buf_deinit(&params);
            buf_deinit(&args);
            return;
        }
        bool spawn = action[0] == 's';
        r->phase = spawn ? API_SPAWN : API_CALL;
        r->listener.on_done = api_done;
        r->call_id[0] = '\0';
        /* A call is durable too (kept like a spawn's, so its id reads back anywhere) while
         * this request waits for its outcome. */
        if (spawn)
            calls_start(&r->listener, fn, pool, args.data, args.len, true, false, r->call_id);
        else
            calls_start_kept(&r->listener, fn, pool, args.data, args.len, r->call_id);
        if (r->call_id[0])
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
