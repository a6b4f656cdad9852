/*
 * calls.h - function calls and their inputs: from request to outcome, and who hears of it.
 *
 * A function call ("fc-") has one or more inputs ("in-"), each with an index:
 *   - single: remote (blocking) or spawn (durable): one input;
 *   - generator: remote_gen (streamed to the caller) or a spawned generator (durable items);
 *   - map: inputs streamed in by MAP_INPUTS and outputs streamed out by OUTPUTS; belongs to the
 *     connection that started it and lives in memory only; each output is freed once sent;
 *   - spawn_map: the same, but every input is durable and every output is kept like a spawned
 *     call's result, readable by index (GET) or in bulk (OUTPUTS) from any connection.
 * An input's life: PENDING in its function's queue, RUNNING on a container (sched.c), then one
 * of the final states with a result payload or an error. Inputs lost with their container run
 * again; retried inputs deliver one outcome.
 *
 * Durability: the store gets a spawned call (or spawn_map inputs) with the arguments before the
 * client hears of it (group commit, store.h), and each outcome when it ends; once an outcome is
 * on disk and nobody in this process needs it, it leaves memory and GET / OUTPUTS read the store.
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
struct stream;

/* Stored as integers: never renumber. Inputs use PENDING .. INIT_FAILURE; a call's status is
 * its input's (single, generator) or summarises its inputs (maps). */
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

/* Stored as integers: never renumber. */
enum call_kind { CK_SINGLE = 0, CK_MAP = 1, CK_SPAWN_MAP = 2, CK_GEN = 3 };

struct call;
struct waiter;

/*
 * An in-process party told of outcomes (the HTTP server), beside the conn-based owner and
 * waiters. It starts a call (calls_start), waits for one (calls_wait) or cancels one
 * (calls_cancel_by): one at a time. The storage is the caller's; the private fields start zeroed.
 */
struct call_listener {
    /* What the listener asked for ended: on success value[0..len) (the result payload; NULL
     * for an acknowledged spawn or a cancel) and err NULL, otherwise err (borrowed, for the
     * call only). The listener is idle again when this runs and may start something new. May
     * run before the request that asked returns (an answer known at once). */
    void (*on_done)(struct call_listener *l, const char *value, size_t len, const skiff_error *err);
    /* Streams (calls_start_gen, calls_map_open): one generator item (index: its sequence
     * number) or one map input's outcome (value on success, else err), as it comes; the stream's
     * end is on_done with value NULL and len the count of items or inputs (or err). on_item must
     * not call back into calls.c (it runs inside the scheduler's outcome handling). */
    void (*on_item)(struct call_listener *l, uint32_t index, const char *value, size_t len,
                    const skiff_error *err);
    struct call *call;     /* private: the call it started and awaits, or NULL */
    struct waiter *waiter; /* private: its wait in progress, or NULL */
};

struct input {
    struct call *call;
    uint32_t index;    /* within the call */
    uint8_t status;    /* enum call_status */
    uint8_t lost;      /* times lost with a container (not the input's fault) */
    uint16_t attempts; /* retries used (the function's retry policy) */
    bool stored;       /* durable and on disk (its row exists) */
    bool delivered;    /* map: its output was sent to the OUTPUTS stream */
    int store_pending; /* store writes queued for it, not yet committed */
    char id[ID_SIZE];  /* "in-..." */
    char *args;        /* argument payload, kept until the input is final */
    size_t args_len;
    char *result; /* the result payload (ST_SUCCESS), until it is not needed */
    size_t result_len;
    skiff_error err;             /* the failure (other final states) */
    uint32_t gen_items;          /* generator: items delivered (and stored) so far */
    uint32_t gen_run;            /* generator: items the current attempt yielded; those below
                                    gen_items repeat an earlier attempt's and are dropped */
    struct container *container; /* while running */
    char *ran_on;                /* the "ta-" id of the container that last ran it, or NULL */
    uint32_t slot;               /* its slot on that container */
    uint64_t deadline;           /* loop time (ms) past which it has timed out, while running */
    struct list_node link;       /* in its function's queue (pending) or container (running) */
};

struct call {
    char id[ID_SIZE];
    char parent[ID_SIZE];  /* the input that made this call, or "" */
    struct function *fn;   /* what was called (a function or a method) */
    struct function *pool; /* where its inputs run: fn, or a pool of fn's class */
    enum call_kind kind;
    bool durable; /* spawned: in the store */
    bool acked;   /* durable and committed: its id is out */
    bool closed;  /* maps: MAP_INPUTS said `last`; always true for the others */
    bool cancelled;
    bool kept;            /* durable, and its listener hears its outcome (calls_start_kept) */
    bool ordered;         /* a listener's map: outputs in input order (next_out) */
    uint32_t next_out;    /* a listener's ordered map: the next input index to hand over */
    bool cancel_on_close; /* a blocking call whose caller asked: its caller leaving cancels it
                             even once it runs (CALL's cancel_on_close; Ctrl-C of skiff call) */
    int store_pending;    /* store writes queued for the call row, not yet committed */
    int64_t created;      /* unix ms */
    uint32_t n_inputs;    /* inputs the call has */
    uint32_t n_final;     /* inputs that reached a final state */
    uint32_t n_failed;    /* of those, not ST_SUCCESS */
    uint32_t n_live;      /* struct input objects in memory */
    struct input **ring;  /* the inputs in memory: index i in slot i % ring_cap (calls.c) */
    uint32_t ring_cap;    /* a power of two (0: none yet); live indexes span < ring_cap */
    uint32_t base;        /* every input below this index has left memory */
    struct conn *owner;   /* blocking CALL, remote_gen or map: the caller's conn */
    struct call_listener *listener; /* a call started by calls_start, until it is answered */
    uint64_t owner_rid;
    struct stream *out;      /* remote_gen items / the map owner's OUTPUTS */
    struct conn *spawn_conn; /* the client awaiting a durable acknowledgement, or NULL */
    uint64_t spawn_rid;
    struct list_node conn_link; /* in owner's or spawn_conn's calls */
    struct list_node waiters;   /* struct waiter.call_link (GET) */
    struct list_node readers;   /* struct reader.call_link (OUTPUTS of spawn_map / generators) */
    struct list_node sibling;   /* among the calls made by the same parent input (call graph) */
};

/* 0 or -1. retention: seconds a spawned call's result is kept. */
int calls_init(uv_loop_t *loop, double retention, size_t payload_max);
/* The payload limit (calls_init's payload_max). */
size_t calls_payload_limit(void);
/* Shutdown: closes the module's timers (the loop then winds down); then calls_deinit frees. */
void calls_shutdown(void);
void calls_deinit(void);

/* Requests from client c (proto.c): each replies exactly once, now or later. */
/* CALL's options (flags of calls_request). */
enum {
    CALL_SPAWN = 1,           /* spawn: durable, answered once on disk */
    CALL_GEN = 2,             /* remote_gen / a spawned generator */
    CALL_CANCEL_ON_CLOSE = 4, /* blocking: the caller's connection closing cancels it, even
                                 running (by default a running blocking call finishes unheard) */
    CALL_KEPT = 8,            /* a listener's call (calls_start_kept): durable, and the listener
                                 hears its outcome */
};
/* CALL with flags (CALL_*). The call's id goes to made when the call is made ("" when the
 * request failed before). */
void calls_request(struct conn *c, uint64_t rid, struct function *fn, struct function *pool,
                   const char *args, size_t args_len, unsigned flags, const char *parent,
                   char made[ID_SIZE]);
void calls_get(struct conn *c, uint64_t rid, const char *call_id, int64_t timeout_ms,
               int64_t index);
void calls_cancel_request(struct conn *c, uint64_t rid, const char *call_id, bool terminate);
void calls_info(struct conn *c, uint64_t rid, const char *call_id);
/* In-process requests (the HTTP server); each ends with exactly one l->on_done.
 * calls_start: a call of fn with the argument payload args (copied). spawn: durable, answered
 * (value NULL) once on disk; otherwise answered with its outcome. web: the HTTP server serving
 * the web endpoint fn (web endpoints are callable no other way). The call's id goes to call_id
 * when the call is made (before the answer); errors before that leave it unwritten. */
void calls_start(struct call_listener *l, struct function *fn, struct function *pool,
                 const char *args, size_t args_len, bool spawn, bool web, char call_id[ID_SIZE]);
/* As calls_start without spawn, but the call is durable (stored before it runs, its outcome
 * kept for the retention like a spawned call's, readable by GET from anywhere) while l hears its
 * outcome; a listener that goes away before it runs cancels it. */
void calls_start_kept(struct call_listener *l, struct function *fn, struct function *pool,
                      const char *args, size_t args_len, char call_id[ID_SIZE]);
/* A call of the generator fn: each item to l->on_item, then on_done (value NULL, len the count)
 * or the error. A listener that goes away cancels it. */
void calls_start_gen(struct call_listener *l, struct function *fn, struct function *pool,
                     const char *args, size_t args_len, char call_id[ID_SIZE]);
/* A map of fn held by l (in memory, like a client's map): true once open (its id in call_id);
 * false after on_done with the error. Inputs follow with calls_map_add; each outcome goes to
 * l->on_item (in input order when ordered, else as they end), and on_done (value NULL, len the
 * count) once the last is out. A listener that goes away cancels it. */
bool calls_map_open(struct call_listener *l, struct function *fn, struct function *pool,
                    bool ordered, char call_id[ID_SIZE]);
/* Adds the next input of l's map (args copied); last: no more follow. SKIFF_OK, or
 * SKIFF_ERR_REQUEST_SIZE (over the payload limit), SKIFF_ERR_NOMEM, SKIFF_ERR_CANCELLED,
 * SKIFF_ERR_INVALID (no open map). Outcomes may be delivered before it returns. */
int calls_map_add(struct call_listener *l, const char *args, size_t args_len, bool last);
/* GET: the outcome of call_id (input index of a spawn_map, -1 otherwise), or TimeoutError after
 * timeout_ms (-1: wait until it ends, 0: poll once). */
void calls_wait(struct call_listener *l, const char *call_id, int64_t timeout_ms, int64_t index);
/* CANCEL: answered with success (value NULL) or NotFoundError / InvalidError. */
void calls_cancel_by(struct call_listener *l, const char *call_id, bool terminate);
/* The listener goes away: its wait is dropped, a blocking call it started and that has not
 * begun running is cancelled (a running one finishes unheard), a spawn still completes. No
 * on_done follows. */
void calls_listener_gone(struct call_listener *l);

/* An attempt of in started running on container ct_id (recorded for the call graph; a
 * generator's items count again from the first, those already delivered being dropped). */
void calls_input_ran_on(struct input *in, const char *ct_id);
/* MAP_START: the map's id goes to made as for calls_request. */
void calls_map_start(struct conn *c, uint64_t rid, struct function *fn, struct function *pool,
                     bool spawn, const char *parent, char made[ID_SIZE]);
/* MAP_INPUTS: args is the msgpack array of bin payloads from the request. */
void calls_map_inputs(struct conn *c, uint64_t rid, const char *call_id, int64_t start,
                      const void *args_array, bool last);
void calls_outputs(struct conn *c, uint64_t rid, const char *call_id, int64_t from);

/* Outcomes from the scheduler. The input ended: status, and the result payload (copied) on
 * success or err (copied) otherwise. Replies to every waiter and persists durable outcomes. */
void calls_input_done(struct input *in, enum call_status status, const char *result, size_t len,
                      const skiff_error *err);
/* A generator input yielded an item (copied). */
void calls_gen_item(struct input *in, const char *value, size_t len);
/* Terminates every pending input of fn (app stopped, function removed). */
void calls_terminate_queued(struct function *fn, const char *why);

/* A client connection is going away: its blocking calls and maps are cancelled, its waiters
 * and readers dropped. */
void calls_conn_closed(struct conn *c);

/* The store's verdict on writes it was given (store.c): ok false means the commit failed. */
void calls_call_committed(struct call *call, bool ok);
void calls_input_committed(struct input *in, bool ok);
/* A batch of spawn_map inputs from one MAP_INPUTS (ack, given to store_queue_inputs). */
void calls_inputs_committed(void *ack, bool ok);

/* Re-creates a durable call loaded from the store at start-up. For a spawn_map, the inputs
 * still to run follow with calls_restore_input. */
struct call *calls_restore(const char *call_id, const char *parent, struct function *fn,
                           struct function *pool, enum call_kind kind, int64_t created,
                           uint32_t n_inputs, bool closed);
/* Re-queues one unfinished input of a restored call (takes args). */
void calls_restore_input(struct call *call, uint32_t index, const char *input_id, char *args,
                         size_t args_len);

/* Input index of call if it is in memory, else NULL. */
struct input *calls_input_at(const struct call *call, uint32_t index);

/* The call with that id if it is in memory, else NULL. */
struct call *calls_find(const char *call_id);
/* The calls in memory made by input parent (struct call.sibling), or NULL when there are none. */
const struct list_node *calls_children(const char *parent);

const char *calls_status_name(enum call_status st);
const char *calls_kind_name(enum call_kind k);
/* The status CALL_INFO shows for call (in memory). */
enum call_status calls_status_of(const struct call *call);

#endif
