/*
 * test_common_wire.c - unit tests of protocol frames (src/common/wire.c): building frames, the
 * field-count check, frame lengths from partial headers and over-limit lengths, parsing (and
 * refusing what is not a frame), typed field access, error frames, and allocation failures.
 */
#include <stdint.h>

#include "common/codec.h"
#include "common/mem.h"
#include "common/proto.h"
#include "common/wire.h"
#include "unit.h"

/* A string literal and its length without the terminating NUL (literals may hold NULs). */
#define LIT(s) (s), (sizeof(s) - 1)

/* Parses the one frame at the start of b into m; checks the length prefix on the way. */
static void parse_frame(struct wire_msg *m, const struct buf *b)
{
    long n = wire_frame_len(b->data, b->len, 1 << 20);
    ASSERT_GT_INT(n, 0);
    ASSERT_EQ_UINT((size_t)n + WIRE_HEADER, b->len);
    ASSERT_EQ_INT(wire_msg_parse(m, b->data + WIRE_HEADER, (size_t)n), 0);
}

TEST(build_and_parse)
{
    struct buf b;
    buf_init(&b, 0);
    struct wire_writer w;
    wire_begin(&w, &b, OP_CALL, 77, 7);
    wire_str(&w, "app", "my-shared-app");
    wire_strn(&w, "function", "squareXX", 6);
    wire_int(&w, "n", -5);
    wire_bool(&w, "spawn", true);
    wire_double(&w, "timeout", 2.5);
    wire_bin(&w, "args", "\x92\x90\x80", 3);
    wire_str(&w, "nothing", NULL);
    ASSERT_EQ_INT(wire_end(&w), SKIFF_OK);

    struct wire_msg m;
    ASSERT_EQ_INT(wire_msg_init(&m), 0);
    parse_frame(&m, &b);
    ASSERT_EQ_INT(m.op, OP_CALL);
    ASSERT_EQ_UINT(m.rid, 77);
    const char *p;
    size_t n;
    ASSERT(wire_get_str(&m, "app", &p, &n));
    ASSERT_EQ_UINT(n, 13);
    ASSERT_EQ_MEM(p, "my-shared-app", 13);
    char name[16];
    ASSERT(wire_copy_str(&m, "function", name, sizeof name));
    ASSERT_EQ_STR(name, "square");
    int64_t i;
    ASSERT(wire_get_int(&m, "n", &i));
    ASSERT_EQ_INT(i, -5);
    bool flag = false;
    ASSERT(wire_get_bool(&m, "spawn", &flag));
    ASSERT(flag);
    double d;
    ASSERT(wire_get_double(&m, "timeout", &d));
    ASSERT_EQ_DOUBLE(d, 2.5);
    ASSERT(wire_get_double(&m, "n", &d)); /* ints read as doubles */
    ASSERT_EQ_DOUBLE(d, -5.0);
    ASSERT(wire_get_bin(&m, "args", &p, &n));
    ASSERT_EQ_UINT(n, 3);
    ASSERT_EQ_MEM(p, "\x92\x90\x80", 3);
    const msgpack_object *o = wire_get(&m, "nothing");
    ASSERT_NOT_NULL(o);
    ASSERT_EQ_INT(o->type, MSGPACK_OBJECT_NIL);
    ASSERT_NULL(wire_get(&m, "absent"));
    char *dup = wire_dup_str(&m, "app");
    ASSERT_EQ_STR(dup, "my-shared-app");
    mem_free(dup);
    wire_msg_deinit(&m);
    buf_deinit(&b);
}

TEST(nested_values)
{
    struct buf b;
    buf_init(&b, 0);
    struct wire_writer w;
    wire_begin(&w, &b, OP_OK, 3, 1);
    wire_key(&w, "functions");
    wire_pack_array(&w, 2);
    for (int k = 0; k < 2; k++) {
        wire_pack_map(&w, 2);
        wire_pack_str(&w, "name");
        wire_pack_str(&w, k ? "cube" : "square");
        wire_pack_str(&w, "n");
        wire_pack_int(&w, k);
    }
    ASSERT_EQ_INT(wire_end(&w), SKIFF_OK);
    struct wire_msg m;
    ASSERT_EQ_INT(wire_msg_init(&m), 0);
    parse_frame(&m, &b);
    const msgpack_object *fns = wire_get(&m, "functions");
    ASSERT_NOT_NULL(fns);
    ASSERT_EQ_INT(fns->type, MSGPACK_OBJECT_ARRAY);
    ASSERT_EQ_UINT(fns->via.array.size, 2);
    const msgpack_object *name = wire_obj_get(&fns->via.array.ptr[1], "name");
    ASSERT_NOT_NULL(name);
    ASSERT_EQ_INT(name->type, MSGPACK_OBJECT_STR);
    ASSERT_EQ_MEM(name->via.str.ptr, "cube", 4);
    ASSERT_NULL(wire_obj_get(&fns->via.array.ptr[1], "missing"));
    ASSERT_NULL(wire_obj_get(fns, "name")); /* not a map */
    ASSERT_NULL(wire_obj_get(NULL, "name"));
    wire_msg_deinit(&m);
    buf_deinit(&b);
}

TEST(several_frames_in_one_buffer)
{
    struct buf b;
    buf_init(&b, 0);
    for (int k = 0; k < 3; k++) {
        struct wire_writer w;
        wire_begin(&w, &b, OP_GET, (uint64_t)k + 1, 1);
        wire_int(&w, "timeout_ms", k);
        ASSERT_EQ_INT(wire_end(&w), SKIFF_OK);
    }
    struct wire_msg m;
    ASSERT_EQ_INT(wire_msg_init(&m), 0);
    for (int k = 0; k < 3; k++) {
        long n = wire_frame_len(b.data, b.len, 1024);
        ASSERT_GT_INT(n, 0);
        ASSERT_EQ_INT(wire_msg_parse(&m, b.data + WIRE_HEADER, (size_t)n), 0);
        ASSERT_EQ_UINT(m.rid, (uint64_t)k + 1);
        int64_t t;
        ASSERT(wire_get_int(&m, "timeout_ms", &t));
        ASSERT_EQ_INT(t, k);
        buf_consume(&b, WIRE_HEADER + (size_t)n);
    }
    ASSERT_EQ_UINT(b.len, 0);
    wire_msg_deinit(&m);
    buf_deinit(&b);
}

TEST(wrong_field_count)
{
    struct buf b;
    buf_init(&b, 0);
    ASSERT_EQ_INT(buf_append(&b, "keep", 4), 0);
    struct wire_writer w;
    wire_begin(&w, &b, OP_LOOKUP, 1, 2);
    wire_str(&w, "app", "a"); /* one field short */
    ASSERT_EQ_INT(wire_end(&w), SKIFF_ERR_INTERNAL);
    ASSERT_EQ_UINT(b.len, 4); /* the partial frame is gone, what was there stays */
    wire_begin(&w, &b, OP_LOOKUP, 1, 1);
    wire_str(&w, "app", "a");
    wire_str(&w, "function", "f"); /* one too many */
    ASSERT_EQ_INT(wire_end(&w), SKIFF_ERR_INTERNAL);
    ASSERT_EQ_UINT(b.len, 4);
    ASSERT_EQ_MEM(b.data, "keep", 4);
    buf_deinit(&b);
}

TEST(frame_over_buffer_max)
{
    struct buf b;
    buf_init(&b, 64);
    struct wire_writer w;
    char big[100];
    memset(big, 'x', sizeof big);
    wire_begin(&w, &b, OP_OK, 1, 2);
    wire_bin(&w, "value", big, sizeof big);
    wire_str(&w, "after", "still counted");
    ASSERT_EQ_INT(wire_end(&w), SKIFF_ERR_REQUEST_SIZE);
    ASSERT_EQ_UINT(b.len, 0);
    /* The buffer is usable afterwards. */
    wire_begin(&w, &b, OP_OK, 2, 0);
    ASSERT_EQ_INT(wire_end(&w), SKIFF_OK);
    buf_deinit(&b);
}

TEST(frame_len)
{
    /* Fewer than 4 bytes: need more, whatever they are. */
    ASSERT_EQ_INT(wire_frame_len("", 0, 100), 0);
    ASSERT_EQ_INT(wire_frame_len("\xff", 1, 100), 0);
    ASSERT_EQ_INT(wire_frame_len("\xff\xff\xff", 3, 100), 0);
    /* Whole header, partial body. */
    ASSERT_EQ_INT(wire_frame_len("\0\0\0\x05"
                                 "abc",
                                 7, 100),
                  0);
    /* Exactly complete, and with more behind it. */
    ASSERT_EQ_INT(wire_frame_len("\0\0\0\x05"
                                 "abcde",
                                 9, 100),
                  5);
    ASSERT_EQ_INT(wire_frame_len("\0\0\0\x05"
                                 "abcdeXYZ",
                                 12, 100),
                  5);
    /* At the max and over it: over is known from the header alone. */
    ASSERT_EQ_INT(wire_frame_len("\0\0\0\x64", 4, 100), 0);
    ASSERT_EQ_INT(wire_frame_len("\0\0\0\x65", 4, 100), -1);
    ASSERT_EQ_INT(wire_frame_len("\xff\xff\xff\xff", 4, PROTO_PAYLOAD_MAX + PROTO_FRAME_OVERHEAD),
                  -1);
    ASSERT_EQ_INT(wire_frame_len("\0\0\x40\x01", 4, PROTO_HELLO_MAX), -1); /* 16 KiB + 1 */
    ASSERT_EQ_INT(wire_frame_len("\0\0\x40\x00", 4, PROTO_HELLO_MAX), 0);
    /* Big-endian. */
    char h[4 + 258] = "\0\0\x01\x02";
    ASSERT_EQ_INT(wire_frame_len(h, sizeof h, 1000), 258);
}

/* A header announcing an empty body is complete (no body can be a frame, so it is refused):
 * reading it as "need more bytes" would stall the connection with the header never consumed. */
TEST(empty_frame_is_not_need_more)
{
    ASSERT_NE_INT(wire_frame_len("\0\0\0\0", 4, 100), 0);
    ASSERT_NE_INT(wire_frame_len("\0\0\0\0\x81\xa2op\x0a", 9, 100), 0);
}

/* Parses raw bytes as a frame body; they must be refused. */
#define ASSERT_NOT_A_FRAME(...)                                                                    \
    do {                                                                                           \
        struct wire_msg m_;                                                                        \
        ASSERT_EQ_INT(wire_msg_init(&m_), 0);                                                      \
        if (wire_msg_parse(&m_, __VA_ARGS__) != -1)                                                \
            FAIL("%s was accepted as a frame", #__VA_ARGS__);                                      \
        wire_msg_deinit(&m_);                                                                      \
    } while (0)

TEST(not_a_frame)
{
    ASSERT_NOT_A_FRAME(LIT(""));
    ASSERT_NOT_A_FRAME(LIT("\x01"));                               /* an int, not a map */
    ASSERT_NOT_A_FRAME(LIT("\x91\x01"));                           /* an array */
    ASSERT_NOT_A_FRAME(LIT("\x80"));                               /* a map without op */
    ASSERT_NOT_A_FRAME(LIT("\x81\xa3rid\x01"));                    /* no op */
    ASSERT_NOT_A_FRAME(LIT("\x81\xa2op\xa1x"));                    /* op a string */
    ASSERT_NOT_A_FRAME(LIT("\x81\xa2op\xff"));                     /* op negative */
    ASSERT_NOT_A_FRAME(LIT("\x81\xa2op\xce\x00\x01\x00\x00"));     /* op beyond 16 bits */
    ASSERT_NOT_A_FRAME(LIT("\x81\xa2op\xcb\x3f\xf0\0\0\0\0\0\0")); /* op a double */
    ASSERT_NOT_A_FRAME(LIT("\x81\xa2op\x0a\xc0"));                 /* trailing bytes */
    ASSERT_NOT_A_FRAME(LIT("\x82\xa2op"));                         /* truncated */
    ASSERT_NOT_A_FRAME(LIT("\xc1"));

    /* The smallest valid frame: op only (rid defaults to 0), unknown keys ignored. */
    struct wire_msg m;
    ASSERT_EQ_INT(wire_msg_init(&m), 0);
    ASSERT_EQ_INT(wire_msg_parse(&m, LIT("\x81\xa2op\x0a")), 0);
    ASSERT_EQ_INT(m.op, OP_HELLO);
    ASSERT_EQ_UINT(m.rid, 0);
    ASSERT_EQ_INT(wire_msg_parse(&m, LIT("\x83\xa2op\x01\xa3rid\x05\x01\x02")), 0);
    ASSERT_EQ_INT(m.op, OP_OK);
    ASSERT_EQ_UINT(m.rid, 5);
    wire_msg_deinit(&m);
}

/* protocol.md: rid is a uint chosen by the requester; the reply carries it back exactly. */
TEST(rid_full_uint64)
{
    struct buf b;
    buf_init(&b, 0);
    struct wire_writer w;
    wire_begin(&w, &b, OP_OK, UINT64_MAX, 0);
    ASSERT_EQ_INT(wire_end(&w), SKIFF_OK);
    struct wire_msg m;
    ASSERT_EQ_INT(wire_msg_init(&m), 0);
    parse_frame(&m, &b);
    ASSERT_EQ_UINT(m.rid, UINT64_MAX);
    wire_msg_deinit(&m);
    buf_deinit(&b);
}

TEST(typed_access_refuses_other_types)
{
    struct buf b;
    buf_init(&b, 0);
    struct wire_writer w;
    wire_begin(&w, &b, OP_OK, 1, 5);
    wire_str(&w, "s", "text");
    wire_int(&w, "i", 1);
    wire_bin(&w, "b", "x", 1);
    wire_strn(&w, "nul", "a\0b", 3);
    wire_str(&w, "long", "0123456789");
    ASSERT_EQ_INT(wire_end(&w), SKIFF_OK);
    struct wire_msg m;
    ASSERT_EQ_INT(wire_msg_init(&m), 0);
    parse_frame(&m, &b);

    /* Out parameters are written only on success. */
    const char *p = "untouched";
    size_t n = 12345;
    int64_t i = 42;
    bool flag = true;
    double d = 4.5;
    ASSERT_FALSE(wire_get_str(&m, "i", &p, &n));
    ASSERT_FALSE(wire_get_str(&m, "b", &p, &n)); /* bin is not str */
    ASSERT_FALSE(wire_get_bin(&m, "s", &p, &n)); /* nor the other way */
    ASSERT_FALSE(wire_get_int(&m, "s", &i));
    ASSERT_FALSE(wire_get_bool(&m, "i", &flag));
    ASSERT_FALSE(wire_get_double(&m, "s", &d));
    ASSERT_FALSE(wire_get_int(&m, "absent", &i));
    ASSERT_EQ_STR(p, "untouched");
    ASSERT_EQ_UINT(n, 12345);
    ASSERT_EQ_INT(i, 42);
    ASSERT(flag);
    ASSERT_EQ_DOUBLE(d, 4.5);

    /* Strings holding NUL cannot become C strings. */
    ASSERT_NULL(wire_dup_str(&m, "nul"));
    char out[16] = "same";
    ASSERT_FALSE(wire_copy_str(&m, "nul", out, sizeof out));
    ASSERT_FALSE(wire_copy_str(&m, "long", out, 10)); /* 10 chars need 11 bytes */
    ASSERT_FALSE(wire_copy_str(&m, "i", out, sizeof out));
    ASSERT_EQ_STR(out, "same");
    ASSERT(wire_copy_str(&m, "long", out, 11));
    ASSERT_EQ_STR(out, "0123456789");
    ASSERT_NULL(wire_dup_str(&m, "absent"));
    wire_msg_deinit(&m);
    buf_deinit(&b);
}

TEST(error_frames)
{
    struct buf b;
    buf_init(&b, 0);
    skiff_error e = SKIFF_ERROR_INIT;
    skiff_error_set(&e, SKIFF_ERR_USER, "ValueError", "job %s failed", "job-2");
    e.traceback = mem_strdup("jobs.c:20 in train_model\n");
    ASSERT_EQ_INT(wire_error(&b, 9, &e), SKIFF_OK);
    struct wire_msg m;
    ASSERT_EQ_INT(wire_msg_init(&m), 0);
    parse_frame(&m, &b);
    ASSERT_EQ_INT(m.op, OP_ERROR);
    ASSERT_EQ_UINT(m.rid, 9);
    skiff_error got = SKIFF_ERROR_INIT;
    wire_get_error(&m, &got);
    ASSERT_EQ_INT(got.code, SKIFF_ERR_USER);
    ASSERT_EQ_STR(got.type, "ValueError");
    ASSERT_EQ_STR(got.message, "job job-2 failed");
    ASSERT_EQ_STR(got.traceback, "jobs.c:20 in train_model\n");
    skiff_error_clear(&e);

    /* From parts, without a traceback; NULL type means the code's name. */
    buf_consume(&b, b.len);
    ASSERT_EQ_INT(wire_error_msg(&b, 10, SKIFF_ERR_NOT_FOUND, NULL, "no such app"), SKIFF_OK);
    parse_frame(&m, &b);
    wire_get_error(&m, &got); /* reused: the old strings are freed (ASan) */
    ASSERT_EQ_INT(got.code, SKIFF_ERR_NOT_FOUND);
    ASSERT_EQ_STR(got.type, "NotFoundError");
    ASSERT_EQ_STR(got.message, "no such app");
    ASSERT_NULL(got.traceback);

    /* A malformed error frame still yields a usable error. */
    ASSERT_EQ_INT(wire_msg_parse(&m, LIT("\x82\xa2op\x02\xa4"
                                         "code\x00")),
                  0);
    wire_get_error(&m, &got);
    ASSERT_EQ_INT(got.code, SKIFF_ERR_INTERNAL);
    ASSERT_NOT_NULL(got.type);
    ASSERT_NOT_NULL(got.message);
    ASSERT_EQ_INT(wire_msg_parse(&m, LIT("\x81\xa2op\x02")), 0);
    wire_get_error(&m, &got);
    ASSERT_EQ_INT(got.code, SKIFF_ERR_INTERNAL);
    wire_get_error(&m, NULL); /* harmless */
    skiff_error_clear(&got);
    wire_msg_deinit(&m);
    buf_deinit(&b);
}

TEST(payload_limits_fit)
{
    /* A frame carrying the largest payload fits in payload max + overhead. */
    ASSERT_EQ_INT(wire_frame_len("\x04\x01\x00\x00", 4, PROTO_PAYLOAD_MAX + PROTO_FRAME_OVERHEAD),
                  0);
    ASSERT(PROTO_HELLO_MAX < PROTO_PAYLOAD_MAX);
}

TEST(torture_build)
{
    for (long n = 0;; n++) {
        struct buf b;
        buf_init(&b, 0);
        struct wire_writer w;
        mem_fail_after(n);
        wire_begin(&w, &b, OP_DEPLOY, 1, 2);
        wire_str(&w, "app", "x");
        char code[5000];
        memset(code, 0, sizeof code);
        wire_bin(&w, "code", code, sizeof code);
        int rc = wire_end(&w);
        mem_fail_after(-1);
        buf_deinit(&b);
        if (rc == SKIFF_OK)
            break;
        ASSERT_EQ_INT(rc, SKIFF_ERR_NOMEM);
        ASSERT_LT_INT(n, 100);
    }
    /* wire_get_error with failing allocations: no crash, no leak. */
    struct buf b;
    buf_init(&b, 0);
    ASSERT_EQ_INT(wire_error_msg(&b, 1, SKIFF_ERR_AUTH, NULL, "bad token"), SKIFF_OK);
    struct wire_msg m;
    ASSERT_EQ_INT(wire_msg_init(&m), 0);
    parse_frame(&m, &b);
    for (long n = 0; n < 5; n++) {
        skiff_error e = SKIFF_ERROR_INIT;
        mem_fail_after(n);
        wire_get_error(&m, &e);
        mem_fail_after(-1);
        ASSERT_EQ_INT(e.code, SKIFF_ERR_AUTH);
        skiff_error_clear(&e);
    }
    wire_msg_deinit(&m);
    buf_deinit(&b);
}

/* A client's frame holds at most one object per WIRE_BYTES_PER_OBJECT bytes beyond
 * WIRE_OBJECTS_FREE when the reader sets a budget; a count that lies is refused either way; a
 * container's frame at most objects_max objects. */
TEST(object_budget)
{
    size_t n = 3 * WIRE_OBJECTS_FREE;
    struct buf b;
    buf_init(&b, 0);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, codec_buf_write);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "op", 2);
    msgpack_pack_int(&pk, 12);
    msgpack_pack_str_with_body(&pk, "x", 1);
    msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_nil(&pk);
    struct wire_msg m;
    ASSERT_EQ_INT(wire_msg_init(&m), 0);
    ASSERT_EQ_INT(wire_msg_parse(&m, b.data, b.len), 0);
    m.budget = true;
    ASSERT_EQ_INT(wire_msg_parse(&m, b.data, b.len), -2);
    m.budget = false;
    ASSERT_EQ_INT(wire_msg_parse(&m, "\x82\xa2op\x0c\xa1x\xdd\xff\xff\xff\xff", 11), -1);
    /* A container's cap counts objects whatever the length: n + 5 of them here. */
    m.objects_max = n + 5;
    ASSERT_EQ_INT(wire_msg_parse(&m, b.data, b.len), 0);
    m.objects_max = n + 4;
    ASSERT_EQ_INT(wire_msg_parse(&m, b.data, b.len), -2);
    wire_msg_deinit(&m);
    buf_deinit(&b);
}
