/*
 * schedule.c - functions that run on their own (see schedule.h).
 *
 * One entry per scheduled function, found by function id. An entry's anchor is the time its
 * next run is counted from: the last run, or the deploy that set the schedule; the store keeps
 * it (with the schedule's text, so a changed schedule is told from a restart) in the table
 * `schedules`, written when a schedule starts and at each run. A run is a spawn made through
 * calls_start with the entry's own listener, which hears the spawn's acknowledgement (or
 * failure) once it is on disk.
 */
#include "schedule.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "apps.h"
#include "calls.h"
#include "common/buf.h"
#include "common/codec.h"
#include "common/cron.h"
#include "common/hmap.h"
#include "common/log.h"
#include "common/mem.h"
#include "store.h"

/* The longest a timer waits before the wall clock is read again: a clock that jumps (NTP, a
 * suspended host) is noticed within this. */
#define MAX_WAIT_MS 60000

struct entry {
    char fn_id[ID_SIZE]; /* the key */
    struct function *fn;
    char *spec;              /* "every 5s" / "cron 0 9 * * 1": shown, and stored to tell a change */
    double period_ms;        /* a period schedule, or 0 */
    struct cron cron;        /* a cron schedule (period_ms 0) */
    int64_t anchor_ms;       /* unix ms the next run is counted from */
    int64_t next_ms;         /* unix ms of the next run; -1: never (a cron that cannot match) */
    char last_call[ID_SIZE]; /* the last run's call id, or "" */
    uint64_t runs, skipped;
    uv_timer_t timer;
    struct call_listener l; /* hears the last run's spawn being stored */
};

static uv_loop_t *loop;
static struct hmap entries;
/* The argument payload of every run: no arguments. */
static struct buf no_args;

static int exec_sql(const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(store_db(), sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    log_error("schedule: %s", msg ? msg : sqlite3_errmsg(store_db()));
    sqlite3_free(msg);
    return -1;
}

int schedule_init(uv_loop_t *l)
{
    loop = l;
    hmap_init(&entries);
    buf_init(&no_args, 64);
    if (codec_encode_args(&no_args, NULL, NULL) != SKIFF_OK)
        return -1;
    /* anchor: unix ms; last_call: the "fc-" id of the last run, or NULL. */
    return exec_sql("CREATE TABLE IF NOT EXISTS schedules(function_id TEXT PRIMARY KEY,"
                    " spec TEXT NOT NULL, anchor INTEGER NOT NULL, last_call TEXT)");
}

/* --- the store ------------------------------------------------------------------------------- */

/* Writes e's row (spec, anchor, last call). */
static void save(const struct entry *e)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_db(),
                           "INSERT OR REPLACE INTO schedules(function_id, spec, anchor, last_call)"
                           " VALUES(?1, ?2, ?3, ?4)",
                           -1, &st, NULL) != SQLITE_OK) {
        log_error("schedule: cannot save %s: %s", e->fn_id, sqlite3_errmsg(store_db()));
        return;
    }
    sqlite3_bind_text(st, 1, e->fn_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, e->spec, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, e->anchor_ms);
    if (e->last_call[0])
        sqlite3_bind_text(st, 4, e->last_call, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 4);
    if (sqlite3_step(st) != SQLITE_DONE)
        log_error("schedule: cannot save %s: %s", e->fn_id, sqlite3_errmsg(store_db()));
    sqlite3_finalize(st);
}

/* Reads the stored anchor and last call of e's function when its stored spec is e's: true. */
static bool load(struct entry *e)
{
    sqlite3_stmt *st;
    bool found = false;
    if (sqlite3_prepare_v2(store_db(),
                           "SELECT anchor, last_call FROM schedules WHERE function_id = ?1"
                           " AND spec = ?2",
                           -1, &st, NULL) != SQLITE_OK)
        return false;
    sqlite3_bind_text(st, 1, e->fn_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, e->spec, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        e->anchor_ms = sqlite3_column_int64(st, 0);
        const unsigned char *last = sqlite3_column_text(st, 1);
        snprintf(e->last_call, sizeof e->last_call, "%s", last ? (const char *)last : "");
        found = true;
    }
    sqlite3_finalize(st);
    return found;
}

static void forget(const char *fn_id)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_db(), "DELETE FROM schedules WHERE function_id = ?1", -1, &st,
                           NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(st, 1, fn_id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        log_error("schedule: cannot forget %s: %s", fn_id, sqlite3_errmsg(store_db()));
    sqlite3_finalize(st);
}

/* --- timing ---------------------------------------------------------------------------------- */

/* The run after anchor: unix ms, or -1 for a cron schedule that never matches again. */
static int64_t next_after(const struct entry *e, int64_t anchor)
{
    if (e->period_ms > 0)
        return anchor + (int64_t)e->period_ms;
    int64_t t = cron_next(&e->cron, anchor / 1000);
    return t < 0 ? -1 : t * 1000;
}

static void on_timer(uv_timer_t *t);

/* Starts e's timer towards next_ms (at most MAX_WAIT_MS at a time). */
static void arm(struct entry *e)
{
    if (e->next_ms < 0) {
        uv_timer_stop(&e->timer);
        return;
    }
    int64_t wait = e->next_ms - store_now_ms();
    if (wait < 0)
        wait = 0;
    if (wait > MAX_WAIT_MS)
        wait = MAX_WAIT_MS;
    uv_timer_start(&e->timer, on_timer, (uint64_t)wait, 0);
}

/* The last run's spawn is stored (err NULL) or could not be. */
static void on_spawned(struct call_listener *l, const char *value, size_t len,
                       const skiff_error *err)
{
    (void)value;
    (void)len;
    struct entry *e = container_of(l, struct entry, l);
    if (err) {
        log_error("schedule: the run of %s.%s could not be started: %s", e->fn->app->name,
                  e->fn->name, err->message ? err->message : "error");
        e->last_call[0] = '\0';
    }
}

/* True while the last run has not reached its outcome (pending, running, retrying). */
static bool last_run_busy(const struct entry *e)
{
    if (e->l.call)
        return true; /* not even stored yet */
    const struct call *c = e->last_call[0] ? calls_find(e->last_call) : NULL;
    return c && c->n_final < c->n_inputs && !c->cancelled;
}

/* The run due at e->next_ms, seen at now. */
static void run(struct entry *e, int64_t now)
{
    int64_t due = e->next_ms;
    bool late = now - due > 1000 && (e->period_ms == 0 || now - due >= e->period_ms);
    struct function *fn = e->fn;
    if (last_run_busy(e)) {
        e->skipped++;
        log_info("schedule: %s.%s: run skipped: the last one (%s) has not finished", fn->app->name,
                 fn->name, e->last_call[0] ? e->last_call : "being stored");
    } else {
        char id[ID_SIZE] = "";
        e->runs++;
        calls_start(&e->l, fn, fn, no_args.data, no_args.len, true, false, id);
        if (id[0])
            memcpy(e->last_call, id, sizeof id);
        if (late)
            log_info("schedule: %s.%s: catch-up run %s (a run was due at start-up)", fn->app->name,
                     fn->name, id[0] ? id : "not started");
        else
            log_debug("schedule: %s.%s: run %s", fn->app->name, fn->name,
                      id[0] ? id : "not started");
    }
    /* On time, the next counts from the due time (no drift); late (the server was down, or
     * busy), from now: missed runs are not made up one by one. */
    e->anchor_ms = late ? now : due;
    e->next_ms = next_after(e, e->anchor_ms);
    save(e);
}

static void on_timer(uv_timer_t *t)
{
    struct entry *e = t->data;
    int64_t now = store_now_ms();
    if (e->next_ms >= 0 && now >= e->next_ms)
        run(e, now);
    arm(e);
}

/* --- entries --------------------------------------------------------------------------------- */

static void on_closed(uv_handle_t *h)
{
    struct entry *e = h->data;
    mem_free(e->spec);
    mem_free(e);
}

/* Ends e (its stored times too when forget_times). */
static void drop(struct entry *e, bool forget_times)
{
    hmap_del(&entries, e->fn_id);
    if (e->l.call)
        calls_listener_gone(&e->l); /* the spawn still completes */
    if (forget_times)
        forget(e->fn_id);
    uv_timer_stop(&e->timer);
    uv_close((uv_handle_t *)&e->timer, on_closed);
}

/* The schedule text of cfg ("every 5s", "cron ..."), or NULL when it has none. */
static char *spec_of(const struct fn_config *cfg)
{
    char text[160];
    if (cfg->period_s > 0)
        snprintf(text, sizeof text, "every %gs", cfg->period_s);
    else if (cfg->cron)
        snprintf(text, sizeof text, "cron %s", cfg->cron);
    else
        return NULL;
    return mem_strdup(text);
}

/* A readable UTC time of unix ms t, for the log. */
static void utc(int64_t t, char *out, size_t size)
{
    time_t s = (time_t)(t / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, size, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

void schedule_function_changed(struct function *f)
{
    if (!loop)
        return;
    struct entry *e = hmap_get(&entries, f->id);
    /* An ephemeral app (`skiff run`) is there for one call: its schedules never run. */
    bool want = f->live && !f->app->stopped && !f->app->ephemeral && !f->is_class &&
                !f->params_key && !f->method && (f->cfg.period_s > 0 || f->cfg.cron);
    if (!want) {
        if (e) {
            log_info("schedule: %s.%s: ended", f->app->name, f->name);
            drop(e, true);
        }
        return;
    }
    char *spec = spec_of(&f->cfg);
    if (!spec) {
        log_error("schedule: %s.%s: out of memory", f->app->name, f->name);
        return;
    }
    if (e && !strcmp(e->spec, spec)) {
        e->fn = f; /* unchanged by a redeploy: the timing goes on */
        mem_free(spec);
        return;
    }
    if (e)
        drop(e, false);
    e = mem_calloc(1, sizeof *e);
    if (!e) {
        mem_free(spec);
        log_error("schedule: %s.%s: out of memory", f->app->name, f->name);
        return;
    }
    snprintf(e->fn_id, sizeof e->fn_id, "%s", f->id);
    e->fn = f;
    e->spec = spec;
    e->period_ms = f->cfg.period_s * 1000;
    char why[256];
    if (!e->period_ms && cron_parse(f->cfg.cron, &e->cron, why, sizeof why) < 0) {
        log_error("schedule: %s.%s: cron \"%s\": %s", f->app->name, f->name, f->cfg.cron, why);
        mem_free(spec);
        mem_free(e);
        return;
    }
    e->l.on_done = on_spawned;
    uv_timer_init(loop, &e->timer);
    e->timer.data = e;
    if (hmap_put(&entries, e->fn_id, e) < 0) {
        log_error("schedule: %s.%s: out of memory", f->app->name, f->name);
        uv_close((uv_handle_t *)&e->timer, on_closed);
        return;
    }
    bool kept = load(e); /* a restart: the stored anchor; otherwise it starts now */
    if (!kept) {
        e->anchor_ms = store_now_ms();
        save(e);
    }
    e->next_ms = next_after(e, e->anchor_ms);
    char when[64] = "never";
    if (e->next_ms >= 0)
        utc(e->next_ms, when, sizeof when);
    log_info("schedule: %s.%s: %s, %snext run %s", f->app->name, f->name, spec,
             kept ? "continued, " : "", when);
    arm(e);
}

bool schedule_view(const struct function *f, struct schedule_view *out)
{
    const struct entry *e = loop ? hmap_get(&entries, f->id) : NULL;
    if (!e)
        return false;
    out->spec = e->spec;
    out->next_ms = e->next_ms;
    out->last_call = e->last_call[0] ? e->last_call : NULL;
    out->runs = e->runs;
    out->skipped = e->skipped;
    return true;
}

void schedule_shutdown(void)
{
    if (!loop)
        return;
    for (size_t i = 0; i < entries.cap; i++) {
        struct entry *e = entries.slots[i].val;
        if (e) { /* tombstones hold NULL */
            if (e->l.call)
                calls_listener_gone(&e->l);
            uv_timer_stop(&e->timer);
            uv_close((uv_handle_t *)&e->timer, on_closed);
        }
    }
    hmap_deinit(&entries);
    hmap_init(&entries);
}

void schedule_deinit(void)
{
    hmap_deinit(&entries);
    buf_deinit(&no_args);
    loop = NULL;
}
