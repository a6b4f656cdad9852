/*
 * function.c - the public function and call handles of libskiff (skiff.h, "Client"): lookups,
 * remote, spawn, get, cancel, gather; and the calling thread's parent input (client.h).
 *
 * A function handle made by name is lazy: its first CALL names the app and function and the
 * server's reply carries the function id, which later calls send instead. The id is written once,
 * under the client's lock (request frames are built under that lock too), and published with a
 * release store so skiff_function_id can read it without locking.
 *
 * remote encodes [args, kwargs] into the client's reusable argument buffer, capped at the payload
 * limit the server announced, so an oversized call fails with SKIFF_ERR_REQUEST_SIZE before
 * anything is sent.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "async.h"
#include "client.h"
#include "common/codec.h"
#include "common/id.h"
#include "common/mem.h"
#include "common/proto.h"
#include "common/value.h"
#include "fn.h"
#include "rpc.h"

/* The input the calling thread runs, for parent_input_id (set by the container runtime). */
static _Thread_local const char *parent_input;

void client_set_parent_input(const char *input_id)
{
    parent_input = input_id;
}

void skiff__set_parent_input(const char *input_id)
{
    parent_input = input_id;
}

const char *client_parent_input(void)
{
    return parent_input;
}

/* --- functions -------------------------------------------------------------------------------- */

int skiff_function_from_name(skiff_client *client, const char *app, const char *name,
                             skiff_function **out, skiff_error *err)
{
    if (!client || !out)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_function_from_name: client and out must not be NULL");
    if (!app || !*app || !name || !*name)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "a function is named by a non-empty app name and function name");
    skiff_function *fn = mem_calloc(1, sizeof *fn);
    if (fn) {
        fn->app = mem_strdup(app);
        fn->name = mem_strdup(name);
    }
    if (!fn || !fn->app || !fn->name) {
        skiff_function_free(fn);
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    }
    fn->client = client;
    *out = fn;
    return SKIFF_OK;
}

/* The enum fn_kind a LOOKUP reply's kind names. */
static int kind_of(const struct wire_msg *m)
{
    const char *k;
    size_t n;
    if (!wire_get_str(m, "kind", &k, &n))
        return FN_UNKNOWN;
    if (n == 9 && !memcmp(k, "generator", 9))
        return FN_GENERATOR;
    if (n == 3 && !memcmp(k, "web", 3))
        return FN_WEB;
    if (n == 8 && !memcmp(k, "function", 8))
        return FN_FUNCTION;
    return FN_UNKNOWN;
}

int function_remember(skiff_function *fn, const struct wire_msg *m, skiff_error *err)
{
    bool lookup = wire_get(m, "kind") != NULL;
    if (__atomic_load_n(&fn->hydrated, __ATOMIC_ACQUIRE) && !lookup)
        return SKIFF_OK;
    char id[ID_SIZE];
    if (!wire_copy_str(m, "function_id", id, sizeof id) || !id_valid(id, "fu"))
        return skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                               "the server's reply has no valid function_id");
    char *url = lookup ? wire_dup_str(m, "web_url") : NULL;
    int rc = SKIFF_OK;
    pthread_mutex_lock(&fn->client->mu);
    if (!fn->hydrated) {
        memcpy(fn->id, id, sizeof id);
        __atomic_store_n(&fn->hydrated, true, __ATOMIC_RELEASE);
    }
    if (lookup && !fn->looked_up) {
        fn->web_url = url;
        url = NULL;
        fn->looked_up = true;
        __atomic_store_n(&fn->kind, kind_of(m), __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&fn->client->mu);
    free(url); /* wire_dup_str's copy is malloc'd */
    return rc;
}

int function_check_kind(const skiff_function *fn, bool gen, skiff_error *err)
{
    int kind = __atomic_load_n(&fn->kind, __ATOMIC_ACQUIRE);
    if (gen && (kind == FN_FUNCTION || kind == FN_WEB))
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "%s.%s is not a generator: call it with remote, spawn or map, not "
                               "remote_gen",
                               fn->app, fn->name);
    if (!gen && kind == FN_GENERATOR)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "%s.%s is a generator: call it with remote_gen (or spawn_gen), "
                               "not remote, spawn or map",
                               fn->app, fn->name);
    if (kind == FN_WEB)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "%s.%s is a web endpoint: call it over HTTP at its URL", fn->app,
                               fn->name);
    return SKIFF_OK;
}

uint32_t function_target_fields(const skiff_function *fn)
{
    return (fn->hydrated ? 1 : 2) + (fn->params ? 1 : 0);
}

void function_put_target(struct wire_writer *w, const skiff_function *fn)
{
    if (fn->hydrated) {
        wire_str(w, "function_id", fn->id);
    } else {
        wire_str(w, "app", fn->app);
        wire_str(w, "function", fn->name);
    }
    if (fn->params)
        wire_bin(w, "params", fn->params, fn->params_len);
}

void function_lookup_fields(const skiff_function *fn, struct rpc_field *f)
{
    memset(f, 0, 2 * sizeof *f);
    f[0] = (struct rpc_field){.key = "app", .kind = RPC_STR, .str = fn->app};
    f[1] = (struct rpc_field){.key = "function", .kind = RPC_STR, .str = fn->name};
}

int function_lookup(skiff_function *fn, skiff_error *err)
{
    struct rpc_field f[2];
    function_lookup_fields(fn, f);
    struct rpc_reply r;
    int rc = rpc_simple(fn->client, OP_LOOKUP, f, 2, 0, &r, err);
    if (rc != SKIFF_OK)
        return rc;
    rc = function_remember(fn, r.msg, err);
    rpc_reply_release(fn->client, &r);
    return rc;
}

int skiff_function_hydrate(skiff_function *fn, skiff_error *err)
{
    if (!fn)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "skiff_function_hydrate: fn is NULL");
    if (__atomic_load_n(&fn->hydrated, __ATOMIC_ACQUIRE))
        return SKIFF_OK;
    return function_lookup(fn, err);
}

/* Finishes hydrate_async: records what LOOKUP said (nothing to record when the handle was
 * hydrated already). */
static void hydrate_fin(const struct async_req *r, int rc, const struct wire_msg *m, skiff_error *e)
{
    if (rc == SKIFF_OK && m)
        rc = function_remember(r->obj, m, e);
    r->cb.done(r->ud, rc, rc == SKIFF_OK ? NULL : e);
}

int skiff_function_hydrate_async(skiff_function *fn, skiff_done_cb cb, void *userdata,
                                 skiff_error *err)
{
    if (!fn || !cb)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_function_hydrate_async: fn and cb must not be NULL");
    struct async_req r = {.fin = hydrate_fin, .obj = fn, .ud = userdata, .cb.done = cb};
    if (__atomic_load_n(&fn->hydrated, __ATOMIC_ACQUIRE))
        return async_complete_soon(fn->client, &r, err);
    struct rpc_field f[2];
    function_lookup_fields(fn, f);
    return async_request(fn->client, OP_LOOKUP, f, 2, &r, err);
}

int skiff_function_lookup(skiff_client *client, const char *app, const char *name,
                          skiff_function **out, skiff_error *err)
{
    skiff_function *fn;
    int rc = skiff_function_from_name(client, app, name, &fn, err);
    if (rc != SKIFF_OK)
        return rc;
    rc = skiff_function_hydrate(fn, err);
    if (rc != SKIFF_OK) {
        skiff_function_free(fn);
        return rc;
    }
    *out = fn;
    return SKIFF_OK;
}

skiff_function_kind skiff_function_get_kind(const skiff_function *fn)
{
    switch (fn ? __atomic_load_n(&fn->kind, __ATOMIC_ACQUIRE) : FN_UNKNOWN) {
    case FN_FUNCTION:
        return SKIFF_FUNCTION_PLAIN;
    case FN_GENERATOR:
        return SKIFF_FUNCTION_GENERATOR;
    case FN_WEB:
        return SKIFF_FUNCTION_WEB;
    default:
        return SKIFF_FUNCTION_UNKNOWN;
    }
}

const char *skiff_function_id(const skiff_function *fn)
{
    return fn && __atomic_load_n(&fn->hydrated, __ATOMIC_ACQUIRE) ? fn->id : NULL;
}

void skiff_function_free(skiff_function *fn)
{
    if (!fn)
        return;
    mem_free(fn->app);
    mem_free(fn->name);
    mem_free(fn->params);
    free(fn->web_url); /* from wire_dup_str: malloc'd */
    mem_free(fn);
}

/* --- CALL --------------------------------------------------------------------------------- */

int function_check_args(const skiff_function *fn, const skiff_value *args,
                        const skiff_value *kwargs, skiff_error *err)
{
    if (args && skiff_value_type(args) != SKIFF_LIST)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "args of %s.%s must be a list, not a %s", fn->app, fn->name,
                               skiff_type_name(skiff_value_type(args)));
    if (kwargs && skiff_value_type(kwargs) != SKIFF_MAP)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "kwargs of %s.%s must be a map, not a %s", fn->app, fn->name,
                               skiff_type_name(skiff_value_type(kwargs)));
    return SKIFF_OK;
}

/* Checks the argument shapes (and what is known of the function's kind) before anything touches
 * the network. */
static int check_call(const skiff_function *fn, const skiff_value *args, const skiff_value *kwargs,
                      const void *out, bool gen, skiff_error *err)
{
    if (!fn || !out)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "the function handle and the result pointer must not be NULL");
    int rc = function_check_args(fn, args, kwargs, err);
    return rc == SKIFF_OK ? function_check_kind(fn, gen, err) : rc;
}

struct call_req {
    skiff_function *fn;
    const skiff_value *args, *kwargs;
    bool spawn;
    bool gen;
};

size_t function_target(const skiff_function *fn, struct rpc_field *f)
{
    size_t n = 0;
    memset(f, 0, 3 * sizeof *f);
    if (__atomic_load_n(&fn->hydrated, __ATOMIC_ACQUIRE)) {
        f[n].key = "function_id";
        f[n].kind = RPC_STR;
        f[n++].str = fn->id;
    } else {
        f[n].key = "app";
        f[n].kind = RPC_STR;
        f[n++].str = fn->app;
        f[n].key = "function";
        f[n].kind = RPC_STR;
        f[n++].str = fn->name;
    }
    if (fn->params) {
        f[n].key = "params";
        f[n].kind = RPC_BIN;
        f[n].bin = fn->params;
        f[n++].len = fn->params_len;
    }
    return n;
}

int function_encode_args(skiff_function *fn, struct buf *out, size_t max, const skiff_value *args,
                         const skiff_value *kwargs, skiff_error *err)
{
    out->len = 0;
    out->max = max;
    int rc = codec_encode_args(out, args, kwargs);
    if (rc == SKIFF_OK)
        return SKIFF_OK;
    out->len = 0;
    buf_shrink(out);
    if (rc == SKIFF_ERR_REQUEST_SIZE)
        return skiff_error_set(err, rc, NULL,
                               "the arguments of %s.%s encode to more than the server's payload "
                               "limit of %zu bytes; nothing was sent",
                               fn->app, fn->name, max);
    if (rc == SKIFF_ERR_SERIALIZATION)
        return skiff_error_set(err, rc, NULL, "the arguments of %s.%s nest deeper than %d levels",
                               fn->app, fn->name, CODEC_MAX_DEPTH);
    if (rc == SKIFF_ERR_INVALID)
        return skiff_error_set(err, rc, NULL, "args must be a list and kwargs a map");
    return skiff_error_set(err, rc, NULL, "out of memory encoding the arguments");
}

static int build_call(struct skiff_client *c, struct buf *out, uint64_t rid, void *arg,
                      skiff_error *err)
{
    const struct call_req *q = arg;
    skiff_function *fn = q->fn;
    int rc = function_encode_args(fn, &c->args, c->payload_max, q->args, q->kwargs, err);
    if (rc != SKIFF_OK)
        return rc;
    const char *parent = client_parent_input();
    struct wire_writer w;
    bool cancel_on_close = fn->cancel_on_close && !q->spawn;
    wire_begin(&w, out, OP_CALL, rid,
               function_target_fields(fn) + 2 + (q->gen ? 1 : 0) + (parent ? 1 : 0) +
                   (cancel_on_close ? 1 : 0));
    function_put_target(&w, fn);
    wire_bin(&w, "args", c->args.data, c->args.len);
    wire_bool(&w, "spawn", q->spawn);
    if (q->gen)
        wire_bool(&w, "gen", true);
    if (cancel_on_close)
        wire_bool(&w, "cancel_on_close", true);
    if (parent)
        wire_str(&w, "parent_input_id", parent);
    rc = wire_end(&w);
    c->args.len = 0;
    buf_shrink(&c->args);
    if (rc == SKIFF_ERR_REQUEST_SIZE)
        return skiff_error_set(err, rc, NULL,
                               "the call to %s.%s is over the server's frame limit of %zu bytes",
                               fn->app, fn->name, out->max);
    if (rc != SKIFF_OK)
        return skiff_error_set(err, rc, NULL, "out of memory building the call");
    return SKIFF_OK;
}

int function_send(skiff_function *fn, const skiff_value *args, const skiff_value *kwargs,
                  bool spawn, bool gen, struct rpc_sink *s, uint64_t *rid, skiff_error *err)
{
    int rc = check_call(fn, args, kwargs, s, gen, err);
    if (rc != SKIFF_OK)
        return rc;
    struct call_req q = {fn, args, kwargs, spawn, gen};
    return rpc_send(fn->client, build_call, &q, 0, s, rid, err);
}

int function_send_call(skiff_function *fn, const skiff_value *args, const skiff_value *kwargs,
                       struct rpc_sink *s, skiff_error *err)
{
    return function_send(fn, args, kwargs, false, true, s, NULL, err);
}

/* Sends a CALL and waits for its reply: remote, spawn, spawn of a generator. */
static int call_wait(skiff_function *fn, const skiff_value *args, const skiff_value *kwargs,
                     bool spawn, bool gen, struct rpc_reply *r, skiff_error *err)
{
    struct call_req q = {fn, args, kwargs, spawn, gen};
    return rpc_request(fn->client, build_call, &q, 0, r, err);
}

/* Whether this process reads pickled Python objects: set by the Python extension. */
static bool accept_pickles;

void skiff__accept_pickles(void)
{
    accept_pickles = true;
}

int client_decode_result(const char *p, size_t n, skiff_value **out, skiff_error *err)
{
    skiff_value *v;
    int rc = codec_decode_value(p, n, &v, err);
    if (rc != SKIFF_OK)
        return rc;
    if (!accept_pickles && value_has_pickle(v)) {
        skiff_value_free(v);
        return skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL, "%s", VALUE_PICKLE_MESSAGE);
    }
    *out = v;
    return SKIFF_OK;
}

int function_reply_result(const struct wire_msg *m, skiff_value **result, skiff_error *err)
{
    const char *p;
    size_t n;
    if (!wire_get_bin(m, "value", &p, &n))
        return skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                               "the server's reply has no result value");
    return client_decode_result(p, n, result, err);
}

int skiff_function_remote(skiff_function *fn, const skiff_value *args, const skiff_value *kwargs,
                          skiff_value **result, skiff_error *err)
{
    int rc = check_call(fn, args, kwargs, result, false, err);
    if (rc != SKIFF_OK)
        return rc;
    struct rpc_reply r;
    rc = call_wait(fn, args, kwargs, false, false, &r, err);
    if (rc != SKIFF_OK)
        return rc;
    rc = function_remember(fn, r.msg, err);
    skiff_value *v = NULL;
    if (rc == SKIFF_OK)
        rc = function_reply_result(r.msg, &v, err);
    rpc_reply_release(fn->client, &r);
    if (rc == SKIFF_OK)
        *result = v;
    return rc;
}

int call_new(skiff_client *client, const char *id, skiff_call_kind kind, size_t inputs,
             skiff_call **out, skiff_error *err)
{
    skiff_call *call = mem_calloc(1, sizeof *call);
    if (!call)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    call->client = client;
    call->kind = kind;
    call->inputs = inputs;
    snprintf(call->id, sizeof call->id, "%s", id);
    *out = call;
    return SKIFF_OK;
}

int call_id_from_reply(const struct wire_msg *m, char id[ID_SIZE], skiff_error *err)
{
    if (!wire_copy_str(m, "call_id", id, ID_SIZE) || !id_valid(id, "fc"))
        return skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                               "the server's reply has no valid call_id");
    return SKIFF_OK;
}

/* spawn (gen false) or spawn_gen. */
static int spawn(skiff_function *fn, const skiff_value *args, const skiff_value *kwargs, bool gen,
                 skiff_call **out, skiff_error *err)
{
    int rc = check_call(fn, args, kwargs, out, gen, err);
    if (rc != SKIFF_OK)
        return rc;
    struct rpc_reply r;
    rc = call_wait(fn, args, kwargs, true, gen, &r, err);
    if (rc != SKIFF_OK)
        return rc;
    char id[ID_SIZE];
    rc = function_remember(fn, r.msg, err);
    if (rc == SKIFF_OK)
        rc = call_id_from_reply(r.msg, id, err);
    rpc_reply_release(fn->client, &r);
    if (rc != SKIFF_OK)
        return rc;
    return call_new(fn->client, id, gen ? SKIFF_CALL_GENERATOR : SKIFF_CALL_SINGLE, 1, out, err);
}

int skiff_function_spawn(skiff_function *fn, const skiff_value *args, const skiff_value *kwargs,
                         skiff_call **out, skiff_error *err)
{
    return spawn(fn, args, kwargs, false, out, err);
}

int skiff_function_spawn_gen(skiff_function *fn, const skiff_value *args, const skiff_value *kwargs,
                             skiff_call **out, skiff_error *err)
{
    return spawn(fn, args, kwargs, true, out, err);
}

/* --- calls ------------------------------------------------------------------------------------ */

/* Whether fc_id is a well-formed "fc-" id; else false with err set (SKIFF_ERR_INVALID). */
static bool call_id_ok(const char *fc_id, skiff_error *err)
{
    if (fc_id && id_valid(fc_id, "fc"))
        return true;
    skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                    "'%s' is not a function call id (fc- followed by 26 characters)",
                    fc_id ? fc_id : "(null)");
    return false;
}

int skiff_call_from_id(skiff_client *client, const char *fc_id, skiff_call **out, skiff_error *err)
{
    if (!client || !out)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_call_from_id: client and out must not be NULL");
    if (!call_id_ok(fc_id, err))
        return SKIFF_ERR_INVALID;
    struct rpc_field f[] = {{.key = "call_id", .kind = RPC_STR, .str = fc_id}};
    struct rpc_reply r;
    int rc = rpc_simple(client, OP_CALL_INFO, f, 1, 0, &r, err);
    if (rc != SKIFF_OK)
        return rc;
    skiff_call_kind kind;
    size_t inputs;
    call_info_read(r.msg, &kind, &inputs);
    rpc_reply_release(client, &r);
    return call_new(client, fc_id, kind, inputs, out, err);
}

static void from_id_fin(const struct async_req *r, int rc, const struct wire_msg *m, skiff_error *e)
{
    skiff_call *call = NULL;
    char id[ID_SIZE];
    if (rc == SKIFF_OK)
        rc = call_id_from_reply(m, id, e);
    if (rc == SKIFF_OK) {
        skiff_call_kind kind;
        size_t inputs;
        call_info_read(m, &kind, &inputs);
        rc = call_new(r->obj, id, kind, inputs, &call, e);
    }
    r->cb.call(r->ud, rc, call, rc == SKIFF_OK ? NULL : e);
}

int skiff_call_from_id_async(skiff_client *client, const char *fc_id, skiff_call_cb cb,
                             void *userdata, skiff_error *err)
{
    if (!client || !cb)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_call_from_id_async: client and cb must not be NULL");
    if (!call_id_ok(fc_id, err))
        return SKIFF_ERR_INVALID;
    struct async_req r = {.fin = from_id_fin, .obj = client, .ud = userdata, .cb.call = cb};
    struct rpc_field f[] = {{.key = "call_id", .kind = RPC_STR, .str = fc_id}};
    return async_request(client, OP_CALL_INFO, f, 1, &r, err);
}

void call_info_read(const struct wire_msg *m, skiff_call_kind *kind_out, size_t *inputs_out)
{
    skiff_call_kind kind = SKIFF_CALL_SINGLE;
    const char *k;
    size_t kn;
    if (wire_get_str(m, "kind", &k, &kn)) {
        if (kn == 3 && !memcmp(k, "map", 3))
            kind = SKIFF_CALL_MAP;
        else if (kn == 9 && !memcmp(k, "spawn_map", 9))
            kind = SKIFF_CALL_SPAWN_MAP;
        else if (kn == 9 && !memcmp(k, "generator", 9))
            kind = SKIFF_CALL_GENERATOR;
    }
    int64_t inputs = 1;
    if (!wire_get_int(m, "inputs", &inputs) || inputs < 0)
        inputs = kind == SKIFF_CALL_SINGLE || kind == SKIFF_CALL_GENERATOR ? 1 : 0;
    *kind_out = kind;
    *inputs_out = (size_t)inputs;
}

const char *skiff_call_id(const skiff_call *call)
{
    return call ? call->id : NULL;
}

skiff_call_kind skiff_call_get_kind(const skiff_call *call)
{
    return call ? call->kind : SKIFF_CALL_SINGLE;
}

size_t skiff_call_num_inputs(const skiff_call *call)
{
    return call ? call->inputs : 0;
}

int call_get_fields(const skiff_call *call, int64_t index, double timeout, struct rpc_field *f,
                    skiff_error *err)
{
    if (call->kind == SKIFF_CALL_GENERATOR)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "%s is a generator call: read its items with skiff_call_get_gen",
                               call->id);
    if (index < 0 && (call->kind == SKIFF_CALL_SPAWN_MAP || call->kind == SKIFF_CALL_MAP))
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "%s has %zu inputs: get one with skiff_call_get_index, or all "
                               "with skiff_call_iter",
                               call->id, call->inputs);
    if (isnan(timeout))
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "the timeout is not a number");
    int64_t ms;
    if (timeout < 0 || isinf(timeout))
        ms = -1; /* SKIFF_WAIT_FOREVER, or any other negative or infinite wait */
    else if (timeout == 0)
        ms = 0;
    else if (timeout > 9.2e15)
        ms = -1; /* longer than int64 milliseconds can say: forever in practice */
    else {
        ms = (int64_t)(timeout * 1000.0);
        if ((double)ms < timeout * 1000.0)
            ms++; /* round up: a short wait must not become a poll */
    }
    memset(f, 0, 3 * sizeof *f);
    f[0].key = "call_id";
    f[0].kind = RPC_STR;
    f[0].str = call->id;
    f[1].key = "timeout_ms";
    f[1].kind = RPC_INT;
    f[1].i = ms;
    f[2].key = "index";
    f[2].kind = RPC_INT;
    f[2].i = index;
    return SKIFF_OK;
}

/* GET of the call's result, or of input index (>= 0) of a multi-input call. */
static int get(skiff_call *call, int64_t index, double timeout, skiff_value **result,
               skiff_error *err)
{
    if (!call || !result)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_call_get: call and result must not be NULL");
    struct rpc_field f[3];
    int rc = call_get_fields(call, index, timeout, f, err);
    if (rc != SKIFF_OK)
        return rc;
    struct rpc_reply r;
    rc = rpc_simple(call->client, OP_GET, f, index >= 0 ? 3 : 2, 0, &r, err);
    if (rc != SKIFF_OK)
        return rc;
    skiff_value *v = NULL;
    rc = function_reply_result(r.msg, &v, err);
    rpc_reply_release(call->client, &r);
    if (rc == SKIFF_OK)
        *result = v;
    return rc;
}

int skiff_call_get(skiff_call *call, double timeout, skiff_value **result, skiff_error *err)
{
    return get(call, -1, timeout, result, err);
}

int skiff_call_get_index(skiff_call *call, size_t index, double timeout, skiff_value **result,
                         skiff_error *err)
{
    if (index > INT64_MAX)
        return skiff_error_set(err, SKIFF_ERR_NOT_FOUND, NULL, "input %zu is out of range", index);
    return get(call, (int64_t)index, timeout, result, err);
}

int skiff_call_cancel(skiff_call *call, bool terminate_containers, skiff_error *err)
{
    if (!call)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "skiff_call_cancel: call is NULL");
    struct rpc_field f[] = {
        {.key = "call_id", .kind = RPC_STR, .str = call->id},
        {.key = "terminate_containers", .kind = RPC_BOOL, .b = terminate_containers},
    };
    struct rpc_reply r;
    int rc = rpc_simple(call->client, OP_CANCEL, f, 2, 0, &r, err);
    if (rc == SKIFF_OK)
        rpc_reply_release(call->client, &r);
    return rc;
}

int skiff_call_gather(skiff_call *const *calls, size_t n, skiff_value **results, skiff_error *err)
{
    if (n > 0 && (!calls || !results))
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_call_gather: calls and results must not be NULL");
    for (size_t i = 0; i < n; i++)
        if (!calls[i])
            return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                                   "skiff_call_gather: call %zu is NULL", i);
    skiff_value **got = mem_calloc(n ? n : 1, sizeof *got);
    if (!got)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    int rc = SKIFF_OK;
    size_t i;
    for (i = 0; i < n && rc == SKIFF_OK; i++)
        rc = skiff_call_get(calls[i], SKIFF_WAIT_FOREVER, &got[i], err);
    if (rc == SKIFF_OK) {
        if (n > 0)
            memcpy(results, got, n * sizeof *got);
    } else {
        for (size_t k = 0; k < n; k++)
            skiff_value_free(got[k]);
    }
    mem_free(got);
    return rc;
}

void skiff_call_free(skiff_call *call)
{
    mem_free(call);
}
