/*
 * describe.c - `skiff-worker --describe PATH`: an app's declarations as JSON, for `skiff deploy`.
 *
 * Prints {"app": NAME, "functions": [...], "classes": [...]} on one line of stdout with exactly
 * the keys of DEPLOY (docs/protocol.md): a function entry has name (a method: "Class.method"),
 * class, signature, kind ("function", "generator", "web") and web ({method, label,
 * requires_auth} or null), and for plain functions the configuration; a class entry has name,
 * params (its parameter signature or null), snapshot (whether some enter hook runs before a
 * snapshot) and the configuration its methods share. Configuration values are printed as
 * declared (0 meaning "the server's default"), and a schedule (period_s or cron) when one is
 * set, except retries: `.retries = n` is printed as the
 * policy {n, 1.0, 1.0, 1.0}, a policy's 0 fields as their defaults, and no retries as null. An
 * app that cannot be loaded or breaks a rule (worker_check_app) prints every problem on stderr
 * instead.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "worker.h"

/* The retries map, or null. */
static json_t *retries_json(const struct worker_config *c)
{
    const struct skiff_retries *r = &c->retry_policy;
    if (c->retries > 0)
        return json_pack("{s:i, s:f, s:f, s:f}", "max_retries", c->retries, "backoff_coefficient",
                         1.0, "initial_delay", 1.0, "max_delay", 1.0);
    if (!r->max_retries && !r->backoff_coefficient && !r->initial_delay && !r->max_delay)
        return json_null();
    return json_pack("{s:i, s:f, s:f, s:f}", "max_retries", r->max_retries, "backoff_coefficient",
                     r->backoff_coefficient ? r->backoff_coefficient : 1.0, "initial_delay",
                     r->initial_delay ? r->initial_delay : 1.0, "max_delay",
                     r->max_delay ? r->max_delay : 1.0);
}

/* Adds the configuration keys to obj. -1 when out of memory. */
static int add_config(json_t *obj, const struct worker_config *c)
{
    json_t *cfg =
        json_pack("{s:f, s:i, s:i, s:i, s:f, s:i, s:i, s:i, s:i, s:o, s:f, s:i}", "timeout",
                  c->timeout, "min_containers", c->min_containers, "max_containers",
                  c->max_containers, "buffer_containers", c->buffer_containers, "scaledown_window",
                  c->scaledown_window, "max_inputs", c->max_inputs, "target_inputs",
                  c->target_inputs, "max_batch_size", c->max_batch_size, "wait_ms", c->wait_ms,
                  "retries", retries_json(c), "cpu", c->cpu, "memory", c->memory);
    if (!cfg)
        return -1;
    if ((c->secrets && json_object_set_new(cfg, "secrets", json_string(c->secrets)) < 0) ||
        (c->volumes && json_object_set_new(cfg, "volumes", json_string(c->volumes)) < 0)) {
        json_decref(cfg);
        return -1;
    }
    int rc = json_object_update(obj, cfg);
    json_decref(cfg);
    return rc;
}

/* A plain function's schedule: period_s or cron, only when set. -1 when out of memory. */
static int add_schedule(json_t *obj, const struct skiff_function_def *d)
{
    if (d->period_s != 0 && json_object_set_new(obj, "period_s", json_real(d->period_s)) < 0)
        return -1;
    if (d->cron && json_object_set_new(obj, "cron", json_string(d->cron)) < 0)
        return -1;
    return 0;
}

/* One function's entry, or NULL when out of memory. */
static json_t *function_json(const struct skiff_function_def *d)
{
    char name[160];
    if (d->cls)
        snprintf(name, sizeof name, "%s.%s", d->cls, d->name);
    else
        snprintf(name, sizeof name, "%s", d->name);
    const char *kind = d->web.method ? "web" : d->generator ? "generator" : "function";
    json_t *web = d->web.method
                      ? json_pack("{s:s, s:s?, s:b, s:I}", "method", d->web.method, "label",
                                  d->web.label, "requires_auth", d->web.requires_auth, "max_body",
                                  (json_int_t)d->web.max_body)
                      : json_null();
    json_t *o = json_pack("{s:s, s:s?, s:s?, s:s, s:o}", "name", name, "class", d->cls, "signature",
                          d->signature, "kind", kind, "web", web);
    if (o && !d->cls) {
        struct worker_config c;
        worker_config_of_function(d, &c);
        if (add_config(o, &c) < 0 || add_schedule(o, d) < 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* One class's entry, or NULL when out of memory. */
static json_t *class_json(const struct skiff_class_def *c)
{
    json_t *o = json_pack("{s:s, s:s?, s:b}", "name", c->name, "params", c->params, "snapshot",
                          c->enter_snap[0] != NULL);
    struct worker_config cfg;
    worker_config_of_class(c, &cfg);
    if (o && add_config(o, &cfg) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int print_app(const struct skiff_app_def *app, const char *pkgs)
{
    json_t *fns = json_array();
    json_t *classes = json_array();
    json_t *root = fns && classes ? json_pack("{s:s, s:O, s:O, s:s?}", "app", app->name,
                                              "functions", fns, "classes", classes, "pkgs", pkgs)
                                  : NULL;
    bool ok = root != NULL;
    for (const struct skiff_function_def *const *p = app->begin; ok && p < app->end; p++)
        ok = json_array_append_new(fns, function_json(*p)) == 0;
    for (const struct skiff_class_def *const *p = app->cls_begin;
         ok && app->cls_begin && p < app->cls_end; p++)
        ok = json_array_append_new(classes, class_json(*p)) == 0;
    json_decref(fns);
    json_decref(classes);
    if (!ok) {
        json_decref(root);
        fputs("skiff-worker: out of memory describing the app\n", stderr);
        return 1;
    }
    int rc = json_dumpf(root, stdout, JSON_COMPACT);
    json_decref(root);
    if (rc < 0 || fputc('\n', stdout) == EOF || fflush(stdout) == EOF) {
        perror("skiff-worker: writing the description");
        return 1;
    }
    return 0;
}

int worker_describe(const char *path)
{
    const struct skiff_app_def *app;
    skiff_error err = SKIFF_ERROR_INIT;
    if (worker_load_app(path, &app, &err) != SKIFF_OK) {
        fprintf(stderr, "skiff-worker: %s\n", err.message ? err.message : "cannot load the app");
        skiff_error_clear(&err);
        return 1;
    }
    struct buf problems;
    buf_init(&problems, 0);
    size_t n = worker_check_app(app, &problems);
    if (n > 0) {
        fprintf(stderr, "skiff-worker: %s is not a valid skiff app (%zu problem%s):\n", path, n,
                n == 1 ? "" : "s");
        for (size_t i = 0; i < problems.len;) {
            const char *line = problems.data + i;
            const char *nl = memchr(line, '\n', problems.len - i);
            size_t len = nl ? (size_t)(nl - line) : problems.len - i;
            fprintf(stderr, "  %.*s\n", (int)len, line);
            i += len + 1;
        }
        buf_deinit(&problems);
        return 1;
    }
    buf_deinit(&problems);
    const struct skiff_app_opts *opts = worker_app_options();
    return print_app(app, opts && opts->pkgs && *opts->pkgs ? opts->pkgs : NULL);
}
