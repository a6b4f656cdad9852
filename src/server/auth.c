/*
 * auth.c - token creation and checking (see auth.h). SHA-256 by OpenSSL.
 */
#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "common/id.h"
#include "common/log.h"
#include "store.h"

static char container_id[ID_SIZE];
static char container_secret[AUTH_SECRET_LEN + 1];

static int new_secret(char out[AUTH_SECRET_LEN + 1])
{
    unsigned char raw[AUTH_SECRET_LEN / 2];
    if (id_random(raw, sizeof raw) < 0)
        return -1;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

static void digest(const char *secret, unsigned char out[32])
{
    unsigned int n = 32;
    EVP_Digest(secret, strlen(secret), out, &n, EVP_sha256(), NULL);
}

int auth_init(void)
{
    id_new(container_id, "tk");
    return new_secret(container_secret);
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

static int store_token(const char *id, const char *secret)
{
    unsigned char h[32];
    digest(secret, h);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(store_db(),
                                "INSERT INTO tokens(token_id, secret_hash, created)"
                                " VALUES(?1, ?2, strftime('%s','now'))",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, h, sizeof h, SQLITE_STATIC);
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
    return store_token(id, secret);
}

int auth_new_token(char *id_out, char *secret_out)
{
    char id[ID_SIZE], secret[AUTH_SECRET_LEN + 1];
    id_new(id, "tk");
    if (new_secret(secret) < 0 || store_token(id, secret) < 0)
        return -1;
    memcpy(id_out, id, sizeof id);
    memcpy(secret_out, secret, sizeof secret);
    return 0;
}

bool auth_check(const char *id, const char *secret)
{
    if (!id || !secret)
        return false;
    if (!strcmp(id, container_id))
        return strlen(secret) == AUTH_SECRET_LEN &&
               CRYPTO_memcmp(secret, container_secret, AUTH_SECRET_LEN) == 0;
    unsigned char h[32];
    digest(secret, h);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_db(), "SELECT secret_hash FROM tokens WHERE token_id = ?1", -1,
                           &st, NULL) != SQLITE_OK)
        return false;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    bool ok = false;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == (int)sizeof h)
        ok = CRYPTO_memcmp(sqlite3_column_blob(st, 0), h, sizeof h) == 0;
    sqlite3_finalize(st);
    return ok;
}

const char *auth_container_id(void)
{
    return container_id;
}

const char *auth_container_secret(void)
{
    return container_secret;
}
