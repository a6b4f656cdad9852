/*
 * secrets.c - a function that uses a secret: "secrets-demo" with greet(name), which reads the
 * GREETING of the secret "greeting" from its environment. The secret is stored first, and its
 * value is never shown by the server:
 *
 *     skiff secret create greeting GREETING=Bonjour
 *     skiff deploy examples/secrets.c
 *     skiff call secrets-demo greet '"Ada"'                # "Bonjour, Ada!"
 *     skiff secret list                                    # names and keys only
 *
 * A function sees only its secrets and a minimal environment (PATH, LANG, HOME, TZ, SKIFF_*),
 * never the server's own variables (docs/app-sdk.md, "Secrets and volumes").
 */
#include <stdio.h>
#include <stdlib.h>

#include <skiff/app.h>

SKIFF_APP("secrets-demo");

static int greet(skiff_ctx *ctx, skiff_value **out)
{
    const char *greeting = getenv("GREETING");
    if (!greeting)
        return skiff_raise(ctx, "KeyError", "GREETING is not set: is the secret declared?");
    char text[256];
    snprintf(text, sizeof text, "%s, %s!", greeting, skiff_arg_string(ctx, "name"));
    *out = skiff_value_string(text);
    return 0;
}
SKIFF_FUNCTION(greet, .signature = "name:str", .secrets = "greeting");
