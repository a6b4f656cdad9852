/*
 * test_worker_check.c - worker_check_app (src/worker/load.c), the rules `skiff deploy` enforces
 * on an app's declarations: every configuration range of docs/protocol.md (DEPLOY), web
 * endpoints, generators, batches, classes and their methods and parameters. Each case builds an
 * app definition by hand with one mistake and checks that exactly the expected problem is named.
 */
#include <skiff/app.h>

#include "common/buf.h"
#include "unit.h"
#include "worker/worker.h"

static int fn(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    *out = NULL;
    return 0;
}

static int hook(skiff_ctx *ctx)
{
    (void)ctx;
    return 0;
}

/* The problems worker_check_app finds in an app of one function f and (when c is non-NULL) one
 * class c with one method m. Returns the text (static); *n the count. */
static const char *problems(const struct skiff_function_def *f, const struct skiff_class_def *c,
                            const struct skiff_function_def *m, size_t *n)
{
    const struct skiff_function_def *fns[2] = {f, m};
    const struct skiff_class_def *classes[1] = {c};
    struct skiff_app_def app = {SKIFF_APP_ABI,     "check-app",        fns,
                                fns + (m ? 2 : 1), c ? classes : NULL, c ? classes + 1 : NULL};
    static struct buf out;
    buf_deinit(&out);
    buf_init(&out, 0);
    *n = worker_check_app(&app, &out);
    buf_append(&out, "", 1);
    return out.data;
}

#define FN(...)                                                                                    \
    ((struct skiff_function_def){.abi = SKIFF_APP_ABI, .name = "f", .fn = fn, __VA_ARGS__})

/* f must be refused with one problem containing want. */
static void bad_fn(struct skiff_function_def f, const char *want)
{
    size_t n;
    const char *text = problems(&f, NULL, NULL, &n);
    if (n != 1 || !strstr(text, want))
        FAIL("expected one problem containing \"%s\", got %zu:\n%s", want, n, text);
}

TEST(check_a_valid_app_has_no_problems)
{
    size_t n;
    struct skiff_function_def f =
        FN(.signature = "x:int", .timeout = 60, .max_inputs = 10, .target_inputs = 5,
           .max_batch_size = 100, .wait_ms = 1000, .retries = 3, .cpu = 0.5, .memory = 512,
           .buffer_containers = 2, .min_containers = 1, .max_containers = 4);
    struct skiff_class_def c = {.abi = SKIFF_APP_ABI,
                                .name = "C",
                                .params = "a:str, b:int?",
                                .enter = {hook},
                                .exit = {hook},
                                .max_inputs = 2,
                                .retry_policy = {2, 2.0, 0.5, 10}};
    struct skiff_function_def m = {
        .abi = SKIFF_APP_ABI, .name = "m", .fn = fn, .cls = "C", .generator = true};
    struct skiff_function_def web = FN(.web = {"POST", "my-hook", true});
    const char *text = problems(&f, &c, &m, &n);
    if (n)
        FAIL("unexpected problems:\n%s", text);
    text = problems(&web, NULL, NULL, &n);
    if (n)
        FAIL("unexpected problems:\n%s", text);
}

TEST(check_configuration_ranges)
{
    bad_fn(FN(.timeout = 0.5), "timeout 0.5 s is outside 1 s to 24 h");
    bad_fn(FN(.timeout = 90000), "timeout 90000 s is outside");
    bad_fn(FN(.max_containers = -1), "max_containers is -1");
    bad_fn(FN(.min_containers = 9), "min_containers (9) is larger than max_containers (8)");
    bad_fn(FN(.buffer_containers = -2), "buffer_containers is -2");
    bad_fn(FN(.scaledown_window = -1), "scaledown_window -1 s must be 0");
    bad_fn(FN(.max_inputs = 1001), "max_inputs is 1001; it must be 1 to 1000");
    bad_fn(FN(.max_inputs = 4, .target_inputs = 5), "target_inputs is 5; it must be 1 to "
                                                    "max_inputs (4)");
    bad_fn(FN(.signature = "x", .max_batch_size = 1001), "max_batch_size is 1001");
    bad_fn(FN(.signature = "x", .max_batch_size = 2, .wait_ms = 600001), "wait_ms is 600001");
    bad_fn(FN(.wait_ms = 10), "wait_ms is set but max_batch_size is not");
    bad_fn(FN(.retries = 11), "retries is 11; it must be 0 to 10");
    bad_fn(FN(.retries = 1, .retry_policy = {.max_retries = 2}),
           "give either .retries or .retry_policy");
    bad_fn(FN(.retry_policy = {.max_retries = -1}), "retry_policy.max_retries is -1");
    bad_fn(FN(.retry_policy = {1, 0.5, 1, 1}), "backoff_coefficient 0.5 must be 1.0 to 10");
    bad_fn(FN(.retry_policy = {1, 2, 61, 1}), "initial_delay 61 s must be 0 to 60 s");
    bad_fn(FN(.retry_policy = {1, 2, 1, 0.5}), "max_delay 0.5 s must be 1 to 60 s");
    bad_fn(FN(.cpu = -1), "cpu -1 must be 0 (unlimited)");
    bad_fn(FN(.memory = -5), "memory -5 MiB must be 0 (unlimited)");
}

TEST(check_kinds)
{
    bad_fn(FN(.web = {"FETCH"}), "web method 'FETCH' is not one of GET, POST");
    bad_fn(FN(.web = {"GET", "no spaces"}), "web label 'no spaces' is not 1-63 characters");
    bad_fn(FN(.web = {"GET"}, .generator = true), "cannot be both a generator and a web endpoint");
    bad_fn(FN(.signature = "x", .generator = true, .max_batch_size = 2),
           "cannot be both batched and a generator");
    bad_fn(FN(.max_batch_size = 2), "batched function 'f' needs a .signature");
    bad_fn((struct skiff_function_def){.abi = SKIFF_APP_ABI, .name = "a.b", .fn = fn},
           "function name 'a.b' is not 1-63 characters of letters, digits and "
           "'_'");
}

/* An app of a valid function, class c and method m must have one problem containing want. */
static void bad_class(struct skiff_class_def c, struct skiff_function_def m, const char *want)
{
    struct skiff_function_def f = FN();
    size_t n;
    const char *text = problems(&f, &c, m.name ? &m : NULL, &n);
    if (n != 1 || !strstr(text, want))
        FAIL("expected one problem containing \"%s\", got %zu:\n%s", want, n, text);
}

#define CLS(...) ((struct skiff_class_def){.abi = SKIFF_APP_ABI, .name = "C", __VA_ARGS__})
#define METHOD(...)                                                                                \
    ((struct skiff_function_def){                                                                  \
        .abi = SKIFF_APP_ABI, .name = "m", .fn = fn, .cls = "C", __VA_ARGS__})

TEST(check_classes_and_methods)
{
    bad_class(CLS(.params = "x:list"), METHOD(),
              "class 'C': parameter 'x' is list; parameters are int, str, bytes or bool");
    bad_class(CLS(.params = "x:"), METHOD(), "class 'C': parameters:");
    bad_class(CLS(), (struct skiff_function_def){0}, "class 'C' has no methods (SKIFF_METHOD)");
    bad_class(CLS(.max_batch_size = 4), METHOD(), "max_batch_size is for plain functions");
    bad_class(CLS(.max_inputs = -1), METHOD(), "class 'C': max_inputs is -1");
    bad_class(CLS(), METHOD(.max_inputs = 2), "method 'C.m' sets configuration");
    struct skiff_function_def orphan = {.abi = SKIFF_APP_ABI, .name = "m", .fn = fn, .cls = "D"};
    struct skiff_class_def c = {.abi = SKIFF_APP_ABI, .name = "C"};
    size_t n;
    const char *text = problems(&orphan, &c, NULL, &n);
    ASSERT_STR_CONTAINS(text, "the app declares no class 'D'");
    struct skiff_class_def bad = {.abi = SKIFF_APP_ABI, .name = "bad name"};
    struct skiff_function_def m = {.abi = SKIFF_APP_ABI, .name = "m", .fn = fn, .cls = "bad name"};
    bad_class(bad, m, "class name 'bad name' is not 1-63 characters");
}
