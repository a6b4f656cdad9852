/*
 * fn.h - libskiff internals shared by the files behind skiff.h: the function and call handles,
 * and the pieces every request naming a function uses (not part of the public API).
 *
 * A request names its function either by id (once the handle is hydrated) or by app and name,
 * and for a method of a class with parameters it carries the instance's encoded parameters.
 * Request frames are built under the client's lock, which also guards a handle's hydration.
 */
#ifndef SKIFF_CLIENT_FN_H
#define SKIFF_CLIENT_FN_H

#include <stdbool.h>
#include <stddef.h>
#include <skiff/skiff.h>

#include "common/id.h"
#include "common/wire.h"

/* What LOOKUP said a function is; FN_UNKNOWN until then (the server checks every call anyway). */
enum fn_kind { FN_UNKNOWN = 0, FN_FUNCTION, FN_GENERATOR, FN_WEB };

struct skiff_function {
    skiff_client *client; /* borrowed */
    char *app;
    char *name;       /* "square", or "Cls.method" for a method */
    char id[ID_SIZE]; /* "fu-..." once hydrated */
    bool hydrated;    /* id is set (atomic load/store) */
    int kind;         /* an enum fn_kind (atomic load/store) */
    char *web_url;    /* a web endpoint's URL from LOOKUP, else NULL; written once under mu */
    bool looked_up;   /* a LOOKUP answered (kind and web_url are known), under mu */
    char *params;     /* a method's instance parameters (msgpack map), or NULL */
    size_t params_len;
    bool cancel_on_close; /* blocking calls ask the server to cancel them when this client's
                             connection closes, even running (client_cancel_on_close) */
};

struct skiff_call {
    skiff_client *client; /* borrowed */
    char id[ID_SIZE];     /* "fc-..." */
    skiff_call_kind kind;
    size_t inputs; /* input count as last known */
};

/* Records the function id (and from a LOOKUP reply the kind, web_url) from a reply naming the
 * function, if the handle has none yet. SKIFF_OK, or SKIFF_ERR_DESERIALIZATION (no valid
 * function_id), SKIFF_ERR_NOMEM. */
int function_remember(skiff_function *fn, const struct wire_msg *m, skiff_error *err);
struct rpc_field;
/* Fills f[0..1] with LOOKUP's fields for fn: its app and name. */
void function_lookup_fields(const skiff_function *fn, struct rpc_field *f);
/* Sends LOOKUP for fn by app and name and records what it says (id, kind, web_url). SKIFF_OK,
 * SKIFF_ERR_NOT_FOUND naming both, or as rpc_request. */
int function_lookup(skiff_function *fn, skiff_error *err);
/* How many fields function_put_target writes. Client lock held. */
uint32_t function_target_fields(const skiff_function *fn);
/* Writes the fields naming fn (function_id, or app and function; params for a method of an
 * instance with parameters). Client lock held. */
void function_put_target(struct wire_writer *w, const skiff_function *fn);
/* Encodes [args, kwargs] into the client's argument buffer c->args (capped at the payload
 * limit). SKIFF_OK, or SKIFF_ERR_REQUEST_SIZE / SERIALIZATION / INVALID / NOMEM with err set
 * naming fn; the buffer is then empty. Client lock held. */
int function_encode_args(skiff_function *fn, struct buf *out, size_t max, const skiff_value *args,
                         const skiff_value *kwargs, skiff_error *err);
/* SKIFF_ERR_INVALID with a clear message when fn is known to be a generator and gen is false, or
 * known to be a plain function (or a web endpoint) and gen is true; SKIFF_OK otherwise. */
int function_check_kind(const skiff_function *fn, bool gen, skiff_error *err);
/* Checks args is a list (or NULL) and kwargs a map (or NULL). */
int function_check_args(const skiff_function *fn, const skiff_value *args,
                        const skiff_value *kwargs, skiff_error *err);
struct rpc_field;
/* Fills f[0..2] with the fields naming fn for a simple request (rpc_simple) and returns how
 * many: function_id or app and function, and params for a method of an instance. */
size_t function_target(const skiff_function *fn, struct rpc_field *f);

struct rpc_sink;
/* Sends a CALL (spawn: queue it and answer with its call_id; gen: a generator's) without
 * waiting, after the checks of remote: its reply (and a generator's items) go to s, its rid to
 * *rid if non-NULL. The calling thread's parent input is read while the frame is built.
 * SKIFF_OK, SKIFF_ERR_INVALID (argument shapes, the function's known kind), or as rpc_send. */
int function_send(skiff_function *fn, const skiff_value *args, const skiff_value *kwargs,
                  bool spawn, bool gen, struct rpc_sink *s, uint64_t *rid, skiff_error *err);
/* Decodes the "value" field of an OK reply (CALL or GET) into *result (the caller's). SKIFF_OK,
 * SKIFF_ERR_DESERIALIZATION (no value, or one that does not decode), SKIFF_ERR_NOMEM. */
int function_reply_result(const struct wire_msg *m, skiff_value **result, skiff_error *err);
/* Decodes a result value (codec_decode_value) into *out, refusing one that holds a pickled Python
 * object (SKIFF_ERR_DESERIALIZATION, VALUE_PICKLE_MESSAGE) unless this process called
 * skiff__accept_pickles. */
int client_decode_result(const char *p, size_t n, skiff_value **out, skiff_error *err);
/* This process reads pickled Python objects (the Python extension calls it at import). */
SKIFF_API void skiff__accept_pickles(void);
/* client_set_parent_input (client.h) for an embedding runtime: the Python extension sets it
 * around the calls an async function body starts on its event loop's thread. */
SKIFF_API void skiff__set_parent_input(const char *input_id);
/* Fills f[0..2] with GET's fields for call (index < 0: the whole call) waiting up to timeout
 * seconds as skiff_call_get says; send the first 2, or 3 with an index. SKIFF_OK, or
 * SKIFF_ERR_INVALID (a generator call, a multi-input call without an index, a NaN timeout). */
int call_get_fields(const skiff_call *call, int64_t index, double timeout, struct rpc_field *f,
                    skiff_error *err);
/* Reads a STATS reply into *out. SKIFF_OK or SKIFF_ERR_DESERIALIZATION (backlog or
 * num_total_runners missing); *out is written only on success. */
int function_stats_from_reply(const struct wire_msg *m, skiff_function_stats *out,
                              skiff_error *err);
/* Sends a generator CALL (remote_gen) without waiting, after the checks of remote: its items and
 * final reply go to s. SKIFF_OK, or as rpc_send. */
int function_send_call(skiff_function *fn, const skiff_value *args, const skiff_value *kwargs,
                       struct rpc_sink *s, skiff_error *err);
/* skiff_function_remote_gen whose stream writes notify (an eventfd, or -1) when a frame for it
 * arrives, so an event loop learns when to read it. Same returns. */
int gen_remote(skiff_function *fn, const skiff_value *args, const skiff_value *kwargs, int notify,
               skiff_gen **out, skiff_error *err);
/* skiff_gen_next waiting at most timeout_ms for a frame (-1: no limit, 0: take only what has
 * arrived): SKIFF_AGAIN when nothing came in time, else as skiff_gen_next. */
int gen_next_wait(skiff_gen *g, int timeout_ms, skiff_value **item, skiff_error *err);
/* Frames the stream has received. The server's first frame to a reader of a spawned generator
 * holds every item stored so far (it may hold none), so once this is > 0 what was stored when the
 * request was made has all arrived. */
size_t gen_frames(const skiff_gen *g);
/* skiff_function_map that never waits: MAP_START is sent without waiting for its answer, and the
 * map's sink writes notify (an eventfd) when a frame for it arrives. Read it with map_next_wait
 * and a timeout of 0. Returns as skiff_function_map. */
int map_start_async(skiff_function *fn, const skiff_value *const *lists, size_t n,
                    const skiff_map_options *opts, int notify, skiff_map **out, skiff_error *err);
/* skiff_map_next waiting at most timeout_ms for a frame (-1: no limit, 0: handle only what has
 * arrived): SKIFF_AGAIN when no output is ready in time, else as skiff_map_next. */
int map_next_wait(skiff_map *m, skiff_map_output *out, int timeout_ms, skiff_error *err);
/* Drives an asynchronous spawn_map (made by map_begin with a notify eventfd) as far as it can
 * without waiting: handles what arrived and sends the inputs there is room for. SKIFF_AGAIN
 * until every input is durable, then SKIFF_OK with the new SKIFF_CALL_SPAWN_MAP call in *call;
 * or the map's failure (err filled), after which the map is over. */
int map_spawn_step(skiff_map *m, skiff_call **call, skiff_error *err);
/* True when the map's source last said SKIFF_AGAIN: the event loop asks it again after
 * SKIFF_MAP_AGAIN_MS (map_next_wait or map_spawn_step with no frame to handle). */
bool map_source_waiting(const skiff_map *m);
/* skiff_call_get_gen whose stream writes notify (an eventfd, or -1) when a frame for it arrives.
 * Same returns. */
int gen_call_outputs(skiff_call *call, int notify, skiff_gen **out, skiff_error *err);
/* The kind and input count a CALL_INFO reply says (a single call of 1 input when it says
 * nothing valid). */
void call_info_read(const struct wire_msg *m, skiff_call_kind *kind, size_t *inputs);
/* A new call handle for id. SKIFF_OK or SKIFF_ERR_NOMEM. */
int call_new(skiff_client *client, const char *id, skiff_call_kind kind, size_t inputs,
             skiff_call **out, skiff_error *err);
/* Copies a well-formed "fc-" call_id from a reply into id. SKIFF_OK or
 * SKIFF_ERR_DESERIALIZATION. */
int call_id_from_reply(const struct wire_msg *m, char id[ID_SIZE], skiff_error *err);
/* Fills err from a failure item of an outputs stream: [index, code, type, message, traceback]
 * at o[1..4]. */
void call_item_error(const msgpack_object *o, uint32_t n, skiff_error *err);

#endif
