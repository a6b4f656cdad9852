/*
 * ctx.c - the skiff_ctx API of the app SDK (include/skiff/app.h): bound arguments, the input's
 * identity, cancellation, generators' items, batches, class state and parameters, raising
 * errors, and the container's shared client.
 *
 * Raising records the error in the ctx; the runner (run.c) turns it into the input's failed
 * output once the function returns non-zero. A traceback is one line per frame in Python's
 * format, outermost first and innermost last (docs/protocol.md):
 *
 *     File "another_app.c", line 31, in cube
 *     File "square.c", line 18, in square
 *
 * so re-raising a nested call's error puts this function's frame in front of the remote ones.
 * Messages and tracebacks are capped (MESSAGE_MAX, TRACEBACK_MAX) so a failure always fits in a
 * frame, and made valid UTF-8 so the caller can always decode them.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/mem.h"
#include "common/signature.h"
#include "common/value.h"
#include "worker.h"

/* Longest error message and traceback kept (bytes); longer ones are cut, marked with "...".
 * Together far below the 64 KiB a frame may hold beside its payload. */
#define MESSAGE_MAX 16384
#define TRACEBACK_MAX 32768
/* Longest error type name kept. */
#define TYPE_MAX 128

/* --- arguments and identity ------------------------------------------------------------------- */

const skiff_value *skiff_ctx_args(const skiff_ctx *ctx)
{
    return ctx ? ctx->args : NULL;
}

const skiff_value *skiff_ctx_kwargs(const skiff_ctx *ctx)
{
    return ctx ? ctx->kwargs : NULL;
}

const skiff_value *skiff_arg(const skiff_ctx *ctx, const char *name)
{
    if (!ctx || !ctx->sig || !name)
        return NULL;
    int i = signature_find(ctx->sig, name);
    return i < 0 ? NULL : ctx->bound[i];
}

int64_t skiff_arg_int(const skiff_ctx *ctx, const char *name)
{
    return skiff_value_get_int(skiff_arg(ctx, name));
}

double skiff_arg_double(const skiff_ctx *ctx, const char *name)
{
    return skiff_value_get_double(skiff_arg(ctx, name));
}

bool skiff_arg_bool(const skiff_ctx *ctx, const char *name)
{
    return skiff_value_get_bool(skiff_arg(ctx, name));
}

const char *skiff_arg_string(const skiff_ctx *ctx, const char *name)
{
    return skiff_value_get_string(skiff_arg(ctx, name), NULL);
}

const char *skiff_ctx_input_id(const skiff_ctx *ctx)
{
    return ctx ? ctx->input_id : NULL;
}

const char *skiff_ctx_call_id(const skiff_ctx *ctx)
{
    return ctx ? ctx->call_id : NULL;
}

const char *skiff_ctx_container_id(const skiff_ctx *ctx)
{
    return ctx ? ctx->container_id : NULL;
}

bool skiff_ctx_cancelled(const skiff_ctx *ctx)
{
    if (!ctx || !ctx->cancelled)
        return false;
    if (__atomic_load_n(ctx->cancelled, __ATOMIC_ACQUIRE))
        return true;
    worker_poll_control();
    return __atomic_load_n(ctx->cancelled, __ATOMIC_ACQUIRE);
}

/* --- generators, batches, classes ------------------------------------------------------------- */

int skiff_yield(skiff_ctx *ctx, skiff_value *item)
{
    if (!ctx) {
        skiff_value_free(item);
        return -1;
    }
    if (!ctx->yield) {
        skiff_value_free(item);
        return skiff_raise(ctx, "InvalidError",
                           "skiff_yield called in %s(), which is not a generator (.generator = "
                           "true)",
                           ctx->def ? ctx->def->name : "a class hook");
    }
    return ctx->yield(ctx, item);
}

size_t skiff_batch_size(const skiff_ctx *ctx)
{
    return ctx && ctx->batch > 1 ? ctx->batch : 1;
}

void *skiff_self(const skiff_ctx *ctx)
{
    return ctx && ctx->target ? ctx->target->state : NULL;
}

const skiff_value *skiff_param(const skiff_ctx *ctx, const char *name)
{
    if (!ctx || !ctx->target || !ctx->target->params_bound || !name)
        return NULL;
    int i = signature_find(&ctx->target->params_sig, name);
    return i < 0 ? NULL : ctx->target->params_bound[i];
}

int64_t skiff_param_int(const skiff_ctx *ctx, const char *name)
{
    return skiff_value_get_int(skiff_param(ctx, name));
}

bool skiff_param_bool(const skiff_ctx *ctx, const char *name)
{
    return skiff_value_get_bool(skiff_param(ctx, name));
}

const char *skiff_param_string(const skiff_ctx *ctx, const char *name)
{
    return skiff_value_get_string(skiff_param(ctx, name), NULL);
}

/* --- the shared client ------------------------------------------------------------------------ */

static pthread_mutex_t client_mu = PTHREAD_MUTEX_INITIALIZER;
static skiff_client *client; /* connected on first use; guarded by client_mu */

skiff_client *skiff_ctx_client(skiff_ctx *ctx, skiff_error *err)
{
    if (!ctx) {
        skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "skiff_ctx_client: ctx is NULL");
        return NULL;
    }
    pthread_mutex_lock(&client_mu);
    if (!client) {
        /* NULL options: SKIFF_SERVER and the token from the environment the server gave us. A
         * failure is not remembered: the next call tries again. */
        skiff_client *c;
        if (skiff_client_connect(NULL, &c, err) == SKIFF_OK)
            client = c;
    }
    skiff_client *c = client;
    pthread_mutex_unlock(&client_mu);
    return c;
}

void worker_close_client(void)
{
    pthread_mutex_lock(&client_mu);
    skiff_client_close(client);
    client = NULL;
    pthread_mutex_unlock(&client_mu);
}

/* --- raising ---------------------------------------------------------------------------------- */

/* Guards ctx->raised when threads of one function raise at once. */
static pthread_mutex_t raise_mu = PTHREAD_MUTEX_INITIALIZER;

/* Makes s[0..n) valid UTF-8 in place, replacing each byte that does not start a valid sequence
 * with '?'. Cheap when s already is valid (the usual case). */
static void fix_utf8(char *s, size_t n)
{
    if (utf8_valid(s, n))
        return;
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (len && i + len <= n && utf8_valid(s + i, len)) {
            i += len;
            continue;
        }
        s[i++] = '?';
    }
}

/* The length of s[0..n) cut to at most max bytes without splitting a UTF-8 sequence. */
static size_t cut_utf8(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    size_t k = max;
    while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80)
        k--;
    return k;
}

/* A new string: fmt formatted with ap, at most MESSAGE_MAX bytes, valid UTF-8. NULL when out of
 * memory. */
static char *format_message(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt ? fmt : "", ap);
    if (n < 0) {
        va_end(ap2);
        return mem_strdup("(the error message could not be formatted)");
    }
    char *msg;
    size_t len = (size_t)n;
    if (len < sizeof small) {
        va_end(ap2);
        msg = mem_strndup(small, len);
    } else {
        size_t keep = len > MESSAGE_MAX ? MESSAGE_MAX : len;
        msg = mem_alloc(keep + 4);
        if (msg)
            vsnprintf(msg, keep + 1, fmt, ap2);
        va_end(ap2);
        if (msg && keep < len) {
            keep = cut_utf8(msg, keep, keep - 3);
            memcpy(msg + keep, "...", 4);
        }
        len = msg ? strlen(msg) : 0;
    }
    if (msg)
        fix_utf8(msg, len);
    return msg;
}

/* The type name as given, or "Error" when it is empty or unusable. */
static char *copy_type(const char *type)
{
    size_t n = type ? strlen(type) : 0;
    if (n == 0 || n > TYPE_MAX || !utf8_valid(type, n))
        return mem_strdup("Error");
    return mem_strndup(type, n);
}

/* `  File "jobs.c", line 23, in train_model` for file (its base name), line and func. */
static int format_frame(char *out, size_t size, const char *file, int line, const char *func)
{
    const char *base = file ? strrchr(file, '/') : NULL;
    base = base ? base + 1 : (file ? file : "?");
    int n = snprintf(out, size, "  File \"%s\", line %d, in %s", base, line, func ? func : "?");
    if (n < 0)
        return 0;
    return (size_t)n < size ? n : (int)size - 1;
}

/* Replaces what ctx has recorded with code, type, message and traceback (taking all three). */
static void record(skiff_ctx *ctx, skiff_code code, char *type, char *message, char *traceback)
{
    pthread_mutex_lock(&raise_mu);
    skiff_error_clear(&ctx->raised);
    ctx->raised.code = code;
    ctx->raised.type = type;
    ctx->raised.message = message;
    ctx->raised.traceback = traceback;
    pthread_mutex_unlock(&raise_mu);
}

int skiff__raise(skiff_ctx *ctx, const char *file, int line, const char *func, const char *type,
                 const char *fmt, ...)
{
    if (!ctx)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    char *message = format_message(fmt, ap);
    va_end(ap);
    char frame[512];
    format_frame(frame, sizeof frame, file, line, func);
    char *tb = mem_strdup(frame);
    if (tb)
        fix_utf8(tb, strlen(tb));
    record(ctx, SKIFF_ERR_USER, copy_type(type), message, tb);
    return -1;
}

/* This frame, then err's traceback (the remote frames, innermost last), within TRACEBACK_MAX:
 * when too long, the innermost part of err's traceback is kept. */
static char *prepend_frame(const char *frame, size_t flen, const char *inner)
{
    static const char gap[] = "\n  ...";
    size_t ilen = inner ? strlen(inner) : 0;
    size_t room = TRACEBACK_MAX - flen - sizeof gap - 1;
    const char *keep = inner;
    bool cut = false;
    if (ilen > room) {
        keep = inner + ilen - room;
        const char *nl = memchr(keep, '\n', (size_t)(inner + ilen - keep));
        keep = nl ? nl + 1 : keep;
        ilen = strlen(keep);
        cut = true;
    }
    char *tb = mem_alloc(flen + sizeof gap + 1 + ilen + 1);
    if (!tb)
        return NULL;
    size_t n = 0;
    memcpy(tb, frame, flen);
    n += flen;
    if (cut) {
        memcpy(tb + n, gap, sizeof gap - 1);
        n += sizeof gap - 1;
    }
    if (ilen) {
        tb[n++] = '\n';
        memcpy(tb + n, keep, ilen);
        n += ilen;
    }
    tb[n] = '\0';
    fix_utf8(tb, n);
    return tb;
}

int skiff__raise_error(skiff_ctx *ctx, const char *file, int line, const char *func,
                       const skiff_error *err)
{
    if (!ctx)
        return -1;
    char frame[512];
    int flen = format_frame(frame, sizeof frame, file, line, func);
    if (!err || err->code == SKIFF_OK) {
        record(ctx, SKIFF_ERR_USER, mem_strdup("Error"),
               mem_strdup("skiff_raise_error was given no error"), mem_strdup(frame));
        return -1;
    }
    /* Built before recording: err may be ctx->raised itself. */
    const char *msg = err->message ? err->message : "";
    size_t mlen = cut_utf8(msg, strlen(msg), MESSAGE_MAX);
    char *message = mem_strndup(msg, mlen);
    if (message)
        fix_utf8(message, mlen);
    char *type = copy_type(err->type ? err->type : skiff_code_name(err->code));
    char *tb = prepend_frame(frame, (size_t)flen, err->traceback);
    record(ctx, err->code, type, message, tb);
    return -1;
}
