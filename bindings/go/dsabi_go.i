/* dsabi_go.i - Go entry of the SWIG bindings: the package internal/swig of the Go module.
 *
 * Generated at build time (swig -go -cgo -intgosize 64) into the build tree's copy of the module;
 * never committed. Go has no exceptions, so nothing is raised here: a failing helper leaves its
 * status pending, and the hand-written package reads it with TakeStatus/ErrorMessage on the same
 * OS thread (it locks the goroutine to its thread around each call) and returns a *dsabi.Error.
 *
 * Go memory crosses only as call-scoped []byte/[]int64 arguments that the library does not keep,
 * as cgo's pointer rules demand; ds_tensor_wrap (which retains) only ever sees C memory.
 */
%module dsabi_swig

%insert(cgo_comment_typedefs) %{
#cgo LDFLAGS: -ldsabi
%}

/* (void* host, int64_t host_bytes) <- []byte: a call-scoped view of Go memory. */
%typemap(gotype) (void* host, int64_t host_bytes), (const void* host, int64_t host_bytes) "[]byte"
%typemap(in) (void* host, int64_t host_bytes), (const void* host, int64_t host_bytes) {
    $1 = $input.array;
    $2 = (int64_t)$input.len;
}

%include "dsabi_common.i"

%{
/* Copy between tensor t and host bytes through a temporary tensor that wraps the host memory for
 * the duration of this call only (it is destroyed before returning, so the library never keeps a
 * pointer into Go memory). ds_tensor_copy handles strides and devices. */
static void dsabi_go_copy(ds_tensor_t* t, void* host, int64_t host_bytes, int to_host) {
    int32_t dtype = 0, ndim = 0;
    uint64_t nbytes = 0, n = 0;
    int64_t shape[DS_TENSOR_MAX_DIMS];
    if (!dsabi_ok(ds_tensor_get_dtype(t, &dtype)) || !dsabi_ok(ds_tensor_get_ndim(t, &ndim)) ||
        !dsabi_ok(ds_tensor_get_nbytes(t, &nbytes)) ||
        !dsabi_ok(ds_tensor_get_shape(t, shape, DS_TENSOR_MAX_DIMS, &n)))
        return;
    if ((uint64_t)host_bytes != nbytes) {
        dsabi_fail(DS_ERR_INVALID_ARG, "the host buffer has %lld bytes but the tensor has %llu", (long long)host_bytes,
                   (unsigned long long)nbytes);
        return;
    }
    if (nbytes == 0) return;
    ds_tensor_t* view = NULL;
    if (!dsabi_ok(ds_tensor_wrap(host, dtype, ndim, shape, NULL, DS_DEV_CPU, 0, &view))) return;
    dsabi_ok(to_host ? ds_tensor_copy(view, t) : ds_tensor_copy(t, view));
    ds_tensor_destroy(view);
}
%}

%inline %{
/* The pending status of the last call on this thread (DS_OK if none), cleared by reading it. */
int32_t dsabi_take_status_go(void) { return dsabi_take_status(); }

/* The message that goes with the status last taken on this thread. */
const char* dsabi_error_message_go(void) { return dsabi_error_message(); }

void dsabi_tensor_read(ds_tensor_t* t, void* host, int64_t host_bytes) { dsabi_go_copy(t, host, host_bytes, 1); }

void dsabi_tensor_write(ds_tensor_t* t, const void* host, int64_t host_bytes) {
    dsabi_go_copy(t, (void*)host, host_bytes, 0);
}
%}
