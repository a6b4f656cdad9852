/*
 * auth.h - tokens: who a connection is, and what it may do.
 *
 * A token is an id ("tk-...") and a secret (64 hex characters, 256 random bits) with a scope
 * and an optional expiry. The store keeps only SHA-256 of the secret (a high-entropy secret needs
 * no slow hash), its scope and its expiry. Scopes nest: admin > deploy > call > container; which
 * operation needs which scope is the caller's table (proto.c, http_api.c; docs/security.md).
 *
 * Container tokens live in memory only: each container (and each snapshot template) gets its own,
 * minted when it starts and revoked when it ends. They may do what call tokens do, except read
 * calls (GET, CANCEL, CALL_INFO, OUTPUTS, MAP_INPUTS, CALL_GRAPH) other than the ones made with
 * that same token (auth_note_call / auth_owns_call).
 *
 * A connection that authenticated holds a reference to its token (auth_login / auth_release).
 * Revoking a token (auth_revoke, auth_revoke_id) marks it at once: the hook set by
 * auth_on_revoke is told, so that connections holding it are closed, and auth_unusable refuses
 * it from then on. A token in use that expires is handled the same way when its expiry comes (a
 * timer), and auth_unusable refuses it too.
 */
#ifndef SKIFF_SERVER_AUTH_H
#define SKIFF_SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/id.h"

#define AUTH_SECRET_LEN 64

/* Ordered: a scope may do everything the ones below it may. */
enum auth_scope { AUTH_CONTAINER = 0, AUTH_CALL = 1, AUTH_DEPLOY = 2, AUTH_ADMIN = 3 };

struct auth_token;

/* One stored token, for listings (never its secret). */
struct auth_info {
    char id[ID_SIZE];
    enum auth_scope scope;
    int64_t created;   /* unix s */
    int64_t expires;   /* unix ms, or 0: never */
    int64_t last_used; /* unix s of the last HELLO (kept to the minute), or 0: never */
};

/* Sets up the module (loop: for the timer of the refused-token log summary). 0 or -1. */
int auth_init(uv_loop_t *loop);
/* Shutdown: closes the module's timer (before the loop's last run). */
void auth_shutdown(void);
/* Frees the tokens still live (after every connection and container closed). */
void auth_deinit(void);
/* True if the store has no token yet (first start). */
bool auth_empty(void);
/* Makes and stores a new token of scope (not AUTH_CONTAINER) that expires at expires (unix ms;
 * 0: never): id into id_out (ID_SIZE), secret into secret_out (AUTH_SECRET_LEN + 1). 0, or -1
 * (logged). */
int auth_new_token(enum auth_scope scope, int64_t expires, char *id_out, char *secret_out);
/* Stores an existing token (the one in the user's ~/.skiff.toml) as an admin token. 0 or -1
 * (logged). */
int auth_adopt_token(const char *id, const char *secret);

/* Checks a presented token (constant-time in the secret). A new reference to it (release with
 * auth_release), or NULL with *why saying why ("is unknown or its secret is wrong", "expired");
 * the caller logs it with auth_log_refused. */
struct auth_token *auth_login(const char *id, const char *secret, const char **why);
/* Takes another reference to t (NULL: nothing); returns t. */
struct auth_token *auth_ref(struct auth_token *t);
/* Drops a reference (NULL: nothing). */
void auth_release(struct auth_token *t);
/* NULL while t may be used, else why not ("was revoked", "has expired"). */
const char *auth_unusable(const struct auth_token *t);
enum auth_scope auth_scope_of(const struct auth_token *t);
const char *auth_id(const struct auth_token *t);

/* "admin", "deploy", "call", "container". */
const char *auth_scope_name(enum auth_scope s);
/* Parses "admin", "deploy" or "call". 0 or -1. */
int auth_scope_parse(const char *s, enum auth_scope *out);

/* A container token may read call_id only if it made it; any other token may. */
bool auth_owns_call(const struct auth_token *t, const char *call_id);
/* Remembers that t made call_id (container tokens only; others need not). Out of memory: the
 * container will not be able to read that call back, which is logged. */
void auth_note_call(struct auth_token *t, const char *call_id);

/* A new container token, in memory only: its id into id_out, its secret into secret_out. The
 * caller holds the returned reference and ends the token with auth_revoke. NULL when out of
 * memory or the system's random source failed. */
struct auth_token *auth_container_new(char id_out[ID_SIZE], char secret_out[AUTH_SECRET_LEN + 1]);
/* Revokes t and drops the caller's reference (container tokens, as their container ends). */
void auth_revoke(struct auth_token *t);
/* TOKEN_REVOKE: revokes the token id (stored: deleted from the store; container: revoked). 0;
 * -1 no such token; -2 it is the last admin token (kept, so the server stays manageable); -3 the
 * store failed (logged). */
int auth_revoke_id(const char *id);
/* Sets the function told when a token in use is revoked or expires (so that the connections
 * holding it close), before its references go. */
void auth_on_revoke(void (*fn)(struct auth_token *t));

/* The stored tokens, oldest first, in a mem_alloc'd array of *n (free it with mem_free); NULL
 * with *n 0 when there are none, or on failure (logged). */
struct auth_info *auth_list(size_t *n);

/* Logs a refused token (where: the peer; id: as presented, printed only when well formed),
 * at most 10 lines a minute (AUTH_LOG_BURST, auth.c); past that the refusals are counted and one
 * line at the end of the minute says how many were not logged. */
void auth_log_refused(const char *where, const char *id, const char *why);

#endif
