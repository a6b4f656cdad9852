/*
 * proto.c - client requests on the server: HELLO first, then one handler per operation
 * (docs/protocol.md). Handlers validate every field and answer each request exactly once:
 * at once, or later through calls.c (blocking calls, GET with a wait, spawns after commit).
 */
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
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
#include "graph.h"
#include "http.h"
#include "logs.h"
#include "sched.h"
#include "schedule.h"
#include "secrets.h"
#include "store.h"
#include "volumes.h"

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
    char msg[700];
    apps_lookup_failure(app, fn, false, msg, sizeof msg);
    conn_error(c, rid, SKIFF_ERR_NOT_FOUND, "%s", msg);
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
    const char *why;
    struct auth_token *t = auth_login(id, secret, &why);
    if (!t) {
        auth_log_refused(c->peer, id, why);
        conn_error(c, m->rid, SKIFF_ERR_AUTH, "token %s was refused by the server: it %s",
                   id_valid(id, "tk") ? id : "(malformed id)", why);
        conn_close_after_flush(c);
        return;
    }
    c->token = t;
    c->authed = true;
    c->max_frame = limits.frame_max;
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, m->rid, 3);
    wire_str(&w, "server", "skiffd " SKIFF_VERSION);
    wire_int(&w, "version", PROTO_VERSION);
    wire_int(&w, "payload_max", (int64_t)limits.payload_max);
    wire_end(&w);
}

static const char *kind_name(const struct function *f)
{
    return f->cfg.web ? "web" : f->cfg.generator ? "generator" : "function";
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
    wire_str(&w, "kind", kind_name(fn));
    wire_str(&w, "signature", fn->cfg.signature);
    char url[512];
    wire_str(&w, "web_url", http_web_url(fn, url, sizeof url) ? url : NULL);
    wire_str(&w, "class", fn->cls ? fn->cls->name : NULL);
    wire_end(&w);
}

static int cmp_kv(const void *a, const void *b)
{
    const msgpack_object_kv *x = *(const msgpack_object_kv *const *)a;
    const msgpack_object_kv *y = *(const msgpack_object_kv *const *)b;
    uint32_t n =
        x->key.via.str.size < y->key.via.str.size ? x->key.via.str.size : y->key.via.str.size;
    int c = memcmp(x->key.via.str.ptr, y->key.via.str.ptr, n);
    if (c)
        return c;
    return x->key.via.str.size < y->key.via.str.size   ? -1
           : x->key.via.str.size > y->key.via.str.size ? 1
                                                       : 0;
}

const char *proto_canonical_params(const char *p, size_t n, struct buf *out)
{
    msgpack_zone zone;
    if (!msgpack_zone_init(&zone, 1024))
        return "out of memory";
    msgpack_object obj;
    size_t off = 0;
    const char *problem = NULL;
    const msgpack_object_kv **kv = NULL;
    /* Walked first: msgpack-c allocates what a count announces before reading it. */
    if (codec_scan(p, n, CODEC_MAX_VALUES, CODEC_MAX_DEPTH, NULL) < 0 ||
        msgpack_unpack(p, n, &off, &zone, &obj) != MSGPACK_UNPACK_SUCCESS ||
        obj.type != MSGPACK_OBJECT_MAP) {
        problem = "params is not one msgpack map (within the decoding limits)";
        goto done;
    }
    uint32_t size = obj.via.map.size;
    kv = mem_calloc(size ? size : 1, sizeof *kv);
    if (!kv) {
        problem = "out of memory";
        goto done;
    }
    for (uint32_t i = 0; i < size && !problem; i++) {
        const msgpack_object_kv *e = &obj.via.map.ptr[i];
        kv[i] = e;
        if (e->key.type != MSGPACK_OBJECT_STR)
            problem = "a parameter name is not a string";
        else if (e->val.type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
                 e->val.type != MSGPACK_OBJECT_NEGATIVE_INTEGER &&
                 e->val.type != MSGPACK_OBJECT_STR && e->val.type != MSGPACK_OBJECT_BIN &&
                 e->val.type != MSGPACK_OBJECT_BOOLEAN)
            problem = "a parameter is not an int, str, bytes or bool";
    }
    if (problem)
        goto done;
    qsort(kv, size, sizeof *kv, cmp_kv);
    for (uint32_t i = 1; i < size && !problem; i++)
        if (!cmp_kv(&kv[i - 1], &kv[i]))
            problem = "a parameter is given twice";
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, codec_buf_write);
    msgpack_pack_map(&pk, size);
    for (uint32_t i = 0; i < size && !problem; i++)
        if (msgpack_pack_object(&pk, kv[i]->key) || msgpack_pack_object(&pk, kv[i]->val))
            problem = "params is too large";
done:
    mem_free(kv);
    msgpack_zone_destroy(&zone);
    return problem;
}

/* The function a request names (function_id, or app + function) and in *pool where its inputs
 * run (a class's pool for the request's params); replies with an error and returns NULL when
 * there is none that can be called. */
static struct function *resolve_pool(struct conn *c, struct wire_msg *m, struct function **pool)
{
    struct function *fn;
    char id[ID_SIZE];
    if (wire_copy_str(m, "function_id", id, sizeof id)) {
        fn = apps_function(id);
        if (!fn || !fn->live || fn->app->stopped || fn->is_class) {
            if (fn)
                not_found(c, m->rid, fn->app->name, fn->name);
            else
                conn_error(c, m->rid, SKIFF_ERR_NOT_FOUND, "function %s does not exist", id);
            return NULL;
        }
    } else {
        char app[256], name[256];
        if (!need_str(c, m, "app", app, sizeof app) ||
            !need_str(c, m, "function", name, sizeof name))
            return NULL;
        fn = apps_lookup(app, name);
        if (!fn) {
            not_found(c, m->rid, app, name);
            return NULL;
        }
    }
    const char *params;
    size_t n;
    bool has_params = wire_get_bin(m, "params", &params, &n);
    if (!fn->method) {
        if (has_params) {
            conn_error(c, m->rid, SKIFF_ERR_INVALID,
                       "%s.%s is not a method of a class: it takes no params", fn->app->name,
                       fn->name);
            return NULL;
        }
        if (pool)
            *pool = fn;
        return fn;
    }
    if (!fn->cls) {
        not_found(c, m->rid, fn->app->name, fn->name);
        return NULL;
    }
    if (!pool)
        return fn;
    static const char empty_map = (char)0x80;
    struct buf canon;
    buf_init(&canon, 1u << 20);
    const char *problem =
        proto_canonical_params(has_params ? params : &empty_map, has_params ? n : 1, &canon);
    if (problem) {
        buf_deinit(&canon);
        conn_error(c, m->rid, SKIFF_ERR_INVALID, "cannot instantiate %s.%s: %s", fn->app->name,
                   fn->cls->name, problem);
        return NULL;
    }
    *pool = apps_class_pool(fn->cls, canon.data, canon.len);
    buf_deinit(&canon);
    if (!*pool) {
        conn_error(c, m->rid, SKIFF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return fn;
}

/* LOGS with params: the params key of the pool of class (or method) function of app that the
 * params name, or NULL after replying with an error. */
static const char *logs_pool_key(struct conn *c, struct wire_msg *m, const char *app,
                                 const char *function)
{
    struct function *fn = function ? apps_lookup(app, function) : NULL;
    struct function *cls = fn && fn->method ? fn->cls
                           : function       ? apps_lookup_class(app, function)
                                            : NULL;
    const char *params;
    size_t n;
    if (!cls || !wire_get_bin(m, "params", &params, &n)) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID,
                   "params need a class or a method of one, and are a msgpack map (bin)");
        return NULL;
    }
    struct buf canon;
    buf_init(&canon, 1u << 20);
    const char *problem = proto_canonical_params(params, n, &canon);
    struct function *pool = problem ? NULL : apps_class_pool(cls, canon.data, canon.len);
    buf_deinit(&canon);
    if (problem)
        conn_error(c, m->rid, SKIFF_ERR_INVALID, "cannot instantiate %s.%s: %s", app, cls->name,
                   problem);
    else if (!pool)
        conn_error(c, m->rid, SKIFF_ERR_NOMEM, "out of memory");
    return pool ? pool->params_key : NULL;
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
    struct function *pool;
    struct function *fn = resolve_pool(c, m, &pool);
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
    if (!get_parent(c, m, parent))
        return;
    char made[ID_SIZE];
    bool cancel_on_close = false;
    wire_get_bool(m, "cancel_on_close", &cancel_on_close);
    unsigned flags = (spawn ? CALL_SPAWN : 0) | (gen ? CALL_GEN : 0) |
                     (cancel_on_close && !spawn ? CALL_CANCEL_ON_CLOSE : 0);
    calls_request(c, m->rid, fn, pool, args, len, flags, parent, made);
    /* A blocking call's outcome comes back on this request: only what can be read later by id
     * is remembered, so a container's memory here grows with what it keeps, not its calls. */
    if (made[0] && (spawn || gen))
        auth_note_call(c->token, made);
}

static void map_start(struct conn *c, struct wire_msg *m)
{
    struct function *pool;
    struct function *fn = resolve_pool(c, m, &pool);
    if (!fn)
        return;
    bool spawn = false;
    wire_get_bool(m, "spawn", &spawn);
    char parent[ID_SIZE];
    if (!get_parent(c, m, parent))
        return;
    char made[ID_SIZE];
    calls_map_start(c, m->rid, fn, pool, spawn, parent, made);
    if (made[0])
        auth_note_call(c->token, made);
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

/* A class's entry: its parameter signature is under "params"; its name has no dot. */
static const char *class_entry(const msgpack_object *e, struct deploy_fn *f)
{
    f->is_class = true;
    if (strchr(f->name, '.'))
        return "a class name holds a '.'";
    if (f->cfg.period_s || f->cfg.cron)
        return "a class cannot run on a schedule (schedules are for plain functions)";
    mem_free(f->cfg.signature);
    f->cfg.signature = NULL;
    const msgpack_object *p = wire_obj_get(e, "params");
    if (p && p->type == MSGPACK_OBJECT_STR &&
        !(f->cfg.signature = mem_strndup(p->via.str.ptr, p->via.str.size)))
        return "out of memory";
    return NULL;
}

/* The method entry f names a class among fns[0..n). */
static const char *method_entry(const struct deploy_fn *fns, size_t n, const struct deploy_fn *f)
{
    const char *dot = strchr(f->name, '.');
    if (!dot)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (fns[i].is_class && strlen(fns[i].name) == (size_t)(dot - f->name) &&
            !strncmp(fns[i].name, f->name, (size_t)(dot - f->name)))
            return f->cfg.web                       ? "a method cannot be a web endpoint"
                   : f->cfg.period_s || f->cfg.cron ? "a method cannot run on a schedule"
                                                    : NULL;
    return "a method names a class that is not in the app's classes";
}

/* Reads the functions and classes arrays of a DEPLOY into fns (classes after functions).
 * Replies with an error and returns -1 when an entry is malformed. */
static int deploy_functions(struct conn *c, struct wire_msg *m, struct deploy_fn **out, size_t *n)
{
    const msgpack_object *arr = wire_get(m, "functions");
    if (!arr || arr->type != MSGPACK_OBJECT_ARRAY) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID, "field 'functions' (an array) is missing");
        return -1;
    }
    const msgpack_object *classes = wire_get(m, "classes");
    if (classes && classes->type != MSGPACK_OBJECT_ARRAY && classes->type != MSGPACK_OBJECT_NIL) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID, "field 'classes' is not an array");
        return -1;
    }
    size_t nfun = arr->via.array.size;
    size_t ncls = classes && classes->type == MSGPACK_OBJECT_ARRAY ? classes->via.array.size : 0;
    size_t count = nfun + ncls;
    struct deploy_fn *fns = mem_calloc(count ? count : 1, sizeof *fns);
    if (!fns) {
        conn_error(c, m->rid, SKIFF_ERR_NOMEM, "out of memory");
        return -1;
    }
    const char *problem = NULL;
    size_t i;
    for (i = 0; i < count && !problem; i++) {
        const msgpack_object *e =
            i < nfun ? &arr->via.array.ptr[i] : &classes->via.array.ptr[i - nfun];
        problem = deploy_entry(e, &fns[i]);
        if (!problem && i >= nfun)
            problem = class_entry(e, &fns[i]);
        for (size_t j = 0; !problem && j < i; j++)
            if (!strcmp(fns[j].name, fns[i].name))
                problem = "two functions or classes have the same name";
    }
    for (size_t k = 0; !problem && k < nfun; k++)
        if ((problem = method_entry(fns, count, &fns[k])))
            i = k + 1;
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
    bool ephemeral = false;
    wire_get_bool(m, "ephemeral", &ephemeral);
    struct app *old = apps_find(app);
    if (ephemeral && old) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID,
                   "cannot deploy: an ephemeral app cannot replace app '%s', which is %s", app,
                   old->stopped ? "stopped" : "deployed");
        return;
    }
    struct deploy_fn *fns;
    size_t n;
    if (deploy_functions(c, m, &fns, &n) < 0)
        return;
    char err[512];
    if (http_check_labels(app, fns, n, err, sizeof err)) {
        deploy_free(fns, n);
        conn_error(c, m->rid, SKIFF_ERR_INVALID, "cannot deploy: %s", err);
        return;
    }
    if (secrets_check_deploy(fns, n, err, sizeof err) < 0 ||
        volumes_check_deploy(fns, n, err, sizeof err) < 0) {
        deploy_free(fns, n);
        conn_error(c, m->rid, SKIFF_ERR_NOT_FOUND, "cannot deploy %s: %s", app, err);
        return;
    }
    struct app *a = apps_deploy(app, code, len, fns, n, ephemeral ? c : NULL, err, sizeof err);
    deploy_free(fns, n);
    if (!a) {
        conn_error(c, m->rid, SKIFF_ERR_INTERNAL, "cannot deploy %s: %s", app, err);
        return;
    }
    size_t live = 0;
    struct list_node *node, *t;
    list_for_each_safe(node, t, &a->functions) live +=
        (container_of(node, struct function, app_link)->live &&
         !container_of(node, struct function, app_link)->is_class);
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, m->rid, 3);
    wire_str(&w, "app_id", a->id);
    wire_int(&w, "version", a->version);
    wire_key(&w, "functions");
    wire_pack_array(&w, live);
    list_for_each_safe(node, t, &a->functions)
    {
        struct function *f = container_of(node, struct function, app_link);
        if (!f->live || f->is_class)
            continue;
        wire_pack_map(&w, 3);
        wire_pack_str(&w, "name");
        wire_pack_str(&w, f->name);
        wire_pack_str(&w, "function_id");
        wire_pack_str(&w, f->id);
        char url[512];
        wire_pack_str(&w, "web_url");
        wire_pack_str(&w, http_web_url(f, url, sizeof url) ? url : NULL);
    }
    wire_end(&w);
}

/* The "schedules" of an app in APP_LIST: "FUNCTION: every 5s" / "FUNCTION: cron ..." each. */
static void pack_schedules(struct wire_writer *w, struct app *a)
{
    size_t n = 0;
    struct schedule_view sv;
    struct list_node *node, *t;
    list_for_each_safe(node, t, &a->functions) n +=
        schedule_view(container_of(node, struct function, app_link), &sv);
    wire_pack_str(w, "schedules");
    wire_pack_array(w, n);
    list_for_each_safe(node, t, &a->functions)
    {
        struct function *f = container_of(node, struct function, app_link);
        if (!schedule_view(f, &sv))
            continue;
        char text[256];
        snprintf(text, sizeof text, "%s: %s", f->name, sv.spec);
        wire_pack_str(w, text);
    }
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
        wire_pack_map(&w, 7);
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
            (container_of(node, struct function, app_link)->live &&
             !container_of(node, struct function, app_link)->is_class);
        wire_pack_array(&w, live);
        list_for_each_safe(node, t, &a->functions)
        {
            struct function *f = container_of(node, struct function, app_link);
            if (f->live && !f->is_class)
                wire_pack_str(&w, f->name);
        }
        pack_schedules(&w, a);
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

/* The JSON text of a class pool's parameters (malloc'd), or NULL for a plain function. */
static char *params_json(const struct function *pool)
{
    if (!pool->params)
        return NULL;
    skiff_value *v = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    if (codec_decode_value(pool->params, pool->params_len, &v, &err) != SKIFF_OK) {
        skiff_error_clear(&err);
        return NULL;
    }
    char *json = skiff_value_to_json(v);
    skiff_value_free(v);
    return json;
}

static void container_list(struct conn *c, struct wire_msg *m)
{
    char app[256] = "";
    if (wire_get(m, "app") && !need_str(c, m, "app", app, sizeof app))
        return;
    size_t n = 0;
    for (struct container *ct = container_next(NULL); ct; ct = container_next(ct))
        n += !app[0] || !strcmp(ct->fn->app->name, app);
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, m->rid, 1);
    wire_key(&w, "containers");
    wire_pack_array(&w, n);
    for (struct container *ct = container_next(NULL); ct; ct = container_next(ct)) {
        if (app[0] && strcmp(ct->fn->app->name, app))
            continue;
        char *params = params_json(ct->fn);
        wire_pack_map(&w, 10);
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
        wire_pack_str(&w, "sandboxed");
        if (ct->sandboxed)
            msgpack_pack_true(&w.pk);
        else
            msgpack_pack_false(&w.pk);
        wire_pack_str(&w, "params");
        wire_pack_str(&w, params);
        mem_free(params);
    }
    if (wire_end(&w) != SKIFF_OK)
        conn_error(c, m->rid, SKIFF_ERR_NOMEM, "out of memory listing containers");
}

/* CLS_LOOKUP: a class, its parameter signature and its methods. */
static void cls_lookup(struct conn *c, struct wire_msg *m)
{
    char app[256], name[256];
    if (!need_str(c, m, "app", app, sizeof app) || !need_str(c, m, "class", name, sizeof name))
        return;
    struct function *cls = apps_lookup_class(app, name);
    if (!cls) {
        char msg[700];
        apps_lookup_failure(app, name, true, msg, sizeof msg);
        conn_error(c, m->rid, SKIFF_ERR_NOT_FOUND, "%s", msg);
        return;
    }
    size_t n = 0;
    struct list_node *node, *t;
    list_for_each_safe(node, t, &cls->app->functions)
    {
        struct function *f = container_of(node, struct function, app_link);
        n += f->live && f->cls == cls;
    }
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, m->rid, 4);
    wire_str(&w, "app_id", cls->app->id);
    wire_str(&w, "class", cls->name);
    wire_str(&w, "params", cls->cfg.signature);
    wire_key(&w, "methods");
    wire_pack_array(&w, n);
    list_for_each_safe(node, t, &cls->app->functions)
    {
        struct function *f = container_of(node, struct function, app_link);
        if (!f->live || f->cls != cls)
            continue;
        wire_pack_map(&w, 3);
        wire_pack_str(&w, "name");
        wire_pack_str(&w, f->method);
        wire_pack_str(&w, "function_id");
        wire_pack_str(&w, f->id);
        wire_pack_str(&w, "kind");
        wire_pack_str(&w, kind_name(f));
    }
    if (wire_end(&w) != SKIFF_OK)
        conn_error(c, m->rid, SKIFF_ERR_NOMEM, "out of memory");
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
    struct function *fn;
    if (!resolve_pool(c, m, &fn))
        return;
    int64_t headroom = (int64_t)fn->n_containers * fn->cfg.max_inputs - fn->n_running;
    struct wire_writer w;
    struct schedule_view sv;
    bool scheduled = schedule_view(fn, &sv);
    wire_begin(&w, conn_out(c), OP_OK, m->rid, scheduled ? 6 : 5);
    if (scheduled) {
        wire_key(&w, "schedule");
        wire_pack_map(&w, 5);
        wire_pack_str(&w, "spec");
        wire_pack_str(&w, sv.spec);
        wire_pack_str(&w, "next_run");
        wire_pack_int(&w, sv.next_ms >= 0 ? sv.next_ms / 1000 : -1);
        wire_pack_str(&w, "last_call");
        wire_pack_str(&w, sv.last_call);
        wire_pack_str(&w, "runs");
        wire_pack_int(&w, (int64_t)sv.runs);
        wire_pack_str(&w, "skipped");
        wire_pack_int(&w, (int64_t)sv.skipped);
    }
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
    struct function *fn;
    if (!resolve_pool(c, m, &fn))
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

/* The longest expiry a token may be given: ten years (ms). */
#define TOKEN_EXPIRES_MAX (10 * 366 * 86400000LL)

static void token_new(struct conn *c, struct wire_msg *m)
{
    enum auth_scope scope = AUTH_CALL;
    char name[32];
    if (wire_get(m, "scope") && wire_get(m, "scope")->type != MSGPACK_OBJECT_NIL &&
        (!wire_copy_str(m, "scope", name, sizeof name) || auth_scope_parse(name, &scope) < 0)) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID,
                   "field 'scope' is not one of \"admin\", \"deploy\" and \"call\"");
        return;
    }
    int64_t expires_ms = 0;
    if (wire_get(m, "expires_ms") && wire_get(m, "expires_ms")->type != MSGPACK_OBJECT_NIL &&
        (!wire_get_int(m, "expires_ms", &expires_ms) || expires_ms <= 0 ||
         expires_ms > TOKEN_EXPIRES_MAX)) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID,
                   "field 'expires_ms' is not a duration from 1 ms to ten years");
        return;
    }
    int64_t expires = expires_ms ? store_now_ms() + expires_ms : 0;
    char id[ID_SIZE], secret[AUTH_SECRET_LEN + 1];
    if (auth_new_token(scope, expires, id, secret) < 0) {
        conn_error(c, m->rid, SKIFF_ERR_INTERNAL, "the server could not store a new token");
        return;
    }
    log_info("%s: token %s made token %s (scope %s%s)", c->peer, auth_id(c->token), id,
             auth_scope_name(scope), expires ? ", expiring" : "");
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, m->rid, 4);
    wire_str(&w, "token_id", id);
    wire_str(&w, "token_secret", secret);
    wire_str(&w, "scope", auth_scope_name(scope));
    wire_key(&w, "expires");
    if (expires)
        wire_pack_int(&w, expires / 1000);
    else
        msgpack_pack_nil(&w.pk);
    wire_end(&w);
}

static void token_list(struct conn *c, struct wire_msg *m)
{
    size_t n;
    struct auth_info *all = auth_list(&n);
    int64_t now = store_now_ms();
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, m->rid, 1);
    wire_key(&w, "tokens");
    wire_pack_array(&w, n);
    for (size_t i = 0; i < n; i++) {
        wire_pack_map(&w, 6);
        wire_pack_str(&w, "token_id");
        wire_pack_str(&w, all[i].id);
        wire_pack_str(&w, "scope");
        wire_pack_str(&w, auth_scope_name(all[i].scope));
        wire_pack_str(&w, "created");
        wire_pack_int(&w, all[i].created);
        wire_pack_str(&w, "expires");
        if (all[i].expires)
            wire_pack_int(&w, all[i].expires / 1000);
        else
            msgpack_pack_nil(&w.pk);
        wire_pack_str(&w, "expired");
        if (all[i].expires && all[i].expires <= now)
            msgpack_pack_true(&w.pk);
        else
            msgpack_pack_false(&w.pk);
        wire_pack_str(&w, "last_used");
        if (all[i].last_used)
            wire_pack_int(&w, all[i].last_used);
        else
            msgpack_pack_nil(&w.pk);
    }
    mem_free(all);
    if (wire_end(&w) != SKIFF_OK)
        conn_error(c, m->rid, SKIFF_ERR_NOMEM, "out of memory listing tokens");
}

static void token_revoke(struct conn *c, struct wire_msg *m)
{
    char id[ID_SIZE + 64];
    if (!need_str(c, m, "token_id", id, sizeof id))
        return;
    int rc = id_valid(id, "tk") ? auth_revoke_id(id) : -1;
    if (rc == -1)
        conn_error(c, m->rid, SKIFF_ERR_NOT_FOUND, "there is no token %s", id);
    else if (rc == -2)
        conn_error(c, m->rid, SKIFF_ERR_INVALID,
                   "token %s is the last admin token: make another with `skiff token new "
                   "--scope admin` before revoking it",
                   id);
    else if (rc < 0)
        conn_error(c, m->rid, SKIFF_ERR_INTERNAL, "the server could not revoke token %s", id);
    else
        conn_ok(c, m->rid);
}

/* DASHBOARD_LOGIN: a one-time code for the dashboard's login URL; the session it opens acts
 * with this connection's token. */
static void dashboard_login(struct conn *c, struct wire_msg *m)
{
    const char *addr = http_addr();
    if (!addr) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID,
                   "the server runs without HTTP (--http off): there is no dashboard");
        return;
    }
    char code[80];
    struct auth_token *t = auth_ref(c->token);
    if (http_dash_new_code(t, code, sizeof code) < 0) {
        auth_release(t);
        conn_error(c, m->rid, SKIFF_ERR_INTERNAL, "the server could not make a login code");
        return;
    }
    log_info("%s: token %s asked for a dashboard login code", c->peer, auth_id(c->token));
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, m->rid, 2);
    wire_str(&w, "code", code);
    wire_str(&w, "http", addr);
    wire_end(&w);
}

/* What each operation needs (docs/security.md, "Tokens"): the least scope, and whether it names
 * a call (call_id), which a container token may only do for calls it made. Operations not in
 * the table need admin. */
static const struct {
    const char *name;
    uint8_t scope; /* enum auth_scope */
    bool call_id;
} op_rules[] = {
    [OP_LOOKUP] = {"LOOKUP", AUTH_CONTAINER, false},
    [OP_CLS_LOOKUP] = {"CLS_LOOKUP", AUTH_CONTAINER, false},
    [OP_CALL] = {"CALL", AUTH_CONTAINER, false},
    [OP_MAP_START] = {"MAP_START", AUTH_CONTAINER, false},
    [OP_STATS] = {"STATS", AUTH_CONTAINER, false},
    [OP_GET] = {"GET", AUTH_CONTAINER, true},
    [OP_CANCEL] = {"CANCEL", AUTH_CONTAINER, true},
    [OP_CALL_INFO] = {"CALL_INFO", AUTH_CONTAINER, true},
    [OP_MAP_INPUTS] = {"MAP_INPUTS", AUTH_CONTAINER, true},
    [OP_OUTPUTS] = {"OUTPUTS", AUTH_CONTAINER, true},
    [OP_CALL_GRAPH] = {"CALL_GRAPH", AUTH_CONTAINER, true},
    [OP_DEPLOY] = {"DEPLOY", AUTH_DEPLOY, false},
    [OP_APP_STOP] = {"APP_STOP", AUTH_DEPLOY, false},
    [OP_APP_LIST] = {"APP_LIST", AUTH_DEPLOY, false},
    [OP_CONTAINER_LIST] = {"CONTAINER_LIST", AUTH_DEPLOY, false},
    [OP_LOGS] = {"LOGS", AUTH_DEPLOY, false},
    [OP_AUTOSCALER] = {"AUTOSCALER", AUTH_DEPLOY, false},
    [OP_TOKEN_NEW] = {"TOKEN_NEW", AUTH_ADMIN, false},
    [OP_TOKEN_LIST] = {"TOKEN_LIST", AUTH_ADMIN, false},
    [OP_TOKEN_REVOKE] = {"TOKEN_REVOKE", AUTH_ADMIN, false},
    /* Secrets and volumes are what deployed code uses: a deploy token manages them (its code
     * could read them anyway); call tokens and containers cannot. */
    [OP_SECRET_CREATE] = {"SECRET_CREATE", AUTH_DEPLOY, false},
    [OP_SECRET_LIST] = {"SECRET_LIST", AUTH_DEPLOY, false},
    [OP_SECRET_DELETE] = {"SECRET_DELETE", AUTH_DEPLOY, false},
    [OP_VOLUME_CREATE] = {"VOLUME_CREATE", AUTH_DEPLOY, false},
    [OP_VOLUME_LIST] = {"VOLUME_LIST", AUTH_DEPLOY, false},
    [OP_VOLUME_DELETE] = {"VOLUME_DELETE", AUTH_DEPLOY, false},
    [OP_VOLUME_PUT] = {"VOLUME_PUT", AUTH_DEPLOY, false},
    [OP_VOLUME_GET] = {"VOLUME_GET", AUTH_DEPLOY, false},
    [OP_VOLUME_LS] = {"VOLUME_LS", AUTH_DEPLOY, false},
    [OP_DASHBOARD_LOGIN] = {"DASHBOARD_LOGIN", AUTH_DEPLOY, false},
};

/* True if c's token may do m; otherwise replies AuthError (and closes the connection when the
 * token itself is no longer good). */
static bool permitted(struct conn *c, struct wire_msg *m)
{
    const char *why = auth_unusable(c->token);
    if (why) {
        conn_error(c, m->rid, SKIFF_ERR_AUTH, "token %s %s", auth_id(c->token), why);
        conn_close_after_flush(c);
        return false;
    }
    bool known =
        m->op >= 0 && (size_t)m->op < sizeof op_rules / sizeof op_rules[0] && op_rules[m->op].name;
    enum auth_scope need = known ? (enum auth_scope)op_rules[m->op].scope : AUTH_ADMIN;
    enum auth_scope have = auth_scope_of(c->token);
    if (have < need) {
        if (known)
            conn_error(c, m->rid, SKIFF_ERR_AUTH,
                       "permission denied: %s needs a token of scope %s; token %s has scope %s",
                       op_rules[m->op].name, auth_scope_name(need), auth_id(c->token),
                       auth_scope_name(have));
        else
            conn_error(c, m->rid, SKIFF_ERR_AUTH,
                       "permission denied: operation %d needs a token of scope admin; token %s "
                       "has scope %s",
                       m->op, auth_id(c->token), auth_scope_name(have));
        return false;
    }
    char call_id[ID_SIZE + 64];
    if (known && op_rules[m->op].call_id && have == AUTH_CONTAINER &&
        wire_copy_str(m, "call_id", call_id, sizeof call_id) &&
        !auth_owns_call(c->token, call_id)) {
        conn_error(c, m->rid, SKIFF_ERR_AUTH,
                   "permission denied: a container's token may only read the calls its container "
                   "made, and %s is not one of them",
                   call_id);
        return false;
    }
    return true;
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
    if (m->op == OP_HELLO) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID, "already authenticated");
        return;
    }
    if (!permitted(c, m))
        return;
    switch (m->op) {
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
    case OP_TOKEN_LIST:
        token_list(c, m);
        return;
    case OP_TOKEN_REVOKE:
        token_revoke(c, m);
        return;
    case OP_DASHBOARD_LOGIN:
        dashboard_login(c, m);
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
    case OP_CLS_LOOKUP:
        cls_lookup(c, m);
        return;
    case OP_LOGS: {
        char app[256], function[256];
        if (!need_str(c, m, "app", app, sizeof app))
            return;
        bool has_fn = wire_copy_str(m, "function", function, sizeof function);
        bool follow = false;
        int64_t tail = -1;
        wire_get_bool(m, "follow", &follow);
        if (wire_get(m, "tail") && (!wire_get_int(m, "tail", &tail) || tail < 0)) {
            conn_error(c, m->rid, SKIFF_ERR_INVALID, "field 'tail' is not a count of lines");
            return;
        }
        const char *params_key = NULL;
        if (wire_get(m, "params") &&
            !(params_key = logs_pool_key(c, m, app, has_fn ? function : NULL)))
            return;
        logs_request(c, m->rid, app, has_fn ? function : NULL, params_key, follow, tail);
        return;
    }
    case OP_SECRET_CREATE:
    case OP_SECRET_LIST:
    case OP_SECRET_DELETE:
        secrets_request(c, m);
        return;
    case OP_VOLUME_CREATE:
    case OP_VOLUME_LIST:
    case OP_VOLUME_DELETE:
    case OP_VOLUME_PUT:
    case OP_VOLUME_GET:
    case OP_VOLUME_LS:
        volumes_request(c, m);
        return;
    case OP_CALL_GRAPH: {
        char id[ID_SIZE + 64];
        if (need_str(c, m, "call_id", id, sizeof id))
            graph_request(c, m->rid, id);
        return;
    }
    default:
        conn_error(c, m->rid, SKIFF_ERR_INVALID, "unknown operation %d", m->op);
    }
}

static void on_close(struct conn *c)
{
    calls_conn_closed(c);
    apps_conn_closed(c);
    auth_release(c->token);
    c->token = NULL;
}

/* A token was revoked or has expired: the connections that authenticated with it end. */
static void token_revoked(struct auth_token *t)
{
    const char *why = auth_unusable(t);
    for (struct conn *c = conn_next(NULL); c; c = conn_next(c))
        if (c->token == t) {
            log_info("%s: closing: its token %s %s", c->peer, auth_id(t), why ? why : "ended");
            conn_close_after_flush(c);
        }
}

static const struct conn_ops client_ops = {on_frame, on_close};

const struct conn_ops *proto_client_ops(const struct proto_limits *l)
{
    limits = *l;
    auth_on_revoke(token_revoked);
    return &client_ops;
}
