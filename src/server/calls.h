/*
 * calls.h - function calls: their inputs, results and the clients waiting for them.
 *
 * A call has one input (the id space already separates call and input, for maps later). Its
 * life: PENDING in its function's queue, RUNNING on a container, then one of the final states
 * with either a result payload or an error. Blocking calls (remote) live only in memory: their
 * caller is waiting. Spawned calls are durable: the store gets the call with its arguments before
 * the client gets the id (group commit, see store.h), and its outcome when it ends; once the
 * outcome is on disk and no client is waiting, the call leaves memory and GET reads the store.
 */
#ifndef SKIFF_SERVER_CALLS_H
#define SKIFF_SERVER_CALLS_H

#include <skiff/skiff.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/id.h"
#include "common/list.h"

struct conn;
struct container;
struct function;

/* Stored as integers: never renumber. */
enum call_status {
    ST_PENDING = 0,
    ST_RUNNING = 1,
    ST_SUCCESS = 2,
    ST_FAILURE = 3,
    ST_TERMINATED = 4,
    ST_TIMEOUT = 5,
    ST_INIT_FAILURE = 6,
    ST_EXPIRED = 7,
};

struct call {
    char id[ID_SIZE];
    char input_id[ID_SIZE];
    char parent[ID_SIZE]; /* the input that made this call, or "" */
    struct function *fn;
    enum call_status status;
    bool durable;      /* spawned: in the store */
    bool acked;        /* the spawn is committed and its id sent */
    int store_pending; /* store writes queued for this call, not yet committed */
    int64_t created;   /* unix ms */
    char *args;        /* argument payload, until the input ends */
    size_t args_len;
    char *result; /* the result payload (ST_SUCCESS) */
    size_t result_len;
    skiff_error err;        /* the failure (other final states) */
    struct conn *sync_conn; /* the blocking caller, or NULL */
    uint64_t sync_rid;
    struct conn *spawn_conn; /* the client awaiting the spawn acknowledgement, or NULL */
    uint64_t spawn_rid;
    struct list_node sync_link;  /* in sync_conn->calls or spawn_conn->calls */
    struct list_node waiters;    /* struct waiter.call_link */
    struct list_node queue_link; /* in fn->queue while pending */
    struct container *container; /* while running */
};

/* 0 or -1. retention: seconds a spawned call's result is kept. */
int calls_init(uv_loop_t *loop, double retention);
/* Shutdown: closes the module's timers (the loop then winds down); then calls_deinit frees. */
void calls_shutdown(void);
void calls_deinit(void);

/* Handles a CALL request from client c: creates the call, queues it (blocking) or hands it to
 * the store (spawn; acknowledged after the commit). Replies to c itself on errors. */
void calls_request(struct conn *c, uint64_t rid, struct function *fn, const char *args,
                   size_t args_len, bool spawn, const char *parent);
/* Handles GET: replies now with the outcome, or waits up to timeout_ms (-1: forever). */
void calls_get(struct conn *c, uint64_t rid, const char *call_id, int64_t timeout_ms);
/* Handles CANCEL. */
void calls_cancel_request(struct conn *c, uint64_t rid, const char *call_id, bool terminate);
/* Handles CALL_INFO. */
void calls_info(struct conn *c, uint64_t rid, const char *call_id);

/* The call's input ended (from the scheduler): status, and the result payload (copied) on
 * success or err (copied) otherwise. Replies to every waiter and persists durable outcomes. */
void calls_finish(struct call *call, enum call_status status, const char *result, size_t len,
                  const skiff_error *err);
/* Terminates every pending call of fn with err's message (app stopped). */
void calls_terminate_queued(struct function *fn, const char *why);

/* A client connection is going away: its blocking calls are cancelled, its waiters dropped. */
void calls_conn_closed(struct conn *c);

/* The store's verdict on a write queued for call (store.c): ok false means it failed. */
void calls_spawn_committed(struct call *call, bool ok);
void calls_outcome_committed(struct call *call, bool ok);

/* Re-queues a durable call loaded from the store at start-up (takes args). */
void calls_restore(const char *call_id, const char *input_id, const char *parent,
                   struct function *fn, int64_t created, char *args, size_t args_len);

const char *calls_status_name(enum call_status st);

#endif
