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

#include "client.h"
#include "common/codec.h"
#include "common/id.h"
#include "common/mem.h"
#include "common/proto.h"
#include "rpc.h"

struct skiff_function {
    skiff_client *client; /* borrowed */
    char *app;
    char *name;
    char id[ID_SIZE]; /* "fu-..." once hydrated */
    bool hydrated;    /* id is set (atomic load/store) */
};

struct skiff_call {
    skiff_client *client; /* borrowed */
    char id[ID_SIZE];     /* "fc-..." */
};

/* The input the calling thread runs, for parent_input_id (set by the container runtime). */
static _Thread_local const char *parent_input;

void client_set_parent_input(const char *input_id)
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

/* Records the function id from a reply (LOOKUP or CALL) if the handle has none yet. A reply
 * without a well-formed id is a DeserializationError. */
static int remember_id(skiff_function *fn, const struct wire_msg *m, skiff_error *err)
{
    if (__atomic_load_n(&fn->hydrated, __ATOMIC_ACQUIRE))
        return SKIFF_OK;
    char id[ID_SIZE];
    if (!wire_copy_str(m, "function_id", id, sizeof id) || !id_valid(id, "fu"))
        return skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                               "the server's reply has no valid function_id");
    pthread_mutex_lock(&fn->client->mu);
    if (!fn->hydrated) {
        memcpy(fn->id, id, sizeof id);
        __atomic_store_n(&fn->hydrated, true, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&fn->client->mu);
    return SKIFF_OK;
}

int skiff_function_hydrate(skiff_function *fn, skiff_error *err)
{
    if (!fn)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "skiff_function_hydrate: fn is NULL");
    if (__atomic_load_n(&fn->hydrated, __ATOMIC_ACQUIRE))
        return SKIFF_OK;
    struct rpc_field f[] = {
        {.key = "app", .kind = RPC_STR, .str = fn->app},
        {.key = "function", .kind = RPC_STR, .str = fn->name},
    };
    struct rpc_reply r;
    int rc = rpc_simple(fn->client, OP_LOOKUP, f, 2, 0, &r, err);
    if (rc != SKIFF_OK)
        return rc;
    rc = remember_id(fn, r.msg, err);
    rpc_reply_release(fn->client, &r);
    return rc;
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
    mem_free(fn);
}

/* --- CALL --------------------------------------------------------------------------------- */

struct call_req {
    skiff_function *fn;
    const skiff_value *args, *kwargs;
    bool spawn;
};

static int build_call(struct skiff_client *c, struct buf *out, uint64_t rid, void *arg,
                      skiff_error *err)
{
    const struct call_req *q = arg;
    skiff_function *fn = q->fn;
    c->args.len = 0;
    c->args.max = c->payload_max;
    int rc = codec_encode_args(&c->args, q->args, q->kwargs);
    if (rc != SKIFF_OK) {
        c->args.len = 0;
        buf_shrink(&c->args);
        if (rc == SKIFF_ERR_REQUEST_SIZE)
            return skiff_error_set(err, rc, NULL,
                                   "the arguments of %s.%s encode to more than the server's "
                                   "payload limit of %zu bytes; nothing was sent",
                                   fn->app, fn->name, c->payload_max);
        if (rc == SKIFF_ERR_SERIALIZATION)
            return skiff_error_set(err, rc, NULL,
                                   "the arguments of %s.%s nest deeper than %d levels", fn->app,
                                   fn->name, CODEC_MAX_DEPTH);
        if (rc == SKIFF_ERR_INVALID)
            return skiff_error_set(err, rc, NULL, "args must be a list and kwargs a map");
        return skiff_error_set(err, rc, NULL, "out of memory encoding the arguments");
    }
    const char *parent = client_parent_input();
    struct wire_writer w;
    wire_begin(&w, out, OP_CALL, rid, (fn->hydrated ? 3 : 4) + (parent ? 1 : 0));
    if (fn->hydrated) {
        wire_str(&w, "function_id", fn->id);
    } else {
        wire_str(&w, "app", fn->app);
        wire_str(&w, "function", fn->name);
    }
    wire_bin(&w, "args", c->args.data, c->args.len);
    wire_bool(&w, "spawn", q->spawn);
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

/* Checks the argument shapes before anything touches the network. */
static int check_call(const skiff_function *fn, const skiff_value *args, const skiff_value *kwargs,
                      const void *out, skiff_error *err)
{
    if (!fn || !out)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "the function handle and the result pointer must not be NULL");
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

/* Decodes the "value" field of an OK reply (CALL or GET) into *result. */
static int reply_result(const struct wire_msg *m, skiff_value **result, skiff_error *err)
{
    const char *p;
    size_t n;
    if (!wire_get_bin(m, "value", &p, &n))
        return skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                               "the server's reply has no result value");
    return codec_decode_value(p, n, result, err);
}

int skiff_function_remote(skiff_function *fn, const skiff_value *args, const skiff_value *kwargs,
                          skiff_value **result, skiff_error *err)
{
    int rc = check_call(fn, args, kwargs, result, err);
    if (rc != SKIFF_OK)
        return rc;
    struct call_req q = {fn, args, kwargs, false};
    struct rpc_reply r;
    rc = rpc_request(fn->client, build_call, &q, 0, &r, err);
    if (rc != SKIFF_OK)
        return rc;
    rc = remember_id(fn, r.msg, err);
    skiff_value *v = NULL;
    if (rc == SKIFF_OK)
        rc = reply_result(r.msg, &v, err);
    rpc_reply_release(fn->client, &r);
    if (rc == SKIFF_OK)
        *result = v;
    return rc;
}

static int call_new(skiff_client *client, const char *id, skiff_call **out, skiff_error *err)
{
    skiff_call *call = mem_calloc(1, sizeof *call);
    if (!call)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    call->client = client;
    snprintf(call->id, sizeof call->id, "%s", id);
    *out = call;
    return SKIFF_OK;
}

int skiff_function_spawn(skiff_function *fn, const skiff_value *args, const skiff_value *kwargs,
                         skiff_call **out, skiff_error *err)
{
    int rc = check_call(fn, args, kwargs, out, err);
    if (rc != SKIFF_OK)
        return rc;
    struct call_req q = {fn, args, kwargs, true};
    struct rpc_reply r;
    rc = rpc_request(fn->client, build_call, &q, 0, &r, err);
    if (rc != SKIFF_OK)
        return rc;
    char id[ID_SIZE];
    rc = remember_id(fn, r.msg, err);
    if (rc == SKIFF_OK && (!wire_copy_str(r.msg, "call_id", id, sizeof id) || !id_valid(id, "fc")))
        rc = skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                             "the server's reply to a spawn has no valid call_id");
    rpc_reply_release(fn->client, &r);
    if (rc != SKIFF_OK)
        return rc;
    return call_new(fn->client, id, out, err);
}

/* --- calls ------------------------------------------------------------------------------------ */

int skiff_call_from_id(skiff_client *client, const char *fc_id, skiff_call **out, skiff_error *err)
{
    if (!client || !out)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_call_from_id: client and out must not be NULL");
    if (!fc_id || !id_valid(fc_id, "fc"))
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "'%s' is not a function call id (fc- followed by 26 characters)",
                               fc_id ? fc_id : "(null)");
    struct rpc_field f[] = {{.key = "call_id", .kind = RPC_STR, .str = fc_id}};
    struct rpc_reply r;
    int rc = rpc_simple(client, OP_CALL_INFO, f, 1, 0, &r, err);
    if (rc != SKIFF_OK)
        return rc;
    rpc_reply_release(client, &r);
    return call_new(client, fc_id, out, err);
}

const char *skiff_call_id(const skiff_call *call)
{
    return call ? call->id : NULL;
}

int skiff_call_get(skiff_call *call, double timeout, skiff_value **result, skiff_error *err)
{
    if (!call || !result)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_call_get: call and result must not be NULL");
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
    struct rpc_field f[] = {
        {.key = "call_id", .kind = RPC_STR, .str = call->id},
        {.key = "timeout_ms", .kind = RPC_INT, .i = ms},
    };
    struct rpc_reply r;
    int rc = rpc_simple(call->client, OP_GET, f, 2, 0, &r, err);
    if (rc != SKIFF_OK)
        return rc;
    skiff_value *v = NULL;
    rc = reply_result(r.msg, &v, err);
    rpc_reply_release(call->client, &r);
    if (rc == SKIFF_OK)
        *result = v;
    return rc;
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
