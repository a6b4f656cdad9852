/*
 * resources.c - parsing of the secrets and volumes a function declares (see resources.h).
 * No allocation: fixed arrays the caller gives, bounded by RES_MAX_*.
 */
#include "resources.h"

#include <stdio.h>
#include <string.h>

/* True when c may be part of a name (letters, digits and extra). */
static bool name_char(char c, const char *extra)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr(extra, c));
}

bool res_valid_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > RES_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char(name[i], "._-"))
            return false;
    return true;
}

bool res_valid_key(const char *key)
{
    size_t n = key ? strlen(key) : 0;
    if (n == 0 || n > RES_KEY_MAX || (key[0] >= '0' && key[0] <= '9') || !strncmp(key, "SKIFF_", 6))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char(key[i], "_"))
            return false;
    return true;
}

const char *res_path_problem(const char *path)
{
    static const char *const reserved[] = {RES_RESERVED};
    size_t n = strlen(path);
    if (path[0] != '/')
        return "is not an absolute path";
    if (n > RES_PATH_MAX)
        return "is longer than 255 bytes";
    if (n == 1)
        return "is the root: a volume needs a directory of its own";
    if (path[n - 1] == '/')
        return "ends in '/'";
    for (const char *p = path + 1; *p;) {
        size_t len = strcspn(p, "/");
        if (len == 0)
            return "has an empty component ('//')";
        if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return "has a '.' or '..' component";
        for (size_t i = 0; i < len; i++)
            if (!name_char(p[i], "._-"))
                return "has a character other than letters, digits, '.', '_', '-' and '/'";
        p += len + (p[len] == '/');
    }
    size_t first = strcspn(path + 1, "/");
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strlen(reserved[i]) == first && !strncmp(path + 1, reserved[i], first))
            return "is in a system directory of the container (/usr, /proc, /tmp, /etc, /dev, "
                   "/var and the like): pick a path of its own, e.g. /data";
    return NULL;
}

/* The next comma-separated item of *s, trimmed, into out (size bytes). 1 (an item), 0 (the end)
 * or -1 (too long). */
static int next_item(const char **s, char *out, size_t size)
{
    const char *p = *s;
    while (*p == ' ' || *p == ',')
        p++;
    if (!*p)
        return 0;
    size_t len = strcspn(p, ",");
    *s = p + len;
    while (len > 0 && p[len - 1] == ' ')
        len--;
    if (len >= size)
        return -1;
    memcpy(out, p, len);
    out[len] = '\0';
    return 1;
}

int res_parse_secrets(const char *s, char (*names)[RES_NAME_MAX + 1], size_t max, char *why,
                      size_t whylen)
{
    size_t n = 0;
    char item[RES_NAME_MAX + 2];
    int rc;
    while (s && (rc = next_item(&s, item, sizeof item)) != 0) {
        if (rc < 0 || !res_valid_name(item)) {
            snprintf(why, whylen, "secret name '%s' is not 1-63 letters, digits, '.', '_' and '-'",
                     rc < 0 ? "(too long)" : item);
            return -1;
        }
        for (size_t i = 0; i < n; i++)
            if (!strcmp(names[i], item)) {
                snprintf(why, whylen, "secret '%s' is listed twice", item);
                return -1;
            }
        if (n == max) {
            snprintf(why, whylen, "more than %zu secrets", max);
            return -1;
        }
        memcpy(names[n++], item, strlen(item) + 1);
    }
    return (int)n;
}

/* True when directory a holds b or is b. */
static bool path_holds(const char *a, const char *b)
{
    size_t n = strlen(a);
    return !strncmp(a, b, n) && (b[n] == '\0' || b[n] == '/');
}

int res_parse_volumes(const char *s, struct res_volume *out, size_t max, char *why, size_t whylen)
{
    size_t n = 0;
    char item[RES_PATH_MAX + RES_NAME_MAX + 3];
    int rc;
    while (s && (rc = next_item(&s, item, sizeof item)) != 0) {
        char *eq = rc > 0 ? strchr(item, '=') : NULL;
        if (!eq) {
            snprintf(why, whylen, "volume entry '%.60s' is not PATH=NAME (e.g. /data=my-volume)",
                     rc > 0 ? item : "(too long)");
            return -1;
        }
        *eq = '\0';
        const char *problem = res_path_problem(item);
        if (problem) {
            snprintf(why, whylen, "volume path '%.60s' %s", item, problem);
            return -1;
        }
        if (!res_valid_name(eq + 1)) {
            snprintf(why, whylen,
                     "volume name '%.64s' is not 1-63 letters, digits, '.', '_' and '-'", eq + 1);
            return -1;
        }
        for (size_t i = 0; i < n; i++)
            if (path_holds(out[i].path, item) || path_holds(item, out[i].path)) {
                snprintf(why, whylen, "volume paths '%s' and '%s' overlap", out[i].path, item);
                return -1;
            }
        if (n == max) {
            snprintf(why, whylen, "more than %zu volumes", max);
            return -1;
        }
        memcpy(out[n].path, item, strlen(item) + 1);
        memcpy(out[n].name, eq + 1, strlen(eq + 1) + 1);
        n++;
    }
    return (int)n;
}
