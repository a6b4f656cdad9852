/*
 * run.c - the container loop: one function of one app, inputs from the server on fd 3.
 *
 * Startup loads the app, finds the function, parses its signature, and answers W_READY (or
 * W_INIT_FAILED and exit 1). Then, one input at a time (the server sends the next W_INPUT only
 * after the previous W_OUTPUT, docs/protocol.md):
 *
 *     read W_INPUT -> decode [args, kwargs] -> bind to the signature -> call the function
 *     -> encode the result into the W_OUTPUT frame -> one write() -> free the values
 *
 * The hot path is the synchronous round trip the benchmarks measure, so it is kept lean: plain
 * blocking read()s into one input buffer that keeps its memory between frames, the arguments
 * unpacked through a zone reused by every input, the bound-argument slots allocated once, and
 * the result packed straight into the reusable output frame (behind a 5-byte bin32 header patched
 * afterwards) so it is never copied. Nothing is allocated per input beyond the argument and
 * result values themselves and, on failure, the error's strings.
 *
 * While a function runs, the main thread is inside user code and does not read the socket. The
 * only frames that can arrive then are W_CANCEL and W_STOP; skiff_ctx_cancelled polls for them
 * (worker_poll_control: non-blocking, at most about once a millisecond, under a mutex because
 * user threads may call it too). W_STOP lets the input finish, then the worker exits 0; the
 * server closing the socket counts as a cancellation. Frames polled this way are consumed from
 * the same input buffer, so nothing is lost or read twice.
 *
 * Exit status: 0 after W_STOP or end of file on the socket; 1 after an init failure, a frame that
 * is not a protocol frame (logged), or a failed write to the server.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client/client.h"
#include "common/buf.h"
#include "common/codec.h"
#include "common/id.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/proto.h"
#include "common/signature.h"
#include "common/wire.h"
#include "worker.h"

/* Room read() may fill when no larger frame is known to be coming: the size buf.c lets a buffer
 * keep between frames, so steady small traffic never reallocates. */
#define READ_CHUNK 65536
/* skiff_ctx_cancelled reads the socket at most this often (a function may call it in a loop). */
#define POLL_INTERVAL_NS 1000000
/* First chunk of the zone the arguments are unpacked into; it grows once and is then reused. */
#define ARGS_ZONE_CHUNK 8192

struct worker {
    int fd;                               /* the socket to the server */
    bool is_socket;                       /* send() with MSG_NOSIGNAL, else write() */
    const char *container_id;             /* "ta-..." */
    const struct skiff_function_def *def; /* the function this container runs */
    struct signature sig;                 /* its parsed signature (when has_sig) */
    bool has_sig;
    const skiff_value **bound; /* sig.n argument slots, allocated once */
    size_t payload_max;        /* largest result; SKIFF_PAYLOAD_MAX */
    size_t frame_max;          /* largest frame body accepted from the server */
    struct buf in;             /* bytes received; a frame starts at offset 0 */
    struct buf out;            /* the frame being sent */
    struct wire_msg msg;       /* the frame at the front of in, once parsed */
    msgpack_zone args_zone;    /* arguments are unpacked here, cleared per input */
    char input_id[ID_SIZE];    /* the input being run */
    char call_id[ID_SIZE];
    uint32_t slot; /* its slot (docs/protocol.md, W_INPUTS) */

    /* Shared with worker_poll_control while a function runs: guarded by mu. */
    pthread_mutex_t mu;
    skiff_ctx *running;   /* the input being run, NULL between inputs */
    bool stop;            /* W_STOP arrived while running */
    bool eof;             /* the server closed the socket while running */
    int64_t last_poll_ns; /* when worker_poll_control last read the socket */
};

/* The container runs one worker; worker_poll_control (reached from user code) needs to find it. */
static struct worker wk = {.fd = -1, .mu = PTHREAD_MUTEX_INITIALIZER};
static bool wk_active;

/* --- socket I/O ------------------------------------------------------------------------------- */

/* Writes all of p[0..n). 0, or -1 (logged) when the server is gone. */
static int write_all(struct worker *w, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = w->is_socket ? send(w->fd, p, n, MSG_NOSIGNAL) : write(w->fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            log_error("cannot write to the server: %s", strerror(errno));
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Sends what w->out holds and empties it. 0 or -1 (logged). */
static int flush_out(struct worker *w)
{
    int rc = write_all(w, w->out.data, w->out.len);
    w->out.len = 0;
    buf_shrink(&w->out);
    return rc;
}

/* The body length the frame at the front of in announces; in holds at least WIRE_HEADER bytes. */
static size_t announced(const struct worker *w)
{
    const unsigned char *h = (const unsigned char *)w->in.data;
    return (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
}

/* Reads what the socket has into in (block: wait for at least one byte). Returns the number of
 * bytes read, 0 at end of file, -1 on an error (logged), -2 when nothing is there (!block). */
static long read_some(struct worker *w, bool block)
{
    size_t target = READ_CHUNK;
    if (w->in.len >= WIRE_HEADER && WIRE_HEADER + announced(w) > target)
        target = WIRE_HEADER + announced(w);
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

/* Parses the frame at the front of in into w->msg. Returns its total size (header included), 0
 * when it is not complete yet, -1 when it is not a protocol frame (too long, empty, not a map
 * with an op). */
static long front_frame(struct worker *w)
{
    if (w->in.len < WIRE_HEADER)
        return 0;
    size_t body = announced(w);
    if (body == 0 || body > w->frame_max)
        return -1;
    if (w->in.len - WIRE_HEADER < body)
        return 0;
    if (wire_msg_parse(&w->msg, w->in.data + WIRE_HEADER, body) < 0)
        return -1;
    return (long)(WIRE_HEADER + body);
}

/* Drops the first n bytes of in (a frame that has been handled). */
static void consume(struct worker *w, size_t n)
{
    buf_consume(&w->in, n);
    buf_shrink(&w->in);
}

/* --- messages to the server ------------------------------------------------------------------- */

static int send_ready(struct worker *w)
{
    struct wire_writer ww;
    wire_begin(&ww, &w->out, OP_W_READY, 0, 2);
    wire_str(&ww, "container_id", w->container_id);
    wire_int(&ww, "pid", (int64_t)getpid());
    if (wire_end(&ww) != SKIFF_OK)
        return -1;
    return flush_out(w);
}

/* Sends W_INIT_FAILED with message (when the socket is usable) and logs it. Returns 1, the exit
 * status. */
static int init_failed(struct worker *w, const char *message)
{
    log_error("cannot start: %s", message);
    if (w->fd < 0)
        return 1;
    struct wire_writer ww;
    wire_begin(&ww, &w->out, OP_W_INIT_FAILED, 0, 3);
    wire_int(&ww, "code", SKIFF_ERR_INIT_FAILURE);
    wire_str(&ww, "type", skiff_code_name(SKIFF_ERR_INIT_FAILURE));
    wire_str(&ww, "message", message);
    if (wire_end(&ww) == SKIFF_OK)
        flush_out(w);
    return 1;
}

/* Sends the failed output of the running input. NULL type: the code's name. */
static int send_failure(struct worker *w, skiff_code code, const char *type, const char *message,
                        const char *traceback)
{
    struct wire_writer ww;
    wire_begin(&ww, &w->out, OP_W_OUTPUTS, 0, 1);
    wire_key(&ww, "outputs");
    wire_pack_array(&ww, 1);
    wire_pack_array(&ww, 6);
    wire_pack_int(&ww, w->slot);
    wire_pack_int(&ww, 1);
    wire_pack_int(&ww, code);
    wire_pack_str(&ww, type ? type : skiff_code_name(code));
    wire_pack_str(&ww, message ? message : "");
    wire_pack_str(&ww, traceback);
    if (wire_end(&ww) != SKIFF_OK) {
        log_error("cannot build the output of %s: out of memory", w->input_id);
        return -1;
    }
    return flush_out(w);
}

static int send_error(struct worker *w, const skiff_error *err)
{
    return send_failure(w, err->code == SKIFF_OK ? SKIFF_ERR_USER : err->code, err->type,
                        err->message, err->traceback);
}

/* Sends the successful output of the running input: v packed in place as a bin32 payload. A
 * result that cannot be sent (over the payload limit, nested too deeply) becomes a failed
 * output instead. */
static int send_value(struct worker *w, const skiff_value *v)
{
    static const char bin32[5] = {(char)0xc6};
    struct wire_writer ww;
    wire_begin(&ww, &w->out, OP_W_OUTPUTS, 0, 1);
    wire_key(&ww, "outputs");
    wire_pack_array(&ww, 1);
    wire_pack_array(&ww, 3);
    wire_pack_int(&ww, w->slot);
    wire_pack_int(&ww, 0);
    size_t at = w->out.len;
    int rc = ww.rc;
    if (rc == SKIFF_OK)
        rc = codec_status(buf_append(&w->out, bin32, sizeof bin32));
    if (rc == SKIFF_OK)
        rc = codec_encode_value(&w->out, v);
    size_t n = rc == SKIFF_OK ? w->out.len - at - sizeof bin32 : 0;
    if (rc == SKIFF_OK && n > w->payload_max)
        rc = SKIFF_ERR_REQUEST_SIZE;
    if (rc == SKIFF_OK) {
        unsigned char *h = (unsigned char *)w->out.data + at + 1;
        h[0] = (unsigned char)(n >> 24);
        h[1] = (unsigned char)(n >> 16);
        h[2] = (unsigned char)(n >> 8);
        h[3] = (unsigned char)n;
        rc = wire_end(&ww);
    }
    if (rc == SKIFF_OK)
        return flush_out(w);
    w->out.len = ww.start;
    buf_shrink(&w->out);
    char msg[256];
    switch (rc) {
    case SKIFF_ERR_REQUEST_SIZE:
        if (n)
            snprintf(msg, sizeof msg,
                     "the result of %s() is %zu bytes, over the payload limit "
                     "of %zu bytes",
                     w->def->name, n, w->payload_max);
        else
            snprintf(msg, sizeof msg, "the result of %s() is over the payload limit of %zu bytes",
                     w->def->name, w->payload_max);
        break;
    case SKIFF_ERR_SERIALIZATION:
        snprintf(msg, sizeof msg, "the result of %s() nests lists and maps deeper than %d levels",
                 w->def->name, CODEC_MAX_DEPTH);
        break;
    default:
        rc = SKIFF_ERR_NOMEM;
        snprintf(msg, sizeof msg, "out of memory encoding the result of %s()", w->def->name);
        break;
    }
    return send_failure(w, (skiff_code)rc, NULL, msg, NULL);
}

/* --- running an input ------------------------------------------------------------------------- */

/* Unpacks the argument payload p[0..n) into a new list and map. SKIFF_OK or a failure in err. */
static int decode_args(struct worker *w, const char *p, size_t n, skiff_value **args,
                       skiff_value **kwargs, skiff_error *err)
{
    msgpack_zone_clear(&w->args_zone);
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
    int rc = codec_from_object(&obj.via.array.ptr[0], args, err);
    if (rc != SKIFF_OK)
        return rc;
    rc = codec_from_object(&obj.via.array.ptr[1], kwargs, err);
    if (rc != SKIFF_OK) {
        skiff_value_free(*args);
        return rc;
    }
    return SKIFF_OK;
}

/* Calls the function on bound arguments and sends its output. 0, or -1 when the output could not
 * be sent. */
static int call_function(struct worker *w, const skiff_value *args, const skiff_value *kwargs)
{
    skiff_ctx ctx = {
        .def = w->def,
        .sig = w->has_sig ? &w->sig : NULL,
        .args = args,
        .kwargs = kwargs,
        .bound = w->bound,
        .input_id = w->input_id,
        .call_id = w->call_id,
        .container_id = w->container_id,
        .cancelled = false,
        .raised = SKIFF_ERROR_INIT,
    };
    w->running = &ctx; /* no other thread can see it before the function starts */
    worker_crash_set_input(w->input_id);
    client_set_parent_input(w->input_id);
    skiff_value *result = NULL;
    int rc = w->def->fn(&ctx, &result);
    client_set_parent_input(NULL);
    worker_crash_set_input(NULL);
    pthread_mutex_lock(&w->mu);
    w->running = NULL;
    bool gone = w->eof;
    pthread_mutex_unlock(&w->mu);

    int sent = 0;
    if (gone) {
        /* Nobody is left to receive the output. */
    } else if (rc == 0) {
        sent = send_value(w, result);
    } else if (ctx.raised.code != SKIFF_OK) {
        sent = send_error(w, &ctx.raised);
    } else {
        char msg[256];
        snprintf(msg, sizeof msg, "%s() failed without raising an error (returned %d)",
                 w->def->name, rc);
        sent = send_failure(w, SKIFF_ERR_USER, "Error", msg, NULL);
    }
    skiff_value_free(result);
    skiff_error_clear(&ctx.raised);
    return sent;
}

/* One input of a W_INPUTS frame, decoded out of the frame. */
struct pending {
    uint32_t slot;
    char input_id[ID_SIZE];
    char call_id[ID_SIZE];
    skiff_value *args, *kwargs;
    skiff_error err; /* set when the input could not be decoded */
};

/* Handles the W_INPUTS frame of total bytes at the front of in (parsed into w->msg): decodes
 * every input out of the frame, then runs them in order. 0, or -1 when the frame is malformed
 * or an output could not be sent (the worker then exits 1). */
static int run_inputs(struct worker *w, size_t total)
{
    const msgpack_object *arr = wire_get(&w->msg, "inputs");
    if (!arr || arr->type != MSGPACK_OBJECT_ARRAY) {
        log_error("the server sent W_INPUTS without an inputs array");
        return -1;
    }
    uint32_t n = arr->via.array.size;
    struct pending *in = mem_calloc(n ? n : 1, sizeof *in);
    if (!in) {
        log_error("out of memory receiving %u inputs", n);
        return -1;
    }
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        const msgpack_object *e = &arr->via.array.ptr[i];
        const msgpack_object *f = e->type == MSGPACK_OBJECT_ARRAY ? e->via.array.ptr : NULL;
        if (!f || e->via.array.size < 5 || f[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            f[1].type != MSGPACK_OBJECT_STR || f[1].via.str.size >= ID_SIZE ||
            f[2].type != MSGPACK_OBJECT_STR || f[2].via.str.size >= ID_SIZE ||
            f[4].type != MSGPACK_OBJECT_BIN) {
            log_error("the server sent a malformed input entry");
            rc = -1;
            break;
        }
        in[i].slot = (uint32_t)f[0].via.u64;
        memcpy(in[i].input_id, f[1].via.str.ptr, f[1].via.str.size);
        memcpy(in[i].call_id, f[2].via.str.ptr, f[2].via.str.size);
        in[i].err = (skiff_error)SKIFF_ERROR_INIT;
        decode_args(w, f[4].via.bin.ptr, f[4].via.bin.size, &in[i].args, &in[i].kwargs, &in[i].err);
    }
    consume(w, total); /* the values are copies: the frame is no longer needed */
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        w->slot = in[i].slot;
        memcpy(w->input_id, in[i].input_id, ID_SIZE);
        memcpy(w->call_id, in[i].call_id, ID_SIZE);
        skiff_error err = SKIFF_ERROR_INIT;
        int ok = in[i].err.code == SKIFF_OK ? SKIFF_OK : in[i].err.code;
        if (ok == SKIFF_OK && w->has_sig)
            ok = signature_bind(&w->sig, w->def->name, in[i].args, in[i].kwargs, w->bound, &err);
        if (ok == SKIFF_OK)
            rc = call_function(w, in[i].args, in[i].kwargs);
        else
            rc = send_error(w, err.code != SKIFF_OK ? &err : &in[i].err);
        skiff_error_clear(&err);
        if (w->stop || w->eof)
            break;
    }
    for (uint32_t i = 0; i < n; i++) {
        skiff_value_free(in[i].args);
        skiff_value_free(in[i].kwargs);
        skiff_error_clear(&in[i].err);
    }
    mem_free(in);
    return rc;
}

/* The main loop. Returns the exit status. */
static int serve(struct worker *w)
{
    for (;;) {
        long total = front_frame(w);
        if (total < 0) {
            log_error("the server sent a frame that is not a protocol frame: exiting");
            return 1;
        }
        if (total == 0) {
            long r = read_some(w, true);
            if (r == 0) {
                if (w->in.len)
                    log_warn("the server closed the socket in the middle of a frame");
                return 0;
            }
            if (r < 0)
                return 1;
            continue;
        }
        switch (w->msg.op) {
        case OP_W_INPUTS:
            if (run_inputs(w, (size_t)total) < 0)
                return 1;
            if (w->stop || w->eof)
                return 0;
            break;
        case OP_W_STOP:
            log_debug("asked to stop");
            return 0;
        case OP_W_CANCEL:
            consume(w, (size_t)total); /* for an input that is no longer running */
            break;
        default:
            log_warn("ignoring a message with unknown op %d", w->msg.op);
            consume(w, (size_t)total);
            break;
        }
    }
}

void worker_poll_control(void)
{
    struct worker *w = &wk;
    if (!__atomic_load_n(&wk_active, __ATOMIC_ACQUIRE))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    pthread_mutex_lock(&w->mu);
    if (!w->running || w->eof || now - w->last_poll_ns < POLL_INTERVAL_NS) {
        pthread_mutex_unlock(&w->mu);
        return;
    }
    w->last_poll_ns = now;
    for (;;) {
        long total = front_frame(w);
        if (total > 0 && w->msg.op == OP_W_CANCEL) {
            int64_t slot = -1;
            if (wire_get_int(&w->msg, "slot", &slot) && slot == (int64_t)w->slot)
                __atomic_store_n(&w->running->cancelled, true, __ATOMIC_RELEASE);
            consume(w, (size_t)total);
            continue;
        }
        if (total > 0 && w->msg.op == OP_W_STOP) {
            w->stop = true;
            consume(w, (size_t)total);
            continue;
        }
        if (total != 0)
            break; /* anything else (even garbage) is the main loop's to handle */
        long r = read_some(w, false);
        if (r == 0) {
            w->eof = true;
            __atomic_store_n(&w->running->cancelled, true, __ATOMIC_RELEASE);
        }
        if (r <= 0)
            break;
    }
    pthread_mutex_unlock(&w->mu);
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

/* Loads the app and prepares the function. SKIFF_OK or a failure in err. */
static int load(struct worker *w, const struct worker_opts *o, skiff_error *err)
{
    const struct skiff_app_def *app;
    int rc = worker_load_app(o->code, &app, err);
    if (rc != SKIFF_OK)
        return rc;
    w->def = worker_find_function(app, o->function);
    if (!w->def)
        return skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL, "app '%s' has no function '%s'",
                               app->name ? app->name : "?", o->function);
    rc = worker_prepare_function(w->def, &w->sig, &w->has_sig, err);
    if (rc != SKIFF_OK)
        return rc;
    w->bound = mem_calloc(w->sig.n ? w->sig.n : 1, sizeof *w->bound);
    if (!w->bound)
        return skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL, "out of memory");
    return SKIFF_OK;
}

static void cleanup(struct worker *w)
{
    worker_close_client();
    __atomic_store_n(&wk_active, false, __ATOMIC_RELEASE);
    signature_deinit(&w->sig);
    mem_free(w->bound);
    w->bound = NULL;
    buf_deinit(&w->in);
    buf_deinit(&w->out);
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
    buf_init(&w->out, WIRE_HEADER + w->frame_max);
    if (wire_msg_init(&w->msg) < 0) {
        int status = init_failed(w, "out of memory");
        buf_deinit(&w->out);
        return status;
    }
    if (!msgpack_zone_init(&w->args_zone, ARGS_ZONE_CHUNK)) {
        wire_msg_deinit(&w->msg);
        int status = init_failed(w, "out of memory");
        buf_deinit(&w->out);
        return status;
    }
    /* A function's printf output should reach the log line by line, not when the buffer fills. */
    setvbuf(stdout, NULL, _IOLBF, 0);

    skiff_error err = SKIFF_ERROR_INIT;
    if (load(w, o, &err) != SKIFF_OK) {
        int status = init_failed(w, err.message ? err.message : "cannot load the app");
        skiff_error_clear(&err);
        cleanup(w);
        return status;
    }
    worker_crash_notes(w->container_id, w->def->name);
    __atomic_store_n(&wk_active, true, __ATOMIC_RELEASE);
    int status = send_ready(w) < 0 ? 1 : serve(w);
    cleanup(w);
    return status;
}
