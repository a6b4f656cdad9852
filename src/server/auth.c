/*
 * auth.c - tokens (see auth.h). SHA-256 by OpenSSL.
 *
 * A token in use is a struct auth_token in the `live` map, shared by every connection that
 * presented it and, for a container token, held by its container. A stored token's record is
 * made at the first HELLO that presents it and freed with its last connection; a container
 * token's lives from its container's start to its end. Revocation marks the record and takes it
 * off the map, so later HELLOs fail and the connections that still hold it see auth_unusable.
 *
 * Nothing here writes to the store per connection: a HELLO reads one row, and last_used is
 * written at most once a minute per token (LAST_USED_EVERY_S), so a client that connects often
 * costs no fsync each time. Container tokens are never stored: minting one is a getrandom, a hash
 * and a map insert (a few microseconds), with no disk write on a container's start.
 */
#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/hmap.h"
#include "common/log.h"
#include "common/mem.h"
#include "store.h"

/* last_used is rewritten when the stored one is this much older than the HELLO: a token
 * listing is accurate to the minute, and a client reconnecting in a loop writes once a minute. */
#define LAST_USED_EVERY_S 60
/* Refused tokens logged per minute; the rest are counted in one summary line. Ten lines say
 * what is happening; an anonymous flood cannot grow the log faster than that. */
#define AUTH_LOG_BURST 10
#define AUTH_LOG_WINDOW_MS 60000

struct auth_token {
    char id[ID_SIZE];
    unsigned char hash[32]; /* SHA-256 of the secret */
    enum auth_scope scope;
    int64_t expires;   /* unix ms, 0: never */
    int64_t last_used; /* unix s of the last HELLO, 0: never */
    int64_t saved;     /* unix s of last_used as stored */
    int refs;          /* connections holding it, plus the container of a container token */
    bool revoked;
    struct hmap owned; /* container tokens: the calls made with it (id -> its copy of the id) */
};

static struct hmap live; /* token id -> struct auth_token, while not revoked */
static void (*revoke_hook)(struct auth_token *t);

static uv_loop_t *loop;
static uv_timer_t log_timer;
static bool log_timer_ready;
static uv_timer_t expiry_timer;   /* the next expiry of a token in use */
static int64_t expiry_at;         /* unix ms it is armed for, or 0 */
static uint64_t log_window_start; /* loop ms */
static int log_count;             /* lines logged in the window */
static long log_suppressed;       /* refusals not logged in the window */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int new_secret(char out[AUTH_SECRET_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[AUTH_SECRET_LEN / 2];
    if (id_random(raw, sizeof raw) < 0)
        return -1;
    for (size_t i = 0; i < sizeof raw; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[AUTH_SECRET_LEN] = '\0';
    return 0;
}

static void digest(const char *secret, unsigned char out[32])
{
    unsigned int n = 32;
    EVP_Digest(secret, strlen(secret), out, &n, EVP_sha256(), NULL);
}

const char *auth_scope_name(enum auth_scope s)
{
    static const char *const names[] = {"container", "call", "deploy", "admin"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

int auth_scope_parse(const char *s, enum auth_scope *out)
{
    for (enum auth_scope k = AUTH_CALL; k <= AUTH_ADMIN; k++)
        if (s && !strcmp(s, auth_scope_name(k))) {
            *out = k;
            return 0;
        }
    return -1;
}

int auth_init(uv_loop_t *l)
{
    loop = l;
    hmap_init(&live);
    if (uv_timer_init(loop, &log_timer) < 0)
        return -1;
    uv_unref((uv_handle_t *)&log_timer);
    if (uv_timer_init(loop, &expiry_timer) < 0)
        return -1;
    uv_unref((uv_handle_t *)&expiry_timer);
    log_timer_ready = true;
    log_window_start = uv_now(loop);
    return 0;
}

static void token_free(struct auth_token *t)
{
    /* Each owned entry's value is its own key (a copy); hmap_del leaves a NULL value behind. */
    for (size_t i = 0; i < t->owned.cap; i++)
        mem_free(t->owned.slots[i].val);
    hmap_deinit(&t->owned);
    mem_free(t);
}

void auth_shutdown(void)
{
    if (log_timer_ready) {
        uv_close((uv_handle_t *)&log_timer, NULL);
        uv_close((uv_handle_t *)&expiry_timer, NULL);
        log_timer_ready = false;
    }
}

void auth_deinit(void)
{
    for (size_t i = 0; i < live.cap; i++)
        if (live.slots[i].val) /* NULL: empty, or deleted */
            token_free(live.slots[i].val);
    hmap_deinit(&live);
}

bool auth_empty(void)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_db(), "SELECT 1 FROM tokens LIMIT 1", -1, &st, NULL) != SQLITE_OK)
        return false;
    bool empty = sqlite3_step(st) != SQLITE_ROW;
    sqlite3_finalize(st);
    return empty;
}

static int store_token(const char *id, const char *secret, enum auth_scope scope, int64_t expires)
{
    unsigned char h[32];
    digest(secret, h);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(store_db(),
                                "INSERT INTO tokens(token_id, secret_hash, created, scope, expires)"
                                " VALUES(?1, ?2, strftime('%s','now'), ?3, ?4)",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, h, sizeof h, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, auth_scope_name(scope), -1, SQLITE_STATIC);
        if (expires > 0)
            sqlite3_bind_int64(st, 4, expires);
        else
            sqlite3_bind_null(st, 4);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_finalize(st);
    }
    if (rc != SQLITE_OK) {
        log_error("auth: cannot store a token: %s", sqlite3_errmsg(store_db()));
        return -1;
    }
    return 0;
}

int auth_adopt_token(const char *id, const char *secret)
{
    return store_token(id, secret, AUTH_ADMIN, 0);
}

int auth_new_token(enum auth_scope scope, int64_t expires, char *id_out, char *secret_out)
{
    char id[ID_SIZE], secret[AUTH_SECRET_LEN + 1];
    id_new(id, "tk");
    if (scope == AUTH_CONTAINER || new_secret(secret) < 0 ||
        store_token(id, secret, scope, expires) < 0)
        return -1;
    memcpy(id_out, id, sizeof id);
    memcpy(secret_out, secret, sizeof secret);
    return 0;
}

/* Reads the stored token id into a new record (refs 0). NULL if there is none or its scope is
 * not one we know. */
static struct auth_token *load(const char *id)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_db(),
                           "SELECT secret_hash, scope, expires, last_used FROM tokens"
                           " WHERE token_id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    struct auth_token *t = NULL;
    enum auth_scope scope;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32 &&
        auth_scope_parse((const char *)sqlite3_column_text(st, 1), &scope) == 0 &&
        (t = mem_calloc(1, sizeof *t))) {
        snprintf(t->id, sizeof t->id, "%s", id);
        memcpy(t->hash, sqlite3_column_blob(st, 0), 32);
        t->scope = scope;
        t->expires = sqlite3_column_int64(st, 2);
        t->last_used = t->saved = sqlite3_column_int64(st, 3);
        hmap_init(&t->owned);
    }
    sqlite3_finalize(st);
    return t;
}

/* Stores t's last use when the stored one is stale. */
static void touch(struct auth_token *t)
{
    t->last_used = now_ms() / 1000;
    if (t->scope == AUTH_CONTAINER || t->last_used - t->saved < LAST_USED_EVERY_S)
        return;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_db(), "UPDATE tokens SET last_used = ?2 WHERE token_id = ?1", -1,
                           &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(st, 1, t->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, t->last_used);
    if (sqlite3_step(st) == SQLITE_DONE)
        t->saved = t->last_used;
    sqlite3_finalize(st);
}

static void arm_expiry(int64_t at);

/* The expiry timer: the connections of every token in use that has expired are closed (their
 * streams too, which send no request that could be refused), then the timer is armed for the
 * next expiry. */
static void expiry_due(uv_timer_t *h)
{
    (void)h;
    expiry_at = 0;
    int64_t now = now_ms(), next = 0;
    for (size_t i = 0; i < live.cap; i++) {
        struct auth_token *t = live.slots[i].val;
        if (!t || !t->expires)
            continue;
        if (t->expires > now) {
            next = !next || t->expires < next ? t->expires : next;
        } else if (revoke_hook && t->refs > 0) {
            log_info("token %s has expired: closing its connections", t->id);
            t->refs++;
            revoke_hook(t);
            t->refs--;
        }
    }
    if (next)
        arm_expiry(next);
}

/* Arms the expiry timer for at (unix ms), unless it is armed for sooner. */
static void arm_expiry(int64_t at)
{
    if (!log_timer_ready || (expiry_at && expiry_at <= at))
        return;
    expiry_at = at;
    int64_t in = at - now_ms();
    uv_timer_start(&expiry_timer, expiry_due, in > 0 ? (uint64_t)in : 0, 0);
}

struct auth_token *auth_login(const char *id, const char *secret, const char **why)
{
    *why = "is unknown or its secret is wrong";
    if (!id || !secret || !id_valid(id, "tk"))
        return NULL;
    unsigned char h[32];
    digest(secret, h);
    struct auth_token *t = hmap_get(&live, id);
    bool fresh = false;
    if (!t) {
        if (!(t = load(id)))
            return NULL;
        fresh = true;
    }
    if (CRYPTO_memcmp(t->hash, h, sizeof h) != 0) {
        if (fresh)
            token_free(t);
        return NULL;
    }
    if (t->expires && t->expires <= now_ms()) {
        *why = "has expired";
        if (fresh)
            token_free(t);
        return NULL;
    }
    if (fresh && hmap_put(&live, t->id, t) < 0) {
        *why = "could not be checked: the server is out of memory";
        token_free(t);
        return NULL;
    }
    t->refs++;
    touch(t);
    if (t->expires)
        arm_expiry(t->expires);
    return t;
}

struct auth_token *auth_ref(struct auth_token *t)
{
    if (t)
        t->refs++;
    return t;
}

void auth_release(struct auth_token *t)
{
    if (!t || --t->refs > 0)
        return;
    if (!t->revoked && hmap_get(&live, t->id) == t)
        hmap_del(&live, t->id);
    token_free(t);
}

const char *auth_unusable(const struct auth_token *t)
{
    if (t->revoked)
        return "was revoked";
    if (t->expires && t->expires <= now_ms())
        return "has expired";
    return NULL;
}

enum auth_scope auth_scope_of(const struct auth_token *t)
{
    return t->scope;
}

const char *auth_id(const struct auth_token *t)
{
    return t->id;
}

bool auth_owns_call(const struct auth_token *t, const char *call_id)
{
    return t->scope != AUTH_CONTAINER || hmap_get(&t->owned, call_id) != NULL;
}

void auth_note_call(struct auth_token *t, const char *call_id)
{
    if (!t || t->scope != AUTH_CONTAINER || hmap_get(&t->owned, call_id))
        return;
    char *key = mem_strdup(call_id);
    if (!key || hmap_put(&t->owned, key, key) < 0) {
        mem_free(key);
        log_warn("auth: out of memory: container token %s will not be able to read call %s", t->id,
                 call_id);
    }
}

struct auth_token *auth_container_new(char id_out[ID_SIZE], char secret_out[AUTH_SECRET_LEN + 1])
{
    struct auth_token *t = mem_calloc(1, sizeof *t);
    if (!t)
        return NULL;
    id_new(t->id, "tk");
    char secret[AUTH_SECRET_LEN + 1];
    if (new_secret(secret) < 0) {
        mem_free(t);
        return NULL;
    }
    digest(secret, t->hash);
    t->scope = AUTH_CONTAINER;
    t->refs = 1;
    hmap_init(&t->owned);
    if (hmap_put(&live, t->id, t) < 0) {
        mem_free(t);
        return NULL;
    }
    memcpy(id_out, t->id, ID_SIZE);
    memcpy(secret_out, secret, sizeof secret);
    return t;
}

void auth_on_revoke(void (*fn)(struct auth_token *t))
{
    revoke_hook = fn;
}

/* Marks t revoked and tells the hook (the connections holding it close). */
static void mark_revoked(struct auth_token *t)
{
    if (t->revoked)
        return;
    t->revoked = true;
    if (hmap_get(&live, t->id) == t)
        hmap_del(&live, t->id);
    /* Only the revoker's reference: no connection to tell. */
    if (revoke_hook && t->refs > 1) {
        t->refs++; /* the hook's closes may release references */
        revoke_hook(t);
        t->refs--;
    }
}

void auth_revoke(struct auth_token *t)
{
    if (!t)
        return;
    mark_revoked(t);
    auth_release(t);
}

/* Admin tokens in the store other than id that have not expired. -1 on failure. */
static int other_admins(const char *id)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_db(),
                           "SELECT count(*) FROM tokens WHERE scope = 'admin' AND token_id != ?1"
                           " AND (expires IS NULL OR expires > ?2)",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms());
    int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    return n;
}

int auth_revoke_id(const char *id)
{
    struct auth_token *t = hmap_get(&live, id);
    if (t && t->scope == AUTH_CONTAINER) {
        t->refs++; /* ours, for mark_revoked's check: the container's stays */
        mark_revoked(t);
        auth_release(t);
        return 0;
    }
    struct auth_token *stored = load(id);
    if (!stored)
        return -1;
    bool admin = stored->scope == AUTH_ADMIN;
    token_free(stored);
    if (admin) {
        int others = other_admins(id);
        if (others < 0) {
            log_error("auth: cannot count admin tokens: %s", sqlite3_errmsg(store_db()));
            return -3;
        }
        if (others == 0)
            return -2;
    }
    sqlite3_stmt *st;
    int rc =
        sqlite3_prepare_v2(store_db(), "DELETE FROM tokens WHERE token_id = ?1", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_finalize(st);
    }
    if (rc != SQLITE_OK) {
        log_error("auth: cannot delete token %s: %s", id, sqlite3_errmsg(store_db()));
        return -3;
    }
    log_info("token %s was revoked", id);
    if (t) {
        t->refs++;
        mark_revoked(t);
        auth_release(t);
    }
    return 0;
}

struct auth_info *auth_list(size_t *n)
{
    *n = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_db(),
                           "SELECT token_id, scope, created, expires, last_used FROM tokens"
                           " ORDER BY created, token_id",
                           -1, &st, NULL) != SQLITE_OK) {
        log_error("auth: cannot list tokens: %s", sqlite3_errmsg(store_db()));
        return NULL;
    }
    struct auth_info *all = NULL;
    size_t cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (*n == cap) {
            size_t c = cap ? cap * 2 : 16;
            struct auth_info *p = mem_realloc(all, c * sizeof *p);
            if (!p) {
                log_error("auth: out of memory listing tokens");
                break;
            }
            all = p;
            cap = c;
        }
        struct auth_info *i = &all[*n];
        snprintf(i->id, sizeof i->id, "%s", (const char *)sqlite3_column_text(st, 0));
        if (auth_scope_parse((const char *)sqlite3_column_text(st, 1), &i->scope) < 0)
            continue; /* not one we know: it cannot log in either */
        i->created = sqlite3_column_int64(st, 2);
        i->expires = sqlite3_column_int64(st, 3);
        i->last_used = sqlite3_column_int64(st, 4);
        const struct auth_token *t = hmap_get(&live, i->id);
        if (t && t->last_used > i->last_used)
            i->last_used = t->last_used;
        (*n)++;
    }
    sqlite3_finalize(st);
    return all;
}

/* --- refused-token log lines ------------------------------------------------------------------ */

static void log_summary(void)
{
    if (log_suppressed > 0)
        log_warn("%ld more refused tokens in the last minute were not logged", log_suppressed);
    log_suppressed = 0;
    log_count = 0;
    log_window_start = uv_now(loop);
}

static void log_window_over(uv_timer_t *h)
{
    (void)h;
    log_summary();
}

void auth_log_refused(const char *where, const char *id, const char *why)
{
    uint64_t now = loop ? uv_now(loop) : 0;
    if (now - log_window_start >= AUTH_LOG_WINDOW_MS) {
        if (log_timer_ready)
            uv_timer_stop(&log_timer); /* its window is over: summed up here */
        log_summary();
    }
    if (log_count < AUTH_LOG_BURST) {
        log_count++;
        log_warn("%s: refused token %s: it %s%s", where,
                 id && id_valid(id, "tk") ? id : "(malformed id)", why,
                 log_count == AUTH_LOG_BURST ? " (more refusals this minute are only counted)"
                                             : "");
        return;
    }
    log_suppressed++;
    if (log_timer_ready && !uv_is_active((uv_handle_t *)&log_timer))
        uv_timer_start(&log_timer, log_window_over, log_window_start + AUTH_LOG_WINDOW_MS - now, 0);
}
