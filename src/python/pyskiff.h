/*
 * pyskiff.h - internals of the CPython extension skiff._skiff (src/python/), shared by its files.
 *
 * The extension is a thin layer over libskiff (include/skiff/skiff.h): every Python object wraps
 * one libskiff handle and holds a reference to the object whose handle it borrows (a function
 * its client, a method its instance, an instance its class), so Python's reference counting frees
 * them in libskiff's order. Blocking calls release the GIL; the _async twins take a Python
 * callable that skiff_client_process (Client.process) calls with the GIL held, on the thread that
 * started the operation: the Python layer (skiff/_aio.py) puts the thread's descriptor on the
 * running asyncio loop with loop.add_reader, so no thread is spent per call.
 *
 * Files: module.c (the module, Client, Cls and Obj, errors), values.c (Python objects <-> skiff
 * values), handles.c (Function, FunctionCall, the map and generator iterators), aio.c (the
 * _async twins), worker.c (Python apps in containers: the trampolines into the worker runtime).
 */
#ifndef SKIFF_PYTHON_PYSKIFF_H
#define SKIFF_PYTHON_PYSKIFF_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <skiff/skiff.h>

/* The key of the one-entry map that carries a pickled Python object as a skiff value:
 * {"$pickle": <bytes>} (docs/python.md). C, CLI and HTTP callers are told they cannot read it. */
#define PYSKIFF_PICKLE_KEY "$pickle"

typedef struct {
    PyObject_HEAD skiff_client *client;
} ClientObject;

typedef struct {
    PyObject_HEAD skiff_function *fn;
    PyObject *owner; /* the Client, or the Obj of a method (keeps the handle's borrow alive) */
    ClientObject *client;
} FunctionObject;

typedef struct {
    PyObject_HEAD skiff_call *call;
    ClientObject *client;
} CallObject;

extern PyTypeObject Client_Type, Function_Type, Call_Type, MapIter_Type, GenIter_Type, Cls_Type,
    Obj_Type;

/* --- module.c --- */
/* Sets the Python exception for a libskiff failure (rc, err): skiff.exception's class of the
 * code, the user's own type for SKIFF_ERR_USER (a builtin, or "module.Class" of a module
 * already imported, else RemoteError), the remote traceback as a note and as .remote_traceback.
 * Returns NULL. */
PyObject *pyskiff_raise(int rc, const skiff_error *err);
/* The exception object pyskiff_raise would raise (a new reference; never NULL unless out of
 * memory). */
PyObject *pyskiff_exception(int rc, const skiff_error *err);

/* --- values.c --- */
/* A new skiff value for o: None, bool, int (64 bits: OverflowError past it), float, str, bytes,
 * bytearray, list/tuple (a list), dict with str keys (a map); anything else pickled as
 * {"$pickle": bytes}. NULL with a Python exception set on failure. */
skiff_value *pyskiff_to_value(PyObject *o);
/* A list value of the items of sequence args (None: empty). */
skiff_value *pyskiff_to_args(PyObject *args);
/* A map value of dict kwargs (None: NULL, no keyword arguments). Sets *ok to 0 on failure. */
skiff_value *pyskiff_to_kwargs(PyObject *kwargs, int *ok);
/* Converts a sequence of Python iterables into *n new skiff lists in *out (an array from
 * PyMem_Calloc, the caller's). 0, or -1 with an exception set (nothing allocated). */
int pyskiff_input_lists(PyObject *iterables, skiff_value ***out, size_t *n);
/* A new Python object for v (a map {"$pickle": bytes} unpickled); NULL with an exception set. */
PyObject *pyskiff_from_value(const skiff_value *v);
/* Like pyskiff_from_value, then frees v (which may be NULL: None). */
PyObject *pyskiff_take_value(skiff_value *v);

/* --- handles.c --- */
/* A new Function object owning fn (freed with it), keeping owner alive. */
PyObject *pyskiff_function_new(skiff_function *fn, PyObject *owner, ClientObject *client);
/* A new FunctionCall object owning call. */
PyObject *pyskiff_call_new(skiff_call *call, ClientObject *client);
/* A call graph as nested tuples (input_id, call_id, container_id or None, function, index,
 * status name, [children]) in a new list; the n roots stay the caller's. NULL with an exception
 * set when out of memory. */
PyObject *pyskiff_graph(const skiff_input_info *roots, size_t n);
/* The blocking methods of Function and FunctionCall (joined with aio.c's by the module). */
extern PyMethodDef *pyskiff_function_methods, *pyskiff_call_methods;

/* --- aio.c --- */
/* The _async methods of Function, FunctionCall and Client: the module joins them to each type's
 * blocking methods before readying the types. gather_async(calls, cb) is a module function. */
extern PyMethodDef pyskiff_function_aio_methods[];
extern PyMethodDef pyskiff_call_aio_methods[];
extern PyMethodDef pyskiff_client_aio_methods[];
PyObject *pyskiff_gather_async(PyObject *self, PyObject *args);

/* --- worker.c --- */
/* worker_main(argv, spec) -> exit status: runs the container runtime on a Python app. */
PyObject *pyskiff_worker_main(PyObject *self, PyObject *args);
/* worker_fail(argv, message, traceback) -> exit status: the app could not be imported. */
PyObject *pyskiff_worker_fail(PyObject *self, PyObject *args);
/* current_input() -> the "in-" id the calling thread runs in a trampoline, or None. */
PyObject *pyskiff_current_input(PyObject *self, PyObject *unused);
/* set_parent(id or None): the parent input of the calls this thread starts from now on. */
PyObject *pyskiff_set_parent(PyObject *self, PyObject *args);

#endif
