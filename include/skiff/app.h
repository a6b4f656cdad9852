/*
 * app.h - the skiff app SDK: how a C file declares an app, its functions, generators, classes
 * and web endpoints (docs/app-sdk.md has worked examples of each).
 *
 *     #include <skiff/app.h>
 *
 *     SKIFF_APP("my-shared-app");
 *
 *     static int square(skiff_ctx *ctx, skiff_value **out)
 *     {
 *         int64_t x = skiff_arg_int(ctx, "x");
 *         *out = skiff_value_int(x * x);
 *         return 0;
 *     }
 *     SKIFF_FUNCTION(square, .signature = "x:int");
 *
 * `skiff deploy app.c` compiles the file into a shared object and sends it to the server, which
 * runs each function in containers: worker processes that load the shared object and call the
 * function once per input (several at once with .max_inputs, a list of inputs at once with
 * .max_batch_size).
 *
 * A function returns 0 and sets *out (NULL *out means nil), or fails by returning
 * skiff_raise(ctx, "ValueError", "fmt", ...), which records the error type, message and the
 * place it was raised (the caller sees them, with a traceback). Returning non-zero without
 * raising reports a generic "Error". A generator (.generator = true) hands out items with
 * skiff_yield instead of setting *out.
 *
 * Signatures. `.signature` names the parameters, in order, with optional types and defaults
 * marked optional by a trailing '?':  "job_id:str, params:map?". Types: any, nil, bool, int,
 * float (accepts int), str, bytes, list, map. The runtime binds positional and keyword arguments
 * to the names before the function runs and fails the call with a TypeError when there are too
 * many, a required one is missing, an unknown keyword is given or a type does not match; the
 * function then reads arguments by name. Without a signature the function reads the raw
 * skiff_ctx_args / skiff_ctx_kwargs and checks them itself.
 *
 * Classes. SKIFF_CLASS(Name, struct state, ...) declares a class whose containers hold one state
 * struct (zeroed, then filled by the `enter` hooks at container start), typed parameters given
 * when the caller instantiates it (`.params = "greeting:str, n:int?"`, types int, str, bytes,
 * bool), and `exit` hooks run when the container stops. SKIFF_METHOD(Name, fn, ...) declares a
 * method; hooks and methods reach the state with skiff_self(ctx) and the parameters with
 * skiff_param*(ctx, name).
 *
 * Declarations are collected by the linker (sections "skiff_functions" and "skiff_classes"), so
 * SKIFF_FUNCTION, SKIFF_CLASS and SKIFF_METHOD may appear anywhere in the app's files, in any
 * order. An app is one .c file or every .c file of a directory (`skiff deploy DIR`), with
 * exactly one SKIFF_APP among them. Libraries: SKIFF_APP("name", .pkgs = "zlib libcurl") names
 * them by their pkg-config names; deploy compiles and links the app with their flags.
 */
#ifndef SKIFF_APP_H
#define SKIFF_APP_H

#include <skiff/skiff.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped when the layout of the structures below changes; the worker refuses other versions.
 * 2: function configuration (kind, web, concurrency, batching, retries, resources) and classes.
 * 3: schedules (period_s, cron). */
#define SKIFF_APP_ABI 3

/* The context of one input being run (or of a class hook): its arguments, identity and a way to
 * fail. Valid only during the call it was passed to. */
typedef struct skiff_ctx skiff_ctx;

typedef int (*skiff_fn)(skiff_ctx *ctx, skiff_value **out);
/* A class's enter or exit hook: 0, or non-zero after skiff_raise (a failing enter hook stops
 * the container from starting: its callers get InitFailureError with the hook's error). */
typedef int (*skiff_hook)(skiff_ctx *ctx);

/* Retry policy of a function or class: a failed input runs again up to max_retries times, the
 * n-th retry after min(initial_delay * backoff_coefficient^(n-1), max_delay) seconds. Fields
 * left 0 take the defaults 1.0 (coefficient, 1 to 10), 1.0 s (delays, 0 to 60 s). */
struct skiff_retries {
    int max_retries;            /* 0 to 10 */
    double backoff_coefficient; /* 1.0 to 10.0; 0: 1.0 */
    double initial_delay;       /* seconds, 0 to 60; 0: 1.0 */
    double max_delay;           /* seconds, 1 to 60; 0: 1.0 */
};

/* A web endpoint: the function answers HTTP requests at a URL instead of being called. */
struct skiff_web {
    const char *method; /* "GET", "POST", ...; NULL: not a web endpoint */
    const char *label;  /* the URL's label; NULL: derived from the app and function names */
    bool requires_auth; /* callers must present a token */
    size_t max_body;    /* largest request body in bytes (413 past it); 0: the server's default
                           (skiffd --http-max-body, 1 MiB unless set); at most 2 GiB */
};

/* The configuration of a function or class (0 everywhere: the defaults; ranges in
 * docs/protocol.md, DEPLOY, checked by `skiff deploy`), as fields of struct skiff_function_def
 * and struct skiff_class_def so that designated initialisers name them directly:
 * SKIFF_FUNCTION(f, .max_inputs = 4, .retries = 3). */
#define SKIFF_CONFIG_FIELDS                                                                        \
    double timeout;                    /* seconds per attempt; 0: 300. 1 s to 24 h */              \
    int min_containers;                /* containers kept warm even when idle; 0 by default */     \
    int max_containers;                /* upper bound on containers at once; 0: 8 */               \
    int buffer_containers;             /* idle containers kept beyond the demand; 0 by default */  \
    double scaledown_window;           /* idle seconds before a container stops; 0: 60 */          \
    int max_inputs;                    /* inputs one container runs at once; 0: 1 (1 to 1000) */   \
    int target_inputs;                 /* the autoscaler's aim per container; 0: max_inputs */     \
    int max_batch_size;                /* a batched function: inputs per call (1-1000); 0: not */  \
    int wait_ms;                       /* how long to gather a batch (0-600000 ms) */              \
    int retries;                       /* shorthand for {retries, 1.0, 1.0, 1.0} */                \
    struct skiff_retries retry_policy; /* the full policy (not together with .retries) */          \
    double cpu;                        /* cores; 0: unlimited */                                   \
    int memory;                        /* MiB; 0: unlimited */                                     \
    const char *secrets;               /* secrets (`skiff secret`) as env vars: "a,b" or NULL */   \
    const char *volumes;               /* volumes mounted read-write: "/data=NAME,..." or NULL */

struct skiff_function_def {
    int abi;               /* SKIFF_APP_ABI, set by SKIFF_FUNCTION / SKIFF_METHOD */
    const char *name;      /* the function's (or method's) name, as callers use it */
    skiff_fn fn;           /* the code */
    const char *signature; /* parameters (see above), or NULL: no binding or checks */
    const char *cls;       /* the class of a method (set by SKIFF_METHOD), NULL for a function */
    bool generator;        /* yields items with skiff_yield (kind "generator") */
    struct skiff_web web;  /* .web = {"POST"}: a web endpoint (kind "web") */
    /* Plain functions only: a method runs with its class's configuration. */
    SKIFF_CONFIG_FIELDS
    /* A schedule (plain functions taking no required argument; not generators or web
     * endpoints): the server calls the function on its own, with no arguments, as a spawned
     * call (docs/app-sdk.md, "Schedules"). At most one of the two. */
    double period_s;  /* every period_s seconds, from the deploy; 0: not; at least 1 */
    const char *cron; /* "m h dom mon dow" in UTC, as crontab(5): "*\/5 * * * *"; NULL: not */
};

/* Enter and exit hooks a class may have, of each kind. */
#define SKIFF_MAX_HOOKS 4

struct skiff_class_def {
    int abi;            /* SKIFF_APP_ABI, set by SKIFF_CLASS */
    const char *name;   /* the class's name */
    size_t state_size;  /* bytes of state per container (set by SKIFF_CLASS) */
    const char *params; /* parameter signature (int, str, bytes, bool), or NULL */
    skiff_hook enter_snap[SKIFF_MAX_HOOKS]; /* enter hooks run before a snapshot: first */
    skiff_hook enter[SKIFF_MAX_HOOKS];      /* the other enter hooks, in order, after them */
    skiff_hook exit[SKIFF_MAX_HOOKS];       /* run in order when the container stops */
    /* The pool configuration all methods share. */
    SKIFF_CONFIG_FIELDS
};

struct skiff_app_def {
    int abi;                                        /* SKIFF_APP_ABI */
    const char *name;                               /* the app's name */
    const struct skiff_function_def *const *begin;  /* the functions and methods of the app ... */
    const struct skiff_function_def *const *end;    /* ... up to (not including) end */
    const struct skiff_class_def *const *cls_begin; /* its classes ... */
    const struct skiff_class_def *const *cls_end;   /* ... up to cls_end (both NULL: none) */
};

/* The symbol the worker looks for in an app's shared object. */
#define SKIFF_APP_SYMBOL "skiff_app_definition"

/* What an app asks of the build (SKIFF_APP's further arguments). `skiff deploy` reads them from
 * the SKIFF_APP line of the source, before compiling, so each must be a string literal there;
 * the compiled object carries them too (skiff_app_options) and deploy checks the two agree. */
struct skiff_app_opts {
    int abi;          /* SKIFF_APP_ABI */
    const char *pkgs; /* pkg-config names of the libraries the app uses, space-separated:
                       * "zlib libcurl"; their --cflags compile it and their --libs link it */
};

/* The (optional) symbol holding an app's struct skiff_app_opts. */
#define SKIFF_APP_OPTIONS_SYMBOL "skiff_app_options"

#define SKIFF_APP(app_name, ...)                                                                   \
    extern const struct skiff_function_def *const __start_skiff_functions[]                        \
        __attribute__((weak, visibility("hidden")));                                               \
    extern const struct skiff_function_def *const __stop_skiff_functions[]                         \
        __attribute__((weak, visibility("hidden")));                                               \
    extern const struct skiff_class_def *const __start_skiff_classes[]                             \
        __attribute__((weak, visibility("hidden")));                                               \
    extern const struct skiff_class_def *const __stop_skiff_classes[]                              \
        __attribute__((weak, visibility("hidden")));                                               \
    SKIFF_API const struct skiff_app_def *skiff_app_definition(void);                              \
    const struct skiff_app_def *skiff_app_definition(void)                                         \
    {                                                                                              \
        static const struct skiff_app_def def = {SKIFF_APP_ABI,           app_name,                \
                                                 __start_skiff_functions, __stop_skiff_functions,  \
                                                 __start_skiff_classes,   __stop_skiff_classes};   \
        return &def;                                                                               \
    }                                                                                              \
    SKIFF_API const struct skiff_app_opts *skiff_app_options(void);                                \
    const struct skiff_app_opts *skiff_app_options(void)                                           \
    {                                                                                              \
        static const struct skiff_app_opts opts = {SKIFF_APP_ABI, __VA_ARGS__};                    \
        return &opts;                                                                              \
    }                                                                                              \
    struct skiff__app_semicolon

/* Declares func (a skiff_fn) as a function of the app, under its own name. Further arguments are
 * designated initialisers of struct skiff_function_def: .signature, .generator, .web, .timeout,
 * .max_inputs, .max_batch_size, .retries, .period_s, .cron, ... */
#define SKIFF_FUNCTION(func, ...)                                                                  \
    static const struct skiff_function_def skiff__def_##func = {                                   \
        .abi = SKIFF_APP_ABI, .name = #func, .fn = func, __VA_ARGS__};                             \
    static const struct skiff_function_def *const skiff__ptr_##func                                \
        __attribute__((used, section("skiff_functions"))) = &skiff__def_##func

/* Declares class cls (callers name it so) whose state is a `state_type` (a complete type, e.g.
 * `struct counter`). Further arguments are designated initialisers of struct skiff_class_def:
 * .params, .enter = {hook, ...}, .enter_snap = {...}, .exit = {...}, .max_inputs, ... */
#define SKIFF_CLASS(klass, state_type, ...)                                                        \
    static const struct skiff_class_def skiff__cls_##klass = {                                     \
        .abi = SKIFF_APP_ABI, .name = #klass, .state_size = sizeof(state_type), __VA_ARGS__};      \
    static const struct skiff_class_def *const skiff__clsptr_##klass                               \
        __attribute__((used, section("skiff_classes"))) = &skiff__cls_##klass

/* Declares func (a skiff_fn) as method `func` of class cls (callers name it "cls.func"). Further
 * arguments: .signature and .generator (a method takes its configuration from its class). */
#define SKIFF_METHOD(klass, func, ...)                                                             \
    static const struct skiff_function_def skiff__def_##klass##_##func = {                         \
        .abi = SKIFF_APP_ABI, .name = #func, .fn = func, .cls = #klass, __VA_ARGS__};              \
    static const struct skiff_function_def *const skiff__ptr_##klass##_##func                      \
        __attribute__((used, section("skiff_functions"))) = &skiff__def_##klass##_##func

/* --- Arguments ------------------------------------------------------------------------------ */

/* The raw arguments of the input: a list and a map (never NULL while the function runs). */
SKIFF_API const skiff_value *skiff_ctx_args(const skiff_ctx *ctx);
SKIFF_API const skiff_value *skiff_ctx_kwargs(const skiff_ctx *ctx);

/* The argument bound to name by the signature (borrowed), or NULL when it is optional and was
 * not given, or when there is no such parameter. */
SKIFF_API const skiff_value *skiff_arg(const skiff_ctx *ctx, const char *name);
/* Typed reads of bound arguments; an absent optional argument reads as 0 / 0.0 / false / NULL. */
SKIFF_API int64_t skiff_arg_int(const skiff_ctx *ctx, const char *name);
SKIFF_API double skiff_arg_double(const skiff_ctx *ctx, const char *name);
SKIFF_API bool skiff_arg_bool(const skiff_ctx *ctx, const char *name);
SKIFF_API const char *skiff_arg_string(const skiff_ctx *ctx, const char *name);

/* --- Identity and environment --------------------------------------------------------------- */

/* The "in-" id of the input being run and the "fc-" id of its function call. */
SKIFF_API const char *skiff_ctx_input_id(const skiff_ctx *ctx);
SKIFF_API const char *skiff_ctx_call_id(const skiff_ctx *ctx);
/* The "ta-" id of the container. */
SKIFF_API const char *skiff_ctx_container_id(const skiff_ctx *ctx);
/* A client connected to the server that runs this container, for calling other functions (its
 * calls are linked to this input in the call graph). Connected on first use and shared by the
 * container; do not close it. NULL (with err filled) if it cannot connect. */
SKIFF_API skiff_client *skiff_ctx_client(skiff_ctx *ctx, skiff_error *err);
/* True once the input has been cancelled: a long-running function should return soon. */
SKIFF_API bool skiff_ctx_cancelled(const skiff_ctx *ctx);

/* --- Generators, batches and classes --------------------------------------------------------- */

/* Sends item (taken, even on failure; NULL means nil) as the generator's next item. 0, or -1
 * when the item cannot be sent (over the payload limit, out of memory, the server is gone): the
 * error is raised in ctx, so `if (skiff_yield(ctx, v) < 0) return -1;` fails the input. Only in
 * a .generator function. */
SKIFF_API int skiff_yield(skiff_ctx *ctx, skiff_value *item);
/* The number of inputs in the batch being run: 1 outside a batched function. In a batched
 * function (.max_batch_size) each bound argument reads as the list of that parameter's values
 * across the batch (skiff_arg; nil where an optional one was omitted), skiff_ctx_args is the
 * list of those columns in parameter order (skiff_ctx_kwargs an empty map), and the function
 * must set *out to a list of exactly this many results, one per input in order. */
SKIFF_API size_t skiff_batch_size(const skiff_ctx *ctx);
/* The class state of the container (state_size bytes, zeroed before the first enter hook), in a
 * class's hooks and methods; NULL elsewhere. */
SKIFF_API void *skiff_self(const skiff_ctx *ctx);
/* The class parameter name as given at instantiation (borrowed), or NULL when it is optional and
 * was not given, or there is no such parameter. Typed reads: absent reads as 0 / false / NULL. */
SKIFF_API const skiff_value *skiff_param(const skiff_ctx *ctx, const char *name);
SKIFF_API int64_t skiff_param_int(const skiff_ctx *ctx, const char *name);
SKIFF_API bool skiff_param_bool(const skiff_ctx *ctx, const char *name);
SKIFF_API const char *skiff_param_string(const skiff_ctx *ctx, const char *name);

/* --- Failing ------------------------------------------------------------------------------- */

/* Records an error of the given type ("ValueError", ...) with a printf-style message, and the
 * place it was raised. Returns -1: `return skiff_raise(ctx, "ValueError", "bad %d", x);` */
#define skiff_raise(ctx, type, ...)                                                                \
    skiff__raise(ctx, __FILE__, __LINE__, __func__, type, __VA_ARGS__)
/* Fails with an error received from a call this function made (err, e.g. from
 * skiff_function_remote), keeping its type, message and remote traceback and adding this place.
 * Returns -1. */
#define skiff_raise_error(ctx, err) skiff__raise_error(ctx, __FILE__, __LINE__, __func__, err)

SKIFF_API int skiff__raise(skiff_ctx *ctx, const char *file, int line, const char *func,
                           const char *type, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
SKIFF_API int skiff__raise_error(skiff_ctx *ctx, const char *file, int line, const char *func,
                                 const skiff_error *err);

#ifdef __cplusplus
}
#endif

#endif /* SKIFF_APP_H */
