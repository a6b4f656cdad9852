/*
 * proto.c - client requests on the server: HELLO first, then one handler per operation
 * (docs/protocol.md). Handlers validate every field and answer each request exactly once:
 * at once, or later through calls.c (blocking calls, GET with a wait, spawns after commit).
 */
#include "proto.h"

#include <stdio.h>
#include <string.h>

#include "apps.h"
#include "auth.h"
#include "calls.h"
#include "common/id.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/proto.h"
#include "container.h"
#include "sched.h"

static struct proto_limits limits;

/* Copies string field key into out; on failure replies InvalidError naming the field. */
static bool need_str(struct conn *c, struct wire_msg *m, const char *key, char *out, size_t size)
{
    if (wire_copy_str(m, key, out, size))
        return true;
    const char *p;
    size_t n;
    if (wire_get_str(m, key, &p, &n))
        conn_error(c, m->rid, SKIFF_ERR_INVALID, "field '%s' is too long or holds a NUL", key);
    else
        conn_error(c, m->rid, SKIFF_ERR_INVALID, "field '%s' (a string) is missing", key);
    return false;
}

static void not_found(struct conn *c, uint64_t rid, const char *app, const char *fn)
{
    struct app *a = apps_find(app);
    const char *why = !a           ? "the app is not deployed"
                      : a->stopped ? "the app is stopped"
                                   : "the app has no such function";
    conn_error(c, rid, SKIFF_ERR_NOT_FOUND, "Lookup failed for Function '%s' from the '%s' app: %s",
               fn, app, why);
}

static void hello(struct conn *c, struct wire_msg *m)
{
    char id[128], secret[256];
    if (!wire_copy_str(m, "token_id", id, sizeof id) ||
        !wire_copy_str(m, "token_secret", secret, sizeof secret) || !id[0] || !secret[0]) {
        conn_error(c, m->rid, SKIFF_ERR_AUTH,
                   "no token presented: set SKIFF_TOKEN_ID and SKIFF_TOKEN_SECRET, or token_id "
                   "and token_secret in ~/.skiff.toml (skiffd writes it on its first start)");
        conn_close_after_flush(c);
        return;
    }
    if (!auth_check(id, secret)) {
        log_warn("%s: refused token %s", c->peer, id);
        conn_error(c, m->rid, SKIFF_ERR_AUTH, "token %s was refused by the server", id);
        conn_close_after_flush(c);
        return;
    }
    c->authed = true;
    c->max_frame = limits.frame_max;
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, m->rid, 3);
    wire_str(&w, "server", "skiffd " SKIFF_VERSION);
    wire_int(&w, "version", PROTO_VERSION);
    wire_int(&w, "payload_max", (int64_t)limits.payload_max);
    wire_end(&w);
}

static void lookup(struct conn *c, struct wire_msg *m)
{
    char app[256], name[256];
    if (!need_str(c, m, "app", app, sizeof app) || !need_str(c, m, "function", name, sizeof name))
        return;
    struct function *fn = apps_lookup(app, name);
    if (!fn) {
        not_found(c, m->rid, app, name);
        return;
    }
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, m->rid, 2);
    wire_str(&w, "app_id", fn->app->id);
    wire_str(&w, "function_id", fn->id);
    wire_end(&w);
}

static void call(struct conn *c, struct wire_msg *m)
{
    struct function *fn;
    char id[ID_SIZE];
    if (wire_copy_str(m, "function_id", id, sizeof id)) {
        fn = apps_function(id);
        if (!fn || !fn->live || fn->app->stopped) {
            if (fn)
                not_found(c, m->rid, fn->app->name, fn->name);
            else
                conn_error(c, m->rid, SKIFF_ERR_NOT_FOUND, "function %s does not exist", id);
            return;
        }
    } else {
        char app[256], name[256];
        if (!need_str(c, m, "app", app, sizeof app) ||
            !need_str(c, m, "function", name, sizeof name))
            return;
        fn = apps_lookup(app, name);
        if (!fn) {
            not_found(c, m->rid, app, name);
            return;
        }
    }
    const char *args;
    size_t len;
    if (!wire_get_bin(m, "args", &args, &len)) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID,
                   "field 'args' (bin: msgpack [args, kwargs]) is missing");
        return;
    }
    if (len > limits.payload_max) {
        conn_error(c, m->rid, SKIFF_ERR_REQUEST_SIZE,
                   "the arguments are %zu bytes, over the limit of %zu", len, limits.payload_max);
        return;
    }
    bool spawn = false;
    wire_get_bool(m, "spawn", &spawn);
    char parent[ID_SIZE] = "";
    if (wire_get(m, "parent_input_id") &&
        !wire_copy_str(m, "parent_input_id", parent, sizeof parent) &&
        wire_get(m, "parent_input_id")->type != MSGPACK_OBJECT_NIL) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID, "field 'parent_input_id' is not an input id");
        return;
    }
    calls_request(c, m->rid, fn, args, len, spawn, parent);
}

static void get(struct conn *c, struct wire_msg *m)
{
    char id[ID_SIZE + 64];
    if (!need_str(c, m, "call_id", id, sizeof id))
        return;
    int64_t timeout = -1;
    wire_get_int(m, "timeout_ms", &timeout);
    calls_get(c, m->rid, id, timeout < 0 ? -1 : timeout);
}

static void cancel(struct conn *c, struct wire_msg *m)
{
    char id[ID_SIZE + 64];
    if (!need_str(c, m, "call_id", id, sizeof id))
        return;
    bool terminate = false;
    wire_get_bool(m, "terminate_containers", &terminate);
    calls_cancel_request(c, m->rid, id, terminate);
}

static void call_info(struct conn *c, struct wire_msg *m)
{
    char id[ID_SIZE + 64];
    if (need_str(c, m, "call_id", id, sizeof id))
        calls_info(c, m->rid, id);
}

/* Reads the functions array of a DEPLOY into fns (names point into the message). Replies with
 * an error and returns -1 when an entry is malformed. */
static int deploy_functions(struct conn *c, struct wire_msg *m, struct deploy_fn **out, size_t *n)
{
    const msgpack_object *arr = wire_get(m, "functions");
    if (!arr || arr->type != MSGPACK_OBJECT_ARRAY) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID, "field 'functions' (an array) is missing");
        return -1;
    }
    size_t count = arr->via.array.size;
    struct deploy_fn *fns = mem_calloc(count ? count : 1, sizeof *fns);
    /* Every string copied, for freeing on the error path. */
    char **strings = mem_calloc(2 * (count ? count : 1), sizeof *strings);
    if (!fns || !strings) {
        mem_free(fns);
        mem_free(strings);
        conn_error(c, m->rid, SKIFF_ERR_NOMEM, "out of memory");
        return -1;
    }
    const char *problem = NULL;
    size_t i;
    for (i = 0; i < count && !problem; i++) {
        const msgpack_object *e = &arr->via.array.ptr[i];
        const msgpack_object *name = wire_obj_get(e, "name");
        if (!name || name->type != MSGPACK_OBJECT_STR) {
            problem = "a function has no name";
            break;
        }
        strings[2 * i] = mem_strndup(name->via.str.ptr, name->via.str.size);
        fns[i].name = strings[2 * i];
        if (!fns[i].name || !apps_valid_function_name(fns[i].name)) {
            problem = "a function name is not 1-63 characters of letters, digits, '_' and '.'";
            break;
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(fns[j].name, fns[i].name))
                problem = "two functions have the same name";
        const msgpack_object *sig = wire_obj_get(e, "signature");
        if (sig && sig->type == MSGPACK_OBJECT_STR) {
            strings[2 * i + 1] = mem_strndup(sig->via.str.ptr, sig->via.str.size);
            fns[i].cfg.signature = strings[2 * i + 1];
        }
        const msgpack_object *o;
        if ((o = wire_obj_get(e, "timeout")) &&
            (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32))
            fns[i].cfg.timeout = o->via.f64;
        else if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            fns[i].cfg.timeout = (double)o->via.u64;
        if (fns[i].cfg.timeout != 0 &&
            (fns[i].cfg.timeout < FN_MIN_TIMEOUT || fns[i].cfg.timeout > FN_MAX_TIMEOUT))
            problem = "a timeout is outside 1 s to 24 h";
        if ((o = wire_obj_get(e, "max_containers")) && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            fns[i].cfg.max_containers = o->via.u64 > 100000 ? 100000 : (int)o->via.u64;
        if ((o = wire_obj_get(e, "min_containers")) && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            fns[i].cfg.min_containers = o->via.u64 > 100000 ? 100000 : (int)o->via.u64;
        if ((o = wire_obj_get(e, "scaledown_window"))) {
            if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)
                fns[i].cfg.scaledown_window = o->via.f64;
            else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                fns[i].cfg.scaledown_window = (double)o->via.u64;
        }
        if ((o = wire_obj_get(e, "cpu"))) {
            if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)
                fns[i].cfg.cpu = o->via.f64;
            else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                fns[i].cfg.cpu = (double)o->via.u64;
            if (!(fns[i].cfg.cpu >= 0 && fns[i].cfg.cpu <= FN_MAX_CPU))
                problem = "cpu is outside 0 to 1024 cores";
        }
        if ((o = wire_obj_get(e, "memory")) && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            if (o->via.u64 > FN_MAX_MEMORY)
                problem = "memory is over 16 TiB (it is in MiB)";
            else
                fns[i].cfg.memory = (int)o->via.u64;
        }
    }
    if (problem) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID, "cannot deploy: %s%s%s%s", problem,
                   i < count && fns[i].name ? " ('" : "",
                   i < count && fns[i].name ? fns[i].name : "",
                   i < count && fns[i].name ? "')" : "");
        for (size_t k = 0; k < 2 * count; k++)
            mem_free(strings[k]);
        mem_free(strings);
        mem_free(fns);
        return -1;
    }
    *out = fns; /* the strings now belong to fns (deploy_free) */
    *n = count;
    mem_free(strings);
    return 0;
}

static void deploy_free(struct deploy_fn *fns, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mem_free((char *)fns[i].name);
        mem_free(fns[i].cfg.signature);
    }
    mem_free(fns);
}

static void deploy(struct conn *c, struct wire_msg *m)
{
    char app[256];
    if (!need_str(c, m, "app", app, sizeof app))
        return;
    if (!apps_valid_app_name(app)) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID,
                   "cannot deploy: app name '%s' is not 1-63 characters of letters, digits, "
                   "'.', '_' and '-'",
                   app);
        return;
    }
    const char *code;
    size_t len;
    if (!wire_get_bin(m, "code", &code, &len) || len == 0) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID,
                   "cannot deploy: field 'code' (the app's shared object) is missing");
        return;
    }
    if (len > PROTO_CODE_MAX) {
        conn_error(c, m->rid, SKIFF_ERR_REQUEST_SIZE,
                   "cannot deploy: the code is %zu bytes, over %u", len, PROTO_CODE_MAX);
        return;
    }
    struct deploy_fn *fns;
    size_t n;
    if (deploy_functions(c, m, &fns, &n) < 0)
        return;
    char err[512];
    struct app *a = apps_deploy(app, code, len, fns, n, err, sizeof err);
    deploy_free(fns, n);
    if (!a) {
        conn_error(c, m->rid, SKIFF_ERR_INTERNAL, "cannot deploy %s: %s", app, err);
        return;
    }
    size_t live = 0;
    struct list_node *node, *t;
    list_for_each_safe(node, t, &a->functions) live +=
        container_of(node, struct function, app_link)->live;
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, m->rid, 3);
    wire_str(&w, "app_id", a->id);
    wire_int(&w, "version", a->version);
    wire_key(&w, "functions");
    wire_pack_array(&w, live);
    list_for_each_safe(node, t, &a->functions)
    {
        struct function *f = container_of(node, struct function, app_link);
        if (!f->live)
            continue;
        wire_pack_map(&w, 2);
        wire_pack_str(&w, "name");
        wire_pack_str(&w, f->name);
        wire_pack_str(&w, "function_id");
        wire_pack_str(&w, f->id);
    }
    wire_end(&w);
}

static void app_list(struct conn *c, struct wire_msg *m)
{
    size_t n = 0;
    for (struct app *a = apps_next(NULL); a; a = apps_next(a))
        n++;
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, m->rid, 1);
    wire_key(&w, "apps");
    wire_pack_array(&w, n);
    for (struct app *a = apps_next(NULL); a; a = apps_next(a)) {
        wire_pack_map(&w, 6);
        wire_pack_str(&w, "app_id");
        wire_pack_str(&w, a->id);
        wire_pack_str(&w, "name");
        wire_pack_str(&w, a->name);
        wire_pack_str(&w, "state");
        wire_pack_str(&w, a->stopped ? "stopped" : "deployed");
        wire_pack_str(&w, "version");
        wire_pack_int(&w, a->version);
        wire_pack_str(&w, "created");
        wire_pack_int(&w, a->created);
        wire_pack_str(&w, "functions");
        size_t live = 0;
        struct list_node *node, *t;
        list_for_each_safe(node, t, &a->functions) live +=
            container_of(node, struct function, app_link)->live;
        wire_pack_array(&w, live);
        list_for_each_safe(node, t, &a->functions)
        {
            struct function *f = container_of(node, struct function, app_link);
            if (f->live)
                wire_pack_str(&w, f->name);
        }
    }
    if (wire_end(&w) != SKIFF_OK)
        conn_error(c, m->rid, SKIFF_ERR_NOMEM, "out of memory listing apps");
}

static void app_stop(struct conn *c, struct wire_msg *m)
{
    char app[256];
    if (!need_str(c, m, "app", app, sizeof app))
        return;
    if (apps_stop(app) < 0) {
        conn_error(c, m->rid, SKIFF_ERR_NOT_FOUND, "app '%s' is not deployed", app);
        return;
    }
    conn_ok(c, m->rid);
}

static void container_list(struct conn *c, struct wire_msg *m)
{
    size_t n = 0;
    for (struct container *ct = container_next(NULL); ct; ct = container_next(ct))
        n++;
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, m->rid, 1);
    wire_key(&w, "containers");
    wire_pack_array(&w, n);
    for (struct container *ct = container_next(NULL); ct; ct = container_next(ct)) {
        wire_pack_map(&w, 8);
        wire_pack_str(&w, "container_id");
        wire_pack_str(&w, ct->id);
        wire_pack_str(&w, "app");
        wire_pack_str(&w, ct->fn->app->name);
        wire_pack_str(&w, "function");
        wire_pack_str(&w, ct->fn->name);
        wire_pack_str(&w, "version");
        wire_pack_int(&w, ct->version);
        wire_pack_str(&w, "pid");
        wire_pack_int(&w, ct->pid);
        wire_pack_str(&w, "state");
        wire_pack_str(&w, container_state_name(ct->state));
        wire_pack_str(&w, "inputs");
        wire_pack_int(&w, ct->running ? 1 : 0);
        wire_pack_str(&w, "started");
        wire_pack_int(&w, ct->started / 1000);
    }
    if (wire_end(&w) != SKIFF_OK)
        conn_error(c, m->rid, SKIFF_ERR_NOMEM, "out of memory listing containers");
}

static void stats(struct conn *c, struct wire_msg *m)
{
    char app[256], name[256];
    if (!need_str(c, m, "app", app, sizeof app) || !need_str(c, m, "function", name, sizeof name))
        return;
    struct function *fn = apps_lookup(app, name);
    if (!fn) {
        not_found(c, m->rid, app, name);
        return;
    }
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, m->rid, 3);
    wire_int(&w, "backlog", (int64_t)fn->backlog);
    wire_int(&w, "num_total_runners", fn->n_containers);
    wire_int(&w, "num_running_inputs", fn->n_running);
    wire_end(&w);
}

static void token_new(struct conn *c, struct wire_msg *m)
{
    char id[ID_SIZE], secret[AUTH_SECRET_LEN + 1];
    if (auth_new_token(id, secret) < 0) {
        conn_error(c, m->rid, SKIFF_ERR_INTERNAL, "the server could not store a new token");
        return;
    }
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, m->rid, 2);
    wire_str(&w, "token_id", id);
    wire_str(&w, "token_secret", secret);
    wire_end(&w);
}

static void on_frame(struct conn *c, struct wire_msg *m)
{
    if (!c->authed) {
        if (m->op == OP_HELLO) {
            hello(c, m);
        } else {
            conn_error(c, m->rid, SKIFF_ERR_AUTH, "the first request must be HELLO with a token");
            conn_close_after_flush(c);
        }
        return;
    }
    switch (m->op) {
    case OP_HELLO:
        conn_error(c, m->rid, SKIFF_ERR_INVALID, "already authenticated");
        return;
    case OP_LOOKUP:
        lookup(c, m);
        return;
    case OP_CALL:
        call(c, m);
        return;
    case OP_GET:
        get(c, m);
        return;
    case OP_CANCEL:
        cancel(c, m);
        return;
    case OP_DEPLOY:
        deploy(c, m);
        return;
    case OP_APP_LIST:
        app_list(c, m);
        return;
    case OP_APP_STOP:
        app_stop(c, m);
        return;
    case OP_CONTAINER_LIST:
        container_list(c, m);
        return;
    case OP_STATS:
        stats(c, m);
        return;
    case OP_TOKEN_NEW:
        token_new(c, m);
        return;
    case OP_CALL_INFO:
        call_info(c, m);
        return;
    default:
        conn_error(c, m->rid, SKIFF_ERR_INVALID, "unknown operation %d", m->op);
    }
}

static void on_close(struct conn *c)
{
    calls_conn_closed(c);
}

static const struct conn_ops client_ops = {on_frame, on_close};

const struct conn_ops *proto_client_ops(const struct proto_limits *l)
{
    limits = *l;
    return &client_ops;
}
