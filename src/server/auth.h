/*
 * auth.h - tokens: every client connection presents one in its HELLO.
 *
 * A token is an id ("tk-...") and a secret (64 hex characters, 256 random bits). The store keeps
 * only SHA-256 of the secret; a high-entropy secret needs no slow hash. Containers get a token
 * that lives in memory for this server process only.
 */
#ifndef SKIFF_SERVER_AUTH_H
#define SKIFF_SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define AUTH_SECRET_LEN 64

/* Creates the container token. 0 or -1. */
int auth_init(void);
/* True if the store has no token yet (first start). */
bool auth_empty(void);
/* Makes and stores a new token: id into id_out (ID_SIZE), secret into secret_out
 * (AUTH_SECRET_LEN + 1). 0, or -1 (logged). */
int auth_new_token(char *id_out, char *secret_out);
/* Stores an existing token (the one in the user's ~/.skiff.toml). 0 or -1 (logged). */
int auth_adopt_token(const char *id, const char *secret);
/* True if id and secret name a stored token or the container token. Constant-time in the
 * secret. */
bool auth_check(const char *id, const char *secret);
/* The container token. */
const char *auth_container_id(void);
const char *auth_container_secret(void);

#endif
