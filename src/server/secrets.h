/*
 * secrets.h - named sets of environment variables for functions (`skiff secret`).
 *
 * A secret is a name and KEY=VALUE pairs, kept in the store's `secrets` table (the data
 * directory: 0700, its files 0600; not encrypted). A function declares the secrets it uses
 * (`.secrets = "a,b"`); DEPLOY refuses one that does not exist, and each container start puts
 * their pairs in the worker's environment, so a secret changed later reaches new containers and
 * one deleted later fails their start. Values leave the server only that way: no request
 * returns them and nothing logs them (SECRET_LIST gives names, keys and times).
 */
#ifndef SKIFF_SERVER_SECRETS_H
#define SKIFF_SERVER_SECRETS_H

#include <stddef.h>

#include "apps.h"
#include "conn.h"

/* The most bytes of keys and values one secret may hold: environment variables, not files. */
#define SECRETS_MAX_BYTES (32u << 10)
/* The most keys one secret may hold. */
#define SECRETS_MAX_KEYS 256

/* Makes the store's secrets table. 0, or -1 (logged). */
int secrets_init(void);
/* Answers SECRET_CREATE, SECRET_LIST and SECRET_DELETE (docs/protocol.md). */
void secrets_request(struct conn *c, struct wire_msg *m);
/* Checks that the secrets each of fns[0..n) declares exist. 0, or -1 with the first missing one
 * named in why. */
int secrets_check_deploy(const struct deploy_fn *fns, size_t n, char *why, size_t whylen);
/* Checks that the secrets cfg declares still exist. 0, or -1 with the first missing one (or a
 * failure of the store) named in why. */
int secrets_check(const struct fn_config *cfg, char *why, size_t whylen);
/* The "KEY=VALUE" strings of the secrets cfg declares (in their order; a key in two of them:
 * the later one's value), NUL-terminated one after another in a new mem_alloc'd block of *len
 * bytes holding *count strings (NULL with *count 0 when there are none). -1 with why set when a
 * secret no longer exists, cannot be read or memory runs out. */
int secrets_env(const struct fn_config *cfg, char **block, size_t *len, size_t *count, char *why,
                size_t whylen);

#endif
