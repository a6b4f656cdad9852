/*
 * module.c - the module skiff._skiff: the Client type and how libskiff failures become Python
 * exceptions (see pyskiff.h for the extension's design).
 *
 * Errors: each skiff_code has a class in skiff.exception (looked up by the code's canonical
 * name, e.g. "NotFoundError"), which the Python layer defines so that TimeoutError is also the
 * builtin TimeoutError and ConnectionError the builtin ConnectionError. A function's own failure
 * (SKIFF_ERR_USER) is re-raised with its type when the caller can name it: a builtin exception
 * ("ValueError"), or "module.Qualname" of an exception class in a module the caller has already
 * imported (how Python functions report their exceptions; nothing is imported for it); anything
 * else (a C function's "ParseError") becomes RemoteError whose message starts with the type. The
 * remote traceback is attached as a note (shown under the local traceback) and as the attribute
 * remote_traceback.
 */
#include "pyskiff.h"

static PyObject *exc_module; /* skiff.exception */

/* The class for name in skiff.exception, or RemoteError, or Exception. New reference. */
static PyObject *skiff_class(const char *name)
{
    PyObject *c = PyObject_GetAttrString(exc_module, name);
    if (!c) {
        PyErr_Clear();
        c = PyObject_GetAttrString(exc_module, "Error");
    }
    if (!c) {
        PyErr_Clear();
        Py_INCREF(PyExc_Exception);
        c = PyExc_Exception;
    }
    return c;
}

/* The user's exception class called name, if the caller can name it; NULL (no exception set)
 * otherwise. */
static PyObject *user_class(const char *name)
{
    PyObject *c = NULL;
    const char *dot = strrchr(name, '.');
    if (!dot) {
        PyObject *b = PyEval_GetBuiltins();
        c = b ? PyDict_GetItemString(b, name) : NULL;
        Py_XINCREF(c);
    } else {
        /* Only a module this process already imported: a remote error must not make the caller
         * import (run) a module it names. */
        PyObject *modname = PyUnicode_FromStringAndSize(name, dot - name);
        PyObject *m = modname ? PyImport_GetModule(modname) : NULL;
        Py_XDECREF(modname);
        c = m ? PyObject_GetAttrString(m, dot + 1) : NULL;
        Py_XDECREF(m);
        PyErr_Clear();
    }
    if (c && !(PyType_Check(c) &&
               PyType_IsSubtype((PyTypeObject *)c, (PyTypeObject *)PyExc_Exception))) {
        Py_CLEAR(c);
    }
    return c;
}

static void attach_traceback(PyObject *e, const skiff_error *err)
{
    if (!err || !err->traceback || !*err->traceback)
        return;
    PyObject *tb =
        PyUnicode_DecodeUTF8(err->traceback, (Py_ssize_t)strlen(err->traceback), "replace");
    if (!tb) {
        PyErr_Clear();
        return;
    }
    if (PyObject_SetAttrString(e, "remote_traceback", tb) < 0)
        PyErr_Clear();
    PyObject *note = PyUnicode_FromFormat("Remote traceback:\n%U", tb);
    PyObject *r = note ? PyObject_CallMethod(e, "add_note", "O", note) : NULL;
    if (!r)
        PyErr_Clear();
    Py_XDECREF(r);
    Py_XDECREF(note);
    Py_DECREF(tb);
}

PyObject *pyskiff_exception(int rc, const skiff_error *err)
{
    const char *msg = err && err->message ? err->message : skiff_code_name((skiff_code)rc);
    const char *type = err && err->type ? err->type : skiff_code_name((skiff_code)rc);
    PyObject *cls = NULL, *e = NULL;
    if (rc == SKIFF_ERR_USER)
        cls = user_class(type);
    if (cls) {
        e = PyObject_CallFunction(cls, "s", msg);
        if (!e)
            PyErr_Clear();
    }
    if (!e) {
        Py_XDECREF(cls);
        cls = skiff_class(rc == SKIFF_ERR_USER ? "RemoteError" : skiff_code_name((skiff_code)rc));
        if (rc == SKIFF_ERR_USER) {
            PyObject *s = PyUnicode_FromFormat("%s: %s", type, msg);
            e = s ? PyObject_CallOneArg(cls, s) : NULL;
            Py_XDECREF(s);
        } else
            e = PyObject_CallFunction(cls, "s", msg);
    }
    Py_XDECREF(cls);
    if (!e)
        return NULL;
    PyObject *code = PyLong_FromLong(rc);
    if (!code || PyObject_SetAttrString(e, "skiff_code", code) < 0)
        PyErr_Clear();
    Py_XDECREF(code);
    PyObject *t = PyUnicode_FromString(type);
    if (!t || PyObject_SetAttrString(e, "remote_type", t) < 0)
        PyErr_Clear();
    Py_XDECREF(t);
    attach_traceback(e, err);
    return e;
}

PyObject *pyskiff_raise(int rc, const skiff_error *err)
{
    PyObject *e = pyskiff_exception(rc, err);
    if (e) {
        PyErr_SetObject((PyObject *)Py_TYPE(e), e);
        Py_DECREF(e);
    }
    return NULL;
}

/* --- Client ----------------------------------------------------------------------------------- */

static int Client_init(ClientObject *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"server", "token_id", "token_secret", "connect_timeout", NULL};
    skiff_client_options o = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|zzzd", names, &o.server, &o.token_id,
                                     &o.token_secret, &o.connect_timeout))
        return -1;
    if (self->client) {
        PyErr_SetString(PyExc_RuntimeError, "Client already connected");
        return -1;
    }
    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = skiff_client_connect(&o, &self->client, &err);
    Py_END_ALLOW_THREADS if (rc != SKIFF_OK)
    {
        pyskiff_raise(rc, &err);
        skiff_error_clear(&err);
        return -1;
    }
    return 0;
}

static void Client_dealloc(ClientObject *self)
{
    skiff_client_close(self->client);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int check_client(ClientObject *self)
{
    if (!self->client) {
        PyErr_SetString(PyExc_RuntimeError, "Client is not connected");
        return -1;
    }
    return 0;
}

typedef int (*lookup_fn)(skiff_client *, const char *, const char *, skiff_function **,
                         skiff_error *);

static PyObject *function_by_name(ClientObject *self, PyObject *args, lookup_fn f)
{
    const char *app, *name;
    if (!PyArg_ParseTuple(args, "ss", &app, &name) || check_client(self) < 0)
        return NULL;
    skiff_function *fn;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = f(self->client, app, name, &fn, &err);
    Py_END_ALLOW_THREADS if (rc != SKIFF_OK)
    {
        pyskiff_raise(rc, &err);
        skiff_error_clear(&err);
        return NULL;
    }
    return pyskiff_function_new(fn, (PyObject *)self, self);
}

static PyObject *Client_function_from_name(ClientObject *self, PyObject *args)
{
    return function_by_name(self, args, skiff_function_from_name);
}

static PyObject *Client_function_lookup(ClientObject *self, PyObject *args)
{
    return function_by_name(self, args, skiff_function_lookup);
}

static PyObject *Client_call_from_id(ClientObject *self, PyObject *args)
{
    const char *id;
    if (!PyArg_ParseTuple(args, "s", &id) || check_client(self) < 0)
        return NULL;
    skiff_call *call;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = skiff_call_from_id(self->client, id, &call, &err);
    Py_END_ALLOW_THREADS if (rc != SKIFF_OK)
    {
        pyskiff_raise(rc, &err);
        skiff_error_clear(&err);
        return NULL;
    }
    return pyskiff_call_new(call, self);
}

static PyObject *Client_cls_from_name(ClientObject *self, PyObject *args);

static PyObject *Client_fd(ClientObject *self, PyObject *unused)
{
    (void)unused;
    int fd;
    skiff_error err = SKIFF_ERROR_INIT;
    if (check_client(self) < 0)
        return NULL;
    int rc = skiff_client_fd(self->client, &fd, &err);
    if (rc != SKIFF_OK) {
        pyskiff_raise(rc, &err);
        skiff_error_clear(&err);
        return NULL;
    }
    return PyLong_FromLong(fd);
}

/* Runs the callbacks of the calling thread's completed operations (with the GIL held: process
 * never blocks). Returns how many ran. */
static PyObject *Client_process(ClientObject *self, PyObject *unused)
{
    (void)unused;
    size_t ran = 0;
    if (check_client(self) < 0)
        return NULL;
    int rc = skiff_client_process(self->client, &ran, NULL);
    if (rc != SKIFF_OK)
        ran = 0;
    return PyLong_FromSize_t(ran);
}

static PyObject *Client_pending(ClientObject *self, PyObject *unused)
{
    (void)unused;
    if (check_client(self) < 0)
        return NULL;
    return PyLong_FromSize_t(skiff_client_pending(self->client));
}

static PyObject *Client_release_thread(ClientObject *self, PyObject *unused)
{
    (void)unused;
    if (self->client)
        skiff_client_release_thread(self->client);
    Py_RETURN_NONE;
}

static PyMethodDef Client_methods[] = {
    {"function_from_name", (PyCFunction)Client_function_from_name, METH_VARARGS,
     "function_from_name(app, name) -> Function (lazy)"},
    {"function_lookup", (PyCFunction)Client_function_lookup, METH_VARARGS,
     "function_lookup(app, name) -> Function (asks the server now)"},
    {"call_from_id", (PyCFunction)Client_call_from_id, METH_VARARGS,
     "call_from_id(fc_id) -> FunctionCall"},
    {"cls_from_name", (PyCFunction)Client_cls_from_name, METH_VARARGS,
     "cls_from_name(app, name) -> Cls (lazy)"},
    {"fd", (PyCFunction)Client_fd, METH_NOARGS,
     "the calling thread's pollable descriptor for the asynchronous calls"},
    {"process", (PyCFunction)Client_process, METH_NOARGS,
     "runs the callbacks of the calling thread's completed asynchronous calls"},
    {"pending", (PyCFunction)Client_pending, METH_NOARGS,
     "asynchronous calls of the calling thread not yet completed"},
    {"release_thread", (PyCFunction)Client_release_thread, METH_NOARGS,
     "frees the calling thread's asynchronous state"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject Client_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "skiff._skiff.Client",
    .tp_basicsize = sizeof(ClientObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Client(server=None, token_id=None, token_secret=None, connect_timeout=0): a "
              "connection to a skiff server (defaults: $SKIFF_SERVER, ~/.skiff.toml)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Client_init,
    .tp_dealloc = (destructor)Client_dealloc,
};

/* --- Cls and Obj -------------------------------------------------------------------------------
 * A Cls wraps skiff_cls (borrowing the client); an Obj an instance (borrowing the Cls); method()
 * returns a Function whose owner is the Obj. */

typedef struct {
    PyObject_HEAD skiff_cls *cls;
    ClientObject *client;
} ClsObject;

typedef struct {
    PyObject_HEAD skiff_obj *obj;
    ClsObject *cls;
} ObjObject;

static PyObject *Client_cls_from_name(ClientObject *self, PyObject *args)
{
    const char *app, *name;
    if (!PyArg_ParseTuple(args, "ss", &app, &name) || check_client(self) < 0)
        return NULL;
    skiff_cls *c;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc = skiff_cls_from_name(self->client, app, name, &c, &err);
    if (rc != SKIFF_OK) {
        pyskiff_raise(rc, &err);
        skiff_error_clear(&err);
        return NULL;
    }
    ClsObject *o = PyObject_New(ClsObject, &Cls_Type);
    if (!o) {
        skiff_cls_free(c);
        return NULL;
    }
    o->cls = c;
    Py_INCREF(self);
    o->client = self;
    return (PyObject *)o;
}

static void Cls_dealloc(ClsObject *self)
{
    skiff_cls_free(self->cls);
    Py_XDECREF(self->client);
    PyObject_Free(self);
}

static PyObject *Cls_hydrate(ClsObject *self, PyObject *unused)
{
    (void)unused;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = skiff_cls_hydrate(self->cls, &err);
    Py_END_ALLOW_THREADS if (rc != SKIFF_OK)
    {
        pyskiff_raise(rc, &err);
        skiff_error_clear(&err);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *Cls_instantiate(ClsObject *self, PyObject *args)
{
    PyObject *params = Py_None;
    if (!PyArg_ParseTuple(args, "|O", &params))
        return NULL;
    int ok;
    skiff_value *p = pyskiff_to_kwargs(params, &ok);
    if (!ok)
        return NULL;
    skiff_obj *obj;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc = skiff_cls_instantiate(self->cls, p, &obj, &err);
    skiff_value_free(p);
    if (rc != SKIFF_OK) {
        pyskiff_raise(rc, &err);
        skiff_error_clear(&err);
        return NULL;
    }
    ObjObject *o = PyObject_New(ObjObject, &Obj_Type);
    if (!o) {
        skiff_obj_free(obj);
        return NULL;
    }
    o->obj = obj;
    Py_INCREF(self);
    o->cls = self;
    return (PyObject *)o;
}

static void on_cls_done(void *ud, int rc, const skiff_error *err)
{
    PyObject *cb = ud;
    PyObject *exc = rc != SKIFF_OK ? pyskiff_exception(rc, err) : NULL;
    PyObject *r = PyObject_CallFunctionObjArgs(cb, exc ? exc : Py_None, Py_None, NULL);
    if (!r)
        PyErr_WriteUnraisable(cb);
    Py_XDECREF(r);
    Py_XDECREF(exc);
    Py_DECREF(cb);
}

/* hydrate_async(cb): cb(exc, None) once the class's methods are known. The Cls must not be
 * used by other threads meanwhile (libskiff's rule), which the Python layer's lock ensures. */
static PyObject *Cls_hydrate_async(ClsObject *self, PyObject *args)
{
    PyObject *cb;
    if (!PyArg_ParseTuple(args, "O", &cb))
        return NULL;
    skiff_error err = SKIFF_ERROR_INIT;
    Py_INCREF(cb);
    int rc = skiff_cls_hydrate_async(self->cls, on_cls_done, cb, &err);
    if (rc != SKIFF_OK) {
        Py_DECREF(cb);
        pyskiff_raise(rc, &err);
        skiff_error_clear(&err);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef Cls_methods[] = {
    {"hydrate", (PyCFunction)Cls_hydrate, METH_NOARGS, "looks the class up now"},
    {"hydrate_async", (PyCFunction)Cls_hydrate_async, METH_VARARGS, "hydrate_async(cb)"},
    {"instantiate", (PyCFunction)Cls_instantiate, METH_VARARGS,
     "instantiate(params: dict | None) -> Obj"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject Cls_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "skiff._skiff.Cls",
    .tp_basicsize = sizeof(ClsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)Cls_dealloc,
    .tp_methods = Cls_methods,
};

static void Obj_dealloc(ObjObject *self)
{
    skiff_obj_free(self->obj);
    Py_XDECREF(self->cls);
    PyObject_Free(self);
}

static PyObject *Obj_method(ObjObject *self, PyObject *args)
{
    const char *name;
    if (!PyArg_ParseTuple(args, "s", &name))
        return NULL;
    skiff_function *fn;
    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = skiff_obj_method(self->obj, name, &fn, &err);
    Py_END_ALLOW_THREADS if (rc != SKIFF_OK)
    {
        pyskiff_raise(rc, &err);
        skiff_error_clear(&err);
        return NULL;
    }
    return pyskiff_function_new(fn, (PyObject *)self, self->cls->client);
}

static PyMethodDef Obj_methods[] = {
    {"method", (PyCFunction)Obj_method, METH_VARARGS, "method(name) -> Function"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject Obj_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "skiff._skiff.Obj",
    .tp_basicsize = sizeof(ObjObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)Obj_dealloc,
    .tp_methods = Obj_methods,
};

/* --- module ---------------------------------------------------------------------------------- */

static PyObject *mod_gather(PyObject *self, PyObject *args);

static PyObject *mod_code_name(PyObject *self, PyObject *args)
{
    (void)self;
    int code;
    if (!PyArg_ParseTuple(args, "i", &code))
        return NULL;
    return PyUnicode_FromString(skiff_code_name((skiff_code)code));
}

static PyMethodDef module_methods[] = {
    {"gather", mod_gather, METH_VARARGS, "gather(calls) -> list of results in order"},
    {"gather_async", pyskiff_gather_async, METH_VARARGS, "gather_async(calls, cb)"},
    {"code_name", mod_code_name, METH_VARARGS, "the canonical name of a skiff_code"},
    {"worker_main", pyskiff_worker_main, METH_VARARGS,
     "worker_main(argv, app) -> exit status: runs a container of a Python app"},
    {"current_input", pyskiff_current_input, METH_NOARGS,
     "the input id the calling thread runs in a container, or None"},
    {"set_parent", pyskiff_set_parent, METH_VARARGS,
     "set_parent(input_id or None): the parent of the calls this thread starts"},
    {"worker_fail", pyskiff_worker_fail, METH_VARARGS,
     "worker_fail(argv, message, traceback) -> exit status: the app could not be imported"},
    {NULL, NULL, 0, NULL},
};

static PyObject *mod_gather(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *seq;
    if (!PyArg_ParseTuple(args, "O", &seq))
        return NULL;
    PyObject *fast = PySequence_Fast(seq, "gather wants a sequence of FunctionCall");
    if (!fast)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    if (n == 0) {
        Py_DECREF(fast);
        return PyList_New(0);
    }
    skiff_call **calls = PyMem_Calloc((size_t)n, sizeof *calls);
    skiff_value **results = PyMem_Calloc((size_t)n, sizeof *results);
    PyObject *out = NULL;
    if (!calls || !results) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *c = PySequence_Fast_GET_ITEM(fast, i);
        if (!PyObject_TypeCheck(c, &Call_Type)) {
            PyErr_SetString(PyExc_TypeError, "gather wants FunctionCall objects");
            goto done;
        }
        calls[i] = ((CallObject *)c)->call;
    }
    skiff_error err = SKIFF_ERROR_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = skiff_call_gather(calls, (size_t)n, results, &err);
    Py_END_ALLOW_THREADS if (rc != SKIFF_OK)
    {
        pyskiff_raise(rc, &err);
        skiff_error_clear(&err);
        goto done;
    }
    out = PyList_New(n);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = out ? pyskiff_from_value(results[i]) : NULL;
        skiff_value_free(results[i]);
        if (out && !v)
            Py_CLEAR(out);
        if (out)
            PyList_SET_ITEM(out, i, v);
    }
done:
    PyMem_Free(calls);
    PyMem_Free(results);
    Py_DECREF(fast);
    return out;
}

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "skiff._skiff",
    .m_doc = "skiff's C core for Python: the client (libskiff) and the container runtime",
    .m_size = -1,
    .m_methods = module_methods,
};

/* A new method table: a's entries then b's (both ending with a NULL entry); NULL out of memory. */
static PyMethodDef *join_methods(const PyMethodDef *a, const PyMethodDef *b)
{
    size_t na = 0, nb = 0;
    while (a[na].ml_name)
        na++;
    while (b[nb].ml_name)
        nb++;
    PyMethodDef *t = PyMem_Calloc(na + nb + 1, sizeof *t);
    if (!t)
        return NULL;
    memcpy(t, a, na * sizeof *t);
    memcpy(t + na, b, nb * sizeof *t);
    return t;
}

SKIFF_API void skiff__accept_pickles(void);

PyMODINIT_FUNC PyInit__skiff(void)
{
    skiff__accept_pickles();
    exc_module = PyImport_ImportModule("skiff.exception");
    if (!exc_module)
        return NULL;
    if (!Function_Type.tp_methods) {
        Function_Type.tp_methods =
            join_methods(pyskiff_function_methods, pyskiff_function_aio_methods);
        Call_Type.tp_methods = join_methods(pyskiff_call_methods, pyskiff_call_aio_methods);
        Client_Type.tp_methods = join_methods(Client_methods, pyskiff_client_aio_methods);
        if (!Function_Type.tp_methods || !Call_Type.tp_methods || !Client_Type.tp_methods)
            return PyErr_NoMemory();
    }
    PyTypeObject *types[] = {&Client_Type,  &Function_Type, &Call_Type, &MapIter_Type,
                             &GenIter_Type, &Cls_Type,      &Obj_Type};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (PyType_Ready(types[i]) < 0)
            return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (!m)
        return NULL;
    const char *names[] = {"Client",  "Function", "FunctionCall", "MapIter",
                           "GenIter", "Cls",      "Obj"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        Py_INCREF(types[i]);
        if (PyModule_AddObject(m, names[i], (PyObject *)types[i]) < 0)
            return NULL;
    }
    PyModule_AddIntConstant(m, "KIND_UNKNOWN", SKIFF_FUNCTION_UNKNOWN);
    PyModule_AddIntConstant(m, "KIND_PLAIN", SKIFF_FUNCTION_PLAIN);
    PyModule_AddIntConstant(m, "KIND_GENERATOR", SKIFF_FUNCTION_GENERATOR);
    PyModule_AddIntConstant(m, "KIND_WEB", SKIFF_FUNCTION_WEB);
    PyModule_AddIntConstant(m, "CALL_SINGLE", SKIFF_CALL_SINGLE);
    PyModule_AddIntConstant(m, "CALL_MAP", SKIFF_CALL_MAP);
    PyModule_AddIntConstant(m, "CALL_SPAWN_MAP", SKIFF_CALL_SPAWN_MAP);
    PyModule_AddIntConstant(m, "CALL_GENERATOR", SKIFF_CALL_GENERATOR);
    PyModule_AddStringConstant(m, "VERSION", SKIFF_VERSION);
    return m;
}
