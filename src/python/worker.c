/*
 * worker.c - Python apps in containers (placeholder until the loader lands).
 */
#include "pyskiff.h"

PyObject *pyskiff_worker_main(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    PyErr_SetString(PyExc_NotImplementedError, "Python containers are not built yet");
    return NULL;
}
