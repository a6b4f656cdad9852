/*
 * fuzz_frame.c - fuzz target for reading protocol frames (src/common/wire.c).
 *
 * The input is a byte stream as a peer would send it: frames are cut with wire_frame_len (under
 * the post-HELLO limit), parsed with wire_msg_parse, and every kind of field a server or client
 * reads is accessed, including the payloads inside (args / value, decoded as the container and
 * client do) and an error reply. The input is also parsed whole as one frame body. Built with
 * libFuzzer by scripts/fuzz.sh, or with tests/fuzz/replay.c to replay the corpus in the test run.
 */
#include <stdint.h>
#include <stdlib.h>

#include "common/codec.h"
#include "common/mem.h"
#include "common/proto.h"
#include "common/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Bytes read from the fields land here, so the reads cannot be optimised away. (An abort on a
 * chosen byte, as this once did, is a crash the fuzzer finds at once: not a bug.) */
static volatile unsigned sink;

/* Reads every field the protocol defines, as the server and clients do. */
static void access_fields(const struct wire_msg *m)
{
    static const char *const keys[] = {
        "token_id", "token_secret", "client", "app",       "function",       "function_id",
        "call_id",  "input_id",     "type",   "message",   "traceback",      "container_id",
        "status",   "server",       "name",   "signature", "parent_input_id"};
    char small[64];
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *p;
        size_t n;
        if (wire_get_str(m, keys[i], &p, &n) && n)
            sink += (unsigned char)p[0] + (unsigned char)p[n - 1]; /* the read is kept */
        mem_free(wire_dup_str(m, keys[i]));
        wire_copy_str(m, keys[i], small, sizeof small);
    }
    int64_t i64;
    double d;
    bool b;
    wire_get_int(m, "timeout_ms", &i64);
    wire_get_int(m, "code", &i64);
    wire_get_int(m, "pid", &i64);
    wire_get_double(m, "timeout", &d);
    wire_get_bool(m, "spawn", &b);
    wire_get_bool(m, "terminate_containers", &b);

    const char *p;
    size_t n;
    skiff_error err = SKIFF_ERROR_INIT;
    if (wire_get_bin(m, "args", &p, &n)) {
        skiff_value *args = NULL, *kwargs = NULL;
        if (codec_decode_args(p, n, &args, &kwargs, &err) == SKIFF_OK) {
            skiff_value_free(args);
            skiff_value_free(kwargs);
        }
        skiff_error_clear(&err);
    }
    if (wire_get_bin(m, "value", &p, &n)) {
        skiff_value *v = NULL;
        if (codec_decode_value(p, n, &v, &err) == SKIFF_OK)
            skiff_value_free(v);
        skiff_error_clear(&err);
    }
    if (m->op == OP_ERROR) {
        wire_get_error(m, &err);
        skiff_error_clear(&err);
    }
    /* Nested arrays of maps: DEPLOY's functions, APP_LIST's apps, CONTAINER_LIST's list. */
    static const char *const lists[] = {"functions", "apps", "containers"};
    for (size_t k = 0; k < 3; k++) {
        const msgpack_object *a = wire_get(m, lists[k]);
        if (!a || a->type != MSGPACK_OBJECT_ARRAY)
            continue;
        for (uint32_t j = 0; j < a->via.array.size; j++) {
            const msgpack_object *o = wire_obj_get(&a->via.array.ptr[j], "name");
            if (o && o->type == MSGPACK_OBJECT_STR && o->via.str.size)
                sink += (unsigned char)o->via.str.ptr[0]; /* as above */
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wire_msg m;
    if (wire_msg_init(&m) != 0)
        return 0;
    const char *p = (const char *)data;
    size_t left = size;
    for (;;) {
        long n = wire_frame_len(p, left, PROTO_PAYLOAD_MAX + PROTO_FRAME_OVERHEAD);
        if (n <= 0)
            break;
        if (wire_msg_parse(&m, p + WIRE_HEADER, (size_t)n) == 0)
            access_fields(&m);
        p += WIRE_HEADER + (size_t)n;
        left -= WIRE_HEADER + (size_t)n;
    }
    if (wire_msg_parse(&m, (const char *)data, size) == 0)
        access_fields(&m);
    wire_msg_deinit(&m);
    return 0;
}
