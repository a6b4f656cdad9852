/*
 * ops.c - the request helpers the CLI uses (see ops.h): one rpc_simple each, the reply turned
 * into a skiff_value map; and LOGS, one streaming request whose lines are handed to a callback
 * as they arrive.
 */
#include "ops.h"

#include "common/codec.h"
#include "common/id.h"
#include "common/proto.h"
#include "fn.h"
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

static int deploy(skiff_client *c, const char *app, const void *code, size_t len,
                  const skiff_value *functions, const skiff_value *classes, bool ephemeral,
                  skiff_value **reply, skiff_error *err)
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
        {.key = "ephemeral", .kind = RPC_BOOL, .b = true},
    };
    int rc = request(c, OP_DEPLOY, f, ephemeral ? 5 : 4, PROTO_CODE_MAX + PROTO_FRAME_OVERHEAD,
                     reply, err);
    skiff_value_free(none);
    return rc;
}

int client_deploy(skiff_client *c, const char *app, const void *code, size_t len,
                  const skiff_value *functions, const skiff_value *classes, skiff_value **reply,
                  skiff_error *err)
{
    return deploy(c, app, code, len, functions, classes, false, reply, err);
}

int client_deploy_ephemeral(skiff_client *c, const char *app, const void *code, size_t len,
                            const skiff_value *functions, const skiff_value *classes,
                            skiff_value **reply, skiff_error *err)
{
    return deploy(c, app, code, len, functions, classes, true, reply, err);
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

/* Encodes params (a map, or NULL) as the "params" field f (bin in b). 0, or an error. */
static int params_field(const skiff_value *params, struct buf *b, struct rpc_field *f,
                        skiff_error *err)
{
    if (skiff_value_type(params) != SKIFF_MAP)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "params must be a map");
    if (codec_encode_value(b, params) != SKIFF_OK)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory encoding params");
    *f = (struct rpc_field){.key = "params", .kind = RPC_BIN, .bin = b->data, .len = b->len};
    return SKIFF_OK;
}

int client_stats(skiff_client *c, const char *app, const char *function, const skiff_value *params,
                 skiff_value **reply, skiff_error *err)
{
    if (!app || !*app || !function || !*function)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "stats need a non-empty app name and function name");
    struct rpc_field f[3] = {
        {.key = "app", .kind = RPC_STR, .str = app},
        {.key = "function", .kind = RPC_STR, .str = function},
    };
    struct buf b;
    buf_init(&b, 1u << 20);
    int rc = params && skiff_map_len(params) ? params_field(params, &b, &f[2], err) : SKIFF_OK;
    if (rc == SKIFF_OK)
        rc = request(c, OP_STATS, f, params && skiff_map_len(params) ? 3 : 2, 0, reply, err);
    buf_deinit(&b);
    return rc;
}

int client_token_new(skiff_client *c, const char *scope, int64_t expires_ms, skiff_value **reply,
                     skiff_error *err)
{
    if (expires_ms < 0)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "a token cannot expire in the past");
    struct rpc_field f[2];
    size_t n = 0;
    if (scope)
        f[n++] = (struct rpc_field){.key = "scope", .kind = RPC_STR, .str = scope};
    if (expires_ms > 0)
        f[n++] = (struct rpc_field){.key = "expires_ms", .kind = RPC_INT, .i = expires_ms};
    return request(c, OP_TOKEN_NEW, n ? f : NULL, n, 0, reply, err);
}

int client_token_list(skiff_client *c, skiff_value **reply, skiff_error *err)
{
    return request(c, OP_TOKEN_LIST, NULL, 0, 0, reply, err);
}

int client_dashboard_login(skiff_client *c, skiff_value **reply, skiff_error *err)
{
    return request(c, OP_DASHBOARD_LOGIN, NULL, 0, 0, reply, err);
}

int client_token_revoke(skiff_client *c, const char *token_id, skiff_error *err)
{
    if (!token_id || !id_valid(token_id, "tk"))
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "'%s' is not a token id (tk- followed by 26 characters)",
                               token_id ? token_id : "(null)");
    struct rpc_field f[] = {{.key = "token_id", .kind = RPC_STR, .str = token_id}};
    return request(c, OP_TOKEN_REVOKE, f, 1, 0, NULL, err);
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

/* Hands the items of one STREAM frame to fn. SKIFF_OK, 1 when fn asked to stop, or a failure. */
static int log_items(const struct wire_msg *m, client_log_fn fn, void *ctx, skiff_error *err)
{
    const msgpack_object *items = wire_get(m, "items");
    if (!items || items->type != MSGPACK_OBJECT_ARRAY)
        return skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                               "the server sent a log frame without items");
    for (uint32_t i = 0; i < items->via.array.size; i++) {
        skiff_value *line = NULL;
        int rc = codec_from_object(&items->via.array.ptr[i], &line, err);
        if (rc == SKIFF_OK && (skiff_value_type(line) != SKIFF_LIST || skiff_list_len(line) < 5))
            rc = skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                                 "the server sent a malformed log line");
        int stop = rc == SKIFF_OK ? fn(ctx, line) : 0;
        skiff_value_free(line);
        if (rc != SKIFF_OK)
            return rc;
        if (stop)
            return 1;
    }
    return SKIFF_OK;
}

int client_logs(skiff_client *c, const char *app, const char *function, const skiff_value *params,
                bool follow, int64_t tail, client_log_fn fn, void *ctx, skiff_error *err)
{
    if (!c || !fn || !app || !*app)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "logs need a client and an app name");
    struct rpc_field f[5] = {{.key = "app", .kind = RPC_STR, .str = app},
                             {.key = "follow", .kind = RPC_BOOL, .b = follow}};
    size_t n = 2;
    if (function && *function)
        f[n++] = (struct rpc_field){.key = "function", .kind = RPC_STR, .str = function};
    if (tail >= 0)
        f[n++] = (struct rpc_field){.key = "tail", .kind = RPC_INT, .i = tail};
    struct buf pb;
    buf_init(&pb, 1u << 20);
    if (params && skiff_map_len(params)) {
        int prc = params_field(params, &pb, &f[n++], err);
        if (prc != SKIFF_OK) {
            buf_deinit(&pb);
            return prc;
        }
    }
    struct rpc_sink s;
    rpc_sink_init(&s);
    struct wire_msg m;
    if (wire_msg_init(&m) < 0) {
        rpc_sink_deinit(c, &s);
        buf_deinit(&pb);
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    }
    int rc = rpc_simple_send(c, OP_LOGS, f, n, &s, NULL, err);
    buf_deinit(&pb); /* the request is built */
    while (rc == SKIFF_OK) {
        struct rpc_frame *fr = NULL;
        rc = rpc_sink_next(c, &s, -1, &fr, err);
        if (rc != SKIFF_OK)
            break;
        if (wire_msg_parse(&m, fr->body, fr->len) < 0)
            rc = skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                                 "the server sent a malformed frame");
        else if (m.op == OP_STREAM)
            rc = log_items(&m, fn, ctx, err);
        else if (m.op == OP_ERROR) {
            int64_t code = SKIFF_ERR_INTERNAL;
            wire_get_int(&m, "code", &code);
            wire_get_error(&m, err);
            rc = code > 0 && code <= 0xffff ? (int)code : SKIFF_ERR_INTERNAL;
            if (err)
                err->code = (skiff_code)rc;
        } else {
            rc = 1; /* the final OK: every line kept was sent */
        }
        rpc_frame_free(fr);
    }
    wire_msg_deinit(&m);
    rpc_sink_deinit(c, &s);
    return rc == 1 ? SKIFF_OK : rc;
}

void client_cancel_on_close(skiff_function *fn)
{
    if (fn)
        fn->cancel_on_close = true;
}

/* A chunk of a volume's file and the fields around it fit one frame. */
#define VOLUME_FRAME_MAX ((8u << 20) + PROTO_FRAME_OVERHEAD)

/* Checks a secret's or volume's name before sending. */
static int need_name(const char *name, const char *what, skiff_error *err)
{
    if (!name || !*name)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "no %s name", what);
    return SKIFF_OK;
}

int client_secret_create(skiff_client *c, const char *name, const skiff_value *values, bool replace,
                         skiff_value **reply, skiff_error *err)
{
    if (need_name(name, "secret", err) != SKIFF_OK)
        return err->code;
    if (skiff_value_type(values) != SKIFF_MAP)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "a secret's values must be a map");
    struct rpc_field f[] = {
        {.key = "name", .kind = RPC_STR, .str = name},
        {.key = "values", .kind = RPC_VALUE, .v = values},
        {.key = "replace", .kind = RPC_BOOL, .b = replace},
    };
    return request(c, OP_SECRET_CREATE, f, 3, 0, reply, err);
}

int client_secret_list(skiff_client *c, skiff_value **reply, skiff_error *err)
{
    return request(c, OP_SECRET_LIST, NULL, 0, 0, reply, err);
}

int client_secret_delete(skiff_client *c, const char *name, skiff_error *err)
{
    if (need_name(name, "secret", err) != SKIFF_OK)
        return err->code;
    struct rpc_field f[] = {{.key = "name", .kind = RPC_STR, .str = name}};
    return request(c, OP_SECRET_DELETE, f, 1, 0, NULL, err);
}

int client_volume_create(skiff_client *c, const char *name, skiff_value **reply, skiff_error *err)
{
    if (need_name(name, "volume", err) != SKIFF_OK)
        return err->code;
    struct rpc_field f[] = {{.key = "name", .kind = RPC_STR, .str = name}};
    return request(c, OP_VOLUME_CREATE, f, 1, 0, reply, err);
}

int client_volume_list(skiff_client *c, skiff_value **reply, skiff_error *err)
{
    return request(c, OP_VOLUME_LIST, NULL, 0, 0, reply, err);
}

int client_volume_delete(skiff_client *c, const char *name, skiff_error *err)
{
    if (need_name(name, "volume", err) != SKIFF_OK)
        return err->code;
    struct rpc_field f[] = {{.key = "name", .kind = RPC_STR, .str = name}};
    return request(c, OP_VOLUME_DELETE, f, 1, 0, NULL, err);
}

int client_volume_put(skiff_client *c, const char *name, const char *path, const void *data,
                      size_t len, int64_t offset, bool last, skiff_value **reply, skiff_error *err)
{
    if (need_name(name, "volume", err) != SKIFF_OK)
        return err->code;
    struct rpc_field f[] = {
        {.key = "name", .kind = RPC_STR, .str = name},
        {.key = "path", .kind = RPC_STR, .str = path ? path : ""},
        {.key = "data", .kind = RPC_BIN, .bin = data ? data : "", .len = len},
        {.key = "offset", .kind = RPC_INT, .i = offset},
        {.key = "last", .kind = RPC_BOOL, .b = last},
    };
    return request(c, OP_VOLUME_PUT, f, 5, VOLUME_FRAME_MAX, reply, err);
}

int client_volume_get(skiff_client *c, const char *name, const char *path, int64_t offset,
                      int64_t length, skiff_value **reply, skiff_error *err)
{
    if (need_name(name, "volume", err) != SKIFF_OK)
        return err->code;
    struct rpc_field f[] = {
        {.key = "name", .kind = RPC_STR, .str = name},
        {.key = "path", .kind = RPC_STR, .str = path ? path : ""},
        {.key = "offset", .kind = RPC_INT, .i = offset},
        {.key = "length", .kind = RPC_INT, .i = length},
    };
    return request(c, OP_VOLUME_GET, f, 4, 0, reply, err);
}

int client_volume_ls(skiff_client *c, const char *name, const char *path, skiff_value **reply,
                     skiff_error *err)
{
    if (need_name(name, "volume", err) != SKIFF_OK)
        return err->code;
    struct rpc_field f[] = {
        {.key = "name", .kind = RPC_STR, .str = name},
        {.key = "path", .kind = RPC_STR, .str = path ? path : ""},
    };
    return request(c, OP_VOLUME_LS, f, 2, 0, reply, err);
}
