/*
 * config.h - the user's ~/.skiff.toml: where the server is and which token to present.
 *
 * The file holds `key = "value"` lines (a subset of TOML: comments with '#', blank lines, basic
 * strings with \" and \\ escapes). Debian has no C TOML library, and three keys do not need one.
 * Keys: server, token_id, token_secret. Unknown keys are ignored.
 */
#ifndef SKIFF_COMMON_CONFIG_H
#define SKIFF_COMMON_CONFIG_H

#include <stddef.h>

#define CONFIG_VALUE_MAX 512

struct config {
    char server[CONFIG_VALUE_MAX]; /* "" when absent */
    char token_id[CONFIG_VALUE_MAX];
    char token_secret[CONFIG_VALUE_MAX];
};

/* The path of the user's config file ($HOME/.skiff.toml) into out. 0, or -1 without $HOME. */
int config_path(char *out, size_t size);
/* Reads path into c (absent keys stay ""). 0; -1 if the file cannot be read (errno set);
 * -2 if a line is malformed, with its number in *bad_line (may be NULL). */
int config_read(const char *path, struct config *c, int *bad_line);
/* Writes c to path with mode 0600, only if path does not exist yet (O_EXCL). 0, or -1 (errno:
 * EEXIST when it exists). */
int config_write_new(const char *path, const struct config *c);

/* Where a client connects and who it is: explicit arguments first, then $SKIFF_SERVER /
 * $SKIFF_TOKEN_ID / $SKIFF_TOKEN_SECRET, then ~/.skiff.toml, then the default server
 * 127.0.0.1:7878. NULL arguments mean "not given". Missing token fields stay "". 0, or -2 if the
 * config file is malformed (its line in *bad_line). */
int config_resolve(const char *server, const char *token_id, const char *token_secret,
                   struct config *out, int *bad_line);

#define CONFIG_DEFAULT_SERVER "127.0.0.1:7878"

#endif
