/*
 * secrets.c - secrets in the store (see secrets.h).
 *
 * One row per secret: its name, its pairs as a msgpack map (as SECRET_CREATE sent them, after
 * checking), and when it was created and last replaced. Reads go to the store each time (a
 * container start reads its function's few secrets): nothing is cached, so a value never sits
 * in the server's memory longer than a request or a start.
 */
#include "secrets.h"

#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "auth.h"
#include "common/codec.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/proto.h"
#include "common/resources.h"
#include "common/wire.h"
#include "store.h"

int secrets_init(void)
{
    if (sqlite3_exec(store_db(),
                     "CREATE TABLE IF NOT EXISTS secrets(name TEXT PRIMARY KEY, data BLOB NOT NULL,"
                     " created INTEGER NOT NULL, updated INTEGER NOT NULL)",
                     NULL, NULL, NULL) != SQLITE_OK) {
        log_error("secrets: cannot create their table: %s", sqlite3_errmsg(store_db()));
        return -1;
    }
    return 0;
}

/* Checks the values map of a SECRET_CREATE. NULL, or what is wrong (in why). */
static const char *check_values(const msgpack_object *v, char *why, size_t whylen)
{
    if (!v || v->type != MSGPACK_OBJECT_MAP || v->via.map.size == 0)
        return "field 'values' (a map of KEY to VALUE, at least one) is missing";
    if (v->via.map.size > SECRETS_MAX_KEYS) {
        snprintf(why, whylen, "a secret holds at most %d keys", SECRETS_MAX_KEYS);
        return why;
    }
    size_t total = 0;
    for (uint32_t i = 0; i < v->via.map.size; i++) {
        const msgpack_object *k = &v->via.map.ptr[i].key, *val = &v->via.map.ptr[i].val;
        char key[RES_KEY_MAX + 2];
        if (k->type != MSGPACK_OBJECT_STR || k->via.str.size >= sizeof key) {
            snprintf(why, whylen, "a key is not a string of at most %d characters", RES_KEY_MAX);
            return why;
        }
        memcpy(key, k->via.str.ptr, k->via.str.size);
        key[k->via.str.size] = '\0';
        if (!res_valid_key(key)) {
            snprintf(why, whylen,
                     "key '%.*s' is not an environment variable name (a letter or '_', then "
                     "letters, digits and '_'; not SKIFF_*, which the runtime sets)",
                     (int)strnlen(key, 130), key);
            return why;
        }
        if (val->type != MSGPACK_OBJECT_STR || memchr(val->via.str.ptr, 0, val->via.str.size)) {
            snprintf(why, whylen, "the value of key %s is not a string without NUL bytes", key);
            return why;
        }
        for (uint32_t j = 0; j < i; j++)
            if (v->via.map.ptr[j].key.via.str.size == k->via.str.size &&
                !memcmp(v->via.map.ptr[j].key.via.str.ptr, key, k->via.str.size)) {
                snprintf(why, whylen, "key %s is given twice", key);
                return why;
            }
        total += k->via.str.size + val->via.str.size + 2;
    }
    if (total > SECRETS_MAX_BYTES) {
        snprintf(why, whylen, "the keys and values are %zu bytes, over the limit of %u", total,
                 SECRETS_MAX_BYTES);
        return why;
    }
    return NULL;
}

/* Packs the keys of the stored map data[0..n) as an array into w. */
static void pack_keys(struct wire_writer *w, const void *data, size_t n)
{
    msgpack_zone zone;
    msgpack_object obj;
    size_t off = 0;
    if (!msgpack_zone_init(&zone, 1024) ||
        msgpack_unpack(data, n, &off, &zone, &obj) != MSGPACK_UNPACK_SUCCESS ||
        obj.type != MSGPACK_OBJECT_MAP) {
        wire_pack_array(w, 0);
        msgpack_zone_destroy(&zone);
        return;
    }
    wire_pack_array(w, obj.via.map.size);
    for (uint32_t i = 0; i < obj.via.map.size; i++)
        msgpack_pack_str_with_body(&w->pk, obj.via.map.ptr[i].key.via.str.ptr,
                                   obj.via.map.ptr[i].key.via.str.size);
    msgpack_zone_destroy(&zone);
}

static void create(struct conn *c, struct wire_msg *m)
{
    char name[RES_NAME_MAX + 2], why[300];
    if (!wire_copy_str(m, "name", name, sizeof name) || !res_valid_name(name)) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID,
                   "field 'name' is not a secret name (1-63 letters, digits, '.', '_', '-')");
        return;
    }
    const msgpack_object *values = wire_get(m, "values");
    const char *problem = check_values(values, why, sizeof why);
    if (problem) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID, "cannot create secret %s: %s", name, problem);
        return;
    }
    bool replace = false;
    wire_get_bool(m, "replace", &replace);
    struct buf b;
    buf_init(&b, 2 * SECRETS_MAX_BYTES);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, codec_buf_write);
    if (msgpack_pack_object(&pk, *values) != 0) {
        buf_deinit(&b);
        conn_error(c, m->rid, SKIFF_ERR_NOMEM, "out of memory");
        return;
    }
    int64_t now = store_now_ms() / 1000;
    sqlite3 *db = store_db();
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(
        db,
        replace
            ? "INSERT INTO secrets(name, data, created, updated) VALUES(?1, ?2, ?3, ?3)"
              " ON CONFLICT(name) DO UPDATE SET data = excluded.data, updated = excluded.updated"
            : "INSERT INTO secrets(name, data, created, updated) VALUES(?1, ?2, ?3, ?3)",
        -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_blob64(st, 2, b.data, b.len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
    }
    if (rc == SQLITE_CONSTRAINT) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID,
                   "secret %s already exists: delete it first, or replace it (skiff secret create "
                   "--force)",
                   name);
    } else if (rc != SQLITE_DONE) {
        log_error("secrets: cannot store secret %s: %s", name, sqlite3_errmsg(db));
        conn_error(c, m->rid, SKIFF_ERR_INTERNAL, "the server could not store secret %s", name);
    } else {
        log_info("%s: token %s stored secret %s (%u key%s)", c->peer, auth_id(c->token), name,
                 values->via.map.size, values->via.map.size == 1 ? "" : "s");
        struct wire_writer w;
        wire_begin(&w, conn_out(c), OP_OK, m->rid, 3);
        wire_str(&w, "name", name);
        wire_key(&w, "keys");
        pack_keys(&w, b.data, b.len);
        wire_int(&w, "updated", now);
        wire_end(&w);
    }
    buf_deinit(&b);
}

static void list(struct conn *c, struct wire_msg *m)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_db(),
                           "SELECT name, data, created, updated FROM secrets ORDER BY name", -1,
                           &st, NULL) != SQLITE_OK) {
        conn_error(c, m->rid, SKIFF_ERR_INTERNAL, "the server could not list secrets");
        return;
    }
    size_t n = 0;
    while (sqlite3_step(st) == SQLITE_ROW)
        n++;
    sqlite3_reset(st);
    struct wire_writer w;
    wire_begin(&w, conn_out(c), OP_OK, m->rid, 1);
    wire_key(&w, "secrets");
    wire_pack_array(&w, n);
    for (size_t i = 0; i < n && sqlite3_step(st) == SQLITE_ROW; i++) {
        wire_pack_map(&w, 4);
        wire_pack_str(&w, "name");
        wire_pack_str(&w, (const char *)sqlite3_column_text(st, 0));
        wire_pack_str(&w, "keys");
        pack_keys(&w, sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1));
        wire_pack_str(&w, "created");
        wire_pack_int(&w, sqlite3_column_int64(st, 2));
        wire_pack_str(&w, "updated");
        wire_pack_int(&w, sqlite3_column_int64(st, 3));
    }
    sqlite3_finalize(st);
    if (wire_end(&w) != SKIFF_OK)
        conn_error(c, m->rid, SKIFF_ERR_NOMEM, "out of memory listing secrets");
}

static void delete (struct conn *c, struct wire_msg *m)
{
    char name[RES_NAME_MAX + 2];
    if (!wire_copy_str(m, "name", name, sizeof name) || !res_valid_name(name)) {
        conn_error(c, m->rid, SKIFF_ERR_INVALID, "field 'name' is not a secret name");
        return;
    }
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(store_db(), "DELETE FROM secrets WHERE name = ?1", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
    }
    if (rc != SQLITE_DONE)
        conn_error(c, m->rid, SKIFF_ERR_INTERNAL, "the server could not delete secret %s", name);
    else if (sqlite3_changes(store_db()) == 0)
        conn_error(c, m->rid, SKIFF_ERR_NOT_FOUND, "there is no secret %s", name);
    else {
        log_info("%s: token %s deleted secret %s", c->peer, auth_id(c->token), name);
        conn_ok(c, m->rid);
    }
}

void secrets_request(struct conn *c, struct wire_msg *m)
{
    if (m->op == OP_SECRET_CREATE)
        create(c, m);
    else if (m->op == OP_SECRET_LIST)
        list(c, m);
    else
        delete (c, m);
}

/* Calls fn(ctx, data, len) with the stored map of secret name. 1 (called), 0 (no such
 * secret) or -1 (the store failed). */
static int with_secret(const char *name, void (*fn)(void *, const void *, size_t), void *ctx)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_db(), "SELECT data FROM secrets WHERE name = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && fn)
        fn(ctx, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int secrets_check_deploy(const struct deploy_fn *fns, size_t n, char *why, size_t whylen)
{
    for (size_t i = 0; i < n; i++) {
        char names[RES_MAX_SECRETS][RES_NAME_MAX + 1];
        int k = res_parse_secrets(fns[i].cfg.secrets, names, RES_MAX_SECRETS, why, whylen);
        for (int j = 0; j < k; j++) {
            int rc = with_secret(names[j], NULL, NULL);
            if (rc < 0) {
                snprintf(why, whylen, "the server could not read secret %s (function '%s')",
                         names[j], fns[i].name);
                return -1;
            }
            if (rc == 0) {
                snprintf(why, whylen,
                         "function '%s' uses secret %s, which does not exist (create it with "
                         "`skiff secret create %s KEY=VALUE...`)",
                         fns[i].name, names[j], names[j]);
                return -1;
            }
        }
    }
    return 0;
}

int secrets_check(const struct fn_config *cfg, char *why, size_t whylen)
{
    char names[RES_MAX_SECRETS][RES_NAME_MAX + 1];
    int k = res_parse_secrets(cfg->secrets, names, RES_MAX_SECRETS, why, whylen);
    for (int i = 0; i < k; i++) {
        int rc = with_secret(names[i], NULL, NULL);
        if (rc < 0)
            snprintf(why, whylen, "the server could not read secret %s", names[i]);
        else if (rc == 0)
            snprintf(why, whylen,
                     "secret %s does not exist (it was deleted after the deploy): create it "
                     "again with `skiff secret create %s KEY=VALUE...`",
                     names[i], names[i]);
        if (rc <= 0)
            return -1;
    }
    return k < 0 ? -1 : 0;
}

/* The pairs gathered by secrets_env, in order. */
struct env_acc {
    struct buf b; /* "KEY=VALUE\0"... */
    size_t count;
    bool failed;
};

/* Appends the pairs of one stored map; a key already there is replaced (removed, then added). */
static void add_pairs(void *ctx, const void *data, size_t n)
{
    struct env_acc *acc = ctx;
    msgpack_zone zone;
    msgpack_object obj;
    size_t off = 0;
    if (!msgpack_zone_init(&zone, 1024)) {
        acc->failed = true;
        return;
    }
    if (msgpack_unpack(data, n, &off, &zone, &obj) != MSGPACK_UNPACK_SUCCESS ||
        obj.type != MSGPACK_OBJECT_MAP) {
        acc->failed = true;
        msgpack_zone_destroy(&zone);
        return;
    }
    for (uint32_t i = 0; i < obj.via.map.size && !acc->failed; i++) {
        const msgpack_object *k = &obj.via.map.ptr[i].key, *v = &obj.via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR || v->type != MSGPACK_OBJECT_STR)
            continue;
        /* Drop an earlier pair with the same key. */
        for (size_t p = 0; p < acc->b.len;) {
            size_t len = strlen(acc->b.data + p) + 1;
            if (len > k->via.str.size + 1 && acc->b.data[p + k->via.str.size] == '=' &&
                !memcmp(acc->b.data + p, k->via.str.ptr, k->via.str.size)) {
                memmove(acc->b.data + p, acc->b.data + p + len, acc->b.len - p - len);
                acc->b.len -= len;
                acc->count--;
                break;
            }
            p += len;
        }
        if (buf_append(&acc->b, k->via.str.ptr, k->via.str.size) != 0 ||
            buf_append(&acc->b, "=", 1) != 0 ||
            buf_append(&acc->b, v->via.str.ptr, v->via.str.size) != 0 ||
            buf_append(&acc->b, "", 1) != 0)
            acc->failed = true;
        acc->count++;
    }
    msgpack_zone_destroy(&zone);
}

int secrets_env(const struct fn_config *cfg, char **block, size_t *len, size_t *count, char *why,
                size_t whylen)
{
    *block = NULL;
    *len = *count = 0;
    char names[RES_MAX_SECRETS][RES_NAME_MAX + 1];
    int k = res_parse_secrets(cfg->secrets, names, RES_MAX_SECRETS, why, whylen);
    if (k <= 0)
        return k;
    struct env_acc acc = {.count = 0};
    buf_init(&acc.b, (size_t)RES_MAX_SECRETS * 2 * SECRETS_MAX_BYTES);
    for (int i = 0; i < k; i++) {
        int rc = with_secret(names[i], add_pairs, &acc);
        if (rc <= 0 || acc.failed) {
            if (rc == 0)
                snprintf(why, whylen,
                         "secret %s does not exist (it was deleted after the deploy): create it "
                         "again with `skiff secret create %s KEY=VALUE...`",
                         names[i], names[i]);
            else
                snprintf(why, whylen, "the server could not read secret %s", names[i]);
            buf_deinit(&acc.b);
            return -1;
        }
    }
    *block = acc.b.data;
    *len = acc.b.len;
    *count = acc.count;
    return 0;
}
