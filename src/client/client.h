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

#endif
