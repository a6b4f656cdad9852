/*
 * local.c - worker_local_call: running an app's function in the calling process (the `local`
 * of the reference API; declared in src/client/client.h, which skiff_function_local uses).
 *
 * The app definition is found among the apps this process loaded through worker_load_app (kept
 * in a small registry by name), or else the one linked into the program itself
 * (dlsym(RTLD_DEFAULT, SKIFF_APP_SYMBOL), when it is the app asked for). The call goes through
 * the same path as a container's input (target.c opens the function or class, exec.c binds and
 * runs it), with a sink that keeps the outcome: a result, a failure, or a generator's items
 * collected into a list. A method runs on a fresh instance with the handle's parameters (none
 * for a plain class handle): its enter hooks first, its exit hooks after. A batched function is
 * called with a batch of one.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

#include "client/client.h"
#include "common/mem.h"
#include "worker.h"

/* Apps a process loads are few (a worker loads one); beyond this they are not remembered. */
#define LOCAL_APPS_MAX 16

static pthread_mutex_t apps_mu = PTHREAD_MUTEX_INITIALIZER;
static const struct skiff_app_def *apps[LOCAL_APPS_MAX];
static size_t napps;

void worker_register_app(const struct skiff_app_def *app)
{
    pthread_mutex_lock(&apps_mu);
    bool known = false;
    for (size_t i = 0; i < napps; i++)
        known |= apps[i] == app;
    if (!known && napps < LOCAL_APPS_MAX)
        apps[napps++] = app;
    pthread_mutex_unlock(&apps_mu);
}

/* The definition of the app called name, or NULL. */
static const struct skiff_app_def *find_app(const char *name)
{
    const struct skiff_app_def *found = NULL;
    pthread_mutex_lock(&apps_mu);
    for (size_t i = 0; i < napps && !found; i++)
        if (apps[i]->name && !strcmp(apps[i]->name, name))
            found = apps[i];
    pthread_mutex_unlock(&apps_mu);
    if (found)
        return found;
    void *sym = dlsym(RTLD_DEFAULT, SKIFF_APP_SYMBOL);
    if (!sym)
        return NULL;
    const struct skiff_app_def *(*get)(void);
    memcpy(&get, &sym, sizeof get); /* POSIX: object pointer to function pointer */
    const struct skiff_app_def *app = get();
    if (!app || app->abi != SKIFF_APP_ABI || !app->name || strcmp(app->name, name))
        return NULL;
    return app;
}

/* What the sink keeps. */
struct outcome {
    skiff_value *result;
    skiff_value *items; /* a generator's items */
    skiff_error *err;
    bool failed;
    bool nomem;
};

static int keep_value(void *arg, const struct exec_input *in, const skiff_value *v)
{
    (void)in;
    struct outcome *o = arg;
    o->result = v ? skiff_value_copy(v) : skiff_value_nil();
    o->nomem = !o->result;
    return 0;
}

static int keep_failure(void *arg, const struct exec_input *in, const skiff_error *e)
{
    (void)in;
    struct outcome *o = arg;
    o->failed = true;
    if (o->err) {
        skiff_error_clear(o->err);
        o->err->code = e->code == SKIFF_OK ? SKIFF_ERR_USER : e->code;
        o->err->type = mem_strdup(e->type ? e->type : skiff_code_name(o->err->code));
        o->err->message = mem_strdup(e->message ? e->message : "");
        o->err->traceback = e->traceback ? mem_strdup(e->traceback) : NULL;
    }
    return 0;
}

static int keep_item(void *arg, const struct exec_input *in, skiff_value *item, skiff_error *err)
{
    (void)in;
    struct outcome *o = arg;
    if (!o->items)
        o->items = skiff_value_list();
    /* skiff_list_append takes the item even when it fails (a NULL list included). */
    if (skiff_list_append(o->items, item ? item : skiff_value_nil()) != SKIFF_OK) {
        skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory keeping an item");
        return -1;
    }
    return 0;
}

static int keep_end(void *arg, const struct exec_input *in, int64_t count)
{
    (void)in;
    (void)count;
    struct outcome *o = arg;
    o->result = o->items ? o->items : skiff_value_list();
    o->items = NULL;
    o->nomem = !o->result;
    return 0;
}

/* True when app defines function ("Class.method" or a plain function's name). */
static bool defines(const struct skiff_app_def *app, const char *function)
{
    const char *dot = strchr(function, '.');
    size_t clen = dot ? (size_t)(dot - function) : 0;
    for (const struct skiff_function_def *const *p = app->begin; app->begin && p < app->end; p++) {
        const struct skiff_function_def *d = *p;
        if (!d || d->abi != SKIFF_APP_ABI || !d->name)
            continue;
        if (!dot && !d->cls && !strcmp(d->name, function))
            return true;
        if (dot && d->cls && strlen(d->cls) == clen && !strncmp(d->cls, function, clen) &&
            !strcmp(d->name, dot + 1))
            return true;
    }
    return false;
}

/* Opens the target for function of app (which defines it). SKIFF_OK, or
 * SKIFF_ERR_INIT_FAILURE (a class's parameters, an unusable signature) with err filled. */
static int open_target(struct worker_target *t, const struct skiff_app_def *app,
                       const char *function, const void *params, size_t params_len,
                       const char **method, skiff_error *err)
{
    const char *dot = strchr(function, '.');
    if (!dot) {
        *method = NULL;
        return worker_target_open(t, app, function, NULL, NULL, 0, err);
    }
    char cls[SIG_NAME_MAX + 1];
    size_t n = (size_t)(dot - function);
    if (n >= sizeof cls)
        n = sizeof cls - 1;
    memcpy(cls, function, n);
    cls[n] = '\0';
    *method = dot + 1;
    return worker_target_open(t, app, NULL, cls, params, params_len, err);
}

int worker_local_call(const char *app, const char *function, const void *params, size_t params_len,
                      const skiff_value *args, const skiff_value *kwargs, skiff_value **result,
                      skiff_error *err)
{
    if (!app || !function || !result)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "local call: app, function and result must not be NULL");
    const struct skiff_app_def *def = find_app(app);
    if (!def)
        return skiff_error_set(err, SKIFF_ERR_EXECUTION, NULL,
                               "no local definition of app '%s' in this process (link the app's "
                               "code in, or call it remotely)",
                               app);
    if (!defines(def, function))
        return skiff_error_set(err, SKIFF_ERR_EXECUTION, NULL,
                               "app '%s' has no local definition of '%s'", app, function);
    struct worker_target t;
    const char *method;
    if (open_target(&t, def, function, params, params_len, &method, err) != SKIFF_OK)
        return SKIFF_ERR_INIT_FAILURE;
    skiff_error herr = SKIFF_ERROR_INIT;
    if (worker_target_enter(&t, NULL, WORKER_ENTER_ALL, &herr) != SKIFF_OK) {
        worker_target_deinit(&t);
        if (err) {
            skiff_error_clear(err);
            *err = herr;
        } else {
            skiff_error_clear(&herr);
        }
        return SKIFF_ERR_INIT_FAILURE;
    }
    skiff_value *empty_args = args ? NULL : skiff_value_list();
    skiff_value *empty_kwargs = kwargs ? NULL : skiff_value_map();
    const skiff_value **bound = mem_calloc(t.max_params ? t.max_params : 1, sizeof *bound);
    struct outcome o = {.err = err};
    int rc;
    if (!bound || (!args && !empty_args) || (!kwargs && !empty_kwargs)) {
        rc = skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    } else {
        struct exec_input in = {
            .slot = -1,
            .input_id = "local",
            .call_id = "local",
            .fn = worker_target_find(&t, method),
            .args = args ? args : empty_args,
            .kwargs = kwargs ? kwargs : empty_kwargs,
        };
        static const struct exec_sink keep = {NULL, keep_value, keep_failure, keep_item, keep_end};
        struct exec_sink sink = keep;
        sink.arg = &o;
        bool cancelled = false;
        exec_run(&t, &in, 1, bound, &cancelled, NULL, &sink);
        if (o.failed)
            rc = err ? (int)err->code : SKIFF_ERR_USER;
        else if (o.nomem)
            rc = skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory keeping the result");
        else
            rc = SKIFF_OK;
    }
    worker_target_exit(&t, NULL);
    worker_target_deinit(&t);
    mem_free(bound);
    skiff_value_free(empty_args);
    skiff_value_free(empty_kwargs);
    skiff_value_free(o.items);
    if (rc == SKIFF_OK)
        *result = o.result;
    else
        skiff_value_free(o.result);
    return rc;
}
