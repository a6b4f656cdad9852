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
#include "common/codec.h"
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
    wire_begin(&w, conn_out(c), OP_OK, m->rid, 6);
    wire_str(&w, "app_id", fn->app->id);
    wire_str(&w, "function_id", fn->id);
    wire_str(&w, "kind", fn->cfg.web ? "web" : fn->cfg.generator ? "generator" : "function");
    wire_str(&w, "signature", fn->cfg.signature);
    wire_str(&w, "web_url", NULL);
    wire_str(&w, "class", NULL);
    wire_end(&w);
}

/* The function a request names (function_id, or app + function); replies with an error and
 * returns NULL when there is none that can be called. */
static struct function *resolve(struct conn *c, struct wire_msg *m)
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
            return NULL;
        }
        return fn;
    }
    char app[256], name[256];
    if (!need_str(c, m, "app", app, sizeof app) || !need_str(c, m, "function", name, sizeof name))
        return NULL;
    fn = apps_lookup(app, name);
    if (!fn)
        not_found(c, m->rid, app, name);
    return fn;
}

/* The optional parent_input_id of a request into parent ("" when absent). false after replying
 * with an error. */
static bool get_parent(struct conn *c, struct wire_msg *m, char parent[ID_SIZE])
{
    parent[0] = '\0';
    const msgpack_object *o = wire_get(m, "parent_input_id");
    if (!o || o->type == MSGPACK_OBJECT_NIL)
        return true;
    if (wire_copy_str(m, "parent_input_id", parent, ID_SIZE) &&
        (!parent[0] || id_valid(parent, "in")))
        return true;
    conn_error(c, m->rid, SKIFF_ERR_INVALID, "field 'parent_input_id' is not an input id");
    return false;
}

static void call(struct conn *c, struct wire_msg *m)
{
    struct function *fn = resolve(c, m);
    if (!fn)
        return;
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
    bool spawn = false, gen = false;
    wire_get_bool(m, "spawn", &spawn);
    wire_get_bool(m, "gen", &gen);
    char parent[ID_SIZE];
    if (get_parent(c, m, parent))
        calls_request(c, m->rid, fn, args, len, spawn, gen, parent);
}

static void map_start(struct conn *c, struct wire_msg *m)
{
    struct function *fn = resolve(c, m);
    if (!fn)
        return;
    bool spawn = false;
    wire_get_bool(m, "spawn", &spawn);
    char parent[ID_SIZE];
    if (get_parent(c, m, parent))
        calls_map_start(c, m->rid, fn, spawn, parent);
}

static void map_inputs(struct conn *c, struct wire_msg *m)
{
    char id[ID_SIZE + 64];
    if (!need_str(c, m, "call_id", id, sizeof id))
        return;
    int64_t start;
    if (!wire_get_int(m, "start", &start) || start < 0) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID, "field 'start' (an index) is missing");
        return;
    }
    const msgpack_object *args = wire_get(m, "args");
    if (!args || args->type != MSGPACK_OBJECT_ARRAY) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID,
                   "field 'args' (an array of bin: msgpack [args, kwargs]) is missing");
        return;
    }
    bool last = false;
    wire_get_bool(m, "last", &last);
    calls_map_inputs(c, m->rid, id, start, args, last);
}

static void outputs(struct conn *c, struct wire_msg *m)
{
    char id[ID_SIZE + 64];
    if (!need_str(c, m, "call_id", id, sizeof id))
        return;
    int64_t from = 0;
    wire_get_int(m, "from", &from);
    calls_outputs(c, m->rid, id, from);
}

static void get(struct conn *c, struct wire_msg *m)
{
    char id[ID_SIZE + 64];
    if (!need_str(c, m, "call_id", id, sizeof id))
        return;
    int64_t timeout = -1, index = -1;
    wire_get_int(m, "timeout_ms", &timeout);
    if (wire_get(m, "index") && (!wire_get_int(m, "index", &index) || index < 0)) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID, "field 'index' is not an input index");
        return;
    }
    calls_get(c, m->rid, id, timeout < 0 ? -1 : timeout, index);
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

static void deploy_free(struct deploy_fn *fns, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mem_free((char *)fns[i].name);
        mem_free((char *)fns[i].entry);
        apps_config_clear(&fns[i].cfg);
    }
    mem_free(fns);
}

/* Reads entry e of a DEPLOY's functions into f. NULL, or what is wrong with it. */
static const char *deploy_entry(const msgpack_object *e, struct deploy_fn *f)
{
    if (e->type != MSGPACK_OBJECT_MAP)
        return "a function entry is not a map";
    const msgpack_object *name = wire_obj_get(e, "name");
    if (!name || name->type != MSGPACK_OBJECT_STR)
        return "a function has no name";
    f->name = mem_strndup(name->via.str.ptr, name->via.str.size);
    if (!f->name)
        return "out of memory";
    if (!apps_valid_function_name(f->name))
        return "a function name is not 1-63 characters of letters, digits, '_' and '.'";
    const char *problem = apps_parse_config(e, &f->cfg);
    if (problem)
        return problem;
    /* Kept as sent, for the store. */
    struct buf b;
    buf_init(&b, 1u << 20);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, codec_buf_write);
    if (msgpack_pack_object(&pk, *e) != 0) {
        buf_deinit(&b);
        return "a function entry is too large";
    }
    f->entry = b.data;
    f->entry_len = b.len;
    return NULL;
}

/* Reads the functions array of a DEPLOY into fns. Replies with an error and returns -1 when an
 * entry is malformed. */
static int deploy_functions(struct conn *c, struct wire_msg *m, struct deploy_fn **out, size_t *n)
{
    const msgpack_object *arr = wire_get(m, "functions");
    if (!arr || arr->type != MSGPACK_OBJECT_ARRAY) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID, "field 'functions' (an array) is missing");
        return -1;
    }
    size_t count = arr->via.array.size;
    struct deploy_fn *fns = mem_calloc(count ? count : 1, sizeof *fns);
    if (!fns) {
        conn_error(c, m->rid, SKIFF_ERR_NOMEM, "out of memory");
        return -1;
    }
    const char *problem = NULL;
    size_t i;
    for (i = 0; i < count && !problem; i++) {
        problem = deploy_entry(&arr->via.array.ptr[i], &fns[i]);
        for (size_t j = 0; !problem && j < i; j++)
            if (!strcmp(fns[j].name, fns[i].name))
                problem = "two functions have the same name";
    }
    if (problem) {
        const char *name = fns[i - 1].name;
        conn_error(c, m->rid, SKIFF_ERR_INVALID, "cannot deploy: %s%s%s%s", problem,
                   name ? " (function '" : "", name ? name : "", name ? "')" : "");
        deploy_free(fns, count);
        return -1;
    }
    *out = fns;
    *n = count;
    return 0;
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
        wire_pack_map(&w, 3);
        wire_pack_str(&w, "name");
        wire_pack_str(&w, f->name);
        wire_pack_str(&w, "function_id");
        wire_pack_str(&w, f->id);
        wire_pack_str(&w, "web_url");
        wire_pack_str(&w, NULL);
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
        wire_pack_int(&w, ct->n_held);
        wire_pack_str(&w, "started");
        wire_pack_int(&w, ct->started / 1000);
    }
    if (wire_end(&w) != SKIFF_OK)
        conn_error(c, m->rid, SKIFF_ERR_NOMEM, "out of memory listing containers");
}

/* The autoscaler settings map (docs/protocol.md). */
static void pack_autoscaler(struct wire_writer *w, const struct function *fn)
{
    wire_pack_map(w, 4);
    wire_pack_str(w, "min_containers");
    wire_pack_int(w, fn->cfg.min_containers);
    wire_pack_str(w, "max_containers");
    wire_pack_int(w, fn->cfg.max_containers);
    wire_pack_str(w, "buffer_containers");
    wire_pack_int(w, fn->cfg.buffer_containers);
    wire_pack_str(w, "scaledown_window");
    msgpack_pack_double(&w->pk, fn->cfg.scaledown_window);
}

static void stats(struct conn *c, struct wire_msg *m)
{
    struct function *fn = resolve(c, m);
    if (!fn)
        return;
    int64_t headroom = (int64_t)fn->n_containers * fn->cfg.max_inputs - fn->n_running;
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, m->rid, 5);
    wire_int(&w, "backlog", (int64_t)fn->backlog);
    wire_int(&w, "num_total_runners", fn->n_containers);
    wire_int(&w, "num_running_inputs", fn->n_running);
    wire_int(&w, "input_headroom", headroom > 0 ? headroom : 0);
    wire_key(&w, "autoscaler");
    pack_autoscaler(&w, fn);
    wire_end(&w);
}

/* AUTOSCALER: changes the live settings given; absent ones stay. */
static void autoscaler(struct conn *c, struct wire_msg *m)
{
    struct function *fn = resolve(c, m);
    if (!fn)
        return;
    struct fn_config next = fn->cfg;
    static const char *const ints[] = {"min_containers", "max_containers", "buffer_containers"};
    int *fields[] = {&next.min_containers, &next.max_containers, &next.buffer_containers};
    for (int i = 0; i < 3; i++) {
        const msgpack_object *o = wire_get(m, ints[i]);
        if (!o || o->type == MSGPACK_OBJECT_NIL)
            continue;
        if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > 100000) {
            conn_error(c, m->rid, SKIFF_ERR_INVALID, "field '%s' is not a count from 0 to 100000",
                       ints[i]);
            return;
        }
        *fields[i] = (int)o->via.u64;
    }
    double window;
    if (wire_get(m, "scaledown_window") &&
        wire_get(m, "scaledown_window")->type != MSGPACK_OBJECT_NIL) {
        if (!wire_get_double(m, "scaledown_window", &window) || !(window >= 1) || window > 86400) {
            conn_error(c, m->rid, SKIFF_ERR_INVALID,
                       "field 'scaledown_window' is not a number of seconds from 1 to 86400");
            return;
        }
        next.scaledown_window = window;
    }
    if (next.max_containers < 1) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID, "max_containers must be at least 1");
        return;
    }
    if (next.min_containers > next.max_containers) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID,
                   "min_containers (%d) is more than max_containers (%d)", next.min_containers,
                   next.max_containers);
        return;
    }
    fn->cfg.min_containers = next.min_containers;
    fn->cfg.max_containers = next.max_containers;
    fn->cfg.buffer_containers = next.buffer_containers;
    fn->cfg.scaledown_window = next.scaledown_window;
    log_info("%s.%s: autoscaler min %d max %d buffer %d window %g s", fn->app->name, fn->name,
             next.min_containers, next.max_containers, next.buffer_containers,
             next.scaledown_window);
    sched_function_changed(fn);
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, m->rid, 1);
    wire_key(&w, "autoscaler");
    pack_autoscaler(&w, fn);
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
    case OP_MAP_START:
        map_start(c, m);
        return;
    case OP_MAP_INPUTS:
        map_inputs(c, m);
        return;
    case OP_OUTPUTS:
        outputs(c, m);
        return;
    case OP_AUTOSCALER:
        autoscaler(c, m);
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
