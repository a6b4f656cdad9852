/*
 * store.h - the server's SQLite database: schema, group commit, calls, inputs and items.
 *
 * One database file, <data>/skiff.db, in WAL mode with synchronous=FULL: a committed transaction
 * is on disk. Writes of the hot path (a spawned call, spawn_map inputs, generator items, the
 * outcome of a durable input) are not executed when they happen: they are queued, and
 * store_flush runs all of them in one transaction once per loop iteration, before any reply
 * leaves (conn_flush_all runs after it). One fsync then covers every spawn of the iteration. The
 * verdict on each write goes back to calls.c: a failed commit (disk full) turns into errors for
 * unacknowledged spawns and inputs, and outcome writes are retried. store_flush may also be
 * called early, to make queued writes readable before a read.
 *
 * Tables (schema version 2):
 *   calls(call_id, input_id, function_id, parent_input_id, created, status, args, result,
 *         err_code, err_type, err_message, err_traceback, finished, expires,
 *         kind, n_inputs, closed, items)
 *     one row per durable call; a single call or spawned generator keeps its one input inline
 *     (input_id, args, the outcome); a spawn_map keeps its summary (status once complete).
 *   inputs(call_id, idx, input_id, status, args, result, err_code, err_type, err_message,
 *          err_traceback, finished)     the inputs of spawn_map calls
 *   gen_items(call_id, seq, value)      the items of spawned generators
 * Apps, functions and tokens change rarely; their modules run their own statements on
 * store_db() directly.
 */
#ifndef SKIFF_SERVER_STORE_H
#define SKIFF_SERVER_STORE_H

#include <skiff/skiff.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

struct call;
struct input;

/* Opens (creating or upgrading if needed) <data_dir>/skiff.db after a PRAGMA quick_check. 0, or
 * -1 with the reason logged: a corrupt database is refused, with how to recover it. */
int store_open(const char *data_dir);
void store_close(void);
sqlite3 *store_db(void);

enum store_write {
    SW_CALL,          /* insert a durable call (with input 0 inline for single / generator) */
    SW_CALL_OUTCOME,  /* a single call's outcome, or a spawn_map's summary once complete */
    SW_MAP_CLOSE,     /* a spawn_map's input count is final */
    SW_INPUT_OUTCOME, /* a spawn_map input's outcome */
};

/* Queues a write about call (and in, where the kind needs one). Counted in store_pending of
 * the input (when given) and of the call (all but SW_INPUT_OUTCOME) until the flush reports
 * back through
 * calls_call_committed / calls_input_committed. */
void store_queue(enum store_write kind, struct call *call, struct input *in);
/* Queues the insertion of spawn_map inputs start .. start+n-1 (in memory in call->inputs), and
 * with last the call's closing; reported through calls_inputs_committed(ack, ok). */
void store_queue_inputs(struct call *call, uint32_t start, uint32_t n, void *ack, bool last);
/* Queues a generator item (the payload is copied). Nothing is reported back: a failed commit
 * is logged and the items stay streamed to the callers that were connected. */
void store_queue_gen_item(struct call *call, uint32_t seq, const char *value, size_t len);
/* Queues the call-graph row of a final input of a call made from inside a function (in's
 * fields are read at the flush). */
void store_queue_graph(struct call *call, struct input *in);
/* One row of the call graph as stored. */
struct graph_row {
    const char *input_id, *call_id, *container_id; /* container_id may be NULL */
    const char *function;                          /* "app.function", or NULL: see function_id */
    const char *function_id;                       /* when function is NULL */
    uint32_t index;
    int status; /* enum call_status */
};
/* Calls cb for each finished input kept of call_id (parent NULL: from the graph table, or the
 * call's own tables for a durable call made from outside), or of the calls made by input parent
 * (call_id NULL), in call then index order. 0 or -1. */
int store_each_graph(const char *call_id, const char *parent,
                     void (*cb)(void *arg, const struct graph_row *row), void *arg);
/* True when writes are queued. */
bool store_pending(void);
/* Commits every queued write in one transaction and reports each back to calls.c. */
void store_flush(void);

/* An outcome as stored. */
struct stored_outcome {
    int status;      /* enum call_status */
    int64_t expires; /* unix ms; 0 while unfinished */
    char *result;    /* payload (ST_SUCCESS), malloc'd */
    size_t result_len;
    skiff_error err; /* failure */
};

/* A durable call as stored. */
struct stored_call {
    char function_id[32];
    int kind;        /* enum call_kind */
    int64_t created; /* unix ms */
    uint32_t n_inputs;
    uint32_t items;                /* generator items */
    struct stored_outcome outcome; /* single / generator: its input's; spawn_map: summary */
};

/* Reads call_id. 1 found (release with store_call_clear), 0 unknown, -1 database error. */
int store_get_call(const char *call_id, struct stored_call *out);
void store_call_clear(struct stored_call *sc);
/* Reads input index of a spawn_map. 1 found (release with store_outcome_clear), 0, -1. */
int store_get_input(const char *call_id, uint32_t index, struct stored_outcome *out);
void store_outcome_clear(struct stored_outcome *o);
/* Calls cb for every finished input of a spawn_map with index >= from, in index order. 0 or -1. */
int store_each_output(const char *call_id, uint32_t from,
                      void (*cb)(void *arg, uint32_t index, const struct stored_outcome *o),
                      void *arg);
/* Calls cb for every stored item of a generator with seq >= from, in order. 0 or -1. */
int store_each_item(const char *call_id, uint32_t from,
                    void (*cb)(void *arg, uint32_t seq, const char *value, size_t len), void *arg);

/* skiffd --check: opens <data_dir>/skiff.db read-only and runs a full PRAGMA integrity_check,
 * printing on stdout each problem, or "PATH: ok". 0 when whole, 1 when corrupt (with the recovery
 * logged), -1 when it could not be checked (logged). A running server may use it meanwhile. */
int store_check(const char *data_dir);

/* The number of stored items of a generator (the next item's seq), or -1 on a store error. */
int64_t store_count_items(const char *call_id);

/* At start-up: calls restore_call for each durable call still unfinished (oldest first), then
 * restore_input for each of its inputs still to run (the callee takes args). 0 or -1. */
struct store_restore {
    struct call *(*call)(const char *call_id, const char *parent, const char *function_id, int kind,
                         int64_t created, uint32_t n_inputs, bool closed, const void *params,
                         size_t params_len);
    void (*input)(struct call *call, uint32_t index, const char *input_id, char *args,
                  size_t args_len);
};
int store_load_unfinished(const struct store_restore *r);

/* Drops the results of calls whose retention ended before now_ms (they become ST_EXPIRED).
 * Returns how many, or -1. */
int store_expire(int64_t now_ms);

/* Seconds a durable call's outcome is kept (default 7 days); applies to outcomes written later. */
void store_set_retention(double seconds);

/* Milliseconds since the epoch. */
int64_t store_now_ms(void);

#endif
