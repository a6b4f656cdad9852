/*
 * signature.c - parsing app function signatures and binding arguments to them (see signature.h).
 *
 * The parser is a single left-to-right pass over "name[:type][?], ..." that reports the first
 * problem with its 1-based character position, quoting the whole signature so the author can
 * find it. Binding mirrors CPython's argument processing for positional-or-keyword parameters,
 * in the same order of checks: too many positional arguments, then each keyword argument in the
 * order given (unknown name, or a parameter already filled), then missing required parameters
 * (all of them named in one message), then, skiff's addition, the declared types in parameter
 * order.
 */
#include "signature.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mem.h"

static const char *const type_names[] = {
    [SIG_ANY] = "any",     [SIG_NIL] = "nil",     [SIG_BOOL] = "bool",
    [SIG_INT] = "int",     [SIG_FLOAT] = "float", [SIG_STR] = "str",
    [SIG_BYTES] = "bytes", [SIG_LIST] = "list",   [SIG_MAP] = "map",
};
#define NTYPES (sizeof type_names / sizeof type_names[0])

const char *signature_type_name(enum sig_type t)
{
    return (unsigned)t < NTYPES ? type_names[t] : "unknown";
}

void signature_deinit(struct signature *sig)
{
    for (size_t i = 0; i < sig->n; i++)
        mem_free(sig->params[i].name);
    mem_free(sig->params);
    sig->params = NULL;
    sig->n = sig->nrequired = 0;
}

int signature_find(const struct signature *sig, const char *name)
{
    for (size_t i = 0; i < sig->n; i++)
        if (!strcmp(sig->params[i].name, name))
            return (int)i;
    return -1;
}

/* --- parsing ---------------------------------------------------------------------------------- */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident(char c)
{
    return is_alpha(c) || (c >= '0' && c <= '9');
}

static const char *skip_space(const char *p)
{
    while (is_space(*p))
        p++;
    return p;
}

/* Fills err with `signature "TEXT": <message> (at character N)`, frees what sig holds so far. */
__attribute__((format(printf, 5, 6))) static int parse_fail(struct signature *sig, const char *text,
                                                            const char *at, skiff_error *err,
                                                            const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    signature_deinit(sig);
    if (at)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL,
                               "signature \"%s\": %s (at character %d)", text, msg,
                               (int)(at - text) + 1);
    return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "signature \"%s\": %s", text, msg);
}

/* Parses a type name at p (len bytes). True with *t set when it is one of the known types. */
static bool parse_type(const char *p, size_t len, enum sig_type *t)
{
    for (size_t i = 0; i < NTYPES; i++)
        if (strlen(type_names[i]) == len && !memcmp(type_names[i], p, len)) {
            *t = (enum sig_type)i;
            return true;
        }
    return false;
}

/* Parses one parameter starting at *pp (spaces skipped) and appends it to sig. Advances *pp
 * past it and the spaces after it. SKIFF_OK or a failure from parse_fail / out of memory. */
static int parse_param(struct signature *sig, const char *text, const char **pp, skiff_error *err)
{
    const char *p = *pp;
    const char *name = p;
    while (is_ident(*p))
        p++;
    size_t nlen = (size_t)(p - name);
    if (nlen == 0) {
        if (*p == ',' || *p == '\0')
            return parse_fail(sig, text, p, err, "a parameter name is missing");
        return parse_fail(sig, text, p, err, "expected a parameter name, found '%c'", *p);
    }
    if (!is_alpha(name[0]))
        return parse_fail(sig, text, name, err,
                          "parameter name '%.*s' must start with a letter or '_'", (int)nlen, name);
    if (nlen > SIG_NAME_MAX)
        return parse_fail(sig, text, name, err,
                          "parameter name '%.*s...' is longer than %d characters", 16, name,
                          SIG_NAME_MAX);
    p = skip_space(p);
    enum sig_type type = SIG_ANY;
    if (*p == ':') {
        p = skip_space(p + 1);
        const char *tname = p;
        while (is_ident(*p))
            p++;
        size_t tlen = (size_t)(p - tname);
        if (tlen == 0)
            return parse_fail(sig, text, tname, err, "parameter '%.*s' has ':' but no type",
                              (int)nlen, name);
        if (!parse_type(tname, tlen, &type))
            return parse_fail(sig, text, tname, err,
                              "parameter '%.*s' has unknown type '%.*s' (types: any, nil, bool, "
                              "int, float, str, bytes, list, map)",
                              (int)nlen, name, (int)tlen, tname);
        p = skip_space(p);
    }
    bool optional = false;
    if (*p == '?') {
        optional = true;
        p = skip_space(p + 1);
    }
    if (*p != ',' && *p != '\0')
        return parse_fail(sig, text, p, err, "unexpected '%c' after parameter '%.*s'", *p,
                          (int)nlen, name);
    for (size_t i = 0; i < sig->n; i++)
        if (strlen(sig->params[i].name) == nlen && !memcmp(sig->params[i].name, name, nlen))
            return parse_fail(sig, text, name, err, "parameter '%.*s' appears twice", (int)nlen,
                              name);
    if (!optional && sig->n > sig->nrequired)
        return parse_fail(sig, text, name, err,
                          "required parameter '%.*s' follows optional parameter '%s'", (int)nlen,
                          name, sig->params[sig->n - 1].name);
    if (sig->n == SIG_MAX_PARAMS)
        return parse_fail(sig, text, NULL, err, "more than %d parameters", SIG_MAX_PARAMS);
    char *copy = mem_strndup(name, nlen);
    if (!copy) {
        signature_deinit(sig);
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory parsing a signature");
    }
    sig->params[sig->n].name = copy;
    sig->params[sig->n].type = type;
    sig->params[sig->n].optional = optional;
    sig->n++;
    if (!optional)
        sig->nrequired++;
    *pp = p;
    return SKIFF_OK;
}

int signature_parse(struct signature *sig, const char *text, skiff_error *err)
{
    memset(sig, 0, sizeof *sig);
    if (!text)
        return skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "no signature text");
    const char *p = skip_space(text);
    if (*p == '\0')
        return SKIFF_OK;
    /* Allocated at full size once: signatures are parsed once per process. */
    sig->params = mem_calloc(SIG_MAX_PARAMS, sizeof *sig->params);
    if (!sig->params)
        return skiff_error_set(err, SKIFF_ERR_NOMEM, NULL, "out of memory parsing a signature");
    for (;;) {
        int rc = parse_param(sig, text, &p, err);
        if (rc != SKIFF_OK)
            return rc;
        if (*p == '\0')
            return SKIFF_OK;
        p = skip_space(p + 1); /* past the ',' */
        if (*p == '\0')
            return parse_fail(sig, text, p - 1, err, "a parameter is missing after the last ','");
    }
}

/* --- binding ---------------------------------------------------------------------------------- */

static int type_error(skiff_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int type_error(skiff_error *err, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return skiff_error_set(err, SKIFF_ERR_USER, "TypeError", "%s", msg);
}

static bool type_ok(const struct sig_param *prm, const skiff_value *v)
{
    skiff_type vt = skiff_value_type(v);
    if (prm->optional && vt == SKIFF_NIL)
        return true;
    switch (prm->type) {
    case SIG_ANY:
        return true;
    case SIG_NIL:
        return vt == SKIFF_NIL;
    case SIG_BOOL:
        return vt == SKIFF_BOOL;
    case SIG_INT:
        return vt == SKIFF_INT;
    case SIG_FLOAT:
        return vt == SKIFF_DOUBLE || vt == SKIFF_INT;
    case SIG_STR:
        return vt == SKIFF_STRING;
    case SIG_BYTES:
        return vt == SKIFF_BYTES;
    case SIG_LIST:
        return vt == SKIFF_LIST;
    case SIG_MAP:
        return vt == SKIFF_MAP;
    }
    return false;
}

static int too_many(const struct signature *sig, const char *fname, size_t given, skiff_error *err)
{
    const char *verb = given == 1 ? "was" : "were";
    if (sig->nrequired == sig->n)
        return type_error(err, "%s() takes %zu positional argument%s but %zu %s given", fname,
                          sig->n, sig->n == 1 ? "" : "s", given, verb);
    return type_error(err, "%s() takes from %zu to %zu positional arguments but %zu %s given",
                      fname, sig->nrequired, sig->n, given, verb);
}

/* "missing 2 required arguments: 'a' and 'b'" (Python's wording and list style). */
static int missing(const struct signature *sig, const char *fname, const skiff_value **bound,
                   size_t nmissing, skiff_error *err)
{
    char names[768];
    size_t len = 0, k = 0;
    names[0] = '\0';
    for (size_t i = 0; i < sig->nrequired && len < sizeof names; i++) {
        if (bound[i])
            continue;
        const char *sep = "";
        if (k > 0)
            sep = k + 1 < nmissing ? ", " : (nmissing > 2 ? ", and " : " and ");
        int w = snprintf(names + len, sizeof names - len, "%s'%s'", sep, sig->params[i].name);
        if (w < 0)
            break;
        len += (size_t)w;
        k++;
    }
    return type_error(err, "%s() missing %zu required argument%s: %s", fname, nmissing,
                      nmissing == 1 ? "" : "s", names);
}

int signature_bind(const struct signature *sig, const char *fname, const skiff_value *args,
                   const skiff_value *kwargs, const skiff_value **bound, skiff_error *err)
{
    size_t nargs = skiff_list_len(args);
    if (nargs > sig->n)
        return too_many(sig, fname, nargs, err);
    for (size_t i = 0; i < nargs; i++)
        bound[i] = skiff_list_get(args, i);
    for (size_t i = nargs; i < sig->n; i++)
        bound[i] = NULL;
    size_t nkw = skiff_map_len(kwargs);
    for (size_t i = 0; i < nkw; i++) {
        const char *key = skiff_map_key(kwargs, i);
        int idx = signature_find(sig, key);
        if (idx < 0)
            return type_error(err, "%s() got an unexpected keyword argument '%s'", fname, key);
        if (bound[idx])
            return type_error(err, "%s() got multiple values for argument '%s'", fname, key);
        bound[idx] = skiff_map_value(kwargs, i);
    }
    size_t nmissing = 0;
    for (size_t i = 0; i < sig->nrequired; i++)
        if (!bound[i])
            nmissing++;
    if (nmissing)
        return missing(sig, fname, bound, nmissing, err);
    for (size_t i = 0; i < sig->n; i++) {
        const struct sig_param *prm = &sig->params[i];
        if (bound[i] && !type_ok(prm, bound[i]))
            return type_error(err, "%s() argument '%s' must be %s, not %s", fname, prm->name,
                              signature_type_name(prm->type),
                              skiff_type_name(skiff_value_type(bound[i])));
    }
    return SKIFF_OK;
}
