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
 *
 * Protocol version 2: one map (or spawn_map) per connection, whose outputs it computes as inputs
 * arrive (square, mapfail failing on x % 5 == 3, echo returning the payload) and sends after
 * each request it handles, newest first and 7 per STREAM frame, so ordered maps must reorder;
 * it counts the inputs it holds without having sent their output (the window as the server sees
 * it) and the largest chunk. A spawn_map's outputs are kept for GET with index and OUTPUTS in
 * index order. Generators counter(n) and countfail(n) stream [seq, 0, seq * 10] (countfail
 * fails after two items); a web function has a URL; STATS, AUTOSCALER, CALL_GRAPH, CLS_LOOKUP
 * (class Model, method predict) and LOGS get canned answers. The CLI tests run the built `skiff`
 * binary (../bin/skiff next to this test) against the fake.
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
#define MAP_ID "fc-01M80000000000000000000004"
#define SMAP_ID "fc-01M80000000000000000000005"
#define GEN_ID "fc-01M80000000000000000000006"
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
    /* maps (under mu) */
    int map_inputs_frames, map_max_chunk, map_outstanding, map_max_outstanding, map_starts;
    int map_cancels, bad_starts, outputs_requests;
    int64_t map_count;
    char last_params[64];
    /* the connection's state (server thread only) */
    struct deferred deferred[MAX_DEFERRED];
    int ndeferred;
} fk;

/* --- building replies (malloc only) ----------------------------------------------------------- */

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

/* --- serving ---------------------------------------------------------------------------------- */

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
static const char *const functions[] = {"square",  "slow",      "echo",   "fail",
                                        "garbage", "badvalue",  "hangup", "mapfail",
                                        "counter", "countfail", "web",    NULL};

static const char *fn_id(int i)
{
    static const char *const ids[] = {
        "fu-01M80000000000000000000000", "fu-01M80000000000000000000001",
        "fu-01M80000000000000000000002", "fu-01M80000000000000000000003",
        "fu-01M80000000000000000000004", "fu-01M80000000000000000000005",
        "fu-01M80000000000000000000006", "fu-01M80000000000000000000007",
        "fu-01M80000000000000000000008", "fu-01M80000000000000000000009",
        "fu-01M8000000000000000000000A"};
    return ids[i];
}

/* Generators of the fake: counter(n) yields 0..n-1; countfail(n) yields 0, 1 and then fails. */
static bool is_gen(int fn)
{
    return fn >= 0 && (!strcmp(functions[fn], "counter") || !strcmp(functions[fn], "countfail"));
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

static void stream_gen(int fd, uint64_t rid, int fn, int64_t n, int64_t from);

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
    const msgpack_object *gen = wire_obj_get(root, "gen");
    bool is_spawn = sp && sp->type == MSGPACK_OBJECT_BOOLEAN && sp->via.boolean;
    bool want_gen = gen && gen->type == MSGPACK_OBJECT_BOOLEAN && gen->via.boolean;
    int64_t x = first_arg(root);
    const msgpack_object *params = wire_obj_get(root, "params");
    pthread_mutex_lock(&fk.mu);
    fk.last_params[0] = '\0';
    if (params && params->type == MSGPACK_OBJECT_BIN) /* hex of the first bytes */
        for (uint32_t i = 0; i < params->via.bin.size && i < 31; i++)
            snprintf(fk.last_params + 2 * i, 3, "%02x", (unsigned char)params->via.bin.ptr[i]);
    pthread_mutex_unlock(&fk.mu);
    if (want_gen != is_gen(idx)) {
        reply_error(fd, rid, SKIFF_ERR_INVALID, "InvalidError",
                    want_gen ? "not a generator" : "a generator: use remote_gen", NULL);
        return true;
    }
    if (want_gen && is_spawn) {
        reply_strs(fd, rid, "call_id", GEN_ID, "function_id", fn_id(idx), NULL);
        return true;
    }
    if (want_gen) {
        stream_gen(fd, rid, idx, x, 0);
        return true;
    }
    if (is_spawn) {
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

static void serve_get_index(int fd, uint64_t rid, int64_t index);

static void serve_get(int fd, uint64_t rid, const msgpack_object *root)
{
    int64_t t = field_int(root, "timeout_ms");
    pthread_mutex_lock(&fk.mu);
    fk.last_timeout_ms = t;
    pthread_mutex_unlock(&fk.mu);
    if (field_is(root, "call_id", SMAP_ID))
        serve_get_index(fd, rid, field_int(root, "index"));
    else if (field_is(root, "call_id", GEN_ID))
        reply_error(fd, rid, SKIFF_ERR_INVALID, "InvalidError", "a generator call", NULL);
    else if (field_is(root, "call_id", FAILED_ID))
        reply_error(fd, rid, SKIFF_ERR_USER, "ValueError", "x must be positive", NULL);
    else if (!field_is(root, "call_id", SPAWN_ID))
        reply_error(fd, rid, SKIFF_ERR_NOT_FOUND, "NotFoundError", "no such call", NULL);
    else if (t == 0)
        reply_error(fd, rid, SKIFF_ERR_TIMEOUT, "TimeoutError", "has not finished yet", NULL);
    else
        reply_value(fd, rid, FN_ID, 1234, NULL, 0);
}

/* --- version 2: maps, generators and the rest ------------------------------------------------- */

/* One output of the fake's map: the msgpack of [index, 0, value] or [index, code, ...]. */
struct fout {
    int64_t index;
    char *item;
    size_t len;
};

/* The one map (or spawn_map) of the connection (server thread only). */
static struct fmap {
    bool active, spawn, last;
    int fn;
    int64_t count;        /* inputs received */
    uint64_t outputs_rid; /* the OUTPUTS stream, 0 if none */
    struct fout *pending; /* outputs not yet sent */
    size_t npending, cap;
    int64_t sent; /* outputs sent */
} fm;

static void fout_push(int64_t index, const char *item, size_t len)
{
    if (fm.npending == fm.cap) {
        fm.cap = fm.cap ? fm.cap * 2 : 64;
        fm.pending = realloc(fm.pending, fm.cap * sizeof *fm.pending);
    }
    struct fout *o = &fm.pending[fm.npending++];
    o->index = index;
    o->item = malloc(len);
    memcpy(o->item, item, len);
    o->len = len;
}

static void fmap_reset(void)
{
    for (size_t i = 0; i < fm.npending; i++)
        free(fm.pending[i].item);
    free(fm.pending);
    memset(&fm, 0, sizeof fm);
}

/* The first positional argument of an argument payload (an int), 0 if none. */
static int64_t payload_first(const char *p, size_t n)
{
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    msgpack_object o;
    size_t off = 0;
    int64_t v = 0;
    if (msgpack_unpack(p, n, &off, &z, &o) == MSGPACK_UNPACK_SUCCESS &&
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

/* Computes input index's output for the map's function and queues it: square and mapfail
 * square their first argument (mapfail fails when it is 3 mod 5), echo returns the payload. */
static void fmap_run(int64_t index, const char *payload, size_t n)
{
    msgpack_sbuffer sb, vb;
    msgpack_sbuffer_init(&sb);
    msgpack_sbuffer_init(&vb);
    msgpack_packer pk, vpk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_packer_init(&vpk, &vb, msgpack_sbuffer_write);
    int64_t x = payload_first(payload, n);
    const char *name = functions[fm.fn];
    if (!strcmp(name, "mapfail") && x % 5 == 3) {
        char msg[64];
        snprintf(msg, sizeof msg, "bad input %lld", (long long)x);
        msgpack_pack_array(&pk, 5);
        msgpack_pack_int64(&pk, index);
        msgpack_pack_int(&pk, SKIFF_ERR_USER);
        pk_str(&pk, "ValueError");
        pk_str(&pk, msg);
        pk_str(&pk, "app.c:7 in mapfail");
    } else {
        msgpack_pack_array(&pk, 3);
        msgpack_pack_int64(&pk, index);
        msgpack_pack_int(&pk, 0);
        if (!strcmp(name, "echo")) {
            msgpack_pack_bin_with_body(&pk, payload, n);
        } else {
            msgpack_pack_int64(&vpk, x * x);
            msgpack_pack_bin_with_body(&pk, vb.data, vb.size);
        }
    }
    fout_push(index, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&vb);
}

static void outstanding_update(void)
{
    pthread_mutex_lock(&fk.mu);
    fk.map_outstanding = (int)(fm.count - fm.sent);
    if (fk.map_outstanding > fk.map_max_outstanding)
        fk.map_max_outstanding = fk.map_outstanding;
    fk.map_count = fm.count;
    pthread_mutex_unlock(&fk.mu);
}

static void reply_count(int fd, uint64_t rid, int64_t count)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    reply_begin(&sb, &pk, OP_OK, rid, 1);
    pk_str(&pk, "count");
    msgpack_pack_int64(&pk, count);
    reply_send(fd, &sb);
    msgpack_sbuffer_destroy(&sb);
}

/* Sends the map's pending outputs on its OUTPUTS stream, newest first (so an ordered map has to
 * reorder), 7 per STREAM frame, then the final OK once the inputs are closed and all sent. */
static void fmap_flush(int fd)
{
    if (!fm.active || !fm.outputs_rid)
        return;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    while (fm.npending > 0 && (!fm.spawn || fm.last)) {
        size_t k = fm.npending < 7 ? fm.npending : 7;
        reply_begin(&sb, &pk, OP_STREAM, fm.outputs_rid, 2);
        pk_str(&pk, "items");
        msgpack_pack_array(&pk, k);
        for (size_t i = 0; i < k; i++) {
            struct fout *o = &fm.pending[--fm.npending];
            msgpack_sbuffer_write(&sb, o->item, o->len);
            if (!fm.spawn)
                free(o->item);
        }
        pk_str(&pk, "backlog");
        msgpack_pack_int64(&pk, (int64_t)fm.npending);
        fm.sent += (int64_t)k;
        outstanding_update();
        reply_send(fd, &sb);
    }
    if (fm.last && fm.npending == 0) {
        reply_count(fd, fm.outputs_rid, fm.count);
        fm.outputs_rid = 0;
        if (fm.spawn) { /* kept: the outputs stay for GET and another OUTPUTS */
            fm.npending = (size_t)fm.count;
            fm.sent = 0;
        }
    }
    msgpack_sbuffer_destroy(&sb);
}

static void serve_map_start(int fd, uint64_t rid, const msgpack_object *root)
{
    bool by_id;
    int idx = find_function(root, &by_id);
    const msgpack_object *params = wire_obj_get(root, "params");
    pthread_mutex_lock(&fk.mu);
    field_copy(root, "parent_input_id", fk.last_parent, sizeof fk.last_parent);
    fk.last_params[0] = '\0';
    if (params && params->type == MSGPACK_OBJECT_BIN) /* hex of the first bytes */
        for (uint32_t i = 0; i < params->via.bin.size && i < 31; i++)
            snprintf(fk.last_params + 2 * i, 3, "%02x", (unsigned char)params->via.bin.ptr[i]);
    pthread_mutex_unlock(&fk.mu);
    if (idx < 0) {
        not_found(fd, rid, root);
        return;
    }
    if (is_gen(idx)) {
        reply_error(fd, rid, SKIFF_ERR_INVALID, "InvalidError", "a generator cannot be mapped",
                    NULL);
        return;
    }
    fmap_reset();
    fm.active = true;
    fm.fn = idx;
    const msgpack_object *sp = wire_obj_get(root, "spawn");
    fm.spawn = sp && sp->type == MSGPACK_OBJECT_BOOLEAN && sp->via.boolean;
    pthread_mutex_lock(&fk.mu);
    fk.map_starts++;
    fk.map_max_outstanding = fk.map_outstanding = fk.map_max_chunk = fk.map_inputs_frames = 0;
    pthread_mutex_unlock(&fk.mu);
    reply_strs(fd, rid, "call_id", fm.spawn ? SMAP_ID : MAP_ID, "function_id", fn_id(idx), NULL);
}

/* Handles MAP_INPUTS. Returns false to close the connection (a map of "hangup"). */
static bool serve_map_inputs(int fd, uint64_t rid, const msgpack_object *root)
{
    const msgpack_object *args = wire_obj_get(root, "args");
    const msgpack_object *last = wire_obj_get(root, "last");
    if (fm.active && !strcmp(functions[fm.fn], "hangup"))
        return false;
    if (fm.active && !strcmp(functions[fm.fn], "slow")) { /* refuses every input */
        reply_error(fd, rid, SKIFF_ERR_RESOURCE_EXHAUSTED, "ResourceExhaustedError",
                    "the queue is full", NULL);
        return true;
    }
    if (!fm.active || !field_is(root, "call_id", fm.spawn ? SMAP_ID : MAP_ID) || fm.last ||
        field_int(root, "start") != fm.count || !args || args->type != MSGPACK_OBJECT_ARRAY) {
        reply_error(fd, rid, SKIFF_ERR_INVALID, "InvalidError", "inputs lost or repeated", NULL);
        return true;
    }
    for (uint32_t i = 0; i < args->via.array.size; i++) {
        const msgpack_object *a = &args->via.array.ptr[i];
        fmap_run(fm.count++, a->via.bin.ptr, a->via.bin.size);
    }
    fm.last = last && last->type == MSGPACK_OBJECT_BOOLEAN && last->via.boolean;
    pthread_mutex_lock(&fk.mu);
    fk.map_inputs_frames++;
    if ((int)args->via.array.size > fk.map_max_chunk)
        fk.map_max_chunk = (int)args->via.array.size;
    pthread_mutex_unlock(&fk.mu);
    if (!fm.spawn)
        outstanding_update();
    reply_count(fd, rid, fm.count);
    return true;
}

/* Sorts outputs by descending index, so fmap_flush sends them in index order. */
static int by_index_desc(const void *a, const void *b)
{
    const struct fout *x = a, *y = b;
    return x->index < y->index ? 1 : x->index > y->index ? -1 : 0;
}

/* A generator's items [seq, 0, seq * 10] for seq from..n-1, 3 per frame; countfail stops after
 * 2 items with a ValueError. Then OK count (or the error) on rid. */
static void stream_gen(int fd, uint64_t rid, int fn, int64_t n, int64_t from)
{
    bool fails = !strcmp(functions[fn], "countfail");
    int64_t end = fails && n > 2 ? 2 : n;
    msgpack_sbuffer sb, vb;
    msgpack_sbuffer_init(&sb);
    msgpack_sbuffer_init(&vb);
    msgpack_packer pk, vpk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_packer_init(&vpk, &vb, msgpack_sbuffer_write);
    for (int64_t seq = from; seq < end;) {
        int64_t k = end - seq < 3 ? end - seq : 3;
        reply_begin(&sb, &pk, OP_STREAM, rid, 1);
        pk_str(&pk, "items");
        msgpack_pack_array(&pk, (size_t)k);
        for (int64_t i = 0; i < k; i++, seq++) {
            msgpack_sbuffer_clear(&vb);
            msgpack_pack_int64(&vpk, seq * 10);
            msgpack_pack_array(&pk, 3);
            msgpack_pack_int64(&pk, seq);
            msgpack_pack_int(&pk, 0);
            msgpack_pack_bin_with_body(&pk, vb.data, vb.size);
        }
        reply_send(fd, &sb);
    }
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&vb);
    if (fails && n > 2)
        reply_error(fd, rid, SKIFF_ERR_USER, "ValueError", "the generator broke",
                    "app.c:3 in countfail");
    else
        reply_count(fd, rid, n);
}

static void serve_outputs(int fd, uint64_t rid, const msgpack_object *root)
{
    pthread_mutex_lock(&fk.mu);
    fk.outputs_requests++;
    pthread_mutex_unlock(&fk.mu);
    int64_t from = field_int(root, "from");
    if (field_is(root, "call_id", GEN_ID)) {
        stream_gen(fd, rid, 8, 5, from == INT64_MIN ? 0 : from); /* spawned counter(5) */
        return;
    }
    if (!fm.active || !field_is(root, "call_id", fm.spawn ? SMAP_ID : MAP_ID)) {
        reply_error(fd, rid, SKIFF_ERR_NOT_FOUND, "NotFoundError", "no such map", NULL);
        return;
    }
    fm.outputs_rid = rid;
    if (fm.spawn) /* kept outputs go in index order */
        qsort(fm.pending, fm.npending, sizeof *fm.pending, by_index_desc);
}

/* GET on the spawn_map: the kept output of input index (-1: no index given). */
static void serve_get_index(int fd, uint64_t rid, int64_t index)
{
    if (index == INT64_MIN) {
        reply_error(fd, rid, SKIFF_ERR_INVALID, "InvalidError", "a spawn_map needs an index", NULL);
        return;
    }
    for (size_t i = 0; fm.spawn && i < (size_t)fm.count; i++) {
        if (fm.pending[i].index != index)
            continue;
        msgpack_zone z;
        msgpack_zone_init(&z, 1024);
        msgpack_object o;
        size_t off = 0;
        msgpack_unpack(fm.pending[i].item, fm.pending[i].len, &off, &z, &o);
        if (o.via.array.ptr[1].via.u64 == 0)
            reply_value(fd, rid, fn_id(fm.fn), 0, o.via.array.ptr[2].via.bin.ptr,
                        o.via.array.ptr[2].via.bin.size);
        else
            reply_error(fd, rid, SKIFF_ERR_USER, "ValueError", "kept failure", NULL);
        msgpack_zone_destroy(&z);
        return;
    }
    reply_error(fd, rid, SKIFF_ERR_NOT_FOUND, "NotFoundError", "index out of range", NULL);
}

/* Packs a call graph input node with n children (packed next by the caller). */
static void pack_node(msgpack_packer *pk, const char *input_id, const char *status, int children)
{
    msgpack_pack_map(pk, 7);
    pk_str(pk, "input_id");
    pk_str(pk, input_id);
    pk_str(pk, "call_id");
    pk_str(pk, SPAWN_ID);
    pk_str(pk, "index");
    msgpack_pack_int(pk, 0);
    pk_str(pk, "container_id");
    if (children)
        pk_str(pk, "ta-01M80000000000000000000001");
    else
        msgpack_pack_nil(pk);
    pk_str(pk, "status");
    pk_str(pk, status);
    pk_str(pk, "function");
    pk_str(pk, children ? "app.square" : "other.echo");
    pk_str(pk, "children");
    msgpack_pack_array(pk, (size_t)children);
}

/* STATS, AUTOSCALER, CALL_GRAPH, CLS_LOOKUP and LOGS with canned answers. */
static void serve_v2_info(int fd, uint64_t rid, int op, const msgpack_object *root)
{
    bool by_id;
    int idx = find_function(root, &by_id);
    if ((op == OP_STATS || op == OP_AUTOSCALER) && idx < 0) {
        not_found(fd, rid, root);
        return;
    }
    if (op == OP_CALL_GRAPH && !field_is(root, "call_id", SPAWN_ID)) {
        reply_error(fd, rid, SKIFF_ERR_NOT_FOUND, "NotFoundError", "no such call", NULL);
        return;
    }
    if (op == OP_CLS_LOOKUP && !field_is(root, "class", "Model")) {
        reply_error(fd, rid, SKIFF_ERR_NOT_FOUND, "NotFoundError",
                    "Lookup failed for Cls 'Nope' from the 'app' app", NULL);
        return;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (op == OP_STATS) {
        reply_begin(&sb, &pk, OP_OK, rid, 4);
        const char *k[] = {"backlog", "num_total_runners", "num_running_inputs", "input_headroom"};
        for (int i = 0; i < 4; i++) {
            pk_str(&pk, k[i]);
            msgpack_pack_int(&pk, 10 + i);
        }
    } else if (op == OP_AUTOSCALER) {
        reply_begin(&sb, &pk, OP_OK, rid, 1);
        pk_str(&pk, "autoscaler");
        msgpack_pack_map(&pk, 4);
        const char *k[] = {"min_containers", "max_containers", "buffer_containers"};
        const int64_t dflt[] = {0, 8, 0};
        for (int i = 0; i < 3; i++) {
            int64_t v = field_int(root, k[i]);
            pk_str(&pk, k[i]);
            msgpack_pack_int64(&pk, v == INT64_MIN ? dflt[i] : v);
        }
        const msgpack_object *w = wire_obj_get(root, "scaledown_window");
        pk_str(&pk, "scaledown_window");
        msgpack_pack_double(&pk, w && w->type == MSGPACK_OBJECT_FLOAT64 ? w->via.f64 : 60.0);
    } else if (op == OP_CALL_GRAPH) {
        reply_begin(&sb, &pk, OP_OK, rid, 1);
        pk_str(&pk, "inputs");
        msgpack_pack_array(&pk, 1);
        pack_node(&pk, "in-01M80000000000000000000001", "SUCCESS", 1);
        pack_node(&pk, "in-01M80000000000000000000002", "TERMINATED", 0);
    } else if (op == OP_CLS_LOOKUP) {
        reply_begin(&sb, &pk, OP_OK, rid, 4);
        pk_str(&pk, "app_id");
        pk_str(&pk, "ap-01M80000000000000000000001");
        pk_str(&pk, "class");
        pk_str(&pk, "Model");
        pk_str(&pk, "params");
        pk_str(&pk, "name:str, n:int");
        pk_str(&pk, "methods");
        msgpack_pack_array(&pk, 1);
        msgpack_pack_map(&pk, 3);
        pk_str(&pk, "name");
        pk_str(&pk, "predict");
        pk_str(&pk, "function_id");
        pk_str(&pk, fn_id(0));
        pk_str(&pk, "kind");
        pk_str(&pk, "function");
    } else { /* LOGS: two lines, then the end */
        reply_begin(&sb, &pk, OP_STREAM, rid, 1);
        pk_str(&pk, "items");
        msgpack_pack_array(&pk, 2);
        for (int i = 0; i < 2; i++) {
            msgpack_pack_array(&pk, 5);
            msgpack_pack_int64(&pk, 1700000000000 + i);
            pk_str(&pk, "ta-01M80000000000000000000001");
            msgpack_pack_nil(&pk);
            pk_str(&pk, i ? "stderr" : "stdout");
            pk_str(&pk, i ? "line two" : "line one");
        }
        reply_send(fd, &sb);
        reply_begin(&sb, &pk, OP_OK, rid, 0);
    }
    reply_send(fd, &sb);
    msgpack_sbuffer_destroy(&sb);
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
        if (idx >= 0 && !by_id && !strcmp(functions[idx], "web"))
            reply_strs(fd, rid, "app_id", "ap-01M80000000000000000000001", "function_id",
                       fn_id(idx), "kind", "web", "web_url", "http://127.0.0.1:7879/app/web", NULL);
        else if (idx >= 0 && !by_id)
            reply_strs(fd, rid, "app_id", "ap-01M80000000000000000000001", "function_id",
                       fn_id(idx), "kind", is_gen(idx) ? "generator" : "function", NULL);
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
        if (field_is(root, "call_id", MAP_ID))
            fk.map_cancels++;
        pthread_mutex_unlock(&fk.mu);
        if (field_is(root, "call_id", MAP_ID) && fm.outputs_rid) {
            reply_error(fd, fm.outputs_rid, SKIFF_ERR_CANCELLED, "CancelledError", "cancelled",
                        NULL);
            fmap_reset();
        }
        reply_strs(fd, rid, NULL);
        return true;
    case OP_MAP_START:
        serve_map_start(fd, rid, root);
        return true;
    case OP_MAP_INPUTS:
        return serve_map_inputs(fd, rid, root);
    case OP_OUTPUTS:
        serve_outputs(fd, rid, root);
        return true;
    case OP_STATS:
    case OP_AUTOSCALER:
    case OP_CALL_GRAPH:
    case OP_CLS_LOOKUP:
    case OP_LOGS:
        serve_v2_info(fd, rid, (int)op, root);
        return true;
    case OP_CALL_INFO:
        if (field_is(root, "call_id", SMAP_ID) || field_is(root, "call_id", GEN_ID)) {
            bool smap = field_is(root, "call_id", SMAP_ID);
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            reply_begin(&sb, &pk, OP_OK, rid, 3);
            pk_str(&pk, "call_id");
            pk_str(&pk, smap ? SMAP_ID : GEN_ID);
            pk_str(&pk, "kind");
            pk_str(&pk, smap ? "spawn_map" : "generator");
            pk_str(&pk, "inputs");
            msgpack_pack_int64(&pk, smap ? fm.count : 1);
            reply_send(fd, &sb);
            msgpack_sbuffer_destroy(&sb);
        } else if (field_is(root, "call_id", SPAWN_ID) || field_is(root, "call_id", FAILED_ID))
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
            fmap_flush(fd);
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
    if (!fm.spawn)
        fmap_reset(); /* a map dies with its connection; a spawn_map is kept */
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
    fmap_reset();
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

/* --- threads ---------------------------------------------------------------------------------- */

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
    ASSERT_EQ_INT(client_token_new(c, NULL, 0, &reply, &err), SKIFF_OK);
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

/* --- allocation failures ---------------------------------------------------------------------- */

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

/* --- maps ------------------------------------------------------------------------------------- */

static skiff_value *int_list(int64_t from, int64_t n)
{
    skiff_value *l = skiff_value_list();
    for (int64_t i = 0; i < n; i++)
        skiff_list_append(l, skiff_value_int(from + i));
    return l;
}

static int fake_int(const int *counter)
{
    return observed(counter);
}

TEST(map_ordered_value_by_value_with_window)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *fn = fn_ok(c, "square");
    skiff_value *xs = int_list(0, 1000);
    const skiff_value *lists[] = {xs};
    skiff_map_options o = {.max_outstanding = 10};
    skiff_map *m = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(skiff_function_map(fn, lists, 1, &o, &m, &err), SKIFF_OK);
    ASSERT_NOT_NULL(skiff_map_call_id(m));
    skiff_map_output out = {0};
    int64_t i = 0;
    int rc;
    while ((rc = skiff_map_next(m, &out, &err)) == SKIFF_OK) {
        ASSERT_EQ_INT((int64_t)out.index, i); /* the fake sends newest first: reordered */
        ASSERT_EQ_INT(skiff_value_get_int(out.value), i * i);
        skiff_map_stats st;
        skiff_map_get_stats(m, &st);
        ASSERT_TRUE(st.outstanding <= 10);
        skiff_map_output_clear(&out);
        i++;
    }
    ASSERT_EQ_INT(rc, SKIFF_DONE);
    ASSERT_EQ_INT(i, 1000);
    ASSERT_EQ_INT(skiff_map_next(m, &out, &err), SKIFF_DONE); /* stays done */
    skiff_map_stats st;
    skiff_map_get_stats(m, &st);
    ASSERT_EQ_INT(st.sent, 1000);
    ASSERT_EQ_INT(st.delivered, 1000);
    ASSERT_EQ_INT(st.outstanding, 0);
    ASSERT_TRUE(st.inputs_done);
    ASSERT_EQ_INT(st.backlog, 0);
    ASSERT_TRUE(fake_int(&fk.map_max_outstanding) <= 10); /* the window, seen by the server */
    ASSERT_GT_INT(fake_int(&fk.map_max_outstanding), 1);  /* and it was used */
    ASSERT_EQ_INT(fake_int(&fk.map_cancels), 0);
    skiff_map_free(m);
    skiff_value_free(xs);
    skiff_function_free(fn);
    skiff_client_close(c);
    fake_stop();
}

TEST(map_unordered_completion_order)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *fn = fn_ok(c, "square");
    skiff_value *xs = int_list(0, 300);
    const skiff_value *lists[] = {xs};
    skiff_map_options o = {.unordered = true, .max_outstanding = 50};
    skiff_map *m = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(skiff_function_map(fn, lists, 1, &o, &m, &err), SKIFF_OK);
    static bool seen[300];
    skiff_map_output out = {0};
    int n = 0, out_of_order = 0;
    while (skiff_map_next(m, &out, &err) == SKIFF_OK) {
        ASSERT_TRUE(out.index < 300 && !seen[out.index]);
        seen[out.index] = true;
        ASSERT_EQ_INT(skiff_value_get_int(out.value), (int64_t)(out.index * out.index));
        if ((int)out.index != n)
            out_of_order++;
        n++;
        skiff_map_output_clear(&out);
    }
    ASSERT_EQ_INT(n, 300);
    ASSERT_GT_INT(out_of_order, 0); /* completion order, not input order */
    ASSERT_TRUE(fake_int(&fk.map_max_outstanding) <= 50);
    skiff_map_free(m);
    skiff_value_free(xs);
    skiff_function_free(fn);
    skiff_client_close(c);
    fake_stop();
}

TEST(map_zip_shortest_and_kwargs)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *fn = fn_ok(c, "echo");
    skiff_value *a = int_list(0, 5), *b = int_list(100, 3);
    const skiff_value *lists[] = {a, b};
    skiff_value *kw = skiff_value_map();
    skiff_map_set(kw, "scale", skiff_value_int(7));
    skiff_map_options o = {.kwargs = kw};
    skiff_map *m = NULL;
    skiff_value *all = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(skiff_function_map(fn, lists, 2, &o, &m, &err), SKIFF_OK);
    skiff_value_free(kw); /* copied by the map */
    ASSERT_EQ_INT(skiff_map_collect(m, &all, &err), SKIFF_OK);
    char *json = skiff_value_to_json(all);
    ASSERT_EQ_STR(json,
                  "[[[0,100],{\"scale\":7}],[[1,101],{\"scale\":7}],[[2,102],{\"scale\":7}]]");
    free(json);
    skiff_value_free(all);
    skiff_map_free(m);

    /* starmap spreads each tuple */
    skiff_value *tuples = skiff_value_list();
    skiff_list_append(tuples, skiff_value_list_of(2, skiff_value_int(1), skiff_value_int(2)));
    skiff_list_append(tuples, skiff_value_list_of(1, skiff_value_string("x")));
    ASSERT_EQ_INT(skiff_function_starmap(fn, tuples, NULL, &m, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_map_collect(m, &all, &err), SKIFF_OK);
    json = skiff_value_to_json(all);
    ASSERT_EQ_STR(json, "[[[1,2],{}],[[\"x\"],{}]]");
    free(json);
    skiff_value_free(all);
    skiff_map_free(m);
    skiff_list_append(tuples, skiff_value_int(3)); /* not a tuple */
    m = NULL;
    ASSERT_EQ_INT(skiff_function_starmap(fn, tuples, NULL, &m, &err), SKIFF_ERR_INVALID);
    ASSERT_NULL(m);
    skiff_error_clear(&err);
    skiff_value_free(tuples);
    skiff_value_free(a);
    skiff_value_free(b);
    skiff_function_free(fn);
    skiff_client_close(c);
    fake_stop();
}

TEST(map_empty_input_returns_at_once)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *fn = fn_ok(c, "square");
    skiff_value *a = int_list(0, 4), *empty = skiff_value_list();
    const skiff_value *lists[] = {a, empty};
    skiff_map *m = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_map_output out = {0};
    ASSERT_EQ_INT(skiff_function_map(fn, lists, 2, NULL, &m, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_map_next(m, &out, &err), SKIFF_DONE);
    ASSERT_NULL(skiff_map_call_id(m));
    ASSERT_EQ_INT(fake_int(&fk.map_starts), 0); /* nothing was sent */
    skiff_map_free(m);
    ASSERT_EQ_INT(skiff_function_for_each(fn, lists, 2, NULL, false, &err), SKIFF_OK);
    skiff_value_free(a);
    skiff_value_free(empty);
    skiff_function_free(fn);
    skiff_client_close(c);
    fake_stop();
}

TEST(map_failure_raised_in_order_and_return_exceptions)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *fn = fn_ok(c, "mapfail"); /* fails when x % 5 == 3 */
    skiff_value *xs = int_list(0, 20);
    const skiff_value *lists[] = {xs};
    skiff_map *m = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_map_output out = {0};
    ASSERT_EQ_INT(skiff_function_map(fn, lists, 1, NULL, &m, &err), SKIFF_OK);
    for (int i = 0; i < 3; i++) { /* 0, 1, 2 come first although the fake sends newest first */
        ASSERT_EQ_INT(skiff_map_next(m, &out, &err), SKIFF_OK);
        ASSERT_EQ_INT((int)out.index, i);
        skiff_map_output_clear(&out);
    }
    ASSERT_EQ_INT(skiff_map_next(m, &out, &err), SKIFF_ERR_USER);
    ASSERT_EQ_STR(err.type, "ValueError");
    ASSERT_EQ_STR(err.message, "bad input 3");
    ASSERT_EQ_STR(err.traceback, "app.c:7 in mapfail");
    skiff_error_clear(&err);
    ASSERT_EQ_INT(skiff_map_next(m, &out, &err), SKIFF_ERR_USER); /* sticky */
    skiff_error_clear(&err);
    skiff_map_free(m);

    skiff_map_options o = {.return_exceptions = true};
    skiff_value *all = NULL;
    ASSERT_EQ_INT(skiff_function_map(fn, lists, 1, &o, &m, &err), SKIFF_OK);
    for (int i = 0; i < 20; i++) {
        ASSERT_EQ_INT(skiff_map_next(m, &out, &err), SKIFF_OK);
        ASSERT_EQ_INT((int)out.index, i);
        if (i % 5 == 3) {
            ASSERT_NULL(out.value);
            ASSERT_EQ_INT(out.error.code, SKIFF_ERR_USER);
            ASSERT_EQ_STR(out.error.type, "ValueError");
        } else {
            ASSERT_EQ_INT(out.error.code, SKIFF_OK);
            ASSERT_EQ_INT(skiff_value_get_int(out.value), i * i);
        }
        skiff_map_output_clear(&out);
    }
    ASSERT_EQ_INT(skiff_map_next(m, &out, &err), SKIFF_DONE);
    skiff_map_stats st;
    skiff_map_get_stats(m, &st);
    ASSERT_EQ_INT(st.failures, 4);
    skiff_map_free(m);
    ASSERT_EQ_INT(skiff_function_map(fn, lists, 1, &o, &m, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_map_collect(m, &all, &err), SKIFF_OK);
    ASSERT_EQ_STR(skiff_value_get_string(
                      skiff_map_get(skiff_map_get(skiff_list_get(all, 3), "error"), "type"), NULL),
                  "ValueError");
    skiff_value_free(all);
    skiff_map_free(m);

    ASSERT_EQ_INT(skiff_function_for_each(fn, lists, 1, NULL, false, &err), SKIFF_ERR_USER);
    skiff_error_clear(&err);
    ASSERT_EQ_INT(skiff_function_for_each(fn, lists, 1, NULL, true, &err), SKIFF_OK);
    skiff_value_free(xs);
    skiff_function_free(fn);
    skiff_client_close(c);
    fake_stop();
}

TEST(map_abandoned_is_cancelled_and_errors)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *fn = fn_ok(c, "square"), *missing = fn_ok(c, "nope");
    skiff_value *xs = int_list(0, 100), *notlist = skiff_value_int(1);
    const skiff_value *lists[] = {xs};
    skiff_map *m = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_map_output out = {0};
    skiff_map_options o = {.max_outstanding = 20};
    ASSERT_EQ_INT(skiff_function_map(fn, lists, 1, &o, &m, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_map_next(m, &out, &err), SKIFF_OK);
    skiff_map_output_clear(&out);
    skiff_map_free(m); /* unfinished: cancelled */
    ASSERT_EQ_INT(fake_int(&fk.map_cancels), 1);
    expect_square(fn, 4); /* the connection is still in step */

    m = NULL;
    ASSERT_EQ_INT(skiff_function_map(missing, lists, 1, NULL, &m, &err), SKIFF_ERR_NOT_FOUND);
    ASSERT_NULL(m);
    skiff_error_clear(&err);
    const skiff_value *bad[] = {notlist};
    ASSERT_EQ_INT(skiff_function_map(fn, bad, 1, NULL, &m, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    ASSERT_EQ_INT(skiff_function_map(fn, lists, 0, NULL, &m, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    skiff_map_options big = {.max_outstanding = SKIFF_MAP_WINDOW_MAX + 1};
    ASSERT_EQ_INT(skiff_function_map(fn, lists, 1, &big, &m, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    skiff_map_options badkw = {.kwargs = notlist};
    ASSERT_EQ_INT(skiff_function_map(fn, lists, 1, &badkw, &m, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    ASSERT_NULL(m);
    skiff_value_free(xs);
    skiff_value_free(notlist);
    skiff_function_free(fn);
    skiff_function_free(missing);
    skiff_client_close(c);
    fake_stop();
}

/* A source of n inputs [i] that fails at fail_at (if >= 0). */
struct counting_source {
    int64_t i, n, fail_at;
};

static int counting_next(void *ctx, skiff_value **args, skiff_error *err)
{
    struct counting_source *s = ctx;
    if (s->i == s->fail_at)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "input %lld is unreadable",
                               (long long)s->i);
    if (s->i >= s->n)
        return SKIFF_OK;
    *args = skiff_value_list_of(1, skiff_value_int(s->i++));
    return SKIFF_OK;
}

TEST(map_source_large_without_deadlock)
{
    /* 200,000 inputs from a generator-like source, results consumed as they come: chunks of
     * many inputs per frame, both directions busy at once, memory bounded by the window. */
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *fn = fn_ok(c, "square"), *sq = fn_ok(c, "square");
    struct counting_source cs = {0, 200000, -1};
    skiff_map_source src = {counting_next, &cs};
    skiff_map *m = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(skiff_function_map_source(fn, &src, NULL, &m, &err), SKIFF_OK);
    skiff_map_output out = {0};
    int64_t i = 0;
    while (skiff_map_next(m, &out, &err) == SKIFF_OK) {
        if (out.value == NULL ||
            skiff_value_get_int(out.value) != (int64_t)out.index * (int64_t)out.index)
            FAIL("output %zu is wrong", out.index);
        if ((int64_t)out.index != i)
            FAIL("output %zu came at %lld", out.index, (long long)i);
        if (i == 100000)
            expect_square(sq, 12); /* another request on the same client mid-map */
        skiff_map_output_clear(&out);
        i++;
    }
    ASSERT_EQ_INT(err.code, SKIFF_OK);
    ASSERT_EQ_INT(i, 200000);
    ASSERT_TRUE(fake_int(&fk.map_max_outstanding) <= SKIFF_MAP_WINDOW_DEFAULT);
    ASSERT_GT_INT(fake_int(&fk.map_max_chunk), 100); /* many inputs per frame */
    skiff_map_free(m);

    /* A failing source ends the map with its error. */
    struct counting_source bad = {0, 100, 42};
    src.ctx = &bad;
    ASSERT_EQ_INT(skiff_function_map_source(fn, &src, NULL, &m, &err), SKIFF_OK);
    int rc;
    while ((rc = skiff_map_next(m, &out, &err)) == SKIFF_OK)
        skiff_map_output_clear(&out);
    ASSERT_EQ_INT(rc, SKIFF_ERR_INVALID);
    ASSERT_EQ_STR(err.message, "input 42 is unreadable");
    skiff_error_clear(&err);
    skiff_map_free(m);
    skiff_function_free(fn);
    skiff_function_free(sq);
    skiff_client_close(c);
    fake_stop();
}

TEST(map_big_payloads_both_ways)
{
    /* Echoed 16 KiB payloads: the client writes megabytes while the server writes them back. */
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *fn = fn_ok(c, "echo");
    char blob[16384];
    memset(blob, 'x', sizeof blob);
    skiff_value *xs = skiff_value_list();
    for (int i = 0; i < 2000; i++)
        skiff_list_append(xs, skiff_value_bytes(blob, sizeof blob));
    const skiff_value *lists[] = {xs};
    skiff_map *m = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(skiff_function_map(fn, lists, 1, NULL, &m, &err), SKIFF_OK);
    skiff_map_output out = {0};
    int n = 0;
    while (skiff_map_next(m, &out, &err) == SKIFF_OK) {
        size_t len = 0;
        skiff_value *args = skiff_list_get(out.value, 0);
        skiff_value_get_bytes(skiff_list_get(args, 0), &len);
        ASSERT_EQ_INT(len, sizeof blob);
        skiff_map_output_clear(&out);
        n++;
    }
    ASSERT_EQ_INT(err.code, SKIFF_OK);
    ASSERT_EQ_INT(n, 2000);
    skiff_map_free(m);
    skiff_value_free(xs);
    skiff_function_free(fn);
    skiff_client_close(c);
    fake_stop();
}

TEST(spawn_map_get_by_index_and_iterate)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *fn = fn_ok(c, "mapfail");
    skiff_value *xs = int_list(0, 30);
    const skiff_value *lists[] = {xs};
    skiff_call *call = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(skiff_function_spawn_map(fn, lists, 1, NULL, &call, &err), SKIFF_OK);
    ASSERT_EQ_STR(skiff_call_id(call), SMAP_ID);
    ASSERT_EQ_INT(skiff_call_get_kind(call), SKIFF_CALL_SPAWN_MAP);
    ASSERT_EQ_INT(skiff_call_num_inputs(call), 30);
    ASSERT_EQ_INT(fake_int(&fk.outputs_requests), 0); /* no outputs asked for */
    skiff_value *r = NULL;
    ASSERT_EQ_INT(skiff_call_get_index(call, 7, 0, &r, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_value_get_int(r), 49);
    skiff_value_free(r);
    r = NULL;
    ASSERT_EQ_INT(skiff_call_get_index(call, 8, 0, &r, &err), SKIFF_ERR_USER);
    skiff_error_clear(&err);
    ASSERT_EQ_INT(skiff_call_get_index(call, 30, 0, &r, &err), SKIFF_ERR_NOT_FOUND);
    skiff_error_clear(&err);
    ASSERT_EQ_INT(skiff_call_get(call, 0, &r, &err), SKIFF_ERR_INVALID); /* needs an index */
    skiff_error_clear(&err);
    ASSERT_NULL(r);

    /* Re-opened by id: CALL_INFO tells the kind and count; iterate in order. */
    skiff_call *again = NULL;
    ASSERT_EQ_INT(skiff_call_from_id(c, SMAP_ID, &again, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_call_get_kind(again), SKIFF_CALL_SPAWN_MAP);
    ASSERT_EQ_INT(skiff_call_num_inputs(again), 30);
    skiff_map_options o = {.return_exceptions = true};
    skiff_map *m = NULL;
    ASSERT_EQ_INT(skiff_call_iter(again, &o, &m, &err), SKIFF_OK);
    skiff_map_output out = {0};
    for (int i = 0; i < 30; i++) {
        ASSERT_EQ_INT(skiff_map_next(m, &out, &err), SKIFF_OK);
        ASSERT_EQ_INT((int)out.index, i);
        if (i % 5 == 3)
            ASSERT_EQ_STR(out.error.type, "ValueError");
        else
            ASSERT_EQ_INT(skiff_value_get_int(out.value), i * i);
        skiff_map_output_clear(&out);
    }
    ASSERT_EQ_INT(skiff_map_next(m, &out, &err), SKIFF_DONE);
    skiff_map_free(m);
    ASSERT_EQ_INT(skiff_call_cancel(again, false, &err), SKIFF_OK);
    skiff_call_free(again);
    skiff_call_free(call);
    skiff_value_free(xs);
    skiff_function_free(fn);
    skiff_client_close(c);
    fake_stop();
}

/* --- generators ------------------------------------------------------------------------------- */

TEST(remote_gen_items_in_order_and_end)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *fn = fn_ok(c, "counter");
    skiff_value *args = skiff_value_list_of(1, skiff_value_int(7)), *item = NULL;
    skiff_gen *g = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(skiff_function_remote_gen(fn, args, NULL, &g, &err), SKIFF_OK);
    for (int i = 0; i < 7; i++) {
        ASSERT_EQ_INT(skiff_gen_next(g, &item, &err), SKIFF_OK);
        ASSERT_EQ_INT(skiff_value_get_int(item), i * 10);
        skiff_value_free(item);
    }
    ASSERT_EQ_INT(skiff_gen_next(g, &item, &err), SKIFF_DONE);
    ASSERT_EQ_INT(skiff_gen_next(g, &item, &err), SKIFF_DONE);
    ASSERT_EQ_INT(skiff_gen_count(g), 7);
    skiff_gen_free(g);
    skiff_function *sq = fn_ok(c, "square");
    expect_square(sq, 3); /* the connection is still in step */
    skiff_function_free(sq);
    skiff_value_free(args);
    skiff_function_free(fn);
    skiff_client_close(c);
    fake_stop();
}

TEST(remote_gen_failing_midway)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *fn = fn_ok(c, "countfail");
    skiff_value *args = skiff_value_list_of(1, skiff_value_int(9)), *item = NULL;
    skiff_gen *g = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(skiff_function_remote_gen(fn, args, NULL, &g, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_gen_next(g, &item, &err), SKIFF_OK);
    skiff_value_free(item);
    ASSERT_EQ_INT(skiff_gen_next(g, &item, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_value_get_int(item), 10);
    skiff_value_free(item);
    item = NULL;
    ASSERT_EQ_INT(skiff_gen_next(g, &item, &err), SKIFF_ERR_USER);
    ASSERT_EQ_STR(err.type, "ValueError");
    ASSERT_EQ_STR(err.message, "the generator broke");
    ASSERT_EQ_STR(err.traceback, "app.c:3 in countfail");
    ASSERT_NULL(item);
    skiff_error_clear(&err);
    ASSERT_EQ_INT(skiff_gen_next(g, &item, &err), SKIFF_ERR_USER); /* sticky */
    skiff_error_clear(&err);
    skiff_gen_free(g);
    skiff_value_free(args);
    skiff_function_free(fn);
    skiff_client_close(c);
    fake_stop();
}

TEST(generator_kinds_are_checked)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_gen *g = NULL;
    skiff_value *r = NULL, *args = skiff_value_list_of(1, skiff_value_int(2));
    skiff_call *call = NULL;
    /* Lazy handles: the server refuses. */
    skiff_function *sq = fn_ok(c, "square"), *gen = fn_ok(c, "counter");
    ASSERT_EQ_INT(skiff_function_remote_gen(sq, args, NULL, &g, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_gen_next(g, &r, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    skiff_gen_free(g);
    ASSERT_EQ_INT(skiff_function_remote(gen, args, NULL, &r, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    skiff_function_free(sq);
    skiff_function_free(gen);
    /* Looked-up handles: the client refuses before sending. */
    ASSERT_EQ_INT(skiff_function_lookup(c, "app", "square", &sq, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_function_lookup(c, "app", "counter", &gen, &err), SKIFF_OK);
    int before = observed(&fk.calls);
    g = NULL;
    ASSERT_EQ_INT(skiff_function_remote_gen(sq, args, NULL, &g, &err), SKIFF_ERR_INVALID);
    ASSERT_NULL(g);
    skiff_error_clear(&err);
    ASSERT_EQ_INT(skiff_function_remote(gen, args, NULL, &r, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    ASSERT_EQ_INT(skiff_function_spawn(gen, args, NULL, &call, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    ASSERT_EQ_INT(skiff_function_spawn_gen(sq, args, NULL, &call, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    skiff_value *xs = int_list(0, 3);
    const skiff_value *lists[] = {xs};
    skiff_map *m = NULL;
    ASSERT_EQ_INT(skiff_function_map(gen, lists, 1, NULL, &m, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    ASSERT_EQ_INT(observed(&fk.calls), before);
    ASSERT_NULL(call);
    skiff_value_free(xs);
    skiff_value_free(args);
    skiff_function_free(sq);
    skiff_function_free(gen);
    skiff_client_close(c);
    fake_stop();
}

TEST(spawned_generator_read_with_get_gen)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *fn = fn_ok(c, "counter");
    skiff_value *args = skiff_value_list_of(1, skiff_value_int(5)), *item = NULL;
    skiff_call *call = NULL, *again = NULL;
    skiff_gen *g = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(skiff_function_spawn_gen(fn, args, NULL, &call, &err), SKIFF_OK);
    ASSERT_EQ_STR(skiff_call_id(call), GEN_ID);
    ASSERT_EQ_INT(skiff_call_get_kind(call), SKIFF_CALL_GENERATOR);
    ASSERT_EQ_INT(skiff_call_get(call, 0, &item, &err), SKIFF_ERR_INVALID); /* use get_gen */
    skiff_error_clear(&err);
    ASSERT_EQ_INT(skiff_call_from_id(c, GEN_ID, &again, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_call_get_kind(again), SKIFF_CALL_GENERATOR);
    ASSERT_EQ_INT(skiff_call_get_gen(again, &g, &err), SKIFF_OK);
    int n = 0;
    while (skiff_gen_next(g, &item, &err) == SKIFF_OK) {
        ASSERT_EQ_INT(skiff_value_get_int(item), n * 10);
        skiff_value_free(item);
        n++;
    }
    ASSERT_EQ_INT(err.code, SKIFF_OK);
    ASSERT_EQ_INT(n, 5);
    skiff_gen_free(g);
    skiff_call_free(again);
    skiff_call *plain = NULL;
    ASSERT_EQ_INT(skiff_call_from_id(c, SPAWN_ID, &plain, &err), SKIFF_OK);
    g = NULL;
    ASSERT_EQ_INT(skiff_call_get_gen(plain, &g, &err), SKIFF_ERR_INVALID);
    ASSERT_NULL(g);
    skiff_error_clear(&err);
    skiff_map *m = NULL;
    ASSERT_EQ_INT(skiff_call_iter(call, NULL, &m, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    skiff_call_free(plain);
    skiff_call_free(call);
    skiff_value_free(args);
    skiff_function_free(fn);
    skiff_client_close(c);
    fake_stop();
}

/* --- function details, call graph, classes ---------------------------------------------------- */

TEST(stats_autoscaler_keep_warm)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *fn = fn_ok(c, "square"), *missing = fn_ok(c, "nope");
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_function_stats st;
    ASSERT_EQ_INT(skiff_function_get_current_stats(fn, &st, &err), SKIFF_OK);
    ASSERT_EQ_INT(st.backlog, 10);
    ASSERT_EQ_INT(st.num_total_runners, 11);
    ASSERT_EQ_INT(st.num_running_inputs, 12);
    ASSERT_EQ_INT(st.input_headroom, 13);
    ASSERT_EQ_INT(skiff_function_get_current_stats(missing, &st, &err), SKIFF_ERR_NOT_FOUND);
    ASSERT_NOT_NULL(strstr(err.message, "'nope'"));
    skiff_error_clear(&err);

    skiff_autoscaler a = SKIFF_AUTOSCALER_INIT, now;
    a.max_containers = 3;
    a.scaledown_window = 2.5;
    ASSERT_EQ_INT(skiff_function_update_autoscaler(fn, &a, &now, &err), SKIFF_OK);
    ASSERT_EQ_INT(now.min_containers, 0); /* unset: unchanged (the fake's default) */
    ASSERT_EQ_INT(now.max_containers, 3);
    ASSERT_EQ_INT(now.buffer_containers, 0);
    ASSERT_TRUE(now.scaledown_window == 2.5);
    ASSERT_EQ_INT(skiff_function_keep_warm(fn, 2, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_function_keep_warm(fn, -1, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    skiff_autoscaler none = SKIFF_AUTOSCALER_INIT;
    ASSERT_EQ_INT(skiff_function_update_autoscaler(fn, &none, NULL, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    skiff_autoscaler bad = SKIFF_AUTOSCALER_INIT;
    bad.min_containers = 5;
    bad.max_containers = 2;
    ASSERT_EQ_INT(skiff_function_update_autoscaler(fn, &bad, NULL, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    bad = (skiff_autoscaler)SKIFF_AUTOSCALER_INIT;
    bad.scaledown_window = -3;
    ASSERT_EQ_INT(skiff_function_update_autoscaler(fn, &bad, NULL, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    ASSERT_EQ_INT(skiff_function_update_autoscaler(missing, &a, NULL, &err), SKIFF_ERR_NOT_FOUND);
    skiff_error_clear(&err);
    skiff_function_free(fn);
    skiff_function_free(missing);
    skiff_client_close(c);
    fake_stop();
}

TEST(web_url_and_local)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *web = fn_ok(c, "web"), *sq = fn_ok(c, "square");
    skiff_error err = SKIFF_ERROR_INIT;
    char *url = (char *)1;
    ASSERT_EQ_INT(skiff_function_get_web_url(web, &url, &err), SKIFF_OK);
    ASSERT_EQ_STR(url, "http://127.0.0.1:7879/app/web");
    free(url);
    expect_square(sq, 2); /* hydrated by a call: the URL still needs a LOOKUP */
    url = (char *)1;
    ASSERT_EQ_INT(skiff_function_get_web_url(sq, &url, &err), SKIFF_OK);
    ASSERT_NULL(url);
    skiff_value *args = skiff_value_list_of(1, skiff_value_int(2)), *r = NULL;
    ASSERT_EQ_INT(skiff_function_remote(web, args, NULL, &r, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    /* No app code in this process: local() says so. */
    ASSERT_EQ_INT(skiff_function_local(sq, args, NULL, &r, &err), SKIFF_ERR_EXECUTION);
    ASSERT_EQ_STR(err.type, "ExecutionError");
    skiff_error_clear(&err);
    ASSERT_EQ_INT(skiff_function_local(sq, args, args, &r, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    ASSERT_NULL(r);
    skiff_value_free(args);
    skiff_function_free(web);
    skiff_function_free(sq);
    skiff_client_close(c);
    fake_stop();
}

TEST(call_graph_tree)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_call *call = NULL, *unknown = NULL;
    ASSERT_EQ_INT(skiff_call_from_id(c, SPAWN_ID, &call, &err), SKIFF_OK);
    skiff_input_info *roots = NULL;
    size_t n = 0;
    ASSERT_EQ_INT(skiff_call_get_call_graph(call, &roots, &n, &err), SKIFF_OK);
    ASSERT_EQ_INT(n, 1);
    ASSERT_EQ_STR(roots[0].input_id, "in-01M80000000000000000000001");
    ASSERT_EQ_STR(roots[0].call_id, SPAWN_ID);
    ASSERT_EQ_STR(roots[0].container_id, "ta-01M80000000000000000000001");
    ASSERT_EQ_STR(roots[0].function, "app.square");
    ASSERT_EQ_INT(roots[0].status, SKIFF_INPUT_SUCCESS);
    ASSERT_EQ_INT(roots[0].nchildren, 1);
    ASSERT_EQ_STR(roots[0].children[0].function, "other.echo");
    ASSERT_NULL(roots[0].children[0].container_id);
    ASSERT_EQ_INT(roots[0].children[0].status, SKIFF_INPUT_TERMINATED);
    ASSERT_EQ_STR(skiff_input_status_name(roots[0].children[0].status), "TERMINATED");
    skiff_call_graph_free(roots, n);
    ASSERT_EQ_INT(skiff_call_from_id(c, FAILED_ID, &unknown, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_call_get_call_graph(unknown, &roots, &n, &err), SKIFF_ERR_NOT_FOUND);
    skiff_error_clear(&err);
    skiff_call_free(unknown);
    skiff_call_free(call);
    skiff_client_close(c);
    fake_stop();
}

TEST(class_instances_and_methods)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_cls *cls = NULL, *nope = NULL;
    ASSERT_EQ_INT(skiff_cls_from_name(c, "app", "Model", &cls, &err), SKIFF_OK);
    skiff_value *params = skiff_value_map();
    skiff_map_set(params, "name", skiff_value_string("a")); /* sorted on the wire: n < name */
    skiff_map_set(params, "n", skiff_value_int(1));
    skiff_obj *obj = NULL;
    ASSERT_EQ_INT(skiff_cls_instantiate(cls, params, &obj, &err), SKIFF_OK);
    skiff_function *predict = NULL;
    ASSERT_EQ_INT(skiff_obj_method(obj, "predict", &predict, &err), SKIFF_OK);
    ASSERT_EQ_STR(skiff_function_id(predict), fn_id(0));
    expect_square(predict, 6);
    char seen[64];
    pthread_mutex_lock(&fk.mu);
    memcpy(seen, fk.last_params, sizeof seen);
    pthread_mutex_unlock(&fk.mu);
    /* {"n": 1, "name": "a"}: fixmap 2, "n", 1, "name", "a" */
    ASSERT_EQ_STR(seen, "82a16e01a46e616d65a161");
    skiff_function *bad = NULL;
    ASSERT_EQ_INT(skiff_obj_method(obj, "train", &bad, &err), SKIFF_ERR_NOT_FOUND);
    ASSERT_NULL(bad);
    skiff_error_clear(&err);
    skiff_value *wrong = skiff_value_map();
    skiff_map_set(wrong, "x", skiff_value_double(1.5));
    skiff_obj *o2 = NULL;
    ASSERT_EQ_INT(skiff_cls_instantiate(cls, wrong, &o2, &err), SKIFF_ERR_INVALID);
    ASSERT_NULL(o2);
    skiff_error_clear(&err);
    ASSERT_EQ_INT(skiff_cls_from_name(c, "app", "Nope", &nope, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_cls_hydrate(nope, &err), SKIFF_ERR_NOT_FOUND);
    skiff_error_clear(&err);
    skiff_cls *empty = NULL;
    ASSERT_EQ_INT(skiff_cls_from_name(c, "app", "", &empty, &err), SKIFF_ERR_INVALID);
    ASSERT_NULL(empty);
    skiff_error_clear(&err);
    skiff_cls_free(nope);
    skiff_value_free(wrong);
    skiff_value_free(params);
    skiff_function_free(predict);
    skiff_obj_free(obj);
    skiff_cls_free(cls);
    skiff_client_close(c);
    fake_stop();
}

/* --- logs (ops.h) ----------------------------------------------------------------------------- */

struct log_seen {
    int n;
    char text[2][32];
    int stop_after;
};

static int log_line(void *ctx, const skiff_value *line)
{
    struct log_seen *s = ctx;
    if (s->n < 2)
        snprintf(s->text[s->n], sizeof s->text[0], "%s",
                 skiff_value_get_string(skiff_list_get(line, 4), NULL));
    s->n++;
    return s->stop_after && s->n >= s->stop_after;
}

TEST(logs_stream_lines)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_error err = SKIFF_ERROR_INIT;
    struct log_seen s = {0};
    ASSERT_EQ_INT(client_logs(c, "app", "square", NULL, false, 10, log_line, &s, &err), SKIFF_OK);
    ASSERT_EQ_INT(s.n, 2);
    ASSERT_EQ_STR(s.text[0], "line one");
    ASSERT_EQ_STR(s.text[1], "line two");
    struct log_seen one = {.stop_after = 1};
    ASSERT_EQ_INT(client_logs(c, "app", NULL, NULL, true, -1, log_line, &one, &err), SKIFF_OK);
    ASSERT_EQ_INT(one.n, 1); /* the callback stopped it */
    ASSERT_EQ_INT(client_logs(c, "", NULL, NULL, false, -1, log_line, &s, &err), SKIFF_ERR_INVALID);
    skiff_error_clear(&err);
    skiff_function *sq = fn_ok(c, "square");
    expect_square(sq, 5); /* late frames of the stopped stream are dropped, replies still match */
    skiff_function_free(sq);
    skiff_client_close(c);
    fake_stop();
}

/* --- the skiff command against the fake ------------------------------------------------------- */

/* Runs the skiff binary built next to this test (../bin/skiff) with the words given, stdin from
 * in, and its stdout into out (NUL-terminated). Returns its exit status. */
static int run_cli(const char *in, char *out, size_t size, const char *const *words)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 32);
    ASSERT_TRUE(n > 0);
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    *slash = '\0';
    slash = strrchr(exe, '/');
    strcpy(slash, "/bin/skiff");
    const char *tmp = getenv("TMPDIR");
    char inpath[256], outpath[256];
    snprintf(inpath, sizeof inpath, "%s/cli-in-XXXXXX", tmp ? tmp : "/tmp");
    snprintf(outpath, sizeof outpath, "%s/cli-out-XXXXXX", tmp ? tmp : "/tmp");
    int ifd = mkstemp(inpath), ofd = mkstemp(outpath);
    ASSERT_TRUE(ifd >= 0 && ofd >= 0);
    ASSERT_EQ_INT(write(ifd, in, strlen(in)), (ssize_t)strlen(in));
    lseek(ifd, 0, SEEK_SET);
    const char *argv[32] = {"skiff"};
    int k = 1;
    for (; words[k - 1] && k < 31; k++)
        argv[k] = words[k - 1];
    argv[k] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(ifd, 0);
        dup2(ofd, 1);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    lseek(ofd, 0, SEEK_SET);
    ssize_t got = read(ofd, out, size - 1);
    out[got > 0 ? got : 0] = '\0';
    close(ifd);
    close(ofd);
    unlink(inpath);
    unlink(outpath);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#define CLI(in, out, ...) run_cli(in, out, sizeof out, (const char *const[]){__VA_ARGS__, NULL})

TEST(cli_map_streams_results)
{
    fake_start(PROTO_PAYLOAD_MAX);
    char out[8192];
    ASSERT_EQ_INT(CLI("[1]\n\n[2]\n[3]\n[4]\n", out, "map", "app", "square", "--window", "2"), 0);
    ASSERT_EQ_STR(out, "1\n4\n9\n16\n");
    ASSERT_TRUE(observed(&fk.map_max_outstanding) <= 2);
    ASSERT_EQ_INT(CLI("[3]\n[4]\n", out, "map", "app", "mapfail", "--return-exceptions"), 0);
    ASSERT_EQ_STR(out, "{\"error\":{\"type\":\"ValueError\",\"message\":\"bad input 3\"}}\n16\n");
    ASSERT_EQ_INT(CLI("[3]\n[4]\n", out, "map", "app", "mapfail"), 1);
    ASSERT_EQ_INT(CLI("[1]\n{}\n", out, "map", "app", "square"), 2); /* a bad line */
    ASSERT_EQ_INT(CLI("", out, "map", "app", "square"), 0);          /* empty input */
    ASSERT_EQ_STR(out, "");
    ASSERT_EQ_INT(CLI("[5]\n", out, "map", "app", "echo", "--kwarg", "k=1"), 0);
    ASSERT_EQ_STR(out, "[[5],{\"k\":1}]\n");
    ASSERT_EQ_INT(CLI("[1]\n[2]\n[3]\n", out, "map", "app", "square", "--unordered"), 0);
    ASSERT_EQ_STR(out, "9\n4\n1\n"); /* the fake completes the newest first */
    ASSERT_EQ_INT(CLI("", out, "map", "app", "square", "--window", "0"), 2);
    ASSERT_EQ_INT(CLI("", out, "map", "app", "nope"), 1);
    fake_stop();
}

TEST(cli_get_index_graph_url_logs_param)
{
    fake_start(PROTO_PAYLOAD_MAX);
    char out[8192];
    /* A spawn_map to read back: made through the library. */
    skiff_client *c = connect_ok();
    skiff_function *fn = fn_ok(c, "square");
    skiff_value *xs = int_list(0, 3);
    const skiff_value *lists[] = {xs};
    skiff_call *call = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(skiff_function_spawn_map(fn, lists, 1, NULL, &call, &err), SKIFF_OK);
    skiff_call_free(call);
    skiff_value_free(xs);
    skiff_function_free(fn);
    skiff_client_close(c);
    fake_kick(); /* the fake serves one connection at a time */

    ASSERT_EQ_INT(CLI("", out, "get", SMAP_ID, "--index", "2"), 0);
    ASSERT_EQ_STR(out, "4\n");
    ASSERT_EQ_INT(CLI("", out, "get", SMAP_ID, "--index", "-1"), 2);
    ASSERT_EQ_INT(CLI("", out, "get", SMAP_ID, "--index", "9"), 1);
    ASSERT_EQ_INT(CLI("", out, "get", GEN_ID), 0); /* a spawned generator: its items */
    ASSERT_EQ_STR(out, "0\n10\n20\n30\n40\n");
    ASSERT_EQ_INT(CLI("", out, "graph", SPAWN_ID), 0);
    ASSERT_EQ_STR(out, SPAWN_ID "\n"
                                "`- in-01M80000000000000000000001 app.square SUCCESS "
                                "ta-01M80000000000000000000001\n"
                                "   `- in-01M80000000000000000000002 other.echo TERMINATED\n");
    ASSERT_EQ_INT(CLI("", out, "graph", SPAWN_ID, "--json"), 0);
    ASSERT_STR_CONTAINS(out, "\"status\":\"TERMINATED\"");
    ASSERT_EQ_INT(CLI("", out, "graph"), 2);
    ASSERT_EQ_INT(CLI("", out, "url", "app", "web"), 0);
    ASSERT_EQ_STR(out, "http://127.0.0.1:7879/app/web\n");
    ASSERT_EQ_INT(CLI("", out, "url", "app", "web", "--json"), 0);
    ASSERT_EQ_STR(out, "\"http://127.0.0.1:7879/app/web\"\n");
    ASSERT_EQ_INT(CLI("", out, "url", "app", "square"), 1);
    ASSERT_EQ_INT(CLI("", out, "logs", "app", "--json"), 0);
    ASSERT_STR_CONTAINS(out, "\"line one\"");
    ASSERT_EQ_INT(CLI("", out, "logs", "app", "square", "--tail", "5"), 0);
    ASSERT_STR_CONTAINS(out, "stderr| line two\n");
    ASSERT_EQ_INT(CLI("", out, "logs", "app", "--tail", "x"), 2);
    ASSERT_EQ_INT(CLI("", out, "call", "app", "Model.predict", "6", "--param", "n=1"), 0);
    ASSERT_EQ_STR(out, "36\n");
    ASSERT_EQ_INT(CLI("", out, "call", "app", "square", "6", "--param", "n=1"), 1);
    ASSERT_EQ_INT(CLI("", out, "call", "app", "Model.predict", "6", "--param", "n=1.5"), 2);
    ASSERT_EQ_INT(CLI("", out, "stats", "app", "square"), 0);
    ASSERT_STR_CONTAINS(out, "\"input_headroom\":13");
    ASSERT_EQ_INT(CLI("", out, "call", "app", "counter", "3"), 0); /* a generator's items */
    ASSERT_EQ_STR(out, "0\n10\n20\n");
    ASSERT_EQ_INT(CLI("", out, "call", "app", "countfail", "5"), 1); /* items, then its failure */
    ASSERT_EQ_STR(out, "0\n10\n");
    ASSERT_EQ_INT(CLI("", out, "spawn", "app", "counter", "5"), 0);
    ASSERT_EQ_STR(out, GEN_ID "\n");
    fake_stop();
}

struct map_thread {
    skiff_function *fn;
    int64_t n, got;
    int rc;
};

static void *map_thread_run(void *arg)
{
    struct map_thread *t = arg;
    struct counting_source cs = {0, t->n, -1};
    skiff_map_source src = {counting_next, &cs};
    skiff_map_options o = {.max_outstanding = 100};
    skiff_map *m = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    t->rc = skiff_function_map_source(t->fn, &src, &o, &m, &err);
    skiff_map_output out = {0};
    while (t->rc == SKIFF_OK && (t->rc = skiff_map_next(m, &out, &err)) == SKIFF_OK) {
        if ((int64_t)out.index == t->got && skiff_value_get_int(out.value) == t->got * t->got)
            t->got++;
        skiff_map_output_clear(&out);
    }
    skiff_error_clear(&err);
    skiff_map_free(m);
    return NULL;
}

TEST(map_and_calls_share_a_client_across_threads)
{
    /* One thread maps while others make blocking calls (some answered out of order) on the same
     * connection: whichever thread reads hands every frame to its owner, nobody starves. */
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *square = fn_ok(c, "square"), *slow = fn_ok(c, "slow");
    struct map_thread mt = {square, 30000, 0, -1};
    pthread_t mtid, t[3];
    struct worker w[3];
    ASSERT_EQ_INT(pthread_create(&mtid, NULL, map_thread_run, &mt), 0);
    for (int i = 0; i < 3; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].square = square;
        w[i].slow = slow;
        w[i].id = i + 1;
        ASSERT_EQ_INT(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    pthread_join(mtid, NULL);
    for (int i = 0; i < 3; i++)
        if (w[i].failures)
            FAIL("thread %d: %d failures, first: %s", i, w[i].failures, w[i].first);
    ASSERT_EQ_INT(mt.rc, SKIFF_DONE);
    ASSERT_EQ_INT(mt.got, 30000);
    ASSERT_EQ_INT(observed(&fk.hellos), 1);
    skiff_function_free(square);
    skiff_function_free(slow);
    skiff_client_close(c);
    fake_stop();
}

TEST(map_refused_inputs_and_lost_connection)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *slow = fn_ok(c, "slow"), *hang = fn_ok(c, "hangup"), *sq = fn_ok(c, "square");
    skiff_value *xs = int_list(0, 10);
    const skiff_value *lists[] = {xs};
    skiff_map *m = NULL;
    skiff_map_output out = {0};
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(skiff_function_map(slow, lists, 1, NULL, &m, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_map_next(m, &out, &err), SKIFF_ERR_RESOURCE_EXHAUSTED);
    ASSERT_EQ_STR(err.message, "the queue is full");
    skiff_error_clear(&err);
    skiff_map_free(m);
    expect_square(sq, 3);

    ASSERT_EQ_INT(skiff_function_map(hang, lists, 1, NULL, &m, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_map_next(m, &out, &err), SKIFF_ERR_CONNECTION);
    skiff_error_clear(&err);
    ASSERT_EQ_INT(skiff_map_next(m, &out, &err), SKIFF_ERR_CONNECTION); /* sticky */
    skiff_error_clear(&err);
    skiff_map_free(m);
    expect_square(sq, 4); /* a new connection */
    ASSERT_EQ_INT(observed(&fk.hellos), 2);
    skiff_value_free(xs);
    skiff_function_free(slow);
    skiff_function_free(hang);
    skiff_function_free(sq);
    skiff_client_close(c);
    fake_stop();
}

TEST(out_of_memory_in_maps_and_generators)
{
    /* Every allocation of a small map, a spawn_map read and a generator fails in turn: each run
     * ends cleanly with SKIFF_ERR_NOMEM (and, under the sanitizers, without a leak). */
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *sq = fn_ok(c, "mapfail"), *gen = fn_ok(c, "counter");
    expect_square(sq, 2); /* hydrated: the runs below start from the same state */
    skiff_value *xs = int_list(0, 12), *args = skiff_value_list_of(1, skiff_value_int(4));
    const skiff_value *lists[] = {xs};
    int rc = -1;
    long n;
    for (n = 0; n < 5000 && rc != SKIFF_OK; n++) {
        skiff_error err = SKIFF_ERROR_INIT;
        skiff_map *m = NULL;
        skiff_gen *g = NULL;
        skiff_value *all = NULL, *item = NULL;
        skiff_map_options o = {.return_exceptions = true, .max_outstanding = 4};
        mem_fail_after(n);
        rc = skiff_function_map(sq, lists, 1, &o, &m, &err);
        if (rc == SKIFF_OK)
            rc = skiff_map_collect(m, &all, &err);
        if (rc == SKIFF_OK)
            rc = skiff_function_remote_gen(gen, args, NULL, &g, &err);
        int64_t items = 0;
        while (rc == SKIFF_OK && (rc = skiff_gen_next(g, &item, &err)) == SKIFF_OK) {
            items++;
            skiff_value_free(item);
        }
        if (rc == SKIFF_DONE)
            rc = SKIFF_OK;
        mem_fail_after(-1);
        if (rc == SKIFF_OK) {
            ASSERT_EQ_UINT(skiff_list_len(all), 12);
            ASSERT_EQ_INT(items, 4);
        } else if (rc != SKIFF_ERR_NOMEM) {
            FAIL("allocation %ld failing gave %s: %s", n, skiff_code_name(rc), err.message);
        }
        skiff_error_clear(&err);
        skiff_value_free(all);
        skiff_gen_free(g);
        skiff_map_free(m);
        if (rc != SKIFF_OK) { /* the connection may hold a half-read stream: start afresh */
            skiff_function_free(sq);
            skiff_function_free(gen);
            skiff_client_close(c);
            fake_kick();
            c = connect_ok();
            sq = fn_ok(c, "mapfail");
            gen = fn_ok(c, "counter");
            expect_square(sq, 2);
        }
    }
    ASSERT_EQ_INT(rc, SKIFF_OK);
    ASSERT_GT_INT(n, 10);
    skiff_value_free(xs);
    skiff_value_free(args);
    skiff_function_free(sq);
    skiff_function_free(gen);
    skiff_client_close(c);
    fake_stop();
}

TEST(map_of_a_method_carries_params_and_parent)
{
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_error err = SKIFF_ERROR_INIT;
    skiff_cls *cls = NULL;
    skiff_obj *obj = NULL;
    skiff_function *predict = NULL;
    skiff_value *params = skiff_value_map();
    skiff_map_set(params, "n", skiff_value_int(1));
    ASSERT_EQ_INT(skiff_cls_from_name(c, "app", "Model", &cls, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_cls_instantiate(cls, params, &obj, &err), SKIFF_OK);
    ASSERT_EQ_INT(skiff_obj_method(obj, "predict", &predict, &err), SKIFF_OK);
    skiff_value *xs = int_list(1, 3), *all = NULL;
    const skiff_value *lists[] = {xs};
    skiff_map *m = NULL;
    client_set_parent_input("in-01M80000000000000000000009");
    ASSERT_EQ_INT(skiff_function_map(predict, lists, 1, NULL, &m, &err), SKIFF_OK);
    client_set_parent_input(NULL);
    ASSERT_EQ_INT(skiff_map_collect(m, &all, &err), SKIFF_OK);
    char *json = skiff_value_to_json(all);
    ASSERT_EQ_STR(json, "[1,4,9]");
    free(json);
    char seen[64];
    ASSERT_EQ_STR(parent_seen(seen), "in-01M80000000000000000000009");
    pthread_mutex_lock(&fk.mu);
    memcpy(seen, fk.last_params, sizeof seen);
    pthread_mutex_unlock(&fk.mu);
    ASSERT_EQ_STR(seen, "81a16e01"); /* {"n": 1} */
    skiff_value_free(all);
    skiff_map_free(m);
    skiff_value_free(xs);
    skiff_value_free(params);
    skiff_function_free(predict);
    skiff_obj_free(obj);
    skiff_cls_free(cls);
    skiff_client_close(c);
    fake_stop();
}

/* A source of 3 inputs, then "not ready" until the consumer has seen an output, then 2 more. */
struct shy_source {
    int64_t i;
    bool seen_output;
    int agains;
};

static int shy_next(void *ctx, skiff_value **args, skiff_error *err)
{
    (void)err;
    struct shy_source *s = ctx;
    if (s->i == 3 && !s->seen_output) {
        s->agains++;
        return SKIFF_AGAIN;
    }
    if (s->i >= 5)
        return SKIFF_OK;
    *args = skiff_value_list_of(1, skiff_value_int(s->i++));
    return SKIFF_OK;
}

TEST(map_source_not_ready_does_not_hold_outputs)
{
    /* If the map waited for the source, the first output would never come: the source waits
     * for an output before it gives more. */
    fake_start(PROTO_PAYLOAD_MAX);
    skiff_client *c = connect_ok();
    skiff_function *fn = fn_ok(c, "square");
    struct shy_source shy = {0, false, 0};
    skiff_map_source src = {shy_next, &shy};
    skiff_map *m = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(skiff_function_map_source(fn, &src, NULL, &m, &err), SKIFF_OK);
    skiff_map_output out = {0};
    int64_t n = 0;
    while (skiff_map_next(m, &out, &err) == SKIFF_OK) {
        ASSERT_EQ_INT((int64_t)out.index, n);
        ASSERT_EQ_INT(skiff_value_get_int(out.value), n * n);
        shy.seen_output = true;
        skiff_map_output_clear(&out);
        n++;
    }
    ASSERT_EQ_INT(err.code, SKIFF_OK);
    ASSERT_EQ_INT(n, 5);
    ASSERT_GT_INT(shy.agains, 0);
    skiff_map_free(m);
    skiff_function_free(fn);
    skiff_client_close(c);
    fake_stop();
}

/* Reads from fd until want has arrived in out (or 10 s pass). True when it did. */
static bool read_until_has(int fd, char *out, size_t size, size_t *len, const char *want)
{
    for (int i = 0; i < 1000 && !strstr(out, want); i++) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 10) <= 0)
            continue;
        ssize_t k = read(fd, out + *len, size - 1 - *len);
        if (k <= 0)
            break;
        *len += (size_t)k;
        out[*len] = '\0';
    }
    return strstr(out, want) != NULL;
}

TEST(cli_map_writes_results_before_stdin_ends)
{
    fake_start(PROTO_PAYLOAD_MAX);
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 32);
    ASSERT_TRUE(n > 0);
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    strcpy(strrchr(exe, '/'), "/bin/skiff");
    int in[2], outp[2];
    ASSERT_EQ_INT(pipe(in), 0);
    ASSERT_EQ_INT(pipe(outp), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(outp[1], 1);
        close(in[1]);
        close(outp[0]);
        execl(exe, "skiff", "map", "app", "square", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(outp[1]);
    char out[256] = "";
    size_t len = 0;
    ASSERT_EQ_INT(write(in[1], "[2]\n[3]\n", 8), 8);
    ASSERT_TRUE(read_until_has(outp[0], out, sizeof out, &len, "4\n9\n")); /* stdin still open */
    ASSERT_EQ_INT(write(in[1], "[4]\n", 4), 4);
    ASSERT_TRUE(read_until_has(outp[0], out, sizeof out, &len, "16\n"));
    close(in[1]);
    int status;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ASSERT_EQ_STR(out, "4\n9\n16\n");
    close(outp[0]);
    fake_stop();
}
