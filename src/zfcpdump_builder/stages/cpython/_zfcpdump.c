/* _zfcpdump: the writer's three privileged calls (mount, umount, reboot), built into the static
 * interpreter so the dump environment needs neither ctypes nor libffi. Errors raise OSError
 * with errno, the way os functions do. */
#define PY_SSIZE_T_CLEAN
#include "Python.h"
#include <sys/mount.h>
#include <sys/reboot.h>
#include <unistd.h>

static PyObject *
zfcpdump_mount(PyObject *module, PyObject *args)
{
    const char *source, *target, *fstype;
    unsigned long flags = 0;
    if (!PyArg_ParseTuple(args, "sss|k:mount", &source, &target, &fstype, &flags))
        return NULL;
    if (mount(source, target, fstype, flags, NULL) != 0)
        return PyErr_SetFromErrnoWithFilename(PyExc_OSError, target);
    Py_RETURN_NONE;
}

static PyObject *
zfcpdump_umount(PyObject *module, PyObject *args)
{
    const char *target;
    if (!PyArg_ParseTuple(args, "s:umount", &target))
        return NULL;
    if (umount(target) != 0)
        return PyErr_SetFromErrnoWithFilename(PyExc_OSError, target);
    Py_RETURN_NONE;
}

static PyObject *
zfcpdump_reboot(PyObject *module, PyObject *args)
{
    unsigned int cmd;
    if (!PyArg_ParseTuple(args, "I:reboot", &cmd))
        return NULL;
    sync();
    if (reboot((int)cmd) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyMethodDef zfcpdump_methods[] = {
    {"mount", zfcpdump_mount, METH_VARARGS, "mount(source, target, fstype[, flags])"},
    {"umount", zfcpdump_umount, METH_VARARGS, "umount(target)"},
    {"reboot", zfcpdump_reboot, METH_VARARGS, "reboot(cmd): returns only if it failed"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef zfcpdump_module = {
    PyModuleDef_HEAD_INIT, "_zfcpdump", "mount(2), umount(2) and reboot(2) for the dump writer",
    -1, zfcpdump_methods
};

PyMODINIT_FUNC
PyInit__zfcpdump(void)
{
    return PyModule_Create(&zfcpdump_module);
}
