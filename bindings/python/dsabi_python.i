/* dsabi_python.i - Python entry of the SWIG bindings: the module dsabi.dsabi_swig (the proxy
 * dsabi_swig.py and the extension _dsabi_swig.*.so).
 *
 * The pure-Python package (dsabi/__init__.py and friends) is the public API; this module is its
 * engine room. (It is not called _dsabi because SWIG's proxy classes then refer to the extension
 * as __dsabi inside class bodies, which Python name-mangles.) Python-specific here:
 *   - every call runs with the GIL released, and a pending status raises the exception that
 *     dsabi._errors builds for its code (registered with set_error_factory at import);
 *   - DLPack capsules ("dltensor" -> "used_dltensor" protocol) in and out, with the GIL held;
 *   - a log sink that forwards library messages to a Python callable;
 *   - the callbacks of the data pipeline: build progress (on the calling thread; its exceptions
 *     stop the build and propagate) and custom curriculum schedules (on any thread, loader
 *     workers included: they take the GIL).
 */
%module(package="dsabi") dsabi_swig

%begin %{
#define PY_SSIZE_T_CLEAN
%}

%{
#include <dlpack/dlpack.h>
#include <string.h>
%}

/* ---- errors and the GIL ----------------------------------------------------------------------- */

/* Every wrapper: release the GIL around the call, then turn a pending status into an exception. */
%exception {
    Py_BEGIN_ALLOW_THREADS
    $action
    Py_END_ALLOW_THREADS
    {
        ds_status_t st_ = dsabi_take_status();
        if (st_ != DS_OK) {
            dsabi_py_raise(st_);
            SWIG_fail;
        }
    }
}

/* The helpers below handle Python objects, so they keep the GIL. */
%define DSABI_PY_WITH_GIL(name)
%exception name {
    $action
    {
        ds_status_t st_ = dsabi_take_status();
        if (st_ != DS_OK) {
            dsabi_py_raise(st_);
            SWIG_fail;
        }
        if (PyErr_Occurred()) SWIG_fail;
    }
}
%enddef

DSABI_PY_WITH_GIL(dsabi_set_error_factory)
DSABI_PY_WITH_GIL(dsabi_to_dlpack_capsule)
DSABI_PY_WITH_GIL(dsabi_from_dlpack_capsule)
DSABI_PY_WITH_GIL(dsabi_set_log)
DSABI_PY_WITH_GIL(dsabi_data_build_py) /* releases the GIL itself, around ds_data_build only */
DSABI_PY_WITH_GIL(dsabi_curriculum_options_set_custom)
%newobject dsabi_from_dlpack_capsule;
%newobject dsabi_data_build_py;

/* Calls that may run a custom curriculum schedule on this thread: an exception it raises is
 * re-raised here (instead of being reported as unraisable, as on loader threads). */
%define DSABI_PY_RERAISE_CALLBACKS(name)
%exception name {
    dsabi_py_callback_error_t* previous_ = dsabi_py_capture;
    dsabi_py_callback_error_t captured_ = {NULL, NULL, NULL};
    dsabi_py_capture = &captured_;
    Py_BEGIN_ALLOW_THREADS
    $action
    Py_END_ALLOW_THREADS
    dsabi_py_capture = previous_;
    {
        ds_status_t st_ = dsabi_take_status();
        if (captured_.type) {
            PyErr_Restore(captured_.type, captured_.value, captured_.traceback);
            SWIG_fail;
        }
        if (st_ != DS_OK) {
            dsabi_py_raise(st_);
            SWIG_fail;
        }
    }
}
%enddef
DSABI_PY_RERAISE_CALLBACKS(ds_data_curriculum::m_difficulty)
DSABI_PY_RERAISE_CALLBACKS(ds_data_curriculum::m_update)

%{
/* An exception raised by a Python callback that the library called, kept for the caller. */
typedef struct dsabi_py_callback_error {
    PyObject *type, *value, *traceback;
} dsabi_py_callback_error_t;

/* Where callbacks running on this thread leave their exception (NULL: report it as unraisable). */
static _Thread_local dsabi_py_callback_error_t* dsabi_py_capture;

/* With the GIL held and an exception set: keep it for the caller, or report it. */
static void dsabi_py_callback_failed(PyObject* callback) {
    dsabi_py_callback_error_t* slot = dsabi_py_capture;
    if (slot && !slot->type) PyErr_Fetch(&slot->type, &slot->value, &slot->traceback);
    else PyErr_WriteUnraisable(callback);
    PyErr_Clear();
}
%}

/* The shared part comes before the Python helpers below, which use its status functions; the
 * typemaps and %exception rules above are already in force for everything it declares. */
%include "dsabi_common.i"

%{
/* dsabi._errors.error_for(code, message) -> DsError instance; NULL until the package registers it. */
static PyObject* dsabi_py_error_factory = NULL;

static PyObject* dsabi_py_text(const char* s) {
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
}

/* Raise the exception for status st (the message is taken on this thread, so it is the one of
 * the call that just failed). */
static void dsabi_py_raise(ds_status_t st) {
    PyObject* message = dsabi_py_text(dsabi_error_message());
    if (!message) return;
    if (!dsabi_py_error_factory) {
        PyErr_Format(PyExc_RuntimeError, "dsabi status %d (%s): %U", (int)st, ds_status_str(st), message);
        Py_DECREF(message);
        return;
    }
    PyObject* exc = PyObject_CallFunction(dsabi_py_error_factory, "iN", (int)st, message);
    if (exc) {
        PyErr_SetObject((PyObject*)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
}
%}

/* ---- DLPack capsules --------------------------------------------------------------------------- */

%{
/* A DLManagedTensor that forwards to another one and runs its deleter with the GIL held, releasing
 * a Python object at the same time. Used on import, because producers such as NumPy touch Python
 * objects in their deleter while the library may release the memory from a call that dropped the
 * GIL; and on export of a tensor that wraps Python-owned memory (Tensor.wrap/from_numpy), so that
 * the owner stays alive for as long as a consumer holds the export. */
typedef struct dsabi_py_managed {
    DLManagedTensor outer;
    DLManagedTensor* inner;
    PyObject* keepalive; /* strong reference, or NULL */
} dsabi_py_managed_t;

static void dsabi_py_managed_deleter(DLManagedTensor* self) {
    dsabi_py_managed_t* m = (dsabi_py_managed_t*)self->manager_ctx;
    if (!Py_IsInitialized()) return; /* at interpreter exit: leak rather than touch a dead runtime */
    PyGILState_STATE gil = PyGILState_Ensure();
    if (m->inner && m->inner->deleter) m->inner->deleter(m->inner);
    Py_XDECREF(m->keepalive);
    PyGILState_Release(gil);
    free(m);
}

/* Wrap inner; NULL (DS_ERR_NOMEM pending) if out of memory, inner then untouched. GIL held. */
static DLManagedTensor* dsabi_py_managed_new(DLManagedTensor* inner, PyObject* keepalive) {
    dsabi_py_managed_t* m = (dsabi_py_managed_t*)malloc(sizeof *m);
    if (!m) {
        dsabi_fail(DS_ERR_NOMEM, "out of host memory for a DLPack wrapper");
        return NULL;
    }
    m->outer.dl_tensor = inner->dl_tensor; /* its shape and strides live in inner, which outlives us */
    m->outer.manager_ctx = m;
    m->outer.deleter = dsabi_py_managed_deleter;
    m->inner = inner;
    Py_XINCREF(keepalive);
    m->keepalive = keepalive;
    return &m->outer;
}

/* Destructor of capsules we produce: delete the tensor only if no consumer took it. */
static void dsabi_py_capsule_destructor(PyObject* capsule) {
    if (!PyCapsule_IsValid(capsule, "dltensor")) return; /* renamed "used_dltensor": consumed */
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    DLManagedTensor* m = (DLManagedTensor*)PyCapsule_GetPointer(capsule, "dltensor");
    if (m && m->deleter) m->deleter(m);
    PyErr_Restore(type, value, traceback);
}
%}

%inline %{
/* Register dsabi._errors.error_for, which builds the exception for a (code, message) pair. */
void dsabi_set_error_factory(PyObject* factory) {
    Py_XINCREF(factory);
    Py_XSETREF(dsabi_py_error_factory, factory);
}

/* A "dltensor" capsule sharing t's memory. keepalive (or None) is held until the consumer deletes
 * the tensor. raw_bits exports the elements as unsigned integers of the same width, for dtypes
 * that have no DLPack 0.6 / NumPy equivalent (bf16 -> uint16, fp8 -> uint8). */
PyObject* dsabi_to_dlpack_capsule(ds_tensor_t* t, PyObject* keepalive, bool raw_bits) {
    DLManagedTensor* m = NULL;
    if (!dsabi_ok(ds_tensor_to_dlpack(t, &m))) return NULL;
    if (keepalive != Py_None) {
        DLManagedTensor* wrapped = dsabi_py_managed_new(m, keepalive);
        if (!wrapped) {
            m->deleter(m);
            return NULL;
        }
        m = wrapped;
    }
    if (raw_bits) m->dl_tensor.dtype.code = kDLUInt;
    PyObject* capsule = PyCapsule_New(m, "dltensor", dsabi_py_capsule_destructor);
    if (!capsule) m->deleter(m);
    return capsule;
}

/* Consume a "dltensor" capsule: the new tensor owns the memory, and the capsule is renamed
 * "used_dltensor" so that its producer no longer deletes it. On failure the capsule is untouched. */
ds_tensor_t* dsabi_from_dlpack_capsule(PyObject* capsule) {
    if (!PyCapsule_IsValid(capsule, "dltensor")) {
        dsabi_fail(DS_ERR_INVALID_ARG,
                   PyCapsule_CheckExact(capsule) && PyCapsule_IsValid(capsule, "used_dltensor")
                       ? "this DLPack capsule was already consumed (named \"used_dltensor\")"
                       : "expected a DLPack capsule named \"dltensor\"");
        return NULL;
    }
    DLManagedTensor* src = (DLManagedTensor*)PyCapsule_GetPointer(capsule, "dltensor");
    DLManagedTensor* m = dsabi_py_managed_new(src, NULL);
    if (!m) return NULL;
    ds_tensor_t* t = NULL;
    if (!dsabi_ok(ds_tensor_from_dlpack(m, &t))) {
        free(m->manager_ctx); /* ownership stays with the capsule */
        return NULL;
    }
    PyCapsule_SetName(capsule, "used_dltensor");
    return t;
}
%}

/* ---- log sink ---------------------------------------------------------------------------------- */

%{
static PyObject* dsabi_py_log_callback = NULL; /* callable(level: int, message: str) */

static void dsabi_py_log_sink(int32_t level, const char* message, void* user_data) {
    (void)user_data;
    if (!Py_IsInitialized()) return;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject* callback = dsabi_py_log_callback;
    if (callback) {
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback); /* a call may log while an exception is pending */
        Py_INCREF(callback);
        PyObject* text = dsabi_py_text(message);
        PyObject* r = text ? PyObject_CallFunction(callback, "iN", (int)level, text) : NULL;
        if (!r) PyErr_WriteUnraisable(callback);
        Py_XDECREF(r);
        Py_DECREF(callback);
        PyErr_Restore(type, value, traceback);
    }
    PyGILState_Release(gil);
}
%}

%inline %{
/* Route library messages of level <= max_level to callback(level, message), or back to the
 * default stderr sink when callback is None. */
void dsabi_set_log(PyObject* callback, int32_t max_level) {
    PyObject* previous = dsabi_py_log_callback;
    if (callback == Py_None) {
        if (!dsabi_ok(ds_lib_set_log(NULL, NULL, max_level))) return;
        dsabi_py_log_callback = NULL;
    } else {
        Py_INCREF(callback);
        dsabi_py_log_callback = callback;
        if (!dsabi_ok(ds_lib_set_log(dsabi_py_log_sink, NULL, max_level))) {
            dsabi_py_log_callback = previous;
            Py_DECREF(callback);
            return;
        }
    }
    Py_XDECREF(previous);
}
%}


/* ---- data pipeline callbacks ------------------------------------------------------------------ */

%{
/* ds_data_progress_fn -> callback(bytes_done, bytes_total, documents, tokens). The build runs on the
 * thread that called it, which waits with the GIL released; the callback takes it. It stops the
 * build by returning False or raising (Ctrl-C included: signals are checked at every call). */
static int32_t dsabi_py_progress(uint64_t done, uint64_t total, uint64_t documents, uint64_t tokens, void* user_data) {
    PyObject* callback = (PyObject*)user_data;
    PyGILState_STATE gil = PyGILState_Ensure();
    int32_t stop = 1;
    if (PyErr_CheckSignals() == 0) {
        PyObject* r = PyObject_CallFunction(callback, "KKKK", (unsigned long long)done, (unsigned long long)total,
                                            (unsigned long long)documents, (unsigned long long)tokens);
        if (r) {
            stop = r == Py_False;
            Py_DECREF(r);
        }
    }
    if (PyErr_Occurred()) dsabi_py_callback_failed(callback);
    PyGILState_Release(gil);
    return stop;
}

/* ds_data_difficulty_fn -> callback(step) -> int. Runs on whichever thread asks: a loader worker,
 * or the caller of Curriculum.difficulty / update (which re-raise its exceptions; elsewhere they
 * are reported as unraisable and the difficulty is 0). */
static int64_t dsabi_py_difficulty(int64_t step, void* user_data) {
    PyObject* callback = (PyObject*)user_data;
    if (!Py_IsInitialized()) return 0;
    PyGILState_STATE gil = PyGILState_Ensure();
    int64_t difficulty = 0;
    PyObject* r = PyObject_CallFunction(callback, "L", (long long)step);
    if (r) {
        difficulty = (int64_t)PyLong_AsLongLong(r);
        Py_DECREF(r);
    }
    if (PyErr_Occurred()) {
        dsabi_py_callback_failed(callback);
        difficulty = 0;
    }
    PyGILState_Release(gil);
    return difficulty;
}
%}

%inline %{
/* ds_data_build with progress (a callable, or None) reported to Python; see dsabi_py_progress. */
ds_data_build_stats_t* dsabi_data_build_py(const char* out_path, const char* const* paths, int32_t n_paths,
                                           ds_data_build_options_t* opts, const ds_data_tokenizer_t* tokenizer,
                                           const char* delimiter, PyObject* progress) {
    dsabi_py_callback_error_t captured = {NULL, NULL, NULL};
    dsabi_py_callback_error_t* previous = dsabi_py_capture;
    if (progress != Py_None) {
        opts->progress = dsabi_py_progress;
        opts->progress_user_data = progress; /* borrowed: the caller holds it during the call */
    }
    dsabi_py_capture = &captured;
    ds_data_build_stats_t* stats;
    Py_BEGIN_ALLOW_THREADS
    stats = dsabi_data_build_with(out_path, paths, n_paths, opts, tokenizer, delimiter);
    Py_END_ALLOW_THREADS
    dsabi_py_capture = previous;
    opts->progress = NULL;
    opts->progress_user_data = NULL;
    if (captured.type) { /* the callback's exception stopped the build: it wins over DS_ABORTED */
        dsabi_take_status();
        free(stats);
        PyErr_Restore(captured.type, captured.value, captured.traceback);
        return NULL;
    }
    return stats;
}

/* Make fn(step) -> int the custom schedule of opts (None removes it). fn is borrowed: the Python
 * Curriculum keeps it alive for as long as the curriculum and the loaders using it exist. */
void dsabi_curriculum_options_set_custom(ds_data_curriculum_options_t* opts, PyObject* fn) {
    opts->custom_fn = fn == Py_None ? NULL : dsabi_py_difficulty;
    opts->custom_user_data = fn == Py_None ? NULL : fn;
}
%}
