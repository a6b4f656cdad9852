/*
 * logs.c - captured container output (see logs.h).
 *
 * Per app, the lines live in a FIFO list and are counted in bytes; adding a line drops the oldest
 * while the app holds more than LOGS_KEEP_BYTES, and a timer drops lines older than
 * LOGS_KEEP_AGE_MS. A container's unfinished line waits in the container (log_part) until its
 * newline arrives. Followers are LOGS streams; each new line is packed into every matching
 * follower's stream (stream.c batches them into frames).
 *
 * Persistence: every line gets a sequence number and is written to the store's `logs` table by
 * a timer every LOGS_FLUSH_MS, in one transaction, on the server's own database connection
 * (lines are not acknowledged to anyone, so they take no part in the calls' group commit and
 * cost it no fsync); the same flush deletes the rows the memory list dropped. At start the kept
 * lines are loaded back, so `skiff logs` shows what ran before a restart. A crash loses at most
 * the last LOGS_FLUSH_MS of lines.
 *
 * Names: a line carries the function its container runs and the input that printed it, with
 * that input's function (for a class: the method): the input the container's worker announced
 * last (W_STARTED, docs/protocol.md "Log attribution"), or else the one input it holds. A
 * request for "Cls.method" gets the method's lines and the class's lines not tied to one input;
 * one for "Cls" every line of the class; params narrow it to one parameter set's pool.
 */
#include "logs.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "apps.h"
#include "calls.h"
#include "common/hmap.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/prom.h"
#include "common/proto.h"
#include "common/value.h"
#include "conn.h"
#include "container.h"
#include "store.h"
#include "stream.h"

struct line {
    struct list_node link;
    int64_t seq; /* order of capture, across apps; the store's key */
    int64_t ts;  /* unix ms */
    char container_id[ID_SIZE];
    char input_id[ID_SIZE]; /* "" when not one input */
    char *function;         /* "fn", "Cls" or "Cls.method": points into text's allocation */
    char *params;           /* the class pool's params key, "" for none: ditto */
    uint8_t stream;         /* 1 stdout, 2 stderr */
    size_t len;
    char text[]; /* len bytes, NUL, the function name, NUL, the params key, NUL */
};

struct app_logs {
    char *app;
    struct list_node lines; /* oldest first */
    size_t bytes;
    int64_t dropped_below; /* rows with seq below this are to be deleted from the store */
    bool to_trim;          /* ... and have not been yet */
};

/* What a LOGS request or a follower wants. */
struct log_filter {
    char *function; /* or NULL: every line of the app */
    char *params;   /* a pool's params key, or NULL: any */
};

struct follower {
    struct stream *s;
    char *app;
    struct log_filter want;
    struct list_node link;
};

static struct hmap by_app;
static struct list_node followers = {&followers, &followers};
static int64_t next_seq = 1;
static int64_t committed_below = 1; /* lines with a smaller seq are in the store */
static bool dirty;                  /* lines were kept since the last flush */
static uv_timer_t flush_timer;

static void load(void);
static void on_flush_timer(uv_timer_t *t);

void logs_init(uv_loop_t *loop)
{
    hmap_init(&by_app);
    sqlite3 *db = store_db();
    if (sqlite3_exec(db,
                     "CREATE TABLE IF NOT EXISTS logs(seq INTEGER PRIMARY KEY, app TEXT NOT NULL, "
                     "ts INTEGER NOT NULL, container_id TEXT NOT NULL, input_id TEXT, "
                     "function TEXT NOT NULL, params TEXT NOT NULL, stream INTEGER NOT NULL, "
                     "text TEXT NOT NULL);"
                     "CREATE INDEX IF NOT EXISTS logs_app ON logs(app, seq);",
                     NULL, NULL, NULL) != SQLITE_OK)
        log_warn("logs will not outlive a restart: %s", sqlite3_errmsg(db));
    else
        load();
    uv_timer_init(loop, &flush_timer);
    uv_timer_start(&flush_timer, on_flush_timer, LOGS_FLUSH_MS, LOGS_FLUSH_MS);
    uv_unref((uv_handle_t *)&flush_timer);
}

void logs_shutdown(void)
{
    logs_flush();
    uv_close((uv_handle_t *)&flush_timer, NULL);
}

void logs_deinit(void)
{
    for (size_t i = 0; i < by_app.cap; i++) {
        struct app_logs *a = by_app.slots[i].val;
        if (!a)
            continue;
        while (!list_empty(&a->lines)) {
            struct line *l = container_of(a->lines.next, struct line, link);
            list_remove(&l->link);
            mem_free(l);
        }
        mem_free(a->app);
        mem_free(a);
    }
    hmap_deinit(&by_app);
}

static void pack_line(struct stream *s, const struct line *l)
{
    msgpack_packer *pk = stream_item(s);
    msgpack_pack_array(pk, 6);
    msgpack_pack_int64(pk, l->ts);
    msgpack_pack_str_with_body(pk, l->container_id, strlen(l->container_id));
    if (l->input_id[0])
        msgpack_pack_str_with_body(pk, l->input_id, strlen(l->input_id));
    else
        msgpack_pack_nil(pk);
    const char *name = l->stream == 2 ? "stderr" : "stdout";
    msgpack_pack_str_with_body(pk, name, strlen(name));
    msgpack_pack_str_with_body(pk, l->text, l->len);
    msgpack_pack_str_with_body(pk, l->function, strlen(l->function));
    stream_item_done(s);
}

/* True when the line is one the filter wants (see the top of the file). */
static bool matches(const struct log_filter *want, const struct line *l)
{
    if (want->params && strcmp(want->params, l->params))
        return false;
    const char *w = want->function;
    if (!w || !strcmp(w, l->function))
        return true;
    size_t n = strlen(l->function), k = strlen(w);
    const char *dot = strchr(w, '.');
    /* "Cls.method": the class's lines not tied to one input. */
    if (dot && (size_t)(dot - w) == n && !strncmp(w, l->function, n))
        return true;
    /* "Cls": every line of the class, the methods' too. */
    return n > k && l->function[k] == '.' && !strncmp(w, l->function, k);
}

static struct app_logs *app_logs(const char *app)
{
    struct app_logs *a = hmap_get(&by_app, app);
    if (a)
        return a;
    a = mem_calloc(1, sizeof *a);
    if (!a || !(a->app = mem_strdup(app))) {
        mem_free(a);
        return NULL;
    }
    list_init(&a->lines);
    if (hmap_put(&by_app, a->app, a) < 0) {
        mem_free(a->app);
        mem_free(a);
        return NULL;
    }
    return a;
}

/* Length of the valid UTF-8 sequence at p (n bytes left), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    size_t k = p[0] < 0x80             ? 1
               : (p[0] & 0xe0) == 0xc0 ? 2
               : (p[0] & 0xf0) == 0xe0 ? 3
               : (p[0] & 0xf8) == 0xf0 ? 4
                                       : 0;
    if (k == 0 || k > n)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return utf8_valid((const char *)p, k) ? k : 0;
}

/* Copies n bytes, replacing each byte that does not start valid UTF-8 with '?': lines travel as
 * msgpack strings, which must be UTF-8, and a function may print anything. */
static void copy_utf8(char *dst, const char *src, size_t n)
{
    const unsigned char *p = (const unsigned char *)src;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(p + i, n - i);
        if (k == 0) {
            dst[i++] = '?';
            continue;
        }
        memcpy(dst + i, p + i, k);
        i += k;
    }
}

static struct line *line_new(int64_t ts, const char *container_id, const char *input_id,
                             const char *fn, const char *params, int stream, const char *text,
                             size_t len, const char *more);
static void keep_line(const char *app, struct line *l);

/* Keeps one line of ct's output (text[0..len), no newline); dropped bytes of it were not kept
 * already. A line over LOGS_LINE_MAX keeps its first LOGS_LINE_MAX bytes and says how many
 * more it had. */
static void add_line(struct container *ct, int stream, const char *text, size_t len, size_t dropped)
{
    if (len > LOGS_LINE_MAX) {
        dropped += len - LOGS_LINE_MAX;
        len = LOGS_LINE_MAX;
    }
    char more[64] = "";
    if (dropped)
        snprintf(more, sizeof more, "... [line cut: %zu bytes]", dropped);
    /* A line names the input its worker last announced (W_STARTED), or else the one input the
     * container holds, if it holds one; a class container's line names that input's method. */
    const struct input *in =
        !ct->log_marked && ct->n_held == 1 ? container_of(ct->held.next, struct input, link) : NULL;
    const char *id = ct->log_marked ? ct->log_input : in ? in->id : "";
    const char *fn = ct->log_marked && ct->log_fn[0] ? ct->log_fn
                     : in && in->call                ? in->call->fn->name
                                                     : ct->fn->name;
    const char *params = ct->fn->params_key ? ct->fn->params_key : "";
    struct line *l = line_new(store_now_ms(), ct->id, id, fn, params, stream, text, len, more);
    if (l)
        keep_line(ct->fn->app->name, l);
}

/* A new line (NULL when out of memory: logs are best effort). text is made valid UTF-8 and
 * more appended to it. */
static struct line *line_new(int64_t ts, const char *container_id, const char *input_id,
                             const char *fn, const char *params, int stream, const char *text,
                             size_t len, const char *more)
{
    size_t extra = strlen(more), fnlen = strlen(fn), plen = strlen(params);
    struct line *l = mem_alloc(sizeof *l + len + extra + 1 + fnlen + 1 + plen + 1);
    if (!l)
        return NULL;
    memset(l, 0, sizeof *l);
    l->ts = ts;
    snprintf(l->container_id, sizeof l->container_id, "%s", container_id);
    snprintf(l->input_id, sizeof l->input_id, "%s", input_id);
    l->stream = (uint8_t)stream;
    copy_utf8(l->text, text, len);
    memcpy(l->text + len, more, extra);
    l->len = len + extra;
    l->text[l->len] = '\0';
    l->function = l->text + l->len + 1;
    memcpy(l->function, fn, fnlen + 1);
    l->params = l->function + fnlen + 1;
    memcpy(l->params, params, plen + 1);
    return l;
}

/* Drops app a's oldest line. */
static void drop_oldest(struct app_logs *a)
{
    struct line *old = container_of(a->lines.next, struct line, link);
    list_remove(&old->link);
    a->bytes -= sizeof *old + old->len;
    if (old->seq < committed_below) {
        a->dropped_below = old->seq + 1;
        a->to_trim = true;
    }
    mem_free(old);
}

/* Keeps a new line of app (taking l): to the followers, the app's list and the next flush. */
static void keep_line(const char *app, struct line *l)
{
    l->seq = next_seq++;
    struct list_node *n, *t;
    list_for_each_safe(n, t, &followers)
    {
        struct follower *f = container_of(n, struct follower, link);
        if (!strcmp(f->app, app) && matches(&f->want, l))
            pack_line(f->s, l);
    }
    struct app_logs *a = app_logs(app);
    if (!a) {
        mem_free(l);
        return;
    }
    list_push(&a->lines, &l->link);
    a->bytes += sizeof *l + l->len;
    dirty = true;
    while (a->bytes > LOGS_KEEP_BYTES && a->lines.next != &l->link)
        drop_oldest(a);
}

void logs_output(struct container *ct, int stream, const char *p, size_t len)
{
    int i = stream == 2;
    struct buf *part = &ct->log_part[i];
    while (len > 0) {
        const char *nl = memchr(p, '\n', len);
        size_t take = nl ? (size_t)(nl - p) : len;
        /* What fits of the line is kept; the rest is only counted (the line is cut). */
        size_t room = part->len < LOGS_LINE_MAX ? LOGS_LINE_MAX - part->len : 0;
        size_t keep = take < room ? take : room;
        if (!nl) {
            if (keep && buf_append(part, p, keep) != 0)
                keep = 0; /* out of memory: the line is cut here */
            ct->log_cut[i] += take - keep;
            return;
        }
        if (part->len || ct->log_cut[i]) {
            if (keep && buf_append(part, p, keep) != 0)
                keep = 0;
            add_line(ct, stream, part->data ? part->data : "", part->len,
                     ct->log_cut[i] + take - keep);
            part->len = 0;
            ct->log_cut[i] = 0;
            buf_shrink(part);
        } else {
            add_line(ct, stream, p, take, 0);
        }
        p += take + 1;
        len -= take + 1;
    }
}

void logs_input_switch(struct container *ct)
{
    for (int i = 0; i < 2; i++) {
        struct buf *part = &ct->log_part[i];
        if (part->len || ct->log_cut[i])
            add_line(ct, i + 1, part->data ? part->data : "", part->len, ct->log_cut[i]);
        part->len = 0;
        ct->log_cut[i] = 0;
    }
}

void logs_stream_ended(struct container *ct, int stream)
{
    int i = stream == 2;
    struct buf *part = &ct->log_part[i];
    if (part->len || ct->log_cut[i])
        add_line(ct, stream, part->data ? part->data : "", part->len, ct->log_cut[i]);
    ct->log_cut[i] = 0;
    buf_deinit(part);
}

static void filter_clear(struct log_filter *w)
{
    mem_free(w->function);
    mem_free(w->params);
    w->function = w->params = NULL;
}

static void follower_gone(struct stream *s, void *owner)
{
    (void)s;
    struct follower *f = owner;
    list_remove(&f->link);
    mem_free(f->app);
    filter_clear(&f->want);
    mem_free(f);
}

/* Checks that function names a live function, method or class of app; else replies with the
 * NotFoundError (and a "did you mean") and returns false. */
static bool known_function(struct conn *c, uint64_t rid, const char *app, const char *function)
{
    if (apps_lookup(app, function) || apps_lookup_class(app, function))
        return true;
    char msg[700];
    apps_lookup_failure(app, function, false, msg, sizeof msg);
    conn_error(c, rid, SKIFF_ERR_NOT_FOUND, "%s", msg);
    return false;
}

void logs_request(struct conn *c, uint64_t rid, const char *app, const char *function,
                  const char *params_key, bool follow, int64_t tail)
{
    if (!apps_find(app)) {
        conn_error(c, rid, SKIFF_ERR_NOT_FOUND, "app '%s' is not deployed", app);
        return;
    }
    if (function && !known_function(c, rid, app, function))
        return;
    struct follower *f = mem_calloc(1, sizeof *f);
    struct stream *s = f ? stream_new(c, rid, f, follow ? follower_gone : NULL) : NULL;
    if (f) {
        f->want.function = function ? mem_strdup(function) : NULL;
        f->want.params = params_key ? mem_strdup(params_key) : NULL;
    }
    if (!s || (function && !f->want.function) || (params_key && !f->want.params)) {
        if (s)
            stream_free(s);
        if (f)
            filter_clear(&f->want);
        mem_free(f);
        conn_error(c, rid, SKIFF_ERR_NOMEM, "out of memory");
        return;
    }
    f->s = s;
    struct app_logs *a = hmap_get(&by_app, app);
    if (a) {
        /* The last `tail` matching lines: count back from the newest. */
        struct list_node *start = a->lines.next;
        if (tail >= 0) {
            int64_t k = 0;
            start = &a->lines;
            while (start->prev != &a->lines && k < tail) {
                start = start->prev;
                if (matches(&f->want, container_of(start, struct line, link)))
                    k++;
            }
        }
        for (struct list_node *n = start; n != &a->lines; n = n->next) {
            const struct line *l = container_of(n, struct line, link);
            if (matches(&f->want, l))
                pack_line(s, l);
        }
    }
    if (!follow) {
        stream_flush(s);
        conn_ok(c, rid);
        stream_free(s);
        filter_clear(&f->want);
        mem_free(f);
        return;
    }
    f->app = mem_strdup(app);
    if (!f->app) {
        stream_free(s);
        filter_clear(&f->want);
        mem_free(f);
        conn_error(c, rid, SKIFF_ERR_NOMEM, "out of memory");
        return;
    }
    list_push(&followers, &f->link);
}

/* --- the store -------------------------------------------------------------------------------- */

/* Deletes the rows app a's list no longer holds. */
static void trim(sqlite3 *db, struct app_logs *a)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "DELETE FROM logs WHERE app = ?1 AND seq < ?2", -1, &st, NULL) !=
        SQLITE_OK)
        return;
    sqlite3_bind_text(st, 1, a->app, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, a->dropped_below);
    if (sqlite3_step(st) == SQLITE_DONE)
        a->to_trim = false;
    sqlite3_finalize(st);
}

/* Writes app a's lines that are not in the store yet (the newest ones). false on an error. */
static bool write_lines(sqlite3_stmt *st, struct app_logs *a)
{
    struct list_node *n = a->lines.prev;
    while (n != &a->lines && container_of(n, struct line, link)->seq >= committed_below)
        n = n->prev; /* back to the last stored line, or the head */
    for (n = n->next; n != &a->lines; n = n->next) {
        struct line *l = container_of(n, struct line, link);
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, l->seq);
        sqlite3_bind_text(st, 2, a->app, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, l->ts);
        sqlite3_bind_text(st, 4, l->container_id, -1, SQLITE_STATIC);
        if (l->input_id[0])
            sqlite3_bind_text(st, 5, l->input_id, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 5);
        sqlite3_bind_text(st, 6, l->function, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, l->params, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 8, l->stream);
        sqlite3_bind_text(st, 9, l->text, (int)l->len, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            return false;
    }
    return true;
}

/* Drops the lines older than the age limit, in memory (the rows go at the next flush). */
static void expire(int64_t now)
{
    for (size_t i = 0; i < by_app.cap; i++) {
        struct app_logs *a = by_app.slots[i].val;
        while (a && !list_empty(&a->lines) &&
               container_of(a->lines.next, struct line, link)->ts < now - LOGS_KEEP_AGE_MS)
            drop_oldest(a);
    }
}

void logs_flush(void)
{
    expire(store_now_ms());
    bool trims = false;
    for (size_t i = 0; i < by_app.cap && !trims; i++)
        trims = by_app.slots[i].val && ((struct app_logs *)by_app.slots[i].val)->to_trim;
    if (!dirty && !trims)
        return;
    sqlite3 *db = store_db();
    sqlite3_stmt *st = NULL;
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return;
    bool ok = sqlite3_prepare_v2(db,
                                 "INSERT OR REPLACE INTO logs(seq, app, ts, container_id, "
                                 "input_id, function, params, stream, text) VALUES (?1, ?2, ?3, "
                                 "?4, ?5, ?6, ?7, ?8, ?9)",
                                 -1, &st, NULL) == SQLITE_OK;
    for (size_t i = 0; ok && i < by_app.cap; i++) {
        struct app_logs *a = by_app.slots[i].val;
        if (a && a->to_trim)
            trim(db, a);
        ok = !a || write_lines(st, a);
    }
    sqlite3_finalize(st);
    if (ok && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) {
        committed_below = next_seq;
        dirty = false;
        return;
    }
    /* Tried again at the next flush; the trims too (to_trim stays set when not done). */
    log_warn("could not write container logs: %s", sqlite3_errmsg(db));
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    for (size_t i = 0; i < by_app.cap; i++)
        if (by_app.slots[i].val)
            ((struct app_logs *)by_app.slots[i].val)->to_trim = true;
}

static void on_flush_timer(uv_timer_t *t)
{
    (void)t;
    logs_flush();
}

/* Loads the kept lines of every app, newest LOGS_KEEP_BYTES of each, younger than the age
 * limit. */
static void load(void)
{
    sqlite3 *db = store_db();
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT seq, app, ts, container_id, input_id, function, params, stream, "
                           "text FROM logs WHERE ts >= ?1 ORDER BY seq",
                           -1, &st, NULL) != SQLITE_OK) {
        log_warn("cannot read the stored logs: %s", sqlite3_errmsg(db));
        return;
    }
    sqlite3_bind_int64(st, 1, store_now_ms() - LOGS_KEEP_AGE_MS);
    size_t n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *input = (const char *)sqlite3_column_text(st, 4);
        const char *text = (const char *)sqlite3_column_text(st, 8);
        struct line *l =
            line_new(sqlite3_column_int64(st, 2), (const char *)sqlite3_column_text(st, 3),
                     input ? input : "", (const char *)sqlite3_column_text(st, 5),
                     (const char *)sqlite3_column_text(st, 6), sqlite3_column_int(st, 7),
                     text ? text : "", (size_t)sqlite3_column_bytes(st, 8), "");
        struct app_logs *a = l ? app_logs((const char *)sqlite3_column_text(st, 1)) : NULL;
        if (!a) {
            mem_free(l);
            break;
        }
        l->seq = sqlite3_column_int64(st, 0);
        list_push(&a->lines, &l->link);
        a->bytes += sizeof *l + l->len;
        while (a->bytes > LOGS_KEEP_BYTES && a->lines.next != &l->link)
            drop_oldest(a);
        if (l->seq >= next_seq)
            committed_below = next_seq = l->seq + 1;
        n++;
    }
    sqlite3_finalize(st);
    /* Rows too old (or beyond the cap) go with the first flush. */
    sqlite3_stmt *del;
    if (sqlite3_prepare_v2(db, "DELETE FROM logs WHERE ts < ?1", -1, &del, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(del, 1, store_now_ms() - LOGS_KEEP_AGE_MS);
        sqlite3_step(del);
        sqlite3_finalize(del);
    }
    if (n)
        log_info("loaded %zu log lines kept from before the restart", n);
}

int64_t logs_seq(void)
{
    return next_seq;
}

int logs_json(struct buf *b, const char *app, const char *input_id, size_t max_lines)
{
    struct app_logs *a = hmap_get(&by_app, app);
    int rc = buf_append(b, "{\"lines\":[", 10);
    size_t n = 0, skip = 0;
    struct list_node *node, *t;
    if (a) {
        list_for_each_safe(node, t, &a->lines)
        {
            const struct line *l = container_of(node, struct line, link);
            n += !input_id[0] || !strcmp(input_id, l->input_id);
        }
        skip = n > max_lines ? n - max_lines : 0;
        bool first = true;
        list_for_each_safe(node, t, &a->lines)
        {
            const struct line *l = container_of(node, struct line, link);
            if (rc || (input_id[0] && strcmp(input_id, l->input_id)))
                continue;
            if (skip) {
                skip--;
                continue;
            }
            rc = prom_printf(b, "%s{\"seq\":%lld,\"ts\":%.3f,\"container_id\":\"%s\",\"input_id\":",
                             first ? "" : ",", (long long)l->seq, (double)l->ts / 1000,
                             l->container_id);
            first = false;
            rc = rc ? rc
                    : prom_json_string(b, l->input_id[0] ? l->input_id : NULL, strlen(l->input_id));
            rc = rc ? rc
                    : prom_printf(b, ",\"stream\":\"%s\",\"function\":",
                                  l->stream == 2 ? "stderr" : "stdout");
            rc = rc ? rc : prom_json_string(b, l->function, strlen(l->function));
            rc = rc ? rc : buf_append(b, ",\"text\":", 8);
            rc = rc ? rc : prom_json_string(b, l->text, l->len);
            rc = rc ? rc : buf_append(b, "}", 1);
        }
    }
    return rc ? rc : buf_append(b, "]}", 2);
}
