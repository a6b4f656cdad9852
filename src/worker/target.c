/*
 * target.c - what a container runs: one plain function, or an instance of a class (see worker.h).
 *
 * A function container prepares one struct worker_fn. A class container prepares every method of
 * the class (inputs name theirs), decodes and validates the instance's parameters against the
 * class's parameter signature (the same binder as function arguments, so a wrong type or an
 * unknown name reads like Python's TypeError), allocates the zeroed state struct and runs the
 * enter hooks: those marked to run before a snapshot first (enter_snap), then the others (a
 * snapshot template runs the first phase only and its forked containers the second). A
 * failing hook or bad parameters is an InitFailureError whose message says which hook or
 * parameter and why; the container never becomes ready. Exit hooks run once, when the container
 * stops, only if every enter hook succeeded.
 *
 * Hooks get a skiff_ctx with no input: skiff_self and skiff_param work, skiff_raise records the
 * failure, argument reads return nothing.
 */
#include <string.h>

#include "common/codec.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/value.h"
#include "worker.h"

int worker_prepare_function(const struct skiff_function_def *def, struct worker_fn *fn,
                            skiff_error *err)
{
    memset(fn, 0, sizeof *fn);
    fn->def = def;
    if (def->abi != SKIFF_APP_ABI)
        return skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL,
                               "function '%s' was built for app ABI %d, but this skiff-worker "
                               "runs ABI %d",
                               def->name, def->abi, SKIFF_APP_ABI);
    if (!def->fn)
        return skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL, "function '%s' has no code",
                               def->name);
    if (!def->signature)
        return SKIFF_OK;
    skiff_error perr = SKIFF_ERROR_INIT;
    int rc = signature_parse(&fn->sig, def->signature, &perr);
    if (rc != SKIFF_OK) {
        skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL, "function '%s': %s", def->name,
                        perr.message ? perr.message : "bad signature");
        skiff_error_clear(&perr);
        return SKIFF_ERR_INIT_FAILURE;
    }
    fn->has_sig = true;
    return SKIFF_OK;
}

/* Appends a prepared fn for def to target->fns. */
static int add_fn(struct worker_target *t, const struct skiff_function_def *def, skiff_error *err)
{
    struct worker_fn *fns = mem_realloc(t->fns, (t->nfns + 1) * sizeof *fns);
    if (!fns)
        return skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL, "out of memory");
    t->fns = fns;
    int rc = worker_prepare_function(def, &fns[t->nfns], err);
    if (rc != SKIFF_OK)
        return rc;
    if (fns[t->nfns].sig.n > t->max_params)
        t->max_params = fns[t->nfns].sig.n;
    t->nfns++;
    return SKIFF_OK;
}

static const struct skiff_class_def *find_class(const struct skiff_app_def *app, const char *name)
{
    if (!app->cls_begin)
        return NULL;
    for (const struct skiff_class_def *const *p = app->cls_begin; p < app->cls_end; p++)
        if (*p && (*p)->name && !strcmp((*p)->name, name))
            return *p;
    return NULL;
}

/* Decodes and binds the instance's parameters. */
static int bind_params(struct worker_target *t, const void *params, size_t len, skiff_error *err)
{
    const struct skiff_class_def *c = t->cls;
    if (c->params) {
        skiff_error perr = SKIFF_ERROR_INIT;
        if (signature_parse(&t->params_sig, c->params, &perr) != SKIFF_OK) {
            skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL, "class '%s': parameters: %s",
                            c->name, perr.message ? perr.message : "bad signature");
            skiff_error_clear(&perr);
            return SKIFF_ERR_INIT_FAILURE;
        }
    }
    if (params && len) {
        skiff_error derr = SKIFF_ERROR_INIT;
        if (codec_decode_value(params, len, &t->params, &derr) != SKIFF_OK) {
            skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL,
                            "class '%s': the parameters are malformed: %s", c->name,
                            derr.message ? derr.message : "not msgpack");
            skiff_error_clear(&derr);
            return SKIFF_ERR_INIT_FAILURE;
        }
        if (skiff_value_type(t->params) != SKIFF_MAP)
            return skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL,
                                   "class '%s': the parameters are a %s, not a map of names to "
                                   "values",
                                   c->name, skiff_type_name(skiff_value_type(t->params)));
    }
    if (!c->params) {
        if (skiff_map_len(t->params) > 0)
            return skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL,
                                   "class '%s' takes no parameters, but was given '%s'", c->name,
                                   skiff_map_key(t->params, 0));
        return SKIFF_OK;
    }
    t->params_bound = mem_calloc(t->params_sig.n ? t->params_sig.n : 1, sizeof *t->params_bound);
    if (!t->params_bound)
        return skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL, "out of memory");
    skiff_error berr = SKIFF_ERROR_INIT;
    if (signature_bind(&t->params_sig, c->name, NULL, t->params, t->params_bound, &berr) !=
        SKIFF_OK) {
        /* The binder speaks of arguments; for a class they are its parameters. */
        skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL, "class '%s': bad parameters: %s",
                        c->name, berr.message ? berr.message : "they do not match");
        skiff_error_clear(&berr);
        return SKIFF_ERR_INIT_FAILURE;
    }
    return SKIFF_OK;
}

/* Opens class cls: its methods, parameters and state. */
static int open_class(struct worker_target *t, const char *cls, const void *params, size_t len,
                      skiff_error *err)
{
    const struct skiff_app_def *app = t->app;
    t->cls = find_class(app, cls);
    if (!t->cls)
        return skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL, "app '%s' has no class '%s'",
                               app->name ? app->name : "?", cls);
    const struct skiff_class_def *c = t->cls;
    if (c->abi != SKIFF_APP_ABI)
        return skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL,
                               "class '%s' was built for app ABI %d, but this skiff-worker runs "
                               "ABI %d",
                               cls, c->abi, SKIFF_APP_ABI);
    for (const struct skiff_function_def *const *p = app->begin; app->begin && p < app->end; p++)
        if (*p && (*p)->cls && !strcmp((*p)->cls, cls) && add_fn(t, *p, err) != SKIFF_OK)
            return SKIFF_ERR_INIT_FAILURE;
    if (t->nfns == 0)
        return skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL, "class '%s' has no methods", cls);
    if (bind_params(t, params, len, err) != SKIFF_OK)
        return SKIFF_ERR_INIT_FAILURE;
    t->state = mem_calloc(1, c->state_size ? c->state_size : 1);
    if (!t->state)
        return skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL,
                               "out of memory allocating the %zu-byte state of class '%s'",
                               c->state_size, cls);
    t->max_inputs = c->max_inputs > 0 ? c->max_inputs : 1;
    return SKIFF_OK;
}

int worker_target_open(struct worker_target *target, const struct skiff_app_def *app,
                       const char *function, const char *cls, const void *params, size_t len,
                       skiff_error *err)
{
    memset(target, 0, sizeof *target);
    target->app = app;
    target->max_inputs = 1;
    int rc;
    if (cls) {
        rc = open_class(target, cls, params, len, err);
    } else {
        const struct skiff_function_def *def = worker_find_function(app, function);
        if (!def || def->cls)
            rc = skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL, "app '%s' has no function '%s'",
                                 app->name ? app->name : "?", function);
        else
            rc = add_fn(target, def, err);
        if (rc == SKIFF_OK) {
            target->max_inputs = def->max_inputs > 0 ? def->max_inputs : 1;
            target->max_batch_size = def->max_batch_size;
            target->wait_ms = def->wait_ms;
        }
    }
    if (rc != SKIFF_OK)
        worker_target_deinit(target);
    return rc;
}

/* Runs one hook with a fresh ctx. SKIFF_OK, or the hook's failure in raised (caller clears). */
static int run_hook(const struct worker_target *t, skiff_hook hook, const char *container_id,
                    skiff_error *raised)
{
    bool cancelled = false;
    skiff_ctx ctx = {
        .container_id = container_id,
        .cancelled = &cancelled,
        .raised = SKIFF_ERROR_INIT,
        .target = t,
    };
    int rc = hook(&ctx);
    *raised = ctx.raised;
    if (rc == 0)
        return SKIFF_OK;
    if (raised->code == SKIFF_OK)
        skiff_error_set(raised, SKIFF_ERR_USER, "Error", "the hook returned %d without raising",
                        rc);
    return raised->code;
}

int worker_target_enter(struct worker_target *target, const char *container_id, int phases,
                        skiff_error *err)
{
    const struct skiff_class_def *c = target->cls;
    if (!c)
        return SKIFF_OK;
    const skiff_hook *lists[2] = {c->enter_snap, c->enter};
    for (int l = 0; l < 2; l++) {
        if (!(phases & (l == 0 ? WORKER_ENTER_SNAP : WORKER_ENTER_REST)))
            continue;
        for (int i = 0; i < SKIFF_MAX_HOOKS && lists[l][i]; i++) {
            skiff_error raised = SKIFF_ERROR_INIT;
            if (run_hook(target, lists[l][i], container_id, &raised) != SKIFF_OK) {
                skiff_error_set(
                    err, SKIFF_ERR_INIT_FAILURE, NULL, "class '%s': %s hook %d failed: %s: %s",
                    c->name, l == 0 ? "enter_snap" : "enter", i + 1,
                    raised.type ? raised.type : "Error", raised.message ? raised.message : "");
                if (err && raised.traceback) {
                    err->traceback = raised.traceback;
                    raised.traceback = NULL;
                }
                skiff_error_clear(&raised);
                return SKIFF_ERR_INIT_FAILURE;
            }
        }
    }
    /* Exit hooks are due once the instance is whole: the plain enter hooks ran. */
    if (phases & WORKER_ENTER_REST)
        target->entered = true;
    return SKIFF_OK;
}

void worker_target_exit(struct worker_target *target, const char *container_id)
{
    const struct skiff_class_def *c = target->cls;
    if (!c || !target->entered)
        return;
    target->entered = false;
    for (int i = 0; i < SKIFF_MAX_HOOKS && c->exit[i]; i++) {
        skiff_error raised = SKIFF_ERROR_INIT;
        if (run_hook(target, c->exit[i], container_id, &raised) != SKIFF_OK)
            log_warn("class '%s': exit hook %d failed: %s: %s", c->name, i + 1,
                     raised.type ? raised.type : "Error", raised.message ? raised.message : "");
        skiff_error_clear(&raised);
    }
}

const struct worker_fn *worker_target_find(const struct worker_target *target, const char *method)
{
    if (!target->cls)
        return !method || !strcmp(method, target->fns[0].def->name) ? &target->fns[0] : NULL;
    if (!method)
        return NULL;
    /* Callers name a method "Class.method"; the server may pass either form. */
    size_t clen = strlen(target->cls->name);
    if (!strncmp(method, target->cls->name, clen) && method[clen] == '.')
        method += clen + 1;
    for (size_t i = 0; i < target->nfns; i++)
        if (!strcmp(target->fns[i].def->name, method))
            return &target->fns[i];
    return NULL;
}

void worker_target_deinit(struct worker_target *target)
{
    for (size_t i = 0; i < target->nfns; i++)
        signature_deinit(&target->fns[i].sig);
    mem_free(target->fns);
    signature_deinit(&target->params_sig);
    mem_free(target->params_bound);
    skiff_value_free(target->params);
    mem_free(target->state);
    memset(target, 0, sizeof *target);
}
