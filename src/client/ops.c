/*
 * ops.c - the request helpers the CLI uses (see ops.h): one rpc_simple each, the reply turned
 * into a skiff_value map.
 */
#include "ops.h"

#include "common/id.h"
#include "common/proto.h"
#include "rpc.h"

/* Sends op with fields and converts the OK reply (if wanted) into *reply. */
static int request(skiff_client *c, int op, const struct rpc_field *f, size_t n, size_t frame_max,
                   skiff_value **reply, skiff_error *err)
{
    if (!c)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "no client");
    struct rpc_reply r;
    int rc = rpc_simple(c, op, f, n, frame_max, &r, err);
    if (rc != SKIFF_OK)
        return rc;
    skiff_value *v = NULL;
    if (reply)
        rc = rpc_reply_value(r.msg, &v, err);
    rpc_reply_release(c, &r);
    if (rc == SKIFF_OK && reply)
        *reply = v;
    return rc;
}

/* True when v is a list of maps. */
static bool list_of_maps(const skiff_value *v)
{
    if (skiff_value_type(v) != SKIFF_LIST)
        return false;
    for (size_t i = 0; i < skiff_list_len(v); i++)
        if (skiff_value_type(skiff_list_get(v, i)) != SKIFF_MAP)
            return false;
    return true;
}

int client_deploy(skiff_client *c, const char *app, const void *code, size_t len,
                  const skiff_value *functions, const skiff_value *classes, skiff_value **reply,
                  skiff_error *err)
{
    if (!app || !*app)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "cannot deploy: no app name");
    if (!code || len == 0)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "cannot deploy %s: the code is empty",
                               app);
    if (len > PROTO_CODE_MAX)
        return skiff_error_set(err, SKIFF_ERR_REQUEST_SIZE, NULL,
                               "cannot deploy %s: the code is %zu bytes, over the limit of %u", app,
                               len, PROTO_CODE_MAX);
    if (!list_of_maps(functions))
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "cannot deploy %s: the function definitions are not a list of maps",
                               app);
    if (classes && !list_of_maps(classes))
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "cannot deploy %s: the class definitions are not a list of maps",
                               app);
    skiff_value *none = classes ? NULL : skiff_value_list();
    if (!classes && !none)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    struct rpc_field f[] = {
        {.key = "app", .kind = RPC_STR, .str = app},
        {.key = "code", .kind = RPC_BIN, .bin = code, .len = len},
        {.key = "functions", .kind = RPC_VALUE, .v = functions},
        {.key = "classes", .kind = RPC_VALUE, .v = classes ? classes : none},
    };
    int rc = request(c, OP_DEPLOY, f, 4, PROTO_CODE_MAX + PROTO_FRAME_OVERHEAD, reply, err);
    skiff_value_free(none);
    return rc;
}

int client_app_list(skiff_client *c, skiff_value **reply, skiff_error *err)
{
    return request(c, OP_APP_LIST, NULL, 0, 0, reply, err);
}

int client_app_stop(skiff_client *c, const char *app, skiff_error *err)
{
    if (!app || !*app)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "no app name");
    struct rpc_field f[] = {{.key = "app", .kind = RPC_STR, .str = app}};
    return request(c, OP_APP_STOP, f, 1, 0, NULL, err);
}

int client_container_list(skiff_client *c, skiff_value **reply, skiff_error *err)
{
    return request(c, OP_CONTAINER_LIST, NULL, 0, 0, reply, err);
}

int client_stats(skiff_client *c, const char *app, const char *function, skiff_value **reply,
                 skiff_error *err)
{
    if (!app || !*app || !function || !*function)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "stats need a non-empty app name and function name");
    struct rpc_field f[] = {
        {.key = "app", .kind = RPC_STR, .str = app},
        {.key = "function", .kind = RPC_STR, .str = function},
    };
    return request(c, OP_STATS, f, 2, 0, reply, err);
}

int client_token_new(skiff_client *c, skiff_value **reply, skiff_error *err)
{
    return request(c, OP_TOKEN_NEW, NULL, 0, 0, reply, err);
}

int client_call_info(skiff_client *c, const char *call_id, skiff_value **reply, skiff_error *err)
{
    if (!call_id || !id_valid(call_id, "fc"))
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "'%s' is not a function call id (fc- followed by 26 characters)",
                               call_id ? call_id : "(null)");
    struct rpc_field f[] = {{.key = "call_id", .kind = RPC_STR, .str = call_id}};
    return request(c, OP_CALL_INFO, f, 1, 0, reply, err);
}
