/*
 * run.c - the container loop: one function (or one class instance) of one app, inputs from the
 * server on fd 3, protocol version 2 (docs/protocol.md, "Container operations").
 *
 * Startup loads the app, opens the target (the function, or the class with its parameters and
 * state), runs the class's enter hooks, and answers W_READY (or W_INIT_FAILED and exit 1). A
 * snapshot template (--template, template.c) runs only the enter_snap hooks and forks; each
 * forked child carries on here as a container that runs the remaining enter hooks. From
 * then on the server sends W_INPUTS (many inputs per frame, each with its slot), W_CANCEL (by
 * slot) and W_STOP; the worker answers with W_OUTPUTS frames carrying one entry per finished
 * input (or generator item) and keeps every input it received queued in arrival order.
 *
 * Two shapes, chosen by the function's (or class's) max_inputs:
 *
 *   max_inputs 1: one thread does everything, as lean as the synchronous round trip wants. It
 *   reads frames, runs the queued inputs back to back, and sends the outputs of inputs that
 *   completed together in one frame with one write(): outputs are held back while more inputs are
 *   queued, the one just run was tiny (< TINY_NS) and the oldest held output is younger than
 *   FLUSH_AGE_NS. While user code runs the thread cannot read the socket, so
 *   skiff_ctx_cancelled polls it (worker_poll_control: non-blocking, at most once per
 *   POLL_INTERVAL_NS), handling W_CANCEL, W_STOP and W_INPUTS exactly as the main loop would.
 *   Once the server asked (W_LOG_MARKS: the container printed while it held several inputs),
 *   each job is announced before it runs (announce: W_STARTED, then wait for W_STARTED_OK), so
 *   the server tags every line with the input that printed it.
 *
 *   max_inputs > 1: a fixed pool of max_inputs threads started at ready time runs the inputs;
 *   the main thread only reads the socket (so W_CANCEL takes effect at once) and queues inputs.
 *   A thread that finishes an input appends its entry and flushes; entries appended while a
 *   write is in progress go out together in the next frame.
 *
 * Outputs are packed straight into one pending frame (prefix with a 32-bit array count patched
 * at flush time; values behind a bin32 header patched after encoding) so nothing is copied. A
 * flush swaps the pending buffer with a spare one and writes it outside the lock, so threads
 * keep appending. A frame never exceeds the frame limit nor WIRE_OUTPUTS_MAX entries: an entry
 * that would push it over is sent in the next frame.
 *
 * A batched function (max_batch_size) takes up to max_batch_size queued inputs at once, waiting
 * at most wait_ms for more (exec.c calls the function once with the lists). An input cancelled
 * before it starts is not run: its output is a CancelledError (which the server ignores).
 *
 * Exit status: 0 after W_STOP (held inputs finished, exit hooks run) or end of file on the socket
 * (held inputs dropped: nobody is left to receive them); 1 after an init failure, a frame that is
 * not a protocol frame or a malformed container message (logged), or a failed write.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/codec.h"
#include "common/id.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/proto.h"
#include "common/wire.h"
#include "worker.h"

/* Room read() may fill when no larger frame is known to be coming: the size buf.c lets a buffer
 * keep between frames, so steady small traffic never reallocates. */
#define READ_CHUNK 65536
/* skiff_ctx_cancelled reads the socket at most this often (a function may call it in a loop). */
#define POLL_INTERVAL_NS 1000000
/* First chunk of the zone the arguments are unpacked into; it grows once and is then reused. */
#define ARGS_ZONE_CHUNK 8192
/* An input that ran shorter than this is "tiny": its output may wait for the next ones. */
#define TINY_NS 200000
/* Held outputs are sent at the latest once the oldest is this old (checked between inputs). */
#define FLUSH_AGE_NS 1000000
/* How often the reader looks at the socket while the pool drains after W_STOP. */
#define DRAIN_POLL_MS 20
/* Most inputs a class or function may run at once (docs/protocol.md bounds max_inputs). */
#define MAX_INPUTS_LIMIT 1000

/* The W_OUTPUTS frame prefix after the 4-byte length: {"op": 47, "rid": 0, "outputs": array32}.
 * The array count (4 bytes) follows at OUT_COUNT_AT. */
static const char out_prefix[] = {(char)0x83, (char)0xa2, 'o', 'p',       (char)OP_W_OUTPUTS,
                                  (char)0xa3, 'r',        'i', 'd',       0x00,
                                  (char)0xa7, 'o',        'u', 't',       'p',
                                  'u',        't',        's', (char)0xdd};
#define OUT_COUNT_AT (WIRE_HEADER + sizeof out_prefix)
#define OUT_PREFIX_LEN (OUT_COUNT_AT + 4)

/* One input received and not yet finished. */
struct input {
    struct input *next;     /* queue order, or the free list */
    int64_t slot;           /* chosen by the server */
    char input_id[ID_SIZE]; /* "in-..." */
    char call_id[ID_SIZE];  /* "fc-..." */
    const struct worker_fn *fn;
    skiff_value *args, *kwargs; /* decoded at arrival; NULL when err is set */
    skiff_error err;            /* a failure known before running (code SKIFF_OK: none) */
    bool cancelled;             /* W_CANCEL named it */
    struct job *job;            /* the job running it, NULL while queued */
};

/* What one executor (the main thread, or one pool thread) runs: one input or one batch. */
struct job {
    struct input **inputs; /* n inputs, capacity cap */
    struct exec_input *x;  /* their descriptions for exec_run */
    size_t n, cap;
    size_t live;               /* inputs that will run (not failed before starting) */
    size_t ncancelled;         /* of those, cancelled */
    bool cancelled;            /* the flag the running ctx sees (atomic) */
    const skiff_value **bound; /* argument slots */
    pthread_t thread;          /* pool threads */
    struct worker *w;
};

struct worker {
    int fd;                   /* the socket to the server */
    bool is_socket;           /* send() with MSG_NOSIGNAL, else write() */
    const char *container_id; /* "ta-..." */
    struct worker_target target;
    size_t payload_max;     /* largest result; SKIFF_PAYLOAD_MAX */
    size_t frame_max;       /* largest frame body accepted or sent */
    struct buf in;          /* bytes received; a frame starts at offset 0 between handlings */
    struct wire_msg msg;    /* the frame being handled */
    msgpack_zone args_zone; /* arguments are unpacked here, cleared per input */
    bool threaded;          /* max_inputs > 1: a pool runs the inputs */
    size_t batch_cap;       /* inputs per job */

    /* Guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;         /* inputs queued, stop or eof (pool threads wait on it) */
    struct input *head, *tail; /* queued inputs, in arrival order */
    struct input *free_inputs; /* recycled input structs */
    struct job *jobs;          /* max_inputs executors */
    size_t njobs;
    size_t alive;         /* pool threads still running */
    bool busy;            /* single mode: user code runs (worker_poll_control may read) */
    bool stop;            /* W_STOP arrived */
    bool eof;             /* the server closed the socket */
    bool fatal;           /* a protocol error: exit 1 */
    bool log_marks;       /* W_LOG_MARKS arrived: announce each input (single mode) */
    bool mark_acked;      /* W_STARTED_OK arrived for the last W_STARTED */
    int64_t last_poll_ns; /* when worker_poll_control last read the socket */

    /* Guarded by out_mu (and out_busy for the crash handler). */
    pthread_mutex_t out_mu;
    struct buf pending; /* the W_OUTPUTS frame being built (empty: none) */
    struct buf sending; /* the frame being written by the flusher */
    uint32_t count;     /* entries in pending */
    int64_t first_ns;   /* when the first entry of pending was added */
    bool flushing;      /* a thread is writing: it sends what is added meanwhile */
    int out_busy;       /* 1 while pending changes, for crash.c */
    bool write_failed;  /* the server is gone */
};

/* The container runs one worker; worker_poll_control (reached from user code) needs to find it. */
static struct worker wk = {
    .fd = -1, .mu = PTHREAD_MUTEX_INITIALIZER, .out_mu = PTHREAD_MUTEX_INITIALIZER};
static bool wk_active;

static const skiff_error cancelled_error = {SKIFF_ERR_CANCELLED, "CancelledError",
                                            "the input was cancelled before it started", NULL};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* --- socket I/O ------------------------------------------------------------------------------- */

/* Writes all of p[0..n) under the socket lock. 0, or -1 (logged) when the server is gone. */
static int write_all(struct worker *w, const char *p, size_t n)
{
    worker_sock_lock();
    while (n > 0) {
        ssize_t k = w->is_socket ? send(w->fd, p, n, MSG_NOSIGNAL) : write(w->fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            worker_sock_unlock();
            log_error("cannot write to the server: %s", strerror(errno));
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    worker_sock_unlock();
    return 0;
}

/* The body length the frame at p announces; p holds at least WIRE_HEADER bytes. */
static size_t announced(const char *p)
{
    const unsigned char *h = (const unsigned char *)p;
    return (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
}

/* Reads what the socket has into in (block: wait for at least one byte). Returns the number of
 * bytes read, 0 at end of file, -1 on an error (logged), -2 when nothing is there (!block). */
static long read_some(struct worker *w, bool block)
{
    size_t target = READ_CHUNK;
    if (w->in.len >= WIRE_HEADER && WIRE_HEADER + announced(w->in.data) > target)
        target = WIRE_HEADER + announced(w->in.data);
    if (target <= w->in.len)
        target = w->in.len + READ_CHUNK;
    if (buf_reserve(&w->in, target - w->in.len) < 0) {
        log_error("out of memory reading a frame of %zu bytes", target);
        return -1;
    }
    if (!block) {
        struct pollfd pfd = {.fd = w->fd, .events = POLLIN};
        int r = poll(&pfd, 1, 0);
        if (r == 0 || (r < 0 && errno == EINTR))
            return -2;
        if (r < 0) {
            log_error("cannot poll the server's socket: %s", strerror(errno));
            return -1;
        }
    }
    for (;;) {
        ssize_t k = read(w->fd, w->in.data + w->in.len, w->in.cap - w->in.len);
        if (k >= 0) {
            w->in.len += (size_t)k;
            return (long)k;
        }
        if (errno == EINTR)
            continue;
        if (errno == ECONNRESET)
            return 0;
        log_error("cannot read from the server: %s", strerror(errno));
        return -1;
    }
}

/* --- outputs ---------------------------------------------------------------------------------- */

static void out_lock(struct worker *w)
{
    pthread_mutex_lock(&w->out_mu);
    int zero = 0;
    while (!__atomic_compare_exchange_n(&w->out_busy, &zero, 1, false, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED)) {
        /* Only a dying thread (crash.c) holds it otherwise: wait for the end. */
        zero = 0;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

/* Releases out; 0, or -1 once a write has failed (the server is gone). */
static int out_unlock(struct worker *w)
{
    int rc = w->write_failed ? -1 : 0;
    __atomic_store_n(&w->out_busy, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&w->out_mu);
    return rc;
}

static void put_be32(char *p, size_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

/* Patches the length and count of the frame in b[0..len) holding count entries. */
static void out_seal(struct buf *b, size_t len, uint32_t count)
{
    put_be32(b->data, len - WIRE_HEADER);
    put_be32(b->data + OUT_COUNT_AT, count);
}

/* Starts the pending frame if there is none (out locked). False when out of memory. */
static bool out_open(struct worker *w)
{
    if (w->pending.len)
        return true;
    static const char zero[WIRE_HEADER] = {0};
    static const char count0[4] = {0};
    if (buf_append(&w->pending, zero, sizeof zero) < 0 ||
        buf_append(&w->pending, out_prefix, sizeof out_prefix) < 0 ||
        buf_append(&w->pending, count0, sizeof count0) < 0) {
        w->pending.len = 0;
        log_error("out of memory starting a W_OUTPUTS frame: an output is lost");
        return false;
    }
    w->first_ns = now_ns();
    return true;
}

/* Counts the entry that starts at `at` in pending (out locked). When it pushed the frame over the
 * limit (bytes, or WIRE_OUTPUTS_MAX entries: the server's object budget of a container frame),
 * the entries before it are sent first and it starts the next frame. */
static void out_commit(struct worker *w, size_t at)
{
    w->count++;
    if (w->count == 1 ||
        (w->pending.len - WIRE_HEADER <= w->frame_max && w->count <= WIRE_OUTPUTS_MAX))
        return;
    out_seal(&w->pending, at, w->count - 1);
    if (write_all(w, w->pending.data, at) < 0)
        w->write_failed = true;
    size_t elen = w->pending.len - at;
    memmove(w->pending.data + OUT_PREFIX_LEN, w->pending.data + at, elen);
    w->pending.len = OUT_PREFIX_LEN + elen;
    w->count = 1;
    w->first_ns = now_ns();
}

/* Starts an entry [slot, kind, ...] of n elements in pending (out locked): *at is where it
 * starts, pk packs the rest. 0, or non-zero when out of memory (nothing is left behind). */
static int out_entry(struct worker *w, msgpack_packer *pk, size_t n, int64_t slot, int kind,
                     size_t *at)
{
    if (!out_open(w))
        return -1;
    *at = w->pending.len;
    msgpack_packer_init(pk, &w->pending, codec_buf_write);
    int rc = msgpack_pack_array(pk, n);
    rc |= msgpack_pack_int64(pk, slot);
    rc |= msgpack_pack_int(pk, kind);
    if (rc != 0)
        w->pending.len = *at;
    return rc;
}

/* Appends [slot, 1, code, type, message, traceback] (out locked). */
static void out_failure(struct worker *w, int64_t slot, const skiff_error *err)
{
    skiff_code code = err->code == SKIFF_OK ? SKIFF_ERR_USER : err->code;
    const char *type = err->type ? err->type : skiff_code_name(code);
    const char *message = err->message ? err->message : "";
    msgpack_packer pk;
    size_t at;
    if (out_entry(w, &pk, 6, slot, 1, &at) != 0)
        return;
    int rc = msgpack_pack_int(&pk, code);
    rc |= msgpack_pack_str_with_body(&pk, type, strlen(type));
    rc |= msgpack_pack_str_with_body(&pk, message, strlen(message));
    rc |= err->traceback ? msgpack_pack_str_with_body(&pk, err->traceback, strlen(err->traceback))
                         : msgpack_pack_nil(&pk);
    if (rc != 0) {
        w->pending.len = at;
        log_error("cannot build the output of slot %lld: out of memory", (long long)slot);
        return;
    }
    out_commit(w, at);
}

/* Appends [slot, kind, value bin] (out locked). A value that cannot be sent (over the payload
 * limit, nested too deeply, out of memory) is described in *err (named after what) and nothing
 * is appended: returns the code, else SKIFF_OK. */
static int out_value(struct worker *w, int64_t slot, int kind, const skiff_value *v,
                     const char *what, skiff_error *err)
{
    static const char bin32[5] = {(char)0xc6};
    msgpack_packer pk;
    size_t at;
    int rc = out_entry(w, &pk, 3, slot, kind, &at) == 0 ? SKIFF_OK : SKIFF_ERR_NOMEM;
    size_t hdr = w->pending.len;
    if (rc == SKIFF_OK)
        rc = codec_status(buf_append(&w->pending, bin32, sizeof bin32));
    if (rc == SKIFF_OK)
        rc = codec_encode_value(&w->pending, v);
    size_t n = rc == SKIFF_OK ? w->pending.len - hdr - sizeof bin32 : 0;
    if (rc == SKIFF_OK && n > w->payload_max)
        rc = SKIFF_ERR_REQUEST_SIZE;
    if (rc == SKIFF_OK) {
        put_be32(w->pending.data + hdr + 1, n);
        out_commit(w, at);
        return SKIFF_OK;
    }
    if (w->pending.len > at)
        w->pending.len = at;
    switch (rc) {
    case SKIFF_ERR_REQUEST_SIZE:
        if (n)
            return skiff_error_set(err, SKIFF_ERR_REQUEST_SIZE, NULL,
                                   "%s is %zu bytes, over the payload limit of %zu bytes", what, n,
                                   w->payload_max);
        return skiff_error_set(err, SKIFF_ERR_REQUEST_SIZE, NULL,
                               "%s is over the payload limit of %zu bytes", what, w->payload_max);
    case SKIFF_ERR_SERIALIZATION:
        return skiff_error_set(err, SKIFF_ERR_SERIALIZATION, NULL,
                               "%s nests lists and maps deeper than %d levels", what,
                               CODEC_MAX_DEPTH);
    default:
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory encoding %s", what);
    }
}

/* Appends [slot, 3, count] (out locked). */
static void out_end(struct worker *w, int64_t slot, int64_t count)
{
    msgpack_packer pk;
    size_t at;
    if (out_entry(w, &pk, 3, slot, 3, &at) != 0)
        return;
    if (msgpack_pack_int64(&pk, count) != 0) {
        w->pending.len = at;
        return;
    }
    out_commit(w, at);
}

/* Sends the pending entries, and those added while it writes. 0, or -1 when the server is gone.
 * A thread that finds another one writing leaves its entries to it. */
static int out_flush(struct worker *w)
{
    out_lock(w);
    if (w->flushing) {
        out_unlock(w);
        return 0;
    }
    while (w->count > 0 && !w->write_failed) {
        out_seal(&w->pending, w->pending.len, w->count);
        struct buf t = w->pending;
        w->pending = w->sending;
        w->sending = t;
        w->count = 0;
        w->flushing = true;
        /* The socket is taken before out is released so frames leave in the order built. */
        worker_sock_lock();
        out_unlock(w);
        const char *p = w->sending.data;
        size_t n = w->sending.len;
        bool ok = true;
        while (n > 0) {
            ssize_t k = w->is_socket ? send(w->fd, p, n, MSG_NOSIGNAL) : write(w->fd, p, n);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0) {
                log_error("cannot write to the server: %s", strerror(errno));
                ok = false;
                break;
            }
            p += k;
            n -= (size_t)k;
        }
        worker_sock_unlock();
        out_lock(w);
        w->sending.len = 0;
        buf_shrink(&w->sending);
        if (!ok)
            w->write_failed = true;
    }
    w->flushing = false;
    return out_unlock(w);
}

/* The exec sink: outputs into the pending frame. */
static int sink_value(void *arg, const struct exec_input *in, const skiff_value *v)
{
    struct worker *w = arg;
    char what[128];
    snprintf(what, sizeof what, "the result of %s()", in->fn ? in->fn->def->name : "?");
    skiff_error err = SKIFF_ERROR_INIT;
    out_lock(w);
    if (out_value(w, in->slot, 0, v, what, &err) != SKIFF_OK)
        out_failure(w, in->slot, &err);
    skiff_error_clear(&err);
    return out_unlock(w);
}

static int sink_failure(void *arg, const struct exec_input *in, const skiff_error *err)
{
    struct worker *w = arg;
    out_lock(w);
    out_failure(w, in->slot, err);
    return out_unlock(w);
}

static int sink_item(void *arg, const struct exec_input *in, skiff_value *item, skiff_error *err)
{
    struct worker *w = arg;
    char what[128];
    snprintf(what, sizeof what, "an item of %s()", in->fn->def->name);
    out_lock(w);
    int rc = out_value(w, in->slot, 2, item, what, err);
    out_unlock(w);
    skiff_value_free(item);
    if (rc != SKIFF_OK)
        return -1;
    if (out_flush(w) < 0) { /* items go out promptly */
        skiff_error_set(err, SKIFF_ERR_REMOTE, NULL,
                        "the item could not be sent: the server is gone");
        return -1;
    }
    return 0;
}

static int sink_end(void *arg, const struct exec_input *in, int64_t count)
{
    struct worker *w = arg;
    out_lock(w);
    out_end(w, in->slot, count);
    return out_unlock(w);
}

/* --- messages from the server (mu held) ------------------------------------------------------- */

static struct input *input_new(struct worker *w)
{
    struct input *in = w->free_inputs;
    if (in)
        w->free_inputs = in->next;
    else
        in = mem_alloc(sizeof *in);
    if (in) {
        in->next = NULL;
        in->args = in->kwargs = NULL;
        in->err = (skiff_error)SKIFF_ERROR_INIT;
        in->cancelled = false;
        in->job = NULL;
    }
    return in;
}

static void input_release(struct worker *w, struct input *in)
{
    skiff_value_free(in->args);
    skiff_value_free(in->kwargs);
    skiff_error_clear(&in->err);
    in->args = in->kwargs = NULL;
    in->next = w->free_inputs;
    w->free_inputs = in;
}

/* Unpacks the argument payload p[0..n) into a new list and map. SKIFF_OK or a failure in err. */
static int decode_args(struct worker *w, const char *p, size_t n, skiff_value **args,
                       skiff_value **kwargs, skiff_error *err)
{
    msgpack_zone_clear(&w->args_zone);
    int rc = codec_check(p, n, "arguments", err);
    if (rc != SKIFF_OK)
        return rc;
    msgpack_object obj;
    size_t off = 0;
    msgpack_unpack_return r = msgpack_unpack(p, n, &off, &w->args_zone, &obj);
    if (r == MSGPACK_UNPACK_NOMEM_ERROR)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory decoding the arguments");
    if (r != MSGPACK_UNPACK_SUCCESS || obj.type != MSGPACK_OBJECT_ARRAY ||
        obj.via.array.size != 2 || obj.via.array.ptr[0].type != MSGPACK_OBJECT_ARRAY ||
        obj.via.array.ptr[1].type != MSGPACK_OBJECT_MAP)
        return skiff_error_set(err, SKIFF_ERR_DESERIALIZATION, NULL,
                               "malformed arguments: not one msgpack [list, map]");
    rc = codec_from_object(&obj.via.array.ptr[0], args, err);
    if (rc != SKIFF_OK)
        return rc;
    rc = codec_from_object(&obj.via.array.ptr[1], kwargs, err);
    if (rc != SKIFF_OK) {
        skiff_value_free(*args);
        *args = NULL;
        return rc;
    }
    return SKIFF_OK;
}

/* Copies a msgpack string object into out (size bytes with the NUL). False when it is not a
 * string, is too long or holds a NUL. */
static bool copy_str(const msgpack_object *o, char *out, size_t size)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= size ||
        memchr(o->via.str.ptr, '\0', o->via.str.size))
        return false;
    memcpy(out, o->via.str.ptr, o->via.str.size);
    out[o->via.str.size] = '\0';
    return true;
}

/* Queues one W_INPUTS entry [slot, input_id, call_id, method, args]. -1 when it is malformed. */
static int take_input(struct worker *w, const msgpack_object *e, size_t i)
{
    const msgpack_object *f = e->via.array.ptr;
    if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < 5 ||
        (f[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
         f[0].type != MSGPACK_OBJECT_NEGATIVE_INTEGER) ||
        (f[3].type != MSGPACK_OBJECT_STR && f[3].type != MSGPACK_OBJECT_NIL)) {
        log_error("W_INPUTS entry %zu is not [slot int, input_id str, call_id str, method str or "
                  "nil, args bin]: exiting",
                  i);
        return -1;
    }
    struct input *in = input_new(w);
    if (!in) {
        log_error("out of memory queueing an input: exiting");
        return -1;
    }
    in->slot = f[0].via.i64;
    if (!copy_str(&f[1], in->input_id, sizeof in->input_id) ||
        !copy_str(&f[2], in->call_id, sizeof in->call_id)) {
        log_error("W_INPUTS entry %zu has no valid input_id and call_id: exiting", i);
        input_release(w, in);
        return -1;
    }
    char method[2 * SIG_NAME_MAX + 2] = "";
    bool has_method = f[3].type == MSGPACK_OBJECT_STR;
    if (has_method && !copy_str(&f[3], method, sizeof method))
        snprintf(method, sizeof method, "(unreadable)");
    in->fn = worker_target_find(&w->target, has_method ? method : NULL);
    if (!in->fn) {
        if (w->target.cls)
            skiff_error_set(&in->err, SKIFF_ERR_NOT_FOUND, NULL, "class '%s' has no method '%s'",
                            w->target.cls->name, has_method ? method : "(none given)");
        else
            skiff_error_set(&in->err, SKIFF_ERR_NOT_FOUND, NULL,
                            "this container runs function '%s', not '%s'",
                            w->target.fns[0].def->name, method);
    } else if (f[4].type != MSGPACK_OBJECT_BIN) {
        skiff_error_set(&in->err, SKIFF_ERR_DESERIALIZATION, NULL,
                        "malformed input: its args are not a bin payload");
    } else {
        decode_args(w, f[4].via.bin.ptr, f[4].via.bin.size, &in->args, &in->kwargs, &in->err);
    }
    if (w->tail)
        w->tail->next = in;
    else
        w->head = in;
    w->tail = in;
    return 0;
}

static int take_inputs(struct worker *w)
{
    const msgpack_object *list = wire_get(&w->msg, "inputs");
    if (!list || list->type != MSGPACK_OBJECT_ARRAY) {
        log_error("the server sent W_INPUTS without an inputs array: exiting");
        return -1;
    }
    for (uint32_t i = 0; i < list->via.array.size; i++)
        if (take_input(w, &list->via.array.ptr[i], i) < 0)
            return -1;
    if (w->threaded && list->via.array.size)
        pthread_cond_broadcast(&w->cv);
    return 0;
}

/* Marks the input in slot cancelled (queued: it will not run; running: its ctx sees it). */
static int cancel_slot(struct worker *w)
{
    int64_t slot;
    if (!wire_get_int(&w->msg, "slot", &slot)) {
        log_error("the server sent W_CANCEL without an integer slot: exiting");
        return -1;
    }
    for (struct input *in = w->head; in; in = in->next)
        if (in->slot == slot)
            in->cancelled = true;
    for (size_t j = 0; j < w->njobs; j++) {
        struct job *job = &w->jobs[j];
        for (size_t i = 0; i < job->n; i++)
            if (job->inputs[i]->slot == slot && !job->inputs[i]->cancelled && !job->x[i].failed) {
                job->inputs[i]->cancelled = true;
                if (++job->ncancelled >= job->live)
                    __atomic_store_n(&job->cancelled, true, __ATOMIC_RELEASE);
            }
    }
    return 0;
}

/* Marks every running job cancelled (the server has gone). */
static void cancel_running(struct worker *w)
{
    for (size_t j = 0; j < w->njobs; j++)
        if (w->jobs[j].n)
            __atomic_store_n(&w->jobs[j].cancelled, true, __ATOMIC_RELEASE);
}

/* Handles every complete frame in in, then drops them. -1 on a protocol error (logged). */
static int handle_frames(struct worker *w)
{
    size_t off = 0;
    int rc = 0;
    while (rc == 0) {
        size_t have = w->in.len - off;
        if (have < WIRE_HEADER)
            break;
        size_t body = announced(w->in.data + off);
        if (body == 0 || body > w->frame_max) {
            log_error("the server sent a frame of %zu bytes (the limit is %zu): not a protocol "
                      "frame, exiting",
                      body, w->frame_max);
            rc = -1;
            break;
        }
        if (have - WIRE_HEADER < body)
            break;
        if (wire_msg_parse(&w->msg, w->in.data + off + WIRE_HEADER, body) < 0) {
            log_error("the server sent a frame that is not a msgpack map with an integer op: "
                      "exiting");
            rc = -1;
            break;
        }
        switch (w->msg.op) {
        case OP_W_INPUTS:
            rc = take_inputs(w);
            break;
        case OP_W_CANCEL:
            rc = cancel_slot(w);
            break;
        case OP_W_LOG_MARKS:
            w->log_marks = true;
            break;
        case OP_W_STARTED_OK:
            w->mark_acked = true;
            break;
        case OP_W_STOP:
            log_debug("asked to stop");
            w->stop = true;
            if (w->threaded)
                pthread_cond_broadcast(&w->cv);
            break;
        default:
            log_warn("ignoring a message with unknown op %d", w->msg.op);
            break;
        }
        off += WIRE_HEADER + body;
    }
    buf_consume(&w->in, off);
    buf_shrink(&w->in);
    if (rc < 0)
        w->fatal = true;
    return rc;
}

/* --- jobs (mu held) --------------------------------------------------------------------------- */

/* Moves up to room queued inputs into job. */
static void pop_into(struct worker *w, struct job *job, size_t room)
{
    while (room-- > 0 && w->head) {
        struct input *in = w->head;
        w->head = in->next;
        if (!w->head)
            w->tail = NULL;
        in->next = NULL;
        in->job = job;
        job->inputs[job->n++] = in;
    }
}

/* Waits up to ns for more inputs (single mode: reads the socket; pool: the condition). */
static void wait_more(struct worker *w, int64_t ns)
{
    if (w->threaded) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t t = (int64_t)ts.tv_nsec + ns;
        ts.tv_sec += (time_t)(t / 1000000000);
        ts.tv_nsec = (long)(t % 1000000000);
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        return;
    }
    pthread_mutex_unlock(&w->mu);
    out_flush(w); /* nothing held back while waiting */
    struct pollfd pfd = {.fd = w->fd, .events = POLLIN};
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    int r = ppoll(&pfd, 1, &ts, NULL);
    long got = r > 0 ? read_some(w, false) : -2;
    pthread_mutex_lock(&w->mu);
    if (got == 0)
        w->eof = true;
    else if (got == -1)
        w->fatal = true;
    else if (got > 0)
        handle_frames(w);
}

/* Fills job with the next input (or batch) from the queue, which is not empty. */
static void take_job(struct worker *w, struct job *job)
{
    job->n = 0;
    pop_into(w, job, job->cap);
    if (w->target.max_batch_size > 0 && job->n < job->cap && w->target.wait_ms > 0) {
        int64_t deadline = now_ns() + (int64_t)w->target.wait_ms * 1000000;
        while (job->n < job->cap && !w->stop && !w->eof && !w->fatal) {
            int64_t left = deadline - now_ns();
            if (left <= 0)
                break;
            wait_more(w, left);
            pop_into(w, job, job->cap - job->n);
        }
    }
    job->live = 0;
    job->ncancelled = 0;
    job->cancelled = false;
    for (size_t i = 0; i < job->n; i++) {
        struct input *in = job->inputs[i];
        struct exec_input *x = &job->x[i];
        x->slot = in->slot;
        x->input_id = in->input_id;
        x->call_id = in->call_id;
        x->fn = in->fn;
        x->args = in->args;
        x->kwargs = in->kwargs;
        x->failed = in->err.code != SKIFF_OK ? &in->err : in->cancelled ? &cancelled_error : NULL;
        if (!x->failed)
            job->live++;
    }
}

/* Releases the inputs of a finished job. */
static void finish_job(struct worker *w, struct job *job)
{
    for (size_t i = 0; i < job->n; i++)
        input_release(w, job->inputs[i]);
    job->n = 0;
}

static int run_job(struct worker *w, struct job *job)
{
    static const struct exec_sink sink_fns = {NULL, sink_value, sink_failure, sink_item, sink_end};
    struct exec_sink sink = sink_fns;
    sink.arg = w;
    return exec_run(&w->target, job->x, job->n, job->bound, &job->cancelled, w->container_id,
                    &sink);
}

/* Drops every queued input (the server has gone). */
static void drop_queue(struct worker *w)
{
    while (w->head) {
        struct input *in = w->head;
        w->head = in->next;
        input_release(w, in);
    }
    w->tail = NULL;
}

/* --- one input at a time ---------------------------------------------------------------------- */

/* Log attribution (docs/protocol.md): once the server asked (it saw this container print while
 * it held several inputs), each job is announced before it runs: stdio is flushed, W_STARTED
 * names the input (-1: a batch), and the worker waits for W_STARTED_OK, by which time the server
 * has read everything printed before as the earlier input's. A container that never prints never
 * gets here. mu held; 0, or -1 when the server is gone. */
static int announce(struct worker *w, const struct job *job)
{
    if (!w->log_marks || w->threaded)
        return 0;
    w->mark_acked = false;
    pthread_mutex_unlock(&w->mu);
    fflush(stdout);
    fflush(stderr);
    struct buf b;
    buf_init(&b, 0);
    struct wire_writer ww;
    wire_begin(&ww, &b, OP_W_STARTED, 0, 1);
    wire_int(&ww, "slot", job->n == 1 ? job->inputs[0]->slot : -1);
    int rc = wire_end(&ww) == SKIFF_OK ? write_all(w, b.data, b.len) : -1;
    buf_deinit(&b);
    pthread_mutex_lock(&w->mu);
    while (rc == 0 && !w->mark_acked && !w->fatal && !w->eof) {
        pthread_mutex_unlock(&w->mu);
        long r = read_some(w, true);
        pthread_mutex_lock(&w->mu);
        if (r == 0)
            w->eof = true;
        else if (r < 0)
            w->fatal = true;
        else
            handle_frames(w);
    }
    return rc;
}

static int serve_single(struct worker *w)
{
    struct job *job = &w->jobs[0];
    pthread_mutex_lock(&w->mu);
    for (;;) {
        if (w->fatal)
            break;
        if (w->eof)
            drop_queue(w);
        if (w->head) {
            take_job(w, job);
            if (w->fatal || announce(w, job) < 0)
                break;
            w->busy = true;
            pthread_mutex_unlock(&w->mu);
            int64_t t0 = now_ns();
            int rc = run_job(w, job);
            int64_t t1 = now_ns();
            pthread_mutex_lock(&w->mu);
            w->busy = false;
            finish_job(w, job);
            if (rc < 0)
                break;
            if (!w->head || t1 - t0 > TINY_NS || t1 - w->first_ns > FLUSH_AGE_NS) {
                pthread_mutex_unlock(&w->mu);
                rc = out_flush(w);
                pthread_mutex_lock(&w->mu);
                if (rc < 0)
                    break;
            }
            continue;
        }
        pthread_mutex_unlock(&w->mu);
        int rc = out_flush(w);
        pthread_mutex_lock(&w->mu);
        if (rc < 0 || w->stop || w->eof)
            break;
        pthread_mutex_unlock(&w->mu);
        long r = read_some(w, true);
        pthread_mutex_lock(&w->mu);
        if (r == 0) {
            if (w->in.len)
                log_warn("the server closed the socket in the middle of a frame");
            w->eof = true;
        } else if (r < 0) {
            w->fatal = true;
        } else {
            handle_frames(w);
        }
    }
    bool failed = w->fatal || w->write_failed;
    pthread_mutex_unlock(&w->mu);
    return failed ? 1 : 0;
}

void worker_poll_control(void)
{
    struct worker *w = &wk;
    if (!__atomic_load_n(&wk_active, __ATOMIC_ACQUIRE) || w->threaded)
        return;
    int64_t now = now_ns();
    pthread_mutex_lock(&w->mu);
    if (!w->busy || w->eof || w->fatal || now - w->last_poll_ns < POLL_INTERVAL_NS) {
        pthread_mutex_unlock(&w->mu);
        return;
    }
    w->last_poll_ns = now;
    for (;;) {
        long r = read_some(w, false);
        if (r == 0) {
            w->eof = true;
            cancel_running(w);
        }
        if (r <= 0)
            break;
        if (handle_frames(w) < 0)
            break;
    }
    pthread_mutex_unlock(&w->mu);
    out_flush(w); /* outputs held back while this input runs long */
}

/* --- a pool of threads ------------------------------------------------------------------------ */

static void *pool_main(void *arg)
{
    struct job *job = arg;
    struct worker *w = job->w;
    void *altstack = worker_crash_thread_stack();
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->stop && !w->eof && !w->fatal)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->head || w->eof || w->fatal)
            break;
        take_job(w, job);
        pthread_mutex_unlock(&w->mu);
        int rc = run_job(w, job);
        if (rc == 0)
            rc = out_flush(w);
        pthread_mutex_lock(&w->mu);
        finish_job(w, job);
        if (rc < 0)
            break;
    }
    w->alive--;
    pthread_mutex_unlock(&w->mu);
    worker_crash_thread_stack_free(altstack);
    return NULL;
}

static int serve_pool(struct worker *w)
{
    for (;;) {
        long r = read_some(w, true);
        pthread_mutex_lock(&w->mu);
        if (r == 0) {
            w->eof = true;
            cancel_running(w);
            drop_queue(w);
            pthread_cond_broadcast(&w->cv);
        } else if (r < 0 || handle_frames(w) < 0) {
            w->fatal = true;
        }
        bool done = w->eof || w->fatal || w->stop || w->write_failed;
        bool fatal = w->fatal || w->write_failed;
        pthread_mutex_unlock(&w->mu);
        if (fatal)
            return 1; /* the pool is left running: the process ends now */
        if (done)
            break;
    }
    /* Stopping: the pool finishes the inputs held while W_CANCEL keeps being read. */
    pthread_mutex_lock(&w->mu);
    while (w->alive > 0 && !w->eof && !w->fatal) {
        pthread_mutex_unlock(&w->mu);
        struct pollfd pfd = {.fd = w->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, DRAIN_POLL_MS);
        long r = pr > 0 ? read_some(w, false) : -2;
        pthread_mutex_lock(&w->mu);
        if (r == 0) {
            w->eof = true;
            cancel_running(w);
            drop_queue(w);
            pthread_cond_broadcast(&w->cv);
        } else if (r > 0) {
            handle_frames(w);
        }
    }
    bool fatal = w->fatal;
    pthread_mutex_unlock(&w->mu);
    if (fatal)
        return 1;
    for (size_t j = 0; j < w->njobs; j++)
        pthread_join(w->jobs[j].thread, NULL);
    w->alive = 0;
    return w->write_failed ? 1 : 0;
}

/* --- startup ---------------------------------------------------------------------------------- */

/* SKIFF_PAYLOAD_MAX, or the protocol's default when unset or malformed. */
static size_t payload_limit(void)
{
    const char *e = getenv("SKIFF_PAYLOAD_MAX");
    if (!e || !*e)
        return PROTO_PAYLOAD_MAX;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(e, &end, 10);
    if (errno || *end || v == 0 || v > (1ull << 40)) {
        log_warn("ignoring SKIFF_PAYLOAD_MAX=%s (not a byte count); using %u", e,
                 PROTO_PAYLOAD_MAX);
        return PROTO_PAYLOAD_MAX;
    }
    return (size_t)v;
}

static int send_ready(struct worker *w)
{
    struct buf b;
    buf_init(&b, 0);
    struct wire_writer ww;
    wire_begin(&ww, &b, OP_W_READY, 0, 2);
    wire_str(&ww, "container_id", w->container_id);
    wire_int(&ww, "pid", (int64_t)getpid());
    int rc = wire_end(&ww) == SKIFF_OK ? write_all(w, b.data, b.len) : -1;
    buf_deinit(&b);
    return rc;
}

/* Sends W_INIT_FAILED with err (when the socket is usable) and logs it. Returns 1, the exit
 * status. */
static int init_failed(struct worker *w, const skiff_error *err)
{
    const char *message = err->message ? err->message : "cannot start";
    log_error("cannot start: %s", message);
    if (w->fd < 0)
        return 1;
    struct buf b;
    buf_init(&b, 0);
    struct wire_writer ww;
    wire_begin(&ww, &b, OP_W_INIT_FAILED, 0, err->traceback ? 4 : 3);
    wire_int(&ww, "code", SKIFF_ERR_INIT_FAILURE);
    wire_str(&ww, "type", skiff_code_name(SKIFF_ERR_INIT_FAILURE));
    wire_str(&ww, "message", message);
    if (err->traceback)
        wire_str(&ww, "traceback", err->traceback);
    if (wire_end(&ww) == SKIFF_OK)
        write_all(w, b.data, b.len);
    buf_deinit(&b);
    return 1;
}

/* Decodes the --params base64 text into *out (len bytes, mem_alloc'd). */
static int decode_params(const char *b64, unsigned char **out, size_t *len, skiff_error *err)
{
    size_t n = strlen(b64);
    bool valid = n % 4 == 0;
    for (size_t i = 0; valid && i < n; i++) {
        char c = b64[i];
        bool pad = c == '=' && i + 2 >= n && (i + 1 == n || b64[i + 1] == '=');
        valid = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                c == '+' || c == '/' || pad;
    }
    if (!valid)
        return skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL,
                               "--params is not padded base64 of a msgpack map");
    *out = mem_alloc(n / 4 * 3 + 1);
    if (!*out)
        return skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL, "out of memory");
    int k = n ? EVP_DecodeBlock(*out, (const unsigned char *)b64, (int)n) : 0;
    if (k < 0) {
        mem_free(*out);
        return skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL,
                               "--params is not padded base64 of a msgpack map");
    }
    /* EVP_DecodeBlock counts the padding as zero bytes: drop them. */
    size_t got = (size_t)k;
    for (size_t i = n; i > 0 && b64[i - 1] == '='; i--)
        got--;
    *len = got;
    return SKIFF_OK;
}

/* Loads the app and opens the target. SKIFF_OK or a failure in err. */
static int load(struct worker *w, const struct worker_opts *o, skiff_error *err)
{
    const struct skiff_app_def *app;
    int rc = worker_load_app(o->code, &app, err);
    if (rc != SKIFF_OK)
        return rc;
    unsigned char *params = NULL;
    size_t len = 0;
    if (o->params && decode_params(o->params, &params, &len, err) != SKIFF_OK)
        return SKIFF_ERR_INIT_FAILURE;
    rc = worker_target_open(&w->target, app, o->function, o->cls, params, len, err);
    mem_free(params);
    if (rc != SKIFF_OK)
        return rc;
    if (w->target.max_inputs > MAX_INPUTS_LIMIT)
        return skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL,
                               "max_inputs %d is over the limit of %d", w->target.max_inputs,
                               MAX_INPUTS_LIMIT);
    return SKIFF_OK;
}

/* Allocates the executors (and starts the pool when max_inputs > 1). */
static int start_jobs(struct worker *w, skiff_error *err)
{
    size_t n = (size_t)w->target.max_inputs;
    w->batch_cap = w->target.max_batch_size > 0 ? (size_t)w->target.max_batch_size : 1;
    w->threaded = n > 1;
    w->jobs = mem_calloc(n, sizeof *w->jobs);
    if (!w->jobs)
        return skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL, "out of memory");
    w->njobs = n;
    for (size_t i = 0; i < n; i++) {
        struct job *j = &w->jobs[i];
        j->w = w;
        j->cap = w->batch_cap;
        j->inputs = mem_calloc(j->cap, sizeof *j->inputs);
        j->x = mem_calloc(j->cap, sizeof *j->x);
        j->bound = mem_calloc(w->target.max_params ? w->target.max_params : 1, sizeof *j->bound);
        if (!j->inputs || !j->x || !j->bound)
            return skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL, "out of memory");
    }
    if (!w->threaded)
        return SKIFF_OK;
    pthread_cond_init(&w->cv, NULL);
    for (size_t i = 0; i < n; i++) {
        int rc = pthread_create(&w->jobs[i].thread, NULL, pool_main, &w->jobs[i]);
        if (rc != 0) {
            pthread_mutex_lock(&w->mu);
            w->fatal = true;
            pthread_cond_broadcast(&w->cv);
            pthread_mutex_unlock(&w->mu);
            for (size_t k = 0; k < i; k++)
                pthread_join(w->jobs[k].thread, NULL);
            return skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL,
                                   "cannot start thread %zu of %zu (max_inputs): %s", i + 1, n,
                                   strerror(rc));
        }
        w->alive++;
    }
    return SKIFF_OK;
}

static void cleanup(struct worker *w)
{
    worker_close_client();
    __atomic_store_n(&wk_active, false, __ATOMIC_RELEASE);
    drop_queue(w);
    while (w->free_inputs) {
        struct input *in = w->free_inputs;
        w->free_inputs = in->next;
        mem_free(in);
    }
    for (size_t i = 0; w->jobs && i < w->njobs; i++) {
        mem_free(w->jobs[i].inputs);
        mem_free(w->jobs[i].x);
        mem_free(w->jobs[i].bound);
    }
    mem_free(w->jobs);
    w->jobs = NULL;
    worker_target_deinit(&w->target);
    buf_deinit(&w->in);
    buf_deinit(&w->pending);
    buf_deinit(&w->sending);
    wire_msg_deinit(&w->msg);
    msgpack_zone_destroy(&w->args_zone);
}

int worker_run(const struct worker_opts *o)
{
    struct worker *w = &wk;
    w->fd = o->fd;
    w->container_id = o->container_id;
    int type;
    socklen_t tlen = sizeof type;
    w->is_socket = getsockopt(w->fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0;
    w->payload_max = payload_limit();
    w->frame_max = w->payload_max + PROTO_FRAME_OVERHEAD;
    buf_init(&w->in, WIRE_HEADER + w->frame_max);
    /* Room for a whole frame plus one more entry of the largest size before it is split. */
    buf_init(&w->pending, 2 * (WIRE_HEADER + w->frame_max));
    buf_init(&w->sending, 2 * (WIRE_HEADER + w->frame_max));
    worker_crash_setup(w->fd, w->container_id);
    skiff_error err = SKIFF_ERROR_INIT;
    if (wire_msg_init(&w->msg) < 0 || !msgpack_zone_init(&w->args_zone, ARGS_ZONE_CHUNK)) {
        skiff_error_set(&err, SKIFF_ERR_INIT_FAILURE, NULL, "out of memory");
        int status = init_failed(w, &err);
        skiff_error_clear(&err);
        return status;
    }
    /* A function's printf output should reach the log line by line, not when the buffer fills. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    worker_crash_pending(&w->pending.data, &w->pending.len, &w->count, OUT_COUNT_AT, &w->out_busy);

    int status;
    if (load(w, o, &err) == SKIFF_OK) {
        worker_crash_notes();
        int phases = WORKER_ENTER_ALL;
        if (o->template_mode) {
            /* A snapshot template: the enter_snap hooks run here, once; each container forked
             * from it returns below as a container that runs the remaining hooks. */
            if (worker_target_enter(&w->target, w->container_id, WORKER_ENTER_SNAP, &err) !=
                SKIFF_OK)
                goto failed;
            worker_close_client(); /* a hook's connection must not be shared by the children */
            status = worker_template_serve(w->fd, &w->container_id);
            if (status >= 0) {
                worker_crash_exiting();
                cleanup(w);
                return status;
            }
            worker_crash_setup(w->fd, w->container_id);
            phases = WORKER_ENTER_REST;
        }
        if (worker_target_enter(&w->target, w->container_id, phases, &err) == SKIFF_OK &&
            start_jobs(w, &err) == SKIFF_OK) {
            __atomic_store_n(&wk_active, true, __ATOMIC_RELEASE);
            status = send_ready(w) < 0 ? 1 : w->threaded ? serve_pool(w) : serve_single(w);
            if (status == 0) {
                worker_target_exit(&w->target, w->container_id);
                out_flush(w);
            }
            worker_crash_exiting();
            if (status == 0 || !w->threaded)
                cleanup(w);
            return status;
        }
    }
failed:
    worker_crash_exiting();
    status = init_failed(w, &err);
    skiff_error_clear(&err);
    if (!w->threaded || !w->alive)
        cleanup(w);
    return status;
}
