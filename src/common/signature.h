/*
 * signature.h - function signatures of the app SDK (include/skiff/app.h): parsing them, and
 * binding an input's arguments to the parameter names.
 *
 * A signature lists parameters in order, separated by commas: `name[:type][?]`, e.g.
 * "job_id:str, params:map?". Types: any (the default), nil, bool, int, float (also accepts an
 * int), str, bytes, list, map. A trailing '?' makes the parameter optional: it may be left out,
 * and it also accepts an explicit nil. Required parameters come before optional ones (as in
 * Python), names are C identifiers of at most SIG_NAME_MAX characters, and there are at most
 * SIG_MAX_PARAMS of them. An empty signature ("") declares a function without parameters.
 *
 * Binding follows Python's rules for a function whose parameters are all positional-or-keyword,
 * and fails with Python's TypeError messages, e.g. "square() takes 1 positional argument but 2
 * were given", "square() missing 1 required argument: 'x'", "square() got an unexpected keyword
 * argument 'y'", "square() got multiple values for argument 'x'", "square() argument 'x' must be
 * int, not str". Binding does not allocate unless it fails: the caller provides the slots.
 */
#ifndef SKIFF_COMMON_SIGNATURE_H
#define SKIFF_COMMON_SIGNATURE_H

#include <stdbool.h>
#include <stddef.h>
#include <skiff/skiff.h>

/* Bounds that keep signatures human-sized (a function with 64 parameters wants a map). */
#define SIG_MAX_PARAMS 64
#define SIG_NAME_MAX 63

enum sig_type {
    SIG_ANY,
    SIG_NIL,
    SIG_BOOL,
    SIG_INT,
    SIG_FLOAT,
    SIG_STR,
    SIG_BYTES,
    SIG_LIST,
    SIG_MAP,
};

struct sig_param {
    char *name;         /* owned, NUL-terminated */
    enum sig_type type; /* what values it accepts */
    bool optional;      /* may be omitted (or given as nil) */
};

struct signature {
    struct sig_param *params; /* n parameters, in declaration order */
    size_t n;
    size_t nrequired; /* the first nrequired parameters are required, the rest optional */
};

/* Parses text into sig (caller's storage). SKIFF_OK; SKIFF_ERR_INVALID with a message naming the
 * problem and where it is (sig is then left empty); SKIFF_ERR_NOMEM. */
int signature_parse(struct signature *sig, const char *text, skiff_error *err);
/* Frees what signature_parse allocated; sig becomes empty. Safe on an empty or zeroed sig. */
void signature_deinit(struct signature *sig);

/* The index of parameter name, or -1 when there is none. */
int signature_find(const struct signature *sig, const char *name);
/* The type's name as written in signatures ("int", ...). */
const char *signature_type_name(enum sig_type t);

/* Binds positional args (a list; NULL: none) and kwargs (a map; NULL: none) to the parameters of
 * function fname (used in messages). On SKIFF_OK, bound[i] (sig->n slots, caller's storage) is
 * the value given for parameter i, borrowed from args or kwargs, or NULL for an omitted optional
 * one. On failure returns SKIFF_ERR_USER with err's type "TypeError" and a Python-like message;
 * bound is then unspecified. Allocates only to fill err. */
int signature_bind(const struct signature *sig, const char *fname, const skiff_value *args,
                   const skiff_value *kwargs, const skiff_value **bound, skiff_error *err);

#endif
