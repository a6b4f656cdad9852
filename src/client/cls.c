/*
 * cls.c - classes (skiff.h, "Classes"): a class looked up by name, instances with typed
 * parameters, and their methods as function handles.
 *
 * A class handle is lazy like a function handle: CLS_LOOKUP on first need tells its methods
 * (name, function id, kind). An instance holds its parameters encoded once, canonically (a
 * msgpack map with keys sorted bytewise, as the server compares them), and each method handle
 * made from it carries a copy: every CALL and MAP_START of the method then sends `params`, so
 * the server routes it to the containers of that parameter set. Parameter values are limited to
 * int, str, bytes and bool (docs/protocol.md); anything else is refused before a request.
 */
#include <stdlib.h>
#include <string.h>

#include "async.h"
#include "common/codec.h"
#include "common/mem.h"
#include "common/suggest.h"
#include "common/proto.h"
#include "fn.h"
#include "rpc.h"

/* The longest method name (docs/protocol.md: 1-63 characters). */
#define NAME_MAX_LEN 63

struct method {
    char name[NAME_MAX_LEN + 1];
    char id[ID_SIZE];
    int kind; /* an enum fn_kind */
};

struct skiff_cls {
    skiff_client *client; /* borrowed */
    char *app;
    char *name;
    bool looked_up;
    struct method *methods;
    size_t nmethods;
};

struct skiff_obj {
    skiff_cls *cls; /* borrowed */
    char *params;   /* canonical msgpack map, or NULL: no parameters */
    size_t params_len;
};

int skiff_cls_from_name(skiff_client *client, const char *app, const char *name, skiff_cls **out,
                        skiff_error *err)
{
    if (!client || !out)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_cls_from_name: client and out must not be NULL");
    if (!app || !*app || !name || !*name || strlen(name) > NAME_MAX_LEN)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "a class is named by a non-empty app name and a class name of 1 "
                               "to %d characters",
                               NAME_MAX_LEN);
    skiff_cls *cls = mem_calloc(1, sizeof *cls);
    if (cls) {
        cls->app = mem_strdup(app);
        cls->name = mem_strdup(name);
    }
    if (!cls || !cls->app || !cls->name) {
        skiff_cls_free(cls);
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    }
    cls->client = client;
    *out = cls;
    return SKIFF_OK;
}

/* The enum fn_kind named by a method entry's kind. */
static int method_kind(const msgpack_object *k)
{
    if (!k || k->type != MSGPACK_OBJECT_STR)
        return FN_UNKNOWN;
    if (k->via.str.size == 9 && !memcmp(k->via.str.ptr, "generator", 9))
        return FN_GENERATOR;
    if (k->via.str.size == 3 && !memcmp(k->via.str.ptr, "web", 3))
        return FN_WEB;
    return FN_FUNCTION;
}

/* Copies the methods of a CLS_LOOKUP reply into cls. */
static int read_methods(skiff_cls *cls, const struct wire_msg *m, skiff_error *err)
{
    const msgpack_object *ms = wire_get(m, "methods");
    if (!ms || ms->type != MSGPACK_OBJECT_ARRAY)
        return skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                               "the server's CLS_LOOKUP reply has no methods");
    uint32_t n = ms->via.array.size;
    struct method *arr = mem_calloc(n ? n : 1, sizeof *arr);
    if (!arr)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *e = &ms->via.array.ptr[i];
        const msgpack_object *name = e->type == MSGPACK_OBJECT_MAP ? wire_obj_get(e, "name") : NULL;
        const msgpack_object *id =
            e->type == MSGPACK_OBJECT_MAP ? wire_obj_get(e, "function_id") : NULL;
        if (!name || name->type != MSGPACK_OBJECT_STR || name->via.str.size == 0 ||
            name->via.str.size > NAME_MAX_LEN || !id || id->type != MSGPACK_OBJECT_STR ||
            id->via.str.size >= ID_SIZE) {
            mem_free(arr);
            return skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                                   "method %u of %s.%s is malformed in the server's reply", i,
                                   cls->app, cls->name);
        }
        memcpy(arr[i].name, name->via.str.ptr, name->via.str.size);
        memcpy(arr[i].id, id->via.str.ptr, id->via.str.size);
        if (!id_valid(arr[i].id, "fu")) {
            mem_free(arr);
            return skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                                   "method %s of %s.%s has no valid function id", arr[i].name,
                                   cls->app, cls->name);
        }
        arr[i].kind = method_kind(wire_obj_get(e, "kind"));
    }
    cls->methods = arr;
    cls->nmethods = n;
    cls->looked_up = true;
    return SKIFF_OK;
}

int skiff_cls_hydrate(skiff_cls *cls, skiff_error *err)
{
    if (!cls)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "skiff_cls_hydrate: cls is NULL");
    if (cls->looked_up)
        return SKIFF_OK;
    struct rpc_field f[] = {
        {.key = "app", .kind = RPC_STR, .str = cls->app},
        {.key = "class", .kind = RPC_STR, .str = cls->name},
    };
    struct rpc_reply r;
    int rc = rpc_simple(cls->client, OP_CLS_LOOKUP, f, 2, 0, &r, err);
    if (rc != SKIFF_OK)
        return rc;
    rc = read_methods(cls, r.msg, err);
    rpc_reply_release(cls->client, &r);
    return rc;
}

/* Finishes cls_hydrate_async: reads the methods (nothing to read when the class was looked up
 * already, or got looked up meanwhile). */
static void cls_hydrate_fin(const struct async_req *r, int rc, const struct wire_msg *m,
                            skiff_error *e)
{
    skiff_cls *cls = r->obj;
    if (rc == SKIFF_OK && m && !cls->looked_up)
        rc = read_methods(cls, m, e);
    r->cb.done(r->ud, rc, rc == SKIFF_OK ? NULL : e);
}

int skiff_cls_hydrate_async(skiff_cls *cls, skiff_done_cb cb, void *userdata, skiff_error *err)
{
    if (!cls || !cb)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_cls_hydrate_async: cls and cb must not be NULL");
    struct async_req r = {.fin = cls_hydrate_fin, .obj = cls, .ud = userdata, .cb.done = cb};
    if (cls->looked_up)
        return async_complete_soon(cls->client, &r, err);
    struct rpc_field f[] = {
        {.key = "app", .kind = RPC_STR, .str = cls->app},
        {.key = "class", .kind = RPC_STR, .str = cls->name},
    };
    return async_request(cls->client, OP_CLS_LOOKUP, f, 2, &r, err);
}

void skiff_cls_free(skiff_cls *cls)
{
    if (!cls)
        return;
    mem_free(cls->app);
    mem_free(cls->name);
    mem_free(cls->methods);
    mem_free(cls);
}

/* Orders map entry indexes by key, bytewise (the keys are NUL-free UTF-8). */
static const skiff_value *sort_map;
static int by_key(const void *a, const void *b)
{
    return strcmp(skiff_map_key(sort_map, *(const size_t *)a),
                  skiff_map_key(sort_map, *(const size_t *)b));
}

/* Encodes params canonically into b. */
static int encode_params(const skiff_value *params, struct buf *b, skiff_error *err)
{
    size_t n = skiff_map_len(params);
    size_t *order = mem_calloc(n ? n : 1, sizeof *order);
    if (!order)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    /* qsort has no context argument in C11: the map is passed through a file-level pointer,
     * under a lock so instances can be made from several threads. */
    static pthread_mutex_t sort_mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&sort_mu);
    sort_map = params;
    qsort(order, n, sizeof *order, by_key);
    sort_map = NULL;
    pthread_mutex_unlock(&sort_mu);
    msgpack_packer pk;
    msgpack_packer_init(&pk, b, codec_buf_write);
    int rc = codec_status(msgpack_pack_map(&pk, n));
    for (size_t i = 0; i < n && rc == SKIFF_OK; i++) {
        const char *k = skiff_map_key(params, order[i]);
        rc = codec_status(msgpack_pack_str_with_body(&pk, k, strlen(k)));
        if (rc == SKIFF_OK)
            rc = codec_pack_value(&pk, skiff_map_value(params, order[i]));
    }
    mem_free(order);
    if (rc != SKIFF_OK)
        return skiff_error_set(err, rc, NULL, "cannot encode the class parameters");
    return SKIFF_OK;
}

int skiff_cls_instantiate(skiff_cls *cls, const skiff_value *params, skiff_obj **out,
                          skiff_error *err)
{
    if (!cls || !out)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_cls_instantiate: cls and out must not be NULL");
    if (params && skiff_value_type(params) != SKIFF_MAP)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "the parameters of %s.%s must be a map, not a %s", cls->app,
                               cls->name, skiff_type_name(skiff_value_type(params)));
    for (size_t i = 0; i < skiff_map_len(params); i++) {
        skiff_type t = skiff_value_type(skiff_map_value(params, i));
        if (t != SKIFF_INT && t != SKIFF_STRING && t != SKIFF_BYTES && t != SKIFF_BOOL)
            return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                                   "parameter '%s' of %s.%s is a %s: class parameters are int, "
                                   "str, bytes or bool",
                                   skiff_map_key(params, i), cls->app, cls->name,
                                   skiff_type_name(t));
    }
    skiff_obj *obj = mem_calloc(1, sizeof *obj);
    if (!obj)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    obj->cls = cls;
    if (params && skiff_map_len(params) > 0) {
        struct buf b;
        buf_init(&b, PROTO_PAYLOAD_MAX);
        int rc = encode_params(params, &b, err);
        if (rc != SKIFF_OK) {
            buf_deinit(&b);
            mem_free(obj);
            return rc;
        }
        obj->params = b.data; /* the buffer's memory now belongs to obj */
        obj->params_len = b.len;
    }
    *out = obj;
    return SKIFF_OK;
}

void skiff_obj_free(skiff_obj *obj)
{
    if (!obj)
        return;
    mem_free(obj->params);
    mem_free(obj);
}

int skiff_obj_method(skiff_obj *obj, const char *name, skiff_function **out, skiff_error *err)
{
    if (!obj || !name || !*name || !out)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_obj_method: obj, a method name and out are needed");
    skiff_cls *cls = obj->cls;
    int rc = skiff_cls_hydrate(cls, err);
    if (rc != SKIFF_OK)
        return rc;
    const struct method *m = NULL;
    for (size_t i = 0; i < cls->nmethods && !m; i++)
        if (!strcmp(cls->methods[i].name, name))
            m = &cls->methods[i];
    if (!m) {
        struct suggest near;
        suggest_init(&near, name);
        for (size_t i = 0; i < cls->nmethods; i++)
            suggest_offer(&near, cls->methods[i].name);
        return skiff_error_set(err, SKIFF_ERR_NOT_FOUND, NULL,
                               "Lookup failed for method '%s' of Cls '%s' from the '%s' app%s%s%s",
                               name, cls->name, cls->app, near.best ? " (did you mean '" : "",
                               near.best ? near.best : "", near.best ? "'?)" : "");
    }
    char full[2 * NAME_MAX_LEN + 2];
    snprintf(full, sizeof full, "%s.%s", cls->name, name);
    skiff_function *fn;
    rc = skiff_function_from_name(cls->client, cls->app, full, &fn, err);
    if (rc != SKIFF_OK)
        return rc;
    if (obj->params) {
        fn->params = mem_alloc(obj->params_len);
        if (!fn->params) {
            skiff_function_free(fn);
            return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
        }
        memcpy(fn->params, obj->params, obj->params_len);
        fn->params_len = obj->params_len;
    }
    memcpy(fn->id, m->id, sizeof fn->id);
    fn->hydrated = true;
    fn->kind = m->kind;
    *out = fn;
    return SKIFF_OK;
}
