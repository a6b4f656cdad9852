/*
 * store.c - SQLite persistence with group commit (see store.h).
 *
 * The write queue holds small records that point at the calls and inputs they are about; the
 * payloads stay where they are (in the input) until the flush binds them with SQLITE_STATIC, so
 * queueing a write copies nothing. Generator items are the exception: the item is not kept
 * anywhere else, so its record owns a copy.
 */
#include "store.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "apps.h"
#include "calls.h"
#include "common/log.h"
#include "common/mem.h"
#include "metrics.h"

static sqlite3 *db;

enum stmt_id {
    S_INSERT_CALL,
    S_CALL_OUTCOME,
    S_MAP_SUMMARY,
    S_MAP_CLOSE,
    S_INSERT_INPUT,
    S_INPUT_OUTCOME,
    S_INSERT_ITEM,
    S_INSERT_GRAPH,
    S_GET_CALL,
    S_GET_INPUT,
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_COUNT
};
static sqlite3_stmt *st[S_COUNT];

static const char *const stmt_sql[S_COUNT] = {
    [S_INSERT_CALL] = "INSERT INTO calls(call_id, input_id, function_id, parent_input_id, created,"
                      " status, args, kind, n_inputs, closed, items, params)"
                      " VALUES(?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8, ?9, 0, ?10)",
    [S_CALL_OUTCOME] = "UPDATE calls SET status = ?2, result = ?3, err_code = ?4, err_type = ?5,"
                       " err_message = ?6, err_traceback = ?7, finished = ?8, expires = ?9,"
                       " args = NULL, items = ?10, container_id = ?11 WHERE call_id = ?1",
    [S_MAP_SUMMARY] = "UPDATE calls SET status = ?2, finished = ?3, expires = ?4, n_inputs = ?5,"
                      " closed = 1 WHERE call_id = ?1",
    [S_MAP_CLOSE] = "UPDATE calls SET n_inputs = ?2, closed = 1 WHERE call_id = ?1",
    [S_INSERT_INPUT] = "INSERT INTO inputs(call_id, idx, input_id, status, args)"
                       " VALUES(?1, ?2, ?3, 0, ?4)",
    [S_INPUT_OUTCOME] = "UPDATE inputs SET status = ?3, result = ?4, err_code = ?5,"
                        " err_type = ?6, err_message = ?7, err_traceback = ?8, finished = ?9,"
                        " args = NULL, container_id = ?10 WHERE call_id = ?1 AND idx = ?2",
    [S_INSERT_ITEM] = "INSERT OR REPLACE INTO gen_items(call_id, seq, value) VALUES(?1, ?2, ?3)",
    [S_INSERT_GRAPH] = "INSERT OR REPLACE INTO graph(input_id, call_id, idx, parent_input_id,"
                       " function, container_id, status, finished)"
                       " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [S_GET_CALL] = "SELECT function_id, status, created, expires, result, err_code, err_type,"
                   " err_message, err_traceback, kind, n_inputs, items FROM calls"
                   " WHERE call_id = ?1",
    [S_GET_INPUT] = "SELECT i.status, c.expires, i.result, i.err_code, i.err_type,"
                    " i.err_message, i.err_traceback, i.finished FROM inputs i"
                    " JOIN calls c USING(call_id) WHERE i.call_id = ?1 AND i.idx = ?2",
    [S_BEGIN] = "BEGIN",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
};

/* The queue of writes for the next flush. */
enum rec_kind { R_CALL, R_CALL_OUTCOME, R_MAP_CLOSE, R_INPUT_OUTCOME, R_INPUTS, R_ITEM, R_GRAPH };
struct rec {
    enum rec_kind kind;
    struct call *call;
    struct input *in;
    uint32_t start, n; /* R_INPUTS: the range; R_ITEM: seq in start */
    bool last;         /* R_INPUTS: closes the call */
    void *ack;         /* R_INPUTS */
    char *value;       /* R_ITEM: the item (owned) */
    size_t len;
};
static struct rec *recs;
static size_t n_recs, cap_recs;

/* Schema version 2 (PRAGMA user_version). Version 1 databases (skiffd 0.1) get the new columns
 * and tables; nothing is rewritten. */
#define SCHEMA_VERSION 2

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS tokens("
    "  token_id TEXT PRIMARY KEY, secret_hash BLOB NOT NULL, created INTEGER NOT NULL,"
    "  scope TEXT NOT NULL DEFAULT 'admin', expires INTEGER, last_used INTEGER);"
    "CREATE TABLE IF NOT EXISTS apps("
    "  app_id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, stopped INTEGER NOT NULL,"
    "  version INTEGER NOT NULL, created INTEGER NOT NULL, code_path TEXT);"
    "CREATE TABLE IF NOT EXISTS functions("
    "  function_id TEXT PRIMARY KEY, app_id TEXT NOT NULL, name TEXT NOT NULL,"
    "  live INTEGER NOT NULL, version INTEGER NOT NULL, signature TEXT, timeout REAL NOT NULL,"
    "  max_containers INTEGER NOT NULL, min_containers INTEGER NOT NULL,"
    "  scaledown_window REAL NOT NULL, config BLOB, is_class INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE(app_id, name));"
    "CREATE TABLE IF NOT EXISTS calls("
    "  call_id TEXT PRIMARY KEY, input_id TEXT NOT NULL, function_id TEXT NOT NULL,"
    "  parent_input_id TEXT, created INTEGER NOT NULL, status INTEGER NOT NULL, args BLOB,"
    "  result BLOB, err_code INTEGER, err_type TEXT, err_message TEXT, err_traceback TEXT,"
    "  finished INTEGER, expires INTEGER, kind INTEGER NOT NULL DEFAULT 0,"
    "  n_inputs INTEGER NOT NULL DEFAULT 1, closed INTEGER NOT NULL DEFAULT 1,"
    "  items INTEGER NOT NULL DEFAULT 0, params BLOB, container_id TEXT);"
    "CREATE INDEX IF NOT EXISTS calls_unfinished ON calls(created) WHERE status < 2;"
    "CREATE INDEX IF NOT EXISTS calls_expires ON calls(expires) WHERE status BETWEEN 2 AND 6;"
    "CREATE TABLE IF NOT EXISTS inputs("
    "  call_id TEXT NOT NULL, idx INTEGER NOT NULL, input_id TEXT NOT NULL,"
    "  status INTEGER NOT NULL, args BLOB, result BLOB, err_code INTEGER, err_type TEXT,"
    "  err_message TEXT, err_traceback TEXT, finished INTEGER, container_id TEXT,"
    "  PRIMARY KEY(call_id, idx)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS graph("
    "  input_id TEXT PRIMARY KEY, call_id TEXT NOT NULL, idx INTEGER NOT NULL,"
    "  parent_input_id TEXT, function TEXT NOT NULL, container_id TEXT, status INTEGER NOT NULL,"
    "  finished INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS graph_parent ON graph(parent_input_id) WHERE"
    "  parent_input_id IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS graph_call ON graph(call_id, idx);"
    "CREATE TABLE IF NOT EXISTS gen_items("
    "  call_id TEXT NOT NULL, seq INTEGER NOT NULL, value BLOB NOT NULL,"
    "  PRIMARY KEY(call_id, seq)) WITHOUT ROWID;";

/* Columns version 2 added to the tables of version 1. */
static const struct {
    const char *table, *column, *sql;
} upgrade_1_2[] = {
    {"calls", "kind", "ALTER TABLE calls ADD COLUMN kind INTEGER NOT NULL DEFAULT 0"},
    {"calls", "n_inputs", "ALTER TABLE calls ADD COLUMN n_inputs INTEGER NOT NULL DEFAULT 1"},
    {"calls", "closed", "ALTER TABLE calls ADD COLUMN closed INTEGER NOT NULL DEFAULT 1"},
    {"calls", "items", "ALTER TABLE calls ADD COLUMN items INTEGER NOT NULL DEFAULT 0"},
    {"calls", "params", "ALTER TABLE calls ADD COLUMN params BLOB"},
    {"calls", "container_id", "ALTER TABLE calls ADD COLUMN container_id TEXT"},
    {"inputs", "container_id", "ALTER TABLE inputs ADD COLUMN container_id TEXT"},
    {"functions", "config", "ALTER TABLE functions ADD COLUMN config BLOB"},
    {"functions", "is_class",
     "ALTER TABLE functions ADD COLUMN is_class INTEGER NOT NULL DEFAULT 0"},
    /* Token scopes (auth.h): the tokens of an older skiffd could do everything, so they stay
     * admin tokens; expires in unix ms (NULL: never), last_used in unix s. */
    {"tokens", "scope", "ALTER TABLE tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'admin'"},
    {"tokens", "expires", "ALTER TABLE tokens ADD COLUMN expires INTEGER"},
    {"tokens", "last_used", "ALTER TABLE tokens ADD COLUMN last_used INTEGER"},
    /* Apps deployed for one client's run (`skiff run`), removed when it leaves (apps.h). */
    {"apps", "ephemeral", "ALTER TABLE apps ADD COLUMN ephemeral INTEGER NOT NULL DEFAULT 0"},
};

int64_t store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int exec(const char *sql, const char *path)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    log_error("store: cannot set up %s: %s", path, msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return -1;
}

/* True if table has the column name. */
static bool has_column(const char *table, const char *name)
{
    sqlite3_stmt *s;
    bool found = false;
    if (sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info(?1)", -1, &s, NULL) != SQLITE_OK)
        return false;
    sqlite3_bind_text(s, 1, table, -1, SQLITE_STATIC);
    while (sqlite3_step(s) == SQLITE_ROW)
        if (!strcmp((const char *)sqlite3_column_text(s, 0), name))
            found = true;
    sqlite3_finalize(s);
    return found;
}

/* How many problems a check reports at most: enough to judge the damage. */
#define CHECK_MAX_ERRORS 20

/* Says that the database at path is corrupt (what: the first problem found) and how to recover
 * (docs/server.md, "A corrupt store"). */
static void say_corrupt(const char *path, const char *what)
{
    log_error("store: %s is corrupt: %s", path, what);
    log_error("store: refusing to start on it. To recover what it holds: stop skiffd, keep the "
              "corrupt files (skiff.db, skiff.db-wal, skiff.db-shm) aside, run `sqlite3 %s "
              ".recover | sqlite3 %s.recovered` (or, with a sqlite3 shell that lacks .recover, "
              ".dump with its final ROLLBACK made a COMMIT), check the new file with `skiffd "
              "--check`, then put it in place as skiff.db with no -wal or -shm beside it "
              "(docs/server.md, \"A corrupt store\")",
              path, path);
}

/* Runs PRAGMA pragma (quick_check or integrity_check) on the open database db_ at path; each
 * problem found is printed on out (NULL: logged). 0 when it says ok, 1 when the database is
 * corrupt (said once, or each problem on out), -1 when it could not tell (logged). */
static int check_db(sqlite3 *db_, const char *path, const char *pragma, FILE *out)
{
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA %s(%d)", pragma, CHECK_MAX_ERRORS);
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(db_, sql, -1, &s, NULL);
    int problems = 0;
    char first[512] = "";
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        if ((rc = sqlite3_step(s)) != SQLITE_ROW)
            break;
        const char *row = (const char *)sqlite3_column_text(s, 0);
        if (row && !strcmp(row, "ok"))
            continue;
        if (!problems++)
            snprintf(first, sizeof first, "%s", row ? row : "?");
        if (out)
            fprintf(out, "%s: %s\n", path, row ? row : "?");
    }
    int code = sqlite3_errcode(db_) & 0xff;
    if (rc != SQLITE_DONE && (code == SQLITE_CORRUPT || code == SQLITE_NOTADB)) {
        snprintf(first, sizeof first, "%s", sqlite3_errmsg(db_));
        if (out)
            fprintf(out, "%s: %s\n", path, first);
        problems++;
    } else if (rc != SQLITE_DONE) {
        log_error("store: cannot check %s: %s", path, sqlite3_errmsg(db_));
        sqlite3_finalize(s);
        return -1;
    }
    sqlite3_finalize(s);
    if (problems && !out)
        say_corrupt(path, first);
    return problems ? 1 : 0;
}

int store_check(const char *data_dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/skiff.db", data_dir);
    sqlite3 *d = NULL;
    if (sqlite3_open_v2(path, &d, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        log_error("store: cannot open %s: %s", path, d ? sqlite3_errmsg(d) : "out of memory");
        sqlite3_close(d);
        return -1;
    }
    sqlite3_busy_timeout(d, 5000);
    int rc = check_db(d, path, "integrity_check", stdout);
    sqlite3_close(d);
    if (rc == 0)
        printf("%s: ok\n", path);
    else if (rc > 0)
        say_corrupt(path, "PRAGMA integrity_check found the problems above");
    return rc;
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
    /* Before anything writes to it: a corrupt database served as if it were whole loses calls,
     * apps and tokens without a word (docs/server.md has the cost of this check). */
    if (check_db(db, path, "quick_check", NULL) != 0)
        return -1;
    if (exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", path) < 0 ||
        exec(schema, path) < 0)
        return -1;
    for (size_t i = 0; i < sizeof upgrade_1_2 / sizeof upgrade_1_2[0]; i++)
        if (!has_column(upgrade_1_2[i].table, upgrade_1_2[i].column) &&
            exec(upgrade_1_2[i].sql, path) < 0)
            return -1;
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d;", SCHEMA_VERSION);
    if (exec(pragma, path) < 0)
        return -1;
    for (int i = 0; i < S_COUNT; i++)
        if (sqlite3_prepare_v3(db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st[i], NULL) !=
            SQLITE_OK) {
            log_error("store: cannot prepare '%s': %s", stmt_sql[i], sqlite3_errmsg(db));
            return -1;
        }
    return 0;
}

void store_close(void)
{
    for (int i = 0; i < S_COUNT; i++) {
        sqlite3_finalize(st[i]);
        st[i] = NULL;
    }
    sqlite3_close(db);
    db = NULL;
    for (size_t i = 0; i < n_recs; i++)
        mem_free(recs[i].value);
    mem_free(recs);
    recs = NULL;
    n_recs = cap_recs = 0;
}

sqlite3 *store_db(void)
{
    return db;
}

/* --- the write queue -------------------------------------------------------------------------- */

/* Reports a write's failure at once, as a failed commit would. */
static void report(const struct rec *r, bool ok)
{
    switch (r->kind) {
    case R_CALL:
    case R_CALL_OUTCOME:
    case R_MAP_CLOSE:
        calls_call_committed(r->call, ok);
        break;
    case R_INPUT_OUTCOME:
        calls_input_committed(r->in, ok);
        break;
    case R_INPUTS:
        calls_inputs_committed(r->ack, ok);
        break;
    case R_ITEM:
        if (!ok)
            log_error("store: lost item %u of generator call %s", r->start, r->call->id);
        break;
    case R_GRAPH:
        calls_input_committed(r->in, true); /* the graph is best effort: nothing to retry */
        break;
    }
}

/* Counts a queued write in store_pending of what it points at (delta 1), or uncounts it (-1). */
static void hold(const struct rec *r, int delta)
{
    if (r->in)
        r->in->store_pending += delta;
    if (r->kind == R_CALL || r->kind == R_CALL_OUTCOME || r->kind == R_MAP_CLOSE)
        r->call->store_pending += delta;
}

static void push(struct rec r)
{
    if (n_recs == cap_recs) {
        size_t cap = cap_recs ? cap_recs * 2 : 256;
        struct rec *p = mem_realloc(recs, cap * sizeof *p);
        if (!p) {
            log_error("store: out of memory queueing a write");
            mem_free(r.value);
            report(&r, false); /* as a failed commit would */
            return;
        }
        recs = p;
        cap_recs = cap;
    }
    hold(&r, 1);
    recs[n_recs++] = r;
}

void store_queue(enum store_write kind, struct call *call, struct input *in)
{
    static const enum rec_kind map[] = {
        [SW_CALL] = R_CALL,
        [SW_CALL_OUTCOME] = R_CALL_OUTCOME,
        [SW_MAP_CLOSE] = R_MAP_CLOSE,
        [SW_INPUT_OUTCOME] = R_INPUT_OUTCOME,
    };
    push((struct rec){.kind = map[kind], .call = call, .in = in});
}

void store_queue_inputs(struct call *call, uint32_t start, uint32_t n, void *ack, bool last)
{
    push((struct rec){
        .kind = R_INPUTS, .call = call, .start = start, .n = n, .ack = ack, .last = last});
}

void store_queue_graph(struct call *call, struct input *in)
{
    push((struct rec){.kind = R_GRAPH, .call = call, .in = in});
}

void store_queue_gen_item(struct call *call, uint32_t seq, const char *value, size_t len)
{
    char *copy = mem_alloc(len ? len : 1);
    if (!copy) {
        log_error("store: out of memory keeping item %u of %s", seq, call->id);
        return;
    }
    if (len)
        memcpy(copy, value, len);
    push((struct rec){.kind = R_ITEM, .call = call, .start = seq, .value = copy, .len = len});
}

bool store_pending(void)
{
    return n_recs > 0;
}

/* --- executing writes ------------------------------------------------------------------------- */

static int step(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static void bind_text(sqlite3_stmt *s, int i, const char *t)
{
    if (t && *t)
        sqlite3_bind_text(s, i, t, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

/* Binds an input's outcome to columns status .. finished starting at column i. */
static void bind_outcome(sqlite3_stmt *s, int i, const struct input *in, int64_t now)
{
    sqlite3_bind_int(s, i, in->status);
    if (in->status == ST_SUCCESS)
        sqlite3_bind_blob64(s, i + 1, in->result ? in->result : "", in->result_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i + 1);
    if (in->status != ST_SUCCESS) {
        sqlite3_bind_int(s, i + 2, in->err.code);
        bind_text(s, i + 3, in->err.type);
        bind_text(s, i + 4, in->err.message);
        bind_text(s, i + 5, in->err.traceback);
    }
    sqlite3_bind_int64(s, i + 6, now);
}

/* Retention, set by calls_init through store_set_retention. */
static double retention_ms = 7 * 24 * 3600 * 1000.0;

void store_set_retention(double seconds)
{
    retention_ms = seconds * 1000.0;
}

static int exec_call(const struct rec *r)
{
    const struct call *c = r->call;
    const struct input *in = r->in;
    sqlite3_stmt *s = st[S_INSERT_CALL];
    sqlite3_bind_text(s, 1, c->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, in ? in->id : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, c->fn->id, -1, SQLITE_STATIC);
    bind_text(s, 4, c->parent);
    sqlite3_bind_int64(s, 5, c->created);
    if (in)
        sqlite3_bind_blob64(s, 6, in->args ? in->args : "", in->args_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 6);
    sqlite3_bind_int(s, 7, c->kind);
    sqlite3_bind_int64(s, 8, c->n_inputs);
    sqlite3_bind_int(s, 9, c->closed);
    if (c->pool && c->pool->params)
        sqlite3_bind_blob64(s, 10, c->pool->params, c->pool->params_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 10);
    return step(s);
}

static int exec_call_outcome(const struct rec *r, int64_t now)
{
    const struct call *c = r->call;
    sqlite3_stmt *s;
    if (!r->in) {
        /* A spawn_map's summary, once every input is final. */
        s = st[S_MAP_SUMMARY];
        sqlite3_bind_text(s, 1, c->id, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2,
                         c->cancelled  ? ST_TERMINATED
                         : c->n_failed ? ST_FAILURE
                                       : ST_SUCCESS);
        sqlite3_bind_int64(s, 3, now);
        sqlite3_bind_int64(s, 4, now + (int64_t)retention_ms);
        sqlite3_bind_int64(s, 5, c->n_inputs);
        return step(s);
    }
    s = st[S_CALL_OUTCOME];
    sqlite3_bind_text(s, 1, c->id, -1, SQLITE_STATIC);
    bind_outcome(s, 2, r->in, now);
    sqlite3_bind_int64(s, 9, now + (int64_t)retention_ms);
    sqlite3_bind_int64(s, 10, r->in->gen_items);
    bind_text(s, 11, r->in->ran_on);
    return step(s);
}

static int exec_inputs(const struct rec *r)
{
    sqlite3_stmt *s = st[S_INSERT_INPUT];
    int rc = SQLITE_OK;
    for (uint32_t i = r->start; rc == SQLITE_OK && i < r->start + r->n; i++) {
        const struct input *in = calls_input_at(r->call, i);
        if (!in)
            continue;
        sqlite3_bind_text(s, 1, r->call->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, i);
        sqlite3_bind_text(s, 3, in->id, -1, SQLITE_STATIC);
        sqlite3_bind_blob64(s, 4, in->args ? in->args : "", in->args_len, SQLITE_STATIC);
        rc = step(s);
    }
    if (rc == SQLITE_OK && r->last) {
        s = st[S_MAP_CLOSE];
        sqlite3_bind_text(s, 1, r->call->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, r->start + r->n);
        rc = step(s);
    }
    return rc;
}

static int exec_rec(const struct rec *r, int64_t now)
{
    sqlite3_stmt *s;
    switch (r->kind) {
    case R_CALL:
        return exec_call(r);
    case R_CALL_OUTCOME:
        return exec_call_outcome(r, now);
    case R_MAP_CLOSE:
        s = st[S_MAP_CLOSE];
        sqlite3_bind_text(s, 1, r->call->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, r->call->n_inputs);
        return step(s);
    case R_INPUT_OUTCOME:
        s = st[S_INPUT_OUTCOME];
        sqlite3_bind_text(s, 1, r->call->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, r->in->index);
        bind_outcome(s, 3, r->in, now);
        bind_text(s, 10, r->in->ran_on);
        return step(s);
    case R_INPUTS:
        return exec_inputs(r);
    case R_GRAPH: {
        s = st[S_INSERT_GRAPH];
        char function[2 * 64 + 2];
        snprintf(function, sizeof function, "%s.%s", r->call->fn->app->name, r->call->fn->name);
        sqlite3_bind_text(s, 1, r->in->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, r->call->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, r->in->index);
        bind_text(s, 4, r->call->parent);
        sqlite3_bind_text(s, 5, function, -1, SQLITE_TRANSIENT);
        bind_text(s, 6, r->in->ran_on);
        sqlite3_bind_int(s, 7, r->in->status);
        sqlite3_bind_int64(s, 8, now);
        /* Best effort: a failed graph row does not fail the commit. */
        if (step(s) != SQLITE_OK)
            log_warn("store: cannot record input %s in the call graph", r->in->id);
        return SQLITE_OK;
    }
    case R_ITEM:
        s = st[S_INSERT_ITEM];
        sqlite3_bind_text(s, 1, r->call->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, r->start);
        sqlite3_bind_blob64(s, 3, r->value, r->len, SQLITE_STATIC);
        return step(s);
    }
    return SQLITE_MISUSE;
}

void store_flush(void)
{
    if (!n_recs)
        return;
    /* Take the batch: callbacks below may queue new writes for the next flush. */
    struct rec *batch = recs;
    size_t n = n_recs;
    recs = NULL;
    n_recs = cap_recs = 0;

    int64_t now = store_now_ms();
    uint64_t t0 = uv_hrtime();
    int rc = step(st[S_BEGIN]);
    for (size_t i = 0; rc == SQLITE_OK && i < n; i++)
        rc = exec_rec(&batch[i], now);
    if (rc == SQLITE_OK)
        rc = step(st[S_COMMIT]);
    bool ok = rc == SQLITE_OK;
    metrics_store_commit((double)(uv_hrtime() - t0) / 1e9);
    if (!ok) {
        log_error("store: commit of %zu writes failed: %s", n, sqlite3_errstr(rc));
        step(st[S_ROLLBACK]);
    }
    for (size_t i = 0; i < n; i++) {
        struct rec *r = &batch[i];
        hold(r, -1);
        report(r, ok);
        mem_free(r->value);
    }
    mem_free(batch);
}

/* --- reads ------------------------------------------------------------------------------------ */

static char *col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? mem_strdup((const char *)t) : NULL;
}

/* Reads an outcome from columns status (i), result (r), err_code .. err_traceback (e .. e+3).
 * 0, or -1 when out of memory. */
static int read_outcome(sqlite3_stmt *s, int i, int r, int e, struct stored_outcome *o)
{
    o->status = sqlite3_column_int(s, i);
    if (o->status == ST_SUCCESS) {
        int n = sqlite3_column_bytes(s, r);
        const void *p = sqlite3_column_blob(s, r);
        o->result = mem_alloc((size_t)n + 1);
        if (!o->result)
            return -1;
        if (n)
            memcpy(o->result, p, (size_t)n);
        o->result_len = (size_t)n;
    } else if (o->status > ST_SUCCESS) {
        o->err.code = (skiff_code)sqlite3_column_int(s, e);
        o->err.type = col_dup(s, e + 1);
        o->err.message = col_dup(s, e + 2);
        o->err.traceback = col_dup(s, e + 3);
    }
    return 0;
}

int store_get_call(const char *call_id, struct stored_call *out)
{
    sqlite3_stmt *s = st[S_GET_CALL];
    sqlite3_bind_text(s, 1, call_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    int found = 0;
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        snprintf(out->function_id, sizeof out->function_id, "%s",
                 (const char *)sqlite3_column_text(s, 0));
        out->created = sqlite3_column_int64(s, 2);
        out->outcome.expires = sqlite3_column_int64(s, 3);
        out->kind = sqlite3_column_int(s, 9);
        out->n_inputs = (uint32_t)sqlite3_column_int64(s, 10);
        out->items = (uint32_t)sqlite3_column_int64(s, 11);
        found = read_outcome(s, 1, 4, 5, &out->outcome) < 0 ? -1 : 1;
    } else if (rc != SQLITE_DONE) {
        log_error("store: reading call %s: %s", call_id, sqlite3_errmsg(db));
        found = -1;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return found;
}

void store_outcome_clear(struct stored_outcome *o)
{
    mem_free(o->result);
    o->result = NULL;
    skiff_error_clear(&o->err);
}

void store_call_clear(struct stored_call *sc)
{
    store_outcome_clear(&sc->outcome);
}

int store_get_input(const char *call_id, uint32_t index, struct stored_outcome *out)
{
    sqlite3_stmt *s = st[S_GET_INPUT];
    sqlite3_bind_text(s, 1, call_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, index);
    int rc = sqlite3_step(s);
    int found = 0;
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        /* The retention runs from the call's end, or the input's if the call is still open. */
        out->expires = sqlite3_column_int64(s, 1);
        if (!out->expires && sqlite3_column_type(s, 7) != SQLITE_NULL)
            out->expires = sqlite3_column_int64(s, 7) + (int64_t)retention_ms;
        found = read_outcome(s, 0, 2, 3, out) < 0 ? -1 : 1;
    } else if (rc != SQLITE_DONE) {
        log_error("store: reading input %u of %s: %s", index, call_id, sqlite3_errmsg(db));
        found = -1;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return found;
}

int store_each_output(const char *call_id, uint32_t from,
                      void (*cb)(void *arg, uint32_t index, const struct stored_outcome *o),
                      void *arg)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db,
                           "SELECT i.idx, i.status, c.expires, i.result, i.err_code, i.err_type,"
                           " i.err_message, i.err_traceback FROM inputs i JOIN calls c"
                           " USING(call_id) WHERE i.call_id = ?1 AND i.idx >= ?2 AND"
                           " i.status >= 2 ORDER BY i.idx",
                           -1, &s, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(s, 1, call_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, from);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct stored_outcome o = {0};
        o.expires = sqlite3_column_int64(s, 2);
        if (read_outcome(s, 1, 3, 4, &o) < 0) {
            rc = SQLITE_NOMEM;
            break;
        }
        cb(arg, (uint32_t)sqlite3_column_int64(s, 0), &o);
        store_outcome_clear(&o);
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

int store_each_item(const char *call_id, uint32_t from,
                    void (*cb)(void *arg, uint32_t seq, const char *value, size_t len), void *arg)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db,
                           "SELECT seq, value FROM gen_items WHERE call_id = ?1 AND seq >= ?2"
                           " ORDER BY seq",
                           -1, &s, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(s, 1, call_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, from);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        cb(arg, (uint32_t)sqlite3_column_int64(s, 0), sqlite3_column_blob(s, 1),
           (size_t)sqlite3_column_bytes(s, 1));
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

int64_t store_count_items(const char *call_id)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(seq) + 1, 0) FROM gen_items WHERE call_id = ?1",
                           -1, &s, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(s, 1, call_id, -1, SQLITE_STATIC);
    int64_t n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_finalize(s);
    return n;
}

/* Runs sql (binding text a to ?1) and calls cb with a row made of its columns: input_id,
 * call_id, idx, function (NULL: see function_id), function_id, container_id, status. */
static int each_graph_row(const char *sql, const char *a,
                          void (*cb)(void *arg, const struct graph_row *row), void *arg, int *rows)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(s, 1, a, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct graph_row row = {
            .input_id = (const char *)sqlite3_column_text(s, 0),
            .call_id = (const char *)sqlite3_column_text(s, 1),
            .index = (uint32_t)sqlite3_column_int64(s, 2),
            .function = (const char *)sqlite3_column_text(s, 3),
            .function_id = (const char *)sqlite3_column_text(s, 4),
            .container_id = (const char *)sqlite3_column_text(s, 5),
            .status = sqlite3_column_int(s, 6),
        };
        cb(arg, &row);
        (*rows)++;
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

int store_each_graph(const char *call_id, const char *parent,
                     void (*cb)(void *arg, const struct graph_row *row), void *arg)
{
    int rows = 0;
    if (parent)
        return each_graph_row("SELECT input_id, call_id, idx, function, NULL, container_id, status"
                              " FROM graph WHERE parent_input_id = ?1 ORDER BY call_id, idx",
                              parent, cb, arg, &rows);
    /* A call made from inside a function has graph rows; any other durable call keeps its
     * finished inputs, with the container that ran them, in its own tables. */
    if (each_graph_row("SELECT input_id, call_id, idx, function, NULL, container_id, status"
                       " FROM graph WHERE call_id = ?1 ORDER BY idx",
                       call_id, cb, arg, &rows) < 0)
        return -1;
    if (rows)
        return 0;
    if (each_graph_row("SELECT i.input_id, i.call_id, i.idx, NULL, c.function_id,"
                       " i.container_id, i.status FROM inputs i JOIN calls c USING(call_id)"
                       " WHERE i.call_id = ?1 AND i.status >= 2 ORDER BY i.idx",
                       call_id, cb, arg, &rows) < 0)
        return -1;
    if (rows)
        return 0;
    return each_graph_row("SELECT input_id, call_id, 0, NULL, function_id, container_id, status"
                          " FROM calls WHERE call_id = ?1 AND kind != 2 AND status BETWEEN 2 AND 6",
                          call_id, cb, arg, &rows);
}

/* Restores the unfinished inputs of one spawn_map. */
static int load_map_inputs(const struct store_restore *r, struct call *call, const char *call_id)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db,
                           "SELECT idx, input_id, args FROM inputs WHERE call_id = ?1 AND"
                           " status < 2 ORDER BY idx",
                           -1, &s, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(s, 1, call_id, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int n = sqlite3_column_bytes(s, 2);
        char *args = mem_alloc((size_t)n + 1);
        if (!args) {
            rc = SQLITE_NOMEM;
            break;
        }
        if (n)
            memcpy(args, sqlite3_column_blob(s, 2), (size_t)n);
        r->input(call, (uint32_t)sqlite3_column_int64(s, 0),
                 (const char *)sqlite3_column_text(s, 1), args, (size_t)n);
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

int store_load_unfinished(const struct store_restore *r)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db,
                           "SELECT call_id, input_id, parent_input_id, function_id, created, args,"
                           " kind, n_inputs, closed, params FROM calls WHERE status < 2"
                           " ORDER BY created, call_id",
                           -1, &s, NULL) != SQLITE_OK) {
        log_error("store: %s", sqlite3_errmsg(db));
        return -1;
    }
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *call_id = (const char *)sqlite3_column_text(s, 0);
        const char *parent = (const char *)sqlite3_column_text(s, 2);
        int kind = sqlite3_column_int(s, 6);
        uint32_t n_inputs = (uint32_t)sqlite3_column_int64(s, 7);
        struct call *call =
            r->call(call_id, parent ? parent : "", (const char *)sqlite3_column_text(s, 3), kind,
                    sqlite3_column_int64(s, 4), n_inputs, sqlite3_column_int(s, 8) != 0,
                    sqlite3_column_blob(s, 9), (size_t)sqlite3_column_bytes(s, 9));
        if (!call)
            continue;
        if (kind == CK_SPAWN_MAP) {
            if (load_map_inputs(r, call, call_id) < 0) {
                rc = SQLITE_ERROR;
                break;
            }
            continue;
        }
        int n = sqlite3_column_bytes(s, 5);
        char *args = mem_alloc((size_t)n + 1);
        if (!args) {
            rc = SQLITE_NOMEM;
            break;
        }
        if (n)
            memcpy(args, sqlite3_column_blob(s, 5), (size_t)n);
        r->input(call, 0, (const char *)sqlite3_column_text(s, 1), args, (size_t)n);
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) {
        log_error("store: loading unfinished calls: %s", sqlite3_errstr(rc));
        return -1;
    }
    return 0;
}

int store_expire(int64_t now_ms)
{
    static const char *const sql[] = {
        "UPDATE calls SET status = 7, result = NULL, err_code = NULL, err_type = NULL,"
        " err_message = NULL, err_traceback = NULL WHERE status BETWEEN 2 AND 6 AND expires < ?1",
        "DELETE FROM inputs WHERE call_id IN (SELECT call_id FROM calls WHERE status = 7"
        " AND kind = 2)",
        "DELETE FROM gen_items WHERE call_id IN (SELECT call_id FROM calls WHERE status = 7"
        " AND kind = 3)",
        "DELETE FROM graph WHERE finished < ?1 - ?2",
    };
    int changed = 0;
    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
        sqlite3_stmt *s;
        if (sqlite3_prepare_v2(db, sql[i], -1, &s, NULL) != SQLITE_OK)
            return -1;
        if (i == 0 || i == 3)
            sqlite3_bind_int64(s, 1, now_ms);
        if (i == 3)
            sqlite3_bind_int64(s, 2, (int64_t)retention_ms);
        int rc = sqlite3_step(s);
        sqlite3_finalize(s);
        if (rc != SQLITE_DONE)
            return -1;
        if (i == 0)
            changed = sqlite3_changes(db);
    }
    return changed;
}
