/*
 * async.h - the asynchronous API's machinery (async.c) for the _async twins that live beside
 * their blocking twins in the other files of libskiff (not part of the public API).
 *
 * A one-shot twin describes what its callback needs in a struct async_req and sends its request
 * with async_request: the reply is matched in skiff_client_process, which calls the request's
 * fin with the outcome; fin decodes the reply as the blocking twin would and runs the user's
 * callback exactly once. A streaming twin (a map, a generator stream) is made with the calling
 * thread's notify eventfd (async_notify_fd) so its sink wakes the event loop, then handed to
 * async_track_map or async_track_gen, after which process drives it.
 */
#ifndef SKIFF_CLIENT_ASYNC_H
#define SKIFF_CLIENT_ASYNC_H

#include <stddef.h>
#include <stdint.h>
#include <skiff/skiff.h>

#include "common/wire.h"

struct rpc_field;

/* A one-shot request of an _async twin: how to finish it, and the user's callback. */
struct async_req {
    /* Runs the user's callback, once: with rc SKIFF_OK, m is the server's OK reply (NULL for
     * async_complete_soon); otherwise m is NULL and e says why (fin may also turn a success into a
     * failure, e.g. a malformed reply, by filling e). e is cleared after fin returns. */
    void (*fin)(const struct async_req *r, int rc, const struct wire_msg *m, skiff_error *e);
    void *obj; /* the handle the request is about (borrowed: it outlives the request) */
    void *ud;  /* the user's userdata */
    union {
        skiff_done_cb done;
        skiff_call_cb call;
        skiff_result_cb result;
        skiff_url_cb url;
        skiff_autoscaler_cb autoscaler;
        skiff_graph_cb graph;
    } cb;
};

/* Sends op with the n fields listed on c for the calling thread's loop, without waiting; its
 * reply goes to r->fin from skiff_client_process (r is copied). SKIFF_OK; or as rpc_send
 * (SKIFF_ERR_CONNECTION, SKIFF_ERR_AUTH, SKIFF_ERR_NOMEM), and then fin never runs. */
int async_request(skiff_client *c, int op, const struct rpc_field *f, size_t n,
                  const struct async_req *r, skiff_error *err);

/* Completes r at the calling thread's next skiff_client_process without asking the server:
 * r->fin then runs with SKIFF_OK and m NULL (a twin whose blocking call would return at once,
 * e.g. hydrating a handle already hydrated). SKIFF_OK or SKIFF_ERR_NOMEM (fin never runs). */
int async_complete_soon(skiff_client *c, const struct async_req *r, skiff_error *err);

/* The calling thread's notify eventfd on c (its loop made on first use), for the sink of a map
 * or generator stream that async_track_map / async_track_gen will drive. SKIFF_OK or
 * SKIFF_ERR_NOMEM. */
int async_notify_fd(skiff_client *c, int *efd, skiff_error *err);

/* How process hands out a tracked map's outcome. */
enum async_map_mode {
    ASYNC_MAP_OUTPUTS, /* each output to output, then the end to done */
    ASYNC_MAP_DISCARD, /* outputs freed (for_each), the end to done */
    ASYNC_MAP_SPAWN,   /* a spawn_map: the call to call once every input is durable */
};

/* Hands m (made with async_notify_fd's descriptor) to the calling thread's loop on c, which then
 * drives it from process and frees it after its last callback. Takes m, also on failure.
 * SKIFF_OK or SKIFF_ERR_NOMEM (then no callback runs). */
int async_track_map(skiff_client *c, skiff_map *m, enum async_map_mode mode, skiff_output_cb output,
                    skiff_done_cb done, skiff_call_cb call, void *ud, skiff_error *err);
/* Hands g (made with async_notify_fd's descriptor) to the calling thread's loop on c: item gets
 * each item, done the end. Takes g, also on failure. SKIFF_OK or SKIFF_ERR_NOMEM. */
int async_track_gen(skiff_client *c, skiff_gen *g, skiff_item_cb item, skiff_done_cb done, void *ud,
                    skiff_error *err);

#endif
