/*
 * describe.c - `skiff-worker --describe PATH`: an app's declarations as JSON, for `skiff deploy`.
 *
 * Prints {"app": NAME, "functions": [{"name", "signature", "timeout", "max_containers",
 * "min_containers", "scaledown_window"}]} on one line of stdout, the fields exactly as declared
 * (0 meaning "the server's default"; signature null when the function has none). An app that
 * cannot be loaded or breaks a rule (worker_check_app) prints every problem on stderr instead.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "worker.h"

/* One function's entry, or NULL when out of memory. */
static json_t *function_json(const struct skiff_function_def *d)
{
    return json_pack("{s:s, s:s?, s:f, s:i, s:i, s:f}", "name", d->name, "signature", d->signature,
                     "timeout", d->timeout, "max_containers", d->max_containers, "min_containers",
                     d->min_containers, "scaledown_window", d->scaledown_window);
}

static int print_app(const struct skiff_app_def *app)
{
    json_t *fns = json_array();
    json_t *root = fns ? json_pack("{s:s, s:o}", "app", app->name, "functions", fns) : NULL;
    if (!root) {
        fputs("skiff-worker: out of memory describing the app\n", stderr);
        return 1;
    }
    for (const struct skiff_function_def *const *p = app->begin; p < app->end; p++)
        if (json_array_append_new(fns, function_json(*p)) < 0) {
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
    return print_app(app);
}
