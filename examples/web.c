/*
 * web.c - app "web-demo": web endpoints, functions that answer HTTP requests (docs/http-api.md).
 *
 *     skiff deploy examples/web.c                  # prints each endpoint's web_url
 *     skiff url web-demo greet                     # http://127.0.0.1:7879/web/web-demo-greet
 *     curl 'http://127.0.0.1:7879/web/web-demo-greet?name=Ada'
 *         {"message":"Hello, Ada!"}
 *     curl -X POST -d '{"a": 2, "b": 3}' http://127.0.0.1:7879/web/add
 *         {"sum":5}
 *
 * greet(name) (GET, the default label web-demo-greet) greets, up to 32 requests at once per
 * container; add(a, b) (POST, label "add") adds two ints from a JSON body; fail() (GET) raises a
 * ValueError (the caller sees 500 with the type and message); slow(seconds) (GET) sleeps, for
 * requests that outlast the web limit (303 to a result URL); secret() (GET, label "secret")
 * requires the caller's token in the headers X-Skiff-Token-Id and X-Skiff-Token-Secret.
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include <skiff/app.h>

SKIFF_APP("web-demo");

static int greet(skiff_ctx *ctx, skiff_value **out)
{
    size_t len;
    const char *name = skiff_value_get_string(skiff_arg(ctx, "name"), &len);
    char msg[256];
    snprintf(msg, sizeof msg, "Hello, %.*s!", (int)(len < 200 ? len : 200), name);
    *out = skiff_value_map();
    if (!*out || skiff_map_set(*out, "message", skiff_value_string(msg)) != SKIFF_OK)
        return skiff_raise(ctx, "MemoryError", "out of memory");
    return 0;
}
SKIFF_FUNCTION(greet, .signature = "name:str", .web = {"GET"}, .max_inputs = 32);

static int add(skiff_ctx *ctx, skiff_value **out)
{
    int64_t a = skiff_arg_int(ctx, "a"), b = skiff_arg_int(ctx, "b"), sum;
    if (__builtin_add_overflow(a, b, &sum))
        return skiff_raise(ctx, "OverflowError", "%lld + %lld does not fit in 64 bits",
                           (long long)a, (long long)b);
    *out = skiff_value_map();
    if (!*out || skiff_map_set(*out, "sum", skiff_value_int(sum)) != SKIFF_OK)
        return skiff_raise(ctx, "MemoryError", "out of memory");
    return 0;
}
SKIFF_FUNCTION(add, .signature = "a:int, b:int", .web = {"POST", "add"});

static int fail(skiff_ctx *ctx, skiff_value **out)
{
    (void)out;
    return skiff_raise(ctx, "ValueError", "this endpoint always fails");
}
SKIFF_FUNCTION(fail, .signature = "", .web = {"GET"});

static int slow(skiff_ctx *ctx, skiff_value **out)
{
    double s = skiff_arg_double(ctx, "seconds");
    if (s < 0 || s > 60)
        return skiff_raise(ctx, "ValueError", "seconds must be from 0 to 60");
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    *out = skiff_value_map();
    if (!*out || skiff_map_set(*out, "slept", skiff_value_double(s)) != SKIFF_OK)
        return skiff_raise(ctx, "MemoryError", "out of memory");
    return 0;
}
SKIFF_FUNCTION(slow, .signature = "seconds:float", .web = {"GET"}, .max_inputs = 8);

static int secret(skiff_ctx *ctx, skiff_value **out)
{
    *out = skiff_value_string("the token opened this");
    return *out ? 0 : skiff_raise(ctx, "MemoryError", "out of memory");
}
SKIFF_FUNCTION(secret, .signature = "", .web = {"GET", "secret", true});
