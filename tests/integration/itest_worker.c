/*
 * itest_worker.c - the container runtime over its socket, without skiffd: each test compiles the
 * test app (tests/apps/worker_app.c, and examples/square.c), starts build/bin/skiff-worker with
 * one end of a socketpair on fd 3, and speaks the container messages of docs/protocol.md
 * (version 2) directly: W_READY, W_INPUTS, W_OUTPUTS, W_CANCEL, W_STOP, W_INIT_FAILED, W_CRASH.
 *
 * What they prove: outputs carry the right slot and kind, many tiny inputs in one frame come back
 * together in one frame, inputs overlap in time up to max_inputs and never beyond, batches have
 * the right sizes and wait for more inputs at most wait_ms, generators stream items in order and
 * end with a count or a failure, class parameters, enter and exit hooks work and fail with
 * InitFailureError, cancellation reaches running and queued inputs, crashes name their slot,
 * malformed frames end the worker with status 1 and a logged reason, and W_STOP finishes the
 * inputs held before exiting 0.
 */
#define UNIT_NO_MAIN
#include "../unit/unit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <msgpack.h>
#include <poll.h>
#include <skiff/skiff.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

/* Op numbers of docs/protocol.md (src/common/proto.h). */
enum {
    W_READY = 40,
    W_INIT_FAILED = 43,
    W_STOP = 44,
    W_CANCEL = 45,
    W_INPUTS = 46,
    W_OUTPUTS = 47,
    W_CRASH = 48,
};

static char build_dir[PATH_MAX], src_dir[PATH_MAX];
static char app_so[PATH_MAX + 32], square_so[PATH_MAX + 32];
static bool sanitize;

/* Seconds scaled for the slower sanitizer build. */
static double scaled(double s)
{
    return sanitize ? s * 3 : s;
}

static void compile(const char *src, const char *out)
{
    char cmd[4 * PATH_MAX];
    snprintf(cmd, sizeof cmd,
             "cc -shared -fPIC -O1 -Wall -Werror -I%s/include %s -L%s/lib -lskiff -o %s", build_dir,
             src, build_dir, out);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot compile %s\n", src);
        exit(1);
    }
}

/* --- a worker process ------------------------------------------------------------------------- */

struct wk {
    pid_t pid;
    int fd;
    char errpath[PATH_MAX];
};

/* Starts skiff-worker on code with the extra arguments (NULL-terminated). */
static struct wk wk_spawn(const char *code, const char *const *extra)
{
    struct wk w;
    int sv[2];
    ASSERT_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    static int seq;
    snprintf(w.errpath, sizeof w.errpath, "worker-%d-%d.err", (int)getpid(), seq++);
    char worker[PATH_MAX + 32];
    snprintf(worker, sizeof worker, "%s/bin/skiff-worker", build_dir);
    const char *argv[32] = {worker, "--fd", "3", "--code", code, "--container", "ta-test"};
    size_t n = 7;
    for (size_t i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    fflush(stdout);
    fflush(stderr);
    w.pid = fork();
    ASSERT(w.pid >= 0);
    if (w.pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int err = open(w.errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (err < 0 || dup2(sv[1], 3) < 0 || dup2(err, 2) < 0)
            _exit(127);
        execv(worker, (char *const *)argv);
        _exit(127);
    }
    close(sv[1]);
    w.fd = sv[0];
    return w;
}

static void write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        ASSERT(k > 0);
        c += k;
        n -= (size_t)k;
    }
}

/* Sends the msgpack body in sb as one frame. */
static void send_frame(struct wk *w, const msgpack_sbuffer *sb)
{
    unsigned char h[4] = {(unsigned char)(sb->size >> 24), (unsigned char)(sb->size >> 16),
                          (unsigned char)(sb->size >> 8), (unsigned char)sb->size};
    char *f = malloc(sb->size + 4);
    memcpy(f, h, 4);
    memcpy(f + 4, sb->data, sb->size);
    write_all(w->fd, f, sb->size + 4);
    free(f);
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* Packs a skiff value (from JSON) with msgpack. */
static void pack_value(msgpack_packer *pk, const skiff_value *v)
{
    switch (skiff_value_type(v)) {
    case SKIFF_NIL:
        msgpack_pack_nil(pk);
        break;
    case SKIFF_BOOL:
        skiff_value_get_bool(v) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        break;
    case SKIFF_INT:
        msgpack_pack_int64(pk, skiff_value_get_int(v));
        break;
    case SKIFF_DOUBLE:
        msgpack_pack_double(pk, skiff_value_get_double(v));
        break;
    case SKIFF_STRING:
        pack_str(pk, skiff_value_get_string(v, NULL));
        break;
    case SKIFF_BYTES: {
        size_t n;
        const void *p = skiff_value_get_bytes(v, &n);
        msgpack_pack_bin_with_body(pk, p, n);
        break;
    }
    case SKIFF_LIST:
        msgpack_pack_array(pk, skiff_list_len(v));
        for (size_t i = 0; i < skiff_list_len(v); i++)
            pack_value(pk, skiff_list_get(v, i));
        break;
    case SKIFF_MAP:
        msgpack_pack_map(pk, skiff_map_len(v));
        for (size_t i = 0; i < skiff_map_len(v); i++) {
            pack_str(pk, skiff_map_key(v, i));
            pack_value(pk, skiff_map_value(v, i));
        }
        break;
    }
}

/* The msgpack encoding of the JSON text json, into sb. */
static void encode_json(msgpack_sbuffer *sb, const char *json)
{
    skiff_value *v = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    if (skiff_value_from_json(json, strlen(json), &v, &err) != SKIFF_OK)
        FAIL("bad JSON in the test: %s: %s", json, err.message);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    pack_value(&pk, v);
    skiff_value_free(v);
}

/* One input for W_INPUTS: args is the JSON of [args, kwargs]; method may be NULL. */
struct in {
    int64_t slot;
    const char *method;
    const char *args;
};

/* Starts a W_INPUTS body in sb (initialised here) for n inputs, packed next with pk. */
static void begin_inputs(msgpack_sbuffer *sb, msgpack_packer *pk, size_t n)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(pk, 3);
    pack_str(pk, "op");
    msgpack_pack_int(pk, W_INPUTS);
    pack_str(pk, "rid");
    msgpack_pack_int(pk, 0);
    pack_str(pk, "inputs");
    msgpack_pack_array(pk, n);
}

static void send_inputs(struct wk *w, const struct in *ins, size_t n)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    begin_inputs(&sb, &pk, n);
    for (size_t i = 0; i < n; i++) {
        char id[64];
        msgpack_pack_array(&pk, 5);
        msgpack_pack_int64(&pk, ins[i].slot);
        snprintf(id, sizeof id, "in-test%lld", (long long)ins[i].slot);
        pack_str(&pk, id);
        snprintf(id, sizeof id, "fc-test%lld", (long long)ins[i].slot);
        pack_str(&pk, id);
        if (ins[i].method)
            pack_str(&pk, ins[i].method);
        else
            msgpack_pack_nil(&pk);
        msgpack_sbuffer a;
        msgpack_sbuffer_init(&a);
        encode_json(&a, ins[i].args);
        msgpack_pack_bin_with_body(&pk, a.data, a.size);
        msgpack_sbuffer_destroy(&a);
    }
    send_frame(w, &sb);
    msgpack_sbuffer_destroy(&sb);
}

/* Sends {op, rid: 0} plus slot when slot >= 0. */
static void send_op(struct wk *w, int op, int64_t slot)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, slot >= 0 ? 3 : 2);
    pack_str(&pk, "op");
    msgpack_pack_int(&pk, op);
    pack_str(&pk, "rid");
    msgpack_pack_int(&pk, 0);
    if (slot >= 0) {
        pack_str(&pk, "slot");
        msgpack_pack_int64(&pk, slot);
    }
    send_frame(w, &sb);
    msgpack_sbuffer_destroy(&sb);
}

/* A frame received: its body unpacked. */
struct frame {
    msgpack_unpacked u;
    const msgpack_object *root;
    char *body;
    size_t size; /* of the body */
    int op;
};

static void frame_free(struct frame *f)
{
    msgpack_unpacked_destroy(&f->u);
    free(f->body);
}

static bool read_exact(int fd, char *p, size_t n, double deadline)
{
    while (n > 0) {
        int ms = (int)((deadline - unit_now()) * 1000);
        if (ms < 0)
            return false;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, ms) <= 0)
            return false;
        ssize_t k = read(fd, p, n);
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

static const msgpack_object *get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == strlen(key) &&
            !memcmp(kv->key.via.str.ptr, key, kv->key.via.str.size))
            return &kv->val;
    }
    return NULL;
}

static int64_t get_int(const msgpack_object *map, const char *key)
{
    const msgpack_object *o = get(map, key);
    ASSERT_NOT_NULL(o);
    ASSERT(o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
           o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER);
    return o->via.i64;
}

/* Strings handed to the tests stay reachable from here until the test process ends, so the
 * tests need not free each one (and LeakSanitizer does not count them). */
static char *kept[8192];
static size_t nkept;

static char *keep(char *s)
{
    if (nkept < sizeof kept / sizeof kept[0])
        kept[nkept++] = s;
    return s;
}

/* A copy of a string object, or NULL when it is not one. */
static char *str_of(const msgpack_object *o)
{
    if (!o || o->type != MSGPACK_OBJECT_STR)
        return NULL;
    char *s = keep(malloc(o->via.str.size + 1));
    memcpy(s, o->via.str.ptr, o->via.str.size);
    s[o->via.str.size] = '\0';
    return s;
}

/* Reads the next frame, waiting up to timeout seconds. False at end of file or timeout. */
static bool read_frame(struct wk *w, struct frame *f, double timeout)
{
    double deadline = unit_now() + scaled(timeout);
    unsigned char h[4];
    if (!read_exact(w->fd, (char *)h, 4, deadline))
        return false;
    size_t n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
    f->body = malloc(n);
    f->size = n;
    ASSERT(read_exact(w->fd, f->body, n, deadline + 5));
    msgpack_unpacked_init(&f->u);
    size_t off = 0;
    ASSERT_EQ_INT(msgpack_unpack_next(&f->u, f->body, n, &off), MSGPACK_UNPACK_SUCCESS);
    ASSERT_EQ_UINT(off, n);
    f->root = &f->u.data;
    ASSERT(f->root->type == MSGPACK_OBJECT_MAP);
    f->op = (int)get_int(f->root, "op");
    ASSERT_EQ_INT(get_int(f->root, "rid"), 0);
    return true;
}

/* A JSON text of a msgpack object, via skiff values. */
static skiff_value *value_of(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return skiff_value_nil();
    case MSGPACK_OBJECT_BOOLEAN:
        return skiff_value_bool(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return skiff_value_int(o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return skiff_value_double(o->via.f64);
    case MSGPACK_OBJECT_STR:
        return skiff_value_stringn(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN:
        return skiff_value_bytes(o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_ARRAY: {
        skiff_value *l = skiff_value_list();
        for (uint32_t i = 0; i < o->via.array.size; i++)
            skiff_list_append(l, value_of(&o->via.array.ptr[i]));
        return l;
    }
    case MSGPACK_OBJECT_MAP: {
        skiff_value *m = skiff_value_map();
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            char *k = str_of(&o->via.map.ptr[i].key);
            skiff_map_set(m, k, value_of(&o->via.map.ptr[i].val));
            free(k);
        }
        return m;
    }
    default:
        FAIL("unexpected msgpack type %d", (int)o->type);
    }
}

/* The JSON of the msgpack payload in a bin object. */
static char *payload_json(const msgpack_object *bin)
{
    ASSERT_EQ_INT(bin->type, MSGPACK_OBJECT_BIN);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    ASSERT_EQ_INT(msgpack_unpack_next(&u, bin->via.bin.ptr, bin->via.bin.size, &off),
                  MSGPACK_UNPACK_SUCCESS);
    ASSERT_EQ_UINT(off, bin->via.bin.size);
    skiff_value *v = value_of(&u.data);
    char *json = keep(skiff_value_to_json(v));
    skiff_value_free(v);
    msgpack_unpacked_destroy(&u);
    return json;
}

/* One W_OUTPUTS entry. */
struct out {
    int64_t slot;
    int kind;     /* 0 value, 1 failure, 2 item, 3 end */
    char *json;   /* kinds 0 and 2 */
    int64_t code; /* kind 1 */
    char *type, *message, *traceback;
    int64_t count; /* kind 3 */
    int frame;     /* which W_OUTPUTS frame carried it (from 0) */
    double t;      /* when it arrived */
};

struct outs {
    struct out o[256];
    int n;
    int frames;
    size_t max_body; /* the largest W_OUTPUTS frame body */
    bool crashed;
    int64_t crash_slot, crash_signal;
    char *crash_message;
    bool eof;
};

static void add_outputs(struct outs *r, const struct frame *f)
{
    const msgpack_object *list = get(f->root, "outputs");
    ASSERT_NOT_NULL(list);
    ASSERT_EQ_INT(list->type, MSGPACK_OBJECT_ARRAY);
    ASSERT(list->via.array.size > 0);
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        const msgpack_object *e = &list->via.array.ptr[i];
        ASSERT_EQ_INT(e->type, MSGPACK_OBJECT_ARRAY);
        ASSERT(e->via.array.size >= 3);
        ASSERT(r->n < 256);
        struct out *o = &r->o[r->n++];
        memset(o, 0, sizeof *o);
        o->slot = e->via.array.ptr[0].via.i64;
        o->kind = (int)e->via.array.ptr[1].via.i64;
        o->frame = r->frames;
        o->t = unit_now();
        const msgpack_object *a = e->via.array.ptr;
        switch (o->kind) {
        case 0:
        case 2:
            ASSERT_EQ_UINT(e->via.array.size, 3);
            o->json = payload_json(&a[2]);
            break;
        case 1:
            ASSERT_EQ_UINT(e->via.array.size, 6);
            o->code = a[2].via.i64;
            o->type = str_of(&a[3]);
            o->message = str_of(&a[4]);
            o->traceback = str_of(&a[5]);
            ASSERT_NOT_NULL(o->type);
            ASSERT_NOT_NULL(o->message);
            break;
        case 3:
            ASSERT_EQ_UINT(e->via.array.size, 3);
            o->count = a[2].via.i64;
            break;
        default:
            FAIL("unknown output kind %d", o->kind);
        }
    }
    r->frames++;
}

/* Reads frames until want entries arrived, a W_CRASH, end of file or timeout seconds. */
static void collect(struct wk *w, struct outs *r, int want, double timeout)
{
    double deadline = unit_now() + scaled(timeout);
    while (r->n < want && !r->crashed) {
        struct frame f;
        double left = (deadline - unit_now()) / (sanitize ? 3 : 1);
        if (left <= 0 || !read_frame(w, &f, left)) {
            r->eof = true;
            return;
        }
        if (f.op == W_OUTPUTS) {
            add_outputs(r, &f);
            if (f.size > r->max_body)
                r->max_body = f.size;
        } else if (f.op == W_CRASH) {
            r->crashed = true;
            r->crash_slot = get_int(f.root, "slot");
            r->crash_signal = get_int(f.root, "signal");
            r->crash_message = str_of(get(f.root, "message"));
        } else {
            FAIL("unexpected op %d while waiting for outputs", f.op);
        }
        frame_free(&f);
    }
}

/* The output of slot among r's (the last one of kinds 0, 1 or 3), or fails. */
static const struct out *final_of(const struct outs *r, int64_t slot)
{
    for (int i = r->n - 1; i >= 0; i--)
        if (r->o[i].slot == slot && r->o[i].kind != 2)
            return &r->o[i];
    FAIL("no output for slot %lld among %d", (long long)slot, r->n);
}

/* Waits for the worker to exit; its status (exit code, or 128 + signal). */
static int wk_wait(struct wk *w, double timeout)
{
    double deadline = unit_now() + scaled(timeout);
    int status;
    pid_t r;
    while ((r = waitpid(w->pid, &status, WNOHANG)) == 0) {
        if (unit_now() > deadline) {
            kill(w->pid, SIGKILL);
            waitpid(w->pid, &status, 0);
            FAIL("the worker did not exit within %.1f s", scaled(timeout));
        }
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    close(w->fd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static char *wk_stderr(const struct wk *w)
{
    FILE *f = fopen(w->errpath, "r");
    ASSERT_NOT_NULL(f);
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

/* Starts a worker and checks its W_READY. */
static struct wk wk_start(const char *code, const char *const *extra)
{
    struct wk w = wk_spawn(code, extra);
    struct frame f;
    if (!read_frame(&w, &f, 10))
        FAIL("no W_READY from the worker; its stderr:\n%s", wk_stderr(&w));
    ASSERT_EQ_INT(f.op, W_READY);
    ASSERT_EQ_STR(str_of(get(f.root, "container_id")), "ta-test");
    ASSERT_EQ_INT(get_int(f.root, "pid"), w.pid);
    frame_free(&f);
    return w;
}

/* Stops a worker that should exit 0 after W_STOP. */
static void wk_stop(struct wk *w)
{
    send_op(w, W_STOP, -1);
    int status = wk_wait(w, 10);
    if (status != 0)
        FAIL("the worker exited %d after W_STOP; its stderr:\n%s", status, wk_stderr(w));
}

static struct wk start_fn(const char *function)
{
    const char *extra[] = {"--function", function, NULL};
    return wk_start(app_so, extra);
}

/* --- basics ----------------------------------------------------------------------------------- */

TEST(ready_then_one_input)
{
    struct wk w = start_fn("echo");
    struct in in = {7, NULL, "[[{\"a\": [1, 2.5, \"x\", null, true]}], {}]"};
    send_inputs(&w, &in, 1);
    struct outs r = {0};
    collect(&w, &r, 1, 10);
    ASSERT_EQ_INT(r.n, 1);
    ASSERT_EQ_INT(r.o[0].slot, 7);
    ASSERT_EQ_INT(r.o[0].kind, 0);
    ASSERT_EQ_STR(r.o[0].json, "{\"a\":[1,2.5,\"x\",null,true]}");
    wk_stop(&w);
}

TEST(bad_arguments_and_unknown_method_fail_that_input)
{
    struct wk w = start_fn("tiny");
    struct in ins[] = {
        {1, NULL, "[[\"nope\"], {}]"},
        {2, "tiny", "[[1], {}]"},
        {3, "other", "[[1], {}]"},
        {4, NULL, "[[1, 2], {}]"},
    };
    send_inputs(&w, ins, 4);
    struct outs r = {0};
    collect(&w, &r, 4, 10);
    const struct out *o = final_of(&r, 1);
    ASSERT_EQ_INT(o->kind, 1);
    ASSERT_EQ_STR(o->type, "TypeError");
    ASSERT_STR_CONTAINS(o->message, "tiny() argument 'x' must be int, not str");
    ASSERT_EQ_STR(final_of(&r, 2)->json, "2");
    o = final_of(&r, 3);
    ASSERT_EQ_INT(o->code, SKIFF_ERR_NOT_FOUND);
    ASSERT_STR_CONTAINS(o->message, "runs function 'tiny', not 'other'");
    ASSERT_STR_CONTAINS(final_of(&r, 4)->message, "takes 1 positional argument but 2 were given");
    wk_stop(&w);
}

TEST(many_tiny_inputs_in_one_frame_come_back_together)
{
    struct wk w = start_fn("tiny");
    struct in ins[100];
    char args[100][32];
    for (int i = 0; i < 100; i++) {
        snprintf(args[i], sizeof args[i], "[[%d], {}]", i);
        ins[i] = (struct in){1000 + i, NULL, args[i]};
    }
    send_inputs(&w, ins, 100);
    struct outs r = {0};
    collect(&w, &r, 100, 10);
    ASSERT_EQ_INT(r.n, 100);
    for (int i = 0; i < 100; i++) {
        ASSERT_EQ_INT(r.o[i].slot, 1000 + i); /* arrival order */
        char want[32];
        snprintf(want, sizeof want, "%d", i + 1);
        ASSERT_EQ_STR(r.o[i].json, want);
    }
    /* Back to back with their outputs together: one frame (a slow sanitizer build may need a
     * second one when the first outputs grow older than a millisecond). */
    ASSERT_LE_INT(r.frames, sanitize ? 10 : 2);
    wk_stop(&w);
}

TEST(sync_round_trips_one_at_a_time)
{
    /* The benchmarks' sync path: one input, its output, the next input. Timed for information
     * only (bench/ measures it properly). */
    struct wk w = start_fn("tiny");
    enum { N = 2000 };
    double t0 = unit_now();
    for (int i = 0; i < N; i++) {
        send_inputs(&w, &(struct in){i, NULL, "[[41], {}]"}, 1);
        struct outs r = {0};
        collect(&w, &r, 1, 10);
        ASSERT_EQ_INT(r.n, 1);
        ASSERT_EQ_INT(r.o[0].slot, i);
        ASSERT_EQ_INT(r.frames, 1);
    }
    printf("  %d sync round trips: %.1f us each\n", N, (unit_now() - t0) / N * 1e6);
    wk_stop(&w);
}

/* --- concurrency ------------------------------------------------------------------------------ */

/* Sends n inputs of ms milliseconds to a worker of function fn; returns the peak concurrency
 * seen and the elapsed time. */
static int run_sleepers(const char *fn, int n, int ms, double *elapsed)
{
    struct wk w = start_fn(fn);
    struct in ins[16];
    char args[32];
    snprintf(args, sizeof args, "[[%d], {}]", ms);
    for (int i = 0; i < n; i++)
        ins[i] = (struct in){i, NULL, args};
    double t0 = unit_now();
    send_inputs(&w, ins, (size_t)n);
    struct outs r = {0};
    collect(&w, &r, n, 20);
    *elapsed = unit_now() - t0;
    ASSERT_EQ_INT(r.n, n);
    int peak = 0;
    for (int i = 0; i < n; i++) {
        ASSERT_EQ_INT(r.o[i].kind, 0);
        skiff_value *v = NULL;
        skiff_error err = SKIFF_ERROR_INIT;
        ASSERT_EQ_INT(skiff_value_from_json(r.o[i].json, strlen(r.o[i].json), &v, &err), 0);
        int p = (int)skiff_value_get_int(skiff_map_get(v, "peak"));
        peak = p > peak ? p : peak;
        skiff_value_free(v);
    }
    wk_stop(&w);
    return peak;
}

TEST(max_inputs_runs_inputs_at_once_but_never_more)
{
    double elapsed;
    int peak = run_sleepers("conc", 9, 150, &elapsed);
    ASSERT_EQ_INT(peak, 3); /* three at once, seen from inside: concurrency, and its limit */
    /* At least three rounds of 150 ms (how much longer depends on the machine's load). */
    ASSERT(elapsed >= 0.44);
}

TEST(max_inputs_1_runs_one_at_a_time)
{
    double elapsed;
    int peak = run_sleepers("serial", 4, 50, &elapsed);
    ASSERT_EQ_INT(peak, 1);
    ASSERT(elapsed >= 0.195);
}

/* --- batches ---------------------------------------------------------------------------------- */

TEST(batch_gathers_up_to_max_batch_size)
{
    struct wk w = start_fn("batch");
    struct in ins[10];
    char args[10][32];
    for (int i = 0; i < 10; i++) {
        snprintf(args[i], sizeof args[i], "[[%d], {}]", i);
        ins[i] = (struct in){i, NULL, args[i]};
    }
    send_inputs(&w, ins, 10);
    struct outs r = {0};
    collect(&w, &r, 10, 10);
    ASSERT_EQ_INT(r.n, 10);
    /* 4, 4, then 2 after waiting for more. */
    for (int i = 0; i < 10; i++) {
        char want[32];
        snprintf(want, sizeof want, "%d", i * 1000 + (i < 8 ? 4 : 2));
        ASSERT_EQ_STR(final_of(&r, i)->json, want);
    }
    wk_stop(&w);
}

TEST(batch_waits_at_most_wait_ms)
{
    struct wk w = start_fn("batch");
    struct in ins[] = {{1, NULL, "[[5], {}]"}, {2, NULL, "[[6], {}]"}};
    double t0 = unit_now();
    send_inputs(&w, ins, 2);
    struct outs r = {0};
    collect(&w, &r, 2, 10);
    double waited = unit_now() - t0;
    ASSERT_EQ_STR(final_of(&r, 1)->json, "5002");
    ASSERT_EQ_STR(final_of(&r, 2)->json, "6002");
    ASSERT(waited >= 0.19);
    ASSERT(waited < scaled(3.0)); /* it did not wait for a fuller batch */
    /* An input arriving during the wait joins the batch. */
    t0 = unit_now();
    send_inputs(&w, &(struct in){3, NULL, "[[7], {}]"}, 1);
    struct timespec ts = {0, 50000000};
    nanosleep(&ts, NULL);
    send_inputs(&w, &(struct in){4, NULL, "[[8], {}]"}, 1);
    struct outs r2 = {0};
    collect(&w, &r2, 2, 10);
    ASSERT_EQ_STR(final_of(&r2, 3)->json, "7002");
    ASSERT_EQ_STR(final_of(&r2, 4)->json, "8002");
    wk_stop(&w);
}

TEST(batch_of_the_wrong_length_fails_every_input)
{
    struct wk w = start_fn("badbatch");
    struct in ins[] = {{1, NULL, "[[1], {}]"}, {2, NULL, "[[2], {}]"}, {3, NULL, "[[\"x\"], {}]"}};
    send_inputs(&w, ins, 3);
    struct outs r = {0};
    collect(&w, &r, 3, 10);
    for (int s = 1; s <= 2; s++) {
        const struct out *o = final_of(&r, s);
        ASSERT_EQ_INT(o->kind, 1);
        ASSERT_EQ_INT(o->code, SKIFF_ERR_INVALID);
        ASSERT_EQ_STR(o->type, "InvalidError");
        ASSERT_STR_CONTAINS(o->message, "batched function badbatch() returned a list of 1 "
                                        "results for a batch of 2 inputs");
    }
    /* The input that does not bind fails alone, with its own TypeError. */
    ASSERT_EQ_STR(final_of(&r, 3)->type, "TypeError");
    wk_stop(&w);
}

/* --- generators ------------------------------------------------------------------------------- */

TEST(generator_streams_items_in_order_then_the_count)
{
    struct wk w = start_fn("gen");
    send_inputs(&w, &(struct in){5, NULL, "[[4], {\"ms\": 100}]"}, 1);
    struct outs r = {0};
    collect(&w, &r, 5, 10);
    ASSERT_EQ_INT(r.n, 5);
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ_INT(r.o[i].slot, 5);
        ASSERT_EQ_INT(r.o[i].kind, 2);
        char want[16];
        snprintf(want, sizeof want, "%d", i);
        ASSERT_EQ_STR(r.o[i].json, want);
    }
    ASSERT_EQ_INT(r.o[4].kind, 3);
    ASSERT_EQ_INT(r.o[4].count, 4);
    /* Sent promptly: the first item long before the generator ends (4 x 100 ms). */
    ASSERT(r.o[0].t - r.o[4].t < -0.25); /* the first item long before the end */
    wk_stop(&w);
}

TEST(generator_failure_comes_after_the_items_yielded)
{
    struct wk w = start_fn("gen");
    send_inputs(&w, &(struct in){9, NULL, "[[5, 3], {}]"}, 1);
    struct outs r = {0};
    collect(&w, &r, 4, 10);
    ASSERT_EQ_INT(r.n, 4);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ_INT(r.o[i].kind, 2);
    ASSERT_EQ_INT(r.o[3].kind, 1);
    ASSERT_EQ_STR(r.o[3].type, "ValueError");
    ASSERT_EQ_STR(r.o[3].message, "gen failed at 3");
    ASSERT_STR_CONTAINS(r.o[3].traceback, "worker_app.c");
    /* Zero items: the end says 0. */
    send_inputs(&w, &(struct in){10, NULL, "[[0], {}]"}, 1);
    struct outs r2 = {0};
    collect(&w, &r2, 1, 10);
    ASSERT_EQ_INT(r2.o[0].kind, 3);
    ASSERT_EQ_INT(r2.o[0].count, 0);
    wk_stop(&w);
}

TEST(results_and_items_over_the_payload_limit_fail_the_input)
{
    setenv("SKIFF_PAYLOAD_MAX", "1000", 1);
    struct wk w = start_fn("big");
    send_inputs(&w, &(struct in){1, NULL, "[[[10, 2000, 10]], {}]"}, 1);
    struct outs r = {0};
    collect(&w, &r, 2, 10);
    ASSERT_EQ_INT(r.n, 2);
    ASSERT_EQ_INT(r.o[0].kind, 2);
    ASSERT_EQ_STR(r.o[0].json, "\"aaaaaaaaaa\"");
    ASSERT_EQ_INT(r.o[1].kind, 1); /* the failure ends the input: no item or end after it */
    ASSERT_EQ_INT(r.o[1].code, SKIFF_ERR_REQUEST_SIZE);
    ASSERT_STR_CONTAINS(r.o[1].message,
                        "an item of big() is 2003 bytes, over the payload limit of 1000 bytes");
    wk_stop(&w);
    w = start_fn("bigresult");
    struct in ins[] = {{1, NULL, "[[2000], {}]"}, {2, NULL, "[[900], {}]"}};
    send_inputs(&w, ins, 2);
    struct outs r2 = {0};
    collect(&w, &r2, 2, 10);
    ASSERT_EQ_INT(final_of(&r2, 1)->code, SKIFF_ERR_REQUEST_SIZE);
    ASSERT_STR_CONTAINS(final_of(&r2, 1)->message, "the result of bigresult() is 2003 bytes");
    ASSERT_EQ_INT(final_of(&r2, 2)->kind, 0);
    wk_stop(&w);
}

TEST(outputs_are_split_to_stay_under_the_frame_limit)
{
    /* A payload limit of 1000 bytes makes the frame limit 1000 + 64 KiB: 100 outputs of 900
     * bytes do not fit in one frame. */
    setenv("SKIFF_PAYLOAD_MAX", "1000", 1);
    struct wk w = start_fn("bigresult");
    struct in ins[100];
    for (int i = 0; i < 100; i++)
        ins[i] = (struct in){i, NULL, "[[900], {}]"};
    send_inputs(&w, ins, 100);
    struct outs r = {0};
    collect(&w, &r, 100, 10);
    ASSERT_EQ_INT(r.n, 100);
    for (int i = 0; i < 100; i++)
        ASSERT_EQ_INT(final_of(&r, i)->kind, 0);
    ASSERT(r.frames >= 2);
    ASSERT_LE_UINT(r.max_body, 1000 + 65536);
    wk_stop(&w);
}

/* --- cancellation ----------------------------------------------------------------------------- */

/* A worker of fn (which waits to be cancelled) given inputs in slots 1 and 2 100 ms ago. */
static struct wk start_waiting(const char *fn)
{
    struct wk w = start_fn(fn);
    struct in ins[] = {{1, NULL, "[[], {}]"}, {2, NULL, "[[], {}]"}};
    send_inputs(&w, ins, 2);
    struct timespec ts = {0, 100000000};
    nanosleep(&ts, NULL);
    return w;
}

TEST(cancel_reaches_the_running_input_and_the_queued_ones)
{
    struct wk w = start_waiting("cancellable");
    send_op(&w, W_CANCEL, 2); /* queued: never runs */
    double t0 = unit_now();
    send_op(&w, W_CANCEL, 1);
    struct outs r = {0};
    collect(&w, &r, 2, 10);
    ASSERT(unit_now() - t0 < scaled(3.0)); /* the input waits for its cancel, forever else */
    ASSERT_EQ_STR(final_of(&r, 1)->json, "\"cancelled\"");
    const struct out *o = final_of(&r, 2);
    ASSERT_EQ_INT(o->kind, 1);
    ASSERT_EQ_INT(o->code, SKIFF_ERR_CANCELLED);
    ASSERT_STR_CONTAINS(o->message, "cancelled before it started");
    wk_stop(&w);
}

TEST(frames_read_while_an_input_runs_are_all_handled)
{
    /* One input at a time: while slot 1 runs, the worker reads the socket only when the function
     * asks skiff_ctx_cancelled. A new input and then a cancel arrive meanwhile: the input is
     * queued (not lost), the cancel behind it reaches slot 1. */
    struct wk w = start_fn("cancellable");
    send_inputs(&w, &(struct in){1, NULL, "[[], {}]"}, 1);
    struct timespec ts = {0, 50000000};
    nanosleep(&ts, NULL);
    send_inputs(&w, &(struct in){2, NULL, "[[], {}]"}, 1);
    nanosleep(&ts, NULL);
    send_op(&w, W_CANCEL, 1);
    struct outs r = {0};
    collect(&w, &r, 1, 10);
    ASSERT_EQ_INT(r.o[0].slot, 1);
    ASSERT_EQ_STR(r.o[0].json, "\"cancelled\"");
    nanosleep(&ts, NULL);
    send_op(&w, W_CANCEL, 2); /* slot 2 is running by now */
    collect(&w, &r, 2, 10);
    ASSERT_EQ_INT(r.o[1].slot, 2);
    ASSERT_EQ_STR(r.o[1].json, "\"cancelled\"");
    wk_stop(&w);
}

TEST(cancel_with_a_pool_takes_effect_at_once)
{
    struct wk w = start_waiting("pcancellable");
    double t0 = unit_now();
    send_op(&w, W_CANCEL, 2);
    struct outs r = {0};
    collect(&w, &r, 1, 10);
    ASSERT(unit_now() - t0 < scaled(3.0)); /* the input waits for its cancel, forever else */
    ASSERT_EQ_INT(r.o[0].slot, 2);
    ASSERT_EQ_STR(r.o[0].json, "\"cancelled\"");
    send_op(&w, W_CANCEL, 1);
    collect(&w, &r, 2, 10);
    ASSERT_EQ_STR(final_of(&r, 1)->json, "\"cancelled\"");
    wk_stop(&w);
}

/* --- stopping --------------------------------------------------------------------------------- */

TEST(stop_finishes_the_inputs_held_then_exits_0)
{
    struct wk w = start_fn("serial");
    struct in ins[] = {{1, NULL, "[[60], {}]"}, {2, NULL, "[[60], {}]"}, {3, NULL, "[[60], {}]"}};
    send_inputs(&w, ins, 3);
    send_op(&w, W_STOP, -1);
    struct outs r = {0};
    collect(&w, &r, 3, 10);
    ASSERT_EQ_INT(r.n, 3);
    for (int s = 1; s <= 3; s++)
        ASSERT_EQ_INT(final_of(&r, s)->kind, 0);
    ASSERT_EQ_INT(wk_wait(&w, 10), 0);
}

TEST(stop_with_a_pool_finishes_the_inputs_held)
{
    struct wk w = start_fn("conc");
    struct in ins[5];
    for (int i = 0; i < 5; i++)
        ins[i] = (struct in){i, NULL, "[[80], {}]"};
    send_inputs(&w, ins, 5);
    send_op(&w, W_STOP, -1);
    struct outs r = {0};
    collect(&w, &r, 5, 10);
    ASSERT_EQ_INT(r.n, 5);
    ASSERT_EQ_INT(wk_wait(&w, 10), 0);
}

TEST(end_of_file_exits_0)
{
    struct wk w = start_fn("echo");
    shutdown(w.fd, SHUT_WR);
    ASSERT_EQ_INT(wk_wait(&w, 10), 0);
}

/* --- classes ---------------------------------------------------------------------------------- */

/* Base64 of the msgpack encoding of the JSON map params. */
static char *params_b64(const char *json)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    encode_json(&sb, json);
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(sb.size / 3 * 4 + 8);
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)sb.data;
    for (size_t i = 0; i < sb.size; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < sb.size)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < sb.size)
            v |= p[i + 2];
        out[n++] = abc[v >> 18 & 63];
        out[n++] = abc[v >> 12 & 63];
        out[n++] = i + 1 < sb.size ? abc[v >> 6 & 63] : '=';
        out[n++] = i + 2 < sb.size ? abc[v & 63] : '=';
    }
    out[n] = '\0';
    msgpack_sbuffer_destroy(&sb);
    return out;
}

TEST(class_params_enter_methods_and_exit)
{
    char cwd[PATH_MAX], exit_file[PATH_MAX + 32];
    ASSERT_NOT_NULL(getcwd(cwd, sizeof cwd));
    snprintf(exit_file, sizeof exit_file, "%s/exit-%d.txt", cwd, (int)getpid());
    setenv("WORKER_EXIT_FILE", exit_file, 1);
    char *b64 = params_b64("{\"greeting\": \"hi\", \"n\": 3}");
    const char *extra[] = {"--class", "Greeter", "--params", b64, NULL};
    struct wk w = wk_start(app_so, extra);
    struct in ins[] = {
        {1, "hello", "[[], {}]"},
        {2, "Greeter.count", "[[], {}]"},
        {3, NULL, "[[], {}]"},
        {4, "nope", "[[], {}]"},
    };
    send_inputs(&w, ins, 4);
    struct outs r = {0};
    collect(&w, &r, 4, 10);
    ASSERT_EQ_STR(final_of(&r, 1)->json, "\"hi x3\"");
    ASSERT_EQ_STR(final_of(&r, 2)->json, "2"); /* state persists between inputs */
    ASSERT_EQ_INT(final_of(&r, 3)->code, SKIFF_ERR_NOT_FOUND);
    ASSERT_STR_CONTAINS(final_of(&r, 3)->message, "class 'Greeter' has no method '(none given)'");
    ASSERT_STR_CONTAINS(final_of(&r, 4)->message, "class 'Greeter' has no method 'nope'");
    /* W_STOP with an input held: it runs, then the exit hook. */
    send_inputs(&w, &(struct in){5, "slow", "[[50], {}]"}, 1);
    send_op(&w, W_STOP, -1);
    struct outs r2 = {0};
    collect(&w, &r2, 1, 10);
    ASSERT_EQ_STR(final_of(&r2, 5)->json, "3");
    ASSERT_EQ_INT(wk_wait(&w, 10), 0);
    FILE *f = fopen(exit_file, "r");
    ASSERT_NOT_NULL(f);
    char line[256] = "";
    ASSERT_NOT_NULL(fgets(line, sizeof line, f));
    fclose(f);
    ASSERT_EQ_STR(line, "exit hi x3 after 3 calls\n");
    free(b64);
}

/* Starts a worker that must fail to start: its W_INIT_FAILED message. */
static char *init_failure(const char *const *extra)
{
    struct wk w = wk_spawn(app_so, extra);
    struct frame f;
    if (!read_frame(&w, &f, 10))
        FAIL("no frame from the worker; its stderr:\n%s", wk_stderr(&w));
    ASSERT_EQ_INT(f.op, W_INIT_FAILED);
    ASSERT_EQ_INT(get_int(f.root, "code"), 18);
    ASSERT_EQ_STR(str_of(get(f.root, "type")), "InitFailureError");
    char *message = str_of(get(f.root, "message"));
    char *tb = str_of(get(f.root, "traceback"));
    frame_free(&f);
    ASSERT_EQ_INT(wk_wait(&w, 10), 1);
    ASSERT_STR_CONTAINS(wk_stderr(&w), message);
    if (tb) {
        size_t n = strlen(message) + strlen(tb) + 2;
        char *both = keep(malloc(n));
        snprintf(both, n, "%s\n%s", message, tb);
        message = both;
    }
    return message;
}

TEST(bad_class_params_fail_init)
{
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"{\"n\": 1}", "class 'Greeter': bad parameters: Greeter() missing 1 required argument: "
                       "'greeting'"},
        {"{\"greeting\": 5}", "Greeter() argument 'greeting' must be str, not int"},
        {"{\"greeting\": \"a\", \"x\": 1}", "unexpected keyword argument 'x'"},
        {"[1]", "the parameters are a list, not a map"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *b64 = params_b64(cases[i].json);
        const char *extra[] = {"--class", "Greeter", "--params", b64, NULL};
        char *message = init_failure(extra);
        ASSERT_STR_CONTAINS(message, cases[i].want);
        free(b64);
    }
    const char *not_b64[] = {"--class", "Greeter", "--params", "***", NULL};
    char *message = init_failure(not_b64);
    ASSERT_STR_CONTAINS(message, "--params is not padded base64");
    const char *no_params[] = {"--class", "Greeter", NULL};
    message = init_failure(no_params);
    ASSERT_STR_CONTAINS(message, "missing 1 required argument: 'greeting'");
    const char *no_class[] = {"--class", "Nope", NULL};
    message = init_failure(no_class);
    ASSERT_STR_CONTAINS(message, "app 'worker-app' has no class 'Nope'");
    const char *no_fn[] = {"--function", "nope", NULL};
    message = init_failure(no_fn);
    ASSERT_STR_CONTAINS(message, "app 'worker-app' has no function 'nope'");
}

TEST(failing_enter_hook_fails_init)
{
    const char *extra[] = {"--class", "Broken", NULL};
    char *message = init_failure(extra);
    ASSERT_STR_CONTAINS(
        message, "class 'Broken': enter hook 1 failed: ValueError: the model file is missing");
    ASSERT_STR_CONTAINS(message, "worker_app.c");
    ASSERT_STR_CONTAINS(message, "in broken_enter");
}

TEST(my_lifecycle_class_foo_says_hello_world)
{
    const char *extra[] = {"--class", "MyLifecycleClass", NULL};
    struct wk w = wk_start(square_so, extra);
    send_inputs(&w, &(struct in){1, "foo", "[[], {}]"}, 1);
    struct outs r = {0};
    collect(&w, &r, 1, 10);
    ASSERT_EQ_STR(final_of(&r, 1)->json, "\"hello world\"");
    wk_stop(&w);
}

/* --- crashes ---------------------------------------------------------------------------------- */

/* Runs function fn on args; checks W_CRASH names the input's slot, its signal and message, and
 * the log line. Returns the worker's exit status. */
static int crash(const char *fn, const char *args, int64_t want_signal, const char *want)
{
    struct wk w = start_fn(fn);
    struct in ins[] = {{41, NULL, args}};
    send_inputs(&w, ins, 1);
    struct outs r = {0};
    collect(&w, &r, 1, 10);
    ASSERT(r.crashed);
    ASSERT_EQ_INT(r.crash_slot, 41);
    ASSERT_EQ_INT(r.crash_signal, want_signal);
    ASSERT_STR_CONTAINS(r.crash_message, want);
    ASSERT_STR_CONTAINS(r.crash_message, "in-test41 (slot 41)");
    int status = wk_wait(&w, 10);
    ASSERT_STR_CONTAINS(wk_stderr(&w), want);
    return status;
}

TEST(crash_segv_names_the_slot)
{
    if (sanitize)
        return; /* the sanitizer owns SIGSEGV (crash.c leaves its handler alone) */
    ASSERT_EQ_INT(crash("segv", "[[], {}]", SIGSEGV, "function 'segv' crashed with SIGSEGV"),
                  128 + SIGSEGV);
}

TEST(crash_abort_names_the_slot)
{
    if (sanitize)
        return;
    ASSERT_EQ_INT(crash("abort_now", "[[], {}]", SIGABRT, "crashed with SIGABRT"), 128 + SIGABRT);
}

TEST(crash_exit_names_the_slot)
{
    ASSERT_EQ_INT(crash("exit_now", "[[3], {}]", 0, "function 'exit_now' called exit(3)"), 3);
}

TEST(crash_on_a_pool_thread_names_its_slot)
{
    if (sanitize)
        return;
    struct wk w = start_fn("pcrash");
    struct in ins[] = {{1, NULL, "[[false], {}]"}, {2, NULL, "[[true], {}]"}};
    send_inputs(&w, ins, 2);
    struct outs r = {0};
    collect(&w, &r, 2, 10);
    ASSERT(r.crashed);
    ASSERT_EQ_INT(r.crash_slot, 2);
    ASSERT_EQ_INT(r.crash_signal, SIGSEGV);
    ASSERT_STR_CONTAINS(r.crash_message, "function 'pcrash' crashed with SIGSEGV");
    ASSERT_EQ_INT(wk_wait(&w, 10), 128 + SIGSEGV);
}

TEST(stack_overflow_on_a_pool_thread_is_reported)
{
    if (sanitize)
        return;
    struct wk w = start_fn("overflow");
    send_inputs(&w, &(struct in){3, NULL, "[[], {}]"}, 1);
    struct outs r = {0};
    collect(&w, &r, 1, 10);
    ASSERT(r.crashed);
    ASSERT_EQ_INT(r.crash_slot, 3);
    ASSERT_EQ_INT(r.crash_signal, SIGSEGV);
    ASSERT_EQ_INT(wk_wait(&w, 10), 128 + SIGSEGV);
}

TEST(crash_sends_the_outputs_held_back_first)
{
    if (sanitize)
        return;
    /* Two inputs in one frame: the first fails at once (TypeError: segv takes no arguments), an
     * output held back while the second runs and crashes; it must reach the server first. */
    struct wk w = start_fn("segv");
    struct in ins[] = {{1, NULL, "[[1], {}]"}, {2, NULL, "[[], {}]"}};
    send_inputs(&w, ins, 2);
    struct outs r = {0};
    collect(&w, &r, 2, 10);
    ASSERT_EQ_INT(r.n, 1);
    ASSERT_EQ_INT(r.o[0].slot, 1);
    ASSERT_EQ_STR(r.o[0].type, "TypeError");
    ASSERT(r.crashed);
    ASSERT_EQ_INT(r.crash_slot, 2);
    ASSERT_EQ_INT(wk_wait(&w, 10), 128 + SIGSEGV);
}

/* --- malformed frames ------------------------------------------------------------------------- */

/* Sends raw bytes; the worker must exit 1 logging want. */
static void malformed(const void *bytes, size_t n, const char *want)
{
    struct wk w = start_fn("echo");
    write_all(w.fd, bytes, n);
    int status = wk_wait(&w, 10);
    ASSERT_EQ_INT(status, 1);
    ASSERT_STR_CONTAINS(wk_stderr(&w), want);
}

TEST(malformed_frames_end_the_worker_with_status_1)
{
    /* A body that is an array, not a map. */
    static const unsigned char not_map[] = {0, 0, 0, 2, 0x91, 0x01};
    malformed(not_map, sizeof not_map, "not a msgpack map with an integer op");
    /* A header announcing more than the limit. */
    static const unsigned char too_long[] = {0x7f, 0xff, 0xff, 0xff, 0x80};
    malformed(too_long, sizeof too_long, "not a protocol frame");
    /* An empty body. */
    static const unsigned char empty[] = {0, 0, 0, 0};
    malformed(empty, sizeof empty, "not a protocol frame");
    /* W_INPUTS whose entry is not [slot, input_id, call_id, method, args]. */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    begin_inputs(&sb, &pk, 1);
    msgpack_pack_array(&pk, 2);
    pack_str(&pk, "x");
    pack_str(&pk, "y");
    char frame[256];
    frame[0] = frame[1] = frame[2] = 0;
    frame[3] = (char)sb.size;
    memcpy(frame + 4, sb.data, sb.size);
    malformed(frame, sb.size + 4, "W_INPUTS entry 0 is not [slot int");
    msgpack_sbuffer_destroy(&sb);
    /* W_CANCEL without a slot. */
    static const unsigned char cancel[] = {0,   0,  0,    10,  0x82, 0xa2, 'o',
                                           'p', 45, 0xa3, 'r', 'i',  'd',  0};
    malformed(cancel, sizeof cancel, "W_CANCEL without an integer slot");
}

/* --- describe --------------------------------------------------------------------------------- */

TEST(describe_prints_functions_classes_and_configuration)
{
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "%s/bin/skiff-worker --describe %s", build_dir, app_so);
    FILE *p = popen(cmd, "r");
    ASSERT_NOT_NULL(p);
    static char out[65536];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    ASSERT_EQ_INT(pclose(p), 0);
    skiff_value *d = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    ASSERT_EQ_INT(skiff_value_from_json(out, n, &d, &err), 0);
    ASSERT_EQ_STR(skiff_value_get_string(skiff_map_get(d, "app"), NULL), "worker-app");
    const skiff_value *fns = skiff_map_get(d, "functions");
    bool saw_gen = false, saw_conc = false, saw_method = false;
    for (size_t i = 0; i < skiff_list_len(fns); i++) {
        const skiff_value *f = skiff_list_get(fns, i);
        const char *name = skiff_value_get_string(skiff_map_get(f, "name"), NULL);
        if (!strcmp(name, "gen")) {
            saw_gen = true;
            ASSERT_EQ_STR(skiff_value_get_string(skiff_map_get(f, "kind"), NULL), "generator");
        } else if (!strcmp(name, "conc")) {
            saw_conc = true;
            ASSERT_EQ_INT(skiff_value_get_int(skiff_map_get(f, "max_inputs")), 3);
            ASSERT_EQ_INT(skiff_value_type(skiff_map_get(f, "retries")), SKIFF_NIL);
        } else if (!strcmp(name, "Greeter.hello")) {
            saw_method = true;
            ASSERT_EQ_STR(skiff_value_get_string(skiff_map_get(f, "class"), NULL), "Greeter");
            ASSERT_NULL(skiff_map_get(f, "max_inputs")); /* methods carry no configuration */
        }
    }
    ASSERT(saw_gen && saw_conc && saw_method);
    const skiff_value *classes = skiff_map_get(d, "classes");
    ASSERT_EQ_UINT(skiff_list_len(classes), 2);
    const skiff_value *g = skiff_list_get(classes, 0);
    if (strcmp(skiff_value_get_string(skiff_map_get(g, "name"), NULL), "Greeter"))
        g = skiff_list_get(classes, 1);
    ASSERT_EQ_STR(skiff_value_get_string(skiff_map_get(g, "name"), NULL), "Greeter");
    ASSERT_EQ_STR(skiff_value_get_string(skiff_map_get(g, "params"), NULL), "greeting:str, n:int?");
    ASSERT(skiff_value_get_bool(skiff_map_get(g, "snapshot")));
    skiff_value_free(d);
}

int main(int argc, char **argv)
{
    const char *b = getenv("SKIFF_BUILD");
    const char *s = getenv("SKIFF_SRC");
    if (!realpath(b ? b : "build", build_dir) || !realpath(s ? s : ".", src_dir)) {
        fprintf(stderr, "itest_worker: set SKIFF_BUILD and SKIFF_SRC\n");
        return 1;
    }
    const char *san = getenv("SKIFF_SANITIZE");
    sanitize = san && *san && strcmp(san, "0");
    setvbuf(stdout, NULL, _IOLBF, 0);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        return 1;
    snprintf(app_so, sizeof app_so, "%s/worker_app.so", cwd);
    snprintf(square_so, sizeof square_so, "%s/square.so", cwd);
    char src[PATH_MAX + 64];
    snprintf(src, sizeof src, "%s/tests/apps/worker_app.c", src_dir);
    compile(src, app_so);
    snprintf(src, sizeof src, "%s/examples/square.c", src_dir);
    compile(src, square_so);
    return unit_run(argc, argv);
}
