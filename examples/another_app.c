/*
 * another_app.c - an app that calls a function of another app: cube(x) = x * square(x), where
 * square runs remotely in "my-shared-app" (examples/square.c).
 *
 *     skiff deploy examples/square.c
 *     skiff deploy examples/another_app.c
 *     skiff call another-app cube 3             # 27
 *
 * The nested call goes through the container's own client (skiff_ctx_client), so the server
 * links it to cube's input in the call graph. A failure of square, or a missing my-shared-app,
 * is raised again from cube with skiff_raise_error: the caller sees square's error type and
 * message, and a traceback through both functions.
 */
#include <skiff/app.h>

SKIFF_APP("another-app");

static int cube(skiff_ctx *ctx, skiff_value **out)
{
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_client *client = skiff_ctx_client(ctx, &err);
    skiff_function *square = NULL;
    skiff_value *args = NULL, *sq = NULL;
    int rc = -1;
    if (!client)
        goto failed;
    if (skiff_function_from_name(client, "my-shared-app", "square", &square, &err) != SKIFF_OK)
        goto failed;
    const skiff_value *x = skiff_arg(ctx, "x");
    args = skiff_value_list_of(1, skiff_value_copy(x));
    if (!args) {
        rc = skiff_raise(ctx, "MemoryError", "out of memory");
        goto done;
    }
    if (skiff_function_remote(square, args, NULL, &sq, &err) != SKIFF_OK)
        goto failed;
    if (skiff_value_type(x) == SKIFF_DOUBLE || skiff_value_type(sq) == SKIFF_DOUBLE) {
        *out = skiff_value_double(skiff_value_get_double(x) * skiff_value_get_double(sq));
    } else {
        int64_t r;
        if (__builtin_mul_overflow(skiff_value_get_int(x), skiff_value_get_int(sq), &r)) {
            rc = skiff_raise(ctx, "OverflowError", "cube(%lld) does not fit in 64 bits",
                             (long long)skiff_value_get_int(x));
            goto done;
        }
        *out = skiff_value_int(r);
    }
    rc = *out ? 0 : skiff_raise(ctx, "MemoryError", "out of memory");
    goto done;
failed:
    rc = skiff_raise_error(ctx, &err);
done:
    skiff_value_free(sq);
    skiff_value_free(args);
    skiff_function_free(square);
    skiff_error_clear(&err);
    return rc;
}
SKIFF_FUNCTION(cube, .signature = "x");
