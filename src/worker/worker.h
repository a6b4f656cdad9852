/*
 * worker.h - the container runtime (skiff-worker), internal to libskiff.
 *
 * skiff-worker is a tiny executable (main.c) around skiff__worker_main, which lives in libskiff so
 * that the worker and the app's shared object (linked with -lskiff) share one copy of the
 * library: the skiff_ctx functions an app calls are the ones the worker implements.
 *
 * Modules:
 *   worker.c    command line, dispatch to describe or run
 *   load.c      loading an app's shared object, checking its declarations (deploy's rules)
 *   target.c    what a container runs: one function, or a class instance (params, state, hooks)
 *   describe.c  `skiff-worker --describe PATH`: the app's declarations as JSON, for deploy
 *   run.c       the container protocol on fd 3: W_READY, W_INPUTS -> W_OUTPUTS, cancel, stop
 *   exec.c      running one input or batch: binding, the call, generators, batches
 *   template.c  --template: a class's snapshot template, forking containers on the server's order
 *   crash.c     W_CRASH and a line on stderr when user code dies of a fatal signal or exits
 *   ctx.c       the skiff_ctx API of include/skiff/app.h (arguments, identity, raising, client)
 *   local.c     worker_local_call: running a function in the calling process
 *   python.c    Python apps: a bundle's container re-runs in python3 (skiff._container)
 */
#ifndef SKIFF_WORKER_WORKER_H
#define SKIFF_WORKER_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <skiff/app.h>

#include "common/signature.h"

struct buf;

/* The worker's entry point: skiff-worker's main is `return skiff__worker_main(argc, argv);`.
 * Returns the process exit status: 0 stopped or the server closed the socket (or --describe
 * succeeded), 1 a failure (init failure, malformed frame, lost socket), 2 a usage error. */
SKIFF_API int skiff__worker_main(int argc, char **argv);

/* A function or method ready to run: its definition and parsed signature. */
struct worker_fn {
    const struct skiff_function_def *def;
    struct signature sig; /* parsed .signature (empty when has_sig is false) */
    bool has_sig;
};

/* What a container (or a local call) runs: one plain function, or an instance of a class (its
 * methods, parameters, state and hooks). */
struct worker_target {
    const struct skiff_app_def *app;
    const struct skiff_class_def *cls; /* NULL: a plain function */
    struct worker_fn *fns;             /* the function, or the class's methods */
    size_t nfns;
    size_t max_params;                /* the most parameters any of fns has (bound slots needed) */
    struct signature params_sig;      /* the class's parameter signature (classes only) */
    skiff_value *params;              /* the parameter map given at instantiation, or NULL */
    const skiff_value **params_bound; /* params_sig.n values bound from params */
    void *state;                      /* the class state (state_size bytes, zeroed), or NULL */
    bool entered;                     /* every enter hook succeeded: exit hooks are due */
    int max_inputs;                   /* inputs run at once (>= 1) */
    int max_batch_size;               /* > 0: a batched function */
    int wait_ms;                      /* how long to gather a batch */
};

/* One input (or batch of inputs) being run, or a class hook (app.h: valid only during the call
 * it is passed to). */
struct skiff_ctx {
    const struct skiff_function_def *def; /* the function being run; NULL in a class hook */
    const struct signature *sig;          /* its parsed signature, or NULL: no binding */
    const skiff_value *args;              /* the input's positional arguments (a list) */
    const skiff_value *kwargs;            /* its keyword arguments (a map) */
    const skiff_value **bound;            /* sig->n arguments bound to the parameters */
    const char *input_id;                 /* "in-...", borrowed from the runner */
    const char *call_id;                  /* "fc-..." */
    const char *container_id;             /* "ta-..." */
    bool *cancelled;    /* set (atomically) by the runner when the input is cancelled; never NULL */
    skiff_error raised; /* what skiff_raise recorded; code SKIFF_OK if nothing */
    const struct worker_target *target; /* the class instance (self, params), or NULL */
    size_t batch;                       /* inputs in the batch (0 or 1: not batched) */
    /* Generators: where skiff_yield sends items (NULL: not a generator), and how many it sent. */
    int (*yield)(skiff_ctx *ctx, skiff_value *item);
    void *yield_arg;
    int64_t yielded;
};

/* --- load.c --------------------------------------------------------------------------------- */

/* Loads the app's shared object at path (RTLD_NOW | RTLD_LOCAL; kept loaded for the life of the
 * process) and checks its app ABI. SKIFF_OK with *out set, or SKIFF_ERR_INIT_FAILURE with a
 * message saying why (the dlerror text, no SKIFF_APP symbol, ABI mismatch). */
int worker_load_app(const char *path, const struct skiff_app_def **out, skiff_error *err);
/* The SKIFF_APP options (app.h) of the app worker_load_app loaded last, or NULL when it has none
 * (built before they existed). */
const struct skiff_app_opts *worker_app_options(void);
/* The function called name in app, or NULL. */
const struct skiff_function_def *worker_find_function(const struct skiff_app_def *app,
                                                      const char *name);
/* The configuration fields a function or class declares (0: the default), in one shape. */
struct worker_config {
    SKIFF_CONFIG_FIELDS
};
/* Copies def's (or cls's) configuration fields into out. */
void worker_config_of_function(const struct skiff_function_def *def, struct worker_config *out);
void worker_config_of_class(const struct skiff_class_def *cls, struct worker_config *out);
/* Checks everything `skiff deploy` needs from app: names, duplicates, signatures, classes,
 * hooks and every configuration range (docs/protocol.md, DEPLOY). Appends one line per problem
 * (each ending in '\n') to problems and returns how many there were (0: the app is valid). */
size_t worker_check_app(const struct skiff_app_def *app, struct buf *problems);

/* --- describe.c ----------------------------------------------------------------------------- */

/* Prints the app at path as one JSON object on stdout (docs/protocol.md, --describe) and returns
 * 0, or prints every problem on stderr and returns 1. */
int worker_describe(const char *path);

/* --- target.c ------------------------------------------------------------------------------ */

/* Checks that def can run (its ABI, code) and parses its signature into fn. SKIFF_OK, or
 * SKIFF_ERR_INIT_FAILURE with a message naming the function and the problem. */
int worker_prepare_function(const struct skiff_function_def *def, struct worker_fn *fn,
                            skiff_error *err);
/* Opens what a container runs in target (caller's storage): function `function` of app, or
 * (cls non-NULL) class cls instantiated with the msgpack map params[0..len) (NULL/0: no
 * parameters), validated against its parameter signature; allocates the class state. SKIFF_OK,
 * or SKIFF_ERR_INIT_FAILURE with a clear message (target is then deinitialised). */
int worker_target_open(struct worker_target *target, const struct skiff_app_def *app,
                       const char *function, const char *cls, const void *params, size_t len,
                       skiff_error *err);
/* Which enter hooks worker_target_enter runs: those run before a snapshot (enter_snap), the
 * others (enter), or both in that order. */
#define WORKER_ENTER_SNAP 1
#define WORKER_ENTER_REST 2
#define WORKER_ENTER_ALL (WORKER_ENTER_SNAP | WORKER_ENTER_REST)
/* Runs the class's enter hooks of the given phases (enter_snap first, then enter; none for a
 * function); the exit hooks become due once the WORKER_ENTER_REST phase succeeded. SKIFF_OK, or
 * SKIFF_ERR_INIT_FAILURE with the failing hook's error in the message and its traceback. */
int worker_target_enter(struct worker_target *target, const char *container_id, int phases,
                        skiff_error *err);
/* Runs the class's exit hooks once, if its enter hooks all ran; a failing one is logged. */
void worker_target_exit(struct worker_target *target, const char *container_id);
/* The function called method (a class's method; for a function target NULL or its own name), or
 * NULL when there is none. */
const struct worker_fn *worker_target_find(const struct worker_target *target, const char *method);
/* Frees what worker_target_open allocated. Safe on a zeroed target. */
void worker_target_deinit(struct worker_target *target);

/* --- exec.c --------------------------------------------------------------------------------- */

/* One input's outcome, as the runner reports it (borrowed from the caller, kept valid until
 * exec_run returns). */
struct exec_input {
    int64_t slot;
    const char *input_id;
    const char *call_id;
    const struct worker_fn *fn;
    const skiff_value *args, *kwargs;
    const skiff_error *failed; /* set: the input fails with this without running */
};

/* Where exec_run reports outputs (run.c sends them, local.c keeps them). Each callback returns
 * 0, or -1 when the output could not be delivered (the input is then failed). */
struct exec_sink {
    void *arg;
    /* The result of an input (v borrowed; NULL: nil). */
    int (*value)(void *arg, const struct exec_input *in, const skiff_value *v);
    /* The failure of an input. */
    int (*failure)(void *arg, const struct exec_input *in, const skiff_error *err);
    /* A generator's item (taken). 0, or -1 with err filled when the item cannot be delivered
     * (too large, out of memory, the server gone): the generator then fails with err. */
    int (*item)(void *arg, const struct exec_input *in, skiff_value *item, skiff_error *err);
    /* The end of a generator after count items. */
    int (*end)(void *arg, const struct exec_input *in, int64_t count);
};

/* Runs n inputs (n > 1 only for a batched function; all of the same function) and reports one
 * output per input to sink: binds each to its signature (a binding failure fails that input
 * alone), calls the function once, and reports its result, failure, or generator items. bound
 * holds at least target->max_params slots (single inputs). cancelled is the flag the runner sets
 * (atomically) when the input or whole batch is cancelled. Returns 0, or -1 when the sink failed
 * (the server is gone). */
int exec_run(const struct worker_target *target, const struct exec_input *in, size_t n,
             const skiff_value **bound, bool *cancelled, const char *container_id,
             const struct exec_sink *sink);

/* --- run.c ---------------------------------------------------------------------------------- */

struct worker_opts {
    int fd;                   /* the socket to the server */
    const char *code;         /* path of the app's shared object */
    const char *function;     /* the function this container runs (NULL for a class) */
    const char *cls;          /* the class this container runs (NULL for a function) */
    const char *params;       /* base64 of the class's msgpack parameter map, or NULL */
    const char *container_id; /* "ta-..." */
    bool template_mode;       /* --template: a class's snapshot template (template.c) */
};

/* Runs the container protocol on o->fd until W_STOP, end of file or a fatal error. Returns the
 * process exit status (see skiff__worker_main). */
int worker_run(const struct worker_opts *o);
/* Reads control messages (W_CANCEL, W_STOP, W_INPUTS) that arrived while an input runs in a
 * container running one input at a time, without blocking and at most about once a millisecond;
 * marks the running input cancelled when told so (or when the server has gone), and sends
 * outputs held back. Thread-safe; a no-op elsewhere (with max_inputs > 1 a reader thread sees
 * every message at once). */
void worker_poll_control(void);

/* --- template.c ---------------------------------------------------------------------------- */

/* Serves as a snapshot template on fd (docs/protocol.md, "Snapshot templates"), once the app is
 * loaded and the class's enter_snap hooks ran: sends W_TEMPLATE_READY, then forks a container
 * for each T_FORK and reports T_PID and T_EXITED for it, until W_STOP (then it waits for its
 * children) or the end of the socket (then it kills them). In the template it returns the
 * process exit status (0, or 1 after a protocol error or a failed write). In a forked child it
 * returns -1 with the child set up: the container's socket on fd, its stdout and stderr on 1 and
 * 2, SKIFF_CONTAINER_ID set and *child_id pointing at the container id (static storage); the
 * caller then runs the remaining enter hooks and the container loop. */
int worker_template_serve(int fd, const char **child_id);

/* --- ctx.c ---------------------------------------------------------------------------------- */

/* Closes the container's shared client (skiff_ctx_client), if one was connected. Called once all
 * inputs are done. */
void worker_close_client(void);

/* --- crash.c -------------------------------------------------------------------------------- */

/* How crash.c reaches the server: a W_CRASH frame is written to fd (a socket: MSG_NOSIGNAL),
 * after the outputs held back (see worker_crash_pending), once the socket is free. */
void worker_crash_setup(int fd, const char *container_id);
/* Installs handlers for SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT (where no handler is set
 * yet, e.g. by a sanitizer) that send W_CRASH for the input the dying thread runs, write one line
 * naming the container, function and input to stderr and then die of the same signal with its
 * default action; and an on_exit handler doing the same when an input calls exit(). */
void worker_crash_notes(void);
/* Gives the calling thread (a pool thread) its own alternate signal stack, so that its stack
 * overflow is reported too. Returns the stack for worker_crash_thread_stack_free, or NULL (no
 * alternate stack: the note may be lost). */
void *worker_crash_thread_stack(void);
void worker_crash_thread_stack_free(void *stack);
/* The input the calling thread now runs (slot, id, function name; slot < 0: none). Strings are
 * copied. */
void worker_crash_set_input(int64_t slot, const char *input_id, const char *function);
/* The process is ending on purpose: exit() no longer means an input died. */
void worker_crash_exiting(void);
/* The socket lock shared with the crash handler: worker_sock_lock spins until no other writer
 * (or a dying thread) holds the socket; unlock releases it. */
void worker_sock_lock(void);
void worker_sock_unlock(void);
/* Outputs held back (a W_OUTPUTS frame being built, *count entries) that a dying thread should
 * send first: registers where the buffer is (data pointer and length are read at crash time) and
 * where its 32-bit entry count goes (count_at bytes in). busy is set (atomically, 1) while the
 * buffer is being modified. */
void worker_crash_pending(char *const *data, const size_t *len, const uint32_t *count,
                          size_t count_at, int *busy);

/* --- python.c ------------------------------------------------------------------------------ */

/* Makes worker_load_app return app for any path: the app a Python process built (skiff._skiff)
 * from a bundle's module. Call before skiff__worker_main; app must live as long as the process. */
SKIFF_API void skiff__worker_preload(const struct skiff_app_def *app);
/* Makes worker_load_app fail with SKIFF_ERR_INIT_FAILURE, message and traceback (copied): the
 * Python app's module could not be imported. */
SKIFF_API void skiff__worker_preload_failure(const char *message, const char *traceback);
/* True, with err filled (if non-NULL), after skiff__worker_preload_failure. */
bool worker_preload_failed(skiff_error *err);
/* The preloaded app, or NULL. */
const struct skiff_app_def *worker_preloaded(void);
/* Handlers a snapshot template runs around each fork (template.c): before it in the template,
 * then after it in the child or the template. Python's (skiff._skiff) take the GIL before and
 * reinitialise the interpreter's threads in the child, as os.fork does. NULL: none. */
SKIFF_API void skiff__worker_fork_hooks(void (*before)(void), void (*child)(void),
                                        void (*parent)(void));
void worker_fork_before(void);
void worker_fork_after(bool child);
/* True when the file at path is a Python app bundle (a zip archive), not a shared object. */
bool worker_is_bundle(const char *path);
/* Replaces the process with python3 -m skiff._container and argv[1..] (PYTHONPATH set to the
 * package next to this binary). Returns only on failure: exit status 1, with a message. */
int worker_exec_python(int argc, char **argv);

/* --- local.c ------------------------------------------------------------------------------- */

/* Remembers app (loaded by worker_load_app) so worker_local_call finds it by name. */
void worker_register_app(const struct skiff_app_def *app);

#endif
