/*
 * test_client_async.c - unit tests of libskiff's asynchronous API (src/client/async.c) against a
 * scripted fake server running in a thread of the test process, on a unix socket.
 *
 * The fake speaks docs/protocol.md just enough for the one-shot requests: HELLO, LOOKUP, CALL
 * (remote, spawn, generator), GET, CANCEL and STATS. Functions of app "app": square(x) answers
 * x*x at once; slow(x) answers x*x only once the test releases it (fake_release), so a test can
 * hold calls in flight; fail raises a ValueError with a traceback; hangup closes the connection;
 * counter(n) streams items 0, 10, ... 10*(n-1). Spawned calls: square's call answers GET with 49,
 * fail's with its ValueError, slow's GET waits (timeout_ms 0: TimeoutError) until CANCEL of that
 * call answers it with CancelledError. One map per connection: its inputs are squared (failing
 * when x % 7 == 3) and their outputs sent newest first after each request. It records the
 * parent_input_id of the last CALL and allocates only with malloc, so allocation-failure runs hit
 * the client alone.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <uv.h>

#include "client/client.h"
#include "client/fn.h"
#include "common/mem.h"
#include "common/proto.h"
#include "common/wire.h"
#include "unit.h"

#define TOKEN_ID "tk-01M8000000000000000000TEST"
#define TOKEN_SECRET "s3cret"
#define FN_ID "fu-01M80000000000000000000000"
#define SQUARE_CALL "fc-01M80000000000000000000001"
#define FAIL_CALL "fc-01M80000000000000000000002"
#define SLOW_CALL "fc-01M80000000000000000000003"
#define MAP_CALL "fc-01M80000000000000000000004"
#define MAX_HELD 4096

/* A request the fake answers later: a slow CALL (value x*x) or a GET of SLOW_CALL (cancel). */
struct held {
    uint64_t rid;
    int64_t x;
    bool get;
};

static struct fake {
    char path[108];
    int lfd;
    pthread_t thread;
    pthread_mutex_t mu;
    /* under mu */
    bool release; /* answer the slow CALLs now */
    bool stop;
    int conn_fd;
    int calls;
    char last_parent[64];
    /* server thread only */
    struct held held[MAX_HELD];
    int nheld;
} fk;

/* --- replies (malloc only) -------------------------------------------------------------------- */

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void begin(msgpack_sbuffer *sb, msgpack_packer *pk, int op, uint64_t rid, int n)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
    msgpack_sbuffer_write(sb, "\0\0\0\0", 4);
    msgpack_pack_map(pk, (size_t)n + 2);
    pk_str(pk, "op");
    msgpack_pack_int(pk, op);
    pk_str(pk, "rid");
    msgpack_pack_uint64(pk, rid);
}

static void finish(int fd, msgpack_sbuffer *sb)
{
    size_t n = sb->size - 4;
    unsigned char *h = (unsigned char *)sb->data;
    h[0] = (unsigned char)(n >> 24);
    h[1] = (unsigned char)(n >> 16);
    h[2] = (unsigned char)(n >> 8);
    h[3] = (unsigned char)n;
    const char *p = sb->data;
    size_t left = sb->size;
    while (left > 0) {
        ssize_t k = send(fd, p, left, MSG_NOSIGNAL);
        if (k <= 0)
            break; /* the client went away: its problem */
        p += k;
        left -= (size_t)k;
    }
    msgpack_sbuffer_destroy(sb);
}

static void reply_error(int fd, uint64_t rid, int code, const char *type, const char *msg,
                        const char *tb)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    begin(&sb, &pk, OP_ERROR, rid, tb ? 4 : 3);
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
    finish(fd, &sb);
}

/* OK with function_id, call_id and, unless call_only, the msgpack int v as value. */
static void reply_value(int fd, uint64_t rid, const char *call_id, int64_t v, bool call_only)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    begin(&sb, &pk, OP_OK, rid, call_only ? 2 : 3);
    pk_str(&pk, "function_id");
    pk_str(&pk, FN_ID);
    pk_str(&pk, "call_id");
    pk_str(&pk, call_id);
    if (!call_only) {
        char b[16];
        msgpack_sbuffer vb = {0};
        msgpack_packer vp;
        msgpack_packer_init(&vp, &vb, msgpack_sbuffer_write);
        msgpack_pack_int64(&vp, v);
        memcpy(b, vb.data, vb.size);
        pk_str(&pk, "value");
        msgpack_pack_bin_with_body(&pk, b, vb.size);
        free(vb.data);
    }
    finish(fd, &sb);
}

static void reply_stats(int fd, uint64_t rid)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    begin(&sb, &pk, OP_OK, rid, 4);
    const char *keys[] = {"backlog", "num_total_runners", "num_running_inputs", "input_headroom"};
    for (int i = 0; i < 4; i++) {
        pk_str(&pk, keys[i]);
        msgpack_pack_int(&pk, 3 + i);
    }
    finish(fd, &sb);
}

/* counter(n): items [seq, 0, seq * 10], 2 per frame, then OK count. */
static void stream_counter(int fd, uint64_t rid, int64_t n)
{
    for (int64_t seq = 0; seq < n;) {
        int64_t k = n - seq < 2 ? n - seq : 2;
        msgpack_sbuffer sb;
        msgpack_packer pk;
        begin(&sb, &pk, OP_STREAM, rid, 1);
        pk_str(&pk, "items");
        msgpack_pack_array(&pk, (size_t)k);
        for (int64_t i = 0; i < k; i++, seq++) {
            char b[16];
            msgpack_sbuffer vb = {0};
            msgpack_packer vp;
            msgpack_packer_init(&vp, &vb, msgpack_sbuffer_write);
            msgpack_pack_int64(&vp, seq * 10);
            memcpy(b, vb.data, vb.size);
            msgpack_pack_array(&pk, 3);
            msgpack_pack_int64(&pk, seq);
            msgpack_pack_int(&pk, 0);
            msgpack_pack_bin_with_body(&pk, b, vb.size);
            free(vb.data);
        }
        finish(fd, &sb);
    }
    msgpack_sbuffer sb;
    msgpack_packer pk;
    begin(&sb, &pk, OP_OK, rid, 1);
    pk_str(&pk, "count");
    msgpack_pack_int64(&pk, n);
    finish(fd, &sb);
}

/* --- serving ---------------------------------------------------------------------------------- */

static bool is(const msgpack_object *root, const char *key, const char *want)
{
    const msgpack_object *o = wire_obj_get(root, key);
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(want) &&
           !memcmp(o->via.str.ptr, want, o->via.str.size);
}

static int64_t int_field(const msgpack_object *root, const char *key)
{
    const msgpack_object *o = wire_obj_get(root, key);
    if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (int64_t)o->via.u64;
    if (o && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return o->via.i64;
    return INT64_MIN;
}

static bool flag(const msgpack_object *root, const char *key)
{
    const msgpack_object *o = wire_obj_get(root, key);
    return o && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean;
}

/* The first positional argument in an encoded [args, kwargs] payload as an int (0 if none). */
static int64_t payload_first(const char *p, size_t n)
{
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    msgpack_object o;
    size_t off = 0;
    int64_t v = 0;
    if (msgpack_unpack(p, n, &off, &z, &o) == MSGPACK_UNPACK_SUCCESS &&
        o.type == MSGPACK_OBJECT_ARRAY && o.via.array.size == 2 &&
        o.via.array.ptr[0].type == MSGPACK_OBJECT_ARRAY && o.via.array.ptr[0].via.array.size > 0 &&
        o.via.array.ptr[0].via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        v = (int64_t)o.via.array.ptr[0].via.array.ptr[0].via.u64;
    msgpack_zone_destroy(&z);
    return v;
}

/* The first positional argument of a CALL as an int (0 if none). */
static int64_t first_arg(const msgpack_object *root)
{
    const msgpack_object *a = wire_obj_get(root, "args");
    if (!a || a->type != MSGPACK_OBJECT_BIN)
        return 0;
    return payload_first(a->via.bin.ptr, a->via.bin.size);
}

/* The connection's one map (server thread only): inputs whose outputs are not yet sent. */
static struct fmap {
    int64_t x[MAX_HELD];  /* input i's argument, for the inputs not yet answered */
    int64_t first;        /* the index of x[0] */
    int64_t n;            /* inputs received */
    int64_t sent;         /* outputs sent */
    uint64_t outputs_rid; /* the OUTPUTS request, or 0 */
    bool last;
} fm;

/* Sends the map's pending outputs, newest first (so an ordered map must reorder), failing the
 * inputs whose x % 7 == 3; after the last one, OUTPUTS' final OK. */
static void map_flush(int fd)
{
    if (!fm.outputs_rid || fm.sent == fm.n) {
        if (fm.outputs_rid && fm.last) {
            msgpack_sbuffer sb;
            msgpack_packer pk;
            begin(&sb, &pk, OP_OK, fm.outputs_rid, 1);
            pk_str(&pk, "count");
            msgpack_pack_int64(&pk, fm.n);
            finish(fd, &sb);
            memset(&fm, 0, sizeof fm);
        }
        return;
    }
    msgpack_sbuffer sb;
    msgpack_packer pk;
    begin(&sb, &pk, OP_STREAM, fm.outputs_rid, 1);
    pk_str(&pk, "items");
    msgpack_pack_array(&pk, (size_t)(fm.n - fm.sent));
    for (int64_t i = fm.n - 1; i >= fm.sent; i--) {
        int64_t x = fm.x[i - fm.first];
        msgpack_pack_array(&pk, x % 7 == 3 ? 5 : 3);
        msgpack_pack_int64(&pk, i);
        if (x % 7 == 3) {
            msgpack_pack_int(&pk, SKIFF_ERR_USER);
            pk_str(&pk, "ValueError");
            pk_str(&pk, "x % 7 == 3");
            msgpack_pack_nil(&pk);
        } else {
            char b[16];
            msgpack_sbuffer vb = {0};
            msgpack_packer vp;
            msgpack_packer_init(&vp, &vb, msgpack_sbuffer_write);
            msgpack_pack_int64(&vp, x * x);
            memcpy(b, vb.data, vb.size);
            msgpack_pack_int(&pk, 0);
            msgpack_pack_bin_with_body(&pk, b, vb.size);
            free(vb.data);
        }
    }
    finish(fd, &sb);
    fm.sent = fm.first = fm.n;
    map_flush(fd); /* the end, if that was the last */
}

static void serve_map_inputs(int fd, uint64_t rid, const msgpack_object *root)
{
    const msgpack_object *a = wire_obj_get(root, "args");
    for (uint32_t i = 0; a && a->type == MSGPACK_OBJECT_ARRAY && i < a->via.array.size; i++) {
        const msgpack_object *b = &a->via.array.ptr[i];
        if (fm.n - fm.first < MAX_HELD && b->type == MSGPACK_OBJECT_BIN)
            fm.x[fm.n++ - fm.first] = payload_first(b->via.bin.ptr, b->via.bin.size);
    }
    fm.last = flag(root, "last");
    msgpack_sbuffer sb;
    msgpack_packer pk;
    begin(&sb, &pk, OP_OK, rid, 1);
    pk_str(&pk, "count");
    msgpack_pack_int64(&pk, fm.n);
    finish(fd, &sb);
}

/* The function a request names, by app + function or by id: its name, or NULL. */
static const char *function_of(const msgpack_object *root)
{
    static const char *const names[] = {"square", "slow", "fail", "hangup", "counter", NULL};
    if (is(root, "function_id", FN_ID))
        return "square"; /* every known function shares one id in the fake */
    for (int i = 0; names[i]; i++)
        if (is(root, "app", "app") && is(root, "function", names[i]))
            return names[i];
    return NULL;
}

static void hold(uint64_t rid, int64_t x, bool get)
{
    if (fk.nheld < MAX_HELD)
        fk.held[fk.nheld++] = (struct held){rid, x, get};
}

/* Answers the held GETs of SLOW_CALL with CancelledError. */
static void cancel_held(int fd)
{
    int k = 0;
    for (int i = 0; i < fk.nheld; i++) {
        if (fk.held[i].get)
            reply_error(fd, fk.held[i].rid, SKIFF_ERR_CANCELLED, "CancelledError",
                        "the call was cancelled", NULL);
        else
            fk.held[k++] = fk.held[i];
    }
    fk.nheld = k;
}

/* Answers the held slow CALLs once the test released them. */
static void release_held(int fd)
{
    pthread_mutex_lock(&fk.mu);
    bool go = fk.release;
    pthread_mutex_unlock(&fk.mu);
    if (!go)
        return;
    int k = 0;
    for (int i = 0; i < fk.nheld; i++) {
        if (!fk.held[i].get)
            reply_value(fd, fk.held[i].rid, SQUARE_CALL, fk.held[i].x * fk.held[i].x, false);
        else
            fk.held[k++] = fk.held[i];
    }
    fk.nheld = k;
}

static bool serve_call(int fd, uint64_t rid, const msgpack_object *root)
{
    const char *fn = function_of(root);
    pthread_mutex_lock(&fk.mu);
    fk.calls++;
    const msgpack_object *p = wire_obj_get(root, "parent_input_id");
    fk.last_parent[0] = '\0';
    if (p && p->type == MSGPACK_OBJECT_STR && p->via.str.size < sizeof fk.last_parent) {
        memcpy(fk.last_parent, p->via.str.ptr, p->via.str.size);
        fk.last_parent[p->via.str.size] = '\0';
    }
    pthread_mutex_unlock(&fk.mu);
    int64_t x = first_arg(root);
    if (!fn)
        reply_error(fd, rid, SKIFF_ERR_NOT_FOUND, "NotFoundError",
                    "Lookup failed for Function 'nope' from the 'app' app", NULL);
    else if (!strcmp(fn, "hangup"))
        return false;
    else if (flag(root, "gen"))
        stream_counter(fd, rid, x);
    else if (flag(root, "spawn"))
        reply_value(fd, rid,
                    !strcmp(fn, "fail")   ? FAIL_CALL
                    : !strcmp(fn, "slow") ? SLOW_CALL
                                          : SQUARE_CALL,
                    0, true);
    else if (!strcmp(fn, "fail"))
        reply_error(fd, rid, SKIFF_ERR_USER, "ValueError", "x must be positive",
                    "app.c:12 in fail");
    else if (!strcmp(fn, "slow"))
        hold(rid, x, false);
    else
        reply_value(fd, rid, SQUARE_CALL, x * x, false);
    return true;
}

static bool serve_frame(int fd, bool *authed, const msgpack_object *root)
{
    int64_t op = int_field(root, "op");
    uint64_t rid = (uint64_t)int_field(root, "rid");
    if (!*authed) {
        if (op != OP_HELLO || !is(root, "token_secret", TOKEN_SECRET))
            return false;
        *authed = true;
        msgpack_sbuffer sb;
        msgpack_packer pk;
        begin(&sb, &pk, OP_OK, rid, 2);
        pk_str(&pk, "version");
        msgpack_pack_int(&pk, PROTO_VERSION);
        pk_str(&pk, "payload_max");
        msgpack_pack_int64(&pk, PROTO_PAYLOAD_MAX);
        finish(fd, &sb);
        return true;
    }
    switch (op) {
    case OP_CALL:
        return serve_call(fd, rid, root);
    case OP_LOOKUP:
        if (function_of(root)) {
            msgpack_sbuffer sb;
            msgpack_packer pk;
            begin(&sb, &pk, OP_OK, rid, 2);
            pk_str(&pk, "function_id");
            pk_str(&pk, FN_ID);
            pk_str(&pk, "kind");
            pk_str(&pk, "function");
            finish(fd, &sb);
        } else {
            reply_error(fd, rid, SKIFF_ERR_NOT_FOUND, "NotFoundError",
                        "Lookup failed for Function 'nope' from the 'app' app", NULL);
        }
        return true;
    case OP_GET:
        if (is(root, "call_id", SQUARE_CALL))
            reply_value(fd, rid, SQUARE_CALL, 49, false);
        else if (is(root, "call_id", FAIL_CALL))
            reply_error(fd, rid, SKIFF_ERR_USER, "ValueError", "x must be positive", NULL);
        else if (is(root, "call_id", SLOW_CALL) && int_field(root, "timeout_ms") == 0)
            reply_error(fd, rid, SKIFF_ERR_TIMEOUT, "TimeoutError", "not finished yet", NULL);
        else if (is(root, "call_id", SLOW_CALL))
            hold(rid, 0, true);
        else
            reply_error(fd, rid, SKIFF_ERR_NOT_FOUND, "NotFoundError", "no such call", NULL);
        return true;
    case OP_CANCEL: {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        begin(&sb, &pk, OP_OK, rid, 0);
        finish(fd, &sb);
        if (is(root, "call_id", SLOW_CALL))
            cancel_held(fd);
        return true;
    }
    case OP_STATS:
        reply_stats(fd, rid);
        return true;
    case OP_MAP_START:
        memset(&fm, 0, sizeof fm);
        reply_value(fd, rid, MAP_CALL, 0, true);
        return true;
    case OP_MAP_INPUTS:
        serve_map_inputs(fd, rid, root);
        return true;
    case OP_OUTPUTS:
        fm.outputs_rid = rid;
        return true;
    default:
        reply_error(fd, rid, SKIFF_ERR_INVALID, "InvalidError", "unknown operation", NULL);
        return true;
    }
}

static void serve_conn(int fd)
{
    size_t cap = 1 << 20, len = 0;
    char *in = malloc(cap);
    bool authed = false, open = true;
    fk.nheld = 0;
    memset(&fm, 0, sizeof fm);
    while (open) {
        long n;
        while ((n = wire_frame_len(in, len, 1u << 20)) > 0 && open) {
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
            map_flush(fd);
        }
        if (!open || n < 0)
            break;
        release_held(fd);
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 5) == 0)
            continue;
        ssize_t got = recv(fd, in + len, cap - len, 0);
        if (got <= 0)
            break;
        len += (size_t)got;
    }
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

static void fake_start(void)
{
    memset(&fk, 0, sizeof fk);
    pthread_mutex_init(&fk.mu, NULL);
    fk.conn_fd = -1;
    const char *tmp = getenv("TMPDIR");
    char home[90];
    snprintf(home, sizeof home, "%s/async-home-XXXXXX", tmp && strlen(tmp) < 60 ? tmp : "/tmp");
    ASSERT_NOT_NULL(mkdtemp(home));
    setenv("HOME", home, 1);
    snprintf(fk.path, sizeof fk.path, "%s/s", home);
    char addr[128];
    snprintf(addr, sizeof addr, "unix:%s", fk.path);
    fk.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {0};
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", fk.path);
    ASSERT_EQ_INT(bind(fk.lfd, (struct sockaddr *)&sun, sizeof sun), 0);
    ASSERT_EQ_INT(listen(fk.lfd, 8), 0);
    setenv("SKIFF_SERVER", addr, 1);
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

static void fake_release(void)
{
    pthread_mutex_lock(&fk.mu);
    fk.release = true;
    pthread_mutex_unlock(&fk.mu);
}

/* Closes the connection being served, from the server's side. */
static void fake_kick(void)
{
    pthread_mutex_lock(&fk.mu);
    if (fk.conn_fd >= 0)
        shutdown(fk.conn_fd, SHUT_RDWR);
    pthread_mutex_unlock(&fk.mu);
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

static skiff_value *one_int(int64_t x)
{
    return skiff_value_list_of(1, skiff_value_int(x));
}

/* Polls the calling thread's descriptor and processes until nothing is pending (at most
 * seconds). */
static void run_until_idle(skiff_client *c, double seconds)
{
    int fd = -1;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(skiff_client_fd(c, &fd, &err), SKIFF_OK);
    double end = unit_now() + seconds;
    while (skiff_client_pending(c) > 0) {
        if (unit_now() > end)
            FAIL("%zu operations still pending after %g s", skiff_client_pending(c), seconds);
        struct pollfd p = {fd, POLLIN, 0};
        poll(&p, 1, 100);
        ASSERT_EQ_INT(skiff_client_process(c, NULL, &err), SKIFF_OK);
    }
}

/* Whether fd becomes readable within ms. */
static bool readable(int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, ms) == 1;
}

/* --- what the callbacks record ---------------------------------------------------------------- */

#define NCALLS 200

static struct seen {
    int runs[NCALLS];        /* callbacks run per slot */
    int64_t values[NCALLS];  /* the results */
    int codes[NCALLS];       /* the outcomes */
    char types[NCALLS][32];  /* the failures' types */
    bool tracebacks[NCALLS]; /* a failure came with a traceback */
    int depth;               /* callbacks running right now (nesting shows as 2) */
    int max_depth;
    int total;
} seen;

static void *slot(int i)
{
    return &seen.runs[i];
}

static int slot_of(void *ud)
{
    return (int)((int *)ud - seen.runs);
}

static void enter_cb(void)
{
    seen.depth++;
    if (seen.depth > seen.max_depth)
        seen.max_depth = seen.depth;
    seen.total++;
}

static void record(void *ud, int rc, const skiff_error *err)
{
    int i = slot_of(ud);
    seen.runs[i]++;
    seen.codes[i] = rc;
    if (rc != SKIFF_OK) {
        ASSERT_NOT_NULL(err);
        ASSERT_EQ_INT(err->code, rc);
        snprintf(seen.types[i], sizeof seen.types[i], "%s", err->type ? err->type : "");
        seen.tracebacks[i] = err->traceback != NULL;
    }
}

static void on_result(void *ud, int rc, skiff_value *result, const skiff_error *err)
{
    enter_cb();
    record(ud, rc, err);
    if (rc == SKIFF_OK) {
        ASSERT_NULL(err);
        seen.values[slot_of(ud)] = skiff_value_get_int(result);
    } else {
        ASSERT_NULL(result);
    }
    skiff_value_free(result);
    seen.depth--;
}

static void on_done(void *ud, int rc, const skiff_error *err)
{
    enter_cb();
    record(ud, rc, err);
    seen.depth--;
}

static skiff_call *spawned[NCALLS];

static void on_call(void *ud, int rc, skiff_call *call, const skiff_error *err)
{
    enter_cb();
    record(ud, rc, err);
    spawned[slot_of(ud)] = call;
    seen.depth--;
}

static skiff_function *looked_up;

static void on_function(void *ud, int rc, skiff_function *fn, const skiff_error *err)
{
    enter_cb();
    record(ud, rc, err);
    if (rc == SKIFF_OK)
        looked_up = fn;
    else
        ASSERT_NULL(fn);
    seen.depth--;
}

static void on_stats(void *ud, int rc, const skiff_function_stats *st, const skiff_error *err)
{
    enter_cb();
    record(ud, rc, err);
    if (rc == SKIFF_OK)
        seen.values[slot_of(ud)] = st->backlog * 100 + st->num_total_runners;
    seen.depth--;
}

/* --- tests ------------------------------------------------------------------------------------ */

TEST(callbacks_run_once_each_only_in_process)
{
    fake_start();
    memset(&seen, 0, sizeof seen);
    skiff_client *c = connect_ok();
    skiff_function *sq = fn_ok(c, "square");
    skiff_error err = SKIFF_ERROR_INIT;
    for (int i = 0; i < NCALLS; i++) {
        skiff_value *args = one_int(i);
        ASSERT_EQ_INT(skiff_function_remote_async(sq, args, NULL, on_result, slot(i), &err),
                      SKIFF_OK);
        skiff_value_free(args); /* borrowed for the call only */
    }
    ASSERT_EQ_INT(skiff_client_pending(c), NCALLS);
    usleep(50 * 1000); /* the answers arrive meanwhile: still nothing runs outside process */
    ASSERT_EQ_INT(seen.total, 0);
    run_until_idle(c, 10);
    for (int i = 0; i < NCALLS; i++) {
        ASSERT_EQ_INT(seen.runs[i], 1);
        ASSERT_EQ_INT(seen.codes[i], SKIFF_OK);
        ASSERT_EQ_INT(seen.values[i], (int64_t)i * i);
    }
    ASSERT_EQ_INT(seen.max_depth, 1);
    ASSERT_EQ_STR(skiff_function_id(sq), FN_ID); /* the replies hydrated the lazy handle */
    size_t ran = 99;
    ASSERT_EQ_INT(skiff_client_process(c, &ran, &err), SKIFF_OK);
    ASSERT_EQ_INT(ran, 0);
    ASSERT_EQ_INT(seen.total, NCALLS);
    skiff_function_free(sq);
    skiff_error_clear(&err);
    skiff_client_close(c);
    fake_stop();
}

TEST(errors_come_through_callbacks_or_at_once_without_callback)
{
    fake_start();
    memset(&seen, 0, sizeof seen);
    skiff_client *c = connect_ok();
    skiff_function *fail = fn_ok(c, "fail"), *nope = fn_ok(c, "nope"), *sq = fn_ok(c, "square");
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *args = one_int(1);
    ASSERT_EQ_INT(skiff_function_remote_async(fail, args, NULL, on_result, slot(0), &err),
                  SKIFF_OK);
    ASSERT_EQ_INT(skiff_function_remote_async(nope, args, NULL, on_result, slot(1), &err),
                  SKIFF_OK);
    ASSERT_EQ_INT(skiff_function_lookup_async(c, "app", "nope", on_function, slot(2), &err),
                  SKIFF_OK);
    ASSERT_EQ_INT(skiff_function_lookup_async(c, "app", "square", on_function, slot(3), &err),
                  SKIFF_OK);
    ASSERT_EQ_INT(skiff_function_get_current_stats_async(sq, on_stats, slot(4), &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_function_spawn_async(fail, args, NULL, on_call, slot(5), &err), SKIFF_OK);
    size_t before = skiff_client_pending(c);
    ASSERT_EQ_INT(before, 6);

    /* Refused at once: nothing started, the callback never runs. */
    skiff_value *notlist = skiff_value_int(3);
    ASSERT_EQ_INT(skiff_function_remote_async(sq, notlist, NULL, on_result, slot(9), &err),
                  SKIFF_ERR_INVALID);
    ASSERT_STR_CONTAINS(err.message, "must be a list");
    ASSERT_EQ_INT(skiff_function_remote_async(sq, args, notlist, on_result, slot(9), &err),
                  SKIFF_ERR_INVALID);
    ASSERT_EQ_INT(skiff_function_remote_async(sq, args, NULL, NULL, NULL, &err), SKIFF_ERR_INVALID);
    ASSERT_EQ_INT(skiff_function_remote_async(NULL, args, NULL, on_result, slot(9), &err),
                  SKIFF_ERR_INVALID);
    ASSERT_EQ_INT(skiff_function_lookup_async(c, "", "x", on_function, slot(9), &err),
                  SKIFF_ERR_INVALID);
    ASSERT_EQ_INT(skiff_call_gather_async(NULL, 0, on_result, slot(9), &err), SKIFF_ERR_INVALID);
    ASSERT_EQ_INT(skiff_function_remote_gen_async(sq, args, NULL, NULL, on_done, slot(9), &err),
                  SKIFF_ERR_INVALID);
    skiff_value_free(notlist);
    ASSERT_EQ_INT(skiff_client_pending(c), before);
    ASSERT_EQ_INT(skiff_client_wait(NULL, 1, &err), SKIFF_ERR_INVALID);
    ASSERT_EQ_INT(skiff_client_wait(c, NAN, &err), SKIFF_ERR_INVALID);
    int fd;
    ASSERT_EQ_INT(skiff_client_fd(c, NULL, &err), SKIFF_ERR_INVALID);
    ASSERT_EQ_INT(skiff_client_fd(NULL, &fd, &err), SKIFF_ERR_INVALID);

    run_until_idle(c, 10);
    ASSERT_EQ_INT(seen.codes[0], SKIFF_ERR_USER);
    ASSERT_EQ_STR(seen.types[0], "ValueError");
    ASSERT_TRUE(seen.tracebacks[0]);
    ASSERT_EQ_INT(seen.codes[1], SKIFF_ERR_NOT_FOUND);
    ASSERT_EQ_INT(seen.codes[2], SKIFF_ERR_NOT_FOUND);
    ASSERT_EQ_INT(seen.codes[3], SKIFF_OK);
    ASSERT_NOT_NULL(looked_up);
    ASSERT_EQ_STR(skiff_function_id(looked_up), FN_ID);
    ASSERT_EQ_INT(skiff_function_get_kind(looked_up), SKIFF_FUNCTION_PLAIN);
    ASSERT_EQ_INT(seen.codes[4], SKIFF_OK);
    ASSERT_EQ_INT(seen.values[4], 304); /* backlog 3, 4 runners */
    ASSERT_EQ_INT(seen.codes[5], SKIFF_OK);
    ASSERT_EQ_STR(skiff_call_id(spawned[5]), FAIL_CALL);
    for (int i = 0; i < 6; i++)
        ASSERT_EQ_INT(seen.runs[i], 1);
    ASSERT_EQ_INT(seen.runs[9], 0);
    ASSERT_EQ_INT(skiff_client_wait(c, 1, &err), SKIFF_ERR_INVALID); /* nothing pending */

    /* get of the failed call, and a gather whose second call fails: the first failure in
     * argument order. */
    memset(&seen, 0, sizeof seen);
    skiff_call *ok = NULL;
    ASSERT_EQ_INT(skiff_function_spawn(sq, args, NULL, &ok, &err), SKIFF_OK);
    skiff_call *both[] = {ok, spawned[5]};
    ASSERT_EQ_INT(skiff_call_get_async(spawned[5], 5, on_result, slot(0), &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_call_gather_async(both, 2, on_result, slot(1), &err), SKIFF_OK);
    skiff_call *okok[] = {ok, ok};
    ASSERT_EQ_INT(skiff_call_gather_async(okok, 2, on_result, slot(2), &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_client_pending(c), 3);
    run_until_idle(c, 10);
    ASSERT_EQ_INT(seen.codes[0], SKIFF_ERR_USER);
    ASSERT_EQ_INT(seen.codes[1], SKIFF_ERR_USER);
    ASSERT_EQ_STR(seen.types[1], "ValueError");
    ASSERT_EQ_INT(seen.runs[1], 1);
    ASSERT_EQ_INT(seen.codes[2], SKIFF_OK);
    ASSERT_EQ_INT(seen.runs[2], 1);
    skiff_call_free(ok);
    skiff_call_free(spawned[5]);
    skiff_value_free(args);
    skiff_function_free(looked_up);
    skiff_function_free(fail);
    skiff_function_free(nope);
    skiff_function_free(sq);
    skiff_error_clear(&err);
    skiff_client_close(c);
    fake_stop();
}

static skiff_value *gathered;

static void on_gathered(void *ud, int rc, skiff_value *result, const skiff_error *err)
{
    enter_cb();
    record(ud, rc, err);
    gathered = result;
    seen.depth--;
}

TEST(gather_async_results_in_argument_order)
{
    fake_start();
    memset(&seen, 0, sizeof seen);
    skiff_client *c = connect_ok();
    skiff_function *sq = fn_ok(c, "square");
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *args = one_int(7);
    for (int i = 0; i < 5; i++)
        ASSERT_EQ_INT(skiff_function_spawn_async(sq, args, NULL, on_call, slot(i), &err), SKIFF_OK);
    run_until_idle(c, 10);
    ASSERT_EQ_INT(skiff_call_gather_async(spawned, 5, on_gathered, slot(10), &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_client_wait(c, 10, &err), SKIFF_OK);
    ASSERT_EQ_INT(seen.codes[10], SKIFF_OK);
    ASSERT_EQ_INT(skiff_list_len(gathered), 5);
    for (size_t i = 0; i < 5; i++)
        ASSERT_EQ_INT(skiff_value_get_int(skiff_list_get(gathered, i)), 49);
    skiff_value_free(gathered);
    for (int i = 0; i < 5; i++)
        skiff_call_free(spawned[i]);
    skiff_value_free(args);
    skiff_function_free(sq);
    skiff_error_clear(&err);
    skiff_client_close(c);
    fake_stop();
}

TEST(fd_becomes_readable_when_a_call_completes)
{
    fake_start();
    memset(&seen, 0, sizeof seen);
    skiff_client *c = connect_ok();
    skiff_function *slow = fn_ok(c, "slow");
    skiff_error err = SKIFF_ERROR_INIT;
    int fd = -1;
    ASSERT_EQ_INT(skiff_client_fd(c, &fd, &err), SKIFF_OK);
    ASSERT_GE_INT(fd, 0);
    int again = -1;
    ASSERT_EQ_INT(skiff_client_fd(c, &again, &err), SKIFF_OK);
    ASSERT_EQ_INT(again, fd); /* one descriptor per thread */
    ASSERT_FALSE(readable(fd, 20));
    skiff_value *args = one_int(6);
    ASSERT_EQ_INT(skiff_function_remote_async(slow, args, NULL, on_result, slot(0), &err),
                  SKIFF_OK);
    /* Held by the server: nothing to do, nothing readable, process runs nothing. */
    ASSERT_FALSE(readable(fd, 50));
    size_t ran = 9;
    ASSERT_EQ_INT(skiff_client_process(c, &ran, &err), SKIFF_OK);
    ASSERT_EQ_INT(ran, 0);
    ASSERT_EQ_INT(skiff_client_wait(c, 0.03, &err), SKIFF_ERR_TIMEOUT);
    ASSERT_EQ_INT(seen.runs[0], 0);
    fake_release();
    ASSERT_TRUE(readable(fd, 5000));
    ASSERT_EQ_INT(seen.runs[0], 0); /* readable, but nothing runs until process */
    ASSERT_EQ_INT(skiff_client_process(c, &ran, &err), SKIFF_OK);
    ASSERT_EQ_INT(ran, 1);
    ASSERT_EQ_INT(seen.runs[0], 1);
    ASSERT_EQ_INT(seen.values[0], 36);
    ASSERT_FALSE(readable(fd, 20)); /* drained */
    skiff_value_free(args);
    skiff_function_free(slow);
    skiff_error_clear(&err);
    skiff_client_close(c);
    fake_stop();
}

TEST(cancel_of_a_pending_call_reaches_its_get)
{
    fake_start();
    memset(&seen, 0, sizeof seen);
    skiff_client *c = connect_ok();
    skiff_function *slow = fn_ok(c, "slow");
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *args = one_int(2);
    ASSERT_EQ_INT(skiff_function_spawn_async(slow, args, NULL, on_call, slot(0), &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_client_wait(c, 5, &err), SKIFF_OK);
    skiff_call *call = spawned[0];
    ASSERT_EQ_STR(skiff_call_id(call), SLOW_CALL);
    ASSERT_EQ_INT(skiff_call_get_async(call, 0, on_result, slot(1), &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_call_get_async(call, SKIFF_WAIT_FOREVER, on_result, slot(2), &err),
                  SKIFF_OK);
    ASSERT_EQ_INT(skiff_call_get_async(call, NAN, on_result, slot(9), &err), SKIFF_ERR_INVALID);
    ASSERT_EQ_INT(skiff_client_wait(c, 5, &err), SKIFF_OK);
    ASSERT_EQ_INT(seen.codes[1], SKIFF_ERR_TIMEOUT); /* a poll: still running */
    ASSERT_EQ_INT(skiff_client_wait(c, 0.05, &err), SKIFF_ERR_TIMEOUT);
    ASSERT_EQ_INT(seen.runs[2], 0); /* the waiting get is still pending */
    ASSERT_EQ_INT(skiff_call_cancel_async(call, false, on_done, slot(3), &err), SKIFF_OK);
    run_until_idle(c, 5);
    ASSERT_EQ_INT(seen.codes[3], SKIFF_OK);
    ASSERT_EQ_INT(seen.runs[2], 1);
    ASSERT_EQ_INT(seen.codes[2], SKIFF_ERR_CANCELLED);
    ASSERT_EQ_INT(seen.runs[9], 0);
    skiff_call_free(call);
    skiff_value_free(args);
    skiff_function_free(slow);
    skiff_error_clear(&err);
    skiff_client_close(c);
    fake_stop();
}

/* A callback that tries to re-enter and starts another call. */
static skiff_client *reenter_client;
static skiff_function *reenter_fn;

static void on_reenter(void *ud, int rc, skiff_value *result, const skiff_error *err)
{
    enter_cb();
    record(ud, rc, err);
    skiff_value_free(result);
    skiff_error e = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(skiff_client_process(reenter_client, NULL, &e), SKIFF_ERR_INVALID);
    ASSERT_STR_CONTAINS(e.message, "inside");
    ASSERT_EQ_INT(skiff_client_wait(reenter_client, 1, &e), SKIFF_ERR_INVALID);
    if (slot_of(ud) == 0) {
        skiff_value *args = one_int(5);
        ASSERT_EQ_INT(skiff_function_remote_async(reenter_fn, args, NULL, on_reenter, slot(1), &e),
                      SKIFF_OK);
        skiff_value_free(args);
        /* A blocking call from a callback works too. */
        skiff_value *r = NULL;
        args = one_int(4);
        ASSERT_EQ_INT(skiff_function_remote(reenter_fn, args, NULL, &r, &e), SKIFF_OK);
        ASSERT_EQ_INT(skiff_value_get_int(r), 16);
        skiff_value_free(r);
        skiff_value_free(args);
    }
    skiff_error_clear(&e);
    seen.depth--;
}

TEST(callbacks_never_nest_and_may_start_more)
{
    fake_start();
    memset(&seen, 0, sizeof seen);
    skiff_client *c = reenter_client = connect_ok();
    skiff_function *sq = reenter_fn = fn_ok(c, "square");
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *args = one_int(3);
    ASSERT_EQ_INT(skiff_function_remote_async(sq, args, NULL, on_reenter, slot(0), &err), SKIFF_OK);
    run_until_idle(c, 5);
    ASSERT_EQ_INT(seen.runs[0], 1);
    ASSERT_EQ_INT(seen.runs[1], 1);
    ASSERT_EQ_INT(seen.max_depth, 1);
    skiff_value_free(args);
    skiff_function_free(sq);
    skiff_error_clear(&err);
    skiff_client_close(c);
    fake_stop();
}

static int64_t items[32];
static int nitems;

static void on_item(void *ud, skiff_value *item)
{
    (void)ud;
    enter_cb();
    if (nitems < 32)
        items[nitems++] = skiff_value_get_int(item);
    skiff_value_free(item);
    seen.depth--;
}

TEST(remote_gen_async_items_in_order_then_done)
{
    fake_start();
    memset(&seen, 0, sizeof seen);
    nitems = 0;
    skiff_client *c = connect_ok();
    skiff_function *counter = fn_ok(c, "counter");
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *args = one_int(7);
    ASSERT_EQ_INT(
        skiff_function_remote_gen_async(counter, args, NULL, on_item, on_done, slot(0), &err),
        SKIFF_OK);
    ASSERT_EQ_INT(skiff_client_pending(c), 1);
    run_until_idle(c, 5);
    ASSERT_EQ_INT(nitems, 7);
    for (int i = 0; i < 7; i++)
        ASSERT_EQ_INT(items[i], i * 10);
    ASSERT_EQ_INT(seen.runs[0], 1);
    ASSERT_EQ_INT(seen.codes[0], SKIFF_OK);
    skiff_value_free(args);
    skiff_function_free(counter);
    skiff_error_clear(&err);
    skiff_client_close(c);
    fake_stop();
}

TEST(lost_connection_fails_pending_calls_then_reconnects)
{
    fake_start();
    memset(&seen, 0, sizeof seen);
    skiff_client *c = connect_ok();
    skiff_function *slow = fn_ok(c, "slow"), *sq = fn_ok(c, "square");
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *args = one_int(2);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ_INT(skiff_function_remote_async(slow, args, NULL, on_result, slot(i), &err),
                      SKIFF_OK);
    ASSERT_EQ_INT(skiff_client_wait(c, 0.05, &err), SKIFF_ERR_TIMEOUT);
    fake_kick();
    /* A blocking call notices the loss (and fails); then a new async call goes out on a new
     * connection before process learns of the loss: only the three lost calls fail. */
    skiff_value *r = NULL;
    ASSERT_EQ_INT(skiff_function_remote(sq, args, NULL, &r, &err), SKIFF_ERR_CONNECTION);
    ASSERT_EQ_INT(skiff_function_remote_async(sq, args, NULL, on_result, slot(5), &err), SKIFF_OK);
    run_until_idle(c, 5);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ_INT(seen.runs[i], 1);
        ASSERT_EQ_INT(seen.codes[i], SKIFF_ERR_CONNECTION);
    }
    ASSERT_EQ_INT(seen.runs[5], 1);
    ASSERT_EQ_INT(seen.codes[5], SKIFF_OK);
    ASSERT_EQ_INT(seen.values[5], 4);
    /* The next call opens a new connection. */
    ASSERT_EQ_INT(skiff_function_remote_async(sq, args, NULL, on_result, slot(3), &err), SKIFF_OK);
    run_until_idle(c, 5);
    ASSERT_EQ_INT(seen.codes[3], SKIFF_OK);
    ASSERT_EQ_INT(seen.values[3], 4);
    /* A call that makes the server hang up fails through its callback as well. */
    skiff_function *hang = fn_ok(c, "hangup");
    ASSERT_EQ_INT(skiff_function_remote_async(hang, args, NULL, on_result, slot(4), &err),
                  SKIFF_OK);
    run_until_idle(c, 5);
    ASSERT_EQ_INT(seen.codes[4], SKIFF_ERR_CONNECTION);
    skiff_function_free(hang);
    skiff_value_free(args);
    skiff_function_free(slow);
    skiff_function_free(sq);
    skiff_error_clear(&err);
    skiff_client_close(c);
    fake_stop();
}

/* --- threads ---------------------------------------------------------------------------------- */

struct blocking_run {
    skiff_client *c;
    int ok;
};

static void *blocking_calls(void *arg)
{
    struct blocking_run *b = arg;
    skiff_function *sq = fn_ok(b->c, "square");
    for (int64_t i = 0; i < 300; i++) {
        skiff_value *args = one_int(i), *r = NULL;
        skiff_error err = SKIFF_ERROR_INIT;
        if (skiff_function_remote(sq, args, NULL, &r, &err) == SKIFF_OK &&
            skiff_value_get_int(r) == i * i)
            b->ok++;
        skiff_value_free(r);
        skiff_value_free(args);
        skiff_error_clear(&err);
    }
    skiff_function_free(sq);
    return NULL;
}

TEST(blocking_calls_from_other_threads_work_alongside)
{
    fake_start();
    memset(&seen, 0, sizeof seen);
    skiff_client *c = connect_ok();
    skiff_function *sq = fn_ok(c, "square");
    struct blocking_run b = {c, 0};
    pthread_t t;
    ASSERT_EQ_INT(pthread_create(&t, NULL, blocking_calls, &b), 0);
    skiff_error err = SKIFF_ERROR_INIT;
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < NCALLS; i++) {
            skiff_value *args = one_int(i);
            ASSERT_EQ_INT(skiff_function_remote_async(sq, args, NULL, on_result, slot(i), &err),
                          SKIFF_OK);
            skiff_value_free(args);
        }
        while (skiff_client_pending(c) > 0)
            ASSERT_EQ_INT(skiff_client_wait(c, 10, &err), SKIFF_OK);
    }
    pthread_join(t, NULL);
    ASSERT_EQ_INT(b.ok, 300);
    for (int i = 0; i < NCALLS; i++) {
        ASSERT_EQ_INT(seen.runs[i], 5);
        ASSERT_EQ_INT(seen.values[i], (int64_t)i * i);
    }
    skiff_function_free(sq);
    skiff_error_clear(&err);
    skiff_client_close(c);
    fake_stop();
}

/* A thread with its own asynchronous state: its calls carry its parent input. */
struct child_run {
    skiff_client *c;
    int done;
    int64_t value;
};

static void on_child(void *ud, int rc, skiff_value *result, const skiff_error *err)
{
    (void)err;
    struct child_run *r = ud;
    r->done++;
    r->value = rc == SKIFF_OK ? skiff_value_get_int(result) : -rc;
    skiff_value_free(result);
}

static void *child_thread(void *arg)
{
    struct child_run *r = arg;
    client_set_parent_input("in-01M80000000000000000000009");
    skiff_function *sq = fn_ok(r->c, "square");
    skiff_value *args = one_int(9);
    skiff_error err = SKIFF_ERROR_INIT;
    if (skiff_function_remote_async(sq, args, NULL, on_child, r, &err) == SKIFF_OK)
        while (skiff_client_pending(r->c) > 0 && skiff_client_wait(r->c, 5, &err) == SKIFF_OK)
            ;
    /* The thread lets its state go; a later call makes a new one. */
    skiff_client_release_thread(r->c);
    skiff_client_release_thread(r->c);
    if (skiff_client_pending(r->c) == 0 &&
        skiff_function_remote_async(sq, args, NULL, on_child, r, &err) == SKIFF_OK)
        while (skiff_client_pending(r->c) > 0 && skiff_client_wait(r->c, 5, &err) == SKIFF_OK)
            ;
    skiff_client_release_thread(r->c);
    client_set_parent_input(NULL);
    skiff_error_clear(&err);
    skiff_value_free(args);
    skiff_function_free(sq);
    return NULL;
}

TEST(async_calls_carry_the_threads_parent_input_and_state_is_per_thread)
{
    fake_start();
    skiff_client *c = connect_ok();
    skiff_function *slow = fn_ok(c, "slow");
    skiff_error err = SKIFF_ERROR_INIT;
    memset(&seen, 0, sizeof seen);
    skiff_value *args = one_int(3);
    /* The main thread has one call pending; the child's completes without touching it. */
    ASSERT_EQ_INT(skiff_function_remote_async(slow, args, NULL, on_result, slot(0), &err),
                  SKIFF_OK);
    struct child_run r = {c, 0, 0};
    pthread_t t;
    ASSERT_EQ_INT(pthread_create(&t, NULL, child_thread, &r), 0);
    pthread_join(t, NULL);
    ASSERT_EQ_INT(r.done, 2);
    ASSERT_EQ_INT(r.value, 81);
    pthread_mutex_lock(&fk.mu);
    ASSERT_EQ_STR(fk.last_parent, "in-01M80000000000000000000009");
    pthread_mutex_unlock(&fk.mu);
    ASSERT_EQ_INT(seen.runs[0], 0); /* never run on the other thread */
    ASSERT_EQ_INT(skiff_client_pending(c), 1);
    fake_release();
    run_until_idle(c, 5);
    ASSERT_EQ_INT(seen.values[0], 9);
    skiff_value_free(args);
    skiff_function_free(slow);
    skiff_error_clear(&err);
    skiff_client_close(c);
    fake_stop();
}

/* --- libuv ------------------------------------------------------------------------------------ */

static skiff_client *uv_client;

static void on_uv_result(void *ud, int rc, skiff_value *result, const skiff_error *err)
{
    on_result(ud, rc, result, err);
    if (skiff_client_pending(uv_client) == 0)
        skiff_client_uv_detach(uv_client);
}

static void on_uv_timer(uv_timer_t *t)
{
    (void)t;
    fake_release(); /* lets the slow calls answer while the loop runs */
}

TEST(libuv_adapter_drives_a_loop)
{
    fake_start();
    memset(&seen, 0, sizeof seen);
    skiff_client *c = uv_client = connect_ok();
    skiff_function *sq = fn_ok(c, "square"), *slow = fn_ok(c, "slow");
    uv_loop_t loop;
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(skiff_client_uv_attach(NULL, &loop, &err), SKIFF_ERR_INVALID);
    ASSERT_EQ_INT(skiff_client_uv_attach(c, NULL, &err), SKIFF_ERR_INVALID);
    ASSERT_EQ_INT(skiff_client_uv_attach(c, &loop, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_client_uv_attach(c, &loop, &err), SKIFF_ERR_INVALID);
    for (int i = 0; i < 100; i++) {
        skiff_value *args = one_int(i);
        ASSERT_EQ_INT(skiff_function_remote_async(i % 10 ? sq : slow, args, NULL, on_uv_result,
                                                  slot(i), &err),
                      SKIFF_OK);
        skiff_value_free(args);
    }
    uv_timer_t timer;
    uv_timer_init(&loop, &timer);
    uv_timer_start(&timer, on_uv_timer, 30, 0);
    ASSERT_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    for (int i = 0; i < 100; i++) {
        ASSERT_EQ_INT(seen.runs[i], 1);
        ASSERT_EQ_INT(seen.values[i], (int64_t)i * i);
    }
    ASSERT_EQ_INT(seen.max_depth, 1);
    skiff_client_uv_detach(c); /* already detached: a no-op */
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
    skiff_function_free(sq);
    skiff_function_free(slow);
    skiff_error_clear(&err);
    skiff_client_close(c);
    fake_stop();
}

TEST(closing_with_calls_pending_drops_them)
{
    fake_start();
    memset(&seen, 0, sizeof seen);
    skiff_client *c = connect_ok();
    skiff_function *slow = fn_ok(c, "slow"), *counter = fn_ok(c, "counter");
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *args = one_int(3);
    for (int i = 0; i < 5; i++)
        ASSERT_EQ_INT(skiff_function_remote_async(slow, args, NULL, on_result, slot(i), &err),
                      SKIFF_OK);
    ASSERT_EQ_INT(
        skiff_function_remote_gen_async(counter, args, NULL, on_item, on_done, slot(6), &err),
        SKIFF_OK);
    skiff_value_free(args);
    skiff_function_free(slow);
    skiff_function_free(counter);
    skiff_client_close(c); /* nothing leaks (the sanitizer run checks), no callback runs */
    ASSERT_EQ_INT(seen.total, 0);
    fake_stop();
}

/* Starts asynchronous operations on c with allocation n failing (mem_fail_after), waits for
 * them and checks their outcome, for n = 0, 1, ... until one run succeeds: a failing
 * allocation may only ever give SKIFF_ERR_NOMEM, at once or through a callback. start gets sq
 * (app.square) and arg (allocated before the failures begin). */
static void oom_until_ok(int (*start)(skiff_function *sq, const skiff_value *arg, skiff_error *err),
                         skiff_value *(*make_arg)(void), void (*check)(skiff_function *sq))
{
    fake_start();
    int rc = SKIFF_ERR_NOMEM;
    long n;
    for (n = 0; rc != SKIFF_OK && n < 3000; n++) {
        memset(&seen, 0, sizeof seen);
        skiff_client *c = connect_ok();
        skiff_function *sq = fn_ok(c, "square");
        skiff_value *arg = make_arg();
        skiff_error err = SKIFF_ERROR_INIT;
        mem_fail_after(n);
        rc = start(sq, arg, &err);
        while (rc == SKIFF_OK && skiff_client_pending(c) > 0)
            rc = skiff_client_wait(c, 5, &err);
        mem_fail_after(-1);
        if (rc == SKIFF_OK && (seen.codes[0] != SKIFF_OK || seen.codes[1] != SKIFF_OK))
            rc = SKIFF_ERR_NOMEM; /* a failure delivered through a callback: try further */
        if (rc == SKIFF_OK)
            check(sq);
        else if (rc != SKIFF_ERR_NOMEM)
            FAIL("allocation %ld failing gave %s: %s", n, skiff_code_name(rc), err.message);
        skiff_error_clear(&err);
        skiff_value_free(arg);
        skiff_function_free(sq);
        skiff_client_close(c);
    }
    ASSERT_EQ_INT(rc, SKIFF_OK);
    ASSERT_GT_INT(n, 3);
    fake_stop();
}

static skiff_value *five(void)
{
    return one_int(5);
}

static int start_remote_and_stats(skiff_function *sq, const skiff_value *arg, skiff_error *err)
{
    int rc = skiff_function_remote_async(sq, arg, NULL, on_result, slot(0), err);
    return rc == SKIFF_OK ? skiff_function_get_current_stats_async(sq, on_stats, slot(1), err) : rc;
}

static void check_25(skiff_function *sq)
{
    (void)sq;
    ASSERT_EQ_INT(seen.values[0], 25);
}

TEST(out_of_memory_never_crashes)
{
    oom_until_ok(start_remote_and_stats, five, check_25);
}

/* --- maps ------------------------------------------------------------------------------------- */

static int64_t map_values[NCALLS];
static int map_outputs, map_failed_outputs;

static void on_output(void *ud, skiff_map_output *out)
{
    (void)ud;
    enter_cb();
    ASSERT_LT_INT(out->index, NCALLS);
    if (out->error.code != SKIFF_OK) {
        map_failed_outputs++;
        ASSERT_EQ_STR(out->error.type, "ValueError");
    } else {
        map_values[out->index] = skiff_value_get_int(out->value);
    }
    ASSERT_EQ_INT(out->index, map_outputs); /* in input order */
    map_outputs++;
    skiff_map_output_clear(out);
    seen.depth--;
}

static skiff_value *ints(int64_t from, int64_t n)
{
    skiff_value *l = skiff_value_list();
    for (int64_t i = 0; i < n; i++)
        skiff_list_append(l, skiff_value_int(from + i));
    return l;
}

TEST(map_async_outputs_in_order_through_a_small_window)
{
    fake_start();
    memset(&seen, 0, sizeof seen);
    map_outputs = map_failed_outputs = 0;
    skiff_client *c = connect_ok();
    skiff_function *sq = fn_ok(c, "square");
    skiff_error err = SKIFF_ERROR_INIT;
    /* No input is x % 7 == 3: 0..2, then 4..6 shifted: use multiples of 7 plus 0, 1, 2. */
    skiff_value *xs = skiff_value_list();
    for (int64_t i = 0; i < 150; i++)
        skiff_list_append(xs, skiff_value_int(i / 3 * 7 + i % 3));
    const skiff_value *lists[] = {xs};
    skiff_map_options o = {.max_outstanding = 16};
    ASSERT_EQ_INT(skiff_function_map_async(sq, lists, 1, &o, on_output, on_done, slot(0), &err),
                  SKIFF_OK);
    ASSERT_EQ_INT(seen.total, 0); /* returned at once: nothing ran */
    run_until_idle(c, 10);
    ASSERT_EQ_INT(map_outputs, 150);
    ASSERT_EQ_INT(map_failed_outputs, 0);
    for (int64_t i = 0; i < 150; i++) {
        int64_t x = i / 3 * 7 + i % 3;
        ASSERT_EQ_INT(map_values[i], x * x);
    }
    ASSERT_EQ_INT(seen.runs[0], 1);
    ASSERT_EQ_INT(seen.codes[0], SKIFF_OK);
    ASSERT_EQ_INT(seen.max_depth, 1);

    /* An empty input completes at the next process; bad arguments fail at once. */
    skiff_value *none = skiff_value_list();
    const skiff_value *empty[] = {none};
    ASSERT_EQ_INT(skiff_function_map_async(sq, empty, 1, NULL, on_output, on_done, slot(1), &err),
                  SKIFF_OK);
    int fd;
    ASSERT_EQ_INT(skiff_client_fd(c, &fd, &err), SKIFF_OK);
    ASSERT_TRUE(readable(fd, 1000));
    run_until_idle(c, 5);
    ASSERT_EQ_INT(seen.runs[1], 1);
    ASSERT_EQ_INT(skiff_function_map_async(sq, lists, 0, NULL, on_output, on_done, slot(2), &err),
                  SKIFF_ERR_INVALID);
    ASSERT_EQ_INT(skiff_function_map_async(sq, lists, 1, NULL, NULL, on_done, slot(2), &err),
                  SKIFF_ERR_INVALID);
    ASSERT_EQ_INT(seen.runs[2], 0);
    skiff_value_free(none);
    skiff_value_free(xs);
    skiff_function_free(sq);
    skiff_error_clear(&err);
    skiff_client_close(c);
    fake_stop();
}

TEST(map_async_failure_ends_it_or_stays_in_place)
{
    fake_start();
    memset(&seen, 0, sizeof seen);
    map_outputs = map_failed_outputs = 0;
    skiff_client *c = connect_ok();
    skiff_function *sq = fn_ok(c, "square");
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *xs = ints(0, 20); /* 3, 10 and 17 fail */
    const skiff_value *lists[] = {xs};
    skiff_map_options o = {.return_exceptions = true};
    ASSERT_EQ_INT(skiff_function_map_async(sq, lists, 1, &o, on_output, on_done, slot(0), &err),
                  SKIFF_OK);
    run_until_idle(c, 10);
    ASSERT_EQ_INT(map_outputs, 20);
    ASSERT_EQ_INT(map_failed_outputs, 3);
    ASSERT_EQ_INT(seen.codes[0], SKIFF_OK);
    /* Without return_exceptions: the outputs before input 3, then the map fails with its
     * error. */
    map_outputs = map_failed_outputs = 0;
    ASSERT_EQ_INT(skiff_function_map_async(sq, lists, 1, NULL, on_output, on_done, slot(1), &err),
                  SKIFF_OK);
    run_until_idle(c, 10);
    ASSERT_EQ_INT(map_outputs, 3);
    ASSERT_EQ_INT(seen.runs[1], 1);
    ASSERT_EQ_INT(seen.codes[1], SKIFF_ERR_USER);
    ASSERT_EQ_STR(seen.types[1], "ValueError");
    /* The connection still serves calls (the cancel's answer was dropped). */
    skiff_value *args = one_int(8), *r = NULL;
    ASSERT_EQ_INT(skiff_function_remote(sq, args, NULL, &r, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_value_get_int(r), 64);
    skiff_value_free(r);
    skiff_value_free(args);
    skiff_value_free(xs);
    skiff_function_free(sq);
    skiff_error_clear(&err);
    skiff_client_close(c);
    fake_stop();
}

/* --- the twins of the remaining blocking calls ------------------------------------------------ */

static void on_url(void *ud, int rc, char *url, const skiff_error *err)
{
    enter_cb();
    record(ud, rc, err);
    free(url);
    seen.depth--;
}

static void on_autoscaler(void *ud, int rc, const skiff_autoscaler *now, const skiff_error *err)
{
    (void)now;
    enter_cb();
    record(ud, rc, err);
    seen.depth--;
}

static void on_graph(void *ud, int rc, skiff_input_info *roots, size_t n, const skiff_error *err)
{
    enter_cb();
    record(ud, rc, err);
    skiff_call_graph_free(roots, n);
    seen.depth--;
}

static void on_item_drop(void *ud, skiff_value *item)
{
    (void)ud;
    skiff_value_free(item);
}

static int never_next(void *ctx, skiff_value **args, skiff_error *err)
{
    (void)ctx;
    (void)args;
    return skiff_error_set(err, SKIFF_ERR_INTERNAL, NULL, "the source must not be called");
}

TEST(new_twins_refuse_bad_arguments_at_once_without_callback)
{
    fake_start();
    memset(&seen, 0, sizeof seen);
    skiff_client *c = connect_ok();
    skiff_function *sq = fn_ok(c, "square");
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_value *xs = ints(0, 3), *notalist = skiff_value_int(1);
    const skiff_value *lists[] = {xs}, *bad[] = {notalist};
    skiff_map_source src = {never_next, NULL}, nosrc = {NULL, NULL};
    skiff_call *call = NULL, *gen = NULL, *multi = NULL;
    ASSERT_EQ_INT(call_new(c, SQUARE_CALL, SKIFF_CALL_SINGLE, 1, &call, &err), SKIFF_OK);
    ASSERT_EQ_INT(call_new(c, SQUARE_CALL, SKIFF_CALL_GENERATOR, 1, &gen, &err), SKIFF_OK);
    ASSERT_EQ_INT(call_new(c, MAP_CALL, SKIFF_CALL_SPAWN_MAP, 3, &multi, &err), SKIFF_OK);
    skiff_autoscaler minmax = SKIFF_AUTOSCALER_INIT, unset = SKIFF_AUTOSCALER_INIT;
    minmax.min_containers = 3;
    minmax.max_containers = 1;
    int e = SKIFF_ERR_INVALID;
    ASSERT_EQ_INT(skiff_call_get_index_async(NULL, 0, 1, on_result, slot(0), &err), e);
    ASSERT_EQ_INT(skiff_call_get_index_async(gen, 0, 1, on_result, slot(0), &err), e);
    ASSERT_EQ_INT(skiff_call_get_index_async(multi, 0, NAN, on_result, slot(0), &err), e);
    ASSERT_EQ_INT(skiff_call_get_index_async(multi, SIZE_MAX, 1, on_result, slot(0), &err),
                  SKIFF_ERR_NOT_FOUND);
    ASSERT_EQ_INT(skiff_call_iter_async(gen, NULL, on_output, on_done, slot(0), &err), e);
    ASSERT_EQ_INT(skiff_call_iter_async(call, NULL, NULL, on_done, slot(0), &err), e);
    ASSERT_EQ_INT(skiff_call_get_gen_async(call, on_item_drop, on_done, slot(0), &err), e);
    ASSERT_EQ_INT(skiff_call_get_gen_async(gen, NULL, on_done, slot(0), &err), e);
    ASSERT_EQ_INT(skiff_call_from_id_async(c, "fc-short", on_call, slot(0), &err), e);
    ASSERT_EQ_INT(skiff_call_from_id_async(NULL, SQUARE_CALL, on_call, slot(0), &err), e);
    ASSERT_EQ_INT(skiff_function_spawn_map_async(sq, bad, 1, NULL, on_call, slot(0), &err), e);
    ASSERT_EQ_INT(skiff_function_spawn_map_async(sq, lists, 0, NULL, on_call, slot(0), &err), e);
    ASSERT_EQ_INT(skiff_function_spawn_map_async(sq, lists, 1, xs, on_call, slot(0), &err), e);
    ASSERT_EQ_INT(skiff_function_spawn_map_source_async(sq, &nosrc, NULL, on_call, slot(0), &err),
                  e);
    ASSERT_EQ_INT(skiff_function_spawn_map_source_async(sq, &src, NULL, NULL, slot(0), &err), e);
    ASSERT_EQ_INT(skiff_function_starmap_async(sq, xs, NULL, on_output, on_done, slot(0), &err), e);
    ASSERT_EQ_INT(
        skiff_function_map_source_async(NULL, &src, NULL, on_output, on_done, slot(0), &err), e);
    skiff_map_options wide = {.max_outstanding = SKIFF_MAP_WINDOW_MAX + 1};
    ASSERT_EQ_INT(
        skiff_function_map_source_async(sq, &src, &wide, on_output, on_done, slot(0), &err), e);
    ASSERT_EQ_INT(skiff_function_for_each_async(sq, bad, 1, NULL, false, on_done, slot(0), &err),
                  e);
    ASSERT_EQ_INT(skiff_function_for_each_async(sq, lists, 1, NULL, false, NULL, slot(0), &err), e);
    ASSERT_EQ_INT(skiff_function_spawn_gen_async(NULL, NULL, NULL, on_call, slot(0), &err), e);
    ASSERT_EQ_INT(skiff_function_spawn_gen_async(sq, xs, notalist, on_call, slot(0), &err), e);
    ASSERT_EQ_INT(skiff_function_hydrate_async(sq, NULL, slot(0), &err), e);
    ASSERT_EQ_INT(skiff_function_update_autoscaler_async(sq, &minmax, on_autoscaler, slot(0), &err),
                  e);
    ASSERT_EQ_INT(skiff_function_update_autoscaler_async(sq, &unset, on_autoscaler, slot(0), &err),
                  e);
    ASSERT_EQ_INT(skiff_function_update_autoscaler_async(sq, NULL, on_autoscaler, slot(0), &err),
                  e);
    ASSERT_EQ_INT(skiff_function_keep_warm_async(sq, -2, on_done, slot(0), &err), e);
    ASSERT_EQ_INT(skiff_function_get_web_url_async(NULL, on_url, slot(0), &err), e);
    ASSERT_EQ_INT(skiff_call_get_call_graph_async(call, NULL, slot(0), &err), e);
    ASSERT_EQ_INT(skiff_call_get_call_graph_async(NULL, on_graph, slot(0), &err), e);
    ASSERT_EQ_INT(skiff_cls_hydrate_async(NULL, on_done, slot(0), &err), e);
    ASSERT_EQ_INT(skiff_client_pending(c), 0);
    size_t ran = 99;
    ASSERT_EQ_INT(skiff_client_process(c, &ran, &err), SKIFF_OK);
    ASSERT_EQ_INT(ran, 0);
    ASSERT_EQ_INT(seen.total, 0);
    skiff_call_free(call);
    skiff_call_free(gen);
    skiff_call_free(multi);
    skiff_value_free(xs);
    skiff_value_free(notalist);
    skiff_function_free(sq);
    skiff_error_clear(&err);
    skiff_client_close(c);
    fake_stop();
}

/* Inputs x for i in 0..n-1 (x = i, or i + 1 where i % 7 == 3, which the fake fails), with
 * SKIFF_AGAIN before every other one. */
struct again_src {
    int64_t next, n;
    int calls, agains;
};

static int again_next(void *ctx, skiff_value **args, skiff_error *err)
{
    (void)err;
    struct again_src *s = ctx;
    if (s->next >= s->n)
        return SKIFF_OK;
    if (++s->calls % 2 == 0) {
        s->agains++;
        return SKIFF_AGAIN;
    }
    int64_t i = s->next++;
    *args = one_int(i % 7 == 3 ? i + 1 : i);
    return SKIFF_OK;
}

TEST(map_source_and_for_each_async_against_the_fake)
{
    fake_start();
    memset(&seen, 0, sizeof seen);
    map_outputs = map_failed_outputs = 0;
    skiff_client *c = connect_ok();
    skiff_function *sq = fn_ok(c, "square");
    skiff_error err = SKIFF_ERROR_INIT;
    struct again_src s = {0, 60, 0, 0};
    skiff_map_source src = {again_next, &s};
    skiff_map_options o = {.max_outstanding = 8};
    ASSERT_EQ_INT(skiff_function_map_source_async(sq, &src, &o, on_output, on_done, slot(0), &err),
                  SKIFF_OK);
    ASSERT_EQ_INT(s.calls, 0); /* the source is asked only from process */
    run_until_idle(c, 10);
    ASSERT_EQ_INT(seen.runs[0], 1);
    ASSERT_EQ_INT(seen.codes[0], SKIFF_OK);
    ASSERT_EQ_INT(map_outputs, 60);
    ASSERT_GT_INT(s.agains, 10);
    for (int64_t i = 0; i < 60; i++) {
        int64_t x = i % 7 == 3 ? i + 1 : i;
        ASSERT_EQ_INT(map_values[i], x * x);
    }
    /* for_each: 3, 10 and 17 fail: the first failure, or SKIFF_OK when ignored */
    skiff_value *xs = ints(0, 20);
    const skiff_value *lists[] = {xs};
    ASSERT_EQ_INT(skiff_function_for_each_async(sq, lists, 1, NULL, false, on_done, slot(1), &err),
                  SKIFF_OK);
    run_until_idle(c, 10);
    ASSERT_EQ_INT(seen.runs[1], 1);
    ASSERT_EQ_INT(seen.codes[1], SKIFF_ERR_USER);
    ASSERT_EQ_STR(seen.types[1], "ValueError");
    ASSERT_EQ_INT(skiff_function_for_each_async(sq, lists, 1, NULL, true, on_done, slot(2), &err),
                  SKIFF_OK);
    run_until_idle(c, 10);
    ASSERT_EQ_INT(seen.runs[2], 1);
    ASSERT_EQ_INT(seen.codes[2], SKIFF_OK);
    ASSERT_EQ_INT(seen.max_depth, 1);
    skiff_value_free(xs);
    skiff_function_free(sq);
    skiff_error_clear(&err);
    skiff_client_close(c);
    fake_stop();
}

TEST(hydrate_async_completes_in_process_and_fails_with_a_lost_connection)
{
    fake_start();
    memset(&seen, 0, sizeof seen);
    skiff_client *c = connect_ok();
    skiff_function *sq = fn_ok(c, "square"), *nope = fn_ok(c, "nope"), *hang = fn_ok(c, "hangup");
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_NULL(skiff_function_id(sq));
    ASSERT_EQ_INT(skiff_function_hydrate_async(sq, on_done, slot(0), &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_function_hydrate_async(nope, on_done, slot(1), &err), SKIFF_OK);
    ASSERT_EQ_INT(seen.total, 0);
    run_until_idle(c, 5);
    ASSERT_EQ_INT(seen.codes[0], SKIFF_OK);
    ASSERT_EQ_STR(skiff_function_id(sq), FN_ID);
    ASSERT_EQ_INT(seen.codes[1], SKIFF_ERR_NOT_FOUND);
    /* hydrated already: nothing is sent, the callback still waits for process */
    int fd;
    ASSERT_EQ_INT(skiff_client_fd(c, &fd, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_function_hydrate_async(sq, on_done, slot(2), &err), SKIFF_OK);
    ASSERT_EQ_INT(seen.runs[2], 0);
    ASSERT_TRUE(readable(fd, 1000));
    run_until_idle(c, 5);
    ASSERT_EQ_INT(seen.runs[2], 1);
    ASSERT_EQ_INT(seen.codes[2], SKIFF_OK);
    /* the server hangs up before answering: the pending LOOKUP fails through its callback */
    skiff_value *args = one_int(1);
    skiff_function *lazy = fn_ok(c, "slow");
    ASSERT_EQ_INT(skiff_function_remote_async(hang, args, NULL, on_result, slot(3), &err),
                  SKIFF_OK);
    /* Sent on the doomed connection: either the send already fails (SKIFF_ERR_CONNECTION at
     * once, no callback) or the request is lost (SKIFF_ERR_CONNECTION through the callback). */
    int rc = skiff_function_hydrate_async(lazy, on_done, slot(4), &err);
    run_until_idle(c, 5);
    ASSERT_EQ_INT(seen.codes[3], SKIFF_ERR_CONNECTION);
    if (rc == SKIFF_OK) {
        ASSERT_EQ_INT(seen.runs[4], 1);
        ASSERT_EQ_INT(seen.codes[4], SKIFF_ERR_CONNECTION);
    } else {
        ASSERT_EQ_INT(rc, SKIFF_ERR_CONNECTION);
        ASSERT_EQ_INT(seen.runs[4], 0);
    }
    skiff_value_free(args);
    skiff_function_free(lazy);
    skiff_function_free(hang);
    skiff_function_free(nope);
    skiff_function_free(sq);
    skiff_error_clear(&err);
    skiff_client_close(c);
    fake_stop();
}

static skiff_value *three_ints(void)
{
    return ints(0, 3);
}

static int start_hydrate_and_for_each(skiff_function *sq, const skiff_value *arg, skiff_error *err)
{
    const skiff_value *lists[] = {arg};
    int rc = skiff_function_hydrate_async(sq, on_done, slot(0), err);
    return rc == SKIFF_OK
               ? skiff_function_for_each_async(sq, lists, 1, NULL, true, on_done, slot(1), err)
               : rc;
}

static void check_hydrated(skiff_function *sq)
{
    ASSERT_EQ_STR(skiff_function_id(sq), FN_ID);
}

TEST(out_of_memory_in_the_new_twins_never_crashes)
{
    oom_until_ok(start_hydrate_and_for_each, three_ints, check_hydrated);
}
