/*
 * features.c - the app the integration tests of issues 3 and 4 deploy (app "itest-features"):
 * generators, concurrent inputs, batched inputs, retries, a class with parameters and hooks,
 * and a function that ignores cancellation. Each function reports what it saw, so a test can
 * check the runtime from the inside.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <skiff/app.h>

SKIFF_APP("itest-features");

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Yields 0 .. n-1; with fail_at >= 0, fails with a ValueError after yielding fail_at items. */
static int count_up(skiff_ctx *ctx, skiff_value **out)
{
    (void)out;
    int64_t n = skiff_arg_int(ctx, "n");
    const skiff_value *f = skiff_arg(ctx, "fail_at");
    int64_t fail_at = f ? skiff_value_get_int(f) : -1;
    for (int64_t i = 0; i < n; i++) {
        if (i == fail_at)
            return skiff_raise(ctx, "ValueError", "failed after %lld items", (long long)i);
        if (skiff_yield(ctx, skiff_value_int(i)) != SKIFF_OK)
            return skiff_raise(ctx, "RuntimeError", "could not yield item %lld", (long long)i);
    }
    return 0;
}
SKIFF_FUNCTION(count_up, .signature = "n:int, fail_at:int?", .generator = true);

/* Inputs of `overlap` running right now in this container, and the most seen at once. */
static atomic_int running, most;

/* Runs ms milliseconds, 4 at once per container on one container: returns the most inputs this
 * container ran at the same time so far. */
static int overlap(skiff_ctx *ctx, skiff_value **out)
{
    int now = atomic_fetch_add(&running, 1) + 1;
    int seen = atomic_load(&most);
    while (now > seen && !atomic_compare_exchange_weak(&most, &seen, now))
        ;
    sleep_ms(skiff_arg_int(ctx, "ms"));
    atomic_fetch_sub(&running, 1);
    *out = skiff_value_int(atomic_load(&most));
    return 0;
}
SKIFF_FUNCTION(overlap, .signature = "ms:int", .max_inputs = 4, .max_containers = 1);

/* A batched function: x arrives as the list of the batch's values; each output is
 * [x, the batch's size]. */
static int batched(skiff_ctx *ctx, skiff_value **out)
{
    const skiff_value *xs = skiff_arg(ctx, "x");
    size_t n = skiff_batch_size(ctx);
    skiff_value *res = skiff_value_list();
    for (size_t i = 0; i < n; i++)
        skiff_list_append(res, skiff_value_list_of(2, skiff_value_copy(skiff_list_get(xs, i)),
                                                   skiff_value_int((int64_t)n)));
    *out = res;
    return 0;
}
SKIFF_FUNCTION(batched, .signature = "x:int", .max_batch_size = 4, .wait_ms = 300,
               .max_containers = 1);

/* Appends one line to path (one line per attempt), then fails until the path has `succeed_on`
 * lines: retries with a fixed 1 s delay... shortened to 0.2 s by the policy. */
static int flaky(skiff_ctx *ctx, skiff_value **out)
{
    const char *path = skiff_arg_string(ctx, "path");
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0)
        return skiff_raise(ctx, "OSError", "cannot open %s", path);
    if (write(fd, "x\n", 2) != 2) {
        close(fd);
        return skiff_raise(ctx, "OSError", "cannot write %s", path);
    }
    close(fd);
    int lines = 0;
    FILE *f = fopen(path, "r");
    for (int ch; f && (ch = fgetc(f)) != EOF;)
        lines += ch == '\n';
    if (f)
        fclose(f);
    if (lines < skiff_arg_int(ctx, "succeed_on"))
        return skiff_raise(ctx, "ValueError", "attempt %d failed", lines);
    *out = skiff_value_int(lines);
    return 0;
}
SKIFF_FUNCTION(flaky, .signature = "path:str, succeed_on:int",
               .retry_policy = {.max_retries = 3,
                                .backoff_coefficient = 2.0,
                                .initial_delay = 0.2,
                                .max_delay = 1.0});

/* Ignores cancellation: sleeps ms whatever happens. */
static int stubborn(skiff_ctx *ctx, skiff_value **out)
{
    sleep_ms(skiff_arg_int(ctx, "ms"));
    *out = skiff_value_int(getpid());
    return 0;
}
SKIFF_FUNCTION(stubborn, .signature = "ms:int");

/* A class with parameters: enter builds the greeting once per container. */
struct greeter {
    char greeting[128];
    int entered;
};

static int greeter_enter(skiff_ctx *ctx)
{
    struct greeter *g = skiff_self(ctx);
    const char *word = skiff_param_string(ctx, "word");
    if (word && !strcmp(word, "fail"))
        return skiff_raise(ctx, "RuntimeError", "enter refused the word %s", word);
    snprintf(g->greeting, sizeof g->greeting, "%s, %s", word ? word : "hello",
             skiff_param_bool(ctx, "loud") ? "WORLD" : "world");
    g->entered++;
    return 0;
}

SKIFF_CLASS(Greeter, struct greeter, .params = "word:str, loud:bool?", .enter = {greeter_enter});

/* [the greeting, how many times enter ran in this container, the pid] */
static int greet(skiff_ctx *ctx, skiff_value **out)
{
    struct greeter *g = skiff_self(ctx);
    *out = skiff_value_list_of(3, skiff_value_string(g->greeting), skiff_value_int(g->entered),
                               skiff_value_int(getpid()));
    return 0;
}
SKIFF_METHOD(Greeter, greet);

/* Greeter(word=word).greet run in this container by skiff_function_local (no other
 * container): [the greeting, enter's count, the pid] of a fresh local instance. */
static int greet_locally(skiff_ctx *ctx, skiff_value **out)
{
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_client *c = skiff_ctx_client(ctx, &err);
    skiff_cls *cls = NULL;
    skiff_obj *obj = NULL;
    skiff_function *fn = NULL;
    skiff_value *params = skiff_value_map();
    int rc = skiff_map_set(params, "word", skiff_value_string(skiff_arg_string(ctx, "word")));
    if (rc == SKIFF_OK)
        rc = c ? skiff_cls_from_name(c, "itest-features", "Greeter", &cls, &err) : err.code;
    if (rc == SKIFF_OK)
        rc = skiff_cls_instantiate(cls, params, &obj, &err);
    if (rc == SKIFF_OK)
        rc = skiff_obj_method(obj, "greet", &fn, &err);
    if (rc == SKIFF_OK)
        rc = skiff_function_local(fn, NULL, NULL, out, &err);
    if (rc != SKIFF_OK)
        rc = skiff_raise_error(ctx, &err);
    skiff_error_clear(&err);
    skiff_function_free(fn);
    skiff_obj_free(obj);
    skiff_cls_free(cls);
    skiff_value_free(params);
    return rc;
}
SKIFF_FUNCTION(greet_locally, .signature = "word:str");
