/*
 * store.c - SQLite persistence with group commit (see store.h).
 */
#include "store.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "calls.h"
#include "common/log.h"
#include "common/mem.h"
#include "apps.h"

static sqlite3 *db;
static sqlite3_stmt *st_insert_call, *st_outcome, *st_get, *st_begin, *st_commit, *st_rollback;

/* The queue of writes for the next flush. */
enum write_kind { W_SPAWN, W_OUTCOME };
struct write {
    enum write_kind kind;
    struct call *call;
};
static struct write *writes;
static size_t n_writes, cap_writes;

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS tokens("
    "  token_id TEXT PRIMARY KEY, secret_hash BLOB NOT NULL, created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS apps("
    "  app_id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, stopped INTEGER NOT NULL,"
    "  version INTEGER NOT NULL, created INTEGER NOT NULL, code_path TEXT);"
    "CREATE TABLE IF NOT EXISTS functions("
    "  function_id TEXT PRIMARY KEY, app_id TEXT NOT NULL, name TEXT NOT NULL,"
    "  live INTEGER NOT NULL, version INTEGER NOT NULL, signature TEXT, timeout REAL NOT NULL,"
    "  max_containers INTEGER NOT NULL, min_containers INTEGER NOT NULL,"
    "  scaledown_window REAL NOT NULL, UNIQUE(app_id, name));"
    "CREATE TABLE IF NOT EXISTS calls("
    "  call_id TEXT PRIMARY KEY, input_id TEXT NOT NULL, function_id TEXT NOT NULL,"
    "  parent_input_id TEXT, created INTEGER NOT NULL, status INTEGER NOT NULL, args BLOB,"
    "  result BLOB, err_code INTEGER, err_type TEXT, err_message TEXT, err_traceback TEXT,"
    "  finished INTEGER, expires INTEGER);"
    "CREATE INDEX IF NOT EXISTS calls_unfinished ON calls(created) WHERE status < 2;"
    "CREATE INDEX IF NOT EXISTS calls_expires ON calls(expires) WHERE status BETWEEN 2 AND 6;";

int64_t store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int prepare(const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
        log_error("store: cannot prepare '%s': %s", sql, sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

int store_open(const char *data_dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/skiff.db", data_dir);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        log_error("store: cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        return -1;
    }
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL, &msg) !=
            SQLITE_OK ||
        sqlite3_exec(db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        log_error("store: cannot set up %s: %s", path, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    if (prepare("INSERT INTO calls(call_id, input_id, function_id, parent_input_id, created,"
                " status, args) VALUES(?1, ?2, ?3, ?4, ?5, 0, ?6)",
                &st_insert_call) ||
        prepare("UPDATE calls SET status = ?2, result = ?3, err_code = ?4, err_type = ?5,"
                " err_message = ?6, err_traceback = ?7, finished = ?8, expires = ?9, args = NULL"
                " WHERE call_id = ?1",
                &st_outcome) ||
        prepare("SELECT function_id, status, created, expires, result, err_code, err_type,"
                " err_message, err_traceback FROM calls WHERE call_id = ?1",
                &st_get) ||
        prepare("BEGIN", &st_begin) || prepare("COMMIT", &st_commit) ||
        prepare("ROLLBACK", &st_rollback))
        return -1;
    return 0;
}

void store_close(void)
{
    sqlite3_stmt *all[] = {st_insert_call, st_outcome, st_get, st_begin, st_commit, st_rollback};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sqlite3_finalize(all[i]);
    sqlite3_close(db);
    db = NULL;
    mem_free(writes);
    writes = NULL;
    n_writes = cap_writes = 0;
}

sqlite3 *store_db(void)
{
    return db;
}

static void queue(enum write_kind kind, struct call *call)
{
    if (n_writes == cap_writes) {
        size_t cap = cap_writes ? cap_writes * 2 : 256;
        struct write *w = mem_realloc(writes, cap * sizeof *w);
        if (!w) {
            /* Report the failure right away, as a failed commit would. */
            log_error("store: out of memory queueing a write");
            if (kind == W_SPAWN)
                calls_spawn_committed(call, false);
            else
                calls_outcome_committed(call, false);
            return;
        }
        writes = w;
        cap_writes = cap;
    }
    call->store_pending++;
    writes[n_writes++] = (struct write){kind, call};
}

void store_queue_spawn(struct call *call)
{
    queue(W_SPAWN, call);
}

void store_queue_outcome(struct call *call)
{
    queue(W_OUTCOME, call);
}

bool store_pending(void)
{
    return n_writes > 0;
}

static int step(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return s && *s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

static int exec_write(const struct write *w, double retention_ms)
{
    struct call *c = w->call;
    sqlite3_stmt *st;
    if (w->kind == W_SPAWN) {
        st = st_insert_call;
        sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, c->input_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, c->fn->id, -1, SQLITE_STATIC);
        bind_text(st, 4, c->parent);
        sqlite3_bind_int64(st, 5, c->created);
        sqlite3_bind_blob64(st, 6, c->args ? c->args : "", c->args_len, SQLITE_STATIC);
        return step(st);
    }
    st = st_outcome;
    int64_t now = store_now_ms();
    sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, c->status);
    if (c->status == ST_SUCCESS)
        sqlite3_bind_blob64(st, 3, c->result ? c->result : "", c->result_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    if (c->status != ST_SUCCESS) {
        sqlite3_bind_int(st, 4, c->err.code);
        bind_text(st, 5, c->err.type);
        bind_text(st, 6, c->err.message);
        bind_text(st, 7, c->err.traceback);
    }
    sqlite3_bind_int64(st, 8, now);
    sqlite3_bind_int64(st, 9, now + (int64_t)retention_ms);
    return step(st);
}

/* Retention, set by calls_init through store_set_retention. */
static double retention_ms = 7 * 24 * 3600 * 1000.0;

void store_set_retention(double seconds)
{
    retention_ms = seconds * 1000.0;
}

void store_flush(void)
{
    if (!n_writes)
        return;
    /* Take the batch: callbacks below may queue new writes for the next flush. */
    struct write *batch = writes;
    size_t n = n_writes;
    writes = NULL;
    n_writes = cap_writes = 0;

    int rc = step(st_begin);
    for (size_t i = 0; rc == SQLITE_OK && i < n; i++)
        rc = exec_write(&batch[i], retention_ms);
    if (rc == SQLITE_OK)
        rc = step(st_commit);
    bool ok = rc == SQLITE_OK;
    if (!ok) {
        log_error("store: commit of %zu writes failed: %s", n, sqlite3_errstr(rc));
        step(st_rollback);
    }
    for (size_t i = 0; i < n; i++) {
        struct call *c = batch[i].call;
        c->store_pending--;
        if (batch[i].kind == W_SPAWN)
            calls_spawn_committed(c, ok);
        else
            calls_outcome_committed(c, ok);
    }
    mem_free(batch);
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? mem_strdup((const char *)t) : NULL;
}

int store_get_call(const char *call_id, struct stored_call *out)
{
    sqlite3_stmt *st = st_get;
    sqlite3_bind_text(st, 1, call_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int found = 0;
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        snprintf(out->function_id, sizeof out->function_id, "%s",
                 (const char *)sqlite3_column_text(st, 0));
        out->status = sqlite3_column_int(st, 1);
        out->created = sqlite3_column_int64(st, 2);
        out->expires = sqlite3_column_int64(st, 3);
        found = 1;
        if (out->status == ST_SUCCESS) {
            int n = sqlite3_column_bytes(st, 4);
            const void *p = sqlite3_column_blob(st, 4);
            out->result = mem_alloc((size_t)n + 1);
            if (!out->result) {
                found = -1;
            } else {
                if (n)
                    memcpy(out->result, p, (size_t)n);
                out->result_len = (size_t)n;
            }
        } else if (out->status > ST_SUCCESS) {
            out->err.code = (skiff_code)sqlite3_column_int(st, 5);
            out->err.type = col_dup(st, 6);
            out->err.message = col_dup(st, 7);
            out->err.traceback = col_dup(st, 8);
        }
    } else if (rc != SQLITE_DONE) {
        log_error("store: reading call %s: %s", call_id, sqlite3_errmsg(db));
        found = -1;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return found;
}

void store_call_clear(struct stored_call *sc)
{
    mem_free(sc->result);
    skiff_error_clear(&sc->err);
    sc->result = NULL;
}

int store_load_unfinished(void (*cb)(const char *, const char *, const char *, const char *,
                                     int64_t, char *, size_t))
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT call_id, input_id, parent_input_id, function_id, created, args"
                           " FROM calls WHERE status < 2 ORDER BY created, call_id",
                           -1, &st, NULL) != SQLITE_OK) {
        log_error("store: %s", sqlite3_errmsg(db));
        return -1;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int n = sqlite3_column_bytes(st, 5);
        char *args = mem_alloc((size_t)n + 1);
        if (!args) {
            rc = SQLITE_NOMEM;
            break;
        }
        if (n)
            memcpy(args, sqlite3_column_blob(st, 5), (size_t)n);
        const char *parent = (const char *)sqlite3_column_text(st, 2);
        cb((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
           parent ? parent : "", (const char *)sqlite3_column_text(st, 3),
           sqlite3_column_int64(st, 4), args, (size_t)n);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        log_error("store: loading unfinished calls: %s", sqlite3_errstr(rc));
        return -1;
    }
    return 0;
}

int store_expire(int64_t now_ms)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "UPDATE calls SET status = 7, result = NULL, err_code = NULL,"
                           " err_type = NULL, err_message = NULL, err_traceback = NULL"
                           " WHERE status BETWEEN 2 AND 6 AND expires < ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, now_ms);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? sqlite3_changes(db) : -1;
}
