/*
 * config.c - reading and writing ~/.skiff.toml (see config.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int config_path(char *out, size_t size)
{
    const char *home = getenv("HOME");
    if (!home || !*home)
        return -1;
    int n = snprintf(out, size, "%s/.skiff.toml", home);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

/* Parses `"..."` at p into out. Returns a pointer past the closing quote, or NULL. */
static const char *parse_string(const char *p, char *out, size_t size)
{
    if (*p++ != '"')
        return NULL;
    size_t n = 0;
    while (*p && *p != '"') {
        char c = *p++;
        if (c == '\\') {
            c = *p++;
            if (c != '"' && c != '\\')
                return NULL;
        }
        if (n + 1 >= size)
            return NULL;
        out[n++] = c;
    }
    if (*p != '"')
        return NULL;
    out[n] = '\0';
    return p + 1;
}

static char *field(struct config *c, const char *key, size_t n)
{
    if (n == 6 && !strncmp(key, "server", n))
        return c->server;
    if (n == 8 && !strncmp(key, "token_id", n))
        return c->token_id;
    if (n == 12 && !strncmp(key, "token_secret", n))
        return c->token_secret;
    return NULL;
}

int config_read(const char *path, struct config *c, int *bad_line)
{
    memset(c, 0, sizeof *c);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[2048], value[CONFIG_VALUE_MAX];
    int no = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        no++;
        const char *p = line + strspn(line, " \t");
        if (*p == '#' || *p == '\n' || *p == '\r' || !*p)
            continue;
        const char *key = p;
        size_t kn = strcspn(p, " \t=");
        p += kn;
        p += strspn(p, " \t");
        if (*p++ != '=') {
            rc = -2;
            break;
        }
        p += strspn(p, " \t");
        p = parse_string(p, value, sizeof value);
        if (!p) {
            rc = -2;
            break;
        }
        p += strspn(p, " \t\r\n");
        if (*p && *p != '#') {
            rc = -2;
            break;
        }
        char *dst = field(c, key, kn);
        if (dst)
            snprintf(dst, CONFIG_VALUE_MAX, "%s", value);
    }
    fclose(f);
    if (rc == -2 && bad_line)
        *bad_line = no;
    return rc;
}

/* Writes s as a TOML basic string body (escaping '"' and '\\') into out. */
static void escape(char *out, size_t size, const char *s)
{
    size_t n = 0;
    for (; *s && n + 3 < size; s++) {
        if (*s == '"' || *s == '\\')
            out[n++] = '\\';
        out[n++] = *s;
    }
    out[n] = '\0';
}

int config_write_new(const char *path, const struct config *c)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    char text[6 * CONFIG_VALUE_MAX + 256];
    char server[2 * CONFIG_VALUE_MAX], id[2 * CONFIG_VALUE_MAX], secret[2 * CONFIG_VALUE_MAX];
    escape(server, sizeof server, c->server);
    escape(id, sizeof id, c->token_id);
    escape(secret, sizeof secret, c->token_secret);
    int n = snprintf(text, sizeof text,
                     "# skiff client settings, written by skiffd on its first start.\n"
                     "server = \"%s\"\ntoken_id = \"%s\"\ntoken_secret = \"%s\"\n",
                     server, id, secret);
    int rc = 0;
    if (n < 0 || (size_t)n >= sizeof text || write(fd, text, (size_t)n) != n)
        rc = -1;
    int saved = errno;
    close(fd);
    if (rc < 0) {
        unlink(path);
        errno = saved;
    }
    return rc;
}

static void pick(char *dst, const char *arg, const char *env_name)
{
    const char *env = getenv(env_name);
    if (arg && *arg)
        snprintf(dst, CONFIG_VALUE_MAX, "%s", arg);
    else if (env && *env)
        snprintf(dst, CONFIG_VALUE_MAX, "%s", env);
}

int config_resolve(const char *server, const char *token_id, const char *token_secret,
                   struct config *out, int *bad_line)
{
    char path[4096];
    int rc = 0;
    memset(out, 0, sizeof *out);
    if (config_path(path, sizeof path) == 0) {
        rc = config_read(path, out, bad_line);
        if (rc == -1)
            rc = 0; /* no file: fine */
    }
    pick(out->server, server, "SKIFF_SERVER");
    pick(out->token_id, token_id, "SKIFF_TOKEN_ID");
    pick(out->token_secret, token_secret, "SKIFF_TOKEN_SECRET");
    if (!out->server[0])
        snprintf(out->server, sizeof out->server, "%s", CONFIG_DEFAULT_SERVER);
    return rc == -2 ? -2 : 0;
}
