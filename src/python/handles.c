/*
 * handles.c - Function, FunctionCall and the map and generator iterators of skiff._skiff.
 *
 * Each method converts its Python arguments to skiff values with the GIL held, releases the GIL
 * for the libskiff call, and converts the outcome back. Inputs of a map are materialised as one
 * skiff list per iterable, owned by the iterator until it is freed (libskiff borrows them for the
 * map's life); outputs stream through skiff_map_next one at a time, so the map's window
 * (backpressure) is libskiff's. An unbounded wait (get without a timeout) waits in slices of
 * WAIT_SLICE seconds so Ctrl-C is seen between them.
 */
#include "pyskiff.h"

/* Seconds one slice of an unbounded wait lasts: Ctrl-C is noticed within about this long. */
#define WAIT_SLICE 0.5

static PyObject *fail(int rc, skiff_error *err)
{
    pyskiff_raise(rc, err);
    skiff_error_clear(err);
    return NULL;
}

static void free_lists(skiff_value **lists, size_t n)
{
    for (size_t i = 0; i < n; i++)
        skiff_value_free(lists[i]);
    PyMem_Free(lists);
}

/* --- lazy inputs ------------------------------------------------------------------------------
 * A map over iterators that are not sequences (generators, files, itertools.count) draws its
 * inputs lazily through a skiff_map_source: next runs inside skiff_map_next, which the iterator
 * calls with the GIL released, and takes the GIL to advance the iterators, so a map over ten
 * million generated inputs holds only the window in memory. An exception of an iterator ends the
 * map and is raised again, unchanged, by the map's next output. */

struct source {
    PyObject *iters; /* a tuple of iterators, zipped */
    PyObject *exc;   /* the exception an iterator raised, or NULL */
};

static int source_next(void *ctx, skiff_value **args, skiff_error *err)
{
    struct source *src = ctx;
    PyGILState_STATE g = PyGILState_Ensure();
    Py_ssize_t n = PyTuple_GET_SIZE(src->iters);
    PyObject *items = PyList_New(n);
    int rc = SKIFF_OK;
    bool done = false;
    for (Py_ssize_t i = 0; items && i < n && !done; i++) {
        PyObject *item = PyIter_Next(PyTuple_GET_ITEM(src->iters, i));
        if (item)
            PyList_SET_ITEM(items, i, item);
        else
            done = true;
    }
    skiff_value *v = items && !done ? pyskiff_to_args(items) : NULL;
    Py_XDECREF(items);
    if (PyErr_Occurred()) {
        PyObject *type, *tb;
        PyErr_Fetch(&type, &src->exc, &tb);
        PyErr_NormalizeException(&type, &src->exc, &tb);
        if (src->exc && tb)
            PyException_SetTraceback(src->exc, tb);
        Py_XDECREF(type);
        Py_XDECREF(tb);
        rc = skiff_error_set(err, SKIFF_ERR_INVALID, NULL, "the map's input iterator failed");
    } else {
        *args = v; /* NULL: no more inputs */
    }
    PyGILState_Release(g);
    return rc;
}

static void source_free(struct source *src)
{
    if (!src)
        return;
    Py_XDECREF(src->iters);
    Py_XDECREF(src->exc);
    PyMem_Free(src);
}

/* A source over the iterables (a sequence), or NULL with an exception set. */
static struct source *source_new(PyObject *iterables)
{
    PyObject *fast = PySequence_Fast(iterables, "map wants a sequence of iterables");
    if (!fast)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    PyObject *iters = PyTuple_New(n);
    for (Py_ssize_t i = 0; iters && i < n; i++) {
        PyObject *it = PyObject_GetIter(PySequence_Fast_GET_ITEM(fast, i));
        if (!it)
            Py_CLEAR(iters);
        else
            PyTuple_SET_ITEM(iters, i, it);
    }
    Py_DECREF(fast);
    struct source *src = iters ? PyMem_Calloc(1, sizeof *src) : NULL;
    if (!src) {
        Py_XDECREF(iters);
        return iters ? (struct source *)PyErr_NoMemory() : NULL;
    }
    src->iters = iters;
    return src;
}

/* True when every iterable is a list, tuple or range: converted at once (the fast path). */
static bool all_sized(PyObject *iterables)
{
    PyObject *fast = PySequence_Fast(iterables, "map wants a sequence of iterables");
    if (!fast) {
        PyErr_Clear();
        return true; /* the conversion reports it */
    }
    bool sized = true;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(fast); i++) {
        PyObject *o = PySequence_Fast_GET_ITEM(fast, i);
        sized = sized && (PyList_Check(o) || PyTuple_Check(o) || PyRange_Check(o));
    }
    Py_DECREF(fast);
    return sized;
}

/* --- MapIter ---------------------------------------------------------------------------------
 * Iterates the outputs of a map, starmap or a call's iter(): values, or with return_exceptions
 * the exception object in a failed input's place. */

typedef struct {
    PyObject_HEAD skiff_map *map;
    PyObject *owner; /* the Function or FunctionCall */
    skiff_value **lists;
    size_t nlists;
    skiff_value *extra; /* kwargs or starmap tuples, borrowed by the map */
    int with_index;     /* yield (index, value) pairs */
    struct source *src; /* lazy inputs (map over iterators), or NULL */
} MapIterObject;

static PyObject *mapiter_new(skiff_map *m, PyObject *owner, skiff_value **lists, size_t n,
                             skiff_value *extra)
{
    MapIterObject *it = PyObject_New(MapIterObject, &MapIter_Type);
    if (!it) {
        skiff_map_free(m);
        free_lists(lists, n);
        skiff_value_free(extra);
        return NULL;
    }
    it->map = m;
    Py_INCREF(owner);
    it->owner = owner;
    it->lists = lists;
    it->nlists = n;
    it->extra = extra;
    it->with_index = 0;
    it->src = NULL;
    return (PyObject *)it;
}

static void MapIter_dealloc(MapIterObject *self)
{
    Py_BEGIN_ALLOW_THREADS skiff_map_free(self->map);
    Py_END_ALLOW_THREADS free_lists(self->lists, self->nlists);
    source_free(self->src);
    skiff_value_free(self->extra);
    Py_XDECREF(self->owner);
    PyObject_Free(self);
}

static PyObject *MapIter_next(MapIterObject *self)
{
    skiff_map_output out = {0};
    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = skiff_map_next(self->map, &out, &err);
    Py_END_ALLOW_THREADS if (rc == SKIFF_DONE) return NULL;
    if (rc != SKIFF_OK && self->src && self->src->exc) {
        skiff_error_clear(&err);
        PyErr_SetObject((PyObject *)Py_TYPE(self->src->exc), self->src->exc);
        return NULL;
    }
    if (rc != SKIFF_OK)
        return fail(rc, &err);
    PyObject *v;
    if (out.error.code != SKIFF_OK) {
        v = pyskiff_exception(out.error.code, &out.error);
    } else {
        v = pyskiff_from_value(out.value);
    }
    size_t index = out.index;
    skiff_map_output_clear(&out);
    if (v && self->with_index) {
        PyObject *pair = Py_BuildValue("(nN)", (Py_ssize_t)index, v);
        return pair;
    }
    return v;
}

static PyObject *MapIter_call_id(MapIterObject *self, void *unused)
{
    (void)unused;
    const char *id = skiff_map_call_id(self->map);
    if (!id)
        Py_RETURN_NONE;
    return PyUnicode_FromString(id);
}

static PyGetSetDef MapIter_getset[] = {
    {"call_id", (getter)MapIter_call_id, NULL, "the map's fc- id once started", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject MapIter_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "skiff._skiff.MapIter",
    .tp_basicsize = sizeof(MapIterObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)MapIter_dealloc,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)MapIter_next,
    .tp_getset = MapIter_getset,
};

/* --- GenIter: the items of a generator call --------------------------------------------------- */

typedef struct {
    PyObject_HEAD skiff_gen *gen;
    PyObject *owner;
} GenIterObject;

static PyObject *geniter_new(skiff_gen *g, PyObject *owner)
{
    GenIterObject *it = PyObject_New(GenIterObject, &GenIter_Type);
    if (!it) {
        skiff_gen_free(g);
        return NULL;
    }
    it->gen = g;
    Py_INCREF(owner);
    it->owner = owner;
    return (PyObject *)it;
}

static void GenIter_dealloc(GenIterObject *self)
{
    Py_BEGIN_ALLOW_THREADS skiff_gen_free(self->gen);
    Py_END_ALLOW_THREADS Py_XDECREF(self->owner);
    PyObject_Free(self);
}

static PyObject *GenIter_next(GenIterObject *self)
{
    skiff_value *item = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = skiff_gen_next(self->gen, &item, &err);
    Py_END_ALLOW_THREADS if (rc == SKIFF_DONE) return NULL;
    if (rc != SKIFF_OK)
        return fail(rc, &err);
    return pyskiff_take_value(item);
}

PyTypeObject GenIter_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "skiff._skiff.GenIter",
    .tp_basicsize = sizeof(GenIterObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)GenIter_dealloc,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)GenIter_next,
};

/* --- Function ------------------------------------------------------------------------------- */

PyObject *pyskiff_function_new(skiff_function *fn, PyObject *owner, ClientObject *client)
{
    FunctionObject *o = PyObject_New(FunctionObject, &Function_Type);
    if (!o) {
        skiff_function_free(fn);
        return NULL;
    }
    o->fn = fn;
    Py_INCREF(owner);
    o->owner = owner;
    Py_INCREF(client);
    o->client = client;
    return (PyObject *)o;
}

static void Function_dealloc(FunctionObject *self)
{
    skiff_function_free(self->fn);
    Py_XDECREF(self->owner);
    Py_XDECREF(self->client);
    PyObject_Free(self);
}

/* Parses (args, kwargs) into skiff values. 0, or -1 with an exception set. */
static int call_args(PyObject *a, PyObject *k, skiff_value **args, skiff_value **kwargs)
{
    int ok;
    *args = pyskiff_to_args(a);
    if (!*args)
        return -1;
    *kwargs = pyskiff_to_kwargs(k, &ok);
    if (!ok) {
        skiff_value_free(*args);
        return -1;
    }
    return 0;
}

static PyObject *Function_hydrate(FunctionObject *self, PyObject *unused)
{
    (void)unused;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = skiff_function_hydrate(self->fn, &err);
    Py_END_ALLOW_THREADS if (rc != SKIFF_OK) return fail(rc, &err);
    Py_RETURN_NONE;
}

static PyObject *Function_remote(FunctionObject *self, PyObject *args)
{
    PyObject *a = Py_None, *k = Py_None;
    if (!PyArg_ParseTuple(args, "|OO", &a, &k))
        return NULL;
    skiff_value *va, *vk, *result = NULL;
    if (call_args(a, k, &va, &vk) < 0)
        return NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = skiff_function_remote(self->fn, va, vk, &result, &err);
    Py_END_ALLOW_THREADS skiff_value_free(va);
    skiff_value_free(vk);
    if (rc != SKIFF_OK)
        return fail(rc, &err);
    return pyskiff_take_value(result);
}

typedef int (*spawn_fn)(skiff_function *, const skiff_value *, const skiff_value *, skiff_call **,
                        skiff_error *);

static PyObject *spawn_with(FunctionObject *self, PyObject *args, spawn_fn f)
{
    PyObject *a = Py_None, *k = Py_None;
    if (!PyArg_ParseTuple(args, "|OO", &a, &k))
        return NULL;
    skiff_value *va, *vk;
    if (call_args(a, k, &va, &vk) < 0)
        return NULL;
    skiff_call *call = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = f(self->fn, va, vk, &call, &err);
    Py_END_ALLOW_THREADS skiff_value_free(va);
    skiff_value_free(vk);
    if (rc != SKIFF_OK)
        return fail(rc, &err);
    return pyskiff_call_new(call, self->client);
}

static PyObject *Function_spawn(FunctionObject *self, PyObject *args)
{
    return spawn_with(self, args, skiff_function_spawn);
}

static PyObject *Function_spawn_gen(FunctionObject *self, PyObject *args)
{
    return spawn_with(self, args, skiff_function_spawn_gen);
}

/* map(iterables, kwargs=None, order_outputs=True, return_exceptions=False, window=0,
 *     with_index=False) */
static PyObject *Function_map(FunctionObject *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"iterables",  "kwargs", "order_outputs", "return_exceptions", "window",
                            "with_index", NULL};
    PyObject *its, *k = Py_None;
    int ordered = 1, retexc = 0, with_index = 0;
    Py_ssize_t window = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|Oppnp", names, &its, &k, &ordered, &retexc,
                                     &window, &with_index))
        return NULL;
    int ok;
    skiff_value *vk = pyskiff_to_kwargs(k, &ok);
    if (!ok)
        return NULL;
    skiff_map_options o = {.kwargs = vk,
                           .unordered = !ordered,
                           .return_exceptions = retexc,
                           .max_outstanding = (size_t)(window > 0 ? window : 0)};
    skiff_map *m = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    if (!all_sized(its)) {
        struct source *src = source_new(its);
        if (!src) {
            skiff_value_free(vk);
            return NULL;
        }
        skiff_map_source ms = {source_next, src};
        Py_BEGIN_ALLOW_THREADS rc = skiff_function_map_source(self->fn, &ms, &o, &m, &err);
        Py_END_ALLOW_THREADS if (rc != SKIFF_OK)
        {
            source_free(src);
            skiff_value_free(vk);
            return fail(rc, &err);
        }
        PyObject *it = mapiter_new(m, (PyObject *)self, NULL, 0, vk);
        if (it) {
            ((MapIterObject *)it)->src = src;
            ((MapIterObject *)it)->with_index = with_index;
        } else {
            source_free(src);
        }
        return it;
    }
    skiff_value **lists;
    size_t n;
    if (pyskiff_input_lists(its, &lists, &n) < 0) {
        skiff_value_free(vk);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS rc =
        skiff_function_map(self->fn, (const skiff_value *const *)lists, n, &o, &m, &err);
    Py_END_ALLOW_THREADS if (rc != SKIFF_OK)
    {
        free_lists(lists, n);
        skiff_value_free(vk);
        return fail(rc, &err);
    }
    PyObject *it = mapiter_new(m, (PyObject *)self, lists, n, vk);
    if (it)
        ((MapIterObject *)it)->with_index = with_index;
    return it;
}

static PyObject *Function_starmap(FunctionObject *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"tuples", "kwargs", "order_outputs", "return_exceptions", NULL};
    PyObject *tuples, *k = Py_None;
    int ordered = 1, retexc = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|Opp", names, &tuples, &k, &ordered, &retexc))
        return NULL;
    int ok;
    skiff_value *vk = pyskiff_to_kwargs(k, &ok);
    if (!ok)
        return NULL;
    PyObject *seq = PySequence_List(tuples);
    skiff_value *vt = NULL;
    if (seq) {
        Py_ssize_t n = PyList_GET_SIZE(seq);
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *t = PySequence_List(PyList_GET_ITEM(seq, i));
            if (!t) {
                Py_CLEAR(seq);
                break;
            }
            PyList_SET_ITEM(seq, i, t); /* steals t, releases the old item */
        }
    }
    vt = seq ? pyskiff_to_args(seq) : NULL;
    Py_XDECREF(seq);
    if (!vt) {
        skiff_value_free(vk);
        return NULL;
    }
    skiff_value **holder = PyMem_Calloc(1, sizeof *holder);
    if (!holder) {
        skiff_value_free(vt);
        skiff_value_free(vk);
        return PyErr_NoMemory();
    }
    holder[0] = vt;
    skiff_map_options o = {.kwargs = vk, .unordered = !ordered, .return_exceptions = retexc};
    skiff_map *m = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = skiff_function_starmap(self->fn, vt, &o, &m, &err);
    Py_END_ALLOW_THREADS if (rc != SKIFF_OK)
    {
        free_lists(holder, 1);
        skiff_value_free(vk);
        return fail(rc, &err);
    }
    return mapiter_new(m, (PyObject *)self, holder, 1, vk);
}

static PyObject *Function_for_each(FunctionObject *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"iterables", "kwargs", "ignore_exceptions", NULL};
    PyObject *its, *k = Py_None;
    int ignore = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|Op", names, &its, &k, &ignore))
        return NULL;
    int ok;
    skiff_value *vk = pyskiff_to_kwargs(k, &ok);
    if (!ok)
        return NULL;
    skiff_value **lists;
    size_t n;
    if (pyskiff_input_lists(its, &lists, &n) < 0) {
        skiff_value_free(vk);
        return NULL;
    }
    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc =
        skiff_function_for_each(self->fn, (const skiff_value *const *)lists, n, vk, ignore, &err);
    Py_END_ALLOW_THREADS free_lists(lists, n);
    skiff_value_free(vk);
    if (rc != SKIFF_OK)
        return fail(rc, &err);
    Py_RETURN_NONE;
}

static PyObject *Function_spawn_map(FunctionObject *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"iterables", "kwargs", NULL};
    PyObject *its, *k = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O", names, &its, &k))
        return NULL;
    int ok;
    skiff_value *vk = pyskiff_to_kwargs(k, &ok);
    if (!ok)
        return NULL;
    skiff_value **lists;
    size_t n;
    if (pyskiff_input_lists(its, &lists, &n) < 0) {
        skiff_value_free(vk);
        return NULL;
    }
    skiff_call *call = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc =
        skiff_function_spawn_map(self->fn, (const skiff_value *const *)lists, n, vk, &call, &err);
    Py_END_ALLOW_THREADS free_lists(lists, n);
    skiff_value_free(vk);
    if (rc != SKIFF_OK)
        return fail(rc, &err);
    return pyskiff_call_new(call, self->client);
}

static PyObject *Function_remote_gen(FunctionObject *self, PyObject *args)
{
    PyObject *a = Py_None, *k = Py_None;
    if (!PyArg_ParseTuple(args, "|OO", &a, &k))
        return NULL;
    skiff_value *va, *vk;
    if (call_args(a, k, &va, &vk) < 0)
        return NULL;
    skiff_gen *g = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = skiff_function_remote_gen(self->fn, va, vk, &g, &err);
    Py_END_ALLOW_THREADS skiff_value_free(va);
    skiff_value_free(vk);
    if (rc != SKIFF_OK)
        return fail(rc, &err);
    return geniter_new(g, (PyObject *)self);
}

static PyObject *Function_stats(FunctionObject *self, PyObject *unused)
{
    (void)unused;
    skiff_function_stats s;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = skiff_function_get_current_stats(self->fn, &s, &err);
    Py_END_ALLOW_THREADS if (rc != SKIFF_OK) return fail(rc, &err);
    return Py_BuildValue("(LLLL)", (long long)s.backlog, (long long)s.num_total_runners,
                         (long long)s.num_running_inputs, (long long)s.input_headroom);
}

/* Reads an autoscaler field: None leaves it unset. 0, or -1 with an exception set. */
static int as_count(PyObject *o, int64_t *out)
{
    if (o == Py_None)
        return 0;
    long long v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    *out = v;
    return 0;
}

static PyObject *Function_update_autoscaler(FunctionObject *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"min_containers", "max_containers", "buffer_containers",
                            "scaledown_window", NULL};
    PyObject *mn = Py_None, *mx = Py_None, *buf = Py_None, *win = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OOOO", names, &mn, &mx, &buf, &win))
        return NULL;
    skiff_autoscaler s = SKIFF_AUTOSCALER_INIT, now;
    if (as_count(mn, &s.min_containers) < 0 || as_count(mx, &s.max_containers) < 0 ||
        as_count(buf, &s.buffer_containers) < 0)
        return NULL;
    if (win != Py_None) {
        s.scaledown_window = PyFloat_AsDouble(win);
        if (s.scaledown_window == -1 && PyErr_Occurred())
            return NULL;
    }
    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = skiff_function_update_autoscaler(self->fn, &s, &now, &err);
    Py_END_ALLOW_THREADS if (rc != SKIFF_OK) return fail(rc, &err);
    return Py_BuildValue("(LLLd)", (long long)now.min_containers, (long long)now.max_containers,
                         (long long)now.buffer_containers, now.scaledown_window);
}

static PyObject *Function_keep_warm(FunctionObject *self, PyObject *args)
{
    long long n;
    if (!PyArg_ParseTuple(args, "L", &n))
        return NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = skiff_function_keep_warm(self->fn, n, &err);
    Py_END_ALLOW_THREADS if (rc != SKIFF_OK) return fail(rc, &err);
    Py_RETURN_NONE;
}

static PyObject *Function_web_url(FunctionObject *self, PyObject *unused)
{
    (void)unused;
    char *url = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = skiff_function_get_web_url(self->fn, &url, &err);
    Py_END_ALLOW_THREADS if (rc != SKIFF_OK) return fail(rc, &err);
    if (!url)
        Py_RETURN_NONE;
    PyObject *s = PyUnicode_FromString(url);
    free(url);
    return s;
}

static PyObject *Function_get_id(FunctionObject *self, void *unused)
{
    (void)unused;
    const char *id = skiff_function_id(self->fn);
    if (!id)
        Py_RETURN_NONE;
    return PyUnicode_FromString(id);
}

static PyObject *Function_get_kind(FunctionObject *self, void *unused)
{
    (void)unused;
    return PyLong_FromLong(skiff_function_get_kind(self->fn));
}

static PyMethodDef Function_methods[] = {
    {"hydrate", (PyCFunction)Function_hydrate, METH_NOARGS, "looks the function up now"},
    {"remote", (PyCFunction)Function_remote, METH_VARARGS, "remote(args, kwargs) -> result"},
    {"spawn", (PyCFunction)Function_spawn, METH_VARARGS, "spawn(args, kwargs) -> FunctionCall"},
    {"spawn_gen", (PyCFunction)Function_spawn_gen, METH_VARARGS,
     "spawn_gen(args, kwargs) -> FunctionCall of a generator"},
    {"map", (PyCFunction)(void (*)(void))Function_map, METH_VARARGS | METH_KEYWORDS,
     "map(iterables, kwargs, order_outputs, return_exceptions, window, with_index) -> MapIter"},
    {"starmap", (PyCFunction)(void (*)(void))Function_starmap, METH_VARARGS | METH_KEYWORDS,
     "starmap(tuples, kwargs, order_outputs, return_exceptions) -> MapIter"},
    {"for_each", (PyCFunction)(void (*)(void))Function_for_each, METH_VARARGS | METH_KEYWORDS,
     "for_each(iterables, kwargs, ignore_exceptions)"},
    {"spawn_map", (PyCFunction)(void (*)(void))Function_spawn_map, METH_VARARGS | METH_KEYWORDS,
     "spawn_map(iterables, kwargs) -> FunctionCall"},
    {"remote_gen", (PyCFunction)Function_remote_gen, METH_VARARGS,
     "remote_gen(args, kwargs) -> GenIter"},
    {"stats", (PyCFunction)Function_stats, METH_NOARGS,
     "(backlog, num_total_runners, num_running_inputs, input_headroom)"},
    {"update_autoscaler", (PyCFunction)(void (*)(void))Function_update_autoscaler,
     METH_VARARGS | METH_KEYWORDS, "-> (min, max, buffer, scaledown_window) in force"},
    {"keep_warm", (PyCFunction)Function_keep_warm, METH_VARARGS, "keep_warm(n)"},
    {"web_url", (PyCFunction)Function_web_url, METH_NOARGS, "the URL of a web endpoint, or None"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Function_getset[] = {
    {"object_id", (getter)Function_get_id, NULL, "the fu- id once hydrated, else None", NULL},
    {"kind", (getter)Function_get_kind, NULL, "KIND_* once looked up", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject Function_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "skiff._skiff.Function",
    .tp_basicsize = sizeof(FunctionObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)Function_dealloc,
    .tp_getset = Function_getset,
};

/* --- FunctionCall ----------------------------------------------------------------------------- */

PyObject *pyskiff_call_new(skiff_call *call, ClientObject *client)
{
    CallObject *o = PyObject_New(CallObject, &Call_Type);
    if (!o) {
        skiff_call_free(call);
        return NULL;
    }
    o->call = call;
    Py_INCREF(client);
    o->client = client;
    return (PyObject *)o;
}

static void Call_dealloc(CallObject *self)
{
    skiff_call_free(self->call);
    Py_XDECREF(self->client);
    PyObject_Free(self);
}

/* Waits for input index (index < 0: the single call) up to timeout (None: forever, in slices). */
static PyObject *call_wait(CallObject *self, Py_ssize_t index, PyObject *timeout)
{
    double t = SKIFF_WAIT_FOREVER;
    if (timeout != Py_None) {
        t = PyFloat_AsDouble(timeout);
        if (t == -1 && PyErr_Occurred())
            return NULL;
        if (t < 0)
            t = 0;
    }
    for (;;) {
        double slice = t < 0 || t > WAIT_SLICE ? WAIT_SLICE : t;
        skiff_value *result = NULL;
        skiff_error err = SKIFF_ERROR_INIT;
        int rc;
        Py_BEGIN_ALLOW_THREADS rc =
            index < 0 ? skiff_call_get(self->call, slice, &result, &err)
                      : skiff_call_get_index(self->call, (size_t)index, slice, &result, &err);
        Py_END_ALLOW_THREADS if (rc == SKIFF_OK) return pyskiff_take_value(result);
        if (rc != SKIFF_ERR_TIMEOUT || (t >= 0 && t <= slice))
            return fail(rc, &err);
        skiff_error_clear(&err);
        if (t >= 0)
            t -= slice;
        if (PyErr_CheckSignals() < 0)
            return NULL;
    }
}

static PyObject *Call_get(CallObject *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"timeout", "index", NULL};
    PyObject *timeout = Py_None;
    Py_ssize_t index = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|On", names, &timeout, &index))
        return NULL;
    return call_wait(self, index, timeout);
}

static PyObject *Call_iter(CallObject *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"order_outputs", "return_exceptions", NULL};
    int ordered = 1, retexc = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|pp", names, &ordered, &retexc))
        return NULL;
    skiff_map_options o = {.unordered = !ordered, .return_exceptions = retexc};
    skiff_map *m = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = skiff_call_iter(self->call, &o, &m, &err);
    Py_END_ALLOW_THREADS if (rc != SKIFF_OK) return fail(rc, &err);
    return mapiter_new(m, (PyObject *)self, NULL, 0, NULL);
}

static PyObject *Call_get_gen(CallObject *self, PyObject *unused)
{
    (void)unused;
    skiff_gen *g = NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = skiff_call_get_gen(self->call, &g, &err);
    Py_END_ALLOW_THREADS if (rc != SKIFF_OK) return fail(rc, &err);
    return geniter_new(g, (PyObject *)self);
}

static PyObject *Call_cancel(CallObject *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"terminate_containers", NULL};
    int term = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|p", names, &term))
        return NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = skiff_call_cancel(self->call, term, &err);
    Py_END_ALLOW_THREADS if (rc != SKIFF_OK) return fail(rc, &err);
    Py_RETURN_NONE;
}

/* The call graph as nested tuples: (input_id, call_id, container_id or None, function, index,
 * status name, [children...]). */
static PyObject *graph_nodes(const skiff_input_info *n, size_t count)
{
    PyObject *l = PyList_New((Py_ssize_t)count);
    for (size_t i = 0; l && i < count; i++) {
        PyObject *kids = graph_nodes(n[i].children, n[i].nchildren);
        PyObject *t = kids ? Py_BuildValue("(sszsnsN)", n[i].input_id, n[i].call_id,
                                           n[i].container_id, n[i].function, (Py_ssize_t)n[i].index,
                                           skiff_input_status_name(n[i].status), kids)
                           : NULL;
        if (!t) {
            Py_CLEAR(l);
            break;
        }
        PyList_SET_ITEM(l, (Py_ssize_t)i, t);
    }
    return l;
}

PyObject *pyskiff_graph(const skiff_input_info *roots, size_t n)
{
    return graph_nodes(roots, n);
}

static PyObject *Call_graph(CallObject *self, PyObject *unused)
{
    (void)unused;
    skiff_input_info *roots = NULL;
    size_t n = 0;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = skiff_call_get_call_graph(self->call, &roots, &n, &err);
    Py_END_ALLOW_THREADS if (rc != SKIFF_OK) return fail(rc, &err);
    PyObject *l = graph_nodes(roots, n);
    skiff_call_graph_free(roots, n);
    return l;
}

static PyObject *Call_get_id(CallObject *self, void *unused)
{
    (void)unused;
    return PyUnicode_FromString(skiff_call_id(self->call));
}

static PyObject *Call_get_kind(CallObject *self, void *unused)
{
    (void)unused;
    return PyLong_FromLong(skiff_call_get_kind(self->call));
}

static PyObject *Call_get_num_inputs(CallObject *self, void *unused)
{
    (void)unused;
    return PyLong_FromSize_t(skiff_call_num_inputs(self->call));
}

static PyMethodDef Call_methods[] = {
    {"get", (PyCFunction)(void (*)(void))Call_get, METH_VARARGS | METH_KEYWORDS,
     "get(timeout=None, index=-1) -> result"},
    {"iter", (PyCFunction)(void (*)(void))Call_iter, METH_VARARGS | METH_KEYWORDS,
     "iter(order_outputs=True, return_exceptions=False) -> MapIter"},
    {"get_gen", (PyCFunction)Call_get_gen, METH_NOARGS, "-> GenIter of a spawned generator"},
    {"cancel", (PyCFunction)(void (*)(void))Call_cancel, METH_VARARGS | METH_KEYWORDS,
     "cancel(terminate_containers=False)"},
    {"graph", (PyCFunction)Call_graph, METH_NOARGS, "the call graph as nested tuples"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Call_getset[] = {
    {"object_id", (getter)Call_get_id, NULL, "the fc- id", NULL},
    {"kind", (getter)Call_get_kind, NULL, "CALL_*", NULL},
    {"num_inputs", (getter)Call_get_num_inputs, NULL, "inputs as last known", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject Call_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "skiff._skiff.FunctionCall",
    .tp_basicsize = sizeof(CallObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)Call_dealloc,
    .tp_getset = Call_getset,
};

/* The method tables, joined with aio.c's twins at module init. */
PyMethodDef *pyskiff_function_methods = Function_methods;
PyMethodDef *pyskiff_call_methods = Call_methods;
