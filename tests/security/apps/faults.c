/*
 * faults.c - app "sec-faults": functions that fail the way the server must survive, for
 * tests/security/faults.sh.
 *
 *   garbage(kind)     writes something that is not a valid worker message on the container's
 *                     own socket (fd 3), then returns "unreachable" (the caller must not get it):
 *                     "text" a line of text; "short" a frame header announcing 4,096 bytes of
 *                     which only a few follow (the frame never completes); "op" a well-formed
 *                     message of an unknown operation; "slot" an output for an input slot the
 *                     container was never given; "nils" one 60 MB frame {op: [nil x 60M]}
 *                     (valid msgpack, dense: one object per byte)
 *   long_line(n)      prints one line of n 'x' bytes, then "after" on its own line
 *   count(n, ms)      generator: yields 0 .. n-1, sleeping ms before each
 *   burst(n)          generator, 4 inputs at once: yields 0 .. n-1 as fast as it can (items pile up
 *                     while another thread writes: the largest legitimate W_OUTPUTS frames)
 *   sleep_for(s)      sleeps s seconds; returns s
 *   ping()            returns "pong"
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <skiff/app.h>

SKIFF_APP("sec-faults");

#define WIRE_LEN 4 /* the frame header: the body length, big-endian */

static void sleep_ms(double ms)
{
    if (!(ms > 0))
        return;
    struct timespec ts = {(time_t)(ms / 1000),
                          (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        c += w;
        n -= (size_t)w;
    }
}

static int garbage(skiff_ctx *ctx, skiff_value **out)
{
    const char *kind = skiff_arg_string(ctx, "kind");
    /* {op: 99, rid: 0}: a message, but of no operation a worker sends. */
    static const unsigned char op[] = {0,   0,  0,    10,  0x82, 0xa2, 'o',
                                       'p', 99, 0xa3, 'r', 'i',  'd',  0};
    /* {op: 47 (W_OUTPUTS), rid: 0, outputs: [[999999, 0, bin(nil)]]}: an output for slot
     * 999999, which no container is given this early. */
    static const unsigned char slot[] = {0,    0,    0,   29,   0x83, 0xa2, 'o',  'p',  47,
                                         0xa3, 'r',  'i', 'd',  0,    0xa7, 'o',  'u',  't',
                                         'p',  'u',  't', 's',  0x91, 0x93, 0xce, 0x00, 0x0f,
                                         0x42, 0x3f, 0,   0xc4, 1,    0xc0};
    /* A header announcing 4,096 bytes, then a few: the frame never completes. */
    static const unsigned char short_frame[] = {0, 0, 0x10, 0, 'j', 'u', 'n', 'k'};
    static const char text[] = "hello from a function that writes on fd 3\n";
    if (!strcmp(kind, "text"))
        write_all(3, text, sizeof text - 1);
    else if (!strcmp(kind, "short"))
        write_all(3, short_frame, sizeof short_frame);
    else if (!strcmp(kind, "op"))
        write_all(3, op, sizeof op);
    else if (!strcmp(kind, "slot"))
        write_all(3, slot, sizeof slot);
    else if (!strcmp(kind, "nils")) {
        /* {op: array32 of N nils}: starts as a message, parses as msgpack, N + 4 objects. */
        size_t n = 60u << 20, len = 9 + n;
        unsigned char *p = malloc(WIRE_LEN + len);
        if (!p)
            return skiff_raise(ctx, "MemoryError", "out of memory");
        unsigned char head[] = {(unsigned char)(len >> 24),
                                (unsigned char)(len >> 16),
                                (unsigned char)(len >> 8),
                                (unsigned char)len,
                                0x81,
                                0xa2,
                                'o',
                                'p',
                                0xdd,
                                (unsigned char)(n >> 24),
                                (unsigned char)(n >> 16),
                                (unsigned char)(n >> 8),
                                (unsigned char)n};
        memcpy(p, head, sizeof head);
        memset(p + sizeof head, 0xc0, n);
        write_all(3, p, WIRE_LEN + len);
        free(p);
    } else
        return skiff_raise(ctx, "ValueError", "garbage(%s): unknown kind", kind);
    /* Give the server time to read it before the worker's own output follows. */
    sleep_ms(500);
    *out = skiff_value_string("unreachable");
    return *out ? 0 : skiff_raise(ctx, "MemoryError", "out of memory");
}
SKIFF_FUNCTION(garbage, .signature = "kind:str", .timeout = 120);

static int long_line(skiff_ctx *ctx, skiff_value **out)
{
    (void)out;
    int64_t n = skiff_arg_int(ctx, "n");
    if (n < 0 || n > (64 << 20))
        return skiff_raise(ctx, "ValueError", "long_line: n must be between 0 and 64 MiB");
    char *p = malloc((size_t)n + 1);
    if (!p)
        return skiff_raise(ctx, "MemoryError", "out of memory");
    memset(p, 'x', (size_t)n);
    p[n] = '\n';
    fwrite(p, 1, (size_t)n + 1, stdout);
    free(p);
    printf("after\n");
    fflush(stdout);
    return 0;
}
SKIFF_FUNCTION(long_line, .signature = "n:int");

static int count(skiff_ctx *ctx, skiff_value **out)
{
    (void)out;
    int64_t n = skiff_arg_int(ctx, "n");
    double ms = skiff_arg_double(ctx, "ms");
    for (int64_t i = 0; i < n; i++) {
        sleep_ms(ms);
        if (skiff_yield(ctx, skiff_value_int(i)) < 0)
            return -1;
    }
    return 0;
}
SKIFF_FUNCTION(count, .signature = "n:int, ms:float", .generator = true);

static int burst(skiff_ctx *ctx, skiff_value **out)
{
    (void)out;
    int64_t n = skiff_arg_int(ctx, "n");
    for (int64_t i = 0; i < n; i++)
        if (skiff_yield(ctx, skiff_value_int(i)) < 0)
            return -1;
    return 0;
}
SKIFF_FUNCTION(burst, .signature = "n:int", .generator = true, .max_inputs = 4);

static int sleep_for(skiff_ctx *ctx, skiff_value **out)
{
    double s = skiff_arg_double(ctx, "s");
    sleep_ms(s * 1000);
    *out = skiff_value_double(s);
    return *out ? 0 : skiff_raise(ctx, "MemoryError", "out of memory");
}
SKIFF_FUNCTION(sleep_for, .signature = "s:float");

static int ping(skiff_ctx *ctx, skiff_value **out)
{
    *out = skiff_value_string("pong");
    return *out ? 0 : skiff_raise(ctx, "MemoryError", "out of memory");
}
SKIFF_FUNCTION(ping, .signature = "");
