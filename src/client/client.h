/*
 * client.h - libskiff internals shared with the container runtime (src/worker).
 *
 * Not part of the public API.
 */
#ifndef SKIFF_CLIENT_CLIENT_H
#define SKIFF_CLIENT_CLIENT_H

#include <skiff/skiff.h>

/* Sets the input the calling thread is running ("in-..."), sent as parent_input_id with every
 * CALL this thread makes, so the server can link calls made from inside functions into the call
 * graph. NULL clears it. The string is borrowed until cleared. The container runtime sets it
 * around each function call. */
void client_set_parent_input(const char *input_id);
/* The calling thread's parent input, or NULL. */
const char *client_parent_input(void);

/* Runs app's function (a method as "Class.method") in this process, as its container would:
 * loads the app's code if needed, enters a class first, binds args (a list, NULL: none) and
 * kwargs (a map, NULL: none) and calls it. SKIFF_OK with the result in *result (the caller's),
 * or the function's failure with err filled. Implemented by the container runtime (src/worker);
 * skiff_function_local calls it where it is linked in. */
int worker_local_call(const char *app, const char *function, const skiff_value *args,
                      const skiff_value *kwargs, skiff_value **result, skiff_error *err);

#endif
