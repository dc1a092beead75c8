/* buffers.i - strings and arrays crossing the boundary.
 *
 * - String results are returned by the helpers as a malloc'd char* marked %newobject: the target
 *   language copies it into its own string, then newfree releases it. Strings the library allocates
 *   (char** out_json) are moved into binding memory at once by dsabi_adopt_string, so that ds_free
 *   releases exactly what the library allocated and free() what the binding did.
 * - (buf, cap, &len) outputs use the two-call protocol in dsabi_read_string below.
 * - Dimension lists enter as (const int64_t* dims, int32_t ndims): a Python sequence of ints, a Java
 *   long[] or a Go []int64. An empty or missing list passes (NULL, 0), which ds_tensor_wrap reads as
 *   "C-contiguous strides". The library copies dims during the call and keeps no pointer to them,
 *   so Go may pass its own slice memory here.
 */

%typemap(newfree) char* "free($1);";

%{
#include <stdlib.h>
#include <string.h>

/* Copy a library-allocated string into malloc'd memory and release the original with ds_free.
 * Returns NULL (with DS_ERR_NOMEM pending) if the copy cannot be made. */
static char* dsabi_adopt_string(char* lib_owned) {
    size_t n = strlen(lib_owned) + 1;
    char* copy = (char*)malloc(n);
    if (copy) memcpy(copy, lib_owned, n);
    else dsabi_fail(DS_ERR_NOMEM, "out of host memory for a %zu-byte string", n);
    ds_free(lib_owned);
    return copy;
}

/* Two-call read of a (buf, cap, &len) string output: ask for the size, then fetch. Returns a
 * malloc'd string, or NULL with the status pending. */
typedef ds_status_t (*dsabi_string_reader)(const void* obj, const char* key, char* buf, uint64_t cap,
                                           uint64_t* len);

static char* dsabi_read_string(dsabi_string_reader read, const void* obj, const char* key) {
    uint64_t len = 0;
    ds_status_t st = read(obj, key, NULL, 0, &len);
    if (st != DS_ERR_BUFFER_TOO_SMALL && !dsabi_ok(st)) return NULL;
    for (;;) {
        char* buf = (char*)malloc(len ? (size_t)len : 1);
        if (!buf) {
            dsabi_fail(DS_ERR_NOMEM, "out of host memory for a %llu-byte string", (unsigned long long)len);
            return NULL;
        }
        uint64_t need = 0;
        st = read(obj, key, buf, len, &need);
        if (st == DS_OK) return buf;
        free(buf);
        if (st != DS_ERR_BUFFER_TOO_SMALL || need <= len) {
            dsabi_ok(st);
            return NULL;
        }
        len = need; /* the value cannot change (configs are immutable), but be safe */
    }
}
%}

/* ---- (const int64_t* dims, int32_t ndims) ------------------------------------------------------ */

#if defined(SWIGPYTHON)

%typemap(in) (const int64_t* dims, int32_t ndims) {
    $1 = NULL;
    $2 = 0;
    if ($input != Py_None) {
        PyObject* seq = PySequence_Fast($input, "expected a sequence of integers");
        if (!seq) SWIG_fail;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        if (n > 64) {
            Py_DECREF(seq);
            PyErr_Format(PyExc_ValueError, "%zd dimensions is far above DS_TENSOR_MAX_DIMS (%d)", n,
                         DS_TENSOR_MAX_DIMS);
            SWIG_fail;
        }
        $1 = (int64_t*)malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
        if (!$1) {
            Py_DECREF(seq);
            PyErr_NoMemory();
            SWIG_fail;
        }
        for (Py_ssize_t i = 0; i < n; ++i) {
            $1[i] = (int64_t)PyLong_AsLongLong(PySequence_Fast_GET_ITEM(seq, i));
            if ($1[i] == -1 && PyErr_Occurred()) {
                Py_DECREF(seq);
                SWIG_fail;
            }
        }
        Py_DECREF(seq);
        $2 = (int32_t)n;
    }
}
%typemap(freearg) (const int64_t* dims, int32_t ndims) { free($1); }
%typemap(typecheck, precedence=SWIG_TYPECHECK_INT64_ARRAY) (const int64_t* dims, int32_t ndims) {
    $1 = $input == Py_None || PySequence_Check($input);
}

#elif defined(SWIGJAVA)

%typemap(jni) (const int64_t* dims, int32_t ndims) "jlongArray"
%typemap(jtype) (const int64_t* dims, int32_t ndims) "long[]"
%typemap(jstype) (const int64_t* dims, int32_t ndims) "long[]"
%typemap(javain) (const int64_t* dims, int32_t ndims) "$javainput"
%typemap(in) (const int64_t* dims, int32_t ndims) {
    $1 = NULL;
    $2 = 0;
    if ($input) {
        $2 = (int32_t)(*jenv)->GetArrayLength(jenv, $input);
        $1 = (int64_t*)(*jenv)->GetLongArrayElements(jenv, $input, NULL);
        if (!$1) return $null; /* OutOfMemoryError is pending */
    }
}
%typemap(freearg) (const int64_t* dims, int32_t ndims) {
    if ($1) (*jenv)->ReleaseLongArrayElements(jenv, $input, (jlong*)$1, JNI_ABORT);
}

#elif defined(SWIGGO)

%typemap(gotype) (const int64_t* dims, int32_t ndims) "[]int64"
%typemap(in) (const int64_t* dims, int32_t ndims) {
    $1 = (int64_t*)$input.array;
    $2 = (int32_t)$input.len;
}

#endif

%apply (const int64_t* dims, int32_t ndims) { (const int64_t* strides, int32_t nstrides) };
