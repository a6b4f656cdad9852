/*
 * store.h - the server's SQLite database: schema, group commit, and the calls table.
 *
 * One database file, <data>/skiff.db, in WAL mode with synchronous=FULL: a committed transaction
 * is on disk. Writes of the hot path (a spawned call, the outcome of a durable call) are not
 * executed when they happen: they are queued, and store_flush runs all of them in one transaction
 * once per loop iteration, before any reply leaves (conn_flush_all runs after it). One fsync
 * then covers every spawn of the iteration. The outcome of each write goes back to calls.c
 * (calls_spawn_committed / calls_outcome_committed): a failed commit (disk full) turns into
 * errors for the spawns, and outcome writes are retried.
 *
 * Apps, functions and tokens change rarely; their modules run their own statements on
 * store_db() directly.
 */
#ifndef SKIFF_SERVER_STORE_H
#define SKIFF_SERVER_STORE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <skiff/skiff.h>

struct call;

/* Opens (creating if needed) <data_dir>/skiff.db. 0, or -1 with the reason logged. */
int store_open(const char *data_dir);
void store_close(void);
sqlite3 *store_db(void);

/* Queues the insertion of a spawned call (with its arguments) / the outcome of a durable call.
 * call->store_pending counts them until the flush reports back. */
void store_queue_spawn(struct call *call);
void store_queue_outcome(struct call *call);
/* True when writes are queued. */
bool store_pending(void);
/* Commits every queued write in one transaction and reports each back to calls.c. */
void store_flush(void);

/* A finished or pending call as stored. */
struct stored_call {
    char function_id[32];
    int status;      /* enum call_status */
    int64_t created; /* unix ms */
    int64_t expires; /* unix ms; 0 while pending */
    char *result;    /* payload (ST_SUCCESS), malloc'd */
    size_t result_len;
    skiff_error err; /* failure */
};

/* Reads call_id. 1 found (release with store_call_clear), 0 unknown, -1 database error. */
int store_get_call(const char *call_id, struct stored_call *out);
void store_call_clear(struct stored_call *sc);

/* Calls cb for each call that was pending or running when the server last stopped, oldest
 * first; cb takes args. 0 or -1. */
int store_load_unfinished(void (*cb)(const char *call_id, const char *input_id, const char *parent,
                                     const char *function_id, int64_t created, char *args,
                                     size_t args_len));

/* Drops the results of calls whose retention ended before now_ms (they become ST_EXPIRED).
 * Returns how many, or -1. */
int store_expire(int64_t now_ms);

/* Seconds a durable call's outcome is kept (default 7 days); applies to outcomes written later. */
void store_set_retention(double seconds);

/* Milliseconds since the epoch. */
int64_t store_now_ms(void);

#endif
