/*
 * limits.c - app "limits-app" for tests/security/anon_http.sh and anon_wire.sh: web endpoints
 * with the default body limit and with their own, and a function with a large result.
 *
 * post(a) (POST, label "limits-post") echoes the length of its JSON body's "a" under the
 * server's default body limit; small(a) (POST, label "limits-small", .max_body = 256) the same
 * under 256 bytes; big(n) returns a string of n bytes (for a client that never reads); nap(s)
 * sleeps s seconds (a call in progress on an otherwise silent connection).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <skiff/app.h>

SKIFF_APP("limits-app");

static int length_of_a(skiff_ctx *ctx, skiff_value **out)
{
    size_t len = 0;
    const skiff_value *a = skiff_arg(ctx, "a");
    if (skiff_value_type(a) == SKIFF_STRING)
        skiff_value_get_string(a, &len);
    *out = skiff_value_int((int64_t)len);
    return *out ? 0 : skiff_raise(ctx, "MemoryError", "out of memory");
}

static int post(skiff_ctx *ctx, skiff_value **out)
{
    return length_of_a(ctx, out);
}
SKIFF_FUNCTION(post, .signature = "a", .web = {"POST", "limits-post"});

static int small(skiff_ctx *ctx, skiff_value **out)
{
    return length_of_a(ctx, out);
}
SKIFF_FUNCTION(small, .signature = "a", .web = {"POST", "limits-small", .max_body = 256});

static int big(skiff_ctx *ctx, skiff_value **out)
{
    int64_t n = skiff_arg_int(ctx, "n");
    if (n < 0 || n > (64 << 20))
        return skiff_raise(ctx, "ValueError", "n must be from 0 to 64 MiB");
    char *s = malloc((size_t)n + 1);
    if (!s)
        return skiff_raise(ctx, "MemoryError", "out of memory");
    memset(s, 'x', (size_t)n);
    s[n] = '\0';
    *out = skiff_value_stringn(s, (size_t)n);
    free(s);
    return *out ? 0 : skiff_raise(ctx, "MemoryError", "out of memory");
}
SKIFF_FUNCTION(big, .signature = "n:int");

static int nap(skiff_ctx *ctx, skiff_value **out)
{
    double s = skiff_arg_double(ctx, "s");
    if (s < 0 || s > 60)
        return skiff_raise(ctx, "ValueError", "s must be from 0 to 60");
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    *out = skiff_value_double(s);
    return *out ? 0 : skiff_raise(ctx, "MemoryError", "out of memory");
}
SKIFF_FUNCTION(nap, .signature = "s:float");
