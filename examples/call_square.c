/*
 * call_square.c - a client program: calls my-shared-app's square (examples/square.c) and prints
 * the result as JSON.
 *
 *     build/examples/call_square          # square(42) -> 1764
 *     build/examples/call_square 1.5      # 2.25
 *
 * The argument is one JSON value (default 42). The server and token come from $SKIFF_SERVER /
 * $SKIFF_TOKEN_ID / $SKIFF_TOKEN_SECRET or ~/.skiff.toml. Exit status 0 on success, 1 when the
 * call fails (the error, and the remote traceback if there is one, on stderr), 2 on a bad
 * argument.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/skiff.h>

static int fail(const char *what, const skiff_error *err)
{
    fprintf(stderr, "call_square: %s: %s: %s\n", what, err->type ? err->type : "Error",
            err->message ? err->message : "");
    if (err->traceback)
        fprintf(stderr, "Traceback (most recent call last):\n%s\n", err->traceback);
    return 1;
}

int main(int argc, char **argv)
{
    const char *arg = argc > 1 ? argv[1] : "42";
    if (argc > 2 || !strcmp(arg, "--help") || !strcmp(arg, "-h")) {
        fprintf(stderr, "usage: call_square [JSON_NUMBER]\n");
        return 2;
    }
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *x = NULL;
    if (skiff_value_from_json(arg, strlen(arg), &x, &err) != SKIFF_OK) {
        fprintf(stderr, "call_square: the argument is not JSON: %s\n", err.message);
        skiff_error_clear(&err);
        return 2;
    }
    skiff_client *client = NULL;
    skiff_function *square = NULL;
    skiff_value *args = skiff_value_list_of(1, x), *result = NULL;
    int status = 1;
    if (!args) {
        fprintf(stderr, "call_square: out of memory\n");
    } else if (skiff_client_connect(NULL, &client, &err) != SKIFF_OK) {
        status = fail("cannot connect", &err);
    } else if (skiff_function_lookup(client, "my-shared-app", "square", &square, &err) !=
               SKIFF_OK) {
        status = fail("lookup failed", &err);
    } else if (skiff_function_remote(square, args, NULL, &result, &err) != SKIFF_OK) {
        status = fail("square failed", &err);
    } else {
        char *json = skiff_value_to_json(result);
        if (json) {
            printf("%s\n", json);
            free(json);
            status = 0;
        } else {
            fprintf(stderr, "call_square: out of memory\n");
        }
    }
    skiff_value_free(result);
    skiff_value_free(args);
    skiff_function_free(square);
    skiff_client_close(client);
    skiff_error_clear(&err);
    return status;
}
