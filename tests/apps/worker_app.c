/*
 * worker_app.c - app "worker-app": functions and classes that exercise the container runtime,
 * for tests/integration/itest_worker.c (which starts skiff-worker on it and speaks the container
 * protocol directly).
 *
 *   echo(x)                returns x
 *   tiny(x:int)            x + 1 (runs in microseconds: outputs of many go out together)
 *   conc(ms:int)           max_inputs 3: sleeps ms, returns {"running": inputs running when it
 *                          started (itself included), "peak": the most seen so far}
 *   serial(ms:int)         the same with max_inputs 1
 *   gen(n:int, fail_at:int?, ms:int?)
 *                          generator: yields 0 .. n-1 (sleeping ms after each), raising
 *                          ValueError instead of yielding fail_at
 *   big(sizes:list)        generator: yields a string of each size in sizes, then returns; as
 *   bigresult(size:int)    a string of size bytes
 *   batch(x:int)           max_batch_size 4, wait_ms 200: returns x * 1000 + the batch's size
 *   badbatch(x:int)        max_batch_size 3: returns one result too few
 *   cancellable()          loops until cancelled (at most 10 s); returns "cancelled"/"timeout"
 *   pcancellable()         the same with max_inputs 2
 *   pcrash(die:bool)       max_inputs 2: sleeps 300 ms and returns, or sleeps 50 ms and dies of
 *                          SIGSEGV (a crash on a pool thread)
 *   overflow()             max_inputs 2: recurses until the stack overflows
 *   segv(), abort_now(), exit_now(code:int)
 *                          die of SIGSEGV, SIGABRT, exit(code)
 *   Greeter                class, params "greeting:str, n:int?": enter hooks build the text,
 *                          exit hook appends "exit <text>" to $WORKER_EXIT_FILE; methods
 *                          hello() -> "<greeting> x<n>", count() -> calls so far, slow(ms:int)
 *   Broken                 class whose enter hook raises ValueError; method never()
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <skiff/app.h>

SKIFF_APP("worker-app");

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int echo(skiff_ctx *ctx, skiff_value **out)
{
    *out = skiff_value_copy(skiff_arg(ctx, "x"));
    return 0;
}
SKIFF_FUNCTION(echo, .signature = "x");

static int tiny(skiff_ctx *ctx, skiff_value **out)
{
    *out = skiff_value_int(skiff_arg_int(ctx, "x") + 1);
    return 0;
}
SKIFF_FUNCTION(tiny, .signature = "x:int");

static int running, peak;

static int sleep_and_count(skiff_ctx *ctx, skiff_value **out)
{
    int now = __atomic_add_fetch(&running, 1, __ATOMIC_SEQ_CST);
    int p = __atomic_load_n(&peak, __ATOMIC_SEQ_CST);
    while (now > p &&
           !__atomic_compare_exchange_n(&peak, &p, now, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        ;
    sleep_ms(skiff_arg_int(ctx, "ms"));
    __atomic_sub_fetch(&running, 1, __ATOMIC_SEQ_CST);
    *out = skiff_value_map();
    skiff_map_set(*out, "running", skiff_value_int(now));
    skiff_map_set(*out, "peak", skiff_value_int(__atomic_load_n(&peak, __ATOMIC_SEQ_CST)));
    return 0;
}

static int conc(skiff_ctx *ctx, skiff_value **out)
{
    return sleep_and_count(ctx, out);
}
SKIFF_FUNCTION(conc, .signature = "ms:int", .max_inputs = 3);

static int serial(skiff_ctx *ctx, skiff_value **out)
{
    return sleep_and_count(ctx, out);
}
SKIFF_FUNCTION(serial, .signature = "ms:int");

static int gen(skiff_ctx *ctx, skiff_value **out)
{
    (void)out;
    int64_t n = skiff_arg_int(ctx, "n");
    const skiff_value *fail_at = skiff_arg(ctx, "fail_at");
    for (int64_t i = 0; i < n; i++) {
        if (fail_at && skiff_value_get_int(fail_at) == i)
            return skiff_raise(ctx, "ValueError", "gen failed at %lld", (long long)i);
        if (skiff_yield(ctx, skiff_value_int(i)) < 0)
            return -1;
        sleep_ms(skiff_arg_int(ctx, "ms"));
    }
    return 0;
}
SKIFF_FUNCTION(gen, .signature = "n:int, fail_at:int?, ms:int?", .generator = true);

/* A string of n 'a's, or NULL when n is unreasonable. */
static skiff_value *string_of(int64_t n)
{
    if (n < 0 || n > (64 << 20))
        return NULL;
    char *p = malloc((size_t)n + 1);
    if (!p)
        return NULL;
    memset(p, 'a', (size_t)n);
    p[n] = '\0';
    skiff_value *v = skiff_value_string(p);
    free(p);
    return v;
}

static int big(skiff_ctx *ctx, skiff_value **out)
{
    (void)out;
    const skiff_value *sizes = skiff_arg(ctx, "sizes");
    for (size_t i = 0; i < skiff_list_len(sizes); i++)
        if (skiff_yield(ctx, string_of(skiff_value_get_int(skiff_list_get(sizes, i)))) < 0)
            return -1;
    return 0;
}
SKIFF_FUNCTION(big, .signature = "sizes:list", .generator = true);

static int bigresult(skiff_ctx *ctx, skiff_value **out)
{
    *out = string_of(skiff_arg_int(ctx, "size"));
    return 0;
}
SKIFF_FUNCTION(bigresult, .signature = "size:int");

static int batch(skiff_ctx *ctx, skiff_value **out)
{
    const skiff_value *xs = skiff_arg(ctx, "x");
    size_t n = skiff_batch_size(ctx);
    if (skiff_list_len(xs) != n)
        return skiff_raise(ctx, "AssertionError", "x holds %zu values for a batch of %zu",
                           skiff_list_len(xs), n);
    *out = skiff_value_list();
    for (size_t i = 0; i < n; i++)
        skiff_list_append(
            *out, skiff_value_int(skiff_value_get_int(skiff_list_get(xs, i)) * 1000 + (int64_t)n));
    return 0;
}
SKIFF_FUNCTION(batch, .signature = "x:int", .max_batch_size = 4, .wait_ms = 200);

static int badbatch(skiff_ctx *ctx, skiff_value **out)
{
    *out = skiff_value_list();
    for (size_t i = 1; i < skiff_batch_size(ctx); i++)
        skiff_list_append(*out, skiff_value_int((int64_t)i));
    return 0;
}
SKIFF_FUNCTION(badbatch, .signature = "x:int", .max_batch_size = 3, .wait_ms = 100);

static int wait_cancel(skiff_ctx *ctx, skiff_value **out)
{
    for (int i = 0; i < 10000; i++) {
        if (skiff_ctx_cancelled(ctx)) {
            *out = skiff_value_string("cancelled");
            return 0;
        }
        sleep_ms(1);
    }
    *out = skiff_value_string("timeout");
    return 0;
}

static int cancellable(skiff_ctx *ctx, skiff_value **out)
{
    return wait_cancel(ctx, out);
}
SKIFF_FUNCTION(cancellable, .signature = "");

static int pcancellable(skiff_ctx *ctx, skiff_value **out)
{
    return wait_cancel(ctx, out);
}
SKIFF_FUNCTION(pcancellable, .signature = "", .max_inputs = 2);

static int segv(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    (void)out;
    raise(SIGSEGV);
    return 0;
}
SKIFF_FUNCTION(segv, .signature = "");

static int pcrash(skiff_ctx *ctx, skiff_value **out)
{
    bool die = skiff_arg_bool(ctx, "die");
    sleep_ms(die ? 50 : 300);
    if (die)
        raise(SIGSEGV);
    *out = skiff_value_string("survived");
    return 0;
}
SKIFF_FUNCTION(pcrash, .signature = "die:bool", .max_inputs = 2);

/* Never reached: recursion stops only when the stack runs out (the compiler cannot tell). */
static volatile int stop_depth = -1;

/* Recurses with a frame the compiler cannot drop, until the stack runs out. */
static int deeper(volatile char *prev, int depth)
{
    if (depth == stop_depth)
        return 0;
    volatile char frame[1024];
    frame[0] = (char)depth;
    frame[1023] = prev ? prev[0] : 0;
    return deeper(frame, depth + 1) + frame[1023];
}

static int overflow(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    *out = skiff_value_int(deeper(NULL, 0));
    return 0;
}
SKIFF_FUNCTION(overflow, .signature = "", .max_inputs = 2);

static int abort_now(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    (void)out;
    abort();
}
SKIFF_FUNCTION(abort_now, .signature = "");

static int exit_now(skiff_ctx *ctx, skiff_value **out)
{
    (void)out;
    exit((int)skiff_arg_int(ctx, "code"));
}
SKIFF_FUNCTION(exit_now, .signature = "code:int");

/* --- classes ---------------------------------------------------------------------------------- */

struct greeter {
    char text[128];
    int calls;
    int entered;
};

static int greeter_snap(skiff_ctx *ctx)
{
    struct greeter *self = skiff_self(ctx);
    self->entered = 1;
    return 0;
}

static int greeter_enter(skiff_ctx *ctx)
{
    struct greeter *self = skiff_self(ctx);
    if (self->entered != 1)
        return skiff_raise(ctx, "AssertionError", "the snap hook did not run first");
    const skiff_value *n = skiff_param(ctx, "n");
    snprintf(self->text, sizeof self->text, "%s x%lld", skiff_param_string(ctx, "greeting"),
             n ? (long long)skiff_value_get_int(n) : 1LL);
    self->entered = 2;
    return 0;
}

static int greeter_exit(skiff_ctx *ctx)
{
    struct greeter *self = skiff_self(ctx);
    const char *path = getenv("WORKER_EXIT_FILE");
    FILE *f = path ? fopen(path, "a") : NULL;
    if (!f)
        return skiff_raise(ctx, "OSError", "cannot open WORKER_EXIT_FILE");
    fprintf(f, "exit %s after %d calls\n", self->text, self->calls);
    fclose(f);
    return 0;
}

SKIFF_CLASS(Greeter, struct greeter, .params = "greeting:str, n:int?", .enter_snap = {greeter_snap},
            .enter = {greeter_enter}, .exit = {greeter_exit});

static int hello(skiff_ctx *ctx, skiff_value **out)
{
    struct greeter *self = skiff_self(ctx);
    self->calls++;
    *out = skiff_value_string(self->text);
    return 0;
}
SKIFF_METHOD(Greeter, hello, .signature = "");

static int count(skiff_ctx *ctx, skiff_value **out)
{
    struct greeter *self = skiff_self(ctx);
    *out = skiff_value_int(++self->calls);
    return 0;
}
SKIFF_METHOD(Greeter, count, .signature = "");

static int slow(skiff_ctx *ctx, skiff_value **out)
{
    struct greeter *self = skiff_self(ctx);
    self->calls++;
    sleep_ms(skiff_arg_int(ctx, "ms"));
    *out = skiff_value_int(self->calls);
    return 0;
}
SKIFF_METHOD(Greeter, slow, .signature = "ms:int");

struct broken {
    int unused;
};

static int broken_enter(skiff_ctx *ctx)
{
    return skiff_raise(ctx, "ValueError", "the model file is missing");
}

SKIFF_CLASS(Broken, struct broken, .enter = {broken_enter});

static int never(skiff_ctx *ctx, skiff_value **out)
{
    (void)ctx;
    *out = NULL;
    return 0;
}
SKIFF_METHOD(Broken, never);
