/*
 * test_worker_local.c - worker_local_call (src/worker/local.c): running an app's functions in the
 * calling process. The app is declared in this file with the app SDK and registered by name;
 * the tests run a plain function, a failing one (its type, message and traceback), a binding
 * failure, a generator (items as a list), a class method (enter before, exit after), a batched
 * function (a batch of one), and the ExecutionError of a missing app or function.
 */
#include <skiff/app.h>

#include "client/client.h"
#include "common/buf.h"
#include "common/codec.h"
#include "common/mem.h"
#include "unit.h"
#include "worker/worker.h"

SKIFF_APP("local-app");

static int add(skiff_ctx *ctx, skiff_value **out)
{
    *out = skiff_value_int(skiff_arg_int(ctx, "a") + skiff_arg_int(ctx, "b"));
    return 0;
}
SKIFF_FUNCTION(add, .signature = "a:int, b:int?");

static int fails(skiff_ctx *ctx, skiff_value **out)
{
    (void)out;
    return skiff_raise(ctx, "ValueError", "bad %s", "input");
}
SKIFF_FUNCTION(fails, .signature = "");

static int count_to(skiff_ctx *ctx, skiff_value **out)
{
    (void)out;
    for (int64_t i = 1; i <= skiff_arg_int(ctx, "n"); i++)
        if (skiff_yield(ctx, skiff_value_int(i)) < 0)
            return -1;
    return 0;
}
SKIFF_FUNCTION(count_to, .signature = "n:int", .generator = true);

static int doubles(skiff_ctx *ctx, skiff_value **out)
{
    const skiff_value *xs = skiff_arg(ctx, "x");
    *out = skiff_value_list();
    for (size_t i = 0; i < skiff_list_len(xs); i++)
        skiff_list_append(*out, skiff_value_int(2 * skiff_value_get_int(skiff_list_get(xs, i))));
    return 0;
}
SKIFF_FUNCTION(doubles, .signature = "x:int", .max_batch_size = 8);

static int not_a_generator(skiff_ctx *ctx, skiff_value **out)
{
    (void)out;
    return skiff_yield(ctx, skiff_value_int(1));
}
SKIFF_FUNCTION(not_a_generator, .signature = "");

struct model {
    int64_t weight;
};

static int exits;

static int model_enter(skiff_ctx *ctx)
{
    struct model *self = skiff_self(ctx);
    self->weight = 41;
    return 0;
}

static int model_exit(skiff_ctx *ctx)
{
    (void)ctx;
    exits++;
    return 0;
}

SKIFF_CLASS(Model, struct model, .enter = {model_enter}, .exit = {model_exit});

static int predict(skiff_ctx *ctx, skiff_value **out)
{
    struct model *self = skiff_self(ctx);
    *out = skiff_value_int(self->weight + skiff_arg_int(ctx, "x"));
    return 0;
}
SKIFF_METHOD(Model, predict, .signature = "x:int");

struct sized {
    int unused;
};

SKIFF_CLASS(Sized, struct sized, .params = "size:int");

static int size(skiff_ctx *ctx, skiff_value **out)
{
    *out = skiff_value_int(skiff_param_int(ctx, "size"));
    return 0;
}
SKIFF_METHOD(Sized, size);

/* Calls local-app.function with args (JSON list) and no kwargs. */
static int call(const char *function, const char *args_json, skiff_value **out, skiff_error *err)
{
    worker_register_app(skiff_app_definition());
    skiff_value *args = NULL;
    ASSERT_EQ_INT(skiff_value_from_json(args_json, strlen(args_json), &args, err), SKIFF_OK);
    int rc = worker_local_call("local-app", function, NULL, 0, args, NULL, out, err);
    skiff_value_free(args);
    return rc;
}

/* The JSON of a result (freed). */
static void assert_json(skiff_value *v, const char *want)
{
    char *json = skiff_value_to_json(v);
    ASSERT_EQ_STR(json, want);
    skiff_value_free(v);
    free(json);
}

TEST(local_plain_function)
{
    skiff_value *out = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(call("add", "[2, 3]", &out, &err), SKIFF_OK);
    assert_json(out, "5");
    ASSERT_EQ_INT(call("add", "[2]", &out, &err), SKIFF_OK);
    assert_json(out, "2");
}

TEST(local_failures_keep_type_message_and_traceback)
{
    skiff_value *out = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(call("fails", "[]", &out, &err), SKIFF_ERR_USER);
    ASSERT_NULL(out);
    ASSERT_EQ_STR(err.type, "ValueError");
    ASSERT_EQ_STR(err.message, "bad input");
    ASSERT_STR_CONTAINS(err.traceback, "test_worker_local.c");
    ASSERT_STR_CONTAINS(err.traceback, "in fails");
    skiff_error_clear(&err);
    ASSERT_EQ_INT(call("add", "[\"x\"]", &out, &err), SKIFF_ERR_USER);
    ASSERT_EQ_STR(err.type, "TypeError");
    ASSERT_STR_CONTAINS(err.message, "add() argument 'a' must be int, not str");
    skiff_error_clear(&err);
    ASSERT_EQ_INT(call("not_a_generator", "[]", &out, &err), SKIFF_ERR_USER);
    ASSERT_EQ_STR(err.type, "InvalidError");
    ASSERT_STR_CONTAINS(err.message, "skiff_yield called in not_a_generator(), which is not a "
                                     "generator");
    skiff_error_clear(&err);
}

TEST(local_generator_returns_its_items)
{
    skiff_value *out = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(call("count_to", "[3]", &out, &err), SKIFF_OK);
    assert_json(out, "[1,2,3]");
    ASSERT_EQ_INT(call("count_to", "[0]", &out, &err), SKIFF_OK);
    assert_json(out, "[]");
}

TEST(local_method_runs_enter_then_exit)
{
    skiff_value *out = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(call("Model.predict", "[1]", &out, &err), SKIFF_OK);
    assert_json(out, "42");
    ASSERT_EQ_INT(exits, 1);
    /* A class whose parameters are required cannot be instantiated locally. */
    ASSERT_EQ_INT(call("Sized.size", "[]", &out, &err), SKIFF_ERR_INIT_FAILURE);
    ASSERT_STR_CONTAINS(err.message, "missing 1 required argument: 'size'");
    skiff_error_clear(&err);
}

/* Calls local-app.function with no arguments on an instance whose parameters are params_json
 * (a JSON object, encoded as the client's handle carries it). */
static int call_with_params(const char *function, const char *params_json, skiff_value **out,
                            skiff_error *err)
{
    worker_register_app(skiff_app_definition());
    skiff_value *params = NULL;
    ASSERT_EQ_INT(skiff_value_from_json(params_json, strlen(params_json), &params, err), SKIFF_OK);
    struct buf b;
    buf_init(&b, 0);
    ASSERT_EQ_INT(codec_encode_value(&b, params), SKIFF_OK);
    int rc = worker_local_call("local-app", function, b.data, b.len, NULL, NULL, out, err);
    buf_deinit(&b);
    skiff_value_free(params);
    return rc;
}

TEST(local_method_binds_the_instance_parameters)
{
    skiff_value *out = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(call_with_params("Sized.size", "{\"size\": 7}", &out, &err), SKIFF_OK);
    assert_json(out, "7");
    ASSERT_EQ_INT(call_with_params("Sized.size", "{\"size\": \"big\"}", &out, &err),
                  SKIFF_ERR_INIT_FAILURE);
    ASSERT_STR_CONTAINS(err.message, "size");
    skiff_error_clear(&err);
    ASSERT_EQ_INT(call_with_params("Sized.size", "{\"size\": 7, \"colour\": 1}", &out, &err),
                  SKIFF_ERR_INIT_FAILURE);
    ASSERT_STR_CONTAINS(err.message, "colour");
    skiff_error_clear(&err);
}

TEST(local_batched_function_runs_a_batch_of_one)
{
    skiff_value *out = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(call("doubles", "[21]", &out, &err), SKIFF_OK);
    assert_json(out, "42");
}

TEST(local_without_a_definition_is_an_execution_error)
{
    skiff_value *out = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(call("nope", "[]", &out, &err), SKIFF_ERR_EXECUTION);
    ASSERT_EQ_STR(err.type, "ExecutionError");
    ASSERT_STR_CONTAINS(err.message, "app 'local-app' has no local definition of 'nope'");
    skiff_error_clear(&err);
    ASSERT_EQ_INT(call("Model.nope", "[]", &out, &err), SKIFF_ERR_EXECUTION);
    skiff_error_clear(&err);
    ASSERT_EQ_INT(worker_local_call("other-app", "add", NULL, 0, NULL, NULL, &out, &err),
                  SKIFF_ERR_EXECUTION);
    ASSERT_STR_CONTAINS(err.message, "no local definition of app 'other-app'");
    ASSERT_NULL(out);
    skiff_error_clear(&err);
}

TEST(local_calls_survive_every_allocation_failing)
{
    /* Each allocation in turn fails: every call either works or reports an error, never
     * crashes or leaks (the sanitizer build checks the leaks). */
    static const char *const calls[][2] = {
        {"add", "[2, 3]"},  {"count_to", "[3]"}, {"Model.predict", "[1]"},
        {"doubles", "[4]"}, {"fails", "[]"},
    };
    worker_register_app(skiff_app_definition());
    for (size_t c = 0; c < sizeof calls / sizeof calls[0]; c++) {
        skiff_value *args = NULL;
        skiff_error err = SKIFF_ERROR_INIT;
        ASSERT_EQ_INT(skiff_value_from_json(calls[c][1], strlen(calls[c][1]), &args, &err), 0);
        bool worked = false;
        for (long n = 0; n < 200 && !worked; n++) {
            skiff_value *out = NULL;
            mem_fail_after(n);
            int rc = worker_local_call("local-app", calls[c][0], NULL, 0, args, NULL, &out, &err);
            mem_fail_after(-1);
            worked = rc == SKIFF_OK ||
                     (rc == SKIFF_ERR_USER && err.type && !strcmp(err.type, "ValueError"));
            if (rc == SKIFF_OK)
                ASSERT_NOT_NULL(out);
            skiff_value_free(out);
            skiff_error_clear(&err);
        }
        ASSERT(worked); /* with enough allocations, the call succeeds */
        skiff_value_free(args);
    }
}
