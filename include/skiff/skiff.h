/*
 * skiff.h - the skiff C client library (libskiff).
 *
 * A program connects to a skiff server, looks functions up by app and function name and calls
 * them: blocking (skiff_function_remote), asynchronously with a handle (skiff_function_spawn ->
 * skiff_call, which any process can re-open by id), over many inputs at once (skiff_function_map
 * and its family, with outputs read through an iterator in flat memory), as a stream of items
 * (generators), and gathers results. Classes are looked up by name and instantiated with typed
 * parameters; their methods are function handles. Values (skiff_value) are
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
 *  - Every blocking call has an _async twin that returns at once and reports its outcome to a
 *    callback run from the caller's event loop ("Asynchronous API" below).
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
    SKIFF_ERR_OUT_OF_MEMORY = 19,      /* OutOfMemoryError: the container ran out of memory
                                          running the input */
} skiff_code;

/* Returned by the iterators (skiff_map_next, skiff_gen_next) when there is nothing more: not a
 * skiff_code (negative), and err is left untouched. */
#define SKIFF_DONE (-1)

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
/* Closes the connection and frees the client. Every function, call, map, generator stream,
 * class and instance made from it must be freed first. client may be NULL. */
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
/* What a function is, as its lookup said. */
typedef enum skiff_function_kind {
    SKIFF_FUNCTION_UNKNOWN = 0, /* not looked up yet (from_name is lazy: hydrate first) */
    SKIFF_FUNCTION_PLAIN,       /* remote, spawn, map ... */
    SKIFF_FUNCTION_GENERATOR,   /* remote_gen, spawn_gen */
    SKIFF_FUNCTION_WEB,         /* a web endpoint: called over HTTP (skiff_function_get_web_url) */
} skiff_function_kind;

/* The function's kind once a lookup (skiff_function_lookup, skiff_function_hydrate of a lazy
 * handle, or a class's method list) said it, else SKIFF_FUNCTION_UNKNOWN. */
SKIFF_API skiff_function_kind skiff_function_get_kind(const skiff_function *fn);
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

/* ---------------------------------------------------------------------------------------------
 * Maps: one function call with many inputs
 *
 * A map sends its inputs in chunks while its outputs stream back, keeping at most
 * max_outstanding inputs sent and not yet handed to the caller: that window is the backpressure
 * both ways, so a map over ten million inputs runs in memory bounded by the window. Inputs come
 * from lists (zipped, the shortest wins) or from a skiff_map_source callback; outputs are read
 * with skiff_map_next. While a map runs, the same client can make other calls (from this or
 * other threads).
 * ------------------------------------------------------------------------------------------- */

typedef struct skiff_map skiff_map;

/* Inputs sent and not yet handed to the caller, by default (Modal's bound). */
#define SKIFF_MAP_WINDOW_DEFAULT 1000
/* The largest window a map accepts. */
#define SKIFF_MAP_WINDOW_MAX 1000000

/* A map source's answer when no input is ready yet (see skiff_map_source). */
#define SKIFF_AGAIN (-2)
/* How long (milliseconds) a map waits for outputs after its source said SKIFF_AGAIN before it
 * asks the source again. */
#define SKIFF_MAP_AGAIN_MS 20

/* A generator-like source of inputs. next is called whenever the map has room for one more
 * input: it returns SKIFF_OK with the input's positional arguments in *args (a new list the map
 * takes), SKIFF_OK with *args left NULL when there are no more inputs, SKIFF_AGAIN when no input
 * is ready yet (a pipe with nothing to read now: the map delivers the outputs that arrive and
 * asks again within SKIFF_MAP_AGAIN_MS), or a skiff_code with err filled to end the map with
 * that failure. It may also block (reading a file); the outputs wait meanwhile. ctx is passed
 * through. */
typedef struct skiff_map_source {
    int (*next)(void *ctx, skiff_value **args, skiff_error *err);
    void *ctx;
} skiff_map_source;

typedef struct skiff_map_options {
    const skiff_value *kwargs; /* a map of keyword arguments for every input (copied), or NULL */
    bool unordered;            /* outputs in completion order (default: input order) */
    bool return_exceptions;    /* each failure in its input's place (default: the first failure
                                  ends the map and is returned by skiff_map_next) */
    size_t max_outstanding;    /* the window; 0: SKIFF_MAP_WINDOW_DEFAULT */
} skiff_map_options;

/* One output of a map. */
typedef struct skiff_map_output {
    size_t index;       /* the input's position, from 0 */
    skiff_value *value; /* its result (the caller's), or NULL when it failed */
    skiff_error error;  /* its failure (only with return_exceptions); code SKIFF_OK otherwise */
} skiff_map_output;

/* Where a map stands, to see why it is held back. */
typedef struct skiff_map_stats {
    uint64_t sent;          /* inputs sent to the server */
    uint64_t received;      /* outputs received from it */
    uint64_t delivered;     /* outputs handed to the caller by skiff_map_next */
    uint64_t outstanding;   /* sent and not yet delivered: at most max_outstanding */
    uint64_t failures;      /* failed outputs received */
    int64_t backlog;        /* the call's inputs not yet running, per the server's last word,
                               or -1 before it said */
    size_t max_outstanding; /* the window */
    bool inputs_done;       /* the source has no more inputs */
    bool window_full;       /* sending waits for outputs to be delivered */
    bool output_ready;      /* skiff_map_next has an output to return without waiting (a
                               consumer that buffers its own output flushes when false) */
} skiff_map_stats;

/* Maps fn over n input lists zipped together (input i is [lists[0][i], ..., lists[n-1][i]], as
 * many inputs as the shortest list has items), every call with opts->kwargs. opts may be NULL
 * (defaults). The lists are borrowed until skiff_map_free. SKIFF_OK with a new iterator in *out;
 * SKIFF_ERR_INVALID (n == 0, an item that is not a list, kwargs not a map, a window over
 * SKIFF_MAP_WINDOW_MAX); or the failure of starting the call (SKIFF_ERR_NOT_FOUND, ...). An empty
 * input returns at once, without contacting the server: skiff_map_next says SKIFF_DONE. */
SKIFF_API int skiff_function_map(skiff_function *fn, const skiff_value *const *lists, size_t n,
                                 const skiff_map_options *opts, skiff_map **out, skiff_error *err);
/* Maps fn over the inputs src produces (src is copied; its ctx is borrowed until
 * skiff_map_free). As skiff_function_map otherwise. */
SKIFF_API int skiff_function_map_source(skiff_function *fn, const skiff_map_source *src,
                                        const skiff_map_options *opts, skiff_map **out,
                                        skiff_error *err);
/* Maps fn over tuples, a list of lists: each inner list is one input's positional arguments.
 * SKIFF_ERR_INVALID if tuples is not a list of lists (checked before anything is sent). */
SKIFF_API int skiff_function_starmap(skiff_function *fn, const skiff_value *tuples,
                                     const skiff_map_options *opts, skiff_map **out,
                                     skiff_error *err);
/* The next output. SKIFF_OK with *out filled (release it with skiff_map_output_clear); SKIFF_DONE
 * when every output has been delivered; otherwise the map's failure, after which the map is over
 * (its call cancelled) and every further call returns the same code: without return_exceptions,
 * the first failed input's own error (in input order when ordered, else the first to arrive),
 * or the source's failure, SKIFF_ERR_CONNECTION, SKIFF_ERR_CANCELLED (someone cancelled the
 * call), SKIFF_ERR_REQUEST_SIZE (an input over the payload limit), ... */
SKIFF_API int skiff_map_next(skiff_map *m, skiff_map_output *out, skiff_error *err);
/* Drains the map into *results, a new list in delivery order; a failed input's place (with
 * return_exceptions) holds the map {"error": {"code": int, "type": str, "message": str,
 * "traceback": str or nil}}. Returns as skiff_map_next (SKIFF_OK at the end, never SKIFF_DONE);
 * nothing is written on failure. */
SKIFF_API int skiff_map_collect(skiff_map *m, skiff_value **results, skiff_error *err);
/* Fills *out with the map's counters. */
SKIFF_API void skiff_map_get_stats(const skiff_map *m, skiff_map_stats *out);
/* The map's "fc-" call id once it has started on the server, else NULL. */
SKIFF_API const char *skiff_map_call_id(const skiff_map *m);
/* Frees the output's value and error and resets it. */
SKIFF_API void skiff_map_output_clear(skiff_map_output *out);
/* Frees the map. An unfinished map's call is cancelled first (best effort). m may be NULL. */
SKIFF_API void skiff_map_free(skiff_map *m);

/* Runs fn over n zipped lists with kwargs (NULL: none), discards the results and returns when
 * every input is done: SKIFF_OK, or the first failure unless ignore_exceptions. */
SKIFF_API int skiff_function_for_each(skiff_function *fn, const skiff_value *const *lists, size_t n,
                                      const skiff_value *kwargs, bool ignore_exceptions,
                                      skiff_error *err);

/* Queues every input durably (on the server's disk before this returns) and returns ONE call for
 * the batch in *out: skiff_call_get_index reads input i's result, skiff_call_iter all of them,
 * skiff_call_cancel cancels the rest, and skiff_call_from_id re-opens it from anywhere. Inputs
 * from zipped lists as skiff_function_map. Returns SKIFF_OK, or as skiff_function_map. */
SKIFF_API int skiff_function_spawn_map(skiff_function *fn, const skiff_value *const *lists,
                                       size_t n, const skiff_value *kwargs, skiff_call **out,
                                       skiff_error *err);
/* skiff_function_spawn_map with the inputs from src. */
SKIFF_API int skiff_function_spawn_map_source(skiff_function *fn, const skiff_map_source *src,
                                              const skiff_value *kwargs, skiff_call **out,
                                              skiff_error *err);

/* What a call is. */
typedef enum skiff_call_kind {
    SKIFF_CALL_SINGLE = 0, /* one input (spawn) */
    SKIFF_CALL_MAP,        /* a map's inputs (readable only by the client that started it) */
    SKIFF_CALL_SPAWN_MAP,  /* spawn_map: many durable inputs */
    SKIFF_CALL_GENERATOR,  /* a spawned generator: read with skiff_call_get_gen */
} skiff_call_kind;

/* What the call is: from the request that made it, or from the server for skiff_call_from_id. */
SKIFF_API skiff_call_kind skiff_call_get_kind(const skiff_call *call);
/* The call's input count as last known (1 for a single call; for a spawn_map the inputs queued
 * by spawn_map or reported by the server to skiff_call_from_id). */
SKIFF_API size_t skiff_call_num_inputs(const skiff_call *call);
/* Like skiff_call_get, for input index of a multi-input call. SKIFF_ERR_NOT_FOUND when index is
 * out of range; SKIFF_ERR_INVALID on a generator call. */
SKIFF_API int skiff_call_get_index(skiff_call *call, size_t index, double timeout,
                                   skiff_value **result, skiff_error *err);
/* Iterates over every output of a spawn_map (or single) call as they are kept or complete, in
 * input order unless opts->unordered; opts->return_exceptions as for maps (kwargs and the window
 * are ignored). SKIFF_OK with a new iterator; SKIFF_ERR_INVALID on a generator call. */
SKIFF_API int skiff_call_iter(skiff_call *call, const skiff_map_options *opts, skiff_map **out,
                              skiff_error *err);

/* ---------------------------------------------------------------------------------------------
 * Generators
 * ------------------------------------------------------------------------------------------- */

typedef struct skiff_gen skiff_gen;

/* Calls generator fn and streams the items it yields, in order. SKIFF_OK with a new stream in
 * *out (the call has started); SKIFF_ERR_INVALID when fn is known not to be a generator (the
 * server checks too); the call's start failures as remote. */
SKIFF_API int skiff_function_remote_gen(skiff_function *fn, const skiff_value *args,
                                        const skiff_value *kwargs, skiff_gen **out,
                                        skiff_error *err);
/* Spawns generator fn (its items are kept like results) and returns the call; read it with
 * skiff_call_get_gen. SKIFF_ERR_INVALID when fn is known not to be a generator. */
SKIFF_API int skiff_function_spawn_gen(skiff_function *fn, const skiff_value *args,
                                       const skiff_value *kwargs, skiff_call **out,
                                       skiff_error *err);
/* Streams the items of a spawned generator call, from the first. SKIFF_ERR_INVALID on a call
 * known not to be a generator. */
SKIFF_API int skiff_call_get_gen(skiff_call *call, skiff_gen **out, skiff_error *err);
/* The next item. SKIFF_OK with *item (the caller's); SKIFF_DONE after the last item (the
 * generator returned); or the generator's failure (SKIFF_ERR_USER with its type, message and
 * traceback, SKIFF_ERR_REMOTE, ...) after the items yielded before it, returned again by every
 * further call. */
SKIFF_API int skiff_gen_next(skiff_gen *g, skiff_value **item, skiff_error *err);
/* Items delivered so far. */
SKIFF_API size_t skiff_gen_count(const skiff_gen *g);
/* Frees the stream; an unfinished remote_gen call is cancelled. g may be NULL. */
SKIFF_API void skiff_gen_free(skiff_gen *g);

/* ---------------------------------------------------------------------------------------------
 * Function details and the autoscaler
 * ------------------------------------------------------------------------------------------- */

typedef struct skiff_function_stats {
    int64_t backlog;            /* inputs queued and not yet running */
    int64_t num_total_runners;  /* live containers */
    int64_t num_running_inputs; /* inputs running now */
    int64_t input_headroom;     /* inputs the live containers could still take at once */
} skiff_function_stats;

/* The function's load now. SKIFF_OK with *out; SKIFF_ERR_NOT_FOUND, ... */
SKIFF_API int skiff_function_get_current_stats(skiff_function *fn, skiff_function_stats *out,
                                               skiff_error *err);

/* A field left at SKIFF_UNSET is not changed. */
#define SKIFF_UNSET (-1)

/* Autoscaler settings; initialise with SKIFF_AUTOSCALER_INIT (every field unset). */
typedef struct skiff_autoscaler {
    int64_t min_containers;    /* containers kept running even when idle */
    int64_t max_containers;    /* the most containers at once */
    int64_t buffer_containers; /* idle containers kept ready beyond the load */
    double scaledown_window;   /* seconds a container may idle before it stops */
} skiff_autoscaler;

#define SKIFF_AUTOSCALER_INIT                                                                      \
    {                                                                                              \
        SKIFF_UNSET, SKIFF_UNSET, SKIFF_UNSET, SKIFF_UNSET                                         \
    }

/* Changes the live function's autoscaler: the fields of settings that are set; the others stay
 * as they are (a redeploy resets all to the deployed values). When now is non-NULL it receives
 * the settings in force afterwards. SKIFF_ERR_INVALID for a negative count or window (other than
 * SKIFF_UNSET), min over max, or nothing set. */
SKIFF_API int skiff_function_update_autoscaler(skiff_function *fn, const skiff_autoscaler *settings,
                                               skiff_autoscaler *now, skiff_error *err);
/* Keeps n containers warm: skiff_function_update_autoscaler with min_containers = n. */
SKIFF_API int skiff_function_keep_warm(skiff_function *fn, int64_t n, skiff_error *err);
/* The URL of a web endpoint function in *url (malloc'd: free() it), or NULL for any other
 * function. Looks the function up if needed. */
SKIFF_API int skiff_function_get_web_url(skiff_function *fn, char **url, skiff_error *err);
/* Runs the function's own code in this process (a method's class is entered first, with the
 * instance's parameters for a method from skiff_obj_method), as the app SDK would in a
 * container. SKIFF_ERR_EXECUTION where this process has no local definition of
 * the app (a plain client binary); otherwise as remote. */
SKIFF_API int skiff_function_local(skiff_function *fn, const skiff_value *args,
                                   const skiff_value *kwargs, skiff_value **result,
                                   skiff_error *err);

/* ---------------------------------------------------------------------------------------------
 * Call graph
 * ------------------------------------------------------------------------------------------- */

typedef enum skiff_input_status {
    SKIFF_INPUT_PENDING = 0,
    SKIFF_INPUT_SUCCESS,
    SKIFF_INPUT_FAILURE,
    SKIFF_INPUT_TERMINATED,
    SKIFF_INPUT_TIMEOUT,
    SKIFF_INPUT_INIT_FAILURE,
} skiff_input_status;

/* One input in a call graph, and the inputs of the calls it made. */
typedef struct skiff_input_info {
    char *input_id;     /* "in-..." */
    char *call_id;      /* "fc-..." */
    char *container_id; /* "ta-..." of the container that ran it, or NULL */
    char *function;     /* "app.function" */
    size_t index;       /* its position in its call */
    skiff_input_status status;
    struct skiff_input_info *children; /* nchildren inputs of calls made while it ran */
    size_t nchildren;
} skiff_input_info;

/* "PENDING", "SUCCESS", ... */
SKIFF_API const char *skiff_input_status_name(skiff_input_status s);
/* The inputs of the call (the roots, *n of them, in *roots) with their descendants. Free with
 * skiff_call_graph_free. Best effort: not for polling at high rates. */
SKIFF_API int skiff_call_get_call_graph(skiff_call *call, skiff_input_info **roots, size_t *n,
                                        skiff_error *err);
/* Frees the n roots from skiff_call_get_call_graph and everything under them. */
SKIFF_API void skiff_call_graph_free(skiff_input_info *roots, size_t n);

/* ---------------------------------------------------------------------------------------------
 * Classes
 * ------------------------------------------------------------------------------------------- */

typedef struct skiff_cls skiff_cls;
typedef struct skiff_obj skiff_obj;

/* A handle to APP's class NAME (lazy: looked up on first use; SKIFF_ERR_NOT_FOUND then). Borrows
 * client. SKIFF_ERR_INVALID for empty names. */
SKIFF_API int skiff_cls_from_name(skiff_client *client, const char *app, const char *name,
                                  skiff_cls **out, skiff_error *err);
/* Looks the class up now (no-op if it already was). */
SKIFF_API int skiff_cls_hydrate(skiff_cls *cls, skiff_error *err);
/* Frees the class handle; its instances must be freed first. cls may be NULL. */
SKIFF_API void skiff_cls_free(skiff_cls *cls);
/* An instance with parameters params (a map from name to int, string, bytes or bool; NULL: no
 * parameters). Borrows cls. SKIFF_ERR_INVALID for another value type. Instances with the same
 * parameters share the server's containers. */
SKIFF_API int skiff_cls_instantiate(skiff_cls *cls, const skiff_value *params, skiff_obj **out,
                                    skiff_error *err);
/* Frees the instance; the method handles made from it must be freed first. obj may be NULL. */
SKIFF_API void skiff_obj_free(skiff_obj *obj);
/* Method NAME of the instance as a function handle (calls carry the instance's parameters);
 * free it with skiff_function_free before the instance. SKIFF_ERR_NOT_FOUND when the class has
 * no such method (the class is looked up if needed). */
SKIFF_API int skiff_obj_method(skiff_obj *obj, const char *name, skiff_function **out,
                               skiff_error *err);

/* ---------------------------------------------------------------------------------------------
 * Asynchronous API
 *
 * Every blocking call above has a twin ending in _async that returns at once and reports its
 * completion through a callback. Callbacks run only inside skiff_client_process (or
 * skiff_client_wait, or the libuv adapter's poll callback, which calls process) on the thread
 * that started the operation: never from inside the _async call itself, never from another
 * thread, and never re-entrantly (process called from a callback does nothing and returns
 * SKIFF_ERR_INVALID). The completion callback runs exactly once per successful _async call
 * (after the item or output callbacks of a generator or map, once per item), after which the
 * operation is gone. A callback may start more operations, or make blocking calls (which block
 * the event loop meanwhile).
 *
 * Error model (libuv's rule): if an _async function returns an error, nothing was started and
 * its callback is never called; err says why. Otherwise the outcome, success or failure, comes
 * through the callback as (rc, err): rc is SKIFF_OK or a skiff_code, err is NULL on success and
 * otherwise describes the failure (borrowed: valid during the callback only; copy what you need).
 *
 * Ownership: a result handed to a callback (a value, a call, a function handle) belongs to the
 * callback, which frees it (or keeps it) as its blocking twin's caller would. The arguments of an
 * _async call are borrowed for the duration of the call only (they are encoded before it
 * returns). Handles an operation uses (the function of remote_async, the call of get_async,
 * every call of gather_async) must stay alive until its callback ran.
 *
 * Threads. Each thread has its own asynchronous state on a client: the operations it started,
 * and its own pollable descriptor (skiff_client_fd). So a function running several inputs at
 * once in threads can fan out from each of them, and each gathers only its own. Blocking calls
 * from other threads keep working on the same client alongside. Operations still pending when
 * the client is closed are dropped: their callbacks never run.
 *
 * Event loops: watch skiff_client_fd for readability (poll/epoll, level-triggered) and call
 * skiff_client_process whenever it is readable; with libuv, skiff_client_uv_attach does both.
 * Calls started from inside a running function (skiff_ctx_client) carry the input as their
 * parent, so the call graph links them, as for blocking calls.
 * ------------------------------------------------------------------------------------------- */

/* A result: on SKIFF_OK, result is the value (the callback's); on failure, result is NULL. */
typedef void (*skiff_result_cb)(void *userdata, int rc, skiff_value *result,
                                const skiff_error *err);
/* A call handle: on SKIFF_OK, call is a new handle (the callback's: skiff_call_free). */
typedef void (*skiff_call_cb)(void *userdata, int rc, skiff_call *call, const skiff_error *err);
/* A function handle: on SKIFF_OK, fn is a new handle (the callback's: skiff_function_free). */
typedef void (*skiff_function_cb)(void *userdata, int rc, skiff_function *fn,
                                  const skiff_error *err);
/* An operation without a result: rc and err only. */
typedef void (*skiff_done_cb)(void *userdata, int rc, const skiff_error *err);
/* Function stats: on SKIFF_OK, stats points at them (borrowed for the callback). */
typedef void (*skiff_stats_cb)(void *userdata, int rc, const skiff_function_stats *stats,
                               const skiff_error *err);
/* One item of a generator (the callback's). */
typedef void (*skiff_item_cb)(void *userdata, skiff_value *item);
/* One output of a map: *out is the callback's, to release with skiff_map_output_clear (or to
 * take its value from). */
typedef void (*skiff_output_cb)(void *userdata, skiff_map_output *out);

/* The calling thread's pollable descriptor for client: it becomes readable when an operation of
 * this thread may have completed, or the connection needs servicing; then call
 * skiff_client_process. Level-triggered; never read or close it yourself. Valid until the
 * client is closed (or the thread releases its state). SKIFF_OK with *fd; SKIFF_ERR_INVALID (NULL
 * arguments); SKIFF_ERR_NOMEM. */
SKIFF_API int skiff_client_fd(skiff_client *client, int *fd, skiff_error *err);
/* Runs the callbacks of every operation of the calling thread that has completed, reading and
 * writing the connection as far as it can without blocking. Never blocks (beyond the client's
 * lock). Returns SKIFF_OK (whether or not anything completed; *ran, if non-NULL, counts the
 * callbacks run); SKIFF_ERR_INVALID when called from inside one of its callbacks. A lost
 * connection is not an error of process: the operations it lost complete with
 * SKIFF_ERR_CONNECTION through their callbacks. */
SKIFF_API int skiff_client_process(skiff_client *client, size_t *ran, skiff_error *err);
/* Operations of the calling thread started and not yet completed (their callbacks not run). */
SKIFF_API size_t skiff_client_pending(skiff_client *client);
/* Blocks until at least one operation of the calling thread completes, and runs the callbacks
 * of all that have (as process), or until timeout seconds pass (SKIFF_WAIT_FOREVER: no limit).
 * For a thread without an event loop, e.g. a function fanning out: start the calls, then
 * `while (skiff_client_pending(c)) skiff_client_wait(c, SKIFF_WAIT_FOREVER, NULL);`.
 * SKIFF_OK (callbacks ran); SKIFF_ERR_TIMEOUT (none completed in time); SKIFF_ERR_INVALID when
 * nothing is pending, timeout is NaN, or called from inside a callback. */
SKIFF_API int skiff_client_wait(skiff_client *client, double timeout, skiff_error *err);

/* Frees the calling thread's asynchronous state on client: its descriptor is closed and the
 * operations it still has pending are dropped (their callbacks never run). The state lives until
 * the client is closed otherwise, so a thread that exits before then (and is not part of a
 * long-lived pool) should call this first; a later asynchronous call from the thread makes a new
 * state. Detaches the thread's libuv adapter too. No-op when the thread has none, or when called
 * from inside one of its callbacks. */
SKIFF_API void skiff_client_release_thread(skiff_client *client);

struct uv_loop_s;
/* Drives the calling thread's asynchronous operations of client from a libuv loop (which must
 * run on this thread): a uv_poll_t on skiff_client_fd whose callback calls skiff_client_process.
 * The poll handle keeps the loop alive while attached. SKIFF_OK; SKIFF_ERR_INVALID (NULL
 * arguments, or already attached from this thread); SKIFF_ERR_NOMEM; SKIFF_ERR_INTERNAL (libuv
 * refused the poll handle). */
SKIFF_API int skiff_client_uv_attach(skiff_client *client, struct uv_loop_s *loop,
                                     skiff_error *err);
/* Stops driving client from the loop it was attached to on this thread (no-op if it was not).
 * The poll handle is closed asynchronously: its memory is freed by the loop's next iteration,
 * which must still run, but the client may be closed right after this returns. */
SKIFF_API void skiff_client_uv_detach(skiff_client *client);

/* skiff_function_remote without waiting: cb gets the result. Returns SKIFF_OK once the call is
 * sent (or queued to be sent); SKIFF_ERR_INVALID (NULL fn or cb, args not a list, kwargs not a
 * map, a generator), SKIFF_ERR_REQUEST_SIZE, SKIFF_ERR_CONNECTION (cannot connect),
 * SKIFF_ERR_AUTH, SKIFF_ERR_NOMEM: then cb is never called. fn must outlive the operation. */
SKIFF_API int skiff_function_remote_async(skiff_function *fn, const skiff_value *args,
                                          const skiff_value *kwargs, skiff_result_cb cb,
                                          void *userdata, skiff_error *err);
/* skiff_function_spawn without waiting: cb gets the new call handle once the input is durable.
 * Returns as skiff_function_remote_async. */
SKIFF_API int skiff_function_spawn_async(skiff_function *fn, const skiff_value *args,
                                         const skiff_value *kwargs, skiff_call_cb cb,
                                         void *userdata, skiff_error *err);
/* skiff_call_get without waiting: cb gets the result, or SKIFF_ERR_TIMEOUT once timeout seconds
 * passed with the call still running (SKIFF_WAIT_FOREVER: no limit; 0: poll once), or the
 * call's failure. SKIFF_ERR_INVALID (NULL call or cb, a generator or multi-input call, a NaN
 * timeout), or as remote_async. call must outlive the operation. */
SKIFF_API int skiff_call_get_async(skiff_call *call, double timeout, skiff_result_cb cb,
                                   void *userdata, skiff_error *err);
/* skiff_call_cancel without waiting: cb learns that the server took the cancellation. A pending
 * get_async of the call then completes with SKIFF_ERR_CANCELLED. Returns as remote_async. */
SKIFF_API int skiff_call_cancel_async(skiff_call *call, bool terminate_containers, skiff_done_cb cb,
                                      void *userdata, skiff_error *err);
/* skiff_call_gather without waiting: cb gets a new list of the n results in argument order (the
 * callback's), or the first failure in argument order (as soon as every call before it
 * succeeded; the other results are then discarded as they arrive). The calls (all of one client,
 * single calls from spawn) must outlive the operation. SKIFF_ERR_INVALID (n == 0, NULL calls,
 * cb or a NULL call, calls of different clients, a map or generator call), or as remote_async;
 * when some GETs were already sent, they are abandoned and their answers dropped. */
SKIFF_API int skiff_call_gather_async(skiff_call *const *calls, size_t n, skiff_result_cb cb,
                                      void *userdata, skiff_error *err);
/* skiff_function_lookup without waiting: cb gets the new, hydrated handle, or
 * SKIFF_ERR_NOT_FOUND naming the app and function. SKIFF_ERR_INVALID (NULL client or cb, empty
 * names), or as remote_async. */
SKIFF_API int skiff_function_lookup_async(skiff_client *client, const char *app, const char *name,
                                          skiff_function_cb cb, void *userdata, skiff_error *err);
/* skiff_function_get_current_stats without waiting. Returns as remote_async. */
SKIFF_API int skiff_function_get_current_stats_async(skiff_function *fn, skiff_stats_cb cb,
                                                     void *userdata, skiff_error *err);
/* skiff_function_map without waiting: output_cb gets each output as skiff_map_next would return
 * it (in input order unless opts->unordered; failures in place with opts->return_exceptions),
 * then done_cb the end: SKIFF_OK after the last output, or the map's failure (without
 * return_exceptions, the first failed input's error; its call is then cancelled). The window
 * (opts->max_outstanding) bounds the outputs received and not yet handed to output_cb, as for
 * maps; inputs keep going out as outputs are delivered. The lists are borrowed until done_cb
 * ran; fn must outlive the operation. Returns SKIFF_ERR_INVALID (NULL fn or callbacks, n == 0,
 * an item that is not a list, bad options) or as remote_async: then neither callback is
 * called. An empty input completes with SKIFF_OK at the next process. */
SKIFF_API int skiff_function_map_async(skiff_function *fn, const skiff_value *const *lists,
                                       size_t n, const skiff_map_options *opts,
                                       skiff_output_cb output_cb, skiff_done_cb done_cb,
                                       void *userdata, skiff_error *err);
/* skiff_function_remote_gen without waiting: item_cb gets each item in order as it arrives, then
 * done_cb the end (SKIFF_OK after the last item) or the generator's failure (after the items
 * yielded before it). SKIFF_ERR_INVALID (NULL fn or callbacks, fn known not to be a generator),
 * or as remote_async: then neither callback is called. fn must outlive the operation. */
SKIFF_API int skiff_function_remote_gen_async(skiff_function *fn, const skiff_value *args,
                                              const skiff_value *kwargs, skiff_item_cb item_cb,
                                              skiff_done_cb done_cb, void *userdata,
                                              skiff_error *err);

/* --- the twins of the remaining blocking calls ---------------------------------------------- */

/* A web endpoint's URL: on SKIFF_OK, url is malloc'd (the callback's: free() it), or NULL for a
 * function that is not a web endpoint. */
typedef void (*skiff_url_cb)(void *userdata, int rc, char *url, const skiff_error *err);
/* The autoscaler settings in force after an update (borrowed for the callback), on SKIFF_OK. */
typedef void (*skiff_autoscaler_cb)(void *userdata, int rc, const skiff_autoscaler *now,
                                    const skiff_error *err);
/* A call graph: on SKIFF_OK, the n roots (the callback's: skiff_call_graph_free). */
typedef void (*skiff_graph_cb)(void *userdata, int rc, skiff_input_info *roots, size_t n,
                               const skiff_error *err);

/* skiff_call_from_id without waiting: cb gets the new handle (kind and input count as the server
 * says), or SKIFF_ERR_NOT_FOUND if the server never had that call. SKIFF_ERR_INVALID (NULL
 * client or cb, not an fc- id), or as remote_async. */
SKIFF_API int skiff_call_from_id_async(skiff_client *client, const char *fc_id, skiff_call_cb cb,
                                       void *userdata, skiff_error *err);
/* skiff_call_get_index without waiting: cb gets input index's result, or as skiff_call_get_async
 * (SKIFF_ERR_NOT_FOUND when index is out of range, through cb). SKIFF_ERR_INVALID (NULL call or
 * cb, a generator call, a NaN timeout), SKIFF_ERR_NOT_FOUND (index over INT64_MAX), or as
 * remote_async. call must outlive the operation. */
SKIFF_API int skiff_call_get_index_async(skiff_call *call, size_t index, double timeout,
                                         skiff_result_cb cb, void *userdata, skiff_error *err);
/* skiff_call_iter without waiting: output_cb gets each output of the call (a spawn_map's, or a
 * single call's) as skiff_map_next would return it, then done_cb the end, as map_async.
 * SKIFF_ERR_INVALID (NULL call or callbacks, a generator call), or as remote_async. call must
 * outlive the operation. */
SKIFF_API int skiff_call_iter_async(skiff_call *call, const skiff_map_options *opts,
                                    skiff_output_cb output_cb, skiff_done_cb done_cb,
                                    void *userdata, skiff_error *err);
/* skiff_call_get_gen without waiting: item_cb gets each item of the spawned generator call in
 * order, then done_cb the end, as remote_gen_async. SKIFF_ERR_INVALID (NULL call or callbacks,
 * a call known not to be a generator), or as remote_async. call must outlive the operation. */
SKIFF_API int skiff_call_get_gen_async(skiff_call *call, skiff_item_cb item_cb,
                                       skiff_done_cb done_cb, void *userdata, skiff_error *err);

/* skiff_function_spawn_map without waiting: the inputs go out from process as the server
 * acknowledges earlier ones, and cb gets the one SKIFF_CALL_SPAWN_MAP call once every input is
 * durable, or the failure (a bad input, the server's refusal, SKIFF_ERR_CONNECTION). The array
 * lists is copied (it may be the caller's local); the lists in it are borrowed until cb ran; fn
 * must outlive the operation. SKIFF_ERR_INVALID (NULL fn or cb,
 * n == 0, an item that is not a list, kwargs not a map), or as remote_async. */
SKIFF_API int skiff_function_spawn_map_async(skiff_function *fn, const skiff_value *const *lists,
                                             size_t n, const skiff_value *kwargs, skiff_call_cb cb,
                                             void *userdata, skiff_error *err);
/* skiff_function_spawn_map_source without waiting. src->next is called only from inside process
 * (never from this call), whenever the map may send more; it must not block: SKIFF_AGAIN makes
 * process ask again SKIFF_MAP_AGAIN_MS later (the descriptor becomes readable then). src is
 * copied, its ctx borrowed until cb ran. Returns as spawn_map_async (NULL src or src->next:
 * SKIFF_ERR_INVALID). */
SKIFF_API int skiff_function_spawn_map_source_async(skiff_function *fn, const skiff_map_source *src,
                                                    const skiff_value *kwargs, skiff_call_cb cb,
                                                    void *userdata, skiff_error *err);
/* skiff_function_starmap without waiting: each inner list of tuples is one input's arguments;
 * outputs and end as map_async. SKIFF_ERR_INVALID if tuples is not a list of lists (checked
 * before anything is sent), or as map_async. tuples is borrowed until done_cb ran. */
SKIFF_API int skiff_function_starmap_async(skiff_function *fn, const skiff_value *tuples,
                                           const skiff_map_options *opts, skiff_output_cb output_cb,
                                           skiff_done_cb done_cb, void *userdata, skiff_error *err);
/* skiff_function_map_source without waiting: outputs and end as map_async. src->next is called
 * only from inside process (never from this call) whenever the window has room; it must not
 * block: SKIFF_AGAIN makes process ask again SKIFF_MAP_AGAIN_MS later (the descriptor becomes
 * readable then), and a failure it returns ends the map through done_cb. src is copied, its ctx
 * borrowed until done_cb ran. SKIFF_ERR_INVALID (NULL fn, src, src->next or callbacks, bad
 * options), or as remote_async. */
SKIFF_API int skiff_function_map_source_async(skiff_function *fn, const skiff_map_source *src,
                                              const skiff_map_options *opts,
                                              skiff_output_cb output_cb, skiff_done_cb done_cb,
                                              void *userdata, skiff_error *err);
/* skiff_function_for_each without waiting: done_cb gets SKIFF_OK once every input is done, or
 * the first failure unless ignore_exceptions (the rest of the call is then cancelled). Results
 * are discarded as they arrive. The array lists is copied, the lists in it borrowed until
 * done_cb ran. Returns as map_async. */
SKIFF_API int skiff_function_for_each_async(skiff_function *fn, const skiff_value *const *lists,
                                            size_t n, const skiff_value *kwargs,
                                            bool ignore_exceptions, skiff_done_cb done_cb,
                                            void *userdata, skiff_error *err);
/* skiff_function_spawn_gen without waiting: cb gets the new SKIFF_CALL_GENERATOR call once the
 * input is durable. Returns as spawn_async (SKIFF_ERR_INVALID also when fn is known not to be a
 * generator). */
SKIFF_API int skiff_function_spawn_gen_async(skiff_function *fn, const skiff_value *args,
                                             const skiff_value *kwargs, skiff_call_cb cb,
                                             void *userdata, skiff_error *err);
/* skiff_function_hydrate without waiting: cb gets SKIFF_OK once the handle is looked up (at the
 * next process if it already was), or SKIFF_ERR_NOT_FOUND naming the app and function.
 * SKIFF_ERR_INVALID (NULL fn or cb), or as remote_async. fn must outlive the operation. */
SKIFF_API int skiff_function_hydrate_async(skiff_function *fn, skiff_done_cb cb, void *userdata,
                                           skiff_error *err);
/* skiff_function_update_autoscaler without waiting: cb gets the settings in force afterwards.
 * SKIFF_ERR_INVALID (NULL fn, settings or cb, and every check of the blocking twin, made
 * before anything is sent), or as remote_async. */
SKIFF_API int skiff_function_update_autoscaler_async(skiff_function *fn,
                                                     const skiff_autoscaler *settings,
                                                     skiff_autoscaler_cb cb, void *userdata,
                                                     skiff_error *err);
/* skiff_function_keep_warm without waiting: cb learns the server took it. SKIFF_ERR_INVALID
 * (NULL fn or cb, n < 0), or as remote_async. */
SKIFF_API int skiff_function_keep_warm_async(skiff_function *fn, int64_t n, skiff_done_cb cb,
                                             void *userdata, skiff_error *err);
/* skiff_function_get_web_url without waiting: cb gets the URL (NULL for a function that is not
 * a web endpoint). Always asks the server (LOOKUP). SKIFF_ERR_INVALID (NULL fn or cb), or as
 * remote_async. fn must outlive the operation. */
SKIFF_API int skiff_function_get_web_url_async(skiff_function *fn, skiff_url_cb cb, void *userdata,
                                               skiff_error *err);
/* skiff_call_get_call_graph without waiting: cb gets the roots. SKIFF_ERR_INVALID (NULL call or
 * cb), or as remote_async. */
SKIFF_API int skiff_call_get_call_graph_async(skiff_call *call, skiff_graph_cb cb, void *userdata,
                                              skiff_error *err);
/* skiff_cls_hydrate without waiting: cb gets SKIFF_OK once the class's methods are known (at the
 * next process if they already were), or SKIFF_ERR_NOT_FOUND. SKIFF_ERR_INVALID (NULL cls or
 * cb), or as remote_async. cls must outlive the operation, and must not be used by other threads
 * meanwhile. skiff_cls_instantiate never blocks, and skiff_obj_method never blocks once its
 * class is hydrated (by skiff_cls_hydrate or this twin): in an event loop, hydrate first. */
SKIFF_API int skiff_cls_hydrate_async(skiff_cls *cls, skiff_done_cb cb, void *userdata,
                                      skiff_error *err);

#ifdef __cplusplus
}
#endif

#endif /* SKIFF_SKIFF_H */
