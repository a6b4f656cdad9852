/*
 * exec.c - running one input, or one batch of inputs, of a prepared function (see worker.h).
 *
 * Shared by the container loop (run.c, whose sink packs outputs into W_OUTPUTS entries) and local
 * calls (local.c, whose sink keeps the result). For a single input:
 *
 *     bind [args, kwargs] to the signature -> call the function -> report its result or failure
 *
 * and for a generator the items go to the sink as skiff_yield hands them over, then the end (or
 * the failure, after the items already sent).
 *
 * A batched function (.max_batch_size) is called once for a list of inputs. Each input is bound
 * on its own (a binding failure fails that input alone and leaves it out of the batch); then
 * every parameter reads as the list of that parameter's values across the batch (nil where an
 * optional one was omitted), skiff_ctx_args is the list of those columns, and skiff_batch_size
 * says how many inputs there are. The function returns a list with one result per input, in
 * order; any other result fails every input of the batch with an InvalidError saying so, and a
 * raised error fails every input with that error.
 */
#include <stdio.h>
#include <string.h>

#include "client/client.h"
#include "common/mem.h"
#include "worker.h"

/* Where a generator's items go: the sink and the input they belong to. */
struct gen {
    const struct exec_sink *sink;
    const struct exec_input *in;
};

/* skiff_yield's sink: the item goes out, or the generator's error becomes why it did not. */
static int gen_yield(skiff_ctx *ctx, skiff_value *item)
{
    struct gen *g = ctx->yield_arg;
    skiff_error err = SKIFF_ERROR_INIT;
    if (g->sink->item(g->sink->arg, g->in, item, &err) < 0) {
        skiff_error_clear(&ctx->raised);
        ctx->raised = err;
        if (ctx->raised.code == SKIFF_OK)
            skiff_error_set(&ctx->raised, SKIFF_ERR_REMOTE, NULL, "the item could not be sent");
        return -1;
    }
    ctx->yielded++;
    return 0;
}

/* The error a function that returned rc reports: what it raised, or a generic one in tmp. */
static const skiff_error *failure_of(const skiff_ctx *ctx, int rc, skiff_error *tmp)
{
    if (ctx->raised.code != SKIFF_OK)
        return &ctx->raised;
    skiff_error_set(tmp, SKIFF_ERR_USER, "Error",
                    "%s() failed without raising an error (returned %d)", ctx->def->name, rc);
    return tmp;
}

/* Calls the function with ctx prepared, marking the input for crash notes and the call graph. */
static int call(skiff_ctx *ctx, const struct exec_input *in, skiff_value **result)
{
    bool container = in->slot >= 0; /* local calls (slot -1) leave the crash notes alone */
    if (container) {
        worker_crash_set_input(in->slot, in->input_id, ctx->def->name);
        client_set_parent_input(in->input_id);
    }
    int rc = ctx->def->fn(ctx, result);
    if (container) {
        client_set_parent_input(NULL);
        worker_crash_set_input(-1, NULL, NULL);
    }
    return rc;
}

static int run_one(const struct worker_target *t, const struct exec_input *in,
                   const skiff_value **bound, bool *cancelled, const char *container_id,
                   const struct exec_sink *sink)
{
    if (in->failed)
        return sink->failure(sink->arg, in, in->failed);
    const struct worker_fn *fn = in->fn;
    skiff_error err = SKIFF_ERROR_INIT;
    if (fn->has_sig &&
        signature_bind(&fn->sig, fn->def->name, in->args, in->kwargs, bound, &err) != SKIFF_OK) {
        int sent = sink->failure(sink->arg, in, &err);
        skiff_error_clear(&err);
        return sent;
    }
    struct gen g = {sink, in};
    skiff_ctx ctx = {
        .def = fn->def,
        .sig = fn->has_sig ? &fn->sig : NULL,
        .args = in->args,
        .kwargs = in->kwargs,
        .bound = bound,
        .input_id = in->input_id,
        .call_id = in->call_id,
        .container_id = container_id,
        .cancelled = cancelled,
        .raised = SKIFF_ERROR_INIT,
        .target = t,
        .yield = fn->def->generator ? gen_yield : NULL,
        .yield_arg = &g,
    };
    skiff_value *result = NULL;
    int rc = call(&ctx, in, &result);
    int sent;
    if (rc != 0)
        sent = sink->failure(sink->arg, in, failure_of(&ctx, rc, &err));
    else if (fn->def->generator)
        sent = sink->end(sink->arg, in, ctx.yielded);
    else
        sent = sink->value(sink->arg, in, result);
    skiff_value_free(result);
    skiff_error_clear(&ctx.raised);
    skiff_error_clear(&err);
    return sent;
}

/* Fails every input of the batch listed in ok[0..n) with err. */
static int fail_all(const struct exec_input *in, const size_t *ok, size_t n, const skiff_error *err,
                    const struct exec_sink *sink)
{
    int sent = 0;
    for (size_t i = 0; i < n; i++)
        if (sink->failure(sink->arg, &in[ok[i]], err) < 0)
            sent = -1;
    return sent;
}

/* Binds every input of a batch and gathers the columns: cols (a list of nparams lists) and ok,
 * the indices of the inputs that bound. Inputs that do not bind are reported failed here. */
static int gather(const struct worker_fn *fn, const struct exec_input *in, size_t n,
                  const skiff_value **bound, skiff_value *cols, size_t *ok, size_t *nok,
                  const struct exec_sink *sink)
{
    size_t np = fn->sig.n;
    int sent = 0;
    for (size_t k = 0; k < np; k++)
        if (skiff_list_append(cols, skiff_value_list()) != SKIFF_OK)
            return -2;
    for (size_t i = 0; i < n; i++) {
        skiff_error err = SKIFF_ERROR_INIT;
        if (in[i].failed) {
            sent |= sink->failure(sink->arg, &in[i], in[i].failed);
            continue;
        }
        if (signature_bind(&fn->sig, fn->def->name, in[i].args, in[i].kwargs, bound, &err) !=
            SKIFF_OK) {
            sent |= sink->failure(sink->arg, &in[i], &err);
            skiff_error_clear(&err);
            continue;
        }
        for (size_t k = 0; k < np; k++) {
            skiff_value *v = bound[k] ? skiff_value_copy(bound[k]) : skiff_value_nil();
            if (skiff_list_append(skiff_list_get(cols, k), v) != SKIFF_OK)
                return -2;
        }
        ok[(*nok)++] = i;
    }
    return sent;
}

static int run_batch(const struct worker_target *t, const struct exec_input *in, size_t n,
                     const skiff_value **bound, bool *cancelled, const char *container_id,
                     const struct exec_sink *sink)
{
    const struct worker_fn *fn = in[0].fn;
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *cols = skiff_value_list();
    skiff_value *kwargs = skiff_value_map();
    size_t *ok = mem_alloc(n * sizeof *ok);
    size_t nok = 0;
    int sent = 0;
    if (!cols || !kwargs || !ok || (sent = gather(fn, in, n, bound, cols, ok, &nok, sink)) == -2) {
        skiff_error_set(&err, SKIFF_ERR_NOMEM, NULL, "out of memory gathering a batch of %zu", n);
        sent = 0;
        for (size_t i = 0; i < n; i++)
            if (!in[i].failed && sink->failure(sink->arg, &in[i], &err) < 0)
                sent = -1;
        goto done;
    }
    if (nok == 0)
        goto done;
    for (size_t k = 0; k < fn->sig.n; k++)
        bound[k] = skiff_list_get(cols, k);
    skiff_ctx ctx = {
        .def = fn->def,
        .sig = &fn->sig,
        .args = cols,
        .kwargs = kwargs,
        .bound = bound,
        .input_id = in[ok[0]].input_id,
        .call_id = in[ok[0]].call_id,
        .container_id = container_id,
        .cancelled = cancelled,
        .raised = SKIFF_ERROR_INIT,
        .target = t,
        .batch = nok,
    };
    skiff_value *result = NULL;
    int rc = call(&ctx, &in[ok[0]], &result);
    if (rc != 0) {
        sent |= fail_all(in, ok, nok, failure_of(&ctx, rc, &err), sink);
    } else if (skiff_value_type(result) != SKIFF_LIST || skiff_list_len(result) != nok) {
        char got[64];
        if (skiff_value_type(result) == SKIFF_LIST)
            snprintf(got, sizeof got, "a list of %zu results", skiff_list_len(result));
        else
            snprintf(got, sizeof got, "a %s", skiff_type_name(skiff_value_type(result)));
        skiff_error_set(&err, SKIFF_ERR_INVALID, "InvalidError",
                        "batched function %s() returned %s for a batch of %zu inputs: it must "
                        "return a list of exactly one result per input",
                        fn->def->name, got, nok);
        sent |= fail_all(in, ok, nok, &err, sink);
    } else {
        for (size_t i = 0; i < nok; i++)
            sent |= sink->value(sink->arg, &in[ok[i]], skiff_list_get(result, i));
    }
    skiff_value_free(result);
    skiff_error_clear(&ctx.raised);
done:
    skiff_error_clear(&err);
    mem_free(ok);
    skiff_value_free(kwargs);
    skiff_value_free(cols);
    return sent < 0 ? -1 : 0;
}

int exec_run(const struct worker_target *target, const struct exec_input *in, size_t n,
             const skiff_value **bound, bool *cancelled, const char *container_id,
             const struct exec_sink *sink)
{
    if (target->max_batch_size > 0)
        return run_batch(target, in, n, bound, cancelled, container_id, sink);
    int sent = 0;
    for (size_t i = 0; i < n; i++)
        if (run_one(target, &in[i], bound, cancelled, container_id, sink) < 0)
            sent = -1;
    return sent;
}
