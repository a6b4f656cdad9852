/*
 * aio.c - the _async twins of skiff._skiff: every blocking call of Function, FunctionCall and
 * Client has a method NAME_async(..., cb) over libskiff's asynchronous API.
 *
 * The method returns at once (or raises when libskiff refused to start the operation: then cb
 * is never called). cb(exc, value) is called exactly once, later, from Client.process() on the
 * thread that started the operation, with the GIL held: exc is None and value the result, or exc
 * the exception (value None). Streams (map, remote_gen, iter, get_gen) also take item(value),
 * called once per output or item before cb. The Python layer (skiff/_aio.py) turns these into
 * asyncio futures and async iterators, driven by loop.add_reader on Client.fd().
 *
 * Each operation holds an `op`: the callables, a reference to every Python handle it uses (so
 * they outlive it, as libskiff requires) and the input values it borrows to libskiff; the
 * completion callback frees it.
 */
#include "pyskiff.h"

struct op {
    PyObject *cb;         /* cb(exc, value) */
    PyObject *item;       /* item(value) for streams, or NULL */
    PyObject *keep;       /* the handle operated on */
    ClientObject *client; /* for new handles */
    skiff_value **lists;  /* inputs libskiff borrows until completion */
    size_t nlists;
    skiff_value *extra;
    skiff_call **calls; /* gather's array */
};

static struct op *op_new(PyObject *cb, PyObject *item, PyObject *keep, ClientObject *client)
{
    if (!PyCallable_Check(cb) || (item && !PyCallable_Check(item))) {
        PyErr_SetString(PyExc_TypeError, "callbacks must be callable");
        return NULL;
    }
    struct op *o = PyMem_Calloc(1, sizeof *o);
    if (!o) {
        PyErr_NoMemory();
        return NULL;
    }
    Py_INCREF(cb);
    o->cb = cb;
    Py_XINCREF(item);
    o->item = item;
    Py_XINCREF(keep);
    o->keep = keep;
    Py_XINCREF(client);
    o->client = client;
    return o;
}

static void op_free(struct op *o)
{
    Py_XDECREF(o->cb);
    Py_XDECREF(o->item);
    Py_XDECREF(o->keep);
    Py_XDECREF(o->client);
    for (size_t i = 0; i < o->nlists; i++)
        skiff_value_free(o->lists[i]);
    PyMem_Free(o->lists);
    skiff_value_free(o->extra);
    PyMem_Free(o->calls);
    PyMem_Free(o);
}

/* Starting failed: frees o and raises. */
static PyObject *op_refused(struct op *o, int rc, skiff_error *err)
{
    op_free(o);
    pyskiff_raise(rc, err);
    skiff_error_clear(err);
    return NULL;
}

/* Calls cb(exc, value) (value taken; NULL means a conversion failure already raised) and frees
 * o. */
static void finish(struct op *o, int rc, const skiff_error *err, PyObject *value)
{
    PyObject *exc = NULL;
    if (rc != SKIFF_OK) {
        exc = pyskiff_exception(rc, err);
        Py_CLEAR(value);
    } else if (!value) {
        PyObject *type, *tb;
        PyErr_Fetch(&type, &exc, &tb);
        PyErr_NormalizeException(&type, &exc, &tb);
        Py_XDECREF(type);
        Py_XDECREF(tb);
    }
    PyObject *r =
        PyObject_CallFunctionObjArgs(o->cb, exc ? exc : Py_None, value ? value : Py_None, NULL);
    if (!r)
        PyErr_WriteUnraisable(o->cb);
    Py_XDECREF(r);
    Py_XDECREF(exc);
    Py_XDECREF(value);
    op_free(o);
}

static void on_result(void *ud, int rc, skiff_value *result, const skiff_error *err)
{
    finish(ud, rc, err, rc == SKIFF_OK ? pyskiff_take_value(result) : NULL);
}

static void on_call(void *ud, int rc, skiff_call *call, const skiff_error *err)
{
    struct op *o = ud;
    finish(o, rc, err, rc == SKIFF_OK ? pyskiff_call_new(call, o->client) : NULL);
}

static void on_function(void *ud, int rc, skiff_function *fn, const skiff_error *err)
{
    struct op *o = ud;
    finish(o, rc, err,
           rc == SKIFF_OK ? pyskiff_function_new(fn, (PyObject *)o->client, o->client) : NULL);
}

static void on_done(void *ud, int rc, const skiff_error *err)
{
    Py_INCREF(Py_None);
    finish(ud, rc, err, rc == SKIFF_OK ? Py_None : NULL);
}

static void on_stats(void *ud, int rc, const skiff_function_stats *s, const skiff_error *err)
{
    finish(ud, rc, err,
           rc == SKIFF_OK
               ? Py_BuildValue("(LLLL)", (long long)s->backlog, (long long)s->num_total_runners,
                               (long long)s->num_running_inputs, (long long)s->input_headroom)
               : NULL);
}

static void on_url(void *ud, int rc, char *url, const skiff_error *err)
{
    PyObject *v = NULL;
    if (rc == SKIFF_OK) {
        if (url) {
            v = PyUnicode_FromString(url);
        } else {
            Py_INCREF(Py_None);
            v = Py_None;
        }
    }
    free(url);
    finish(ud, rc, err, v);
}

static void on_autoscaler(void *ud, int rc, const skiff_autoscaler *now, const skiff_error *err)
{
    finish(ud, rc, err,
           rc == SKIFF_OK ? Py_BuildValue("(LLLd)", (long long)now->min_containers,
                                          (long long)now->max_containers,
                                          (long long)now->buffer_containers, now->scaledown_window)
                          : NULL);
}

static void on_graph(void *ud, int rc, skiff_input_info *roots, size_t n, const skiff_error *err)
{
    PyObject *v = rc == SKIFF_OK ? pyskiff_graph(roots, n) : NULL;
    if (rc == SKIFF_OK)
        skiff_call_graph_free(roots, n);
    finish(ud, rc, err, v);
}

static void deliver(struct op *o, PyObject *v)
{
    if (!v) {
        PyErr_WriteUnraisable(o->item);
        return;
    }
    PyObject *r = PyObject_CallOneArg(o->item, v);
    if (!r)
        PyErr_WriteUnraisable(o->item);
    Py_XDECREF(r);
    Py_DECREF(v);
}

static void on_item(void *ud, skiff_value *item)
{
    deliver(ud, pyskiff_take_value(item));
}

static void on_output(void *ud, skiff_map_output *out)
{
    PyObject *v = out->error.code != SKIFF_OK ? pyskiff_exception(out->error.code, &out->error)
                                              : pyskiff_from_value(out->value);
    skiff_map_output_clear(out);
    deliver(ud, v);
}

/* --- argument helpers ------------------------------------------------------------------------ */

static int call_args(PyObject *a, PyObject *k, struct op *o)
{
    int ok;
    o->lists = PyMem_Calloc(1, sizeof *o->lists);
    if (!o->lists) {
        PyErr_NoMemory();
        return -1;
    }
    o->lists[0] = pyskiff_to_args(a);
    if (!o->lists[0])
        return -1;
    o->nlists = 1;
    o->extra = pyskiff_to_kwargs(k, &ok);
    return ok ? 0 : -1;
}

static int input_lists(PyObject *iterables, struct op *o)
{
    return pyskiff_input_lists(iterables, &o->lists, &o->nlists);
}

#define FN(self) (((FunctionObject *)(self))->fn)
#define CALL(self) (((CallObject *)(self))->call)
#define START(expr)                                                                                \
    do {                                                                                           \
        skiff_error err = SKIFF_ERROR_INIT;                                                        \
        int rc = (expr);                                                                           \
        if (rc != SKIFF_OK)                                                                        \
            return op_refused(o, rc, &err);                                                        \
        Py_RETURN_NONE;                                                                            \
    } while (0)

/* --- Function twins -------------------------------------------------------------------------- */

static PyObject *F_remote_async(PyObject *self, PyObject *args)
{
    PyObject *a, *k, *cb;
    if (!PyArg_ParseTuple(args, "OOO", &a, &k, &cb))
        return NULL;
    struct op *o = op_new(cb, NULL, self, ((FunctionObject *)self)->client);
    if (!o)
        return NULL;
    if (call_args(a, k, o) < 0) {
        op_free(o);
        return NULL;
    }
    START(skiff_function_remote_async(FN(self), o->lists[0], o->extra, on_result, o, &err));
}

typedef int (*spawn_async_fn)(skiff_function *, const skiff_value *, const skiff_value *,
                              skiff_call_cb, void *, skiff_error *);

static PyObject *spawn_like(PyObject *self, PyObject *args, spawn_async_fn f)
{
    PyObject *a, *k, *cb;
    if (!PyArg_ParseTuple(args, "OOO", &a, &k, &cb))
        return NULL;
    struct op *o = op_new(cb, NULL, self, ((FunctionObject *)self)->client);
    if (!o)
        return NULL;
    if (call_args(a, k, o) < 0) {
        op_free(o);
        return NULL;
    }
    START(f(FN(self), o->lists[0], o->extra, on_call, o, &err));
}

static PyObject *F_spawn_async(PyObject *self, PyObject *args)
{
    return spawn_like(self, args, skiff_function_spawn_async);
}

static PyObject *F_spawn_gen_async(PyObject *self, PyObject *args)
{
    return spawn_like(self, args, skiff_function_spawn_gen_async);
}

static PyObject *F_remote_gen_async(PyObject *self, PyObject *args)
{
    PyObject *a, *k, *item, *cb;
    if (!PyArg_ParseTuple(args, "OOOO", &a, &k, &item, &cb))
        return NULL;
    struct op *o = op_new(cb, item, self, ((FunctionObject *)self)->client);
    if (!o)
        return NULL;
    if (call_args(a, k, o) < 0) {
        op_free(o);
        return NULL;
    }
    START(skiff_function_remote_gen_async(FN(self), o->lists[0], o->extra, on_item, on_done, o,
                                          &err));
}

/* map_async(iterables, kwargs, order_outputs, return_exceptions, item, cb) */
static PyObject *F_map_async(PyObject *self, PyObject *args)
{
    PyObject *its, *k, *item, *cb;
    int ordered, retexc;
    if (!PyArg_ParseTuple(args, "OOppOO", &its, &k, &ordered, &retexc, &item, &cb))
        return NULL;
    struct op *o = op_new(cb, item, self, ((FunctionObject *)self)->client);
    if (!o)
        return NULL;
    int ok;
    o->extra = pyskiff_to_kwargs(k, &ok);
    if (!ok || input_lists(its, o) < 0) {
        op_free(o);
        return NULL;
    }
    skiff_map_options mo = {.kwargs = o->extra, .unordered = !ordered, .return_exceptions = retexc};
    START(skiff_function_map_async(FN(self), (const skiff_value *const *)o->lists, o->nlists, &mo,
                                   on_output, on_done, o, &err));
}

/* starmap_async(tuples, kwargs, order_outputs, return_exceptions, item, cb): tuples a list of
 * lists. */
static PyObject *F_starmap_async(PyObject *self, PyObject *args)
{
    PyObject *tuples, *k, *item, *cb;
    int ordered, retexc;
    if (!PyArg_ParseTuple(args, "OOppOO", &tuples, &k, &ordered, &retexc, &item, &cb))
        return NULL;
    struct op *o = op_new(cb, item, self, ((FunctionObject *)self)->client);
    if (!o)
        return NULL;
    if (call_args(tuples, k, o) < 0) {
        op_free(o);
        return NULL;
    }
    skiff_map_options mo = {.kwargs = o->extra, .unordered = !ordered, .return_exceptions = retexc};
    START(skiff_function_starmap_async(FN(self), o->lists[0], &mo, on_output, on_done, o, &err));
}

/* for_each_async(iterables, kwargs, ignore_exceptions, cb) */
static PyObject *F_for_each_async(PyObject *self, PyObject *args)
{
    PyObject *its, *k, *cb;
    int ignore;
    if (!PyArg_ParseTuple(args, "OOpO", &its, &k, &ignore, &cb))
        return NULL;
    struct op *o = op_new(cb, NULL, self, ((FunctionObject *)self)->client);
    if (!o)
        return NULL;
    int ok;
    o->extra = pyskiff_to_kwargs(k, &ok);
    if (!ok || input_lists(its, o) < 0) {
        op_free(o);
        return NULL;
    }
    START(skiff_function_for_each_async(FN(self), (const skiff_value *const *)o->lists, o->nlists,
                                        o->extra, ignore, on_done, o, &err));
}

/* spawn_map_async(iterables, kwargs, cb) */
static PyObject *F_spawn_map_async(PyObject *self, PyObject *args)
{
    PyObject *its, *k, *cb;
    if (!PyArg_ParseTuple(args, "OOO", &its, &k, &cb))
        return NULL;
    struct op *o = op_new(cb, NULL, self, ((FunctionObject *)self)->client);
    if (!o)
        return NULL;
    int ok;
    o->extra = pyskiff_to_kwargs(k, &ok);
    if (!ok || input_lists(its, o) < 0) {
        op_free(o);
        return NULL;
    }
    START(skiff_function_spawn_map_async(FN(self), (const skiff_value *const *)o->lists, o->nlists,
                                         o->extra, on_call, o, &err));
}

static PyObject *F_hydrate_async(PyObject *self, PyObject *args)
{
    PyObject *cb;
    if (!PyArg_ParseTuple(args, "O", &cb))
        return NULL;
    struct op *o = op_new(cb, NULL, self, NULL);
    if (!o)
        return NULL;
    START(skiff_function_hydrate_async(FN(self), on_done, o, &err));
}

static PyObject *F_stats_async(PyObject *self, PyObject *args)
{
    PyObject *cb;
    if (!PyArg_ParseTuple(args, "O", &cb))
        return NULL;
    struct op *o = op_new(cb, NULL, self, NULL);
    if (!o)
        return NULL;
    START(skiff_function_get_current_stats_async(FN(self), on_stats, o, &err));
}

static PyObject *F_web_url_async(PyObject *self, PyObject *args)
{
    PyObject *cb;
    if (!PyArg_ParseTuple(args, "O", &cb))
        return NULL;
    struct op *o = op_new(cb, NULL, self, NULL);
    if (!o)
        return NULL;
    START(skiff_function_get_web_url_async(FN(self), on_url, o, &err));
}

static PyObject *F_keep_warm_async(PyObject *self, PyObject *args)
{
    long long n;
    PyObject *cb;
    if (!PyArg_ParseTuple(args, "LO", &n, &cb))
        return NULL;
    struct op *o = op_new(cb, NULL, self, NULL);
    if (!o)
        return NULL;
    START(skiff_function_keep_warm_async(FN(self), n, on_done, o, &err));
}

/* update_autoscaler_async(min, max, buffer, window, cb): -1 leaves a field unchanged. */
static PyObject *F_update_autoscaler_async(PyObject *self, PyObject *args)
{
    skiff_autoscaler s = SKIFF_AUTOSCALER_INIT;
    long long mn, mx, buf;
    PyObject *cb;
    if (!PyArg_ParseTuple(args, "LLLdO", &mn, &mx, &buf, &s.scaledown_window, &cb))
        return NULL;
    s.min_containers = mn;
    s.max_containers = mx;
    s.buffer_containers = buf;
    struct op *o = op_new(cb, NULL, self, NULL);
    if (!o)
        return NULL;
    START(skiff_function_update_autoscaler_async(FN(self), &s, on_autoscaler, o, &err));
}

PyMethodDef pyskiff_function_aio_methods[] = {
    {"remote_async", F_remote_async, METH_VARARGS, "remote_async(args, kwargs, cb)"},
    {"spawn_async", F_spawn_async, METH_VARARGS, "spawn_async(args, kwargs, cb)"},
    {"spawn_gen_async", F_spawn_gen_async, METH_VARARGS, "spawn_gen_async(args, kwargs, cb)"},
    {"remote_gen_async", F_remote_gen_async, METH_VARARGS,
     "remote_gen_async(args, kwargs, item, cb)"},
    {"map_async", F_map_async, METH_VARARGS,
     "map_async(iterables, kwargs, order_outputs, return_exceptions, item, cb)"},
    {"starmap_async", F_starmap_async, METH_VARARGS,
     "starmap_async(tuples, kwargs, order_outputs, return_exceptions, item, cb)"},
    {"for_each_async", F_for_each_async, METH_VARARGS,
     "for_each_async(iterables, kwargs, ignore_exceptions, cb)"},
    {"spawn_map_async", F_spawn_map_async, METH_VARARGS, "spawn_map_async(iterables, kwargs, cb)"},
    {"hydrate_async", F_hydrate_async, METH_VARARGS, "hydrate_async(cb)"},
    {"stats_async", F_stats_async, METH_VARARGS, "stats_async(cb)"},
    {"web_url_async", F_web_url_async, METH_VARARGS, "web_url_async(cb)"},
    {"keep_warm_async", F_keep_warm_async, METH_VARARGS, "keep_warm_async(n, cb)"},
    {"update_autoscaler_async", F_update_autoscaler_async, METH_VARARGS,
     "update_autoscaler_async(min, max, buffer, window, cb) (-1: unchanged)"},
    {NULL, NULL, 0, NULL},
};

/* --- FunctionCall twins ---------------------------------------------------------------------- */

/* get_async(timeout, index, cb): timeout < 0 waits forever; index < 0: the single call. */
static PyObject *C_get_async(PyObject *self, PyObject *args)
{
    double t;
    Py_ssize_t index;
    PyObject *cb;
    if (!PyArg_ParseTuple(args, "dnO", &t, &index, &cb))
        return NULL;
    struct op *o = op_new(cb, NULL, self, NULL);
    if (!o)
        return NULL;
    if (t < 0)
        t = SKIFF_WAIT_FOREVER;
    if (index < 0)
        START(skiff_call_get_async(CALL(self), t, on_result, o, &err));
    START(skiff_call_get_index_async(CALL(self), (size_t)index, t, on_result, o, &err));
}

static PyObject *C_cancel_async(PyObject *self, PyObject *args)
{
    int term;
    PyObject *cb;
    if (!PyArg_ParseTuple(args, "pO", &term, &cb))
        return NULL;
    struct op *o = op_new(cb, NULL, self, NULL);
    if (!o)
        return NULL;
    START(skiff_call_cancel_async(CALL(self), term, on_done, o, &err));
}

static PyObject *C_graph_async(PyObject *self, PyObject *args)
{
    PyObject *cb;
    if (!PyArg_ParseTuple(args, "O", &cb))
        return NULL;
    struct op *o = op_new(cb, NULL, self, NULL);
    if (!o)
        return NULL;
    START(skiff_call_get_call_graph_async(CALL(self), on_graph, o, &err));
}

static PyObject *C_get_gen_async(PyObject *self, PyObject *args)
{
    PyObject *item, *cb;
    if (!PyArg_ParseTuple(args, "OO", &item, &cb))
        return NULL;
    struct op *o = op_new(cb, item, self, NULL);
    if (!o)
        return NULL;
    START(skiff_call_get_gen_async(CALL(self), on_item, on_done, o, &err));
}

/* iter_async(order_outputs, return_exceptions, item, cb) */
static PyObject *C_iter_async(PyObject *self, PyObject *args)
{
    int ordered, retexc;
    PyObject *item, *cb;
    if (!PyArg_ParseTuple(args, "ppOO", &ordered, &retexc, &item, &cb))
        return NULL;
    struct op *o = op_new(cb, item, self, NULL);
    if (!o)
        return NULL;
    skiff_map_options mo = {.unordered = !ordered, .return_exceptions = retexc};
    START(skiff_call_iter_async(CALL(self), &mo, on_output, on_done, o, &err));
}

PyMethodDef pyskiff_call_aio_methods[] = {
    {"get_async", C_get_async, METH_VARARGS, "get_async(timeout, index, cb)"},
    {"cancel_async", C_cancel_async, METH_VARARGS, "cancel_async(terminate_containers, cb)"},
    {"graph_async", C_graph_async, METH_VARARGS, "graph_async(cb)"},
    {"get_gen_async", C_get_gen_async, METH_VARARGS, "get_gen_async(item, cb)"},
    {"iter_async", C_iter_async, METH_VARARGS,
     "iter_async(order_outputs, return_exceptions, item, cb)"},
    {NULL, NULL, 0, NULL},
};

/* --- Client twins and gather ----------------------------------------------------------------- */

static PyObject *Cl_lookup_async(PyObject *self, PyObject *args)
{
    const char *app, *name;
    PyObject *cb;
    if (!PyArg_ParseTuple(args, "ssO", &app, &name, &cb))
        return NULL;
    struct op *o = op_new(cb, NULL, self, (ClientObject *)self);
    if (!o)
        return NULL;
    START(skiff_function_lookup_async(((ClientObject *)self)->client, app, name, on_function, o,
                                      &err));
}

static PyObject *Cl_call_from_id_async(PyObject *self, PyObject *args)
{
    const char *id;
    PyObject *cb;
    if (!PyArg_ParseTuple(args, "sO", &id, &cb))
        return NULL;
    struct op *o = op_new(cb, NULL, self, (ClientObject *)self);
    if (!o)
        return NULL;
    START(skiff_call_from_id_async(((ClientObject *)self)->client, id, on_call, o, &err));
}

PyMethodDef pyskiff_client_aio_methods[] = {
    {"function_lookup_async", Cl_lookup_async, METH_VARARGS,
     "function_lookup_async(app, name, cb)"},
    {"call_from_id_async", Cl_call_from_id_async, METH_VARARGS, "call_from_id_async(id, cb)"},
    {NULL, NULL, 0, NULL},
};

PyObject *pyskiff_gather_async(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *seq, *cb;
    if (!PyArg_ParseTuple(args, "OO", &seq, &cb))
        return NULL;
    PyObject *fast = PySequence_Fast(seq, "gather wants a sequence of FunctionCall");
    if (!fast)
        return NULL;
    struct op *o = op_new(cb, NULL, fast, NULL);
    Py_DECREF(fast);
    if (!o)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    o->calls = PyMem_Calloc(n ? (size_t)n : 1, sizeof *o->calls);
    if (!o->calls) {
        op_free(o);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *c = PySequence_Fast_GET_ITEM(fast, i);
        if (!PyObject_TypeCheck(c, &Call_Type)) {
            op_free(o);
            PyErr_SetString(PyExc_TypeError, "gather wants FunctionCall objects");
            return NULL;
        }
        o->calls[i] = CALL(c);
    }
    START(skiff_call_gather_async(o->calls, (size_t)n, on_result, o, &err));
}
