/*
 * skiff.h - the skiff C client library (libskiff).
 *
 * A program connects to a skiff server, looks functions up by app and function name and calls
 * them: blocking (skiff_function_remote), asynchronously with a handle (skiff_function_spawn ->
 * skiff_call, which any process can re-open by id), and gathers results. Values (skiff_value) are
 * the arguments and results: nil, bool, 64-bit int, double, UTF-8 string, bytes, list, and map
 * with string keys.
 *
 * Conventions, everywhere in this header:
 *  - Functions that can fail return an int: SKIFF_OK (0) on success, or a skiff_code. When the
 *    caller passes a non-NULL `skiff_error *err`, it is filled with the code, an error type name,
 *    a message and, for a failure inside a remote function, the remote traceback. Initialise it
 *    with SKIFF_ERROR_INIT and release it with skiff_error_clear() (which also makes it reusable).
 *  - Out parameters are written only on success.
 *  - Arguments are borrowed unless the comment says the call takes them. Objects a function
 *    returns through `**out` belong to the caller and are released with their _free function.
 *  - A skiff_client may be shared between threads; each call serialises on the connection.
 */
#ifndef SKIFF_SKIFF_H
#define SKIFF_SKIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SKIFF_API __attribute__((visibility("default")))

#define SKIFF_VERSION "0.1.0"

/* ---------------------------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------------------------- */

/* The kinds of failure a caller can see. The number of each is part of the wire protocol
 * (docs/protocol.md): never renumber, only append. */
typedef enum skiff_code {
    SKIFF_OK = 0,
    SKIFF_ERR_INVALID = 1,             /* InvalidError: misuse of the API, bad arguments */
    SKIFF_ERR_NOT_FOUND = 2,           /* NotFoundError: unknown app, function or call id */
    SKIFF_ERR_TIMEOUT = 3,             /* TimeoutError: get() ran out of time, call still runs */
    SKIFF_ERR_OUTPUT_EXPIRED = 4,      /* OutputExpiredError: the result is gone (retention) */
    SKIFF_ERR_FUNCTION_TIMEOUT = 5,    /* FunctionTimeoutError: the function ran past its limit */
    SKIFF_ERR_USER = 6,                /* the function failed: err->type is the user's type */
    SKIFF_ERR_REMOTE = 7,              /* RemoteError: failure without user data (crash, ...) */
    SKIFF_ERR_CANCELLED = 8,           /* CancelledError: the call was cancelled */
    SKIFF_ERR_EXECUTION = 9,           /* ExecutionError */
    SKIFF_ERR_INTERNAL = 10,           /* InternalFailure: the server failed */
    SKIFF_ERR_RESOURCE_EXHAUSTED = 11, /* ResourceExhaustedError: queue or rate limits */
    SKIFF_ERR_AUTH = 12,               /* AuthError: missing or bad token */
    SKIFF_ERR_CONNECTION = 13,         /* ConnectionError: cannot reach or lost the server */
    SKIFF_ERR_SERIALIZATION = 14,      /* SerializationError: a value cannot be encoded */
    SKIFF_ERR_DESERIALIZATION = 15,    /* DeserializationError: malformed data received */
    SKIFF_ERR_REQUEST_SIZE = 16,       /* RequestSizeError: payload over the limit */
    SKIFF_ERR_NOMEM = 17,              /* out of memory */
    SKIFF_ERR_INIT_FAILURE = 18,       /* the container could not start the function */
    SKIFF_ERR_OUT_OF_MEMORY = 19,      /* OutOfMemoryError: the function exceeded its memory */
} skiff_code;

typedef struct skiff_error {
    skiff_code code; /* SKIFF_OK when no error has been recorded */
    char *type;      /* error type name: "NotFoundError", or the user's own, e.g. "ValueError" */
    char *message;   /* human-readable message */
    char *traceback; /* where a remote function failed (one frame per line), or NULL */
} skiff_error;

#define SKIFF_ERROR_INIT                                                                           \
    {                                                                                              \
        SKIFF_OK, NULL, NULL, NULL                                                                 \
    }

/* Frees the strings inside err and resets it to SKIFF_ERROR_INIT. err may be NULL. */
SKIFF_API void skiff_error_clear(skiff_error *err);

/* The canonical type name of a code, e.g. "NotFoundError" for SKIFF_ERR_NOT_FOUND. Never NULL. */
SKIFF_API const char *skiff_code_name(skiff_code code);

/* Fills err (if non-NULL, after clearing it) with code, type (NULL: the code's name) and a
 * printf-style message. Returns code, so `return skiff_error_set(err, ...)` reads naturally. */
SKIFF_API int skiff_error_set(skiff_error *err, skiff_code code, const char *type, const char *fmt,
                              ...) __attribute__((format(printf, 4, 5)));

/* ---------------------------------------------------------------------------------------------
 * Values
 * ------------------------------------------------------------------------------------------- */

typedef enum skiff_type {
    SKIFF_NIL = 0,
    SKIFF_BOOL,
    SKIFF_INT,
    SKIFF_DOUBLE,
    SKIFF_STRING,
    SKIFF_BYTES,
    SKIFF_LIST,
    SKIFF_MAP,
} skiff_type;

typedef struct skiff_value skiff_value;

/* Constructors: each returns a new value owned by the caller, or NULL when out of memory.
 * skiff_value_string copies a NUL-terminated string, skiff_value_stringn copies len bytes;
 * both return NULL if the bytes are not valid UTF-8. */
SKIFF_API skiff_value *skiff_value_nil(void);
SKIFF_API skiff_value *skiff_value_bool(bool b);
SKIFF_API skiff_value *skiff_value_int(int64_t i);
SKIFF_API skiff_value *skiff_value_double(double d);
SKIFF_API skiff_value *skiff_value_string(const char *s);
SKIFF_API skiff_value *skiff_value_stringn(const char *s, size_t len);
SKIFF_API skiff_value *skiff_value_bytes(const void *p, size_t len);
SKIFF_API skiff_value *skiff_value_list(void);
SKIFF_API skiff_value *skiff_value_map(void);

/* A list of n values, taking each of them (NULL items make the whole call fail and free the
 * rest). Handy for arguments: skiff_value_list_of(2, skiff_value_int(1), skiff_value_string("a")).
 * Returns NULL when out of memory or when any item is NULL. */
SKIFF_API skiff_value *skiff_value_list_of(size_t n, ...);

/* Appends item to list, taking item (freed on failure too). Returns SKIFF_OK, SKIFF_ERR_INVALID
 * if list is not a list or item is NULL, SKIFF_ERR_NOMEM. */
SKIFF_API int skiff_list_append(skiff_value *list, skiff_value *item);

/* Sets key to item in map, replacing an earlier value of that key; takes item (freed on failure
 * too). Returns SKIFF_OK, SKIFF_ERR_INVALID (not a map, NULL item, key not UTF-8),
 * SKIFF_ERR_NOMEM. */
SKIFF_API int skiff_map_set(skiff_value *map, const char *key, skiff_value *item);

/* Accessors. They never fail: a value of another type reads as false / 0 / 0.0 / NULL / 0. */
SKIFF_API skiff_type skiff_value_type(const skiff_value *v); /* NULL reads as SKIFF_NIL */
SKIFF_API const char *skiff_type_name(skiff_type t);         /* "nil", "bool", "int", ... */
SKIFF_API bool skiff_value_get_bool(const skiff_value *v);
SKIFF_API int64_t skiff_value_get_int(const skiff_value *v);
/* A double, or an int converted to double. */
SKIFF_API double skiff_value_get_double(const skiff_value *v);
/* The string's bytes (NUL-terminated) and, if len is non-NULL, its length; NULL if not a string. */
SKIFF_API const char *skiff_value_get_string(const skiff_value *v, size_t *len);
SKIFF_API const void *skiff_value_get_bytes(const skiff_value *v, size_t *len);
SKIFF_API size_t skiff_list_len(const skiff_value *list);
/* Borrowed item i, or NULL when out of range. */
SKIFF_API skiff_value *skiff_list_get(const skiff_value *list, size_t i);
SKIFF_API size_t skiff_map_len(const skiff_value *map);
/* Borrowed key / value of entry i (insertion order), or NULL when out of range. */
SKIFF_API const char *skiff_map_key(const skiff_value *map, size_t i);
SKIFF_API skiff_value *skiff_map_value(const skiff_value *map, size_t i);
/* Borrowed value of key, or NULL when absent. */
SKIFF_API skiff_value *skiff_map_get(const skiff_value *map, const char *key);

/* A deep copy, or NULL when out of memory. */
SKIFF_API skiff_value *skiff_value_copy(const skiff_value *v);
/* Deep equality; int 1 and double 1.0 are different values. */
SKIFF_API bool skiff_value_equal(const skiff_value *a, const skiff_value *b);
/* Frees v and everything in it. v may be NULL. */
SKIFF_API void skiff_value_free(skiff_value *v);

/* Parses one JSON text (len bytes) into *out. Objects become maps, integers that fit in 64 bits
 * ints, other numbers doubles, and {"$bytes": "<base64>"} bytes. Returns SKIFF_OK, or
 * SKIFF_ERR_INVALID with the parse error's position in err. */
SKIFF_API int skiff_value_from_json(const char *json, size_t len, skiff_value **out,
                                    skiff_error *err);
/* Compact JSON text for v (bytes as {"$bytes": "..."}, non-finite doubles as null), malloc'd
 * and NUL-terminated: free() it. NULL when out of memory. */
SKIFF_API char *skiff_value_to_json(const skiff_value *v);

/* ---------------------------------------------------------------------------------------------
 * Client
 * ------------------------------------------------------------------------------------------- */

typedef struct skiff_client skiff_client;
typedef struct skiff_function skiff_function;
typedef struct skiff_call skiff_call;

typedef struct skiff_client_options {
    const char *server;       /* "HOST:PORT" or "unix:PATH"; NULL: $SKIFF_SERVER, ~/.skiff.toml,
                                 then 127.0.0.1:7878 */
    const char *token_id;     /* NULL: $SKIFF_TOKEN_ID, then ~/.skiff.toml */
    const char *token_secret; /* NULL: $SKIFF_TOKEN_SECRET, then ~/.skiff.toml */
    double connect_timeout;   /* seconds; 0: 10 s */
} skiff_client_options;

/* Connects and authenticates. opts may be NULL (all defaults). Returns SKIFF_OK with a new
 * client in *out, SKIFF_ERR_CONNECTION (cannot reach the server), SKIFF_ERR_AUTH (token missing
 * or refused), SKIFF_ERR_INVALID (malformed server address), SKIFF_ERR_NOMEM. */
SKIFF_API int skiff_client_connect(const skiff_client_options *opts, skiff_client **out,
                                   skiff_error *err);
/* Closes the connection and frees the client. Every function and call made from it must be
 * freed first. client may be NULL. */
SKIFF_API void skiff_client_close(skiff_client *client);

/* A handle to APP's FUNCTION without asking the server (lazy): the first use looks it up and
 * fails with SKIFF_ERR_NOT_FOUND if it does not exist. Returns SKIFF_OK, SKIFF_ERR_INVALID
 * (empty names), SKIFF_ERR_NOMEM. The handle borrows client. */
SKIFF_API int skiff_function_from_name(skiff_client *client, const char *app, const char *name,
                                       skiff_function **out, skiff_error *err);
/* Like skiff_function_from_name, but asks the server now (eager): SKIFF_ERR_NOT_FOUND naming
 * both the app and the function if either is missing. */
SKIFF_API int skiff_function_lookup(skiff_client *client, const char *app, const char *name,
                                    skiff_function **out, skiff_error *err);
/* Looks a lazy handle up now (no-op if it already was). SKIFF_OK or SKIFF_ERR_NOT_FOUND, ... */
SKIFF_API int skiff_function_hydrate(skiff_function *fn, skiff_error *err);
/* The function's "fu-" id once hydrated (by lookup, hydrate or a first call), else NULL. */
SKIFF_API const char *skiff_function_id(const skiff_function *fn);
SKIFF_API void skiff_function_free(skiff_function *fn);

/* Calls the function and waits for its result. args is a list (NULL: no positional arguments),
 * kwargs a map (NULL: none); both borrowed. On SKIFF_OK *result is the returned value.
 * Failures: SKIFF_ERR_NOT_FOUND, SKIFF_ERR_USER (err->type/message/traceback are the function's),
 * SKIFF_ERR_FUNCTION_TIMEOUT, SKIFF_ERR_REMOTE (the container crashed), SKIFF_ERR_CANCELLED,
 * SKIFF_ERR_REQUEST_SIZE (arguments over the payload limit), SKIFF_ERR_INVALID (args not a list,
 * kwargs not a map), SKIFF_ERR_CONNECTION, ... */
SKIFF_API int skiff_function_remote(skiff_function *fn, const skiff_value *args,
                                    const skiff_value *kwargs, skiff_value **result,
                                    skiff_error *err);
/* Queues one call and returns at once with a handle. The input is durable (on the server's
 * disk) before this returns SKIFF_OK. Same failures as remote, except the function's own. */
SKIFF_API int skiff_function_spawn(skiff_function *fn, const skiff_value *args,
                                   const skiff_value *kwargs, skiff_call **out, skiff_error *err);

/* Waits forever in skiff_call_get. */
#define SKIFF_WAIT_FOREVER (-1.0)

/* A handle to an existing function call by its "fc-" id (from any process). SKIFF_OK, or
 * SKIFF_ERR_NOT_FOUND if the server never had that call, SKIFF_ERR_INVALID (not an fc- id). */
SKIFF_API int skiff_call_from_id(skiff_client *client, const char *fc_id, skiff_call **out,
                                 skiff_error *err);
/* The call's "fc-" id; valid while the handle lives. */
SKIFF_API const char *skiff_call_id(const skiff_call *call);
/* Waits up to timeout seconds (0: poll once; SKIFF_WAIT_FOREVER: no limit) for the result.
 * SKIFF_OK with *result; SKIFF_ERR_TIMEOUT if the call is still running; SKIFF_ERR_OUTPUT_EXPIRED
 * if the result is gone; SKIFF_ERR_CANCELLED; or the call's own failure as for remote. Can be
 * called again, from any process, until the result expires. */
SKIFF_API int skiff_call_get(skiff_call *call, double timeout, skiff_value **result,
                             skiff_error *err);
/* Cancels the call: a pending input never runs, a running one is stopped, every waiter gets
 * SKIFF_ERR_CANCELLED; cancelled inputs are never retried. With terminate_containers the
 * containers running its inputs are killed. Cancelling a finished call changes nothing. */
SKIFF_API int skiff_call_cancel(skiff_call *call, bool terminate_containers, skiff_error *err);
/* Waits for every call and writes their results, in argument order, to results[0..n-1] (owned by
 * the caller). On the first failure (in argument order) returns it and writes nothing. */
SKIFF_API int skiff_call_gather(skiff_call *const *calls, size_t n, skiff_value **results,
                                skiff_error *err);
SKIFF_API void skiff_call_free(skiff_call *call);

#ifdef __cplusplus
}
#endif

#endif /* SKIFF_SKIFF_H */
