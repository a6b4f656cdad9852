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
 * Checks come in two sizes: target.c checks only what running one function or class needs (used
 * by every container start, so it stays cheap), worker_check_app everything deploy needs (names,
 * duplicates, signatures, classes, every configuration range), reporting every problem at once.
 */
#include <dlfcn.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/cron.h"
#include "common/resources.h"
#include "worker.h"

/* Longest app and function names (docs/protocol.md). */
#define NAME_MAX_LEN 63
/* Ranges of docs/protocol.md, DEPLOY. Timeouts (seconds): 1 s to 24 h, as in the reference. */
#define TIMEOUT_MIN 1.0
#define TIMEOUT_MAX 86400.0
/* max_containers when the definition leaves it 0. */
#define DEFAULT_MAX_CONTAINERS 8
/* Inputs per container at once, and per batch. */
#define MAX_INPUTS_MAX 1000
#define BATCH_MAX 1000
#define WAIT_MS_MAX 600000
/* Retries as in the reference model: at most 10, coefficient 1-10, delays up to 60 s. */
#define RETRIES_MAX 10
#define BACKOFF_MAX 10.0
#define DELAY_MAX 60.0
/* Far above any machine, far below overflow: a typo guard. */
#define CPU_MAX 1024.0
#define MEMORY_MAX (16 << 20)
#define BUFFER_CONTAINERS_MAX 1000
/* A schedule's period: at least a second (the timers' grain), at most a year (a typo guard). */
#define PERIOD_MIN 1.0
#define PERIOD_MAX (366.0 * 86400)

/* The options of the app worker_load_app loaded last, or NULL. */
static const struct skiff_app_opts *loaded_options;

int worker_load_app(const char *path, const struct skiff_app_def **out, skiff_error *err)
{
    if (worker_preload_failed(err))
        return SKIFF_ERR_INIT_FAILURE;
    const struct skiff_app_def *pre = worker_preloaded();
    if (pre) {
        worker_register_app(pre);
        *out = pre;
        return SKIFF_OK;
    }
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
    worker_register_app(app);
    /* Optional (older apps lack it): what the app asked of its build. */
    void *opt_sym = dlsym(h, SKIFF_APP_OPTIONS_SYMBOL);
    loaded_options = NULL;
    if (opt_sym) {
        const struct skiff_app_opts *(*get_opts)(void);
        memcpy(&get_opts, &opt_sym, sizeof get_opts);
        const struct skiff_app_opts *o = get_opts();
        loaded_options = o && o->abi == SKIFF_APP_ABI ? o : NULL;
    }
    *out = app;
    return SKIFF_OK;
}

const struct skiff_app_opts *worker_app_options(void)
{
    return loaded_options;
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

/* True for a finite v in [lo, hi]. */
static bool in_range(double v, double lo, double hi)
{
    return v >= lo && v <= hi && !isinf(v);
}

/* Checks the configuration fields of a function or class (what names it in messages). */
static void check_config(struct problems *pr, const char *what, const struct worker_config *c)
{
    if (c->timeout != 0 && !in_range(c->timeout, TIMEOUT_MIN, TIMEOUT_MAX))
        problem(pr,
                "%s: timeout %g s is outside 1 s to 24 h (86400 s); 0 means the default of 300 s",
                what, c->timeout);
    if (c->max_containers < 0)
        problem(pr, "%s: max_containers is %d; it must be 0 (default %d) or more", what,
                c->max_containers, DEFAULT_MAX_CONTAINERS);
    if (c->min_containers < 0)
        problem(pr, "%s: min_containers is %d; it must be 0 or more", what, c->min_containers);
    int max = c->max_containers ? c->max_containers : DEFAULT_MAX_CONTAINERS;
    if (c->min_containers > 0 && max > 0 && c->min_containers > max)
        problem(pr, "%s: min_containers (%d) is larger than max_containers (%d)", what,
                c->min_containers, max);
    if (c->buffer_containers < 0 || c->buffer_containers > BUFFER_CONTAINERS_MAX)
        problem(pr, "%s: buffer_containers is %d; it must be 0 to %d", what, c->buffer_containers,
                BUFFER_CONTAINERS_MAX);
    if (!in_range(c->scaledown_window, 0, TIMEOUT_MAX))
        problem(pr, "%s: scaledown_window %g s must be 0 (default 60 s) to 86400 s", what,
                c->scaledown_window);
    if (c->max_inputs < 0 || c->max_inputs > MAX_INPUTS_MAX)
        problem(pr, "%s: max_inputs is %d; it must be 1 to %d (0: the default, 1)", what,
                c->max_inputs, MAX_INPUTS_MAX);
    int inputs = c->max_inputs > 0 ? c->max_inputs : 1;
    if (c->target_inputs < 0 || c->target_inputs > inputs)
        problem(pr, "%s: target_inputs is %d; it must be 1 to max_inputs (%d), or 0: max_inputs",
                what, c->target_inputs, inputs);
    if (c->max_batch_size < 0 || c->max_batch_size > BATCH_MAX)
        problem(pr, "%s: max_batch_size is %d; it must be 1 to %d (0: not batched)", what,
                c->max_batch_size, BATCH_MAX);
    if (c->wait_ms < 0 || c->wait_ms > WAIT_MS_MAX)
        problem(pr, "%s: wait_ms is %d; it must be 0 to %d", what, c->wait_ms, WAIT_MS_MAX);
    if (c->wait_ms > 0 && c->max_batch_size == 0)
        problem(pr, "%s: wait_ms is set but max_batch_size is not: only batches wait", what);
    const struct skiff_retries *r = &c->retry_policy;
    bool policy = r->max_retries || r->backoff_coefficient || r->initial_delay || r->max_delay;
    if (c->retries && policy)
        problem(pr, "%s: give either .retries or .retry_policy, not both", what);
    if (c->retries < 0 || c->retries > RETRIES_MAX)
        problem(pr, "%s: retries is %d; it must be 0 to %d", what, c->retries, RETRIES_MAX);
    if (r->max_retries < 0 || r->max_retries > RETRIES_MAX)
        problem(pr, "%s: retry_policy.max_retries is %d; it must be 0 to %d", what, r->max_retries,
                RETRIES_MAX);
    if (r->backoff_coefficient != 0 && !in_range(r->backoff_coefficient, 1.0, BACKOFF_MAX))
        problem(pr, "%s: retry_policy.backoff_coefficient %g must be 1.0 to %g", what,
                r->backoff_coefficient, BACKOFF_MAX);
    if (!in_range(r->initial_delay, 0, DELAY_MAX))
        problem(pr, "%s: retry_policy.initial_delay %g s must be 0 to %g s", what, r->initial_delay,
                DELAY_MAX);
    if (r->max_delay != 0 && !in_range(r->max_delay, 1.0, DELAY_MAX))
        problem(pr, "%s: retry_policy.max_delay %g s must be 1 to %g s", what, r->max_delay,
                DELAY_MAX);
    if (!in_range(c->cpu, 0, CPU_MAX))
        problem(pr, "%s: cpu %g must be 0 (unlimited) to %g cores", what, c->cpu, CPU_MAX);
    if (c->memory < 0 || c->memory > MEMORY_MAX)
        problem(pr, "%s: memory %d MiB must be 0 (unlimited) to %d MiB", what, c->memory,
                MEMORY_MAX);
    char why[400], names[RES_MAX_SECRETS][RES_NAME_MAX + 1];
    struct res_volume vols[RES_MAX_VOLUMES];
    if (res_parse_secrets(c->secrets, names, RES_MAX_SECRETS, why, sizeof why) < 0)
        problem(pr, "%s: .secrets: %s", what, why);
    if (res_parse_volumes(c->volumes, vols, RES_MAX_VOLUMES, why, sizeof why) < 0)
        problem(pr, "%s: .volumes: %s", what, why);
}

static bool config_is_zero(const struct worker_config *c)
{
    static const struct worker_config zero;
    return !memcmp(c, &zero, sizeof zero);
}

/* "ANY": a raw endpoint (docs/http-api.md, "Raw endpoints": a WSGI app in Python). */
static const char *const web_methods[] = {"GET",    "POST", "PUT",     "PATCH",
                                          "DELETE", "HEAD", "OPTIONS", "ANY"};

static void check_web(struct problems *pr, const struct skiff_function_def *d)
{
    bool known = false;
    for (size_t i = 0; i < sizeof web_methods / sizeof web_methods[0]; i++)
        known |= !strcmp(d->web.method, web_methods[i]);
    if (!known)
        problem(pr,
                "function '%s': web method '%s' is not one of GET, POST, PUT, PATCH, DELETE, "
                "HEAD, OPTIONS, ANY",
                d->name, d->web.method);
    if (d->web.label && !valid_name(d->web.label, "-"))
        problem(pr,
                "function '%s': web label '%s' is not 1-63 characters of letters, digits "
                "and '-'",
                d->name, d->web.label);
    if (d->generator)
        problem(pr, "function '%s' cannot be both a generator and a web endpoint", d->name);
    if (d->web.max_body > (size_t)1 << 31)
        problem(pr, "function '%s': web max_body %zu is over 2 GiB", d->name, d->web.max_body);
}

/* A schedule runs the function with no arguments: every parameter must be optional. */
static void check_schedule(struct problems *pr, const struct skiff_function_def *d)
{
    const char *name = d->name;
    if (d->period_s != 0 && !in_range(d->period_s, PERIOD_MIN, PERIOD_MAX))
        problem(pr, "function '%s': period_s %g must be 1 s to a year (31622400 s); 0: none", name,
                d->period_s);
    if (d->cron) {
        struct cron c;
        char why[256];
        if (cron_parse(d->cron, &c, why, sizeof why) < 0)
            problem(pr, "function '%s': cron \"%s\": %s", name, d->cron, why);
        else if (cron_next(&c, (int64_t)time(NULL)) < 0)
            problem(pr, "function '%s': cron \"%s\" never matches a date", name, d->cron);
    }
    if (d->period_s != 0 && d->cron)
        problem(pr, "function '%s': give either .period_s or .cron, not both", name);
    if (d->generator)
        problem(pr, "function '%s': a generator cannot run on a schedule (nobody reads its items)",
                name);
    if (d->web.method)
        problem(pr, "function '%s': a web endpoint cannot run on a schedule", name);
    if (!d->signature)
        return;
    struct signature sig;
    skiff_error err = SKIFF_ERROR_INIT;
    if (signature_parse(&sig, d->signature, &err) == SKIFF_OK)
        for (size_t i = 0; i < sig.n; i++)
            if (!sig.params[i].optional) {
                problem(pr,
                        "function '%s' runs on a schedule, with no arguments, but its parameter "
                        "'%s' is required (mark it optional: '%s?')",
                        name, sig.params[i].name, sig.params[i].name);
                break;
            }
    signature_deinit(&sig);
    skiff_error_clear(&err);
}

static const struct skiff_class_def *find_cls(const struct skiff_app_def *app, const char *name)
{
    for (const struct skiff_class_def *const *p = app->cls_begin;
         app->cls_begin && p < app->cls_end; p++)
        if (*p && (*p)->abi == SKIFF_APP_ABI && (*p)->name && !strcmp((*p)->name, name))
            return *p;
    return NULL;
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
    const char *kind = d->cls ? "method" : "function";
    if (!valid_name(d->name, "_"))
        problem(pr, "%s name '%s' is not 1-63 characters of letters, digits and '_'", kind,
                d->name);
    for (const struct skiff_function_def *const *q = app->begin; q < p; q++)
        if (*q && (*q)->abi == SKIFF_APP_ABI && (*q)->name && !strcmp((*q)->name, d->name) &&
            !(*q)->cls == !d->cls && (!d->cls || !strcmp((*q)->cls, d->cls))) {
            if (d->cls)
                problem(pr, "method '%s.%s' is declared twice", d->cls, d->name);
            else
                problem(pr, "function '%s' is declared twice", d->name);
            break;
        }
    if (!d->fn)
        problem(pr, "%s '%s' has no code", kind, d->name);
    if (d->signature) {
        struct signature sig;
        skiff_error err = SKIFF_ERROR_INIT;
        if (signature_parse(&sig, d->signature, &err) != SKIFF_OK)
            problem(pr, "%s '%s': %s", kind, d->name, err.message ? err.message : "bad signature");
        signature_deinit(&sig);
        skiff_error_clear(&err);
    }
    if (d->web.method)
        check_web(pr, d);
    struct worker_config c;
    worker_config_of_function(d, &c);
    if (d->cls) {
        if (!find_cls(app, d->cls))
            problem(pr, "method '%s.%s': the app declares no class '%s' (SKIFF_CLASS)", d->cls,
                    d->name, d->cls);
        if (!config_is_zero(&c))
            problem(pr,
                    "method '%s.%s' sets configuration; a method runs with its class's (set "
                    "it in SKIFF_CLASS)",
                    d->cls, d->name);
        if (d->period_s != 0 || d->cron)
            problem(pr, "method '%s.%s' has a schedule; schedules are for plain functions", d->cls,
                    d->name);
        return;
    }
    char what[96];
    snprintf(what, sizeof what, "function '%s'", d->name);
    check_config(pr, what, &c);
    if (c.max_batch_size > 0 && d->generator)
        problem(pr, "function '%s' cannot be both batched and a generator", d->name);
    if (c.max_batch_size > 0 && !d->signature)
        problem(pr, "batched function '%s' needs a .signature: its parameters read as lists",
                d->name);
    if (d->period_s != 0 || d->cron)
        check_schedule(pr, d);
}

/* A class's parameters: a signature of int, str, bytes and bool only. */
static void check_params(struct problems *pr, const struct skiff_class_def *c)
{
    struct signature sig;
    skiff_error err = SKIFF_ERROR_INIT;
    if (signature_parse(&sig, c->params, &err) != SKIFF_OK) {
        problem(pr, "class '%s': parameters: %s", c->name, err.message ? err.message : "bad");
        skiff_error_clear(&err);
        return;
    }
    for (size_t i = 0; i < sig.n; i++) {
        enum sig_type t = sig.params[i].type;
        if (t != SIG_INT && t != SIG_STR && t != SIG_BYTES && t != SIG_BOOL)
            problem(pr, "class '%s': parameter '%s' is %s; parameters are int, str, bytes or bool",
                    c->name, sig.params[i].name, signature_type_name(t));
    }
    signature_deinit(&sig);
}

static void check_class(struct problems *pr, const struct skiff_app_def *app,
                        const struct skiff_class_def *const *p)
{
    const struct skiff_class_def *c = *p;
    if (!c || c->abi != SKIFF_APP_ABI || !c->name) {
        problem(pr, "class #%td is malformed (NULL, no name, or built for app ABI %d, not %d)",
                p - app->cls_begin + 1, c ? c->abi : 0, SKIFF_APP_ABI);
        return;
    }
    if (!valid_name(c->name, "_"))
        problem(pr, "class name '%s' is not 1-63 characters of letters, digits and '_'", c->name);
    for (const struct skiff_class_def *const *q = app->cls_begin; q < p; q++)
        if (*q && (*q)->abi == SKIFF_APP_ABI && (*q)->name && !strcmp((*q)->name, c->name)) {
            problem(pr, "class '%s' is declared twice", c->name);
            break;
        }
    if (c->params)
        check_params(pr, c);
    bool methods = false;
    for (const struct skiff_function_def *const *f = app->begin; app->begin && f < app->end; f++)
        methods |= *f && (*f)->abi == SKIFF_APP_ABI && (*f)->cls && !strcmp((*f)->cls, c->name);
    if (!methods)
        problem(pr, "class '%s' has no methods (SKIFF_METHOD)", c->name);
    struct worker_config cfg;
    worker_config_of_class(c, &cfg);
    char what[96];
    snprintf(what, sizeof what, "class '%s'", c->name);
    check_config(pr, what, &cfg);
    if (cfg.max_batch_size)
        problem(pr, "class '%s': max_batch_size is for plain functions; methods are not batched",
                c->name);
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
    if (app->cls_begin && app->cls_end > app->cls_begin)
        for (const struct skiff_class_def *const *p = app->cls_begin; p < app->cls_end; p++)
            check_class(&pr, app, p);
    return pr.n;
}

/* The configuration fields of struct skiff_function_def and skiff_class_def have the same names:
 * copy them into one struct. */
#define COPY_CONFIG(out, d)                                                                        \
    do {                                                                                           \
        (out)->timeout = (d)->timeout;                                                             \
        (out)->min_containers = (d)->min_containers;                                               \
        (out)->max_containers = (d)->max_containers;                                               \
        (out)->buffer_containers = (d)->buffer_containers;                                         \
        (out)->scaledown_window = (d)->scaledown_window;                                           \
        (out)->max_inputs = (d)->max_inputs;                                                       \
        (out)->target_inputs = (d)->target_inputs;                                                 \
        (out)->max_batch_size = (d)->max_batch_size;                                               \
        (out)->wait_ms = (d)->wait_ms;                                                             \
        (out)->retries = (d)->retries;                                                             \
        (out)->retry_policy = (d)->retry_policy;                                                   \
        (out)->cpu = (d)->cpu;                                                                     \
        (out)->memory = (d)->memory;                                                               \
        (out)->secrets = (d)->secrets;                                                             \
        (out)->volumes = (d)->volumes;                                                             \
    } while (0)

void worker_config_of_function(const struct skiff_function_def *d, struct worker_config *out)
{
    memset(out, 0, sizeof *out);
    COPY_CONFIG(out, d);
}

void worker_config_of_class(const struct skiff_class_def *c, struct worker_config *out)
{
    memset(out, 0, sizeof *out);
    COPY_CONFIG(out, c);
}
