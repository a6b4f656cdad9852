/*
 * ops.h - plain request helpers for the skiff command-line tool (not part of the public API).
 *
 * Each sends one request on a connected client and returns the server's OK reply as a new
 * skiff_value map of its fields (docs/protocol.md lists them per operation), ready to be printed
 * as JSON. Returns are those of the request: SKIFF_OK with *reply set (owned by the caller);
 * the server's own error (err filled, e.g. SKIFF_ERR_NOT_FOUND naming the app and function);
 * SKIFF_ERR_CONNECTION, SKIFF_ERR_AUTH, SKIFF_ERR_DESERIALIZATION, SKIFF_ERR_NOMEM. *reply is
 * written only on success. Strings are borrowed.
 */
#ifndef SKIFF_CLIENT_OPS_H
#define SKIFF_CLIENT_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <skiff/skiff.h>

/* DEPLOY: app's code (len bytes of a shared object, at most PROTO_CODE_MAX), its function
 * definitions and its class definitions (lists of maps as `skiff-worker --describe` prints them,
 * docs/protocol.md; classes NULL: none, sent as an empty list). Reply: app_id, version,
 * functions [{name, function_id, web_url}]. SKIFF_ERR_INVALID if functions or classes is not a
 * list of maps or the code is empty; SKIFF_ERR_REQUEST_SIZE if the code is over the limit
 * (nothing is sent). */
int client_deploy(skiff_client *c, const char *app, const void *code, size_t len,
                  const skiff_value *functions, const skiff_value *classes, skiff_value **reply,
                  skiff_error *err);
/* DEPLOY of an ephemeral app (`skiff run`), as client_deploy otherwise: the server stops and
 * removes the app when this client's connection closes, however it closes, and refuses the
 * deploy (SKIFF_ERR_INVALID) when an app of that name exists. */
int client_deploy_ephemeral(skiff_client *c, const char *app, const void *code, size_t len,
                            const skiff_value *functions, const skiff_value *classes,
                            skiff_value **reply, skiff_error *err);
/* APP_LIST. Reply: apps [{app_id, name, state, version, created, functions}]. */
int client_app_list(skiff_client *c, skiff_value **reply, skiff_error *err);
/* APP_STOP. SKIFF_ERR_NOT_FOUND if the app is not deployed. No reply value. */
int client_app_stop(skiff_client *c, const char *app, skiff_error *err);
/* CONTAINER_LIST. Reply: containers [{container_id, app, function, version, pid, state, inputs,
 * started}]. */
int client_container_list(skiff_client *c, skiff_value **reply, skiff_error *err);
/* STATS of app's function (a method: of the pool of params, a map or NULL for none). Reply:
 * backlog, num_total_runners, num_running_inputs, input_headroom, autoscaler {min_containers,
 * max_containers, buffer_containers, scaledown_window} (the fields the server sends). */
int client_stats(skiff_client *c, const char *app, const char *function, const skiff_value *params,
                 skiff_value **reply, skiff_error *err);
/* TOKEN_NEW of scope ("admin", "deploy", "call"; NULL: the server's default, call) that expires
 * expires_ms from now (0: never). Reply: token_id, token_secret, scope, expires (unix s or
 * nil). SKIFF_ERR_INVALID for a negative expires_ms (nothing is sent) or a scope the server
 * does not know; SKIFF_ERR_AUTH without an admin token. */
int client_token_new(skiff_client *c, const char *scope, int64_t expires_ms, skiff_value **reply,
                     skiff_error *err);
/* DASHBOARD_LOGIN. Reply: code (a one-time login code), http (the server's HTTP HOST:PORT).
 * SKIFF_ERR_AUTH without a deploy or admin token. */
int client_dashboard_login(skiff_client *c, skiff_value **reply, skiff_error *err);
/* TOKEN_LIST. Reply: tokens [{token_id, scope, created, expires, expired, last_used}]. */
int client_token_list(skiff_client *c, skiff_value **reply, skiff_error *err);
/* TOKEN_REVOKE of a "tk-" id (SKIFF_ERR_INVALID for anything else, before sending).
 * SKIFF_ERR_NOT_FOUND if there is no such token; SKIFF_ERR_INVALID for the last admin token. No
 * reply value. */
int client_token_revoke(skiff_client *c, const char *token_id, skiff_error *err);
/* CALL_INFO of an "fc-" id (SKIFF_ERR_INVALID for anything else, before sending). Reply:
 * call_id, function_id, app, function, status, created. */
int client_call_info(skiff_client *c, const char *call_id, skiff_value **reply, skiff_error *err);

/* SECRET_CREATE of name with values (a map of KEY to string VALUE), replacing a secret of that
 * name when replace. Reply: name, keys, updated. SKIFF_ERR_INVALID for a bad name, key or
 * value, or (without replace) a secret that exists. */
int client_secret_create(skiff_client *c, const char *name, const skiff_value *values, bool replace,
                         skiff_value **reply, skiff_error *err);
/* SECRET_LIST. Reply: secrets [{name, keys, created, updated}] (never values). */
int client_secret_list(skiff_client *c, skiff_value **reply, skiff_error *err);
/* SECRET_DELETE. SKIFF_ERR_NOT_FOUND if there is no such secret. No reply value. */
int client_secret_delete(skiff_client *c, const char *name, skiff_error *err);
/* VOLUME_CREATE. Reply: name, created. SKIFF_ERR_INVALID for a bad name or one that exists. */
int client_volume_create(skiff_client *c, const char *name, skiff_value **reply, skiff_error *err);
/* VOLUME_LIST. Reply: volumes [{name, size, files, created}]. */
int client_volume_list(skiff_client *c, skiff_value **reply, skiff_error *err);
/* VOLUME_DELETE. SKIFF_ERR_NOT_FOUND if unknown; SKIFF_ERR_INVALID while a running app's
 * function mounts it. No reply value. */
int client_volume_delete(skiff_client *c, const char *name, skiff_error *err);
/* VOLUME_PUT of one chunk (at most VOLUMES_CHUNK bytes, 4 MiB) of the file at path in volume
 * name, starting at offset (0: a new file); last: the file is complete and replaces path.
 * Reply: size. */
int client_volume_put(skiff_client *c, const char *name, const char *path, const void *data,
                      size_t len, int64_t offset, bool last, skiff_value **reply, skiff_error *err);
/* VOLUME_GET of up to length bytes of the file at path from offset. Reply: data (bytes), size
 * (the whole file's). SKIFF_ERR_NOT_FOUND if there is no such regular file. */
int client_volume_get(skiff_client *c, const char *name, const char *path, int64_t offset,
                      int64_t length, skiff_value **reply, skiff_error *err);
/* VOLUME_LS of path (NULL or "/": the top) in volume name. Reply: entries [{name, type, size,
 * mtime}], truncated. */
int client_volume_ls(skiff_client *c, const char *name, const char *path, skiff_value **reply,
                     skiff_error *err);

/* Receives one log line of client_logs: [ts_ms, container_id, input_id or nil, stream, text]
 * as a list (borrowed). Returns 0 to go on, anything else to stop (client_logs then returns
 * SKIFF_OK). */
typedef int (*client_log_fn)(void *ctx, const skiff_value *line);
/* LOGS of app (and function, if non-NULL; params, if a non-empty map: one parameter set of a
 * class or method): calls fn for each line as it arrives, until the
 * server ends the stream (without follow: after the lines kept; tail >= 0 keeps only the last
 * tail of them) or fn asks to stop. Returns SKIFF_OK; SKIFF_ERR_INVALID for an empty app name;
 * the server's error (SKIFF_ERR_NOT_FOUND for an unknown app); SKIFF_ERR_DESERIALIZATION for a
 * malformed line; SKIFF_ERR_CONNECTION, SKIFF_ERR_NOMEM. */
int client_logs(skiff_client *c, const char *app, const char *function, const skiff_value *params,
                bool follow, int64_t tail, client_log_fn fn, void *ctx, skiff_error *err);

/* From now on fn's blocking calls (remote, remote_gen) ask the server to cancel them when this
 * client's connection closes, even while they run: a command line interrupted with Ctrl-C
 * (which ends the process) cancels what it started. */
void client_cancel_on_close(skiff_function *fn);

#endif
