/*
 * app.h - the skiff app SDK: how a C file declares an app and its functions.
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
 * function once per input.
 *
 * A function returns 0 and sets *out (NULL *out means nil), or fails by returning
 * skiff_raise(ctx, "ValueError", "fmt", ...), which records the error type, message and the
 * place it was raised (the caller sees them, with a traceback). Returning non-zero without
 * raising reports a generic "Error".
 *
 * Signatures. `.signature` names the parameters, in order, with optional types and defaults
 * marked optional by a trailing '?':  "job_id:str, params:map?". Types: any, nil, bool, int,
 * float (accepts int), str, bytes, list, map. The runtime binds positional and keyword arguments
 * to the names before the function runs and fails the call with a TypeError when there are too
 * many, a required one is missing, an unknown keyword is given or a type does not match; the
 * function then reads arguments by name. Without a signature the function reads the raw
 * skiff_ctx_args / skiff_ctx_kwargs and checks them itself.
 *
 * Declarations are collected by the linker (a "skiff_functions" section), so SKIFF_FUNCTION may
 * appear anywhere in the file, in any order, and a file has exactly one SKIFF_APP.
 */
#ifndef SKIFF_APP_H
#define SKIFF_APP_H

#include <skiff/skiff.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped when the layout of the structures below changes; the worker refuses other versions. */
#define SKIFF_APP_ABI 1

/* The context of one input being run: its arguments, identity and a way to fail. Valid only
 * during the call it was passed to. */
typedef struct skiff_ctx skiff_ctx;

typedef int (*skiff_fn)(skiff_ctx *ctx, skiff_value **out);

struct skiff_function_def {
    int abi;                 /* SKIFF_APP_ABI, set by SKIFF_FUNCTION */
    const char *name;        /* the function's name, as callers use it */
    skiff_fn fn;             /* the code */
    const char *signature;   /* parameters (see above), or NULL: no binding or checks */
    double timeout;          /* seconds per input; 0: 300. Range 1 s to 24 h. */
    int max_containers;      /* upper bound on containers at once; 0: 8 */
    int min_containers;      /* containers kept warm even when idle; 0 by default */
    double scaledown_window; /* idle seconds before a container stops; 0: 60 */
};

struct skiff_app_def {
    int abi;                                       /* SKIFF_APP_ABI */
    const char *name;                              /* the app's name */
    const struct skiff_function_def *const *begin; /* the functions of the app ... */
    const struct skiff_function_def *const *end;   /* ... up to (not including) end */
};

/* The symbol the worker looks for in an app's shared object. */
#define SKIFF_APP_SYMBOL "skiff_app_definition"

#define SKIFF_APP(app_name)                                                                        \
    extern const struct skiff_function_def *const __start_skiff_functions[]                        \
        __attribute__((weak, visibility("hidden")));                                               \
    extern const struct skiff_function_def *const __stop_skiff_functions[]                         \
        __attribute__((weak, visibility("hidden")));                                               \
    SKIFF_API const struct skiff_app_def *skiff_app_definition(void);                              \
    const struct skiff_app_def *skiff_app_definition(void)                                         \
    {                                                                                              \
        static const struct skiff_app_def def = {SKIFF_APP_ABI, app_name, __start_skiff_functions, \
                                                 __stop_skiff_functions};                          \
        return &def;                                                                               \
    }                                                                                              \
    struct skiff__app_semicolon

/* Declares func (a skiff_fn) as a function of the app, under its own name. Further arguments are
 * designated initialisers of struct skiff_function_def: .signature, .timeout, ... */
#define SKIFF_FUNCTION(func, ...)                                                                  \
    static const struct skiff_function_def skiff__def_##func = {                                   \
        .abi = SKIFF_APP_ABI, .name = #func, .fn = func, __VA_ARGS__};                             \
    static const struct skiff_function_def *const skiff__ptr_##func                                \
        __attribute__((used, section("skiff_functions"))) = &skiff__def_##func

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
