/*
 * args.c - command-line parsing for `skiff`: options, JSON arguments, map input lines, seconds
 * (see cli.h). Kept free of I/O so the unit tests can drive it directly.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Longest argument echoed back in an error message before it is cut short. */
#define ECHO_MAX 40

__attribute__((format(printf, 3, 4))) static int fail(char *why, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
    return -1;
}

bool cli_json_requested;

static struct cli_opt *find_opt(struct cli_opt *opts, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(opts[i].name) == len && !strncmp(opts[i].name, name, len))
            return &opts[i];
    return NULL;
}

int cli_getopt(int argc, char **argv, struct cli_opt *opts, size_t nopts, bool *help,
               const char **server, const char **pos, int *npos, char *why, size_t size)
{
    *npos = 0;
    *help = false;
    bool options = true;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!options || strncmp(a, "--", 2) != 0) {
            if (options && !strcmp(a, "-h")) {
                *help = true;
                continue;
            }
            pos[(*npos)++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            options = false;
            continue;
        }
        if (!strcmp(a, "--help")) {
            *help = true;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const char *value = eq ? eq + 1 : NULL;
        if (server && len == 8 && !strncmp(a, "--server", 8)) {
            if (!value && i + 1 >= argc)
                return fail(why, size, "--server needs a value: HOST:PORT or unix:PATH");
            *server = value ? value : argv[++i];
            continue;
        }
        struct cli_opt *o = find_opt(opts, nopts, a, len);
        if (!o && len == 6 && !strncmp(a, "--json", 6) && !value) {
            cli_json_requested = true; /* every command takes it (cli.h) */
            continue;
        }
        if (!o)
            return fail(why, size, "unknown option %.*s", (int)len, a);
        if (!o->has_value && value)
            return fail(why, size, "%s takes no value", o->name);
        if (o->has_value && !value) {
            if (i + 1 >= argc)
                return fail(why, size, "%s needs a value", o->name);
            value = argv[++i];
        }
        if (o->count > 0 && o->has_value && !o->values)
            return fail(why, size, "%s is given more than once", o->name);
        if (o->values)
            o->values[o->count] = value;
        o->count++;
        o->value = value;
    }
    return 0;
}

/* Parses s as one JSON value into *out; on failure writes why naming what (e.g. "argument 2"). */
static int parse_json(const char *s, const char *what, skiff_value **out, char *why, size_t size)
{
    skiff_error err = SKIFF_ERROR_INIT;
    if (skiff_value_from_json(s, strlen(s), out, &err) == SKIFF_OK)
        return 0;
    size_t n = strlen(s);
    fail(why, size, "%s is not valid JSON: '%.*s%s': %s%s", what, ECHO_MAX, s,
         n > ECHO_MAX ? "..." : "", err.message ? err.message : "parse error",
         s[0] && !strchr("[{\"-0123456789tfn", s[0]) ? " (a string needs JSON quotes: '\"text\"')"
                                                     : "");
    skiff_error_clear(&err);
    return -1;
}

/* Adds each NAME=JSON of vals (given with option opt) to map. 0 or -1 with why set. */
static int parse_named(const char *opt, const char *const *vals, int n, skiff_value *map, char *why,
                       size_t size)
{
    for (int i = 0; i < n; i++) {
        const char *eq = strchr(vals[i], '=');
        if (!eq)
            return fail(why, size, "%s '%s' is not NAME=JSON", opt, vals[i]);
        size_t len = (size_t)(eq - vals[i]);
        if (len == 0)
            return fail(why, size, "%s '%s' has an empty name", opt, vals[i]);
        char name[256];
        if (len >= sizeof name)
            return fail(why, size, "%s name '%.*s...' is too long", opt, ECHO_MAX, vals[i]);
        memcpy(name, vals[i], len);
        name[len] = '\0';
        if (skiff_map_get(map, name))
            return fail(why, size, "%s %s is given more than once", opt, name);
        char what[300];
        snprintf(what, sizeof what, "%s %s", opt, name);
        skiff_value *v;
        if (parse_json(eq + 1, what, &v, why, size) < 0)
            return -1;
        int rc = skiff_map_set(map, name, v);
        if (rc == SKIFF_ERR_NOMEM)
            return fail(why, size, "out of memory");
        if (rc != SKIFF_OK)
            return fail(why, size, "%s name '%s' is not valid UTF-8", opt, name);
    }
    return 0;
}

int cli_parse_call_args(const char *const *argv, int argc, const char *const *kwargs, int nkwargs,
                        skiff_value **args, skiff_value **kw, char *why, size_t size)
{
    skiff_value *list = skiff_value_list(), *map = skiff_value_map();
    if (!list || !map) {
        fail(why, size, "out of memory");
        goto bad;
    }
    for (int i = 0; i < argc; i++) {
        char what[32];
        snprintf(what, sizeof what, "argument %d", i + 1);
        skiff_value *v;
        if (parse_json(argv[i], what, &v, why, size) < 0)
            goto bad;
        if (skiff_list_append(list, v) != SKIFF_OK) {
            fail(why, size, "out of memory");
            goto bad;
        }
    }
    if (parse_named("--kwarg", kwargs, nkwargs, map, why, size) < 0)
        goto bad;
    *args = list;
    *kw = map;
    return 0;
bad:
    skiff_value_free(list);
    skiff_value_free(map);
    return -1;
}

int cli_parse_params(const char *const *vals, int n, skiff_value **params, char *why, size_t size)
{
    skiff_value *map = skiff_value_map();
    if (!map)
        return fail(why, size, "out of memory");
    if (parse_named("--param", vals, n, map, why, size) < 0) {
        skiff_value_free(map);
        return -1;
    }
    for (size_t i = 0; i < skiff_map_len(map); i++) {
        skiff_type t = skiff_value_type(skiff_map_value(map, i));
        if (t != SKIFF_INT && t != SKIFF_STRING && t != SKIFF_BYTES && t != SKIFF_BOOL) {
            fail(why, size, "--param %s is a %s: class parameters are int, string, bytes or bool",
                 skiff_map_key(map, i), skiff_type_name(t));
            skiff_value_free(map);
            return -1;
        }
    }
    *params = map;
    return 0;
}

int cli_parse_map_line(const char *line, size_t len, skiff_value **args, char *why, size_t size)
{
    skiff_value *v;
    skiff_error err = SKIFF_ERROR_INIT;
    if (skiff_value_from_json(line, len, &v, &err) != SKIFF_OK) {
        fail(why, size, "not valid JSON: %s", err.message ? err.message : "parse error");
        skiff_error_clear(&err);
        return -1;
    }
    if (skiff_value_type(v) != SKIFF_LIST) {
        fail(why, size, "expected a JSON array of arguments, got a %s",
             skiff_type_name(skiff_value_type(v)));
        skiff_value_free(v);
        return -1;
    }
    *args = v;
    return 0;
}

int cli_parse_seconds(const char *s, double *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    double d = strtod(s, &end);
    if (*end || !isfinite(d) || d < 0)
        return -1;
    *out = d;
    return 0;
}

int cli_parse_count(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno == ERANGE || v > INT64_MAX)
        return -1;
    *out = (uint64_t)v;
    return 0;
}
