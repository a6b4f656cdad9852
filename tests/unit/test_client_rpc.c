/*
 * test_client_rpc.c - unit tests of libskiff's client (src/client/rpc.c, function.c, ops.c)
 * against a scripted fake server running in a thread of the test process, on a unix socket.
 *
 * The fake speaks docs/protocol.md just enough: HELLO (with a configurable payload limit, or a
 * refusal), LOOKUP, CALL of a few built-in functions, GET, CANCEL, CALL_INFO and the admin ops.
 * Some functions misbehave on purpose: "slow" is answered late (after the next request, or
 * 30 ms later), so concurrent callers get their replies out of order; "garbage" gets a frame
 * that is not msgpack; "badvalue" a result that does not decode; "hangup" closes the connection.
 * It counts what it sees (HELLOs, CALLs by name or by id, the parent input, GET timeouts) so the
 * tests can check what went over the wire. It allocates only with malloc (never through mem.h),
 * so allocation-failure runs hit the client alone.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "client/client.h"
#include "client/ops.h"
#include "common/id.h"
#include "common/mem.h"
#include "common/proto.h"
#include "common/wire.h"
#include "unit.h"

#define TOKEN_ID "tk-01M8000000000000000000TEST"
#define TOKEN_SECRET "s3cret"
#define FN_ID "fu-01M80000000000000000000000" /* square's: fn_id(0) */
#define SPAWN_ID "fc-01M80000000000000000000001"
#define FAILED_ID "fc-01M80000000000000000000002"
#define UNKNOWN_ID "fc-01M80000000000000000000003"
#define MAX_DEFERRED 512

struct deferred {
    uint64_t rid;
    int fn; /* index in functions[] */
    int64_t value;
};

static struct fake {
    char path[108];
    char addr[128];
    int lfd;
    pthread_t thread;
    pthread_mutex_t mu;
    /* behaviour, set before connecting */
    int64_t payload_max;
    bool refuse;
    /* observations, under mu */
    int hellos, calls, by_name, by_id, deferred_total, cancels;
    char last_parent[64];
    int64_t last_timeout_ms;
    int conn_fd; /* the connection being served, or -1 */
    bool stop;
    /* the connection's state (server thread only) */
    struct deferred deferred[MAX_DEFERRED];
    int ndeferred;
} fk;

/* --- building replies (malloc only) ------------------------------------------------------- */

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void reply_begin(msgpack_sbuffer *sb, msgpack_packer *pk, int op, uint64_t rid, int n)
{
    msgpack_sbuffer_clear(sb);
    msgpack_sbuffer_write(sb, "\0\0\0\0", 4);
    msgpack_pack_map(pk, (size_t)n + 2);
    pk_str(pk, "op");
    msgpack_pack_int(pk, op);
    pk_str(pk, "rid");
    msgpack_pack_uint64(pk, rid);
}

static void send_raw(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return; /* the client went away: its problem */
        p += k;
        n -= (size_t)k;
    }
}

static void reply_send(int fd, msgpack_sbuffer *sb)
{
    size_t n = sb->size - 4;
    unsigned char *h = (unsigned char *)sb->data;
    h[0] = (unsigned char)(n >> 24);
    h[1] = (unsigned char)(n >> 16);
    h[2] = (unsigned char)(n >> 8);
    h[3] = (unsigned char)n;
    send_raw(fd, sb->data, sb->size);
}

static void reply_error(int fd, uint64_t rid, int code, const char *type, const char *msg,
                        const char *tb)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    reply_begin(&sb, &pk, OP_ERROR, rid, tb ? 4 : 3);
    pk_str(&pk, "code");
    msgpack_pack_int(&pk, code);
    pk_str(&pk, "type");
    pk_str(&pk, type);
    pk_str(&pk, "message");
    pk_str(&pk, msg);
    if (tb) {
        pk_str(&pk, "traceback");
        pk_str(&pk, tb);
    }
    reply_send(fd, &sb);
    msgpack_sbuffer_destroy(&sb);
}

/* OK for a CALL or GET: call_id, function_id and value (the msgpack int v, or raw bytes). */
static void reply_value(int fd, uint64_t rid, const char *fid, int64_t v, const char *raw,
                        size_t rawn)
{
    msgpack_sbuffer sb, val;
    msgpack_sbuffer_init(&sb);
    msgpack_sbuffer_init(&val);
    msgpack_packer pk, vpk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_packer_init(&vpk, &val, msgpack_sbuffer_write);
    if (!raw) {
        msgpack_pack_int64(&vpk, v);
        raw = val.data;
        rawn = val.size;
    }
    reply_begin(&sb, &pk, OP_OK, rid, 3);
    pk_str(&pk, "call_id");
    pk_str(&pk, SPAWN_ID);
    pk_str(&pk, "function_id");
    pk_str(&pk, fid);
    pk_str(&pk, "value");
    msgpack_pack_bin_with_body(&pk, raw, rawn);
    reply_send(fd, &sb);
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&val);
}

/* OK with string fields given as key, value, ..., NULL. */
static void reply_strs(int fd, uint64_t rid, ...)
{
    const char *kv[16];
    int n = 0;
    va_list ap;
    va_start(ap, rid);
    while (n < 16 && (kv[n] = va_arg(ap, const char *)))
        n++;
    va_end(ap);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    reply_begin(&sb, &pk, OP_OK, rid, n / 2);
    for (int i = 0; i + 1 < n; i += 2) {
        pk_str(&pk, kv[i]);
        pk_str(&pk, kv[i + 1]);
    }
    reply_send(fd, &sb);
    msgpack_sbuffer_destroy(&sb);
}

/* --- serving -------------------------------------------------------------------------------- */

static bool field_is(const msgpack_object *root, const char *key, const char *want)
{
    const msgpack_object *o = wire_obj_get(root, key);
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(want) &&
           !memcmp(o->via.str.ptr, want, o->via.str.size);
}

/* Copies string field key into out ("" if absent). */
static void field_copy(const msgpack_object *root, const char *key, char *out, size_t size)
{
    const msgpack_object *o = wire_obj_get(root, key);
    out[0] = '\0';
    if (o && o->type == MSGPACK_OBJECT_STR && o->via.str.size < size) {
        memcpy(out, o->via.str.ptr, o->via.str.size);
        out[o->via.str.size] = '\0';
    }
}

static int64_t field_int(const msgpack_object *root, const char *key)
{
    const msgpack_object *o = wire_obj_get(root, key);
    if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (int64_t)o->via.u64;
    if (o && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return o->via.i64;
    return INT64_MIN;
}

/* The first positional argument of a CALL as an int (0 if none). */
static int64_t first_arg(const msgpack_object *root)
{
    const msgpack_object *a = wire_obj_get(root, "args");
    if (!a || a->type != MSGPACK_OBJECT_BIN)
        return 0;
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    msgpack_object o;
    size_t off = 0;
    int64_t v = 0;
    if (msgpack_unpack(a->via.bin.ptr, a->via.bin.size, &off, &z, &o) == MSGPACK_UNPACK_SUCCESS &&
        o.type == MSGPACK_OBJECT_ARRAY && o.via.array.size == 2 &&
        o.via.array.ptr[0].type == MSGPACK_OBJECT_ARRAY && o.via.array.ptr[0].via.array.size > 0) {
        const msgpack_object *x = &o.via.array.ptr[0].via.array.ptr[0];
        if (x->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            v = (int64_t)x->via.u64;
        else if (x->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            v = x->via.i64;
    }
    msgpack_zone_destroy(&z);
    return v;
}

/* The fake's functions; function i has the id fn_id(i). */
static const char *const functions[] = {"square",  "slow",     "echo",   "fail",
                                        "garbage", "badvalue", "hangup", NULL};

static const char *fn_id(int i)
{
    static const char *const ids[] = {
        "fu-01M80000000000000000000000", "fu-01M80000000000000000000001",
        "fu-01M80000000000000000000002", "fu-01M80000000000000000000003",
        "fu-01M80000000000000000000004", "fu-01M80000000000000000000005",
        "fu-01M80000000000000000000006"};
    return ids[i];
}

/* The index of the function a request names (by app + function or by function_id), or -1. */
static int find_function(const msgpack_object *root, bool *by_id)
{
    *by_id = false;
    for (int i = 0; functions[i]; i++) {
        if (field_is(root, "function_id", fn_id(i))) {
            *by_id = true;
            return i;
        }
        if (field_is(root, "app", "app") && field_is(root, "function", functions[i]))
            return i;
    }
    return -1;
}

static void flush_deferred(int fd)
{
    for (int i = 0; i < fk.ndeferred; i++)
        reply_value(fd, fk.deferred[i].rid, fn_id(fk.deferred[i].fn),
                    fk.deferred[i].value * fk.deferred[i].value, NULL, 0);
    fk.ndeferred = 0;
}

static void not_found(int fd, uint64_t rid, const msgpack_object *root)
{
    char app[64], fn[64], msg[256];
    field_copy(root, "app", app, sizeof app);
    field_copy(root, "function", fn, sizeof fn);
    snprintf(msg, sizeof msg, "Lookup failed for Function '%s' from the '%s' app", fn, app);
    reply_error(fd, rid, SKIFF_ERR_NOT_FOUND, "NotFoundError", msg, NULL);
}

/* Handles CALL. Returns false when the connection is to be closed. */
static bool serve_call(int fd, uint64_t rid, const msgpack_object *root)
{
    bool by_id;
    int idx = find_function(root, &by_id);
    pthread_mutex_lock(&fk.mu);
    fk.calls++;
    if (by_id)
        fk.by_id++;
    else
        fk.by_name++;
    field_copy(root, "parent_input_id", fk.last_parent, sizeof fk.last_parent);
    pthread_mutex_unlock(&fk.mu);
    if (idx < 0) {
        not_found(fd, rid, root);
        return true;
    }
    const char *fname = functions[idx];
    const msgpack_object *sp = wire_obj_get(root, "spawn");
    int64_t x = first_arg(root);
    if (sp && sp->type == MSGPACK_OBJECT_BOOLEAN && sp->via.boolean) {
        reply_strs(fd, rid, "call_id", !strcmp(fname, "fail") ? FAILED_ID : SPAWN_ID, "function_id",
                   fn_id(idx), NULL);
        return true;
    }
    if (!strcmp(fname, "garbage")) {
        send_raw(fd, "\0\0\0\2\xc1\xc1", 6);
        return true;
    }
    if (!strcmp(fname, "hangup"))
        return false;
    if (!strcmp(fname, "badvalue")) {
        reply_value(fd, rid, fn_id(idx), 0, "\xc1", 1);
        return true;
    }
    if (!strcmp(fname, "fail")) {
        reply_error(fd, rid, SKIFF_ERR_USER, "ValueError", "x must be positive",
                    "app.c:12 in fail\napp.c:30 in check");
        return true;
    }
    if (!strcmp(fname, "echo")) { /* the [args, kwargs] payload is itself a value */
        const msgpack_object *a = wire_obj_get(root, "args");
        reply_value(fd, rid, fn_id(idx), 0, a->via.bin.ptr, a->via.bin.size);
        return true;
    }
    if (!strcmp(fname, "slow") && fk.ndeferred < MAX_DEFERRED) {
        /* Answered after the reply to the next request, or 30 ms later: out of order. */
        fk.deferred[fk.ndeferred].rid = rid;
        fk.deferred[fk.ndeferred].fn = idx;
        fk.deferred[fk.ndeferred].value = x;
        fk.ndeferred++;
        pthread_mutex_lock(&fk.mu);
        fk.deferred_total++;
        pthread_mutex_unlock(&fk.mu);
        return true;
    }
    reply_value(fd, rid, fn_id(idx), x * x, NULL, 0);
    return true;
}

static void serve_get(int fd, uint64_t rid, const msgpack_object *root)
{
    int64_t t = field_int(root, "timeout_ms");
    pthread_mutex_lock(&fk.mu);
    fk.last_timeout_ms = t;
    pthread_mutex_unlock(&fk.mu);
    if (field_is(root, "call_id", FAILED_ID))
        reply_error(fd, rid, SKIFF_ERR_USER, "ValueError", "x must be positive", NULL);
    else if (!field_is(root, "call_id", SPAWN_ID))
        reply_error(fd, rid, SKIFF_ERR_NOT_FOUND, "NotFoundError", "no such call", NULL);
    else if (t == 0)
        reply_error(fd, rid, SKIFF_ERR_TIMEOUT, "TimeoutError", "has not finished yet", NULL);
    else
        reply_value(fd, rid, FN_ID, 1234, NULL, 0);
}

/* Handles one request frame. Returns false to close the connection. */
static bool serve_frame(int fd, bool *authed, const msgpack_object *root)
{
    int64_t op = field_int(root, "op");
    uint64_t rid = (uint64_t)field_int(root, "rid");
    if (!*authed) {
        if (op != OP_HELLO || fk.refuse || !field_is(root, "token_id", TOKEN_ID) ||
            !field_is(root, "token_secret", TOKEN_SECRET)) {
            reply_error(fd, rid, SKIFF_ERR_AUTH, "AuthError", "token refused by the fake", NULL);
            return false;
        }
        *authed = true;
        pthread_mutex_lock(&fk.mu);
        fk.hellos++;
        pthread_mutex_unlock(&fk.mu);
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        reply_begin(&sb, &pk, OP_OK, rid, 3);
        pk_str(&pk, "server");
        pk_str(&pk, "fake");
        pk_str(&pk, "version");
        msgpack_pack_int(&pk, PROTO_VERSION);
        pk_str(&pk, "payload_max");
        msgpack_pack_int64(&pk, fk.payload_max);
        reply_send(fd, &sb);
        msgpack_sbuffer_destroy(&sb);
        return true;
    }
    switch (op) {
    case OP_LOOKUP: {
        bool by_id;
        int idx = find_function(root, &by_id);
        if (idx >= 0 && !by_id)
            reply_strs(fd, rid, "app_id", "ap-01M80000000000000000000001", "function_id",
                       fn_id(idx), NULL);
        else
            not_found(fd, rid, root);
        return true;
    }
    case OP_CALL:
        return serve_call(fd, rid, root);
    case OP_GET:
        serve_get(fd, rid, root);
        return true;
    case OP_CANCEL:
        pthread_mutex_lock(&fk.mu);
        fk.cancels++;
        pthread_mutex_unlock(&fk.mu);
        reply_strs(fd, rid, NULL);
        return true;
    case OP_CALL_INFO:
        if (field_is(root, "call_id", SPAWN_ID) || field_is(root, "call_id", FAILED_ID))
            reply_strs(fd, rid, "call_id", SPAWN_ID, "status", "running", "app", "app", NULL);
        else
            reply_error(fd, rid, SKIFF_ERR_NOT_FOUND, "NotFoundError", "no such call", NULL);
        return true;
    case OP_TOKEN_NEW:
        reply_strs(fd, rid, "token_id", "tk-new", "token_secret", "sec", NULL);
        return true;
    case OP_DEPLOY: {
        char app[64];
        field_copy(root, "app", app, sizeof app);
        const msgpack_object *fns = wire_obj_get(root, "functions");
        const msgpack_object *code = wire_obj_get(root, "code");
        char n[32];
        snprintf(n, sizeof n, "%u/%u", fns ? fns->via.array.size : 0,
                 code ? code->via.bin.size : 0);
        reply_strs(fd, rid, "app", app, "seen", n, NULL);
        return true;
    }
    default:
        reply_error(fd, rid, SKIFF_ERR_INVALID, "InvalidError", "unknown operation", NULL);
        return true;
    }
}

static void serve_conn(int fd)
{
    size_t cap = 1 << 16, len = 0;
    char *in = malloc(cap);
    bool authed = false, open = true;
    while (open) {
        long n;
        while ((n = wire_frame_len(in, len, 1u << 30)) > 0 && open) {
            msgpack_zone z;
            msgpack_zone_init(&z, 4096);
            msgpack_object root;
            size_t off = 0;
            if (msgpack_unpack(in + 4, (size_t)n, &off, &z, &root) != MSGPACK_UNPACK_SUCCESS)
                open = false;
            else
                open = serve_frame(fd, &authed, &root);
            msgpack_zone_destroy(&z);
            memmove(in, in + 4 + n, len - 4 - (size_t)n);
            len -= 4 + (size_t)n;
            flush_deferred(fd); /* anything deferred goes after this reply */
        }
        if (!open || n < 0)
            break;
        if (len >= 4) { /* room for the whole frame being received */
            const unsigned char *h = (const unsigned char *)in;
            size_t need = 4 + ((size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3]);
            if (need + 4096 > cap) {
                cap = need + 4096;
                in = realloc(in, cap);
            }
        }
        struct pollfd p = {fd, POLLIN, 0};
        int k = poll(&p, 1, 30);
        if (k == 0) {
            flush_deferred(fd);
            continue;
        }
        ssize_t got = recv(fd, in + len, cap - len, 0);
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    fk.ndeferred = 0;
    free(in);
}

static void *serve(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(fk.lfd, NULL, NULL);
        pthread_mutex_lock(&fk.mu);
        bool stop = fk.stop;
        if (fd >= 0 && !stop)
            fk.conn_fd = fd;
        pthread_mutex_unlock(&fk.mu);
        if (stop || fd < 0) {
            if (fd >= 0)
                close(fd);
            if (stop || (errno != EINTR && errno != ECONNABORTED))
                return NULL;
            continue;
        }
        serve_conn(fd);
        pthread_mutex_lock(&fk.mu);
        fk.conn_fd = -1;
        close(fd);
        pthread_mutex_unlock(&fk.mu);
    }
}

/* Starts the fake on a fresh socket and points the environment (and an empty HOME) at it. */
static void fake_start(int64_t payload_max)
{
    memset(&fk, 0, sizeof fk);
    pthread_mutex_init(&fk.mu, NULL);
    fk.payload_max = payload_max;
    fk.conn_fd = -1;
    const char *tmp = getenv("TMPDIR");
    char home[90];
    snprintf(home, sizeof home, "%s/rpc-home-XXXXXX", tmp && strlen(tmp) < 60 ? tmp : "/tmp");
    ASSERT_NOT_NULL(mkdtemp(home));
    setenv("HOME", home, 1);
    snprintf(fk.path, sizeof fk.path, "%s/s", home);
    snprintf(fk.addr, sizeof fk.addr, "unix:%s", fk.path);
    fk.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {0};
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", fk.path);
    ASSERT_EQ_INT(bind(fk.lfd, (struct sockaddr *)&sun, sizeof sun), 0);
    ASSERT_EQ_INT(listen(fk.lfd, 8), 0);
    setenv("SKIFF_SERVER", fk.addr, 1);
    setenv("SKIFF_TOKEN_ID", TOKEN_ID, 1);
    setenv("SKIFF_TOKEN_SECRET", TOKEN_SECRET, 1);
    ASSERT_EQ_INT(pthread_create(&fk.thread, NULL, serve, NULL), 0);
}

static void fake_stop(void)
{
    pthread_mutex_lock(&fk.mu);
    fk.stop = true;
    if (fk.conn_fd >= 0)
        shutdown(fk.conn_fd, SHUT_RDWR);
    pthread_mutex_unlock(&fk.mu);
    shutdown(fk.lfd, SHUT_RDWR);
    pthread_join(fk.thread, NULL);
    close(fk.lfd);
    unlink(fk.path);
}

/* Closes the connection being served, from the server's side (as a restarted server would). */
static void fake_kick(void)
{
    pthread_mutex_lock(&fk.mu);
    if (fk.conn_fd >= 0)
        shutdown(fk.conn_fd, SHUT_RDWR);
    pthread_mutex_unlock(&fk.mu);
    for (int i = 0; i < 200; i++) { /* wait until the server thread has let it go */
        pthread_mutex_lock(&fk.mu);
        int fd = fk.conn_fd;
        pthread_mutex_unlock(&fk.mu);
        if (fd < 0)
            return;
        usleep(5000);
    }
    FAIL("the fake server did not drop its connection");
}

static int observed(const int *counter)
{
    pthread_mutex_lock(&fk.mu);
    int v = *counter;
    pthread_mutex_unlock(&fk.mu);
    return v;
}

/* The parent_input_id of the last CALL ("" if none), copied into out. */
static const char *parent_seen(char out[64])
{
    pthread_mutex_lock(&fk.mu);
    memcpy(out, fk.last_parent, 64);
    pthread_mutex_unlock(&fk.mu);
    return out;
}

static int64_t timeout_seen(void)
{
    pthread_mutex_lock(&fk.mu);
    int64_t v = fk.last_timeout_ms;
    pthread_mutex_unlock(&fk.mu);
    return v;
}

/* --- helpers ---------------------------------------------------------------------------------- */

static skiff_client *connect_ok(void)
{
    skiff_client *c = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    if (skiff_client_connect(NULL, &c, &err) != SKIFF_OK)
        FAIL("connect: %s: %s", err.type, err.message);
    return c;
}

static skiff_function *fn_ok(skiff_client *c, const char *name)
{
    skiff_function *fn = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(skiff_function_from_name(c, "app", name, &fn, &err), SKIFF_OK);
    return fn;
}

/* fn(x) through remote; returns the code, the int result in *out. */
static int call_int(skiff_function *fn, int64_t x, int64_t *out, skiff_error *err)
{
    skiff_value *args = skiff_value_list_of(1, skiff_value_int(x)), *r = NULL;
    int rc = skiff_function_remote(fn, args, NULL, &r, err);
    if (rc == SKIFF_OK)
        *out = skiff_value_get_int(r);
    skiff_value_free(args);
    skiff_value_free(r);
    return rc;
}

static void expect_square(skiff_function *fn, int64_t x)
{
    int64_t got = 0;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc = call_int(fn, x, &got, &err);
    if (rc != SKIFF_OK)
        FAIL("remote(%lld): %s: %s", (long long)x, err.type, err.message);
    ASSERT_EQ_INT(got, x * x);
}

/* --- tests ------------------------------------------------------------------------------------ */

TEST(lazy_function_hydrates_on_first_call)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    ASSERT_EQ_INT(observed(&fk.hellos), 1);
    skiff_function *fn = fn_ok(c, "square");
    ASSERT_NULL(skiff_function_id(fn)); /* lazy: nothing asked yet */
    ASSERT_EQ_INT(observed(&fk.calls), 0);
    expect_square(fn, 7);
    ASSERT_EQ_INT(observed(&fk.by_name), 1);
    ASSERT_EQ_STR(skiff_function_id(fn), FN_ID); /* cached from the reply */
    expect_square(fn, 9);
    ASSERT_EQ_INT(observed(&fk.by_id), 1);
    ASSERT_EQ_INT(observed(&fk.hellos), 1);
    skiff_function_free(fn);
    skiff_client_close(c);
    fake_stop();
}

TEST(fake_ids_are_well_formed)
{
    for (int i = 0; functions[i]; i++)
        ASSERT_TRUE(id_valid(fn_id(i), "fu"));
    ASSERT_TRUE(id_valid(SPAWN_ID, "fc"));
    ASSERT_TRUE(id_valid(FAILED_ID, "fc"));
    ASSERT_TRUE(id_valid(UNKNOWN_ID, "fc"));
}

TEST(arguments_and_result_round_trip)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *fn = fn_ok(c, "echo");
    skiff_value *args = NULL, *kwargs = NULL, *r = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    const char *a = "[1, -2.5, \"s\", null, true, {\"$bytes\": \"AAE=\"}, [[]], {\"k\": {}}]";
    const char *k = "{\"named\": \"v\", \"n\": 9223372036854775807}";
    ASSERT_EQ_INT(skiff_value_from_json(a, strlen(a), &args, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_value_from_json(k, strlen(k), &kwargs, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_function_remote(fn, args, kwargs, &r, &err), SKIFF_OK);
    ASSERT_EQ_UINT(skiff_list_len(r), 2);
    ASSERT_TRUE(skiff_value_equal(skiff_list_get(r, 0), args));
    ASSERT_TRUE(skiff_value_equal(skiff_list_get(r, 1), kwargs));
    skiff_value_free(r);
    /* Megabytes each way: frames that take many reads. */
    size_t big = 3u << 20;
    char *blob = malloc(big);
    for (size_t i = 0; i < big; i++)
        blob[i] = (char)(i * 31);
    skiff_value *bargs = skiff_value_list_of(1, skiff_value_bytes(blob, big));
    ASSERT_EQ_INT(skiff_function_remote(fn, bargs, NULL, &r, &err), SKIFF_OK);
    size_t got = 0;
    const char *back = skiff_value_get_bytes(skiff_list_get(skiff_list_get(r, 0), 0), &got);
    ASSERT_EQ_UINT(got, big);
    ASSERT(memcmp(back, blob, big) == 0);
    skiff_value_free(r);
    skiff_value_free(bargs);
    free(blob);
    /* No arguments at all: an empty list and an empty map. */
    ASSERT_EQ_INT(skiff_function_remote(fn, NULL, NULL, &r, &err), SKIFF_OK);
    char *json = skiff_value_to_json(r);
    ASSERT_EQ_STR(json, "[[],{}]");
    free(json);
    skiff_value_free(r);
    skiff_value_free(args);
    skiff_value_free(kwargs);
    skiff_function_free(fn);
    skiff_client_close(c);
    fake_stop();
}

TEST(lookup_and_hydrate)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_function *fn = NULL;
    ASSERT_EQ_INT(skiff_function_lookup(c, "app", "square", &fn, &err), SKIFF_OK);
    ASSERT_EQ_STR(skiff_function_id(fn), FN_ID);
    expect_square(fn, 3);
    ASSERT_EQ_INT(observed(&fk.by_id), 1);
    skiff_function_free(fn);

    fn = NULL;
    ASSERT_EQ_INT(skiff_function_lookup(c, "app", "nope", &fn, &err), SKIFF_ERR_NOT_FOUND);
    ASSERT_NULL(fn);
    ASSERT_EQ_STR(err.type, "NotFoundError");
    ASSERT_STR_CONTAINS(err.message, "'nope'");
    ASSERT_STR_CONTAINS(err.message, "'app'");
    skiff_error_clear(&err);

    /* A lazy handle to a missing function fails at hydrate and at its first call. */
    fn = fn_ok(c, "missing");
    ASSERT_EQ_INT(skiff_function_hydrate(fn, &err), SKIFF_ERR_NOT_FOUND);
    ASSERT_STR_CONTAINS(err.message, "'missing' from the 'app' app");
    int64_t out;
    ASSERT_EQ_INT(call_int(fn, 1, &out, &err), SKIFF_ERR_NOT_FOUND);
    ASSERT_STR_CONTAINS(err.message, "'missing'");
    ASSERT_NULL(skiff_function_id(fn));
    skiff_error_clear(&err);
    skiff_function_free(fn);

    /* hydrate of a good lazy handle: one LOOKUP, then calls by id. */
    fn = fn_ok(c, "square");
    ASSERT_EQ_INT(skiff_function_hydrate(fn, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_function_hydrate(fn, &err), SKIFF_OK);
    ASSERT_EQ_STR(skiff_function_id(fn), FN_ID);
    skiff_function_free(fn);

    ASSERT_EQ_INT(skiff_function_from_name(c, "", "x", &fn, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    ASSERT_EQ_INT(skiff_function_from_name(c, "a", NULL, &fn, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    skiff_client_close(c);
    fake_stop();
}

TEST(auth_and_connection_errors)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = NULL;
    skiff_error err = SKIFF_ERROR_INIT;

    fk.refuse = true;
    ASSERT_EQ_INT(skiff_client_connect(NULL, &c, &err), SKIFF_ERR_AUTH);
    ASSERT_NULL(c);
    ASSERT_EQ_STR(err.type, "AuthError");
    ASSERT_STR_CONTAINS(err.message, "refused"); /* the server's own message */
    skiff_error_clear(&err);
    fk.refuse = false;

    /* No token anywhere: says where tokens come from, without connecting. */
    unsetenv("SKIFF_TOKEN_ID");
    unsetenv("SKIFF_TOKEN_SECRET");
    ASSERT_EQ_INT(skiff_client_connect(NULL, &c, &err), SKIFF_ERR_AUTH);
    ASSERT_STR_CONTAINS(err.message, "SKIFF_TOKEN_ID");
    ASSERT_STR_CONTAINS(err.message, "~/.skiff.toml");
    skiff_error_clear(&err);

    /* Options beat the environment. */
    skiff_client_options o = {0};
    o.token_id = TOKEN_ID;
    o.token_secret = TOKEN_SECRET;
    ASSERT_EQ_INT(skiff_client_connect(&o, &c, &err), SKIFF_OK);
    skiff_client_close(c);
    c = NULL;

    o.server = "not an address";
    ASSERT_EQ_INT(skiff_client_connect(&o, &c, &err), SKIFF_ERR_INVALID);
    ASSERT_STR_CONTAINS(err.message, "not an address");
    skiff_error_clear(&err);

    o.server = "unix:/nonexistent/skiff.sock";
    ASSERT_EQ_INT(skiff_client_connect(&o, &c, &err), SKIFF_ERR_CONNECTION);
    ASSERT_EQ_STR(err.type, "ConnectionError");
    ASSERT_STR_CONTAINS(err.message, "unix:/nonexistent/skiff.sock");
    skiff_error_clear(&err);

    o.server = fk.addr;
    o.connect_timeout = -1;
    ASSERT_EQ_INT(skiff_client_connect(&o, &c, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    ASSERT_EQ_INT(skiff_client_connect(&o, NULL, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    fake_stop();
}

TEST(config_file_and_malformed_config)
{
    fake_start(PROTO_PAYLOAD_MAX);
    unsetenv("SKIFF_SERVER");
    unsetenv("SKIFF_TOKEN_ID");
    unsetenv("SKIFF_TOKEN_SECRET");
    char path[512];
    snprintf(path, sizeof path, "%s/.skiff.toml", getenv("HOME"));
    FILE *f = fopen(path, "w");
    fprintf(f, "server = \"%s\"\ntoken_id = \"%s\"\ntoken_secret = \"%s\"\n", fk.addr, TOKEN_ID,
            TOKEN_SECRET);
    fclose(f);
    skiff_client *c = connect_ok();
    skiff_client_close(c);

    f = fopen(path, "w");
    fputs("server = \"x\"\nthis is not toml\n", f);
    fclose(f);
    skiff_error err = SKIFF_ERROR_INIT;
    c = NULL;
    ASSERT_EQ_INT(skiff_client_connect(NULL, &c, &err), SKIFF_ERR_INVALID);
    ASSERT_STR_CONTAINS(err.message, ".skiff.toml, line 2");
    skiff_error_clear(&err);
    /* Everything given in the environment: the broken file does not matter. */
    setenv("SKIFF_SERVER", fk.addr, 1);
    setenv("SKIFF_TOKEN_ID", TOKEN_ID, 1);
    setenv("SKIFF_TOKEN_SECRET", TOKEN_SECRET, 1);
    c = connect_ok();
    skiff_client_close(c);
    fake_stop();
}

TEST(request_size_checked_before_sending)
{
    fake_start(1024);
    skiff_client *c = connect_ok();
    skiff_function *fn = fn_ok(c, "square");
    char big[2000];
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    skiff_value *args = skiff_value_list_of(1, skiff_value_string(big)), *r = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(skiff_function_remote(fn, args, NULL, &r, &err), SKIFF_ERR_REQUEST_SIZE);
    ASSERT_NULL(r);
    ASSERT_EQ_STR(err.type, "RequestSizeError");
    ASSERT_STR_CONTAINS(err.message, "1024 bytes");
    ASSERT_STR_CONTAINS(err.message, "app.square");
    skiff_error_clear(&err);
    skiff_call *call = NULL;
    ASSERT_EQ_INT(skiff_function_spawn(fn, args, NULL, &call, &err), SKIFF_ERR_REQUEST_SIZE);
    ASSERT_NULL(call);
    skiff_error_clear(&err);
    ASSERT_EQ_INT(observed(&fk.calls), 0); /* nothing was sent */
    skiff_value_free(args);
    expect_square(fn, 5); /* the connection is fine */
    ASSERT_EQ_INT(observed(&fk.hellos), 1);
    skiff_function_free(fn);
    skiff_client_close(c);
    fake_stop();
}

TEST(bad_argument_shapes)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *fn = fn_ok(c, "square");
    skiff_value *notlist = skiff_value_int(1), *r = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(skiff_function_remote(fn, notlist, NULL, &r, &err), SKIFF_ERR_INVALID);
    ASSERT_STR_CONTAINS(err.message, "must be a list");
    skiff_error_clear(&err);
    ASSERT_EQ_INT(skiff_function_remote(fn, NULL, notlist, &r, &err), SKIFF_ERR_INVALID);
    ASSERT_STR_CONTAINS(err.message, "must be a map");
    skiff_error_clear(&err);
    ASSERT_EQ_INT(skiff_function_remote(fn, NULL, NULL, NULL, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    ASSERT_EQ_INT(observed(&fk.calls), 0);
    skiff_value_free(notlist);
    skiff_function_free(fn);
    skiff_client_close(c);
    fake_stop();
}

TEST(user_error_with_traceback)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *fn = fn_ok(c, "fail");
    skiff_error err = SKIFF_ERROR_INIT;
    int64_t out = 99;
    ASSERT_EQ_INT(call_int(fn, 1, &out, &err), SKIFF_ERR_USER);
    ASSERT_EQ_INT(out, 99);
    ASSERT_EQ_INT(err.code, SKIFF_ERR_USER);
    ASSERT_EQ_STR(err.type, "ValueError");
    ASSERT_EQ_STR(err.message, "x must be positive");
    ASSERT_EQ_STR(err.traceback, "app.c:12 in fail\napp.c:30 in check");
    skiff_error_clear(&err);
    /* A NULL err is allowed: the code alone comes back. */
    ASSERT_EQ_INT(call_int(fn, 1, &out, NULL), SKIFF_ERR_USER);
    skiff_function_free(fn);
    skiff_client_close(c);
    fake_stop();
}

TEST(garbage_frame_drops_connection)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *g = fn_ok(c, "garbage"), *sq = fn_ok(c, "square");
    skiff_error err = SKIFF_ERROR_INIT;
    int64_t out;
    ASSERT_EQ_INT(call_int(g, 1, &out, &err), SKIFF_ERR_DESERIALIZATION);
    ASSERT_STR_CONTAINS(err.message, "malformed frame");
    skiff_error_clear(&err);
    expect_square(sq, 4); /* a new connection */
    ASSERT_EQ_INT(observed(&fk.hellos), 2);
    skiff_function_free(g);
    skiff_function_free(sq);
    skiff_client_close(c);
    fake_stop();
}

TEST(undecodable_result_keeps_connection)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *b = fn_ok(c, "badvalue"), *sq = fn_ok(c, "square");
    skiff_error err = SKIFF_ERROR_INIT;
    int64_t out;
    ASSERT_EQ_INT(call_int(b, 1, &out, &err), SKIFF_ERR_DESERIALIZATION);
    skiff_error_clear(&err);
    expect_square(sq, 4);
    ASSERT_EQ_INT(observed(&fk.hellos), 1);
    skiff_function_free(b);
    skiff_function_free(sq);
    skiff_client_close(c);
    fake_stop();
}

TEST(lost_connection_then_reconnect)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *h = fn_ok(c, "hangup"), *sq = fn_ok(c, "square");
    skiff_error err = SKIFF_ERROR_INIT;
    int64_t out;
    ASSERT_EQ_INT(call_int(h, 1, &out, &err), SKIFF_ERR_CONNECTION);
    ASSERT_EQ_STR(err.type, "ConnectionError");
    ASSERT_STR_CONTAINS(err.message, fk.addr);
    skiff_error_clear(&err);
    expect_square(sq, 6);
    ASSERT_EQ_INT(observed(&fk.hellos), 2);

    /* The server drops an idle connection (a restart): the next call just works. (The client
     * checks connections idle for over 2 ms; a restart takes longer than that.) */
    fake_kick();
    usleep(10000);
    expect_square(sq, 7);
    ASSERT_EQ_INT(observed(&fk.hellos), 3);

    /* The server is gone: ConnectionError naming it; back again: calls work. */
    fake_stop();
    usleep(10000);
    ASSERT_EQ_INT(call_int(sq, 2, &out, &err), SKIFF_ERR_CONNECTION);
    ASSERT_STR_CONTAINS(err.message, "cannot connect");
    skiff_error_clear(&err);
    skiff_function_free(h);
    skiff_function_free(sq);
    skiff_client_close(c);
}

TEST(spawn_get_cancel)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *fn = fn_ok(c, "slow");
    skiff_value *args = skiff_value_list_of(1, skiff_value_int(3)), *r = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_call *call = NULL;
    ASSERT_EQ_INT(skiff_function_spawn(fn, args, NULL, &call, &err), SKIFF_OK);
    ASSERT_EQ_STR(skiff_call_id(call), SPAWN_ID);
    ASSERT_EQ_STR(skiff_function_id(fn), fn_id(1)); /* slow's, from the spawn's reply */

    ASSERT_EQ_INT(skiff_call_get(call, 0, &r, &err), SKIFF_ERR_TIMEOUT);
    ASSERT_NULL(r);
    ASSERT_EQ_INT(timeout_seen(), 0);
    skiff_error_clear(&err);
    ASSERT_EQ_INT(skiff_call_get(call, 1.5, &r, &err), SKIFF_OK);
    ASSERT_EQ_INT(timeout_seen(), 1500);
    ASSERT_EQ_INT(skiff_value_get_int(r), 1234);
    skiff_value_free(r);
    ASSERT_EQ_INT(skiff_call_get(call, 0.0001, &r, &err), SKIFF_OK); /* rounds up, not to 0 */
    ASSERT_EQ_INT(timeout_seen(), 1);
    skiff_value_free(r);
    ASSERT_EQ_INT(skiff_call_get(call, SKIFF_WAIT_FOREVER, &r, &err), SKIFF_OK);
    ASSERT_EQ_INT(timeout_seen(), -1);
    skiff_value_free(r);
    ASSERT_EQ_INT(skiff_call_get(call, 0.0 / 0.0, &r, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);

    ASSERT_EQ_INT(skiff_call_cancel(call, true, &err), SKIFF_OK);
    ASSERT_EQ_INT(observed(&fk.cancels), 1);
    skiff_call_free(call);

    /* Re-opened by id; malformed and unknown ids. */
    call = NULL;
    ASSERT_EQ_INT(skiff_call_from_id(c, SPAWN_ID, &call, &err), SKIFF_OK);
    ASSERT_EQ_STR(skiff_call_id(call), SPAWN_ID);
    skiff_call_free(call);
    call = NULL;
    ASSERT_EQ_INT(skiff_call_from_id(c, "fc-nope", &call, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    ASSERT_EQ_INT(skiff_call_from_id(c, FN_ID, &call, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    ASSERT_EQ_INT(skiff_call_from_id(c, UNKNOWN_ID, &call, &err), SKIFF_ERR_NOT_FOUND);
    ASSERT_NULL(call);
    skiff_error_clear(&err);

    skiff_value_free(args);
    skiff_function_free(fn);
    skiff_client_close(c);
    fake_stop();
}

TEST(gather_order_and_first_failure)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_call *ok1, *ok2, *bad;
    ASSERT_EQ_INT(skiff_call_from_id(c, SPAWN_ID, &ok1, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_call_from_id(c, SPAWN_ID, &ok2, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_call_from_id(c, FAILED_ID, &bad, &err), SKIFF_OK);
    skiff_value *res[3] = {NULL, NULL, NULL};
    skiff_call *good[2] = {ok1, ok2};
    ASSERT_EQ_INT(skiff_call_gather(good, 2, res, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_value_get_int(res[0]), 1234);
    ASSERT_EQ_INT(skiff_value_get_int(res[1]), 1234);
    skiff_value_free(res[0]);
    skiff_value_free(res[1]);
    res[0] = res[1] = NULL;
    skiff_call *mixed[3] = {ok1, bad, ok2};
    ASSERT_EQ_INT(skiff_call_gather(mixed, 3, res, &err), SKIFF_ERR_USER);
    ASSERT_EQ_STR(err.type, "ValueError");
    ASSERT_NULL(res[0]); /* nothing written */
    ASSERT_NULL(res[1]);
    ASSERT_NULL(res[2]);
    skiff_error_clear(&err);
    ASSERT_EQ_INT(skiff_call_gather(NULL, 0, NULL, &err), SKIFF_OK);
    skiff_call_free(ok1);
    skiff_call_free(ok2);
    skiff_call_free(bad);
    skiff_client_close(c);
    fake_stop();
}

TEST(parent_input_is_sent)
{
    char seen[64];
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *fn = fn_ok(c, "square");
    expect_square(fn, 2);
    ASSERT_EQ_STR(parent_seen(seen), "");
    client_set_parent_input("in-01M80000000000000000000009");
    ASSERT_EQ_STR(client_parent_input(), "in-01M80000000000000000000009");
    expect_square(fn, 2);
    ASSERT_EQ_STR(parent_seen(seen), "in-01M80000000000000000000009");
    client_set_parent_input(NULL);
    ASSERT_NULL(client_parent_input());
    expect_square(fn, 2);
    ASSERT_EQ_STR(parent_seen(seen), "");
    skiff_function_free(fn);
    skiff_client_close(c);
    fake_stop();
}

static void *parent_thread(void *arg)
{
    (void)arg;
    return (void *)client_parent_input(); /* another thread sees its own (none) */
}

TEST(parent_input_is_per_thread)
{
    client_set_parent_input("in-01M80000000000000000000009");
    pthread_t t;
    void *seen = (void *)1;
    pthread_create(&t, NULL, parent_thread, NULL);
    pthread_join(t, &seen);
    ASSERT_NULL(seen);
    client_set_parent_input(NULL);
}

/* --- threads -------------------------------------------------------------------------------- */

struct worker {
    skiff_function *square, *slow;
    int id;
    int failures;
    char first[256];
};

#define THREAD_CALLS 300

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < THREAD_CALLS; i++) {
        int64_t x = (int64_t)w->id * 100000 + i, got = 0;
        skiff_error err = SKIFF_ERROR_INIT;
        bool slow = i % 3 == 0;
        int rc = call_int(slow ? w->slow : w->square, x, &got, &err);
        if (rc != SKIFF_OK || got != x * x) {
            if (!w->failures++)
                snprintf(w->first, sizeof w->first, "call %d: rc %d (%s) got %lld want %lld", i, rc,
                         err.message ? err.message : "", (long long)got, (long long)(x * x));
        }
        skiff_error_clear(&err);
    }
    return NULL;
}

TEST(threads_share_a_client_with_out_of_order_replies)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    enum { N = 8 };
    struct worker w[N];
    pthread_t t[N];
    skiff_function *square = fn_ok(c, "square"), *slow = fn_ok(c, "slow");
    for (int i = 0; i < N; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].square = square;
        w[i].slow = slow;
        w[i].id = i + 1;
        ASSERT_EQ_INT(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++)
        if (w[i].failures)
            FAIL("thread %d: %d failures, first: %s", i, w[i].failures, w[i].first);
    ASSERT_GT_INT(observed(&fk.deferred_total), 0); /* replies really came out of order */
    ASSERT_EQ_INT(observed(&fk.hellos), 1);
    ASSERT_EQ_INT(observed(&fk.calls), N * THREAD_CALLS);
    skiff_function_free(square);
    skiff_function_free(slow);
    skiff_client_close(c);
    fake_stop();
}

struct hang_arg {
    skiff_function *slow;
    int rc;
};

static void *hang_run(void *arg)
{
    struct hang_arg *h = arg;
    int64_t got;
    skiff_error err = SKIFF_ERROR_INIT;
    h->rc = call_int(h->slow, 5, &got, &err);
    skiff_error_clear(&err);
    return NULL;
}

TEST(lost_connection_fails_every_waiter)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *slow = fn_ok(c, "slow"), *hang = fn_ok(c, "hangup");
    enum { N = 6 };
    struct hang_arg a[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        a[i].slow = slow;
        a[i].rc = -1;
        pthread_create(&t[i], NULL, hang_run, &a[i]);
    }
    /* Whichever calls are still waiting when the server hangs up fail; none hangs. */
    int64_t got;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(call_int(hang, 1, &got, &err), SKIFF_ERR_CONNECTION);
    skiff_error_clear(&err);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        if (a[i].rc != SKIFF_OK && a[i].rc != SKIFF_ERR_CONNECTION)
            FAIL("waiter %d ended with %d", i, a[i].rc);
    }
    expect_square(slow, 8); /* "slow" squares too, a little later */
    skiff_function_free(slow);
    skiff_function_free(hang);
    skiff_client_close(c);
    fake_stop();
}

/* --- ops.h ------------------------------------------------------------------------------------ */

TEST(ops_requests)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *reply = NULL;
    ASSERT_EQ_INT(client_token_new(c, &reply, &err), SKIFF_OK);
    ASSERT_EQ_STR(skiff_value_get_string(skiff_map_get(reply, "token_id"), NULL), "tk-new");
    ASSERT_NULL(skiff_map_get(reply, "op")); /* only the reply's own fields */
    ASSERT_NULL(skiff_map_get(reply, "rid"));
    skiff_value_free(reply);

    skiff_value *fns = NULL;
    const char *defs = "[{\"name\": \"a\"}, {\"name\": \"b\", \"timeout\": 2.5}]";
    ASSERT_EQ_INT(skiff_value_from_json(defs, strlen(defs), &fns, &err), SKIFF_OK);
    ASSERT_EQ_INT(client_deploy(c, "myapp",
                                "\x7f"
                                "ELF",
                                4, fns, NULL, &reply, &err),
                  SKIFF_OK);
    ASSERT_EQ_STR(skiff_value_get_string(skiff_map_get(reply, "app"), NULL), "myapp");
    ASSERT_EQ_STR(skiff_value_get_string(skiff_map_get(reply, "seen"), NULL), "2/4");
    skiff_value_free(reply);
    reply = NULL;
    ASSERT_EQ_INT(client_deploy(c, "myapp", "", 0, fns, NULL, &reply, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    ASSERT_EQ_INT(client_deploy(c, "myapp", "x", 1, NULL, NULL, &reply, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    ASSERT_NULL(reply);
    skiff_value_free(fns);

    ASSERT_EQ_INT(client_call_info(c, SPAWN_ID, &reply, &err), SKIFF_OK);
    ASSERT_EQ_STR(skiff_value_get_string(skiff_map_get(reply, "status"), NULL), "running");
    skiff_value_free(reply);
    reply = NULL;
    ASSERT_EQ_INT(client_call_info(c, "fc-bad", &reply, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    ASSERT_EQ_INT(client_call_info(c, UNKNOWN_ID, &reply, &err), SKIFF_ERR_NOT_FOUND);
    skiff_error_clear(&err);
    /* The fake does not know APP_LIST: the server's error comes through as is. */
    ASSERT_EQ_INT(client_app_list(c, &reply, &err), SKIFF_ERR_INVALID);
    ASSERT_EQ_STR(err.message, "unknown operation");
    ASSERT_NULL(reply);
    skiff_error_clear(&err);
    skiff_client_close(c);
    fake_stop();
}

/* --- allocation failures -------------------------------------------------------------------- */

TEST(out_of_memory_never_crashes)
{
    /* Fails the 0th, 1st, ... allocation of connect + remote until one run gets through: every
     * earlier run must fail cleanly (and, under the sanitizers, without a leak). */
    fake_start(PROTO_PAYLOAD_MAX);
    int rc = -1;
    long n;
    for (n = 0; n < 1000 && rc != SKIFF_OK; n++) {
        skiff_client *c = NULL;
        skiff_function *fn = NULL;
        skiff_value *args = skiff_value_list_of(1, skiff_value_int(3)), *r = NULL;
        skiff_error err = SKIFF_ERROR_INIT;
        mem_fail_after(n);
        rc = skiff_client_connect(NULL, &c, &err);
        if (rc == SKIFF_OK)
            rc = skiff_function_from_name(c, "app", "square", &fn, &err);
        if (rc == SKIFF_OK)
            rc = skiff_function_remote(fn, args, NULL, &r, &err);
        mem_fail_after(-1);
        if (rc == SKIFF_OK)
            ASSERT_EQ_INT(skiff_value_get_int(r), 9);
        else if (rc != SKIFF_ERR_NOMEM)
            FAIL("allocation %ld failing gave %s: %s", n, skiff_code_name(rc), err.message);
        skiff_error_clear(&err);
        skiff_value_free(r);
        skiff_value_free(args);
        skiff_function_free(fn);
        skiff_client_close(c);
    }
    ASSERT_EQ_INT(rc, SKIFF_OK);
    ASSERT_GT_INT(n, 3);
    fake_stop();
}
