/*
 * worker.h - the container runtime (skiff-worker), internal to libskiff.
 *
 * skiff-worker is a tiny executable (main.c) around skiff__worker_main, which lives in libskiff so
 * that the worker and the app's shared object (linked with -lskiff) share one copy of the
 * library: the skiff_ctx functions an app calls are the ones the worker implements.
 *
 * Modules:
 *   worker.c    command line, dispatch to describe or run
 *   load.c      loading an app's shared object, finding and checking its functions
 *   describe.c  `skiff-worker --describe PATH`: the app's declarations as JSON, for deploy
 *   run.c       the container loop on fd 3: W_READY, then W_INPUT -> W_OUTPUT until stopped
 *   ctx.c       the skiff_ctx API of include/skiff/app.h (arguments, identity, raising, client)
 *   crash.c     a one-line note on stderr when user code dies of a fatal signal
 */
#ifndef SKIFF_WORKER_WORKER_H
#define SKIFF_WORKER_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <skiff/app.h>

struct buf;
struct signature;

/* The worker's entry point: skiff-worker's main is `return skiff__worker_main(argc, argv);`.
 * Returns the process exit status: 0 stopped or the server closed the socket (or --describe
 * succeeded), 1 a failure (init failure, malformed frame, lost socket), 2 a usage error. */
SKIFF_API int skiff__worker_main(int argc, char **argv);

/* One input being run (app.h: valid only during the call it is passed to). */
struct skiff_ctx {
    const struct skiff_function_def *def; /* the function being run */
    const struct signature *sig;          /* its parsed signature, or NULL: no binding */
    const skiff_value *args;              /* the input's positional arguments (a list) */
    const skiff_value *kwargs;            /* its keyword arguments (a map) */
    const skiff_value **bound;            /* sig->n arguments bound to the parameters */
    const char *input_id;                 /* "in-...", borrowed from the runner */
    const char *call_id;                  /* "fc-..." */
    const char *container_id;             /* "ta-..." */
    bool cancelled;                       /* set (atomically) when the input is cancelled */
    skiff_error raised;                   /* what skiff_raise recorded; code SKIFF_OK if nothing */
};

/* --- load.c --------------------------------------------------------------------------------- */

/* Loads the app's shared object at path (RTLD_NOW | RTLD_LOCAL; kept loaded for the life of the
 * process) and checks its app ABI. SKIFF_OK with *out set, or SKIFF_ERR_INIT_FAILURE with a
 * message saying why (the dlerror text, no SKIFF_APP symbol, ABI mismatch). */
int worker_load_app(const char *path, const struct skiff_app_def **out, skiff_error *err);
/* The function called name in app, or NULL. */
const struct skiff_function_def *worker_find_function(const struct skiff_app_def *app,
                                                      const char *name);
/* Checks that def can run (its ABI, code) and parses its signature into sig (left empty when
 * def has none; *has_sig says which). SKIFF_OK, or SKIFF_ERR_INIT_FAILURE with a message naming
 * the function and the problem (sig is then empty). */
int worker_prepare_function(const struct skiff_function_def *def, struct signature *sig,
                            bool *has_sig, skiff_error *err);
/* Checks everything `skiff deploy` needs from app: names, duplicate functions, signatures,
 * timeouts and autoscaler settings. Appends one line per problem (each ending in '\n') to
 * problems and returns how many there were (0: the app is valid). */
size_t worker_check_app(const struct skiff_app_def *app, struct buf *problems);

/* --- describe.c ----------------------------------------------------------------------------- */

/* Prints the app at path as one JSON object on stdout (docs/protocol.md, --describe) and returns
 * 0, or prints every problem on stderr and returns 1. */
int worker_describe(const char *path);

/* --- run.c ---------------------------------------------------------------------------------- */

struct worker_opts {
    int fd;                   /* the socket to the server */
    const char *code;         /* path of the app's shared object */
    const char *function;     /* the function this container runs */
    const char *container_id; /* "ta-..." */
};

/* Runs the container protocol on o->fd until W_STOP, end of file or a fatal error. Returns the
 * process exit status (see skiff__worker_main). */
int worker_run(const struct worker_opts *o);
/* Reads control messages (W_CANCEL, W_STOP) that arrived while an input runs, without blocking
 * and at most about once a millisecond; marks the running input cancelled when told so (or when
 * the server has gone). Thread-safe; a no-op outside worker_run. */
void worker_poll_control(void);

/* --- ctx.c ---------------------------------------------------------------------------------- */

/* Closes the container's shared client (skiff_ctx_client), if one was connected. Called once all
 * inputs are done. */
void worker_close_client(void);

/* --- crash.c -------------------------------------------------------------------------------- */

/* Installs handlers for SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT (where no handler is set
 * yet, e.g. by a sanitizer) that write one line naming the container, function and input to
 * stderr and then die of the same signal with its default action. Both strings are copied. */
void worker_crash_notes(const char *container_id, const char *function);
/* The input now running (NULL: none), for the note. The string is copied. */
void worker_crash_set_input(const char *input_id);

#endif
