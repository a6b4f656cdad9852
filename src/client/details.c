/*
 * details.c - the thin requests about a function or a call (skiff.h, "Function details and the
 * autoscaler", "Call graph"): current stats, autoscaler updates and keep_warm, the web URL,
 * running a function locally, and a call's call graph.
 *
 * Each is one request whose OK reply is read field by field. The call graph is a tree the server
 * sends as nested input nodes; it is copied into skiff_input_info structs (depth bounded by
 * GRAPH_MAX_DEPTH, so a hostile reply cannot exhaust the stack).
 */
#include <math.h>
#include <string.h>

#include "async.h"
#include "client.h"
#include "common/id.h"
#include "common/mem.h"
#include "common/proto.h"
#include "fn.h"
#include "rpc.h"

/* Calls nest this deep at most in a call graph we accept (msgpack-c's unpacker nests to 32
 * levels anyway; each node takes two: its map and its children array). */
#define GRAPH_MAX_DEPTH 15

/* A function running in this process's app (the container runtime) provides this; a plain
 * client binary does not, and skiff_function_local then says so. */
#pragma weak worker_local_call

/* Sends op naming fn plus the extra fields. */
static int fn_request(skiff_function *fn, int op, const struct rpc_field *extra, size_t nextra,
                      struct rpc_reply *r, skiff_error *err)
{
    struct rpc_field f[16];
    size_t n = function_target(fn, f);
    for (size_t i = 0; i < nextra && n < 16; i++)
        f[n++] = extra[i];
    return rpc_simple(fn->client, op, f, n, 0, r, err);
}

int skiff_function_get_current_stats(skiff_function *fn, skiff_function_stats *out,
                                     skiff_error *err)
{
    if (!fn || !out)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_function_get_current_stats: fn and out must not be NULL");
    struct rpc_reply r;
    int rc = fn_request(fn, OP_STATS, NULL, 0, &r, err);
    if (rc != SKIFF_OK)
        return rc;
    rc = function_stats_from_reply(r.msg, out, err);
    rpc_reply_release(fn->client, &r);
    return rc;
}

int function_stats_from_reply(const struct wire_msg *m, skiff_function_stats *out, skiff_error *err)
{
    skiff_function_stats st = {0, 0, 0, 0};
    if (!wire_get_int(m, "backlog", &st.backlog) ||
        !wire_get_int(m, "num_total_runners", &st.num_total_runners))
        return skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                               "the server's STATS reply lacks backlog or num_total_runners");
    wire_get_int(m, "num_running_inputs", &st.num_running_inputs);
    wire_get_int(m, "input_headroom", &st.input_headroom);
    *out = st;
    return SKIFF_OK;
}

/* Reads the autoscaler map of a reply into *a. */
static int read_autoscaler(const struct wire_msg *m, skiff_autoscaler *a, skiff_error *err)
{
    const msgpack_object *o = wire_get(m, "autoscaler");
    if (!o || o->type != MSGPACK_OBJECT_MAP)
        return skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                               "the server's reply has no autoscaler settings");
    skiff_autoscaler got = SKIFF_AUTOSCALER_INIT;
    const char *keys[] = {"min_containers", "max_containers", "buffer_containers"};
    int64_t *dst[] = {&got.min_containers, &got.max_containers, &got.buffer_containers};
    for (int i = 0; i < 3; i++) {
        const msgpack_object *v = wire_obj_get(o, keys[i]);
        if (v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT64_MAX)
            *dst[i] = (int64_t)v->via.u64;
    }
    const msgpack_object *w = wire_obj_get(o, "scaledown_window");
    if (w && (w->type == MSGPACK_OBJECT_FLOAT64 || w->type == MSGPACK_OBJECT_FLOAT32))
        got.scaledown_window = w->via.f64;
    else if (w && w->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        got.scaledown_window = (double)w->via.u64;
    *a = got;
    return SKIFF_OK;
}

/* Checks settings and fills f[0..3] with the fields to send: SKIFF_OK with their count in *nout,
 * or SKIFF_ERR_INVALID. */
static int autoscaler_fields(const skiff_autoscaler *settings, struct rpc_field *f, size_t *nout,
                             skiff_error *err)
{
    const char *keys[] = {"min_containers", "max_containers", "buffer_containers"};
    const int64_t vals[] = {settings->min_containers, settings->max_containers,
                            settings->buffer_containers};
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        if (vals[i] == SKIFF_UNSET)
            continue;
        if (vals[i] < 0)
            return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                                   "%s must be >= 0 (or SKIFF_UNSET), not %lld", keys[i],
                                   (long long)vals[i]);
        f[n] = (struct rpc_field){.key = keys[i], .kind = RPC_INT, .i = vals[i]};
        n++;
    }
    double w = settings->scaledown_window;
    if (w != SKIFF_UNSET) {
        if (!(w >= 0) || isinf(w))
            return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                                   "scaledown_window must be a finite number of seconds >= 0");
        f[n] = (struct rpc_field){.key = "scaledown_window", .kind = RPC_DOUBLE, .d = w};
        n++;
    }
    if (n == 0)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "update_autoscaler: no setting given (every field is SKIFF_UNSET)");
    if (vals[0] != SKIFF_UNSET && vals[1] != SKIFF_UNSET && vals[0] > vals[1])
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "min_containers (%lld) is over max_containers (%lld)",
                               (long long)vals[0], (long long)vals[1]);
    *nout = n;
    return SKIFF_OK;
}

int skiff_function_update_autoscaler(skiff_function *fn, const skiff_autoscaler *settings,
                                     skiff_autoscaler *now, skiff_error *err)
{
    if (!fn || !settings)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_function_update_autoscaler: fn and settings must not be "
                               "NULL");
    struct rpc_field f[4];
    size_t n = 0;
    int rc = autoscaler_fields(settings, f, &n, err);
    if (rc != SKIFF_OK)
        return rc;
    struct rpc_reply r;
    rc = fn_request(fn, OP_AUTOSCALER, f, n, &r, err);
    if (rc != SKIFF_OK)
        return rc;
    skiff_autoscaler got;
    rc = read_autoscaler(r.msg, &got, err);
    rpc_reply_release(fn->client, &r);
    if (rc == SKIFF_OK && now)
        *now = got;
    return rc;
}

/* Finishes update_autoscaler_async and keep_warm_async (r->cb.done set, autoscaler NULL). */
static void autoscaler_fin(const struct async_req *r, int rc, const struct wire_msg *m,
                           skiff_error *e)
{
    skiff_autoscaler now;
    if (rc == SKIFF_OK)
        rc = read_autoscaler(m, &now, e);
    const skiff_error *ep = rc == SKIFF_OK ? NULL : e;
    if (r->obj)
        r->cb.autoscaler(r->ud, rc, rc == SKIFF_OK ? &now : NULL, ep);
    else
        r->cb.done(r->ud, rc, ep);
}

/* update_autoscaler_async (cb) or keep_warm_async (done). */
static int autoscaler_async(skiff_function *fn, const skiff_autoscaler *settings,
                            skiff_autoscaler_cb cb, skiff_done_cb done, void *userdata,
                            skiff_error *err)
{
    struct rpc_field f[4];
    size_t n = 0;
    int rc = autoscaler_fields(settings, f, &n, err);
    if (rc != SKIFF_OK)
        return rc;
    struct async_req r = {.fin = autoscaler_fin, .ud = userdata};
    if (cb) {
        r.obj = fn; /* says which callback to run */
        r.cb.autoscaler = cb;
    } else {
        r.cb.done = done;
    }
    struct rpc_field all[16];
    size_t k = function_target(fn, all);
    for (size_t i = 0; i < n; i++)
        all[k++] = f[i];
    return async_request(fn->client, OP_AUTOSCALER, all, k, &r, err);
}

int skiff_function_update_autoscaler_async(skiff_function *fn, const skiff_autoscaler *settings,
                                           skiff_autoscaler_cb cb, void *userdata, skiff_error *err)
{
    if (!fn || !settings || !cb)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_function_update_autoscaler_async: fn, settings and cb must "
                               "not be NULL");
    return autoscaler_async(fn, settings, cb, NULL, userdata, err);
}

int skiff_function_keep_warm_async(skiff_function *fn, int64_t n, skiff_done_cb cb, void *userdata,
                                   skiff_error *err)
{
    if (!fn || !cb)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_function_keep_warm_async: fn and cb must not be NULL");
    if (n < 0)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "keep_warm needs a count of containers >= 0, not %lld",
                               (long long)n);
    skiff_autoscaler a = SKIFF_AUTOSCALER_INIT;
    a.min_containers = n;
    return autoscaler_async(fn, &a, NULL, cb, userdata, err);
}

int skiff_function_keep_warm(skiff_function *fn, int64_t n, skiff_error *err)
{
    if (n < 0)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "keep_warm needs a count of containers >= 0, not %lld",
                               (long long)n);
    skiff_autoscaler a = SKIFF_AUTOSCALER_INIT;
    a.min_containers = n;
    return skiff_function_update_autoscaler(fn, &a, NULL, err);
}

int skiff_function_get_web_url(skiff_function *fn, char **url, skiff_error *err)
{
    if (!fn || !url)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_function_get_web_url: fn and url must not be NULL");
    pthread_mutex_lock(&fn->client->mu);
    bool known = fn->looked_up;
    pthread_mutex_unlock(&fn->client->mu);
    if (!known) { /* a LOOKUP says what the function is, even when a call hydrated it */
        int rc = function_lookup(fn, err);
        if (rc != SKIFF_OK)
            return rc;
    }
    char *copy = NULL;
    pthread_mutex_lock(&fn->client->mu);
    bool nomem = fn->web_url && !(copy = mem_strdup(fn->web_url));
    pthread_mutex_unlock(&fn->client->mu);
    if (nomem)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    *url = copy;
    return SKIFF_OK;
}

/* Finishes get_web_url_async: records what LOOKUP said, then hands out a copy of the URL. */
static void web_url_fin(const struct async_req *r, int rc, const struct wire_msg *m, skiff_error *e)
{
    skiff_function *fn = r->obj;
    char *copy = NULL;
    if (rc == SKIFF_OK)
        rc = function_remember(fn, m, e);
    if (rc == SKIFF_OK) {
        pthread_mutex_lock(&fn->client->mu);
        bool nomem = fn->web_url && !(copy = mem_strdup(fn->web_url));
        pthread_mutex_unlock(&fn->client->mu);
        if (nomem)
            rc = skiff_error_set(e, SKIFF_ERR_NOMEM, NULL, "out of memory");
    }
    r->cb.url(r->ud, rc, copy, rc == SKIFF_OK ? NULL : e);
}

int skiff_function_get_web_url_async(skiff_function *fn, skiff_url_cb cb, void *userdata,
                                     skiff_error *err)
{
    if (!fn || !cb)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_function_get_web_url_async: fn and cb must not be NULL");
    struct async_req r = {.fin = web_url_fin, .obj = fn, .ud = userdata, .cb.url = cb};
    struct rpc_field f[2];
    function_lookup_fields(fn, f);
    return async_request(fn->client, OP_LOOKUP, f, 2, &r, err);
}

int skiff_function_local(skiff_function *fn, const skiff_value *args, const skiff_value *kwargs,
                         skiff_value **result, skiff_error *err)
{
    if (!fn || !result)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_function_local: fn and result must not be NULL");
    int rc = function_check_args(fn, args, kwargs, err);
    if (rc != SKIFF_OK)
        return rc;
    if (!worker_local_call)
        return skiff_error_set(err, SKIFF_ERR_EXECUTION, "ExecutionError",
                               "%s.%s has no local definition in this process: local() runs "
                               "only where the app's code is loaded (inside its containers)",
                               fn->app, fn->name);
    skiff_value *v = NULL;
    rc = worker_local_call(fn->app, fn->name, fn->params, fn->params_len, args, kwargs, &v, err);
    if (rc == SKIFF_OK)
        *result = v;
    else
        skiff_value_free(v);
    return rc;
}

/* --- call graph ------------------------------------------------------------------------------- */

static const char *const status_names[] = {"PENDING",    "SUCCESS", "FAILURE",
                                           "TERMINATED", "TIMEOUT", "INIT_FAILURE"};

const char *skiff_input_status_name(skiff_input_status s)
{
    return (unsigned)s < sizeof status_names / sizeof status_names[0] ? status_names[s] : "UNKNOWN";
}

/* A NUL-terminated copy of string field key of map o, NULL when absent or nil. False when out
 * of memory. */
static bool dup_field(const msgpack_object *o, const char *key, char **out)
{
    const msgpack_object *v = wire_obj_get(o, key);
    *out = NULL;
    if (!v || v->type != MSGPACK_OBJECT_STR)
        return true;
    *out = mem_strndup(v->via.str.ptr, v->via.str.size);
    return *out != NULL;
}

static void node_deinit(skiff_input_info *n)
{
    mem_free(n->input_id);
    mem_free(n->call_id);
    mem_free(n->container_id);
    mem_free(n->function);
    skiff_call_graph_free(n->children, n->nchildren);
}

static int read_nodes(const msgpack_object *arr, int depth, skiff_input_info **out, size_t *n,
                      skiff_error *err);

/* Copies one input node. */
static int read_node(const msgpack_object *o, int depth, skiff_input_info *node, skiff_error *err)
{
    memset(node, 0, sizeof *node);
    if (o->type != MSGPACK_OBJECT_MAP)
        return skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                               "a call graph node is not a map");
    if (!dup_field(o, "input_id", &node->input_id) || !dup_field(o, "call_id", &node->call_id) ||
        !dup_field(o, "container_id", &node->container_id) ||
        !dup_field(o, "function", &node->function))
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    if (!node->input_id || !node->call_id || !node->function)
        return skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                               "a call graph node lacks input_id, call_id or function");
    const msgpack_object *idx = wire_obj_get(o, "index");
    if (idx && idx->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        node->index = (size_t)idx->via.u64;
    const msgpack_object *st = wire_obj_get(o, "status");
    bool known = false;
    for (size_t i = 0; st && st->type == MSGPACK_OBJECT_STR && i < 6; i++)
        if (st->via.str.size == strlen(status_names[i]) &&
            !memcmp(st->via.str.ptr, status_names[i], st->via.str.size)) {
            node->status = (skiff_input_status)i;
            known = true;
        }
    if (!known)
        return skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                               "call graph node %s has an unknown status", node->input_id);
    const msgpack_object *ch = wire_obj_get(o, "children");
    if (!ch || ch->type != MSGPACK_OBJECT_ARRAY || ch->via.array.size == 0)
        return SKIFF_OK;
    return read_nodes(ch, depth + 1, &node->children, &node->nchildren, err);
}

static int read_nodes(const msgpack_object *arr, int depth, skiff_input_info **out, size_t *n,
                      skiff_error *err)
{
    if (depth > GRAPH_MAX_DEPTH)
        return skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                               "the call graph nests deeper than %d calls", GRAPH_MAX_DEPTH);
    uint32_t k = arr->via.array.size;
    skiff_input_info *nodes = mem_calloc(k ? k : 1, sizeof *nodes);
    if (!nodes)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    for (uint32_t i = 0; i < k; i++) {
        int rc = read_node(&arr->via.array.ptr[i], depth, &nodes[i], err);
        if (rc != SKIFF_OK) {
            skiff_call_graph_free(nodes, i + 1);
            return rc;
        }
    }
    *out = nodes;
    *n = k;
    return SKIFF_OK;
}

/* Reads a CALL_GRAPH reply's roots into *nodes (*k of them). */
static int graph_from_reply(const struct wire_msg *m, skiff_input_info **nodes, size_t *k,
                            skiff_error *err)
{
    const msgpack_object *inputs = wire_get(m, "inputs");
    if (!inputs || inputs->type != MSGPACK_OBJECT_ARRAY)
        return skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                               "the server's CALL_GRAPH reply has no inputs");
    return read_nodes(inputs, 0, nodes, k, err);
}

static void graph_fin(const struct async_req *r, int rc, const struct wire_msg *m, skiff_error *e)
{
    skiff_input_info *nodes = NULL;
    size_t k = 0;
    if (rc == SKIFF_OK)
        rc = graph_from_reply(m, &nodes, &k, e);
    r->cb.graph(r->ud, rc, nodes, k, rc == SKIFF_OK ? NULL : e);
}

int skiff_call_get_call_graph_async(skiff_call *call, skiff_graph_cb cb, void *userdata,
                                    skiff_error *err)
{
    if (!call || !cb)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_call_get_call_graph_async: call and cb must not be NULL");
    struct async_req r = {.fin = graph_fin, .obj = call, .ud = userdata, .cb.graph = cb};
    struct rpc_field f[] = {{.key = "call_id", .kind = RPC_STR, .str = call->id}};
    return async_request(call->client, OP_CALL_GRAPH, f, 1, &r, err);
}

int skiff_call_get_call_graph(skiff_call *call, skiff_input_info **roots, size_t *n,
                              skiff_error *err)
{
    if (!call || !roots || !n)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_call_get_call_graph: call, roots and n must not be NULL");
    struct rpc_field f[] = {{.key = "call_id", .kind = RPC_STR, .str = call->id}};
    struct rpc_reply r;
    int rc = rpc_simple(call->client, OP_CALL_GRAPH, f, 1, 0, &r, err);
    if (rc != SKIFF_OK)
        return rc;
    skiff_input_info *nodes = NULL;
    size_t k = 0;
    rc = graph_from_reply(r.msg, &nodes, &k, err);
    rpc_reply_release(call->client, &r);
    if (rc == SKIFF_OK) {
        *roots = nodes;
        *n = k;
    }
    return rc;
}

void skiff_call_graph_free(skiff_input_info *roots, size_t n)
{
    if (!roots)
        return;
    for (size_t i = 0; i < n; i++)
        node_deinit(&roots[i]);
    mem_free(roots);
}
