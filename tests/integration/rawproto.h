/*
 * rawproto.h - a bare protocol client for integration tests that check the server's side of
 * docs/protocol.md frame by frame: connect, HELLO with the test HOME's token, send a request
 * built with src/common/wire.h, read frames back (with a deadline). It knows nothing of
 * libskiff, so a test can send exactly what it wants, including what libskiff never would.
 * Include after itest.h; link with the common objects (the Makefile does for itest_*raw*).
 */
#ifndef SKIFF_TESTS_RAWPROTO_H
#define SKIFF_TESTS_RAWPROTO_H

#include "common/buf.h"
#include "common/codec.h"
#include "common/config.h"
#include "common/id.h"
#include "common/proto.h"
#include "common/wire.h"

struct raw {
    int fd;
    struct buf in;       /* received bytes; frames start at 0 */
    struct buf out;      /* the request being built */
    struct wire_msg msg; /* the last frame read */
    size_t msg_len;      /* its size in `in`, consumed by the next read */
    uint64_t next_rid;
};

/* Sends everything built into r->out so far. */
static inline void raw_send(struct raw *r)
{
    size_t off = 0;
    while (off < r->out.len) {
        ssize_t n = send(r->fd, r->out.data + off, r->out.len - off, MSG_NOSIGNAL);
        ASSERT_GT_INT(n, 0);
        off += (size_t)n;
    }
    r->out.len = 0;
}

/* Connects to the server in use (itest_use: the file's, or the one started last) and sends
 * HELLO (rid 1: read its reply with raw_expect_ok). */
static inline void raw_open(struct raw *r)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->in, 0);
    buf_init(&r->out, 0);
    ASSERT_EQ_INT(wire_msg_init(&r->msg), 0);
    r->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int port = 0;
    const char *addr = getenv("SKIFF_SERVER");
    ASSERT_NOT_NULL(addr);
    ASSERT_EQ_INT(sscanf(addr, "127.0.0.1:%d", &port), 1);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ_INT(connect(r->fd, (struct sockaddr *)&a, sizeof a), 0);
    char path[ITEST_FILE];
    snprintf(path, sizeof path, "%s/.skiff.toml", getenv("HOME"));
    struct config cfg;
    ASSERT_EQ_INT(config_read(path, &cfg, NULL), 0);
    struct wire_writer w;
    wire_begin(&w, &r->out, OP_HELLO, ++r->next_rid, 2);
    wire_str(&w, "token_id", cfg.token_id);
    wire_str(&w, "token_secret", cfg.token_secret);
    ASSERT_EQ_INT(wire_end(&w), SKIFF_OK);
    raw_send(r);
}

static inline void raw_close(struct raw *r)
{
    close(r->fd);
    buf_deinit(&r->in);
    buf_deinit(&r->out);
    wire_msg_deinit(&r->msg);
}

/* Reads the next frame into r->msg (waiting at most seconds). False on timeout or end of
 * stream. */
static inline bool raw_read(struct raw *r, double seconds)
{
    if (r->msg_len) {
        buf_consume(&r->in, r->msg_len);
        r->msg_len = 0;
    }
    double deadline = unit_now() + itest_scale(seconds);
    for (;;) {
        long len = wire_frame_len(r->in.data, r->in.len, 1u << 30);
        ASSERT_GE_INT(len, 0);
        if (len > 0) {
            ASSERT_EQ_INT(wire_msg_parse(&r->msg, r->in.data + WIRE_HEADER, (size_t)len), 0);
            r->msg_len = WIRE_HEADER + (size_t)len;
            return true;
        }
        double left = deadline - unit_now();
        if (left <= 0)
            return false;
        struct pollfd p = {r->fd, POLLIN, 0};
        if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
            continue;
        ASSERT_EQ_INT(buf_reserve(&r->in, 65536), 0);
        ssize_t n = recv(r->fd, r->in.data + r->in.len, r->in.cap - r->in.len, 0);
        if (n <= 0)
            return false;
        r->in.len += (size_t)n;
    }
}

/* Reads the next frame and checks it is an OK for rid. */
static inline void raw_expect_ok(struct raw *r, uint64_t rid)
{
    if (!raw_read(r, 20))
        FAIL("no reply to request %llu", (unsigned long long)rid);
    if (r->msg.op == OP_ERROR) {
        skiff_error err = SKIFF_ERROR_INIT;
        wire_get_error(&r->msg, &err);
        FAIL("request %llu failed: %s: %s", (unsigned long long)rid, err.type, err.message);
    }
    ASSERT_EQ_INT(r->msg.op, OP_OK);
    ASSERT_EQ_INT((long long)r->msg.rid, (long long)rid);
}

/* Reads the next frame and checks it is an ERROR with code for rid; returns its message
 * (malloc'd). */
static inline char *raw_expect_error(struct raw *r, uint64_t rid, int code)
{
    if (!raw_read(r, 20))
        FAIL("no reply to request %llu", (unsigned long long)rid);
    ASSERT_EQ_INT(r->msg.op, OP_ERROR);
    ASSERT_EQ_INT((long long)r->msg.rid, (long long)rid);
    skiff_error err = SKIFF_ERROR_INIT;
    wire_get_error(&r->msg, &err);
    if ((int)err.code != code)
        FAIL("expected error code %d, got %d (%s: %s)", code, err.code, err.type, err.message);
    char *m = strdup(err.message);
    skiff_error_clear(&err);
    return m;
}

/* A string field of the last frame (copied into out). */
static inline void raw_str(struct raw *r, const char *key, char *out, size_t size)
{
    if (!wire_copy_str(&r->msg, key, out, size))
        FAIL("reply has no string field '%s'", key);
}

/* The msgpack [args, kwargs] payload of positional args given as JSON (an array). */
static inline void raw_args(const char *json_args, struct buf *out)
{
    skiff_value *args = itest_json(json_args);
    out->len = 0;
    ASSERT_EQ_INT(codec_encode_args(out, args, NULL), SKIFF_OK);
    skiff_value_free(args);
}

#endif
