/*
 * async.c - the asynchronous API of libskiff (skiff.h, "Asynchronous API"): the _async twins,
 * the pollable descriptor, process and wait, and the libuv adapter.
 *
 * Each thread that uses the asynchronous API on a client gets a struct aloop (found by thread
 * id in the client's list): one rpc_sink that every one-shot operation of that thread (remote,
 * spawn, get, cancel, lookup, stats, the gets of a gather) is answered into, a table of those
 * operations by rid, and the generator streams it drives. The sink's notify eventfd is written
 * whenever a frame for it arrives, whichever thread read it off the socket; the loop's epoll
 * descriptor (what skiff_client_fd returns) watches that eventfd and the client's own epoll
 * descriptor (the socket, for input and for room to write queued requests), so it becomes
 * readable exactly when process may have something to do. Requests are sent with rpc_send: they
 * never wait for the server; frames that do not fit in the socket wait in the client's write
 * queue, flushed by process (or by any thread reading).
 *
 * process takes every frame of the sink at once (rpc_sink_poll, which also does the reader's
 * I/O when no other thread holds the role), matches each to its operation by rid and detaches
 * it; if the connection was lost, every operation still in the table lost its request and is
 * detached too, failed with the connection error. Only then do the callbacks run, so an
 * operation a callback starts (on the new connection) is never mistaken for a lost one. A
 * frame whose operation is gone (the gets a gather no longer needs) is dropped. Callbacks run
 * only from process, on the loop's own thread, and a flag keeps process from re-entering.
 *
 * The twins of the other blocking calls live beside them (map.c, gen.c, details.c, cls.c,
 * function.c) and use this machinery through async.h: a one-shot request goes out with
 * async_request and its struct async_req's fin decodes the reply and runs the callback (an
 * operation that needs no request, such as hydrating a hydrated handle, waits in the loop's
 * ready list for the next process); a map or generator stream is made with the loop's eventfd
 * as its sink's notify and handed over with async_track_map / async_track_gen. A map asks its
 * source only from process; when the source says SKIFF_AGAIN the loop arms a timerfd (also in
 * the epoll set) so the descriptor becomes readable again after SKIFF_MAP_AGAIN_MS.
 *
 * Blocking calls are untouched: they never look at any of this, so their cost is unchanged.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <uv.h>

#include "common/hmap.h"
#include "common/id.h"
#include "common/mem.h"
#include "async.h"
#include "common/proto.h"
#include "fn.h"
#include "rpc.h"

enum aop_kind {
    AOP_REMOTE,
    AOP_SPAWN,
    AOP_GET,
    AOP_CANCEL,
    AOP_LOOKUP,
    AOP_STATS,
    AOP_GATHER,
    AOP_CUSTOM, /* a twin outside this file: req.fin finishes it */
};

/* A gather in progress: one GET per call, answered into the same loop. */
struct gather {
    skiff_result_cb cb;
    void *ud;
    size_t n;
    skiff_value **results; /* results[i] once call i succeeded */
    skiff_error *errs;     /* errs[i].code != SKIFF_OK once call i failed */
    bool *have;            /* call i answered */
    size_t refs;           /* its GETs not yet answered */
    bool delivered;        /* cb ran (or the gather was abandoned) */
};

/* One operation waiting for its reply. */
struct aop {
    struct list_node link; /* in aloop.ops_list while in the table, else in a done list */
    char key[24];          /* the rid in decimal: the table's key */
    uint64_t rid;
    enum aop_kind kind;
    void *ud;
    union {
        skiff_result_cb result;
        skiff_call_cb call;
        skiff_done_cb done;
        skiff_function_cb fn;
        skiff_stats_cb stats;
    } cb;
    skiff_function *fn; /* REMOTE, SPAWN, STATS: borrowed; LOOKUP: the new handle, owned */
    skiff_client *c;    /* SPAWN: the client of the new call */
    struct gather *g;   /* GATHER: the gather and this call's index */
    size_t index;
    bool gen;                /* SPAWN: of a generator (the call is SKIFF_CALL_GENERATOR) */
    struct async_req req;    /* CUSTOM: how to finish it */
    struct rpc_frame *frame; /* the reply, once detached; NULL when fail says why */
    int fail;                /* SKIFF_OK, or the connection failure that lost the request */
    skiff_error ferr;
};

/* A generator stream driven by process. */
struct agen {
    struct list_node link; /* in aloop.gens */
    skiff_gen *g;
    skiff_item_cb item;
    skiff_done_cb done;
    void *ud;
};

/* A map driven by process. */
struct amap {
    struct list_node link; /* in aloop.maps */
    skiff_map *m;
    enum async_map_mode mode;
    skiff_output_cb output; /* OUTPUTS */
    skiff_done_cb done;     /* OUTPUTS, DISCARD */
    skiff_call_cb call;     /* SPAWN */
    void *ud;
};

/* A uv_poll_t on a loop's descriptor; freed in its close callback. */
struct uvpoll {
    uv_poll_t h;
    skiff_client *c;
};

/* One thread's asynchronous state on a client. */
struct aloop {
    struct list_node link; /* in skiff_client.loops */
    pthread_t owner;
    skiff_client *c;
    struct rpc_sink sink;      /* every one-shot operation's replies */
    struct hmap ops;           /* rid key -> struct aop */
    struct list_node ops_list; /* the same operations, to fail or free them all */
    struct list_node ready;    /* operations complete without a request (async_complete_soon) */
    struct list_node gens;     /* struct agen.link */
    struct list_node maps;     /* struct amap.link */
    size_t pending;            /* user operations whose callback has not run */
    int efd;                   /* the sink's notify eventfd */
    int epfd;                  /* epoll: efd, tfd and the client's epfd (skiff_client_fd) */
    int tfd;                   /* timerfd: a map source said SKIFF_AGAIN, ask it again then */
    bool timer_armed;          /* tfd is set to expire */
    bool in_process;           /* process is running callbacks */
    struct wire_msg msg;       /* the frame being handled */
    struct uvpoll *uv;         /* the libuv adapter, when attached */
};

/* --- the per-thread state --------------------------------------------------------------------- */

/* The calling thread's loop on c, or NULL. mu held. */
static struct aloop *loop_find(skiff_client *c)
{
    pthread_t self = pthread_self();
    struct list_node *node, *tmp;
    list_for_each_safe(node, tmp, &c->loops)
    {
        struct aloop *L = container_of(node, struct aloop, link);
        if (pthread_equal(L->owner, self))
            return L;
    }
    return NULL;
}

static void loop_free(struct aloop *L);

/* A new loop for the calling thread (not yet linked). SKIFF_OK or SKIFF_ERR_NOMEM. */
static int loop_new(skiff_client *c, struct aloop **out, skiff_error *err)
{
    int cfd;
    int rc = rpc_epoll_fd(c, &cfd, err);
    if (rc != SKIFF_OK)
        return rc;
    struct aloop *L = mem_calloc(1, sizeof *L);
    if (!L)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    L->owner = pthread_self();
    L->c = c;
    rpc_sink_init(&L->sink);
    hmap_init(&L->ops);
    list_init(&L->link);
    list_init(&L->ops_list);
    list_init(&L->ready);
    list_init(&L->gens);
    list_init(&L->maps);
    L->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    L->epfd = epoll_create1(EPOLL_CLOEXEC);
    L->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    L->sink.notify = L->efd;
    struct epoll_event a = {.events = EPOLLIN, .data.fd = L->efd};
    struct epoll_event b = {.events = EPOLLIN, .data.fd = cfd};
    struct epoll_event t = {.events = EPOLLIN, .data.fd = L->tfd};
    if (wire_msg_init(&L->msg) < 0 || L->efd < 0 || L->epfd < 0 || L->tfd < 0 ||
        epoll_ctl(L->epfd, EPOLL_CTL_ADD, L->efd, &a) < 0 ||
        epoll_ctl(L->epfd, EPOLL_CTL_ADD, cfd, &b) < 0 ||
        epoll_ctl(L->epfd, EPOLL_CTL_ADD, L->tfd, &t) < 0) {
        rc = skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "cannot set up the asynchronous state: %s",
                             strerror(errno));
        loop_free(L);
        return rc;
    }
    *out = L;
    return SKIFF_OK;
}

/* The calling thread's loop on c, made on first use. SKIFF_OK or SKIFF_ERR_NOMEM. */
static int loop_get(skiff_client *c, struct aloop **out, skiff_error *err)
{
    pthread_mutex_lock(&c->mu);
    struct aloop *L = loop_find(c);
    pthread_mutex_unlock(&c->mu);
    if (!L) {
        /* Only this thread adds its own loop, so nobody can race us to it. */
        int rc = loop_new(c, &L, err);
        if (rc != SKIFF_OK)
            return rc;
        pthread_mutex_lock(&c->mu);
        list_push(&c->loops, &L->link);
        pthread_mutex_unlock(&c->mu);
    }
    *out = L;
    return SKIFF_OK;
}

/* The calling thread's loop on c if it has one, else NULL. */
static struct aloop *loop_of(skiff_client *c)
{
    pthread_mutex_lock(&c->mu);
    struct aloop *L = loop_find(c);
    pthread_mutex_unlock(&c->mu);
    return L;
}

static void gather_unref(struct gather *g);

static void op_free(struct aop *op)
{
    if (op->kind == AOP_LOOKUP)
        skiff_function_free(op->fn);
    if (op->kind == AOP_GATHER)
        gather_unref(op->g);
    rpc_frame_free(op->frame);
    skiff_error_clear(&op->ferr);
    mem_free(op);
}

static void uv_freed(uv_handle_t *h)
{
    mem_free(h->data);
}

static void loop_free(struct aloop *L)
{
    if (!L)
        return;
    if (L->uv) {
        uv_poll_stop(&L->uv->h);
        uv_close((uv_handle_t *)&L->uv->h, uv_freed);
    }
    while (!list_empty(&L->ops_list)) {
        struct aop *op = container_of(L->ops_list.next, struct aop, link);
        list_remove(&op->link);
        op_free(op);
    }
    while (!list_empty(&L->ready)) {
        struct aop *op = container_of(L->ready.next, struct aop, link);
        list_remove(&op->link);
        op_free(op);
    }
    while (!list_empty(&L->gens)) {
        struct agen *a = container_of(L->gens.next, struct agen, link);
        list_remove(&a->link);
        skiff_gen_free(a->g);
        mem_free(a);
    }
    while (!list_empty(&L->maps)) {
        struct amap *a = container_of(L->maps.next, struct amap, link);
        list_remove(&a->link);
        skiff_map_free(a->m);
        mem_free(a);
    }
    rpc_sink_deinit(L->c, &L->sink);
    hmap_deinit(&L->ops);
    wire_msg_deinit(&L->msg);
    if (L->efd >= 0)
        close(L->efd);
    if (L->epfd >= 0)
        close(L->epfd);
    if (L->tfd >= 0)
        close(L->tfd);
    mem_free(L);
}

void async_client_close(struct skiff_client *c)
{
    while (!list_empty(&c->loops)) {
        struct aloop *L = container_of(c->loops.next, struct aloop, link);
        list_remove(&L->link);
        loop_free(L);
    }
}

/* Makes process look at the calling thread's loop (L) soon, whether or not a frame arrives. */
static void loop_poke(struct aloop *L)
{
    uint64_t one = 1;
    if (write(L->efd, &one, sizeof one) < 0 && errno != EAGAIN)
        return; /* cannot fail with a valid eventfd */
}

/* --- starting operations ---------------------------------------------------------------------- */

/* A new operation of kind in *out, for the calling thread's loop on c (in *L). SKIFF_OK or
 * SKIFF_ERR_NOMEM. */
static int op_new(skiff_client *c, enum aop_kind kind, void *ud, struct aloop **L, struct aop **out,
                  skiff_error *err)
{
    int rc = loop_get(c, L, err);
    if (rc != SKIFF_OK)
        return rc;
    struct aop *op = mem_calloc(1, sizeof *op);
    if (!op)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    op->kind = kind;
    op->ud = ud;
    op->c = c;
    list_init(&op->link);
    *out = op;
    return SKIFF_OK;
}

/* Records an operation whose request went out with rid (send_rc SKIFF_OK), or frees it when the
 * send failed. Returns send_rc, or SKIFF_ERR_NOMEM when the table cannot hold it (the request is
 * out: its answer will be dropped). counted: the operation is one the user waits for. */
static int op_track(struct aloop *L, struct aop *op, int send_rc, uint64_t rid, bool counted,
                    skiff_error *err)
{
    if (send_rc != SKIFF_OK) {
        op_free(op);
        return send_rc;
    }
    op->rid = rid;
    snprintf(op->key, sizeof op->key, "%llu", (unsigned long long)rid);
    if (hmap_put(&L->ops, op->key, op) < 0) {
        op_free(op);
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL,
                               "out of memory tracking a request already sent; its answer will "
                               "be dropped");
    }
    list_push(&L->ops_list, &op->link);
    if (counted)
        L->pending++;
    return SKIFF_OK;
}

/* Sends the CALL of remote_async or spawn_async for op (its callback set). */
static int send_call(struct aloop *L, struct aop *op, skiff_function *fn, const skiff_value *args,
                     const skiff_value *kwargs, skiff_error *err)
{
    op->fn = fn;
    uint64_t rid = 0;
    int rc = function_send(fn, args, kwargs, op->kind == AOP_SPAWN, op->gen, &L->sink, &rid, err);
    return op_track(L, op, rc, rid, true, err);
}

int skiff_function_remote_async(skiff_function *fn, const skiff_value *args,
                                const skiff_value *kwargs, skiff_result_cb cb, void *userdata,
                                skiff_error *err)
{
    if (!fn || !cb)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_function_remote_async: the function and the callback must "
                               "not be NULL");
    struct aloop *L;
    struct aop *op;
    int rc = op_new(fn->client, AOP_REMOTE, userdata, &L, &op, err);
    if (rc != SKIFF_OK)
        return rc;
    op->cb.result = cb;
    return send_call(L, op, fn, args, kwargs, err);
}

/* spawn_async (gen false) or spawn_gen_async; name is the public name, for messages. */
static int spawn_async(skiff_function *fn, const skiff_value *args, const skiff_value *kwargs,
                       bool gen, skiff_call_cb cb, void *userdata, const char *name,
                       skiff_error *err)
{
    if (!fn || !cb)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "%s: the function and the callback must not be NULL", name);
    struct aloop *L;
    struct aop *op;
    int rc = op_new(fn->client, AOP_SPAWN, userdata, &L, &op, err);
    if (rc != SKIFF_OK)
        return rc;
    op->cb.call = cb;
    op->gen = gen;
    return send_call(L, op, fn, args, kwargs, err);
}

int skiff_function_spawn_async(skiff_function *fn, const skiff_value *args,
                               const skiff_value *kwargs, skiff_call_cb cb, void *userdata,
                               skiff_error *err)
{
    return spawn_async(fn, args, kwargs, false, cb, userdata, "skiff_function_spawn_async", err);
}

int skiff_function_spawn_gen_async(skiff_function *fn, const skiff_value *args,
                                   const skiff_value *kwargs, skiff_call_cb cb, void *userdata,
                                   skiff_error *err)
{
    return spawn_async(fn, args, kwargs, true, cb, userdata, "skiff_function_spawn_gen_async", err);
}

/* Sends GET for call (input index, or the whole call when index < 0; timeout as skiff_call_get)
 * as operation op. */
static int send_get(struct aloop *L, struct aop *op, skiff_call *call, int64_t index,
                    double timeout, bool counted, skiff_error *err)
{
    struct rpc_field f[3];
    int rc = call_get_fields(call, index, timeout, f, err);
    uint64_t rid = 0;
    if (rc == SKIFF_OK)
        rc = rpc_simple_send(call->client, OP_GET, f, index >= 0 ? 3 : 2, &L->sink, &rid, err);
    return op_track(L, op, rc, rid, counted, err);
}

int skiff_call_get_async(skiff_call *call, double timeout, skiff_result_cb cb, void *userdata,
                         skiff_error *err)
{
    if (!call || !cb)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_call_get_async: the call and the callback must not be NULL");
    struct aloop *L;
    struct aop *op;
    int rc = op_new(call->client, AOP_GET, userdata, &L, &op, err);
    if (rc != SKIFF_OK)
        return rc;
    op->cb.result = cb;
    return send_get(L, op, call, -1, timeout, true, err);
}

int skiff_call_get_index_async(skiff_call *call, size_t index, double timeout, skiff_result_cb cb,
                               void *userdata, skiff_error *err)
{
    if (!call || !cb)
        return skiff_error_set(
            err, SKIFF_ERR_INVALID, NULL,
            "skiff_call_get_index_async: the call and the callback must not be NULL");
    if (index > INT64_MAX)
        return skiff_error_set(err, SKIFF_ERR_NOT_FOUND, NULL, "input %zu is out of range", index);
    struct aloop *L;
    struct aop *op;
    int rc = op_new(call->client, AOP_GET, userdata, &L, &op, err);
    if (rc != SKIFF_OK)
        return rc;
    op->cb.result = cb;
    return send_get(L, op, call, (int64_t)index, timeout, true, err);
}

int skiff_call_cancel_async(skiff_call *call, bool terminate_containers, skiff_done_cb cb,
                            void *userdata, skiff_error *err)
{
    if (!call || !cb)
        return skiff_error_set(
            err, SKIFF_ERR_INVALID, NULL,
            "skiff_call_cancel_async: the call and the callback must not be NULL");
    struct aloop *L;
    struct aop *op;
    int rc = op_new(call->client, AOP_CANCEL, userdata, &L, &op, err);
    if (rc != SKIFF_OK)
        return rc;
    op->cb.done = cb;
    struct rpc_field f[] = {
        {.key = "call_id", .kind = RPC_STR, .str = call->id},
        {.key = "terminate_containers", .kind = RPC_BOOL, .b = terminate_containers},
    };
    uint64_t rid = 0;
    rc = rpc_simple_send(call->client, OP_CANCEL, f, 2, &L->sink, &rid, err);
    return op_track(L, op, rc, rid, true, err);
}

int skiff_function_lookup_async(skiff_client *client, const char *app, const char *name,
                                skiff_function_cb cb, void *userdata, skiff_error *err)
{
    if (!cb)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_function_lookup_async: the callback must not be NULL");
    skiff_function *fn;
    int rc = skiff_function_from_name(client, app, name, &fn, err);
    if (rc != SKIFF_OK)
        return rc;
    struct aloop *L;
    struct aop *op;
    rc = op_new(client, AOP_LOOKUP, userdata, &L, &op, err);
    if (rc != SKIFF_OK) {
        skiff_function_free(fn);
        return rc;
    }
    op->fn = fn; /* owned by op until handed to cb */
    op->cb.fn = cb;
    struct rpc_field f[2];
    function_lookup_fields(fn, f);
    uint64_t rid = 0;
    rc = rpc_simple_send(client, OP_LOOKUP, f, 2, &L->sink, &rid, err);
    return op_track(L, op, rc, rid, true, err);
}

int skiff_function_get_current_stats_async(skiff_function *fn, skiff_stats_cb cb, void *userdata,
                                           skiff_error *err)
{
    if (!fn || !cb)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_function_get_current_stats_async: the function and the "
                               "callback must not be NULL");
    struct aloop *L;
    struct aop *op;
    int rc = op_new(fn->client, AOP_STATS, userdata, &L, &op, err);
    if (rc != SKIFF_OK)
        return rc;
    op->fn = fn;
    op->cb.stats = cb;
    struct rpc_field f[3];
    size_t n = function_target(fn, f);
    uint64_t rid = 0;
    rc = rpc_simple_send(fn->client, OP_STATS, f, n, &L->sink, &rid, err);
    return op_track(L, op, rc, rid, true, err);
}

int async_request(skiff_client *c, int op, const struct rpc_field *f, size_t n,
                  const struct async_req *r, skiff_error *err)
{
    struct aloop *L;
    struct aop *o;
    int rc = op_new(c, AOP_CUSTOM, r->ud, &L, &o, err);
    if (rc != SKIFF_OK)
        return rc;
    o->req = *r;
    uint64_t rid = 0;
    rc = rpc_simple_send(c, op, f, n, &L->sink, &rid, err);
    return op_track(L, o, rc, rid, true, err);
}

int async_complete_soon(skiff_client *c, const struct async_req *r, skiff_error *err)
{
    struct aloop *L;
    struct aop *o;
    int rc = op_new(c, AOP_CUSTOM, r->ud, &L, &o, err);
    if (rc != SKIFF_OK)
        return rc;
    o->req = *r;
    list_push(&L->ready, &o->link);
    L->pending++;
    loop_poke(L);
    return SKIFF_OK;
}

/* --- gather ----------------------------------------------------------------------------------- */

static void gather_free(struct gather *g)
{
    for (size_t i = 0; i < g->n; i++) {
        skiff_value_free(g->results[i]);
        skiff_error_clear(&g->errs[i]);
    }
    mem_free(g->results);
    mem_free(g->errs);
    mem_free(g->have);
    mem_free(g);
}

/* Drops a GET's hold on its gather; the last one of an abandoned or delivered gather frees it. */
static void gather_unref(struct gather *g)
{
    if (g->refs > 0)
        g->refs--;
    if (g->refs == 0 && g->delivered)
        gather_free(g);
}

/* Delivers the gather once its outcome is known: the first failure in argument order after
 * successes only, or every result. Returns true when the callback ran. */
static bool gather_check(struct aloop *L, struct gather *g)
{
    if (g->delivered)
        return false;
    for (size_t i = 0; i < g->n; i++) {
        if (!g->have[i])
            return false;
        if (g->errs[i].code != SKIFF_OK) {
            g->delivered = true;
            L->pending--;
            g->cb(g->ud, g->errs[i].code, NULL, &g->errs[i]);
            return true;
        }
    }
    g->delivered = true;
    L->pending--;
    skiff_value *list = skiff_value_list();
    for (size_t i = 0; list && i < g->n; i++) {
        int rc = skiff_list_append(list, g->results[i]);
        g->results[i] = NULL; /* taken, even on failure */
        if (rc != SKIFF_OK) {
            skiff_value_free(list);
            list = NULL;
        }
    }
    if (!list) {
        skiff_error e = SKIFF_ERROR_INIT;
        skiff_error_set(&e, SKIFF_ERR_NOMEM, NULL, "out of memory gathering %zu results", g->n);
        g->cb(g->ud, SKIFF_ERR_NOMEM, NULL, &e);
        skiff_error_clear(&e);
    } else {
        g->cb(g->ud, SKIFF_OK, list, NULL);
    }
    return true;
}

int skiff_call_gather_async(skiff_call *const *calls, size_t n, skiff_result_cb cb, void *userdata,
                            skiff_error *err)
{
    if (!cb || !calls || n == 0)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_call_gather_async: needs at least one call and a callback");
    for (size_t i = 0; i < n; i++) {
        if (!calls[i])
            return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                                   "skiff_call_gather_async: call %zu is NULL", i);
        if (calls[i]->client != calls[0]->client)
            return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                                   "skiff_call_gather_async: call %zu is of another client", i);
        if (calls[i]->kind != SKIFF_CALL_SINGLE)
            return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                                   "skiff_call_gather_async: %s is not a single call (get its "
                                   "inputs one by one)",
                                   calls[i]->id);
    }
    struct gather *g = mem_calloc(1, sizeof *g);
    if (g) {
        g->results = mem_calloc(n, sizeof *g->results);
        g->errs = mem_calloc(n, sizeof *g->errs);
        g->have = mem_calloc(n, sizeof *g->have);
    }
    if (!g || !g->results || !g->errs || !g->have) {
        if (g)
            gather_free(g);
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    }
    g->cb = cb;
    g->ud = userdata;
    g->n = n;
    struct aloop *L = NULL;
    for (size_t i = 0; i < n; i++) {
        struct aop *op = NULL;
        int rc = op_new(calls[i]->client, AOP_GATHER, NULL, &L, &op, err);
        if (rc == SKIFF_OK) {
            op->g = g;
            op->index = i;
            g->refs++;
            rc = send_get(L, op, calls[i], -1, SKIFF_WAIT_FOREVER, false, err);
        }
        if (rc != SKIFF_OK) {
            g->delivered = true; /* abandoned: the GETs already out keep it until answered */
            if (g->refs == 0)
                gather_free(g);
            return rc;
        }
    }
    L->pending++;
    return SKIFF_OK;
}

/* --- generators ------------------------------------------------------------------------------- */

int async_notify_fd(skiff_client *c, int *efd, skiff_error *err)
{
    struct aloop *L;
    int rc = loop_get(c, &L, err);
    if (rc == SKIFF_OK)
        *efd = L->efd;
    return rc;
}

/* A new zeroed record of size bytes in *out for a stream of the calling thread's loop on c (in
 * *L). SKIFF_OK or SKIFF_ERR_NOMEM. */
static int stream_new(skiff_client *c, size_t size, struct aloop **L, void **out, skiff_error *err)
{
    int rc = loop_get(c, L, err);
    if (rc != SKIFF_OK)
        return rc;
    *out = mem_calloc(1, size);
    return *out ? SKIFF_OK : skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
}

/* Links a new stream into list of L, counts it pending and makes process look at it. */
static void stream_link(struct aloop *L, struct list_node *list, struct list_node *link)
{
    list_push(list, link);
    L->pending++;
    loop_poke(L); /* e.g. an empty map, over already */
}

int async_track_gen(skiff_client *c, skiff_gen *g, skiff_item_cb item, skiff_done_cb done, void *ud,
                    skiff_error *err)
{
    struct aloop *L;
    void *p = NULL;
    int rc = stream_new(c, sizeof(struct agen), &L, &p, err);
    if (rc != SKIFF_OK) {
        skiff_gen_free(g);
        return rc;
    }
    struct agen *a = p;
    a->g = g;
    a->item = item;
    a->done = done;
    a->ud = ud;
    stream_link(L, &L->gens, &a->link);
    return SKIFF_OK;
}

int skiff_function_remote_gen_async(skiff_function *fn, const skiff_value *args,
                                    const skiff_value *kwargs, skiff_item_cb item_cb,
                                    skiff_done_cb done_cb, void *userdata, skiff_error *err)
{
    if (!fn || !item_cb || !done_cb)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_function_remote_gen_async: the function and both callbacks "
                               "must not be NULL");
    int efd;
    int rc = async_notify_fd(fn->client, &efd, err);
    skiff_gen *g = NULL;
    if (rc == SKIFF_OK)
        rc = gen_remote(fn, args, kwargs, efd, &g, err);
    if (rc != SKIFF_OK)
        return rc;
    return async_track_gen(fn->client, g, item_cb, done_cb, userdata, err);
}

/* Hands out every item a generator stream has received, and its end. Returns the callbacks
 * run. */
static size_t gen_pump(struct aloop *L, struct agen *a)
{
    size_t ran = 0;
    for (;;) {
        skiff_value *item = NULL;
        skiff_error e = SKIFF_ERROR_INIT;
        int rc = gen_next_wait(a->g, 0, &item, &e);
        if (rc == SKIFF_AGAIN)
            return ran;
        ran++;
        if (rc == SKIFF_OK) {
            a->item(a->ud, item);
            continue;
        }
        list_remove(&a->link);
        L->pending--;
        a->done(a->ud, rc == SKIFF_DONE ? SKIFF_OK : rc, rc == SKIFF_DONE ? NULL : &e);
        skiff_error_clear(&e);
        skiff_gen_free(a->g);
        mem_free(a);
        return ran;
    }
}

/* --- maps ------------------------------------------------------------------------------------- */

int async_track_map(skiff_client *c, skiff_map *m, enum async_map_mode mode, skiff_output_cb output,
                    skiff_done_cb done, skiff_call_cb call, void *ud, skiff_error *err)
{
    struct aloop *L;
    void *p = NULL;
    int rc = stream_new(c, sizeof(struct amap), &L, &p, err);
    if (rc != SKIFF_OK) {
        skiff_map_free(m);
        return rc;
    }
    struct amap *a = p;
    a->m = m;
    a->mode = mode;
    a->output = output;
    a->done = done;
    a->call = call;
    a->ud = ud;
    stream_link(L, &L->maps, &a->link);
    return SKIFF_OK;
}

int skiff_function_map_async(skiff_function *fn, const skiff_value *const *lists, size_t n,
                             const skiff_map_options *opts, skiff_output_cb output_cb,
                             skiff_done_cb done_cb, void *userdata, skiff_error *err)
{
    if (!fn || !output_cb || !done_cb)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_function_map_async: the function and both callbacks must "
                               "not be NULL");
    int efd;
    int rc = async_notify_fd(fn->client, &efd, err);
    skiff_map *m = NULL;
    if (rc == SKIFF_OK)
        rc = map_start_async(fn, lists, n, opts, efd, &m, err);
    if (rc != SKIFF_OK)
        return rc;
    return async_track_map(fn->client, m, ASYNC_MAP_OUTPUTS, output_cb, done_cb, NULL, userdata,
                           err);
}

/* Arms the loop's timer to ask a map's source again in SKIFF_MAP_AGAIN_MS. */
static void timer_arm(struct aloop *L)
{
    if (L->timer_armed)
        return;
    struct itimerspec t = {.it_value = {.tv_nsec = SKIFF_MAP_AGAIN_MS * 1000000L}};
    if (timerfd_settime(L->tfd, 0, &t, NULL) == 0)
        L->timer_armed = true;
}

/* Ends a tracked map: its last callback with rc (and e), then it is freed. */
static void map_end(struct aloop *L, struct amap *a, int rc, skiff_call *call, skiff_error *e)
{
    list_remove(&a->link);
    L->pending--;
    const skiff_error *ep = rc == SKIFF_OK ? NULL : e;
    if (a->mode == ASYNC_MAP_SPAWN)
        a->call(a->ud, rc, call, ep);
    else
        a->done(a->ud, rc, ep);
    skiff_error_clear(e);
    skiff_map_free(a->m);
    mem_free(a);
}

/* Hands out every output a map has ready, and its end. Returns the callbacks run. */
static size_t map_pump(struct aloop *L, struct amap *a)
{
    size_t ran = 0;
    for (;;) {
        skiff_map_output out = {0, NULL, SKIFF_ERROR_INIT};
        skiff_error e = SKIFF_ERROR_INIT;
        skiff_call *call = NULL;
        int rc = a->mode == ASYNC_MAP_SPAWN ? map_spawn_step(a->m, &call, &e)
                                            : map_next_wait(a->m, &out, 0, &e);
        if (rc == SKIFF_AGAIN) {
            if (map_source_waiting(a->m))
                timer_arm(L);
            return ran;
        }
        if (rc == SKIFF_OK && a->mode != ASYNC_MAP_SPAWN) {
            if (a->mode == ASYNC_MAP_OUTPUTS) {
                ran++;
                a->output(a->ud, &out);
            } else {
                skiff_map_output_clear(&out);
            }
            continue;
        }
        map_end(L, a, rc == SKIFF_DONE ? SKIFF_OK : rc, call, &e);
        return ran + 1;
    }
}

/* --- completing operations -------------------------------------------------------------------- */

/* Runs op's callback with its outcome, then frees it. Returns the user callbacks run: 1, or
 * for a gather's GET 1 when it completed the gather, else 0. */
static size_t op_complete(struct aloop *L, struct aop *op)
{
    size_t ran = 1;
    skiff_error e = SKIFF_ERROR_INIT;
    int rc = op->fail;
    const struct wire_msg *m = op->frame ? &L->msg : NULL;
    if (rc != SKIFF_OK) {
        skiff_error_set(&e, op->ferr.code, op->ferr.type, "%s", op->ferr.message);
    } else if (!op->frame) {
        /* complete without a request (async_complete_soon): no reply, m is NULL */
    } else if (wire_msg_parse(&L->msg, op->frame->body, op->frame->len) < 0) {
        rc = skiff_error_set(&e, SKIFF_ERR_NOMEM, NULL, "out of memory parsing a reply");
    } else if (m->op == OP_ERROR) {
        rc = rpc_reply_error(m, &e);
    } else if (m->op != OP_OK) {
        rc = skiff_error_set(&e, SKIFF_ERR_DESERIALIZATION, NULL,
                             "the server answered with an unexpected operation %d", m->op);
    }
    skiff_value *v = NULL;
    skiff_call *call = NULL;
    skiff_function_stats st;
    char id[ID_SIZE];
    if (op->kind != AOP_GATHER)
        L->pending--;
    const skiff_error *ep = rc == SKIFF_OK ? NULL : &e;
    switch (op->kind) {
    case AOP_REMOTE:
    case AOP_GET:
        if (rc == SKIFF_OK && op->kind == AOP_REMOTE)
            rc = function_remember(op->fn, m, &e);
        if (rc == SKIFF_OK)
            rc = function_reply_result(m, &v, &e);
        op->cb.result(op->ud, rc, v, rc == SKIFF_OK ? NULL : &e);
        break;
    case AOP_SPAWN:
        if (rc == SKIFF_OK)
            rc = function_remember(op->fn, m, &e);
        if (rc == SKIFF_OK)
            rc = call_id_from_reply(m, id, &e);
        if (rc == SKIFF_OK)
            rc = call_new(op->c, id, op->gen ? SKIFF_CALL_GENERATOR : SKIFF_CALL_SINGLE, 1, &call,
                          &e);
        op->cb.call(op->ud, rc, call, rc == SKIFF_OK ? NULL : &e);
        break;
    case AOP_CANCEL:
        op->cb.done(op->ud, rc, ep);
        break;
    case AOP_LOOKUP:
        if (rc == SKIFF_OK)
            rc = function_remember(op->fn, m, &e);
        if (rc == SKIFF_OK) {
            skiff_function *fn = op->fn;
            op->fn = NULL; /* the callback's now */
            op->cb.fn(op->ud, rc, fn, NULL);
        } else {
            op->cb.fn(op->ud, rc, NULL, &e);
        }
        break;
    case AOP_STATS:
        if (rc == SKIFF_OK)
            rc = function_stats_from_reply(m, &st, &e);
        op->cb.stats(op->ud, rc, rc == SKIFF_OK ? &st : NULL, rc == SKIFF_OK ? NULL : &e);
        break;
    case AOP_CUSTOM:
        op->req.fin(&op->req, rc, rc == SKIFF_OK ? m : NULL, &e);
        break;
    case AOP_GATHER: {
        struct gather *g = op->g;
        ran = 0;
        if (!g->delivered) {
            if (rc == SKIFF_OK)
                rc = function_reply_result(m, &g->results[op->index], &e);
            if (rc != SKIFF_OK) {
                g->errs[op->index] = e; /* moved */
                memset(&e, 0, sizeof e);
            }
            g->have[op->index] = true;
            ran = gather_check(L, g);
        }
        break;
    }
    }
    skiff_error_clear(&e);
    op_free(op);
    return ran;
}

/* Takes what arrived for L and detaches the operations it completes (and, after a lost
 * connection, every operation it lost) into done, in arrival order. */
static void collect(struct aloop *L, struct list_node *done)
{
    struct rpc_frame *frames = NULL;
    skiff_error lost = SKIFF_ERROR_INIT;
    uint64_t upto = 0;
    int fail = rpc_sink_poll(L->c, &L->sink, &frames, &upto, &lost);
    while (!list_empty(&L->ready)) { /* first: they were started before anything arrived */
        struct list_node *node = L->ready.next;
        list_remove(node);
        list_push(done, node);
    }
    while (frames) {
        struct rpc_frame *f = frames;
        frames = f->next;
        f->next = NULL;
        struct aop *op = NULL;
        if (wire_msg_parse(&L->msg, f->body, f->len) == 0) {
            char key[24];
            snprintf(key, sizeof key, "%llu", (unsigned long long)L->msg.rid);
            op = hmap_del(&L->ops, key);
        }
        if (!op) {
            rpc_frame_free(f); /* an abandoned gather's GET */
            continue;
        }
        op->frame = f;
        list_remove(&op->link);
        list_push(done, &op->link);
    }
    struct list_node *node, *tmp;
    list_for_each_safe(node, tmp, &L->ops_list)
    {
        struct aop *op = container_of(node, struct aop, link);
        if (fail != SKIFF_OK && op->rid <= upto) { /* later ones went out on a new connection */
            hmap_del(&L->ops, op->key);
            list_remove(&op->link);
            op->fail = fail;
            skiff_error_set(&op->ferr, lost.code, lost.type, "%s", lost.message);
            list_push(done, &op->link);
        }
    }
    skiff_error_clear(&lost);
}

int skiff_client_process(skiff_client *client, size_t *ran, skiff_error *err)
{
    if (!client)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_client_process: client must not be NULL");
    struct aloop *L = loop_of(client);
    size_t n = 0;
    if (L) {
        if (L->in_process)
            return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                                   "skiff_client_process called from inside one of its "
                                   "callbacks");
        L->in_process = true;
        uint64_t ticks;
        if (L->timer_armed && read(L->tfd, &ticks, sizeof ticks) == sizeof ticks)
            L->timer_armed = false; /* expired: the maps below ask their sources again */
        struct list_node done;
        list_init(&done);
        collect(L, &done);
        while (!list_empty(&done)) {
            struct aop *op = container_of(done.next, struct aop, link);
            list_remove(&op->link);
            n += op_complete(L, op);
        }
        struct list_node *node, *tmp;
        list_for_each_safe(node, tmp, &L->gens)
        {
            n += gen_pump(L, container_of(node, struct agen, link));
        }
        list_for_each_safe(node, tmp, &L->maps)
        {
            n += map_pump(L, container_of(node, struct amap, link));
        }
        L->in_process = false;
    }
    if (ran)
        *ran = n;
    return SKIFF_OK;
}

size_t skiff_client_pending(skiff_client *client)
{
    struct aloop *L = client ? loop_of(client) : NULL;
    return L ? L->pending : 0;
}

int skiff_client_fd(skiff_client *client, int *fd, skiff_error *err)
{
    if (!client || !fd)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_client_fd: client and fd must not be NULL");
    struct aloop *L;
    int rc = loop_get(client, &L, err);
    if (rc == SKIFF_OK)
        *fd = L->epfd;
    return rc;
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int skiff_client_wait(skiff_client *client, double timeout, skiff_error *err)
{
    if (!client || isnan(timeout))
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_client_wait: needs a client and a timeout in seconds");
    struct aloop *L = loop_of(client);
    if (!L || L->pending == 0)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_client_wait: this thread has no operation pending");
    if (L->in_process)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_client_wait called from inside a callback");
    double deadline = timeout < 0 || isinf(timeout) ? -1 : now_mono() + timeout;
    for (;;) {
        size_t ran = 0;
        skiff_client_process(client, &ran, NULL);
        if (ran > 0 || L->pending == 0)
            return SKIFF_OK;
        int ms = -1;
        if (deadline >= 0) {
            double left = deadline - now_mono();
            if (left <= 0)
                return skiff_error_set(err, SKIFF_ERR_TIMEOUT, NULL,
                                       "no asynchronous operation completed within %g s", timeout);
            ms = (int)(left * 1000) + 1;
        }
        struct pollfd p = {L->epfd, POLLIN, 0};
        if (poll(&p, 1, ms) < 0 && errno != EINTR)
            return skiff_error_set(err, SKIFF_ERR_INTERNAL, NULL, "poll failed: %s",
                                   strerror(errno));
    }
}

void skiff_client_release_thread(skiff_client *client)
{
    if (!client)
        return;
    pthread_mutex_lock(&client->mu);
    struct aloop *L = loop_find(client);
    if (L && !L->in_process)
        list_remove(&L->link);
    pthread_mutex_unlock(&client->mu);
    if (L && !L->in_process)
        loop_free(L);
}

/* --- libuv ------------------------------------------------------------------------------------ */

static void on_uv_poll(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    struct uvpoll *u = h->data;
    skiff_client_process(u->c, NULL, NULL);
}

int skiff_client_uv_attach(skiff_client *client, struct uv_loop_s *loop, skiff_error *err)
{
    if (!client || !loop)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "skiff_client_uv_attach: client and loop must not be NULL");
    struct aloop *L;
    int rc = loop_get(client, &L, err);
    if (rc != SKIFF_OK)
        return rc;
    if (L->uv)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "the client is already attached to a libuv loop on this thread");
    struct uvpoll *u = mem_calloc(1, sizeof *u);
    if (!u)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory");
    u->c = client;
    int e = uv_poll_init(loop, &u->h, L->epfd);
    if (e < 0) {
        mem_free(u);
        return skiff_error_set(err, SKIFF_ERR_INTERNAL, NULL, "libuv refused the poll handle: %s",
                               uv_strerror(e));
    }
    u->h.data = u;
    e = uv_poll_start(&u->h, UV_READABLE, on_uv_poll);
    if (e < 0) {
        uv_close((uv_handle_t *)&u->h, uv_freed);
        return skiff_error_set(err, SKIFF_ERR_INTERNAL, NULL, "libuv cannot poll: %s",
                               uv_strerror(e));
    }
    L->uv = u;
    return SKIFF_OK;
}

void skiff_client_uv_detach(skiff_client *client)
{
    struct aloop *L = client ? loop_of(client) : NULL;
    if (!L || !L->uv)
        return;
    uv_poll_stop(&L->uv->h);
    uv_close((uv_handle_t *)&L->uv->h, uv_freed);
    L->uv = NULL;
}
