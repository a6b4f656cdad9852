/*
 * client.h - libskiff internals shared with the container runtime (src/worker).
 *
 * Not part of the public API.
 */
#ifndef SKIFF_CLIENT_CLIENT_H
#define SKIFF_CLIENT_CLIENT_H

/* Sets the input the calling thread is running ("in-..."), sent as parent_input_id with every
 * CALL this thread makes, so the server can link calls made from inside functions into the call
 * graph. NULL clears it. The string is borrowed until cleared. The container runtime sets it
 * around each function call. */
void client_set_parent_input(const char *input_id);
/* The calling thread's parent input, or NULL. */
const char *client_parent_input(void);

/* Runs app.function (a method: "Class.method", its class's enter hooks first and exit hooks
 * after, on an instance with params: the instance's parameters as a msgpack map, or NULL) in
 * the calling process, on the app definition linked into it
 * (dlsym(RTLD_DEFAULT, SKIFF_APP_SYMBOL)) or loaded by it (an app's shared object the container
 * runtime opened). args (a list) and kwargs (a map) are borrowed; NULL means none. SKIFF_OK with
 * *result set (the caller frees it; a generator's items as a list); the function's own failure
 * (its code, type, message and traceback); SKIFF_ERR_EXECUTION ("ExecutionError") when the
 * process has no local definition of the app or function; SKIFF_ERR_INIT_FAILURE when the
 * class's parameters do not bind (a required one missing, an unknown or mistyped one) or its
 * enter hook fails.
 * Defined in src/worker/local.c. */
struct skiff_value;
struct skiff_error;
int worker_local_call(const char *app, const char *function, const void *params, size_t params_len,
                      const struct skiff_value *args, const struct skiff_value *kwargs,
                      struct skiff_value **result, struct skiff_error *err);

#endif
