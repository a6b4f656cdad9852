/*
 * faults_init.c - app "sec-faults-init": its code writes garbage on the container's socket
 * (fd 3) when a container loads it, before the container is ready (a constructor), for
 * tests/security/faults.sh. Outside a container (no SKIFF_CONTAINER_ID) it writes nothing.
 *
 *   ping()   returns "pong" (never reached in a container)
 */
#include <stdlib.h>
#include <unistd.h>

#include <skiff/app.h>

SKIFF_APP("sec-faults-init");

__attribute__((constructor)) static void scribble(void)
{
    static const char junk[] = "garbage before ready\n";
    if (getenv("SKIFF_CONTAINER_ID") && write(3, junk, sizeof junk - 1) < 0)
        _exit(1);
}

static int ping(skiff_ctx *ctx, skiff_value **out)
{
    *out = skiff_value_string("pong");
    return *out ? 0 : skiff_raise(ctx, "MemoryError", "out of memory");
}
SKIFF_FUNCTION(ping, .signature = "");
