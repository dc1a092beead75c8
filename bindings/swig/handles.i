/* handles.i - opaque handles as classes, and the helper functions every language shares.
 *
 * Each helper calls the C API, converts out-parameters into its return value and records a failing
 * status as pending (status.i), returning a neutral value (NULL, 0, false) in that case; the
 * language's %exception raises before that value is seen. Factories are %newobject, so the
 * target language owns what they return and its destructor calls ds_<x>_destroy.
 *
 * Addresses (tensor data, DLManagedTensor*) travel as int64_t: a Python int, a Java long, a Go
 * int64. They are for interop (ctypes, NumPy, JNI buffers, cgo) and are never dereferenced by the
 * target language itself.
 */

%{
static ds_config_options_t dsabi_config_options(int32_t world_size, int32_t strict, int32_t accept_auto) {
    ds_config_options_t opts;
    ds_config_options_init(&opts);
    opts.world_size = world_size;
    opts.strict = strict;
    opts.accept_auto = accept_auto;
    return opts;
}

/* ds_config_get_str as a dsabi_string_reader (buffers.i). */
static ds_status_t dsabi_config_str(const void* cfg, const char* path, char* buf, uint64_t cap, uint64_t* len) {
    return ds_config_get_str((const ds_config_t*)cfg, path, buf, cap, len);
}

/* dims[i] of a tensor, or strides[i] (strides != 0); pending error and 0 on failure. */
static int64_t dsabi_tensor_dim(const ds_tensor_t* t, int32_t i, int strides) {
    int64_t buf[DS_TENSOR_MAX_DIMS];
    uint64_t n = 0;
    ds_status_t st = strides ? ds_tensor_get_strides(t, buf, DS_TENSOR_MAX_DIMS, &n)
                             : ds_tensor_get_shape(t, buf, DS_TENSOR_MAX_DIMS, &n);
    if (!dsabi_ok(st)) return 0;
    if (i < 0 || (uint64_t)i >= n) {
        dsabi_fail(DS_ERR_INVALID_ARG, "dimension %d is out of range for a tensor of %llu dimensions", i,
                   (unsigned long long)n);
        return 0;
    }
    return buf[i];
}
%}

/* ---- Config ----------------------------------------------------------------------------------- */

%nodefaultctor ds_config;
%nodefaultdtor ds_config;
struct ds_config {};

%newobject ds_config::m_parse;
%newobject ds_config::m_load_file;
%newobject ds_config::m_get_str;
%newobject ds_config::m_to_json;
%newobject ds_config::m_diagnostics;

%extend ds_config {
    ~ds_config() { ds_config_destroy($self); }

    static ds_config_t* m_parse(const char* text, int32_t world_size, int32_t strict, int32_t accept_auto) {
        ds_config_options_t opts = dsabi_config_options(world_size, strict, accept_auto);
        ds_config_t* cfg = NULL;
        dsabi_ok(ds_config_parse(text, 0, &opts, &cfg));
        return cfg;
    }

    static ds_config_t* m_load_file(const char* path, int32_t world_size, int32_t strict, int32_t accept_auto) {
        ds_config_options_t opts = dsabi_config_options(world_size, strict, accept_auto);
        ds_config_t* cfg = NULL;
        dsabi_ok(ds_config_load_file(path, &opts, &cfg));
        return cfg;
    }

    int32_t m_get_kind(const char* path) {
        int32_t kind = 0;
        dsabi_ok(ds_config_get_kind($self, path, &kind));
        return kind;
    }

    int64_t m_get_i64(const char* path) {
        int64_t v = 0;
        dsabi_ok(ds_config_get_i64($self, path, &v));
        return v;
    }

    double m_get_f64(const char* path) {
        double v = 0;
        dsabi_ok(ds_config_get_f64($self, path, &v));
        return v;
    }

    bool m_get_bool(const char* path) {
        int32_t v = 0;
        dsabi_ok(ds_config_get_bool($self, path, &v));
        return v != 0;
    }

    char* m_get_str(const char* path) { return dsabi_read_string(dsabi_config_str, $self, path); }

    int64_t m_get_count(const char* path) {
        int64_t n = 0;
        dsabi_ok(ds_config_get_count($self, path, &n));
        return n;
    }

    char* m_to_json(const char* path, bool pretty) {
        char* json = NULL;
        return dsabi_ok(ds_config_to_json($self, path, pretty ? 1 : 0, &json)) ? dsabi_adopt_string(json) : NULL;
    }

    char* m_diagnostics() {
        char* json = NULL;
        return dsabi_ok(ds_config_query_diagnostics($self, &json)) ? dsabi_adopt_string(json) : NULL;
    }

    int32_t m_world_size() {
        int32_t size = 0, source = 0;
        dsabi_ok(ds_config_get_world_size($self, &size, &source));
        return size;
    }

    int32_t m_world_size_source() {
        int32_t size = 0, source = 0;
        dsabi_ok(ds_config_get_world_size($self, &size, &source));
        return source;
    }
}

/* ---- Tensor ----------------------------------------------------------------------------------- */

%nodefaultctor ds_tensor;
%nodefaultdtor ds_tensor;
struct ds_tensor {};

%newobject ds_tensor::m_create;
%newobject ds_tensor::m_wrap;
%newobject ds_tensor::m_from_dlpack;
%newobject ds_tensor::m_clone;

%extend ds_tensor {
    ~ds_tensor() { ds_tensor_destroy($self); }

    static ds_tensor_t* m_create(int32_t dtype, const int64_t* dims, int32_t ndims, int32_t dev_type, int32_t dev_index) {
        ds_tensor_t* t = NULL;
        dsabi_ok(ds_tensor_create(dtype, ndims, dims, dev_type, dev_index, &t));
        return t;
    }

    /* Wrap memory at address without copying (RETAINED: the caller keeps it alive). strides are in
     * elements; an empty list means C-contiguous. */
    static ds_tensor_t* m_wrap(int64_t address, int32_t dtype, const int64_t* dims, int32_t ndims,
                             const int64_t* strides, int32_t nstrides, int32_t dev_type, int32_t dev_index) {
        if (nstrides != 0 && nstrides != ndims) {
            dsabi_fail(DS_ERR_INVALID_ARG, "ds_tensor_wrap: strides has %d entries but shape has %d", nstrides, ndims);
            return NULL;
        }
        ds_tensor_t* t = NULL;
        dsabi_ok(ds_tensor_wrap((void*)(intptr_t)address, dtype, ndims, dims, nstrides ? strides : NULL, dev_type,
                                dev_index, &t));
        return t;
    }

    /* Take ownership of a DLManagedTensor* (only on success; see ds_tensor_from_dlpack). */
    static ds_tensor_t* m_from_dlpack(int64_t managed) {
        ds_tensor_t* t = NULL;
        dsabi_ok(ds_tensor_from_dlpack((struct DLManagedTensor*)(intptr_t)managed, &t));
        return t;
    }

    /* A DLManagedTensor* sharing this tensor's memory; the receiver must call its deleter once. */
    int64_t m_to_dlpack() {
        struct DLManagedTensor* m = NULL;
        dsabi_ok(ds_tensor_to_dlpack($self, &m));
        return (int64_t)(intptr_t)m;
    }

    ds_tensor_t* m_clone(int32_t dev_type, int32_t dev_index) {
        ds_tensor_t* t = NULL;
        dsabi_ok(ds_tensor_clone($self, dev_type, dev_index, &t));
        return t;
    }

    void m_copy_from(const ds_tensor_t* src) { dsabi_ok(ds_tensor_copy($self, src)); }

    void m_fill(double value) { dsabi_ok(ds_tensor_fill($self, value)); }

    int32_t m_dtype() {
        int32_t v = 0;
        dsabi_ok(ds_tensor_get_dtype($self, &v));
        return v;
    }

    int32_t m_ndim() {
        int32_t v = 0;
        dsabi_ok(ds_tensor_get_ndim($self, &v));
        return v;
    }

    int64_t m_dim(int32_t i) { return dsabi_tensor_dim($self, i, 0); }

    int64_t m_stride(int32_t i) { return dsabi_tensor_dim($self, i, 1); }

    int64_t m_numel() {
        int64_t v = 0;
        dsabi_ok(ds_tensor_get_numel($self, &v));
        return v;
    }

    int64_t m_nbytes() {
        uint64_t v = 0;
        dsabi_ok(ds_tensor_get_nbytes($self, &v));
        return (int64_t)v;
    }

    int64_t m_data_ptr() {
        void* p = NULL;
        dsabi_ok(ds_tensor_get_data($self, &p));
        return (int64_t)(intptr_t)p;
    }

    int32_t m_device_type() {
        int32_t type = 0, index = 0;
        dsabi_ok(ds_tensor_get_device($self, &type, &index));
        return type;
    }

    int32_t m_device_index() {
        int32_t type = 0, index = 0;
        dsabi_ok(ds_tensor_get_device($self, &type, &index));
        return index;
    }

    bool m_is_contiguous() {
        int32_t v = 0;
        dsabi_ok(ds_tensor_is_contiguous($self, &v));
        return v != 0;
    }
}

/* ---- DevInfo: ds_dev_info_t, read-only, filled by the constructor --------------------------- */

%extend ds_dev_info {
    ds_dev_info(int32_t type, int32_t index) {
        ds_dev_info_t* info = (ds_dev_info_t*)malloc(sizeof *info);
        if (!info) {
            dsabi_fail(DS_ERR_NOMEM, "out of host memory");
            return NULL;
        }
        ds_dev_info_init(info);
        if (!dsabi_ok(ds_dev_get_info(type, index, info))) {
            free(info);
            return NULL;
        }
        return info;
    }
    ~ds_dev_info() { free($self); }
}

/* ---- Library, errors, devices, dtypes --------------------------------------------------------- */

%newobject dsabi_lib_build_info;

%inline %{
/* ds_lib_options_init + ds_lib_init. log_level DS_UNSET_I32 and cuda_backend_path NULL mean
 * "default" exactly as in ds_lib_options_t; so does an empty path (Go strings cannot be NULL). */
void dsabi_lib_init(int32_t log_level, int32_t load_cuda, const char* cuda_backend_path) {
    ds_lib_options_t opts;
    ds_lib_options_init(&opts);
    opts.log_level = log_level;
    opts.load_cuda = load_cuda;
    opts.cuda_backend_path = cuda_backend_path && *cuda_backend_path ? cuda_backend_path : NULL;
    dsabi_ok(ds_lib_init(&opts));
}

void dsabi_lib_shutdown(void) { dsabi_ok(ds_lib_shutdown()); }

char* dsabi_lib_build_info(void) {
    char* json = NULL;
    return dsabi_ok(ds_lib_build_info(&json)) ? dsabi_adopt_string(json) : NULL;
}

/* ds_lib_set_log with the default (stderr) sink and a new maximum level. The languages that can
 * receive messages themselves add their own sink in their entry file. */
void dsabi_lib_set_log_level(int32_t max_level) { dsabi_ok(ds_lib_set_log(NULL, NULL, max_level)); }

int32_t dsabi_dev_count(int32_t type) {
    int32_t n = 0;
    dsabi_ok(ds_dev_count(type, &n));
    return n;
}

void dsabi_dev_synchronize(int32_t type, int32_t index) { dsabi_ok(ds_dev_synchronize(type, index)); }

int64_t dsabi_dtype_size(int32_t dtype) {
    uint64_t n = 0;
    dsabi_ok(ds_dtype_size(dtype, &n));
    return (int64_t)n;
}

/* ds_get_proc_address, as an address for FFI users (ctypes, JNA, purego). */
int64_t dsabi_get_proc_address(const char* name) {
    void* fn = NULL;
    dsabi_ok(ds_get_proc_address(name, &fn));
    return (int64_t)(intptr_t)fn;
}

/* Release a DLManagedTensor* received from Tensor.to_dlpack and not handed to a consumer. */
void dsabi_dlpack_delete(int64_t managed) {
    struct DLManagedTensor* m = (struct DLManagedTensor*)(intptr_t)managed;
    if (m && m->deleter) m->deleter(m);
}
%}
