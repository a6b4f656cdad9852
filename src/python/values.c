/*
 * values.c - Python objects <-> skiff values (docs/python.md, "Values").
 *
 * The skiff value types are the lingua franca of C and Python apps, the CLI and HTTP: None,
 * bool, int (64 bits), float, str, bytes, list and dict with str keys map onto them one to one
 * (a tuple travels as a list). Any other object, or a dict with other keys, travels pickled in
 * the one-entry map {"$pickle": <bytes>}: a Python caller and a Python function unpickle it;
 * libskiff refuses a result holding one to every process that did not call
 * skiff__accept_pickles (this extension does, at import) with a DeserializationError, and the
 * server's HTTP side refuses them both ways, so a C program never mistakes one for data. An int
 * past 64 bits is an OverflowError, not a pickle: a C peer could not read it either, and silently
 * changing its type would surprise.
 */
#include "pyskiff.h"

/* How deep a value may nest: as the codec's limit (deeper values fail to encode anyway). */
#define MAX_DEPTH 64

static PyObject *pickle_dumps, *pickle_loads;

/* Imports pickle once. 0, or -1 with an exception set. */
static int pickle_init(void)
{
    if (pickle_dumps)
        return 0;
    PyObject *m = PyImport_ImportModule("pickle");
    if (!m)
        return -1;
    pickle_dumps = PyObject_GetAttrString(m, "dumps");
    pickle_loads = PyObject_GetAttrString(m, "loads");
    Py_DECREF(m);
    return pickle_dumps && pickle_loads ? 0 : -1;
}

static skiff_value *nomem(void)
{
    PyErr_NoMemory();
    return NULL;
}

static skiff_value *pickled(PyObject *o)
{
    if (pickle_init() < 0)
        return NULL;
    PyObject *b = PyObject_CallFunctionObjArgs(pickle_dumps, o, NULL);
    if (!b)
        return NULL;
    skiff_value *m = skiff_value_map();
    skiff_value *v = skiff_value_bytes(PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b));
    Py_DECREF(b);
    if (!m || !v || skiff_map_set(m, PYSKIFF_PICKLE_KEY, v) != SKIFF_OK) {
        skiff_value_free(m);
        return nomem();
    }
    return m;
}

static bool str_keys(PyObject *d)
{
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (PyDict_Next(d, &pos, &k, &v))
        if (!PyUnicode_Check(k))
            return false;
    return true;
}

static skiff_value *convert(PyObject *o, int depth);

static skiff_value *convert_seq(PyObject *o, int depth)
{
    PyObject *fast = PySequence_Fast(o, "not a sequence");
    if (!fast)
        return NULL;
    skiff_value *l = skiff_value_list();
    if (!l) {
        Py_DECREF(fast);
        return nomem();
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    for (Py_ssize_t i = 0; i < n; i++) {
        skiff_value *item = convert(PySequence_Fast_GET_ITEM(fast, i), depth + 1);
        if (!item || skiff_list_append(l, item) != SKIFF_OK) {
            if (item)
                PyErr_NoMemory();
            skiff_value_free(l);
            Py_DECREF(fast);
            return NULL;
        }
    }
    Py_DECREF(fast);
    return l;
}

static skiff_value *convert_dict(PyObject *o, int depth)
{
    skiff_value *m = skiff_value_map();
    if (!m)
        return nomem();
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (PyDict_Next(o, &pos, &k, &v)) {
        const char *key = PyUnicode_AsUTF8(k);
        skiff_value *item = key ? convert(v, depth + 1) : NULL;
        if (!item || skiff_map_set(m, key, item) != SKIFF_OK) {
            if (item)
                PyErr_NoMemory();
            skiff_value_free(m);
            return NULL;
        }
    }
    return m;
}

static skiff_value *convert(PyObject *o, int depth)
{
    if (depth > MAX_DEPTH) {
        PyErr_SetString(PyExc_ValueError, "value nested too deeply for a skiff value");
        return NULL;
    }
    skiff_value *v = NULL;
    if (o == Py_None) {
        v = skiff_value_nil();
    } else if (PyBool_Check(o)) {
        v = skiff_value_bool(o == Py_True);
    } else if (PyLong_CheckExact(o)) {
        int overflow = 0;
        long long i = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (overflow) {
            PyErr_SetString(PyExc_OverflowError,
                            "int does not fit in 64 bits (skiff ints are signed 64-bit)");
            return NULL;
        }
        if (i == -1 && PyErr_Occurred())
            return NULL;
        v = skiff_value_int(i);
    } else if (PyFloat_CheckExact(o)) {
        v = skiff_value_double(PyFloat_AS_DOUBLE(o));
    } else if (PyUnicode_CheckExact(o)) {
        Py_ssize_t len;
        const char *s = PyUnicode_AsUTF8AndSize(o, &len);
        if (!s)
            return NULL;
        v = skiff_value_stringn(s, (size_t)len);
    } else if (PyBytes_CheckExact(o)) {
        v = skiff_value_bytes(PyBytes_AS_STRING(o), (size_t)PyBytes_GET_SIZE(o));
    } else if (PyByteArray_CheckExact(o)) {
        v = skiff_value_bytes(PyByteArray_AS_STRING(o), (size_t)PyByteArray_GET_SIZE(o));
    } else if (PyList_CheckExact(o) || PyTuple_CheckExact(o)) {
        return convert_seq(o, depth);
    } else if (PyDict_CheckExact(o) && str_keys(o)) {
        return convert_dict(o, depth);
    } else {
        return pickled(o);
    }
    return v ? v : nomem();
}

skiff_value *pyskiff_to_value(PyObject *o)
{
    return convert(o, 0);
}

skiff_value *pyskiff_to_args(PyObject *args)
{
    if (!args || args == Py_None) {
        skiff_value *l = skiff_value_list();
        return l ? l : nomem();
    }
    if (!PyList_Check(args) && !PyTuple_Check(args)) {
        PyErr_SetString(PyExc_TypeError, "arguments must be a tuple or list");
        return NULL;
    }
    return convert_seq(args, 0);
}

skiff_value *pyskiff_to_kwargs(PyObject *kwargs, int *ok)
{
    *ok = 1;
    if (!kwargs || kwargs == Py_None || (PyDict_Check(kwargs) && PyDict_GET_SIZE(kwargs) == 0))
        return NULL;
    if (!PyDict_Check(kwargs) || !str_keys(kwargs)) {
        PyErr_SetString(PyExc_TypeError, "keyword arguments must be a dict with str keys");
        *ok = 0;
        return NULL;
    }
    skiff_value *m = convert_dict(kwargs, 0);
    if (!m)
        *ok = 0;
    return m;
}

static PyObject *unpickle(const skiff_value *b)
{
    if (pickle_init() < 0)
        return NULL;
    size_t len;
    const void *p = skiff_value_get_bytes(b, &len);
    PyObject *bytes = PyBytes_FromStringAndSize(p, (Py_ssize_t)len);
    if (!bytes)
        return NULL;
    PyObject *o = PyObject_CallFunctionObjArgs(pickle_loads, bytes, NULL);
    Py_DECREF(bytes);
    return o;
}

PyObject *pyskiff_from_value(const skiff_value *v)
{
    switch (skiff_value_type(v)) {
    case SKIFF_NIL:
        Py_RETURN_NONE;
    case SKIFF_BOOL:
        return PyBool_FromLong(skiff_value_get_bool(v));
    case SKIFF_INT:
        return PyLong_FromLongLong(skiff_value_get_int(v));
    case SKIFF_DOUBLE:
        return PyFloat_FromDouble(skiff_value_get_double(v));
    case SKIFF_STRING: {
        size_t len;
        const char *s = skiff_value_get_string(v, &len);
        return PyUnicode_DecodeUTF8(s, (Py_ssize_t)len, "surrogateescape");
    }
    case SKIFF_BYTES: {
        size_t len;
        const void *p = skiff_value_get_bytes(v, &len);
        return PyBytes_FromStringAndSize(p, (Py_ssize_t)len);
    }
    case SKIFF_LIST: {
        size_t n = skiff_list_len(v);
        PyObject *l = PyList_New((Py_ssize_t)n);
        for (size_t i = 0; l && i < n; i++) {
            PyObject *item = pyskiff_from_value(skiff_list_get(v, i));
            if (!item) {
                Py_CLEAR(l);
                break;
            }
            PyList_SET_ITEM(l, (Py_ssize_t)i, item);
        }
        return l;
    }
    case SKIFF_MAP: {
        size_t n = skiff_map_len(v);
        if (n == 1 && !strcmp(skiff_map_key(v, 0), PYSKIFF_PICKLE_KEY) &&
            skiff_value_type(skiff_map_value(v, 0)) == SKIFF_BYTES)
            return unpickle(skiff_map_value(v, 0));
        PyObject *d = PyDict_New();
        for (size_t i = 0; d && i < n; i++) {
            PyObject *item = pyskiff_from_value(skiff_map_value(v, i));
            if (!item || PyDict_SetItemString(d, skiff_map_key(v, i), item) < 0)
                Py_CLEAR(d);
            Py_XDECREF(item);
        }
        return d;
    }
    }
    PyErr_SetString(PyExc_ValueError, "unknown skiff value type");
    return NULL;
}

PyObject *pyskiff_take_value(skiff_value *v)
{
    PyObject *o = pyskiff_from_value(v);
    skiff_value_free(v);
    return o;
}

/* Converts a sequence of Python iterables into n new skiff lists (*out, PyMem). 0, or -1 with an
 * exception set. */
int pyskiff_input_lists(PyObject *iterables, skiff_value ***out, size_t *n)
{
    PyObject *fast = PySequence_Fast(iterables, "map wants a sequence of iterables");
    if (!fast)
        return -1;
    Py_ssize_t k = PySequence_Fast_GET_SIZE(fast);
    skiff_value **lists = PyMem_Calloc(k ? (size_t)k : 1, sizeof *lists);
    if (!lists) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < k; i++) {
        PyObject *seq = PySequence_List(PySequence_Fast_GET_ITEM(fast, i));
        lists[i] = seq ? pyskiff_to_args(seq) : NULL;
        Py_XDECREF(seq);
        if (!lists[i]) {
            for (Py_ssize_t j = 0; j < i; j++)
                skiff_value_free(lists[j]);
            PyMem_Free(lists);
            Py_DECREF(fast);
            return -1;
        }
    }
    Py_DECREF(fast);
    *out = lists;
    *n = (size_t)k;
    return 0;
}
