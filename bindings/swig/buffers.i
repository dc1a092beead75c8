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
 *   so Go may pass its own slice memory here. Curricula take their discrete schedules the same way.
 * - Raw text enters as (const char* text, uint64_t text_len), NULs and invalid UTF-8 included: a
 *   Python str (as UTF-8) or bytes-like object, a Java byte[], a Go string (call-scoped Go memory,
 *   which holds no Go pointers).
 * - Path lists enter as (const char* const* paths, int32_t n_paths): a Python sequence of str, a
 *   Java String[] (UTF-8), a Go []string (joined into one NUL-separated string on the Go side, as
 *   cgo may not pass a slice of strings: it holds Go pointers).
 * - Tensor lists enter as (ds_tensor_t* const* tensors, int32_t n_tensors): a Python sequence of
 *   TensorHandle, a Java long[] and a Go []uintptr of handle addresses (the caller keeps the handles
 *   alive during the call).
 * - Arrays coming out of the library (token ids, sample indices, decoded bytes) are returned as new
 *   CPU tensors, which each language already exchanges with its own arrays (data.i).
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

%apply (const int64_t* dims, int32_t ndims) {
    (const int64_t* difficulty, int32_t n_difficulty), (const int64_t* max_step, int32_t n_max_step)
};

/* ---- (const char* text, uint64_t text_len) ------------------------------------------------------ */

#if defined(SWIGPYTHON)

%typemap(in) (const char* text, uint64_t text_len) (Py_buffer view, int has_view = 0) {
    if (PyUnicode_Check($input)) {
        Py_ssize_t n = 0;
        $1 = (char*)PyUnicode_AsUTF8AndSize($input, &n); /* owned by the str, which outlives the call */
        if (!$1) SWIG_fail;
        $2 = (uint64_t)n;
    } else {
        if (PyObject_GetBuffer($input, &view, PyBUF_SIMPLE) < 0) SWIG_fail; /* TypeError: not bytes-like */
        has_view = 1;
        $1 = (char*)view.buf;
        $2 = (uint64_t)view.len;
    }
}
%typemap(freearg) (const char* text, uint64_t text_len) {
    if (has_view$argnum) PyBuffer_Release(&view$argnum);
}

#elif defined(SWIGJAVA)

%typemap(jni) (const char* text, uint64_t text_len) "jbyteArray"
%typemap(jtype) (const char* text, uint64_t text_len) "byte[]"
%typemap(jstype) (const char* text, uint64_t text_len) "byte[]"
%typemap(javain) (const char* text, uint64_t text_len) "$javainput"
%typemap(in) (const char* text, uint64_t text_len) {
    if (!$input) {
        SWIG_JavaThrowException(jenv, SWIG_JavaNullPointerException, "null text");
        return $null;
    }
    $2 = (uint64_t)(*jenv)->GetArrayLength(jenv, $input);
    $1 = (char*)(*jenv)->GetByteArrayElements(jenv, $input, NULL);
    if (!$1) return $null; /* OutOfMemoryError is pending */
}
%typemap(freearg) (const char* text, uint64_t text_len) {
    if ($1) (*jenv)->ReleaseByteArrayElements(jenv, $input, (jbyte*)$1, JNI_ABORT);
}

#elif defined(SWIGGO)

%typemap(gotype) (const char* text, uint64_t text_len) "string"
%typemap(in) (const char* text, uint64_t text_len) {
    $1 = (char*)$input.p;
    $2 = (uint64_t)$input.n;
}

#endif

/* ---- (const char* const* paths, int32_t n_paths) ------------------------------------------------ */

%{
/* A list of n malloc'd strings; dsabi_free_strings releases it (NULL-safe). */
static void dsabi_free_strings(char** strings, int32_t n) {
    if (!strings) return;
    for (int32_t i = 0; i < n; ++i) free(strings[i]);
    free(strings);
}
%}

#if defined(SWIGPYTHON)

%typemap(in) (const char* const* paths, int32_t n_paths) (char** path_list = NULL, int32_t path_count = 0) {
    PyObject* seq = PySequence_Fast($input, "expected a sequence of paths (str)");
    if (!seq) SWIG_fail;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    path_list = (char**)calloc((size_t)(n ? n : 1), sizeof(char*));
    if (!path_list) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        SWIG_fail;
    }
    for (Py_ssize_t i = 0; i < n; ++i) {
        Py_ssize_t len = 0;
        const char* s = PyUnicode_AsUTF8AndSize(PySequence_Fast_GET_ITEM(seq, i), &len);
        if (s) path_list[i] = (char*)malloc((size_t)len + 1);
        if (!s || !path_list[i]) {
            if (s) PyErr_NoMemory();
            Py_DECREF(seq);
            SWIG_fail;
        }
        memcpy(path_list[i], s, (size_t)len + 1);
        path_count = (int32_t)(i + 1);
    }
    Py_DECREF(seq);
    $1 = ($1_ltype)path_list;
    $2 = (int32_t)n;
}
%typemap(freearg) (const char* const* paths, int32_t n_paths) { dsabi_free_strings(path_list$argnum, path_count$argnum); }

#elif defined(SWIGJAVA)

%typemap(jni) (const char* const* paths, int32_t n_paths) "jobjectArray"
%typemap(jtype) (const char* const* paths, int32_t n_paths) "byte[][]"
%typemap(jstype) (const char* const* paths, int32_t n_paths) "String[]"
%typemap(javain) (const char* const* paths, int32_t n_paths) "Utf8.encodeAll($javainput)"
%typemap(in) (const char* const* paths, int32_t n_paths) (char** path_list = NULL, int32_t path_count = 0) {
    if (!$input) {
        SWIG_JavaThrowException(jenv, SWIG_JavaNullPointerException, "null path list");
        return $null;
    }
    jsize n = (*jenv)->GetArrayLength(jenv, $input);
    path_list = (char**)calloc((size_t)(n ? n : 1), sizeof(char*));
    if (!path_list) {
        SWIG_JavaThrowException(jenv, SWIG_JavaOutOfMemoryError, "path list");
        return $null;
    }
    for (jsize i = 0; i < n; ++i) {
        jbyteArray item = (jbyteArray)(*jenv)->GetObjectArrayElement(jenv, $input, i);
        if (!item) {
            dsabi_free_strings(path_list, path_count);
            SWIG_JavaThrowException(jenv, SWIG_JavaNullPointerException, "null path in the list");
            return $null;
        }
        jsize len = (*jenv)->GetArrayLength(jenv, item);
        path_list[i] = (char*)malloc((size_t)len + 1);
        if (!path_list[i]) {
            dsabi_free_strings(path_list, path_count);
            SWIG_JavaThrowException(jenv, SWIG_JavaOutOfMemoryError, "path list");
            return $null;
        }
        (*jenv)->GetByteArrayRegion(jenv, item, 0, len, (jbyte*)path_list[i]);
        path_list[i][len] = '\0';
        (*jenv)->DeleteLocalRef(jenv, item);
        path_count = (int32_t)(i + 1);
    }
    $1 = ($1_ltype)path_list;
    $2 = (int32_t)n;
}
%typemap(freearg) (const char* const* paths, int32_t n_paths) { dsabi_free_strings(path_list$argnum, path_count$argnum); }

#elif defined(SWIGGO)

/* Go joins the paths into one string, each one followed by a NUL (paths cannot contain NUL). */
%typemap(gotype) (const char* const* paths, int32_t n_paths) "[]string"
%typemap(imtype) (const char* const* paths, int32_t n_paths) "string"
%typemap(goin) (const char* const* paths, int32_t n_paths) {
    $result = swigJoinPaths($input)
}
%typemap(in) (const char* const* paths, int32_t n_paths) (char** path_list = NULL, int32_t path_count = 0) {
    const char* p = (const char*)$input.p;
    const char* end = p + $input.n;
    int32_t n = 0;
    for (const char* q = p; q < end; ++q) n += *q == '\0';
    path_list = (char**)calloc((size_t)(n ? n : 1), sizeof(char*));
    for (int32_t i = 0; path_list && i < n; ++i) {
        size_t len = strlen(p); /* each entry ends with a NUL inside the Go string */
        path_list[i] = (char*)malloc(len + 1);
        if (!path_list[i]) break;
        memcpy(path_list[i], p, len + 1);
        p += len + 1;
        path_count = i + 1;
    }
    if (!path_list || path_count != n) {
        dsabi_fail(DS_ERR_NOMEM, "out of host memory for a list of %d paths", n);
        n = -1; /* the helpers check n_paths >= 0 first and return */
    }
    $1 = ($1_ltype)path_list;
    $2 = n;
}
%typemap(freearg) (const char* const* paths, int32_t n_paths) { dsabi_free_strings(path_list$argnum, path_count$argnum); }
%insert(go_wrapper) %{
func swigJoinPaths(paths []string) string {
	n := 0
	for _, p := range paths {
		n += len(p) + 1
	}
	b := make([]byte, 0, n)
	for _, p := range paths {
		b = append(append(b, p...), 0)
	}
	return string(b)
}
%}

#endif

/* ---- (ds_tensor_t* const* tensors, int32_t n_tensors) --------------------------------------------- */

#if defined(SWIGPYTHON)

%typemap(in) (ds_tensor_t* const* tensors, int32_t n_tensors) (ds_tensor_t** tensor_list = NULL) {
    PyObject* seq = PySequence_Fast($input, "expected a sequence of tensors");
    if (!seq) SWIG_fail;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    tensor_list = (ds_tensor_t**)calloc((size_t)(n ? n : 1), sizeof(ds_tensor_t*));
    if (!tensor_list) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        SWIG_fail;
    }
    for (Py_ssize_t i = 0; i < n; ++i) {
        void* p = NULL;
        if (!SWIG_IsOK(SWIG_ConvertPtr(PySequence_Fast_GET_ITEM(seq, i), &p, $descriptor(ds_tensor_t*), 0))) {
            Py_DECREF(seq);
            PyErr_Format(PyExc_TypeError, "item %zd of the sequence is not a TensorHandle", i);
            SWIG_fail;
        }
        tensor_list[i] = (ds_tensor_t*)p;
    }
    Py_DECREF(seq); /* the caller's sequence keeps the handles alive */
    $1 = ($1_ltype)tensor_list;
    $2 = (int32_t)n;
}
%typemap(freearg) (ds_tensor_t* const* tensors, int32_t n_tensors) { free(tensor_list$argnum); }

#elif defined(SWIGJAVA)

%typemap(jni) (ds_tensor_t* const* tensors, int32_t n_tensors) "jlongArray"
%typemap(jtype) (ds_tensor_t* const* tensors, int32_t n_tensors) "long[]"
%typemap(jstype) (ds_tensor_t* const* tensors, int32_t n_tensors) "long[]"
%typemap(javain) (ds_tensor_t* const* tensors, int32_t n_tensors) "$javainput"
%typemap(in) (ds_tensor_t* const* tensors, int32_t n_tensors) (ds_tensor_t** tensor_list = NULL) {
    if (!$input) {
        SWIG_JavaThrowException(jenv, SWIG_JavaNullPointerException, "null tensor list");
        return $null;
    }
    jsize n = (*jenv)->GetArrayLength(jenv, $input);
    tensor_list = (ds_tensor_t**)calloc((size_t)(n ? n : 1), sizeof(ds_tensor_t*));
    if (!tensor_list) {
        SWIG_JavaThrowException(jenv, SWIG_JavaOutOfMemoryError, "tensor list");
        return $null;
    }
    jlong* addresses = (*jenv)->GetLongArrayElements(jenv, $input, NULL);
    if (!addresses) {
        free(tensor_list);
        return $null;
    }
    for (jsize i = 0; i < n; ++i) tensor_list[i] = (ds_tensor_t*)(intptr_t)addresses[i];
    (*jenv)->ReleaseLongArrayElements(jenv, $input, addresses, JNI_ABORT);
    $1 = ($1_ltype)tensor_list;
    $2 = (int32_t)n;
}
%typemap(freearg) (ds_tensor_t* const* tensors, int32_t n_tensors) { free(tensor_list$argnum); }

#elif defined(SWIGGO)

%typemap(gotype) (ds_tensor_t* const* tensors, int32_t n_tensors) "[]uintptr"
%typemap(in) (ds_tensor_t* const* tensors, int32_t n_tensors) (ds_tensor_t** tensor_list = NULL) {
    const uintptr_t* addresses = (const uintptr_t*)$input.array;
    int32_t n = (int32_t)$input.len;
    tensor_list = (ds_tensor_t**)calloc((size_t)(n ? n : 1), sizeof(ds_tensor_t*));
    if (!tensor_list) {
        dsabi_fail(DS_ERR_NOMEM, "out of host memory for a list of %d tensors", n);
        n = -1;
    }
    for (int32_t i = 0; i < n; ++i) tensor_list[i] = (ds_tensor_t*)addresses[i];
    $1 = ($1_ltype)tensor_list;
    $2 = n;
}
%typemap(freearg) (ds_tensor_t* const* tensors, int32_t n_tensors) { free(tensor_list$argnum); }

#endif
