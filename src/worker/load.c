/*
 * load.c - loading an app's shared object and checking its declarations (see worker.h).
 *
 * An app is a shared object built from a C file with one SKIFF_APP and any number of
 * SKIFF_FUNCTIONs; it exports skiff_app_definition(), which returns the app's name and the array
 * of its function definitions (collected by the linker from the "skiff_functions" section). The
 * object is opened with RTLD_NOW, so a missing symbol is reported at load time rather than in the
 * middle of an input, and RTLD_LOCAL, so two apps' symbols never mix. Its dependency on
 * libskiff.so resolves to the copy the worker already runs from.
 *
 * Checks come in two sizes: worker_prepare_function checks only what running one function needs
 * (used by every container start, so it stays cheap), worker_check_app everything deploy needs
 * (names, duplicates, signatures, limits), reporting every problem at once.
 */
#include <dlfcn.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/signature.h"
#include "worker.h"

/* Longest app and function names (docs/protocol.md). */
#define NAME_MAX_LEN 63
/* Function timeouts, when set (seconds): 1 s to 24 h, as in the reference model. */
#define TIMEOUT_MIN 1.0
#define TIMEOUT_MAX 86400.0
/* max_containers when the definition leaves it 0 (docs/protocol.md, DEPLOY). */
#define DEFAULT_MAX_CONTAINERS 8

int worker_load_app(const char *path, const struct skiff_app_def **out, skiff_error *err)
{
    /* dlopen searches the library path for a name without '/': make a relative path explicit. */
    char local[PATH_MAX];
    const char *open_path = path;
    if (!strchr(path, '/')) {
        snprintf(local, sizeof local, "./%s", path);
        open_path = local;
    }
    void *h = dlopen(open_path, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL, "cannot load the app's code: %s",
                               dlerror());
    dlerror();
    void *sym = dlsym(h, SKIFF_APP_SYMBOL);
    if (!sym)
        return skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL,
                               "%s is not a skiff app: it does not define %s() (SKIFF_APP)", path,
                               SKIFF_APP_SYMBOL);
    const struct skiff_app_def *(*get)(void);
    memcpy(&get, &sym, sizeof get); /* POSIX: object pointer to function pointer */
    const struct skiff_app_def *app = get();
    if (!app)
        return skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL,
                               "%s is not a skiff app: %s() returned no definition", path,
                               SKIFF_APP_SYMBOL);
    if (app->abi != SKIFF_APP_ABI)
        return skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL,
                               "%s was built for app ABI %d, but this skiff-worker runs ABI %d: "
                               "build it again (skiff deploy) against this skiff's headers",
                               path, app->abi, SKIFF_APP_ABI);
    *out = app;
    return SKIFF_OK;
}

const struct skiff_function_def *worker_find_function(const struct skiff_app_def *app,
                                                      const char *name)
{
    if (!app->begin)
        return NULL;
    for (const struct skiff_function_def *const *p = app->begin; p < app->end; p++)
        if (*p && (*p)->name && !strcmp((*p)->name, name))
            return *p;
    return NULL;
}

int worker_prepare_function(const struct skiff_function_def *def, struct signature *sig,
                            bool *has_sig, skiff_error *err)
{
    memset(sig, 0, sizeof *sig);
    *has_sig = false;
    if (def->abi != SKIFF_APP_ABI)
        return skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL,
                               "function '%s' was built for app ABI %d, but this skiff-worker "
                               "runs ABI %d",
                               def->name, def->abi, SKIFF_APP_ABI);
    if (!def->fn)
        return skiff_error_set(err, SKIFF_ERR_INIT_FAILURE, NULL, "function '%s' has no code",
                               def->name);
    if (!def->signature)
        return SKIFF_OK;
    skiff_error perr = SKIFF_ERROR_INIT;
    int rc = signature_parse(sig, def->signature, &perr);
    if (rc != SKIFF_OK) {
        skiff_error_set(err, rc == SKIFF_ERR_NOMEM ? SKIFF_ERR_NOMEM : SKIFF_ERR_INIT_FAILURE, NULL,
                        "function '%s': %s", def->name,
                        perr.message ? perr.message : "bad signature");
        skiff_error_clear(&perr);
        return err ? (int)err->code : rc;
    }
    *has_sig = true;
    return SKIFF_OK;
}

/* --- deploy checks ---------------------------------------------------------------------------- */

struct problems {
    struct buf *out;
    size_t n;
};

__attribute__((format(printf, 2, 3))) static void problem(struct problems *pr, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (len < 0)
        return;
    if ((size_t)len > sizeof line - 2)
        len = (int)sizeof line - 2;
    line[len++] = '\n';
    buf_append(pr->out, line, (size_t)len);
    pr->n++;
}

/* True when name is 1-63 characters of letters, digits and the characters in extra. */
static bool valid_name(const char *name, const char *extra)
{
    size_t n = strlen(name);
    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr(extra, c)))
            return false;
    }
    return true;
}

static void check_limits(struct problems *pr, const struct skiff_function_def *d)
{
    if (d->timeout != 0 && !(d->timeout >= TIMEOUT_MIN && d->timeout <= TIMEOUT_MAX))
        problem(pr,
                "function '%s': timeout %g s is outside 1 s to 24 h (86400 s); 0 means the "
                "default of 300 s",
                d->name, d->timeout);
    if (d->max_containers < 0)
        problem(pr, "function '%s': max_containers is %d; it must be 0 (default %d) or more",
                d->name, d->max_containers, DEFAULT_MAX_CONTAINERS);
    if (d->min_containers < 0)
        problem(pr, "function '%s': min_containers is %d; it must be 0 or more", d->name,
                d->min_containers);
    int max = d->max_containers ? d->max_containers : DEFAULT_MAX_CONTAINERS;
    if (d->min_containers > 0 && max > 0 && d->min_containers > max)
        problem(pr, "function '%s': min_containers (%d) is larger than max_containers (%d)",
                d->name, d->min_containers, max);
    if (!(d->scaledown_window >= 0) || isinf(d->scaledown_window))
        problem(pr, "function '%s': scaledown_window %g s must be a finite number of seconds >= 0",
                d->name, d->scaledown_window);
}

static void check_function(struct problems *pr, const struct skiff_app_def *app,
                           const struct skiff_function_def *const *p)
{
    const struct skiff_function_def *d = *p;
    if (!d) {
        problem(pr, "function #%td: the definition is NULL", p - app->begin + 1);
        return;
    }
    if (d->abi != SKIFF_APP_ABI) {
        /* The rest of the structure cannot be trusted. */
        problem(pr, "function #%td was built for app ABI %d, but this skiff-worker runs ABI %d",
                p - app->begin + 1, d->abi, SKIFF_APP_ABI);
        return;
    }
    if (!d->name) {
        problem(pr, "function #%td has no name", p - app->begin + 1);
        return;
    }
    if (!valid_name(d->name, "_."))
        problem(pr, "function name '%s' is not 1-63 characters of letters, digits, '_' and '.'",
                d->name);
    for (const struct skiff_function_def *const *q = app->begin; q < p; q++)
        if (*q && (*q)->abi == SKIFF_APP_ABI && (*q)->name && !strcmp((*q)->name, d->name)) {
            problem(pr, "function '%s' is declared twice", d->name);
            break;
        }
    if (!d->fn)
        problem(pr, "function '%s' has no code", d->name);
    if (d->signature) {
        struct signature sig;
        skiff_error err = SKIFF_ERROR_INIT;
        if (signature_parse(&sig, d->signature, &err) != SKIFF_OK)
            problem(pr, "function '%s': %s", d->name, err.message ? err.message : "bad signature");
        signature_deinit(&sig);
        skiff_error_clear(&err);
    }
    check_limits(pr, d);
}

size_t worker_check_app(const struct skiff_app_def *app, struct buf *problems)
{
    struct problems pr = {problems, 0};
    if (!app->name)
        problem(&pr, "the app has no name (SKIFF_APP(\"name\"))");
    else if (!valid_name(app->name, "._-"))
        problem(&pr, "app name '%s' is not 1-63 characters of letters, digits, '.', '_' and '-'",
                app->name);
    if (!app->begin || app->begin == app->end)
        problem(&pr, "the app declares no functions (SKIFF_FUNCTION)");
    else if (app->end < app->begin)
        problem(&pr, "the app's function table is malformed (end before begin)");
    else
        for (const struct skiff_function_def *const *p = app->begin; p < app->end; p++)
            check_function(&pr, app, p);
    return pr.n;
}
