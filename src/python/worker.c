/*
 * worker.c - Python apps in containers: skiff._skiff.worker_main builds a C app definition whose
 * functions are trampolines into Python and runs the C container runtime on it (src/worker,
 * python.c explains how a container of a Python app gets here).
 *
 * skiff._container passes the app as a spec (built by skiff/_container.py from the App):
 *   (app_name, functions, classes, format_exc)
 *   functions: (name, cls or None, signature or None, generator, web or None, config, invoke)
 *   classes:   (name, params or None, snap, config, enter, exit)
 * with web = (method, label or None, requires_auth) and config a dict of the SKIFF_CONFIG_FIELDS
 * names (retries an int or a (max_retries, backoff, initial_delay, max_delay) tuple). Each
 * function becomes a struct skiff_function_def whose code is `trampoline`: it takes the GIL,
 * converts the input's raw arguments (or a batch's columns), calls invoke(self, args, kwargs)
 * and converts the result back (a generator's items one by one through skiff_yield, with the
 * GIL released while an item is sent). The runtime binds arguments to the signature first, so
 * a call with wrong arguments fails in C exactly as for a C app. A class's state is one PyObject
 * pointer, the instance: its enter hooks (enter(instance or None, params, phase) -> instance)
 * make and enter it, the exit hook calls exit(instance). A Python exception becomes the input's
 * failure with format_exc(exc) -> (type, message, file, line, function, traceback): the type as
 * the caller re-raises it (a builtin's name or "module.Qualname"), and Python's own frames.
 *
 * The runtime (skiff__worker_main) runs with the GIL released; its pool threads take it in the
 * trampolines. Everything made here lives until the process ends.
 */
#include <pthread.h>
#include <time.h>

#include "pyskiff.h"
#include "worker/worker.h"

SKIFF_API int skiff__worker_main(int argc, char **argv);
SKIFF_API void skiff__set_parent_input(const char *input_id);

static struct skiff_function_def *fdefs;
static const struct skiff_function_def **fptrs;
static PyObject **invokers; /* per function */
static size_t nfns;
static struct skiff_class_def *cdefs;
static const struct skiff_class_def **cptrs;
static PyObject **enters, **exits; /* per class */
static size_t ncls;
static PyObject *format_exc;
static struct skiff_app_def app_def;

/* --- failures -------------------------------------------------------------------------------- */

/* Records the pending Python exception as ctx's failure (code: SKIFF_ERR_USER, or another code
 * such as SKIFF_ERR_SERIALIZATION for a result that cannot be sent). GIL held. Returns -1. */
static int fail_from_python(skiff_ctx *ctx, skiff_code code)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb && value)
        PyException_SetTraceback(value, tb);
    PyObject *info = value ? PyObject_CallOneArg(format_exc, value) : NULL;
    const char *etype = NULL, *msg = NULL, *file = NULL, *func = NULL, *rest = NULL;
    int line = 0;
    if (!info || !PyArg_ParseTuple(info, "sszizz", &etype, &msg, &file, &line, &func, &rest)) {
        PyErr_Clear();
        skiff__raise(ctx, NULL, 0, NULL, "RemoteError", "a Python exception that cannot be shown");
    } else {
        skiff_error err = {code, (char *)etype, (char *)msg, (char *)rest};
        if (code != SKIFF_ERR_USER)
            err.type = (char *)skiff_code_name(code);
        skiff__raise_error(ctx, file, line, func, &err);
    }
    Py_XDECREF(info);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return -1;
}

/* --- the trampolines ------------------------------------------------------------------------- */

/* The class instance of ctx (borrowed), or Py_None outside a class. */
static PyObject *instance_of(skiff_ctx *ctx)
{
    PyObject **state = skiff_self(ctx);
    return state && *state ? *state : Py_None;
}

/* Sends every item of iterator it through skiff_yield. 0, or -1 with ctx's failure recorded. */
static int yield_all(skiff_ctx *ctx, PyObject *it)
{
    PyObject *item;
    while ((item = PyIter_Next(it))) {
        skiff_value *v = pyskiff_to_value(item);
        Py_DECREF(item);
        if (!v)
            return fail_from_python(ctx, SKIFF_ERR_SERIALIZATION);
        int rc;
        Py_BEGIN_ALLOW_THREADS rc = skiff_yield(ctx, v);
        Py_END_ALLOW_THREADS if (rc < 0) return -1;
    }
    return PyErr_Occurred() ? fail_from_python(ctx, SKIFF_ERR_USER) : 0;
}

/* The input the calling thread runs in a trampoline ("in-..."), or NULL. */
static _Thread_local const char *current_input;

PyObject *pyskiff_current_input(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    if (!current_input)
        Py_RETURN_NONE;
    return PyUnicode_FromString(current_input);
}

PyObject *pyskiff_set_parent(PyObject *self, PyObject *args)
{
    (void)self;
    static _Thread_local char id[64];
    const char *s = NULL;
    if (!PyArg_ParseTuple(args, "z", &s))
        return NULL;
    if (s)
        snprintf(id, sizeof id, "%s", s);
    skiff__set_parent_input(s ? id : NULL);
    Py_RETURN_NONE;
}

/* --- cancellation -----------------------------------------------------------------------------
 * A cancelled input's body is interrupted as in the reference: skiff.exception.InputCancellation
 * (a BaseException, so `except Exception` does not swallow it) is raised in the thread running
 * it, at its next Python instruction (a blocking sleep or read ends first; an async body's task
 * is cancelled by skiff._container). A watcher thread asks the runtime every CANCEL_POLL_MS
 * whether a running input was cancelled (skiff_ctx_cancelled, which also reads the control
 * messages of a one-input container) and then injects the exception with the GIL held. Lock
 * order: the GIL, then running_mu; the watcher polls with running_mu alone. */

/* How often running inputs are checked for cancellation: well under a human's patience, and a
 * negligible cost for a thread that sleeps in between. */
#define CANCEL_POLL_MS 20

struct running {
    skiff_ctx *ctx;     /* valid while listed */
    unsigned long tid;  /* the Python thread id running it */
    bool due, injected; /* cancelled (seen by the watcher); exception set in the thread */
    struct running *next;
};

static pthread_mutex_t running_mu = PTHREAD_MUTEX_INITIALIZER;
static struct running *running_list;
static bool watcher_started;
static PyObject *cancel_exc; /* skiff.exception.InputCancellation */

static void *watcher(void *unused)
{
    (void)unused;
    for (;;) {
        struct timespec ts = {0, CANCEL_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
        bool any = false;
        pthread_mutex_lock(&running_mu);
        for (struct running *r = running_list; r; r = r->next)
            if (!r->injected && !r->due && skiff_ctx_cancelled(r->ctx))
                any = r->due = true;
        pthread_mutex_unlock(&running_mu);
        if (!any)
            continue;
        PyGILState_STATE g = PyGILState_Ensure();
        pthread_mutex_lock(&running_mu);
        for (struct running *r = running_list; r; r = r->next)
            if (r->due && !r->injected) {
                PyThreadState_SetAsyncExc(r->tid, cancel_exc);
                r->injected = true;
            }
        pthread_mutex_unlock(&running_mu);
        PyGILState_Release(g);
    }
    return NULL;
}

/* Lists r (the caller's storage) as running ctx on this thread. GIL held. */
static void running_add(struct running *r, skiff_ctx *ctx)
{
    *r = (struct running){.ctx = ctx, .tid = PyThread_get_thread_ident()};
    pthread_mutex_lock(&running_mu);
    if (!watcher_started && cancel_exc) {
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        watcher_started = pthread_create(&t, &a, watcher, NULL) == 0;
        pthread_attr_destroy(&a);
    }
    r->next = running_list;
    running_list = r;
    pthread_mutex_unlock(&running_mu);
}

/* Unlists r; an exception injected and not raised yet is withdrawn. GIL held. */
static void running_remove(struct running *r)
{
    pthread_mutex_lock(&running_mu);
    for (struct running **p = &running_list; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            break;
        }
    pthread_mutex_unlock(&running_mu);
    if (r->injected)
        PyThreadState_SetAsyncExc(r->tid, NULL);
}

static int trampoline(skiff_ctx *ctx, skiff_value **out)
{
    size_t i = (size_t)(ctx->def - fdefs);
    PyGILState_STATE g = PyGILState_Ensure();
    struct running me;
    running_add(&me, ctx);
    current_input = ctx->input_id;
    int rc = 0;
    PyObject *args = pyskiff_from_value(skiff_ctx_args(ctx));
    PyObject *kwargs = args ? pyskiff_from_value(skiff_ctx_kwargs(ctx)) : NULL;
    PyObject *r =
        kwargs ? PyObject_CallFunctionObjArgs(invokers[i], instance_of(ctx), args, kwargs, NULL)
               : NULL;
    if (!r) {
        rc = fail_from_python(ctx, SKIFF_ERR_USER);
    } else if (ctx->def->generator) {
        PyObject *it = PyObject_GetIter(r);
        rc = it ? yield_all(ctx, it) : fail_from_python(ctx, SKIFF_ERR_USER);
        Py_XDECREF(it);
    } else {
        *out = pyskiff_to_value(r);
        if (!*out)
            rc = fail_from_python(ctx, SKIFF_ERR_SERIALIZATION);
    }
    Py_XDECREF(r);
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    current_input = NULL;
    running_remove(&me);
    PyGILState_Release(g);
    return rc;
}

/* The enter hooks: phase "snap" (before a snapshot) or "enter". The instance is made by the
 * first hook that runs. */
static int enter_phase(skiff_ctx *ctx, const char *phase)
{
    size_t i = (size_t)(ctx->target->cls - cdefs);
    PyObject **state = skiff_self(ctx);
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = 0;
    PyObject *params = ctx->target->params ? pyskiff_from_value(ctx->target->params) : PyDict_New();
    PyObject *inst =
        params ? PyObject_CallFunction(enters[i], "OOs", *state ? *state : Py_None, params, phase)
               : NULL;
    if (!inst) {
        rc = fail_from_python(ctx, SKIFF_ERR_USER);
    } else {
        Py_XSETREF(*state, inst);
    }
    Py_XDECREF(params);
    PyGILState_Release(g);
    return rc;
}

static int hook_snap(skiff_ctx *ctx)
{
    return enter_phase(ctx, "snap");
}

static int hook_enter(skiff_ctx *ctx)
{
    return enter_phase(ctx, "enter");
}

static int hook_exit(skiff_ctx *ctx)
{
    size_t i = (size_t)(ctx->target->cls - cdefs);
    PyObject **state = skiff_self(ctx);
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = 0;
    PyObject *r = PyObject_CallOneArg(exits[i], *state ? *state : Py_None);
    if (!r)
        rc = fail_from_python(ctx, SKIFF_ERR_USER);
    Py_XDECREF(r);
    PyGILState_Release(g);
    return rc;
}

/* --- forks of a snapshot template ------------------------------------------------------------
 * The template forks from the runtime's thread with the GIL released; these make the fork safe
 * for the interpreter as os.fork() does: hold the GIL (and Python's fork locks) across it, then
 * reinitialise the child's interpreter (only the forking thread survives). */

static PyGILState_STATE fork_gil;

static void fork_before(void)
{
    fork_gil = PyGILState_Ensure();
    PyOS_BeforeFork();
}

static void fork_child(void)
{
    /* Only this thread survives: no watcher, no input running yet. */
    pthread_mutex_init(&running_mu, NULL);
    running_list = NULL;
    watcher_started = false;
    PyOS_AfterFork_Child();
    PyGILState_Release(fork_gil);
}

static void fork_parent(void)
{
    PyOS_AfterFork_Parent();
    PyGILState_Release(fork_gil);
}

/* --- the spec -------------------------------------------------------------------------------- */

/* A copy of the str o that lives forever, or NULL for None; NULL with an exception on error. */
static const char *keep_str(PyObject *o, int *ok)
{
    if (o == Py_None)
        return NULL;
    const char *s = PyUnicode_AsUTF8(o);
    char *copy = s ? strdup(s) : NULL;
    if (!copy) {
        if (s)
            PyErr_NoMemory();
        *ok = 0;
    }
    return copy;
}

/* A string setting (a copy), or NULL when absent. */
static const char *cfg_str(PyObject *cfg, const char *key, int *ok)
{
    PyObject *v = PyDict_GetItemString(cfg, key);
    return v && v != Py_None ? keep_str(v, ok) : NULL;
}

static double cfg_double(PyObject *cfg, const char *key, int *ok)
{
    PyObject *v = PyDict_GetItemString(cfg, key);
    if (!v || v == Py_None)
        return 0;
    double d = PyFloat_AsDouble(v);
    if (d == -1 && PyErr_Occurred())
        *ok = 0;
    return d;
}

static int cfg_int(PyObject *cfg, const char *key, int *ok)
{
    PyObject *v = PyDict_GetItemString(cfg, key);
    if (!v || v == Py_None)
        return 0;
    long l = PyLong_AsLong(v);
    if (l == -1 && PyErr_Occurred())
        *ok = 0;
    return (int)l;
}

/* Fills the SKIFF_CONFIG_FIELDS of a function or class definition from the dict cfg. */
#define FILL_CONFIG(d, cfg, ok)                                                                    \
    do {                                                                                           \
        (d)->timeout = cfg_double(cfg, "timeout", ok);                                             \
        (d)->min_containers = cfg_int(cfg, "min_containers", ok);                                  \
        (d)->max_containers = cfg_int(cfg, "max_containers", ok);                                  \
        (d)->buffer_containers = cfg_int(cfg, "buffer_containers", ok);                            \
        (d)->scaledown_window = cfg_double(cfg, "scaledown_window", ok);                           \
        (d)->max_inputs = cfg_int(cfg, "max_inputs", ok);                                          \
        (d)->target_inputs = cfg_int(cfg, "target_inputs", ok);                                    \
        (d)->max_batch_size = cfg_int(cfg, "max_batch_size", ok);                                  \
        (d)->wait_ms = cfg_int(cfg, "wait_ms", ok);                                                \
        (d)->cpu = cfg_double(cfg, "cpu", ok);                                                     \
        (d)->memory = cfg_int(cfg, "memory", ok);                                                  \
        (d)->secrets = cfg_str(cfg, "secrets", ok);                                                \
        (d)->volumes = cfg_str(cfg, "volumes", ok);                                                \
        PyObject *r_ = PyDict_GetItemString(cfg, "retries");                                       \
        if (r_ && PyLong_Check(r_))                                                                \
            (d)->retries = (int)PyLong_AsLong(r_);                                                 \
        else if (r_ && PyTuple_Check(r_) &&                                                        \
                 !PyArg_ParseTuple(r_, "iddd", &(d)->retry_policy.max_retries,                     \
                                   &(d)->retry_policy.backoff_coefficient,                         \
                                   &(d)->retry_policy.initial_delay,                               \
                                   &(d)->retry_policy.max_delay))                                  \
            *(ok) = 0;                                                                             \
    } while (0)

static int build_functions(PyObject *fns)
{
    nfns = (size_t)PyList_GET_SIZE(fns);
    fdefs = calloc(nfns ? nfns : 1, sizeof *fdefs);
    fptrs = calloc(nfns ? nfns : 1, sizeof *fptrs);
    invokers = calloc(nfns ? nfns : 1, sizeof *invokers);
    if (!fdefs || !fptrs || !invokers) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < nfns; i++) {
        PyObject *name, *cls, *sig, *web, *cfg, *inv;
        int gen, ok = 1;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(fns, (Py_ssize_t)i), "OOOpOO!O", &name, &cls, &sig,
                              &gen, &web, &PyDict_Type, &cfg, &inv))
            return -1;
        struct skiff_function_def *d = &fdefs[i];
        d->abi = SKIFF_APP_ABI;
        d->fn = trampoline;
        d->name = keep_str(name, &ok);
        d->cls = keep_str(cls, &ok);
        d->signature = keep_str(sig, &ok);
        d->generator = gen;
        if (web != Py_None) {
            PyObject *method, *label;
            int auth;
            if (!PyArg_ParseTuple(web, "OOp", &method, &label, &auth))
                return -1;
            d->web.method = keep_str(method, &ok);
            d->web.label = keep_str(label, &ok);
            d->web.requires_auth = auth;
        }
        if (cls == Py_None) {
            FILL_CONFIG(d, cfg, &ok);
            /* schedule=skiff.Period(...) / skiff.Cron(...) (skiff/app.py) */
            d->period_s = cfg_double(cfg, "period_s", &ok);
            PyObject *cron = PyDict_GetItemString(cfg, "cron");
            d->cron = cron ? keep_str(cron, &ok) : NULL;
        }
        if (!ok)
            return -1;
        Py_INCREF(inv);
        invokers[i] = inv;
        fptrs[i] = d;
    }
    return 0;
}

static int build_classes(PyObject *classes)
{
    ncls = (size_t)PyList_GET_SIZE(classes);
    cdefs = calloc(ncls ? ncls : 1, sizeof *cdefs);
    cptrs = calloc(ncls ? ncls : 1, sizeof *cptrs);
    enters = calloc(ncls ? ncls : 1, sizeof *enters);
    exits = calloc(ncls ? ncls : 1, sizeof *exits);
    if (!cdefs || !cptrs || !enters || !exits) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < ncls; i++) {
        PyObject *name, *params, *cfg, *en, *ex;
        int snap, ok = 1;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(classes, (Py_ssize_t)i), "OOpO!OO", &name, &params,
                              &snap, &PyDict_Type, &cfg, &en, &ex))
            return -1;
        struct skiff_class_def *d = &cdefs[i];
        d->abi = SKIFF_APP_ABI;
        d->name = keep_str(name, &ok);
        d->params = keep_str(params, &ok);
        d->state_size = sizeof(PyObject *);
        if (snap)
            d->enter_snap[0] = hook_snap;
        d->enter[0] = hook_enter;
        d->exit[0] = hook_exit;
        FILL_CONFIG(d, cfg, &ok);
        if (!ok)
            return -1;
        Py_INCREF(en);
        Py_INCREF(ex);
        enters[i] = en;
        exits[i] = ex;
        cptrs[i] = d;
    }
    return 0;
}

/* Runs skiff__worker_main on argv (a list of str) with the GIL released. */
static PyObject *run_main(PyObject *argv)
{
    int ok = 1;
    Py_ssize_t argc = PyList_GET_SIZE(argv);
    char **av = calloc((size_t)argc + 1, sizeof *av);
    if (!av)
        return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < argc; i++) {
        av[i] = (char *)keep_str(PyList_GET_ITEM(argv, i), &ok);
        if (!ok)
            return NULL;
    }
    fflush(stdout);
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = skiff__worker_main((int)argc, av);
    Py_END_ALLOW_THREADS return PyLong_FromLong(rc);
}

PyObject *pyskiff_worker_fail(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *argv;
    const char *message, *tb;
    if (!PyArg_ParseTuple(args, "O!sz", &PyList_Type, &argv, &message, &tb))
        return NULL;
    skiff__worker_preload_failure(message, tb);
    return run_main(argv);
}

PyObject *pyskiff_worker_main(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *argv, *spec, *name, *fns, *classes, *fmt;
    if (!PyArg_ParseTuple(args, "O!O!", &PyList_Type, &argv, &PyTuple_Type, &spec))
        return NULL;
    if (fdefs) {
        PyErr_SetString(PyExc_RuntimeError, "worker_main runs once per process");
        return NULL;
    }
    if (!PyArg_ParseTuple(spec, "UO!O!O", &name, &PyList_Type, &fns, &PyList_Type, &classes, &fmt))
        return NULL;
    int ok = 1;
    app_def.abi = SKIFF_APP_ABI;
    app_def.name = keep_str(name, &ok);
    if (!ok || build_functions(fns) < 0 || build_classes(classes) < 0)
        return NULL;
    Py_INCREF(fmt);
    format_exc = fmt;
    PyObject *exc_mod = PyImport_ImportModule("skiff.exception");
    cancel_exc = exc_mod ? PyObject_GetAttrString(exc_mod, "InputCancellation") : NULL;
    Py_XDECREF(exc_mod);
    if (!cancel_exc)
        return NULL;
    app_def.begin = fptrs;
    app_def.end = fptrs + nfns;
    app_def.cls_begin = cptrs;
    app_def.cls_end = cptrs + ncls;
    skiff__worker_preload(&app_def);
    skiff__worker_fork_hooks(fork_before, fork_child, fork_parent);
    return run_main(argv);
}
