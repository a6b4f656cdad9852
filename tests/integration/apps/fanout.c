/*
 * fanout.c - test app "fanout": a function body that fans out asynchronously (itest_async.c).
 *
 *     fan(n)    starts n calls of my-shared-app.square (examples/square.c) at once with
 *               skiff_function_remote_async on the container's client, waits for them together
 *               with skiff_client_wait, and returns the sum of i*i for i in [0, n), or the first
 *               failure (square's own error, raised again); n over 10,000 is a ValueError.
 *     fan_spawn(n)  the same through spawn_async and gather_async: n durable calls, gathered.
 *
 * Every call is started from the function's own thread, so each carries the running input as
 * its parent and the call graph shows all n children under fan's one input.
 */
#include <stdlib.h>

#include <skiff/app.h>

SKIFF_APP("fanout");

/* Shared by the callbacks of one fan-out (they run in skiff_client_wait, on this thread). */
struct fan {
    int64_t sum;
    skiff_error first; /* the first failure, or code SKIFF_OK */
};

static void note_failure(struct fan *f, const skiff_error *err)
{
    if (f->first.code != SKIFF_OK)
        return;
    skiff_error_set(&f->first, err->code, err->type, "%s", err->message ? err->message : "");
}

static void on_square(void *userdata, int rc, skiff_value *result, const skiff_error *err)
{
    struct fan *f = userdata;
    if (rc != SKIFF_OK)
        note_failure(f, err);
    else
        f->sum += skiff_value_get_int(result);
    skiff_value_free(result);
}

static void on_gathered(void *userdata, int rc, skiff_value *results, const skiff_error *err)
{
    struct fan *f = userdata;
    if (rc != SKIFF_OK)
        note_failure(f, err);
    for (size_t i = 0; i < skiff_list_len(results); i++)
        f->sum += skiff_value_get_int(skiff_list_get(results, i));
    skiff_value_free(results);
}

/* Where spawn_async puts each call handle, for the gather. */
struct spawned {
    struct fan *f;
    skiff_call **calls;
    size_t i;
};

static void on_spawned(void *userdata, int rc, skiff_call *call, const skiff_error *err)
{
    struct spawned *s = userdata;
    if (rc != SKIFF_OK)
        note_failure(s->f, err);
    else
        s->calls[s->i] = call;
}

/* Runs the client's asynchronous operations of this thread until none is left. */
static int drain(skiff_client *client, skiff_error *err)
{
    while (skiff_client_pending(client) > 0) {
        int rc = skiff_client_wait(client, SKIFF_WAIT_FOREVER, err);
        if (rc != SKIFF_OK)
            return rc;
    }
    return SKIFF_OK;
}

/* Starts n calls of square(i), through spawn + gather when spawned. */
static int start_all(skiff_client *client, skiff_function *square, int64_t n, struct fan *f,
                     skiff_call **calls, struct spawned *sp, skiff_error *err)
{
    for (int64_t i = 0; i < n; i++) {
        skiff_value *args = skiff_value_list_of(1, skiff_value_int(i));
        if (!args)
            return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
        int rc;
        if (calls) {
            sp[i] = (struct spawned){f, calls, (size_t)i};
            rc = skiff_function_spawn_async(square, args, NULL, on_spawned, &sp[i], err);
        } else {
            rc = skiff_function_remote_async(square, args, NULL, on_square, f, err);
        }
        skiff_value_free(args);
        if (rc != SKIFF_OK)
            return rc;
    }
    int rc = drain(client, err);
    if (rc != SKIFF_OK || !calls || f->first.code != SKIFF_OK)
        return rc;
    rc = skiff_call_gather_async(calls, (size_t)n, on_gathered, f, err);
    return rc == SKIFF_OK ? drain(client, err) : rc;
}

static int fan_common(skiff_ctx *ctx, bool spawned, skiff_value **out)
{
    int64_t n = skiff_value_get_int(skiff_arg(ctx, "n"));
    if (n < 1 || n > 10000)
        return skiff_raise(ctx, "ValueError", "n must be in [1, 10000], not %lld", (long long)n);
    skiff_error err = SKIFF_ERROR_INIT;
    struct fan f = {0, SKIFF_ERROR_INIT};
    skiff_function *square = NULL;
    skiff_call **calls = spawned ? calloc((size_t)n, sizeof *calls) : NULL;
    struct spawned *sp = spawned ? calloc((size_t)n, sizeof *sp) : NULL;
    skiff_client *client = skiff_ctx_client(ctx, &err);
    int rc;
    if (spawned && (!calls || !sp))
        rc = skiff_raise(ctx, "MemoryError", "out of memory");
    else if (!client ||
             skiff_function_from_name(client, "my-shared-app", "square", &square, &err) != SKIFF_OK)
        rc = skiff_raise_error(ctx, &err);
    else if (start_all(client, square, n, &f, calls, sp, &err) != SKIFF_OK)
        rc = skiff_raise_error(ctx, &err);
    else if (f.first.code != SKIFF_OK)
        rc = skiff_raise_error(ctx, &f.first);
    else if (!(*out = skiff_value_int(f.sum)))
        rc = skiff_raise(ctx, "MemoryError", "out of memory");
    else
        rc = 0;
    for (int64_t i = 0; calls && i < n; i++)
        skiff_call_free(calls[i]);
    free(calls);
    free(sp);
    skiff_function_free(square);
    skiff_error_clear(&err);
    skiff_error_clear(&f.first);
    return rc;
}

static int fan(skiff_ctx *ctx, skiff_value **out)
{
    return fan_common(ctx, false, out);
}
SKIFF_FUNCTION(fan, .signature = "n:int", .timeout = 120);

static int fan_spawn(skiff_ctx *ctx, skiff_value **out)
{
    return fan_common(ctx, true, out);
}
SKIFF_FUNCTION(fan_spawn, .signature = "n:int", .timeout = 120);
