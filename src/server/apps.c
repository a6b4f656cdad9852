/*
 * apps.c - the registry of apps and functions, and deploys (see apps.h).
 *
 * Deployed code lives in <data>/apps/<app_id>/v<version>.so; every version stays on disk, so
 * containers still running an older version keep a valid file.
 */
#include "apps.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "calls.h"
#include "common/cron.h"
#include "common/hmap.h"
#include "common/log.h"
#include "common/signature.h"
#include "common/mem.h"
#include "common/resources.h"
#include "common/suggest.h"
#include "common/wire.h"
#include <openssl/evp.h>
#include "sched.h"
#include "schedule.h"
#include "store.h"

static char *data_dir;
static struct list_node app_list = {&app_list, &app_list};
static struct hmap apps_by_name;
static struct hmap fns_by_id;
/* Apps with an owner connection (ephemeral, running): while 0, a closing connection costs
 * nothing here. */
static size_t n_owned;

static bool name_chars(const char *s, size_t max, const char *extra)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr(extra, c)))
            return false;
    }
    return true;
}

bool apps_valid_app_name(const char *name)
{
    return name_chars(name, APP_NAME_MAX, "._-");
}

bool apps_valid_function_name(const char *name)
{
    return name_chars(name, FUNCTION_NAME_MAX, "_.");
}

struct app *apps_find(const char *name)
{
    return hmap_get(&apps_by_name, name);
}

struct function *apps_function(const char *id)
{
    return hmap_get(&fns_by_id, id);
}

static struct function *app_function(struct app *a, const char *name)
{
    struct list_node *n, *t;
    list_for_each_safe(n, t, &a->functions)
    {
        struct function *f = container_of(n, struct function, app_link);
        if (!strcmp(f->name, name))
            return f;
    }
    return NULL;
}

struct function *apps_lookup(const char *app, const char *name)
{
    struct app *a = apps_find(app);
    if (!a || a->stopped)
        return NULL;
    struct function *f = app_function(a, name);
    return f && f->live && !f->is_class && (!f->method || (f->cls && f->cls->live)) ? f : NULL;
}

struct function *apps_lookup_class(const char *app, const char *name)
{
    struct app *a = apps_find(app);
    if (!a || a->stopped)
        return NULL;
    struct function *f = app_function(a, name);
    return f && f->live && f->is_class ? f : NULL;
}

void apps_lookup_failure(const char *app, const char *name, bool is_class, char *out, size_t size)
{
    struct app *a = apps_find(app);
    struct suggest near;
    suggest_init(&near, name);
    struct list_node *n, *t;
    if (a && !a->stopped)
        list_for_each_safe(n, t, &a->functions)
        {
            struct function *f = container_of(n, struct function, app_link);
            if (f->live && f->is_class == is_class && !f->params_key)
                suggest_offer(&near, f->name);
        }
    const char *kind = is_class ? "Cls" : "Function";
    snprintf(out, size, "Lookup failed for %s '%s' from the '%s' app: %s%s%s%s", kind, name, app,
             !a           ? "the app is not deployed"
             : a->stopped ? "the app is stopped"
             : is_class   ? "the app has no such class"
                          : "the app has no such function",
             near.best ? " (did you mean '" : "", near.best ? near.best : "",
             near.best ? "'?)" : "");
}

static int config_copy(struct fn_config *dst, const struct fn_config *src);

/* Points every method of a at its class (after a deploy or a load). */
static void link_methods(struct app *a)
{
    struct list_node *n, *t;
    list_for_each_safe(n, t, &a->functions)
    {
        struct function *f = container_of(n, struct function, app_link);
        const char *dot = strchr(f->name, '.');
        if (!dot || f->is_class)
            continue;
        char cls[FUNCTION_NAME_MAX + 1];
        snprintf(cls, sizeof cls, "%.*s", (int)(dot - f->name), f->name);
        f->method = dot + 1;
        f->cls = app_function(a, cls);
        if (f->cls && !f->cls->is_class)
            f->cls = NULL;
    }
}

struct function *apps_class_pool(struct function *cls, const char *params, size_t n)
{
    /* Base64 of the canonical payload: the key, and what the worker gets as --params. */
    size_t klen = 4 * ((n + 2) / 3) + 1;
    char *key = mem_alloc(klen);
    if (!key)
        return NULL;
    EVP_EncodeBlock((unsigned char *)key, (const unsigned char *)params, (int)n);
    struct function *p = hmap_get(&cls->pools, key);
    if (p) {
        mem_free(key);
        return p;
    }
    p = mem_calloc(1, sizeof *p);
    if (!p || !(p->name = mem_strdup(cls->name)) || !(p->params = mem_alloc(n ? n : 1)) ||
        config_copy(&p->cfg, &cls->cfg) < 0) {
        if (p) {
            mem_free(p->name);
            mem_free(p->params);
        }
        mem_free(p);
        mem_free(key);
        return NULL;
    }
    memcpy(p->params, params, n);
    p->params_len = n;
    p->params_key = key;
    snprintf(p->id, sizeof p->id, "%s", cls->id);
    p->app = cls->app;
    p->cls = cls;
    p->live = true;
    p->version = cls->version;
    list_init(&p->queue);
    list_init(&p->containers);
    list_init(&p->app_link);
    if (hmap_put(&cls->pools, p->params_key, p) < 0) {
        apps_config_clear(&p->cfg);
        mem_free(p->name);
        mem_free(p->params);
        mem_free(p->params_key);
        mem_free(p);
        return NULL;
    }
    return p;
}

struct app *apps_next(struct app *prev)
{
    struct list_node *n = prev ? prev->link.next : app_list.next;
    while (n != &app_list && container_of(n, struct app, link)->removed)
        n = n->next;
    return n == &app_list ? NULL : container_of(n, struct app, link);
}

static struct app *app_new(const char *id, const char *name)
{
    struct app *a = mem_calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->name = mem_strdup(name);
    if (!a->name || hmap_put(&apps_by_name, a->name, a) < 0) {
        mem_free(a->name);
        mem_free(a);
        return NULL;
    }
    snprintf(a->id, sizeof a->id, "%s", id);
    list_init(&a->functions);
    list_push(&app_list, &a->link);
    return a;
}

static struct function *function_new(struct app *a, const char *id, const char *name)
{
    struct function *f = mem_calloc(1, sizeof *f);
    if (!f)
        return NULL;
    snprintf(f->id, sizeof f->id, "%s", id);
    f->name = mem_strdup(name);
    if (!f->name || hmap_put(&fns_by_id, f->id, f) < 0) {
        mem_free(f->name);
        mem_free(f);
        return NULL;
    }
    f->app = a;
    hmap_init(&f->pools);
    list_init(&f->queue);
    list_init(&f->containers);
    list_push(&a->functions, &f->app_link);
    return f;
}

/* --- configuration ---------------------------------------------------------------------------- */

static bool get_num(const msgpack_object *e, const char *key, double *out)
{
    const msgpack_object *o = wire_obj_get(e, key);
    if (!o || o->type == MSGPACK_OBJECT_NIL)
        return false;
    if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)
        *out = o->via.f64;
    else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        *out = o->via.u64 > (1ull << 53) ? (double)(1ull << 53) : (double)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *out = (double)o->via.i64;
    else
        return false;
    return true;
}

/* An integer field in [0, max]; absent reads as 0. NULL or the problem. */
static const char *get_int(const msgpack_object *e, const char *key, int max, int *out)
{
    double d = 0;
    if (!get_num(e, key, &d))
        return NULL;
    if (d < 0 || d > max || d != (double)(int)d)
        return key;
    *out = (int)d;
    return NULL;
}

static char *get_str(const msgpack_object *e, const char *key)
{
    const msgpack_object *o = wire_obj_get(e, key);
    if (!o || o->type != MSGPACK_OBJECT_STR || memchr(o->via.str.ptr, 0, o->via.str.size))
        return NULL;
    return mem_strndup(o->via.str.ptr, o->via.str.size);
}

static bool get_bool(const msgpack_object *e, const char *key)
{
    const msgpack_object *o = wire_obj_get(e, key);
    return o && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean;
}

static const char *schedule_problem(const msgpack_object *e, struct fn_config *c);

/* True when every parameter of signature (NULL: none declared) is optional; otherwise false
 * with the reason in why. */
static bool schedule_args_optional(const char *signature, char *why, size_t size)
{
    if (!signature)
        return true;
    struct signature sig;
    skiff_error err = SKIFF_ERROR_INIT;
    bool ok = true;
    if (signature_parse(&sig, signature, &err) != SKIFF_OK) {
        snprintf(why, size, "it runs on a schedule, but its signature is malformed: %s",
                 err.message ? err.message : "?");
        ok = false;
    } else if (sig.nrequired > 0) {
        snprintf(why, size,
                 "it runs on a schedule, with no arguments, but its parameter '%s' is required",
                 sig.params[0].name);
        ok = false;
    }
    signature_deinit(&sig);
    skiff_error_clear(&err);
    return ok;
}

const char *apps_parse_config(const msgpack_object *e, struct fn_config *c)
{
    memset(c, 0, sizeof *c);
    c->signature = get_str(e, "signature");
    char *kind = get_str(e, "kind");
    const char *problem = NULL;
    if (kind && strcmp(kind, "function") && strcmp(kind, "generator") && strcmp(kind, "web"))
        problem = "kind is not function, generator or web";
    c->generator = kind && !strcmp(kind, "generator");
    c->web = kind && !strcmp(kind, "web");
    mem_free(kind);
    const msgpack_object *web = wire_obj_get(e, "web");
    if (web && web->type == MSGPACK_OBJECT_MAP) {
        c->web = true;
        c->web_method = get_str(web, "method");
        c->web_label = get_str(web, "label");
        c->web_requires_auth = get_bool(web, "requires_auth");
        const msgpack_object *mb = wire_obj_get(web, "max_body");
        if (mb && (mb->type != MSGPACK_OBJECT_POSITIVE_INTEGER || mb->via.u64 > (1ull << 31)))
            problem = "web max_body is not a count of bytes up to 2 GiB";
        else if (mb)
            c->web_max_body = (size_t)mb->via.u64;
    }
    if (get_num(e, "timeout", &c->timeout) && c->timeout != 0 &&
        (c->timeout < FN_MIN_TIMEOUT || c->timeout > FN_MAX_TIMEOUT))
        problem = "timeout is outside 1 s to 24 h";
    const char *bad = NULL;
    if ((bad = get_int(e, "max_containers", 100000, &c->max_containers)) ||
        (bad = get_int(e, "min_containers", 100000, &c->min_containers)) ||
        (bad = get_int(e, "buffer_containers", 100000, &c->buffer_containers)) ||
        (bad = get_int(e, "max_inputs", FN_MAX_INPUTS, &c->max_inputs)) ||
        (bad = get_int(e, "target_inputs", FN_MAX_INPUTS, &c->target_inputs)) ||
        (bad = get_int(e, "max_batch_size", FN_MAX_BATCH, &c->max_batch_size)) ||
        (bad = get_int(e, "wait_ms", FN_MAX_WAIT_MS, &c->wait_ms)) ||
        (bad = get_int(e, "memory", 1 << 24, &c->memory)))
        problem = bad;
    if (get_num(e, "scaledown_window", &c->scaledown_window) && c->scaledown_window < 0)
        problem = "scaledown_window";
    c->snapshot = get_bool(e, "snapshot");
    if (get_num(e, "cpu", &c->cpu) && (c->cpu < 0 || c->cpu > 4096))
        problem = "cpu";
    c->secrets = get_str(e, "secrets");
    c->volumes = get_str(e, "volumes");
    char why[400], names[RES_MAX_SECRETS][RES_NAME_MAX + 1];
    struct res_volume vols[RES_MAX_VOLUMES];
    static char resource_problem[420];
    if (res_parse_secrets(c->secrets, names, RES_MAX_SECRETS, why, sizeof why) < 0 ||
        res_parse_volumes(c->volumes, vols, RES_MAX_VOLUMES, why, sizeof why) < 0) {
        snprintf(resource_problem, sizeof resource_problem, "%s", why);
        problem = resource_problem;
    }
    const msgpack_object *r = wire_obj_get(e, "retries");
    if (r && r->type == MSGPACK_OBJECT_MAP) {
        if ((bad = get_int(r, "max_retries", 10000, &c->retries.max_retries)))
            problem = "retries.max_retries";
        get_num(r, "backoff_coefficient", &c->retries.backoff_coefficient);
        get_num(r, "initial_delay", &c->retries.initial_delay);
        get_num(r, "max_delay", &c->retries.max_delay);
        if (c->retries.backoff_coefficient < 0 || c->retries.initial_delay < 0 ||
            c->retries.max_delay < 0 || c->retries.backoff_coefficient > 1000 ||
            c->retries.initial_delay > 86400 || c->retries.max_delay > 86400)
            problem = "retries";
    } else if (r && r->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        c->retries.max_retries = r->via.u64 > 10000 ? 10000 : (int)r->via.u64;
    }
    const char *sched = schedule_problem(e, c);
    return sched ? sched : problem;
}

/* The schedule of a DEPLOY entry (period_s, cron) into c; NULL, or what is wrong with it (in a
 * static buffer: the server is single-threaded). */
static const char *schedule_problem(const msgpack_object *e, struct fn_config *c)
{
    static char why[400];
    const msgpack_object *cron = wire_obj_get(e, "cron");
    bool has_period = get_num(e, "period_s", &c->period_s) && c->period_s != 0;
    if (cron && cron->type != MSGPACK_OBJECT_NIL) {
        c->cron = get_str(e, "cron");
        if (!c->cron)
            return "cron is not a string";
    }
    if (!has_period && !c->cron)
        return NULL;
    struct cron parsed;
    char reason[256];
    if (has_period && !(c->period_s >= SCHEDULE_PERIOD_MIN && c->period_s <= SCHEDULE_PERIOD_MAX))
        snprintf(why, sizeof why, "period_s %g must be 1 s to a year (31622400 s)", c->period_s);
    else if (c->cron && cron_parse(c->cron, &parsed, reason, sizeof reason) < 0)
        snprintf(why, sizeof why, "cron \"%.60s\": %s", c->cron, reason);
    else if (c->cron && cron_next(&parsed, store_now_ms() / 1000) < 0)
        snprintf(why, sizeof why, "cron \"%.60s\" never matches a date", c->cron);
    else if (has_period && c->cron)
        snprintf(why, sizeof why, "give either period_s or cron, not both");
    else if (c->generator || c->web)
        snprintf(why, sizeof why, "a %s cannot run on a schedule",
                 c->web ? "web endpoint" : "generator");
    else if (!schedule_args_optional(c->signature, why, sizeof why))
        return why;
    else
        return NULL;
    return why;
}

void apps_config_clear(struct fn_config *c)
{
    mem_free(c->signature);
    mem_free(c->web_method);
    mem_free(c->web_label);
    mem_free(c->secrets);
    mem_free(c->volumes);
    mem_free(c->cron);
    memset(c, 0, sizeof *c);
}

/* Applies defaults to a requested configuration. */
static void config_defaults(struct fn_config *c)
{
    if (c->timeout <= 0)
        c->timeout = FN_DEFAULT_TIMEOUT;
    if (c->max_containers <= 0)
        c->max_containers = FN_DEFAULT_MAX_CONTAINERS;
    if (c->min_containers < 0)
        c->min_containers = 0;
    if (c->min_containers > c->max_containers)
        c->min_containers = c->max_containers;
    if (c->scaledown_window <= 0)
        c->scaledown_window = FN_DEFAULT_SCALEDOWN;
    if (c->max_inputs <= 0)
        c->max_inputs = FN_DEFAULT_MAX_INPUTS;
    if (c->target_inputs <= 0 || c->target_inputs > c->max_inputs)
        c->target_inputs = c->max_inputs;
    if (c->retries.max_retries > 0) {
        /* retries = n: a fixed 1 s delay; a policy's unset parts: modal-semantics.md. */
        if (c->retries.backoff_coefficient <= 0)
            c->retries.backoff_coefficient = 2.0;
        if (c->retries.initial_delay <= 0)
            c->retries.initial_delay = 1.0;
        if (c->retries.max_delay <= 0)
            c->retries.max_delay = 60.0;
    }
}

/* Copies a configuration with its strings. 0 or -1 (out of memory). */
static int config_copy(struct fn_config *dst, const struct fn_config *src)
{
    *dst = *src;
    dst->signature = src->signature ? mem_strdup(src->signature) : NULL;
    dst->web_method = src->web_method ? mem_strdup(src->web_method) : NULL;
    dst->web_label = src->web_label ? mem_strdup(src->web_label) : NULL;
    dst->secrets = src->secrets ? mem_strdup(src->secrets) : NULL;
    dst->volumes = src->volumes ? mem_strdup(src->volumes) : NULL;
    dst->cron = src->cron ? mem_strdup(src->cron) : NULL;
    if ((src->signature && !dst->signature) || (src->web_method && !dst->web_method) ||
        (src->web_label && !dst->web_label) || (src->secrets && !dst->secrets) ||
        (src->volumes && !dst->volumes) || (src->cron && !dst->cron)) {
        apps_config_clear(dst);
        return -1;
    }
    return 0;
}

/* A function's configuration from its row: the stored DEPLOY entry (version 2), else the
 * columns of version 1. 0 or -1. */
static int load_config(struct function *f, sqlite3_stmt *st)
{
    const void *blob = sqlite3_column_blob(st, 10);
    int n = sqlite3_column_bytes(st, 10);
    if (blob && n > 0) {
        msgpack_zone zone;
        msgpack_object obj;
        size_t off = 0;
        if (!msgpack_zone_init(&zone, 1024))
            return -1;
        int ok = msgpack_unpack(blob, (size_t)n, &off, &zone, &obj) == MSGPACK_UNPACK_SUCCESS;
        if (ok)
            apps_parse_config(&obj, &f->cfg);
        msgpack_zone_destroy(&zone);
        if (!ok)
            log_warn("function %s: its stored configuration is unreadable: defaults used", f->id);
    } else {
        const unsigned char *sig = sqlite3_column_text(st, 5);
        f->cfg.signature = sig ? mem_strdup((const char *)sig) : NULL;
        f->cfg.timeout = sqlite3_column_double(st, 6);
        f->cfg.max_containers = sqlite3_column_int(st, 7);
        f->cfg.min_containers = sqlite3_column_int(st, 8);
        f->cfg.scaledown_window = sqlite3_column_double(st, 9);
    }
    config_defaults(&f->cfg);
    return config_copy(&f->deployed, &f->cfg);
}

static int exec_sql(sqlite3 *db, const char *sql);
static void remove_stored(const char *app_id);

/* Ephemeral apps still in the store belonged to clients of an earlier run of the server, gone
 * now: they are removed before anything is loaded. */
static void remove_leftovers(sqlite3 *db)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT app_id, name FROM apps WHERE ephemeral = 1", -1, &st,
                           NULL) != SQLITE_OK)
        return;
    while (sqlite3_step(st) == SQLITE_ROW) {
        log_info("removing ephemeral app %s: its client left before the server stopped",
                 (const char *)sqlite3_column_text(st, 1));
        remove_stored((const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
}

int apps_init(const char *dir)
{
    data_dir = mem_strdup(dir);
    hmap_init(&apps_by_name);
    hmap_init(&fns_by_id);
    sqlite3 *db = store_db();
    sqlite3_stmt *st;
    remove_leftovers(db);
    if (sqlite3_prepare_v2(db,
                           "SELECT app_id, name, stopped, version, created, code_path FROM apps"
                           " ORDER BY created, app_id",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct app *a = app_new((const char *)sqlite3_column_text(st, 0),
                                (const char *)sqlite3_column_text(st, 1));
        if (!a) {
            sqlite3_finalize(st);
            return -1;
        }
        a->stopped = sqlite3_column_int(st, 2);
        a->version = sqlite3_column_int(st, 3);
        a->created = sqlite3_column_int64(st, 4);
        const unsigned char *p = sqlite3_column_text(st, 5);
        a->code_path = p ? mem_strdup((const char *)p) : NULL;
    }
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(db,
                           "SELECT f.function_id, a.name, f.name, f.live, f.version, f.signature,"
                           " f.timeout, f.max_containers, f.min_containers, f.scaledown_window,"
                           " f.config, f.is_class FROM functions f JOIN apps a USING(app_id)"
                           " ORDER BY f.function_id",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct app *a = apps_find((const char *)sqlite3_column_text(st, 1));
        if (!a)
            continue;
        struct function *f = function_new(a, (const char *)sqlite3_column_text(st, 0),
                                          (const char *)sqlite3_column_text(st, 2));
        if (!f) {
            sqlite3_finalize(st);
            return -1;
        }
        f->live = sqlite3_column_int(st, 3);
        f->version = sqlite3_column_int(st, 4);
        f->is_class = sqlite3_column_int(st, 11) != 0;
        if (load_config(f, st) < 0) {
            sqlite3_finalize(st);
            return -1;
        }
    }
    sqlite3_finalize(st);
    for (struct app *a = apps_next(NULL); a; a = apps_next(a))
        link_methods(a);
    return 0;
fail:
    log_error("apps: cannot load: %s", sqlite3_errmsg(db));
    return -1;
}

void apps_start_all(void)
{
    for (struct app *a = apps_next(NULL); a; a = apps_next(a)) {
        struct list_node *n, *t;
        list_for_each_safe(n, t, &a->functions)
        {
            sched_function_changed(container_of(n, struct function, app_link));
            schedule_function_changed(container_of(n, struct function, app_link));
        }
    }
}

void apps_deinit(void)
{
    while (!list_empty(&app_list)) {
        struct app *a = container_of(app_list.next, struct app, link);
        while (!list_empty(&a->functions)) {
            struct function *f = container_of(a->functions.next, struct function, app_link);
            list_remove(&f->app_link);
            for (size_t i = 0; i < f->pools.cap; i++) {
                struct function *p = f->pools.slots[i].val;
                if (!p)
                    continue;
                apps_config_clear(&p->cfg);
                mem_free(p->name);
                mem_free(p->params);
                mem_free(p->params_key);
                mem_free(p);
            }
            hmap_deinit(&f->pools);
            mem_free(f->name);
            apps_config_clear(&f->cfg);
            apps_config_clear(&f->deployed);
            mem_free(f);
        }
        list_remove(&a->link);
        mem_free(a->name);
        mem_free(a->code_path);
        mem_free(a);
    }
    hmap_deinit(&apps_by_name);
    hmap_deinit(&fns_by_id);
    n_owned = 0;
    mem_free(data_dir);
    data_dir = NULL;
}

/* Writes the code durably to path (via a temporary file and rename). 0 or -1 (errno). */
static int write_code(const char *path, const void *code, size_t n)
{
    char tmp[4400];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    const char *p = code;
    size_t left = n;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) < 0)
        goto fail;
    close(fd);
    return rename(tmp, path);
fail:;
    int e = errno;
    close(fd);
    unlink(tmp);
    errno = e;
    return -1;
}

static int exec_sql(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* Records the deploy in one transaction. SQLITE_OK or an error code. */
static int save_deploy(struct app *a, const char *app_id, int version, const char *code_path,
                       const struct deploy_fn *fns, size_t nfns, char (*ids)[ID_SIZE])
{
    sqlite3 *db = store_db();
    sqlite3_stmt *st = NULL;
    int rc = exec_sql(db, "BEGIN");
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_prepare_v2(db,
                            "INSERT INTO apps(app_id, name, stopped, version, created, code_path,"
                            " ephemeral) VALUES(?1, ?2, 0, ?3, strftime('%s','now'), ?4, ?5)"
                            " ON CONFLICT(app_id) DO UPDATE SET stopped = 0, version = ?3,"
                            " code_path = ?4, ephemeral = ?5",
                            -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, app_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, a->name, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, version);
        sqlite3_bind_text(st, 4, code_path, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 5, a->ephemeral);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
        sqlite3_finalize(st);
    }
    if (rc == SQLITE_OK) {
        sqlite3_prepare_v2(db, "UPDATE functions SET live = 0 WHERE app_id = ?1", -1, &st, NULL);
        sqlite3_bind_text(st, 1, app_id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
        sqlite3_finalize(st);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(
            db,
            "INSERT INTO functions(function_id, app_id, name, live, version, signature, timeout,"
            " max_containers, min_containers, scaledown_window, config, is_class)"
            " VALUES(?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            " ON CONFLICT(function_id) DO UPDATE SET live = 1, version = ?4, signature = ?5,"
            " timeout = ?6, max_containers = ?7, min_containers = ?8, scaledown_window = ?9,"
            " config = ?10, is_class = ?11",
            -1, &st, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < nfns; i++) {
        sqlite3_bind_text(st, 1, ids[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, app_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, fns[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, version);
        if (fns[i].cfg.signature)
            sqlite3_bind_text(st, 5, fns[i].cfg.signature, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 5);
        sqlite3_bind_double(st, 6, fns[i].cfg.timeout);
        sqlite3_bind_int(st, 7, fns[i].cfg.max_containers);
        sqlite3_bind_int(st, 8, fns[i].cfg.min_containers);
        sqlite3_bind_double(st, 9, fns[i].cfg.scaledown_window);
        if (fns[i].entry)
            sqlite3_bind_blob64(st, 10, fns[i].entry, fns[i].entry_len, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 10);
        sqlite3_bind_int(st, 11, fns[i].is_class);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
        sqlite3_reset(st);
    }
    if (st)
        sqlite3_finalize(st);
    if (rc == SQLITE_OK)
        rc = exec_sql(db, "COMMIT");
    if (rc != SQLITE_OK)
        exec_sql(db, "ROLLBACK");
    return rc;
}

struct app *apps_deploy(const char *name, const void *code, size_t n, const struct deploy_fn *fns,
                        size_t nfns, struct conn *owner, char *errbuf, size_t errlen)
{
    struct app *a = apps_find(name);
    char app_id[ID_SIZE];
    if (a)
        memcpy(app_id, a->id, sizeof app_id);
    else
        id_new(app_id, "ap");
    int version = a ? a->version + 1 : 1;

    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/apps/%s", data_dir, app_id);
    snprintf(path, sizeof path, "%s/v%d.so", dir, version);
    char apps_dir[4096];
    snprintf(apps_dir, sizeof apps_dir, "%s/apps", data_dir);
    if ((mkdir(apps_dir, 0700) < 0 && errno != EEXIST) ||
        (mkdir(dir, 0700) < 0 && errno != EEXIST) || write_code(path, code, n) < 0) {
        snprintf(errbuf, errlen, "cannot store the app's code in %s: %s", dir, strerror(errno));
        return NULL;
    }

    /* Function ids: kept for names the app already had, new otherwise. */
    char(*ids)[ID_SIZE] = mem_calloc(nfns ? nfns : 1, ID_SIZE);
    struct deploy_fn *cfgs = mem_calloc(nfns ? nfns : 1, sizeof *cfgs);
    if (!ids || !cfgs) {
        mem_free(ids);
        mem_free(cfgs);
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < nfns; i++) {
        struct function *f = a ? app_function(a, fns[i].name) : NULL;
        if (f)
            memcpy(ids[i], f->id, ID_SIZE);
        else
            id_new(ids[i], "fu");
        cfgs[i] = fns[i];
        config_defaults(&cfgs[i].cfg);
    }

    struct app tmp_app = {.name = (char *)name, .ephemeral = owner != NULL};
    if (a)
        a->ephemeral = owner != NULL; /* a plain deploy over an ephemeral app keeps it */
    int rc = save_deploy(a ? a : &tmp_app, app_id, version, path, cfgs, nfns, ids);
    if (rc != SQLITE_OK) {
        snprintf(errbuf, errlen, "cannot record the deploy: %s", sqlite3_errstr(rc));
        mem_free(ids);
        mem_free(cfgs);
        return NULL;
    }

    if (!a) {
        a = app_new(app_id, name);
        if (!a)
            goto oom;
        a->created = store_now_ms() / 1000;
    }
    char *code_path = mem_strdup(path);
    if (!code_path)
        goto oom;
    mem_free(a->code_path);
    a->code_path = code_path;
    a->version = version;
    a->stopped = false;
    a->ephemeral = owner != NULL;
    n_owned -= a->owner != NULL;
    n_owned += owner != NULL;
    a->owner = owner;
    struct list_node *node, *t;
    list_for_each_safe(node, t, &a->functions) container_of(node, struct function, app_link)->live =
        false;
    for (size_t i = 0; i < nfns; i++) {
        struct function *f = app_function(a, fns[i].name);
        if (!f && !(f = function_new(a, ids[i], fns[i].name)))
            goto oom;
        struct fn_config cfg, deployed;
        if (config_copy(&cfg, &cfgs[i].cfg) < 0)
            goto oom;
        if (config_copy(&deployed, &cfgs[i].cfg) < 0) {
            apps_config_clear(&cfg);
            goto oom;
        }
        apps_config_clear(&f->cfg);
        apps_config_clear(&f->deployed);
        f->cfg = cfg; /* a redeploy resets the autoscaler to what is deployed */
        f->deployed = deployed;
        f->is_class = fns[i].is_class;
        f->live = true;
        f->version = version;
    }
    mem_free(ids);
    mem_free(cfgs);
    link_methods(a);
    list_for_each_safe(node, t, &a->functions)
    {
        struct function *f = container_of(node, struct function, app_link);
        if (!f->live)
            calls_terminate_queued(f, "the function was removed by a redeploy of its app");
        sched_function_changed(f);
        schedule_function_changed(f);
    }
    size_t nclasses = 0;
    for (size_t i = 0; i < nfns; i++)
        nclasses += fns[i].is_class;
    log_info("deployed %s%s version %d (%zu function%s, %zu class%s)",
             owner ? "ephemeral app " : "", name, version, nfns - nclasses,
             nfns - nclasses == 1 ? "" : "s", nclasses, nclasses == 1 ? "" : "es");
    return a;
oom:
    mem_free(ids);
    mem_free(cfgs);
    snprintf(errbuf, errlen, "out of memory (the deploy is recorded; restart the server)");
    return NULL;
}

int apps_stop(const char *name)
{
    struct app *a = apps_find(name);
    if (!a)
        return -1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_db(), "UPDATE apps SET stopped = 1 WHERE app_id = ?1", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            log_error("apps: cannot record the stop of %s: %s", name, sqlite3_errmsg(store_db()));
        sqlite3_finalize(st);
    }
    a->stopped = true;
    struct list_node *n, *t;
    list_for_each_safe(n, t, &a->functions)
    {
        struct function *f = container_of(n, struct function, app_link);
        calls_terminate_queued(f, "the app was stopped");
        sched_function_changed(f);
        schedule_function_changed(f);
    }
    if (!a->ephemeral) {
        log_info("stopped app %s", name);
        return 0;
    }
    /* Removed: out of the store and the listings, its name free again. The structures stay
     * (calls in memory point at its functions) until the server stops. */
    remove_stored(a->id);
    hmap_del(&apps_by_name, a->name);
    a->removed = true;
    n_owned -= a->owner != NULL;
    a->owner = NULL;
    log_info("stopped and removed ephemeral app %s", name);
    return 0;
}

/* Deletes app_id's rows (the app, its functions) and its code directory. */
static void remove_stored(const char *app_id)
{
    sqlite3 *db = store_db();
    static const char *const sql[] = {"DELETE FROM functions WHERE app_id = ?1",
                                      "DELETE FROM apps WHERE app_id = ?1"};
    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, sql[i], -1, &st, NULL) != SQLITE_OK) {
            log_error("apps: cannot remove %s: %s", app_id, sqlite3_errmsg(db));
            return;
        }
        sqlite3_bind_text(st, 1, app_id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            log_error("apps: cannot remove %s: %s", app_id, sqlite3_errmsg(db));
        sqlite3_finalize(st);
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/apps/%s", data_dir, app_id);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    if (rmdir(dir) < 0)
        log_warn("apps: cannot remove %s: %s", dir, strerror(errno));
}

bool apps_owns(const struct conn *c)
{
    if (!n_owned)
        return false;
    for (struct app *a = apps_next(NULL); a; a = apps_next(a))
        if (a->owner == c && !a->stopped)
            return true;
    return false;
}

void apps_conn_closed(struct conn *c)
{
    if (!n_owned)
        return;
    for (struct app *a = apps_next(NULL), *next; a; a = next) {
        next = apps_next(a);
        if (a->owner == c && !a->stopped) {
            log_info("the client that deployed ephemeral app %s left", a->name);
            apps_stop(a->name);
        }
    }
}
