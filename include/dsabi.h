/*
 * dsabi.h - DeepSpeed's training and inference system behind one stable C ABI.
 *
 * This file is the contract: if a function, type or constant is not declared here, it is not API.
 *
 * Overview
 * --------
 * dsabi is a C++ library with a C interface. Every object is an opaque handle created through an
 * out-parameter and destroyed with a NULL-safe ds_<object>_destroy(). Every fallible call returns a
 * ds_status_t (0 = DS_OK, > 0 benign outcomes, < 0 errors); ds_last_error() then holds a detailed,
 * thread-local message naming the function, the argument or config key path, the value and what was
 * expected. No C++ exception, abort() or exit() ever crosses this interface.
 *
 * A complete program:
 *
 *     #include <dsabi.h>
 *     #include <stdio.h>
 *
 *     int main(void) {
 *         const char* json = "{\"train_batch_size\": 32, \"gradient_accumulation_steps\": 2,"
 *                            " \"zero_optimization\": {\"stage\": 2}}";
 *         ds_config_options_t opts;
 *         ds_config_options_init(&opts);
 *         opts.world_size = 4;
 *         ds_config_t* cfg = NULL;
 *         if (ds_config_parse(json, 0, &opts, &cfg) != DS_OK) {
 *             fprintf(stderr, "%s\n", ds_last_error());
 *             return 1;
 *         }
 *         int64_t micro = 0;
 *         ds_config_get_i64(cfg, "train_micro_batch_size_per_gpu", &micro);  // 32 / (2 * 4) = 4
 *         printf("micro batch per GPU: %lld\n", (long long)micro);
 *         ds_config_destroy(cfg);
 *         return 0;
 *     }
 *
 * Conventions that hold for every function unless its comment says otherwise
 * --------------------------------------------------------------------------
 * - Handles: a wrong, NULL or destroyed handle gives DS_ERR_INVALID_HANDLE, never a crash. Destroy
 *   functions accept NULL. Children keep what they depend on alive, so handles may be destroyed in any
 *   order (as garbage-collected bindings do).
 * - Inputs are borrowed for the duration of the call. Output handles and values are written only on
 *   DS_OK; output handle pointers are set to NULL on failure.
 * - Caller-provided buffers use (buf, cap, &len): when cap is too small the call returns
 *   DS_ERR_BUFFER_TOO_SMALL, writes nothing to buf, and sets *len to the size needed.
 * - Memory the library allocates for the caller (char** out) is released with ds_free().
 * - Options structs begin with struct_size and abi_version, are filled by ds_<x>_options_init(), are
 *   passed by pointer (NULL means all defaults) and only ever grow at the end: a caller compiled
 *   against an older, smaller struct gets defaults for the fields it does not know.
 * - Thread-safety: handle-exclusive (different handles may be used from different threads at the
 *   same time; one handle must not be) unless a section says otherwise. ds_last_error() is per thread.
 * - Enumerations are passed as int32_t and are append-only; numbers are never reused.
 */
#ifndef DSABI_H
#define DSABI_H

/* ---------------------------------------------------------------------------------------------- */
/* Portability and export                                                                          */
/* ---------------------------------------------------------------------------------------------- */

#if defined(_WIN32) && !defined(__CYGWIN__)
#  if defined(DS_BUILD)
#    define DS_API __declspec(dllexport)
#  elif defined(DS_SHARED)
#    define DS_API __declspec(dllimport)
#  else
#    define DS_API
#  endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define DS_API __attribute__((visibility("default")))
#else
#  define DS_API
#endif

#if defined(DS_DISABLE_DEPRECATE_WARNINGS)
#  define DS_DEPRECATED(msg)
#elif defined(__GNUC__)
#  define DS_DEPRECATED(msg) __attribute__((deprecated(msg)))
#elif defined(_MSC_VER)
#  define DS_DEPRECATED(msg) __declspec(deprecated(msg))
#else
#  define DS_DEPRECATED(msg)
#endif

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------- */
/* Versions                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

#define DS_VERSION_MAJOR 0
#define DS_VERSION_MINOR 1
#define DS_VERSION_PATCH 0
#define DS_VERSION_NUMBER (DS_VERSION_MAJOR * 10000 + DS_VERSION_MINOR * 100 + DS_VERSION_PATCH)
#define DS_VERSION_STRING "0.1.0"

/* The ABI version is the SONAME major (libdsabi.so.0). ABI 0 makes no compatibility promise yet;
 * ABI 1 will be declared once the abidiff gate has held for a release. */
#define DS_ABI_VERSION 0

/* "Unset" sentinels for option fields: take the value from the JSON config, else the default. */
#define DS_UNSET_I32 (-2147483647 - 1)                  /* INT32_MIN */
#define DS_UNSET_I64 (-9223372036854775807LL - 1)       /* INT64_MIN */

/* ---------------------------------------------------------------------------------------------- */
/* Base types                                                                                      */
/* ---------------------------------------------------------------------------------------------- */

typedef int32_t ds_status_t;

/* Status codes. 0 is success, positive values are non-error outcomes, negative values are errors in
 * stable bands: -1..-99 general, -100..-199 device, -200..-299 communication, -300..-399 I/O,
 * -400..-499 configuration. New codes may be added: treat any unknown negative value as an error. */
enum ds_status_code {
    DS_OK = 0,
    DS_INPROGRESS = 1, /* asynchronous work has not finished yet */
    DS_ABORTED = 2,    /* the operation was cancelled on request */

    DS_ERR_INVALID_ARG = -1,      /* an argument is NULL, out of range or inconsistent */
    DS_ERR_NOMEM = -2,            /* host memory allocation failed */
    DS_ERR_INVALID_HANDLE = -3,   /* NULL, wrong-type or destroyed handle */
    DS_ERR_BUFFER_TOO_SMALL = -4, /* caller buffer too small; *len holds the size needed */
    DS_ERR_UNSUPPORTED = -5,      /* valid request that this build or device does not support */
    DS_ERR_VERSION = -6,          /* options struct or table from an unknown ABI version */
    DS_ERR_STATE = -7,            /* the object is not in a state that allows this call */
    DS_ERR_NOT_FOUND = -8,        /* a named item (key, symbol, device) does not exist */
    DS_ERR_TYPE = -9,             /* a value has a different type than requested */
    DS_ERR_INTERNAL = -98,        /* a bug in dsabi: please report it with ds_last_error() */
    DS_ERR_UNKNOWN = -99,         /* an unclassified failure */

    DS_ERR_DEVICE = -100,          /* a device runtime call failed */
    DS_ERR_NO_DEVICE = -101,       /* the requested device type or index is not present */
    DS_ERR_DEVICE_NOMEM = -102,    /* device memory allocation failed */
    DS_ERR_DEVICE_MISMATCH = -103, /* tensors live on devices that this call cannot combine */

    DS_ERR_COMM = -200,         /* a communication backend failed */
    DS_ERR_COMM_TIMEOUT = -201, /* a peer did not answer within the communicator's timeout */
    DS_ERR_COMM_PEER = -202,    /* a peer closed its connection or died */
    DS_ERR_COMM_MISMATCH = -203,/* ranks disagree on sizes, dtypes or order of operations */

    DS_ERR_IO = -300,      /* a file or operating-system call failed */
    DS_ERR_CORRUPT = -301, /* a file is truncated or does not have the expected format */

    DS_ERR_CONFIG = -400,             /* the configuration is invalid (see ds_last_error) */
    DS_ERR_CONFIG_PARSE = -401,       /* the text is not valid JSON / hjson */
    DS_ERR_CONFIG_UNKNOWN_KEY = -402, /* a key is not part of the DeepSpeed schema */
    DS_ERR_CONFIG_VALUE = -403,       /* a value has the wrong type or is out of range */
    DS_ERR_CONFIG_BATCH = -404,       /* batch size, micro batch, accumulation and world size disagree */
    DS_ERR_CONFIG_UNSUPPORTED = -405  /* a DeepSpeed feature that dsabi does not implement is enabled */
};

/* Element types of tensors. */
enum ds_dtype {
    DS_DTYPE_F32 = 0,
    DS_DTYPE_F16 = 1,
    DS_DTYPE_BF16 = 2,
    DS_DTYPE_F64 = 3,
    DS_DTYPE_I8 = 4,
    DS_DTYPE_U8 = 5,
    DS_DTYPE_I32 = 6,
    DS_DTYPE_I64 = 7,
    DS_DTYPE_FP8_E4M3 = 8, /* storage and casts (ds_op_cast) */
    DS_DTYPE_FP8_E5M2 = 9
};

/* Device types. The values equal DLPack's DLDeviceType codes. */
enum ds_dev_type {
    DS_DEV_CPU = 1,
    DS_DEV_CUDA = 2
};

/* Log levels, most severe first. */
enum ds_log_level {
    DS_LOG_NONE = 0,
    DS_LOG_ERROR = 1,
    DS_LOG_WARN = 2,
    DS_LOG_INFO = 3,
    DS_LOG_DEBUG = 4
};

/* Opaque handles. */
typedef struct ds_config ds_config_t;
typedef struct ds_tensor ds_tensor_t;

/* DLPack's managed tensor (dlpack/dlpack.h, DLPack 0.6+). Forward-declared so that dsabi.h stays the
 * only header a C user needs; include <dlpack/dlpack.h> to look inside. */
struct DLManagedTensor;

/* ---------------------------------------------------------------------------------------------- */
/* Library: initialisation, versions, build information, logging, memory                           */
/*                                                                                                 */
/* Thread-safety: ds_lib_init is thread-safe and idempotent. ds_lib_shutdown and ds_lib_set_log     */
/* are process-global and not thread-safe: call them while no other thread uses dsabi.             */
/* Every other function initialises the library with default options on first use, so calling     */
/* ds_lib_init is only needed to pass options.                                                    */
/* ---------------------------------------------------------------------------------------------- */

typedef struct ds_lib_options {
    uint32_t struct_size;    /* sizeof(ds_lib_options_t) as compiled by the caller */
    uint32_t abi_version;    /* DS_ABI_VERSION as compiled by the caller */
    int32_t log_level;       /* DS_LOG_*; DS_UNSET_I32: $DSABI_LOG_LEVEL, else DS_LOG_WARN */
    int32_t load_cuda;       /* 1 (default): load the CUDA backend if present; 0: CPU only */
    const char* cuda_backend_path; /* NULL (default): $DSABI_CUDA_BACKEND, else the
                                      libdsabi_cuda.so next to libdsabi */
} ds_lib_options_t;

/* Fill *opts with defaults and the header fields. */
DS_API void ds_lib_options_init(ds_lib_options_t* opts);

/* Initialise the library. opts may be NULL for defaults. The first successful call does the work
 * (loads the CUDA backend when present); later calls return DS_OK and change nothing.
 * @return DS_OK, DS_ERR_VERSION (bad struct_size/abi_version), DS_ERR_INVALID_ARG (bad field).
 * A missing or broken CUDA backend is not an error: CUDA devices are then simply not present, and
 * the reason is logged at DS_LOG_INFO and shown by ds_lib_build_info(). Since: 0.1 */
DS_API ds_status_t ds_lib_init(const ds_lib_options_t* opts);

/* Release global resources and unload backends. Handles that hold device memory must be destroyed
 * first. @return DS_OK, DS_ERR_STATE (live CUDA tensors remain; nothing was released). Since: 0.1 */
DS_API ds_status_t ds_lib_shutdown(void);

/* Version of the library that is loaded (compare with DS_VERSION_NUMBER to detect a header/library
 * mismatch). Cannot fail. */
DS_API uint32_t ds_version_number(void);
DS_API const char* ds_version_string(void); /* static string, e.g. "0.1.0" */

/* A JSON object describing this build and run time: version, abi_version, commit, compiler,
 * compiled features, CUDA / NCCL / Gloo / cJSON versions, whether the CUDA backend is loaded and
 * why not. *out_json is allocated by the library: release it with ds_free().
 * @return DS_OK, DS_ERR_INVALID_ARG (out_json NULL), DS_ERR_NOMEM. Since: 0.1 */
DS_API ds_status_t ds_lib_build_info(char** out_json);

/* Log sink. Called synchronously, possibly from internal threads, with a NUL-terminated message
 * (no trailing newline). It must not call back into dsabi. */
typedef void (*ds_log_fn)(int32_t level, const char* message, void* user_data);

/* Route log messages of level <= max_level to fn (NULL restores the default sink, which writes to
 * stderr). @return DS_OK, DS_ERR_INVALID_ARG (max_level outside DS_LOG_NONE..DS_LOG_DEBUG).
 * Process-global. Since: 0.1 */
DS_API ds_status_t ds_lib_set_log(ds_log_fn fn, void* user_data, int32_t max_level);

/* Release memory that dsabi allocated for the caller (strings and JSON from char** outputs).
 * NULL is a no-op. Thread-safe. */
DS_API void ds_free(void* ptr);

/* ---------------------------------------------------------------------------------------------- */
/* Errors                                                                                          */
/* Thread-safe.                                                                                    */
/* ---------------------------------------------------------------------------------------------- */

/* Static text for a status code ("invalid argument"); never NULL, also for unknown codes. */
DS_API const char* ds_status_str(ds_status_t status);

/* The detailed message of the most recent failing dsabi call on the calling thread, or "" if none.
 * Never NULL. Valid until the next dsabi call on this thread. Successful calls do not clear it. */
DS_API const char* ds_last_error(void);

/* Clear this thread's last error (for tests and REPLs). */
DS_API void ds_last_error_clear(void);

/* ---------------------------------------------------------------------------------------------- */
/* Configuration: DeepSpeed JSON                                                                   */
/*                                                                                                 */
/* Parses a DeepSpeed config (JSON with hjson comments and trailing commas), validates it against  */
/* DeepSpeed's schema with DeepSpeed's current defaults, applies deprecated-key migrations and      */
/* "auto" values, derives the batch-size triple from the world size, and keeps a normalised tree    */
/* with every default filled in. Errors name the key path ("zero_optimization.stage"), the value    */
/* and the allowed range; all problems found are listed in one message.                            */
/*                                                                                                 */
/* Keys DeepSpeed knows but dsabi does not implement are reported as unsupported (a warning, or an  */
/* error with strict), never silently ignored. Unknown top-level keys are warnings (errors with     */
/* strict); unknown keys inside blocks that DeepSpeed validates strictly (zero_optimization, fp16,  */
/* bf16, offload_*, comms_logger, ...) are errors, as in DeepSpeed. Duplicate keys are errors.      */
/*                                                                                                 */
/* A ds_config_t is immutable after parsing: concurrent reads are thread-safe.                     */
/* ---------------------------------------------------------------------------------------------- */

typedef struct ds_config_options {
    uint32_t struct_size; /* sizeof(ds_config_options_t) as compiled by the caller */
    uint32_t abi_version; /* DS_ABI_VERSION as compiled by the caller */
    int32_t world_size;   /* data-parallel world size; 0 (default): $WORLD_SIZE, else
                             $OMPI_COMM_WORLD_SIZE, else $SLURM_NTASKS, else 1 */
    int32_t strict;       /* 1: unknown top-level keys and unsupported features are errors */
    int32_t accept_auto;  /* 1 (default): "auto" values mean "use the default / derive it";
                             0: "auto" is an error (the caller must substitute values first) */
} ds_config_options_t;

/* Fill *opts with defaults and the header fields. */
DS_API void ds_config_options_init(ds_config_options_t* opts);

/* Parse and validate a config from text. len may be 0 when text is NUL-terminated. opts may be NULL.
 * @return DS_OK, DS_ERR_INVALID_ARG, DS_ERR_VERSION, DS_ERR_CONFIG_PARSE (with line and column),
 *         DS_ERR_CONFIG_UNKNOWN_KEY, DS_ERR_CONFIG_VALUE, DS_ERR_CONFIG_BATCH,
 *         DS_ERR_CONFIG_UNSUPPORTED (strict only), DS_ERR_CONFIG (several kinds of problems).
 * Since: 0.1 */
DS_API ds_status_t ds_config_parse(const char* text, uint64_t len, const ds_config_options_t* opts,
                                   ds_config_t** out);

/* Like ds_config_parse, reading the file at path. Messages start with the path.
 * @return as ds_config_parse, plus DS_ERR_IO (the file cannot be read). Since: 0.1 */
DS_API ds_status_t ds_config_load_file(const char* path, const ds_config_options_t* opts,
                                       ds_config_t** out);

/* Destroy a config. NULL is a no-op. Objects created from it keep what they need. */
DS_API void ds_config_destroy(ds_config_t* cfg);

/* JSON value kinds reported by ds_config_get_kind. */
enum ds_json_kind {
    DS_JSON_NULL = 0,
    DS_JSON_BOOL = 1,
    DS_JSON_NUMBER = 2,
    DS_JSON_STRING = 3,
    DS_JSON_ARRAY = 4,
    DS_JSON_OBJECT = 5
};

/* Typed getters on the normalised tree. path is dot-separated with optional array indexes:
 * "zero_optimization.stage", "optimizer.params.betas[1]".
 * @return DS_OK, DS_ERR_INVALID_ARG, DS_ERR_INVALID_HANDLE, DS_ERR_NOT_FOUND (no such key),
 *         DS_ERR_TYPE (the value has another kind; for get_i64, a number that is not an integer). */
DS_API ds_status_t ds_config_get_kind(const ds_config_t* cfg, const char* path, int32_t* out_kind);
DS_API ds_status_t ds_config_get_i64(const ds_config_t* cfg, const char* path, int64_t* out);
DS_API ds_status_t ds_config_get_f64(const ds_config_t* cfg, const char* path, double* out);
DS_API ds_status_t ds_config_get_bool(const ds_config_t* cfg, const char* path, int32_t* out);
/* String value into (buf, cap); *len is the length including the terminating NUL. buf may be NULL
 * when cap is 0 (size query). */
DS_API ds_status_t ds_config_get_str(const ds_config_t* cfg, const char* path, char* buf, uint64_t cap,
                                     uint64_t* len);
/* Number of elements of an array or members of an object. */
DS_API ds_status_t ds_config_get_count(const ds_config_t* cfg, const char* path, int64_t* out);

/* The normalised config (path NULL or "") or one subtree as JSON, every default filled in.
 * pretty: 1 indents, 0 is compact. Release *out_json with ds_free(). */
DS_API ds_status_t ds_config_to_json(const ds_config_t* cfg, const char* path, int32_t pretty,
                                     char** out_json);

/* Warnings and notes found while validating, as a JSON array of
 * {"severity": "warning"|"info", "kind": "unknown_key"|"deprecated"|"unsupported"|"auto"|...,
 *  "path": "...", "message": "..."}. Release *out_json with ds_free(). */
DS_API ds_status_t ds_config_query_diagnostics(const ds_config_t* cfg, char** out_json);

/* Where the data-parallel world size of a config came from. */
enum ds_config_world_source {
    DS_WORLD_FROM_OPTIONS = 0,    /* ds_config_options_t.world_size */
    DS_WORLD_FROM_WORLD_SIZE = 1, /* $WORLD_SIZE */
    DS_WORLD_FROM_OMPI = 2,       /* $OMPI_COMM_WORLD_SIZE */
    DS_WORLD_FROM_SLURM = 3,      /* $SLURM_NTASKS */
    DS_WORLD_DEFAULT = 4          /* none given: 1 */
};

/* The data-parallel world size the batch rule used (ranks / sequence_parallel_size), and where it
 * came from (enum ds_config_world_source). */
DS_API ds_status_t ds_config_get_world_size(const ds_config_t* cfg, int32_t* out_world_size,
                                            int32_t* out_source);

/* ---------------------------------------------------------------------------------------------- */
/* Devices                                                                                         */
/* Thread-safe.                                                                                    */
/* ---------------------------------------------------------------------------------------------- */

typedef struct ds_dev_info {
    uint32_t struct_size;
    uint32_t abi_version;
    int32_t type;               /* DS_DEV_* */
    int32_t index;
    char name[128];             /* "cpu" or the GPU's product name */
    uint64_t total_memory_bytes;
    uint64_t free_memory_bytes; /* at the time of the call */
    int32_t compute_capability_major; /* CUDA only, else 0 */
    int32_t compute_capability_minor;
    int32_t multiprocessor_count;     /* CUDA SMs, or logical CPU cores */
} ds_dev_info_t;

/* Fill the header fields of *info (ds_dev_get_info fills the rest). */
DS_API void ds_dev_info_init(ds_dev_info_t* info);

/* Number of devices of a type: 1 for DS_DEV_CPU; the number of visible GPUs for DS_DEV_CUDA, which is
 * 0 without the CUDA backend, a driver or a GPU.
 * @return DS_OK, DS_ERR_INVALID_ARG (unknown type or out NULL). */
DS_API ds_status_t ds_dev_count(int32_t type, int32_t* out);

/* Describe device (type, index). info->struct_size must be set (ds_dev_info_init).
 * @return DS_OK, DS_ERR_INVALID_ARG, DS_ERR_VERSION, DS_ERR_NO_DEVICE, DS_ERR_DEVICE. */
DS_API ds_status_t ds_dev_get_info(int32_t type, int32_t index, ds_dev_info_t* info);

/* Wait until all work queued on the device has finished (no-op on the CPU). */
DS_API ds_status_t ds_dev_synchronize(int32_t type, int32_t index);

/* ---------------------------------------------------------------------------------------------- */
/* Tensors                                                                                         */
/*                                                                                                 */
/* A ds_tensor_t is a view (dtype, shape, strides in elements, device) on memory that is either      */
/* owned by the library (ds_tensor_create), borrowed from the caller (ds_tensor_wrap: the caller    */
/* keeps it alive) or managed by another framework (ds_tensor_from_dlpack: released through the     */
/* DLPack deleter). Tensors exchanged as DLPack share memory with NumPy, PyTorch, JAX and CuPy.     */
/* Handle-exclusive; the memory itself may be shared by several tensors.                           */
/* ---------------------------------------------------------------------------------------------- */

#define DS_TENSOR_MAX_DIMS 8

/* Size in bytes of one element (0 for the reserved FP8 types is never returned: they are 1). */
DS_API ds_status_t ds_dtype_size(int32_t dtype, uint64_t* out_bytes);
/* Static name of a dtype ("f32", "bf16", ...), "invalid" for unknown values. */
DS_API const char* ds_dtype_name(int32_t dtype);

/* Create a contiguous tensor owned by the library, filled with zeros. ndim may be 0 (a scalar).
 * @return DS_OK, DS_ERR_INVALID_ARG (dtype, ndim > DS_TENSOR_MAX_DIMS, negative dims, size overflow),
 *         DS_ERR_NO_DEVICE, DS_ERR_NOMEM, DS_ERR_DEVICE_NOMEM. */
DS_API ds_status_t ds_tensor_create(int32_t dtype, int32_t ndim, const int64_t* shape, int32_t dev_type,
                                    int32_t dev_index, ds_tensor_t** out);

/* Wrap caller memory without copying. strides (in elements) may be NULL for C-contiguous. The
 * memory is RETAINED: it must stay valid until the tensor and every tensor or DLPack export made from
 * it are destroyed. data may be NULL only when the tensor has no elements. */
DS_API ds_status_t ds_tensor_wrap(void* data, int32_t dtype, int32_t ndim, const int64_t* shape,
                                  const int64_t* strides, int32_t dev_type, int32_t dev_index,
                                  ds_tensor_t** out);

/* Take a DLPack tensor. On DS_OK the library owns *src and calls src->deleter when the last tensor
 * using the memory is destroyed. On failure ownership stays with the caller and nothing is called.
 * Supported: CPU, CUDA and CUDA-host memory; the dtypes of enum ds_dtype with lanes == 1.
 * @return DS_OK, DS_ERR_INVALID_ARG, DS_ERR_UNSUPPORTED (device or dtype), DS_ERR_NO_DEVICE. */
DS_API ds_status_t ds_tensor_from_dlpack(struct DLManagedTensor* src, ds_tensor_t** out);

/* Export a tensor as DLPack, sharing its memory. The export keeps the memory alive on its own: the
 * tensor may be destroyed first. The consumer must call (*out)->deleter(*out) exactly once. */
DS_API ds_status_t ds_tensor_to_dlpack(ds_tensor_t* t, struct DLManagedTensor** out);

/* Destroy a tensor handle. NULL is a no-op. Memory shared with other tensors or DLPack exports is
 * released when the last of them is gone. */
DS_API void ds_tensor_destroy(ds_tensor_t* t);

/* Accessors. get_shape/get_strides write ndim values into (buf, cap) and set *len = ndim. */
DS_API ds_status_t ds_tensor_get_dtype(const ds_tensor_t* t, int32_t* out);
DS_API ds_status_t ds_tensor_get_ndim(const ds_tensor_t* t, int32_t* out);
DS_API ds_status_t ds_tensor_get_shape(const ds_tensor_t* t, int64_t* buf, uint64_t cap, uint64_t* len);
DS_API ds_status_t ds_tensor_get_strides(const ds_tensor_t* t, int64_t* buf, uint64_t cap, uint64_t* len);
DS_API ds_status_t ds_tensor_get_numel(const ds_tensor_t* t, int64_t* out);
DS_API ds_status_t ds_tensor_get_nbytes(const ds_tensor_t* t, uint64_t* out); /* numel * dtype size */
DS_API ds_status_t ds_tensor_get_data(const ds_tensor_t* t, void** out);       /* first element */
DS_API ds_status_t ds_tensor_get_device(const ds_tensor_t* t, int32_t* out_type, int32_t* out_index);
DS_API ds_status_t ds_tensor_is_contiguous(const ds_tensor_t* t, int32_t* out);

/* Copy src into dst: same dtype and shape, any devices (CPU<->CUDA, CUDA<->CUDA), any strides on
 * the CPU; CUDA sides must be contiguous. Synchronous.
 * @return DS_OK, DS_ERR_INVALID_ARG (shape or dtype differ), DS_ERR_UNSUPPORTED (strided CUDA),
 *         DS_ERR_DEVICE. */
DS_API ds_status_t ds_tensor_copy(ds_tensor_t* dst, const ds_tensor_t* src);

/* A new library-owned contiguous copy of src on (dev_type, dev_index). */
DS_API ds_status_t ds_tensor_clone(const ds_tensor_t* src, int32_t dev_type, int32_t dev_index,
                                   ds_tensor_t** out);

/* Set every element to value, converted to the tensor's dtype (round to nearest even for f16/bf16;
 * integer dtypes require an integral value within range). */
DS_API ds_status_t ds_tensor_fill(ds_tensor_t* t, double value);

/* ---------------------------------------------------------------------------------------------- */
/* Ops: the kernel layer (optimizers, reductions, casts, transformer ops, GEMM, attention, quant)   */
/*                                                                                                 */
/* Every op works on ds_tensor_t and runs where its tensors live: CPU tensors on the CPU kernels     */
/* (AVX-512, AVX2 or scalar, chosen at run time; OpenMP threads), CUDA tensors in the CUDA backend    */
/* module on the legacy default stream of their device. CUDA ops are asynchronous: their results are */
/* ready for any later op, collective or copy on that device, and for the host after                */
/* ds_dev_synchronize. Ops that return a host value (a norm, a flag) synchronise.                   */
/*                                                                                                 */
/* Rules common to every op:                                                                        */
/*  - All tensors of a call live on one device (else DS_ERR_DEVICE_MISMATCH) and are contiguous.     */
/*  - Outputs are caller-allocated tensors of the documented shape and dtype; the message of         */
/*    DS_ERR_INVALID_ARG names the argument, its shape or dtype and what was expected. An output     */
/*    may alias an input only where stated.                                                         */
/*  - "[N, D]" means any tensor whose last dimension is D; N is the product of the others.          */
/*  - "float" means f32, f16 or bf16, the same dtype for every float tensor of a call unless stated; */
/*    the arithmetic is f32 (accumulations f32 or wider) whatever the storage dtype.                 */
/*  - Gradients of parameters (dweight, dbias) are ACCUMULATED (+=) so that micro-batches add up;    */
/*    gradients of activations (dx, dq, ...) are overwritten.                                       */
/*  - An optional tensor argument may be NULL.                                                       */
/*                                                                                                 */
/* Thread-safety: thread-safe; calls that write distinct outputs may run concurrently.               */
/* ds_op_set_cpu_isa and ds_op_set_num_threads are process-global.                                  */
/* ---------------------------------------------------------------------------------------------- */

/* CPU instruction sets of the CPU kernels. */
enum ds_cpu_isa {
    DS_CPU_ISA_SCALAR = 0,
    DS_CPU_ISA_AVX2 = 1,  /* AVX2 + FMA + F16C */
    DS_CPU_ISA_AVX512 = 2 /* AVX-512 F/BW/VL/DQ */
};

/* The instruction set the CPU kernels use: the best this CPU has, or what ds_op_set_cpu_isa or the
 * DSABI_CPU_ISA environment variable ("scalar", "avx2", "avx512") chose. */
DS_API ds_status_t ds_op_get_cpu_isa(int32_t* out);
/* Force an instruction set (for tests and comparisons); DS_ERR_UNSUPPORTED if this CPU lacks it. */
DS_API ds_status_t ds_op_set_cpu_isa(int32_t isa);
/* Threads of the CPU kernels; 0 restores the default (OMP_NUM_THREADS, else every core). */
DS_API ds_status_t ds_op_set_num_threads(int32_t n);
DS_API ds_status_t ds_op_get_num_threads(int32_t* out);

/* ---- Optimizers --------------------------------------------------------------------------------- */

enum ds_optim_kind {
    DS_OPTIM_ADAM = 0,   /* L2 weight decay added to the gradient (torch.optim.Adam) */
    DS_OPTIM_ADAMW = 1,  /* decoupled weight decay (torch.optim.AdamW, DeepSpeed adam_w_mode) */
    DS_OPTIM_LAMB = 2,   /* DeepSpeed FusedLamb: Adam update scaled by a per-tensor trust ratio */
    DS_OPTIM_LION = 3,   /* sign of the interpolated momentum, decoupled weight decay */
    DS_OPTIM_SGD = 4,    /* torch.optim.SGD: momentum, dampening, Nesterov, L2 weight decay */
    DS_OPTIM_ADAGRAD = 5 /* torch.optim.Adagrad: lr_decay, L2 weight decay */
};

/* Hyper-parameters of one optimizer step. ds_optim_options_init fills the defaults of `kind`
 * (those of torch.optim, and of DeepSpeed's FusedLamb for LAMB). */
typedef struct ds_optim_options {
    uint32_t struct_size;
    uint32_t abi_version;
    int32_t kind;            /* ds_optim_kind */
    float lr;
    float beta1;             /* Adam/AdamW/LAMB/Lion */
    float beta2;
    float eps;               /* Adam/AdamW/LAMB/Adagrad */
    float weight_decay;
    int32_t bias_correction; /* Adam/AdamW/LAMB: 1 */
    float momentum;          /* SGD */
    float dampening;         /* SGD */
    int32_t nesterov;        /* SGD */
    float lr_decay;          /* Adagrad */
    float max_coeff;         /* LAMB: trust ratio clamp, 10 */
    float min_coeff;         /* LAMB: 0.01 */
    float grad_scale;        /* every gradient is multiplied by this first (1/loss_scale, clip coefficient): 1 */
    int32_t check_finite;    /* 1: a non-finite gradient anywhere skips the whole step (default 1) */
} ds_optim_options_t;

DS_API void ds_optim_options_init(ds_optim_options_t* opt, int32_t kind);

/* One step over many parameter tensors (one launch on CUDA). Lists are parallel: entry i of each list
 * belongs to parameter i, and every list has n_params entries or, where unused, 0.
 *   params   f32 master weights, updated in place
 *   grads    f32, f16 or bf16, same shapes; read only (the scale is applied on the fly)
 *   state1   f32: Adam/AdamW/LAMB exp_avg, Lion exp_avg, SGD momentum buffer (0 entries when
 *            momentum is 0), Adagrad sum
 *   state2   f32: Adam/AdamW/LAMB exp_avg_sq; 0 entries for the others
 *   params_lp  optional f16 or bf16 working copies, written from the updated params (0 entries: none)
 * step is the 1-based number of this step (bias correction; SGD initialises its buffer at step 1;
 * Adagrad's lr_decay). With check_finite, *skipped (optional) is 1 and nothing is written when a
 * gradient holds inf or nan, else 0. */
DS_API ds_status_t ds_op_optim_step(const ds_optim_options_t* opt, int64_t step,
                                    ds_tensor_t* const* params, int32_t n_params,
                                    ds_tensor_t* const* grads, int32_t n_grads,
                                    ds_tensor_t* const* state1, int32_t n_state1,
                                    ds_tensor_t* const* state2, int32_t n_state2,
                                    ds_tensor_t* const* params_lp, int32_t n_params_lp,
                                    int32_t* skipped);

/* ---- Reductions and element-wise utilities ------------------------------------------------------ */

/* L2 norm over every element of every tensor (float dtypes; accumulated in f64 on the CPU, in f32
 * partials summed in f64 on CUDA). A non-finite element gives a non-finite norm. Synchronises. */
DS_API ds_status_t ds_op_global_norm(ds_tensor_t* const* tensors, int32_t n_tensors, double* out);
/* Multiply every element of every tensor by alpha, in place. */
DS_API ds_status_t ds_op_scale(ds_tensor_t* const* tensors, int32_t n_tensors, double alpha);
/* *out = 1 if any element of any tensor is inf or nan, else 0. Synchronises. */
DS_API ds_status_t ds_op_find_nonfinite(ds_tensor_t* const* tensors, int32_t n_tensors, int32_t* out);
/* dst = src * scale, converted: f32, f16, bf16, f64, FP8_E4M3, FP8_E5M2 in any direction. Rounds to
 * nearest even; conversions to FP8 saturate to the largest finite value (nan stays nan). Same
 * number of elements. */
DS_API ds_status_t ds_op_cast(const ds_tensor_t* src, ds_tensor_t* dst, float scale);

/* ---- Transformer ops ---------------------------------------------------------------------------- */

/* out[N, D] = weight[V, D][ids[N]]; ids i32 or i64 in [0, V) (DS_ERR_INVALID_ARG names the first
 * bad id on the CPU; on CUDA out-of-range ids produce zero rows). */
DS_API ds_status_t ds_op_embedding(const ds_tensor_t* weight, const ds_tensor_t* ids, ds_tensor_t* out);
/* dweight[V, D] += scatter-add of dout[N, D] at ids (deterministic order). Out-of-range ids:
 * DS_ERR_INVALID_ARG on the CPU; skipped on CUDA. */
DS_API ds_status_t ds_op_embedding_backward(const ds_tensor_t* ids, const ds_tensor_t* dout, ds_tensor_t* dweight);

/* y[N, D] = (x - mean) * rstd * weight + bias over the last dimension; bias optional; mean and rstd
 * [N] f32 are optional outputs kept for the backward. */
DS_API ds_status_t ds_op_layer_norm(const ds_tensor_t* x, const ds_tensor_t* weight, const ds_tensor_t* bias,
                                    float eps, ds_tensor_t* y, ds_tensor_t* mean, ds_tensor_t* rstd);
/* dx (overwritten), dweight and dbias (accumulated, optional) from dy, x and the saved mean/rstd. */
DS_API ds_status_t ds_op_layer_norm_backward(const ds_tensor_t* dy, const ds_tensor_t* x, const ds_tensor_t* weight,
                                             const ds_tensor_t* mean, const ds_tensor_t* rstd, ds_tensor_t* dx,
                                             ds_tensor_t* dweight, ds_tensor_t* dbias);
/* y[N, D] = x * rstd * weight, rstd = 1 / sqrt(mean(x^2) + eps); rstd [N] f32 optional. */
DS_API ds_status_t ds_op_rms_norm(const ds_tensor_t* x, const ds_tensor_t* weight, float eps, ds_tensor_t* y,
                                  ds_tensor_t* rstd);
DS_API ds_status_t ds_op_rms_norm_backward(const ds_tensor_t* dy, const ds_tensor_t* x, const ds_tensor_t* weight,
                                           const ds_tensor_t* rstd, ds_tensor_t* dx, ds_tensor_t* dweight);

enum ds_activation {
    DS_ACT_GELU_TANH = 0, /* GPT-2's GELU: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
    DS_ACT_GELU = 1,      /* exact: 0.5 x (1 + erf(x / sqrt 2)) */
    DS_ACT_SILU = 2,      /* x sigmoid(x) */
    DS_ACT_RELU = 3
};
/* y = act(x), element-wise; y may alias x. */
DS_API ds_status_t ds_op_activation(int32_t act, const ds_tensor_t* x, ds_tensor_t* y);
/* dx = dy * act'(x); dx may alias dy. */
DS_API ds_status_t ds_op_activation_backward(int32_t act, const ds_tensor_t* x, const ds_tensor_t* dy,
                                             ds_tensor_t* dx);
/* SwiGLU: y = silu(gate) * up, all the same shape. */
DS_API ds_status_t ds_op_swiglu(const ds_tensor_t* gate, const ds_tensor_t* up, ds_tensor_t* y);
DS_API ds_status_t ds_op_swiglu_backward(const ds_tensor_t* gate, const ds_tensor_t* up, const ds_tensor_t* dy,
                                         ds_tensor_t* dgate, ds_tensor_t* dup);
/* y = a + b (residual add), or y[N, D] = a[N, D] + b[D] when b has one dimension (bias add).
 * y may alias a. */
DS_API ds_status_t ds_op_add(const ds_tensor_t* a, const ds_tensor_t* b, ds_tensor_t* y);
/* dbias[D] += sum over rows of dy[N, D] (the gradient of a bias add). */
DS_API ds_status_t ds_op_sum_rows(const ds_tensor_t* dy, ds_tensor_t* dbias);
/* y[N, D] = softmax(x * scale) over the last dimension; y may alias x. */
DS_API ds_status_t ds_op_softmax(const ds_tensor_t* x, float scale, ds_tensor_t* y);
/* dx = scale * y * (dy - sum(dy * y)) from the softmax output y; dx may alias dy. */
DS_API ds_status_t ds_op_softmax_backward(const ds_tensor_t* y, const ds_tensor_t* dy, float scale, ds_tensor_t* dx);
/* Cross-entropy from logits[N, V] (float) and targets[N] (i32 or i64), fused with its backward and
 * streamed over the vocabulary (no [N, V] temporary): losses[N] f32 = logsumexp(row) - row[target];
 * dlogits[N, V] (optional, same dtype as logits) = (softmax(row) - onehot(target)) * dloss, where
 * dloss is the gradient of each row's loss (1/N for a mean). Rows whose target equals
 * ignore_index get loss 0 and zero gradient. A target outside [0, V) that is not ignore_index gives
 * DS_ERR_INVALID_ARG naming its row on the CPU, and is treated as ignored on CUDA. dlogits may alias
 * logits (in-place backward). */
DS_API ds_status_t ds_op_cross_entropy(const ds_tensor_t* logits, const ds_tensor_t* targets, int64_t ignore_index,
                                       float dloss, ds_tensor_t* losses, ds_tensor_t* dlogits);
/* Rotary position embedding on x[N, H, D] (D even) at positions[N] (i32 or i64), with the rotate-half
 * pairing of GPT-NeoX and Llama: (x[i], x[i + D/2]) turns by pos * theta^(-2i/D), the angle computed
 * in f32 as those models' reference code does. inverse = 1 turns the other way, which is the
 * backward. y may alias x. */
DS_API ds_status_t ds_op_rope(const ds_tensor_t* x, const ds_tensor_t* positions, float theta, int32_t inverse,
                              ds_tensor_t* y);
/* Inverted dropout: y = x * keep / (1 - p), keep drawn from a counter-based generator keyed by
 * (seed, offset + element index), identical on CPU and CUDA. The backward is the same call on dy with
 * the same seed and offset. y may alias x. */
DS_API ds_status_t ds_op_dropout(const ds_tensor_t* x, float p, uint64_t seed, uint64_t offset, ds_tensor_t* y);

/* ---- GEMM --------------------------------------------------------------------------------------- */

enum ds_epilogue {
    DS_EPILOGUE_NONE = 0,
    DS_EPILOGUE_BIAS = 1,     /* + bias[N] */
    DS_EPILOGUE_GELU = 2,     /* GELU (tanh) of the result */
    DS_EPILOGUE_BIAS_GELU = 3 /* GELU (tanh) of result + bias */
};

typedef struct ds_gemm_options {
    uint32_t struct_size;
    uint32_t abi_version;
    int32_t trans_a;  /* 0: A is [M, K]; 1: A is [K, M] */
    int32_t trans_b;  /* 0: B is [K, N]; 1: B is [N, K] (a torch Linear weight) */
    float alpha;      /* 1 */
    float beta;       /* 0: C is overwritten; 1: accumulated into */
    int32_t epilogue; /* ds_epilogue; the epilogues need beta = 0 */
} ds_gemm_options_t;

DS_API void ds_gemm_options_init(ds_gemm_options_t* opt);
/* C[M, N] = epilogue(alpha * op(A) op(B) + beta * C), row-major. 3-D A, B and C are a batch
 * ([batch, rows, cols], B may also be 2-D and shared). A and B: f32, f16 or bf16, the same; C: their
 * dtype or f32; bias [N]: C's dtype. Accumulation is f32. cuBLASLt on CUDA, a blocked multithreaded
 * kernel on the CPU. On CUDA the first call of a shape of 2^30 or more multiply-adds with beta = 0
 * times cuBLASLt's candidate algorithms and keeps the fastest: that call waits for its trials (a few
 * milliseconds, once per shape; environment DSABI_GEMM_AUTOTUNE=0 turns this off). */
DS_API ds_status_t ds_op_gemm(const ds_tensor_t* a, const ds_tensor_t* b, const ds_tensor_t* bias, ds_tensor_t* c,
                              const ds_gemm_options_t* opt);

/* ---- Attention ---------------------------------------------------------------------------------- */

typedef struct ds_attn_options {
    uint32_t struct_size;
    uint32_t abi_version;
    int32_t causal; /* 1: query i sees keys j <= i + (S_kv - S), aligned at the bottom right */
    float scale;    /* 0: 1 / sqrt(D) */
} ds_attn_options_t;

DS_API void ds_attn_options_init(ds_attn_options_t* opt);
/* Scaled dot-product attention, flash-style (tiled, online softmax: no [S, S_kv] matrix in memory).
 * q and o [B, S, Hq, D], k and v [B, S_kv, Hkv, D] with Hq a multiple of Hkv (grouped-query heads);
 * float dtypes (CUDA: f16 or bf16, D 64 or 128); lse [B, Hq, S] f32, optional, receives the
 * log-sum-exp of each query row for the backward. */
DS_API ds_status_t ds_op_attention(const ds_tensor_t* q, const ds_tensor_t* k, const ds_tensor_t* v, ds_tensor_t* o,
                                   ds_tensor_t* lse, const ds_attn_options_t* opt);
/* dq, dk, dv (overwritten, shapes of q, k, v) from do = dout, the forward's o and lse. */
DS_API ds_status_t ds_op_attention_backward(const ds_tensor_t* q, const ds_tensor_t* k, const ds_tensor_t* v,
                                            const ds_tensor_t* o, const ds_tensor_t* dout, const ds_tensor_t* lse,
                                            ds_tensor_t* dq, ds_tensor_t* dk, ds_tensor_t* dv,
                                            const ds_attn_options_t* opt);

/* ---- Quantization ------------------------------------------------------------------------------- */

typedef struct ds_quant_options {
    uint32_t struct_size;
    uint32_t abi_version;
    int32_t bits;       /* 8 or 4 */
    int32_t group_size; /* elements per scale along the last dimension; must divide it (128) */
    int32_t symmetric;  /* 1: q = round(x / scale), zeros unused; 0: asymmetric with a zero point */
} ds_quant_options_t;

DS_API void ds_quant_options_init(ds_quant_options_t* opt);
/* Group-wise quantization of x[N, K] (float). 8 bits: q is i8 [N, K] (symmetric, range -127..127) or
 * u8 [N, K] (asymmetric, 0..255). 4 bits: q is u8 [N, K/2], two values per byte, the even element in
 * the low nibble (symmetric values -7..7 stored with +8; asymmetric 0..15). scales [N, K/group] f32;
 * zeros [N, K/group] f32 (asymmetric only, the value that quantizes to 0): x ~ q * scale + zero for
 * asymmetric, x ~ q * scale for symmetric. */
DS_API ds_status_t ds_op_quantize(const ds_tensor_t* x, ds_tensor_t* q, ds_tensor_t* scales, ds_tensor_t* zeros,
                                  const ds_quant_options_t* opt);
DS_API ds_status_t ds_op_dequantize(const ds_tensor_t* q, const ds_tensor_t* scales, const ds_tensor_t* zeros,
                                    ds_tensor_t* y, const ds_quant_options_t* opt);
/* Weight-only quantized linear: y[M, N] = x[M, K] dequant(wq)^T (+ bias[N]), with wq, scales and zeros
 * as ds_op_quantize made them from a [N, K] weight. x, y and bias: float, the same dtype. */
DS_API ds_status_t ds_op_gemm_wq(const ds_tensor_t* x, const ds_tensor_t* wq, const ds_tensor_t* scales,
                                 const ds_tensor_t* zeros, const ds_tensor_t* bias, ds_tensor_t* y,
                                 const ds_quant_options_t* opt);

/* ---------------------------------------------------------------------------------------------- */
/* Communication                                                                                   */
/*                                                                                                 */
/* A communicator joins the ranks of a job. It is created from the standard environment (RANK,     */
/* WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT as torchrun, the DeepSpeed    */
/* launcher and dsrun set them; OMPI_COMM_WORLD_* and SLURM_* as fallbacks) or from explicit        */
/* options. Rank 0 serves a TCP key-value store for the rendezvous; a file store in a shared        */
/* directory is the alternative. CPU tensors travel over Gloo (TCP); CUDA tensors over NCCL (in the */
/* CUDA backend module). A job of one rank needs neither: its collectives are local copies.        */
/*                                                                                                 */
/* Collectives follow NCCL's rules: every rank of the communicator calls the same collectives in    */
/* the same order with matching dtypes and sizes. Each call runs synchronously when `work` is NULL; */
/* otherwise it is queued, returns DS_OK at once with a work handle in *work, and runs in           */
/* submission order (ds_work_wait / ds_work_test). Tensors given to queued work are RETAINED until  */
/* the work completes (memory wrapped with ds_tensor_wrap must stay valid that long). A collective   */
/* waits for the send/recv submitted before it. Sends and receives complete in any order among      */
/* themselves; on NCCL those submitted with a work handle are issued together as one NCCL group     */
/* when something waits for one of them or the next collective starts, so a ring of asynchronous    */
/* sends and receives cannot deadlock. A synchronous send completes only when the peer receives.    */
/*                                                                                                 */
/* CUDA tensors must be ready when passed (work on the legacy default stream is ordered before the  */
/* collective; other streams must be synchronised by the caller); results are complete on return or */
/* when the work completes.                                                                        */
/*                                                                                                 */
/* Failures: a peer that dies or stops answering makes calls fail with DS_ERR_COMM_PEER or          */
/* DS_ERR_COMM_TIMEOUT within the communicator's timeout, never hang forever; the communicator is   */
/* unusable afterwards (DS_ERR_STATE) and should be destroyed. When agreement checking is on, a     */
/* collective whose dtype, size, reduce op, root or device differs between ranks fails on every rank */
/* with DS_ERR_COMM_MISMATCH before any data moves, and the communicator stays usable.              */
/*                                                                                                 */
/* Thread-safety: a communicator is thread-safe for submitting work, but the order of collectives   */
/* must be the same on every rank, so issue them from one thread per communicator. ds_comm_abort    */
/* and ds_work_* may be called from any thread.                                                    */
/* ---------------------------------------------------------------------------------------------- */

typedef struct ds_comm ds_comm_t;
typedef struct ds_work ds_work_t;

enum ds_reduce_op {
    DS_REDUCE_SUM = 0,
    DS_REDUCE_AVG = 1, /* integer dtypes: the sum divided by the group size, truncated toward zero */
    DS_REDUCE_MAX = 2,
    DS_REDUCE_MIN = 3,
    DS_REDUCE_PROD = 4
};

enum ds_comm_backend {
    DS_COMM_BACKEND_AUTO = 0, /* by tensor device: Gloo for CPU, NCCL for CUDA */
    DS_COMM_BACKEND_GLOO = 1, /* force Gloo (CUDA tensors are staged through host memory) */
    DS_COMM_BACKEND_NCCL = 2  /* force NCCL (CPU tensors are rejected with DS_ERR_DEVICE_MISMATCH) */
};

/* Where the rank and world size came from (ds_comm_query_info: "source"). */
enum ds_comm_source {
    DS_COMM_SOURCE_OPTIONS = 0,
    DS_COMM_SOURCE_TORCHRUN_ENV = 1, /* RANK / WORLD_SIZE (torchrun, DeepSpeed launcher, dsrun) */
    DS_COMM_SOURCE_OMPI_ENV = 2,     /* OMPI_COMM_WORLD_RANK / OMPI_COMM_WORLD_SIZE */
    DS_COMM_SOURCE_SLURM_ENV = 3,    /* SLURM_PROCID / SLURM_NTASKS */
    DS_COMM_SOURCE_DEFAULT = 4       /* nothing set: a single process, rank 0 of 1 */
};

typedef struct ds_comm_options {
    uint32_t struct_size;
    uint32_t abi_version;
    int32_t rank;             /* DS_UNSET_I32 (default): from the environment; set with world_size */
    int32_t world_size;       /* DS_UNSET_I32 (default): from the environment, else 1 */
    int32_t local_rank;       /* DS_UNSET_I32 (default): $LOCAL_RANK, $OMPI_COMM_WORLD_LOCAL_RANK,
                                 $SLURM_LOCALID, else rank */
    int32_t local_world_size; /* DS_UNSET_I32 (default): $LOCAL_WORLD_SIZE, $LOCAL_SIZE,
                                 $OMPI_COMM_WORLD_LOCAL_SIZE, $SLURM_NTASKS_PER_NODE, else world_size */
    int32_t master_port;      /* DS_UNSET_I32 (default): $MASTER_PORT, else 29500 */
    int32_t timeout_ms;       /* DS_UNSET_I32 (default): $DEEPSPEED_TIMEOUT minutes, else 10 minutes */
    int32_t backend;          /* DS_COMM_BACKEND_* (default AUTO) */
    int32_t check_mismatch;   /* exchange op/dtype/count/root before each collective and report
                                 disagreement: 1 on, 0 off, -1 auto (on for Gloo, off for NCCL);
                                 DS_UNSET_I32 (default): $DSABI_COMM_CHECK, else -1 */
    const char* master_addr;  /* NULL (default): $MASTER_ADDR, else "127.0.0.1" */
    const char* store_dir;    /* non-NULL: rendezvous through files in this shared directory instead of
                                 the TCP store (NULL: $DSABI_STORE_DIR, else the TCP store) */
    const char* store_prefix; /* file store: the job's subdirectory, unique per job; NULL (default):
                                 $DSABI_RUN_ID, $TORCHELASTIC_RUN_ID, slurm-$SLURM_JOB_ID[.$SLURM_STEP_ID],
                                 else "dsabi". Rank 0 refuses a prefix that exists already. */
    const char* bind_addr;    /* address this rank's Gloo connections use; NULL (default):
                                 $DSABI_BIND_ADDR, else the local address that routes to master_addr */
    const ds_config_t* config;/* reads the comms_logger block; NULL: logger off. Not retained. */
} ds_comm_options_t;

DS_API void ds_comm_options_init(ds_comm_options_t* opts);

/* Join the job: rendezvous with every other rank (blocks until all arrive or the timeout passes).
 * @return DS_OK, DS_ERR_INVALID_ARG (rank outside [0, world_size), a malformed environment variable:
 *         the message names it), DS_ERR_VERSION, DS_ERR_COMM_TIMEOUT (not every rank arrived),
 *         DS_ERR_COMM_PEER, DS_ERR_COMM (e.g. MASTER_PORT in use), DS_ERR_IO (store_dir),
 *         DS_ERR_UNSUPPORTED (world_size > 1 without Gloo in this build; backend NCCL without NCCL).
 * Since: 0.1 */
DS_API ds_status_t ds_comm_create(const ds_comm_options_t* opts, ds_comm_t** out);

/* Leave the job and free local resources; waits for queued work (bounded by the timeout). Children
 * made by ds_comm_split keep their parent alive. NULL is a no-op. */
DS_API void ds_comm_destroy(ds_comm_t* comm);

/* Cancel queued and in-flight work: it completes with DS_ABORTED; later calls return DS_ERR_STATE.
 * Use it when a peer failed. Only this communicator is aborted, not its parent or children.
 * Thread-safe. */
DS_API ds_status_t ds_comm_abort(ds_comm_t* comm);

DS_API ds_status_t ds_comm_get_rank(const ds_comm_t* comm, int32_t* out);
DS_API ds_status_t ds_comm_get_world_size(const ds_comm_t* comm, int32_t* out);
DS_API ds_status_t ds_comm_get_local_rank(const ds_comm_t* comm, int32_t* out);
/* JSON object: id, rank, world_size, local_rank, local_world_size, source, master_addr,
 * master_port, store, bind_addr, gloo_address, timeout_ms, timeout_source, backend, check_mismatch,
 * backends {gloo, nccl_available, nccl_active}, global_ranks (children), comms_logger, state.
 * Release *out_json with ds_free(). */
DS_API ds_status_t ds_comm_query_info(const ds_comm_t* comm, char** out_json);

/* Split into sub-communicators (data / tensor / pipeline parallel groups): ranks passing the same
 * color form one group, ordered by key then by parent rank. color < 0 (DS_COMM_SPLIT_NONE) joins no
 * group and gets *out = NULL. Collective over the parent (and ordered with its other work). The
 * child keeps the parent alive. */
#define DS_COMM_SPLIT_NONE (-1)
DS_API ds_status_t ds_comm_split(ds_comm_t* parent, int32_t color, int32_t key, ds_comm_t** out);

/* Collectives on contiguous tensors of f32, f16, bf16, f64, i8, u8, i32 or i64 (other dtypes:
 * DS_ERR_UNSUPPORTED). Tensors of one call share dtype and device. `work` may be NULL (synchronous).
 * @return DS_OK, DS_ERR_INVALID_ARG, DS_ERR_INVALID_HANDLE, DS_ERR_UNSUPPORTED,
 *         DS_ERR_DEVICE_MISMATCH, DS_ERR_STATE (aborted or failed communicator), and for synchronous
 *         calls the errors of ds_work_wait. */
DS_API ds_status_t ds_comm_all_reduce(ds_comm_t* comm, ds_tensor_t* t, int32_t op, ds_work_t** work);
DS_API ds_status_t ds_comm_broadcast(ds_comm_t* comm, ds_tensor_t* t, int32_t root, ds_work_t** work);
/* Result on root only; other ranks' t is left unspecified (Gloo uses it as scratch). */
DS_API ds_status_t ds_comm_reduce(ds_comm_t* comm, ds_tensor_t* t, int32_t op, int32_t root, ds_work_t** work);
/* out has world_size * numel(in) elements (rank r's input at offset r * numel(in)). */
DS_API ds_status_t ds_comm_all_gather(ds_comm_t* comm, const ds_tensor_t* in, ds_tensor_t* out, ds_work_t** work);
/* outs[r] receives rank r's input; n_outs == world_size; each has numel(in) elements. */
DS_API ds_status_t ds_comm_all_gather_list(ds_comm_t* comm, const ds_tensor_t* in, ds_tensor_t* const* outs,
                                           int32_t n_outs, ds_work_t** work);
/* in has world_size * numel(out) elements; out receives this rank's reduced chunk. */
DS_API ds_status_t ds_comm_reduce_scatter(ds_comm_t* comm, const ds_tensor_t* in, ds_tensor_t* out, int32_t op,
                                          ds_work_t** work);
/* in and out have the same numel, a multiple of world_size: chunk r of in goes to rank r, chunk r
 * of out comes from rank r. */
DS_API ds_status_t ds_comm_all_to_all(ds_comm_t* comm, const ds_tensor_t* in, ds_tensor_t* out, ds_work_t** work);
DS_API ds_status_t ds_comm_barrier(ds_comm_t* comm, ds_work_t** work);
/* Point to point with another rank (not this one). Messages between one pair of ranks with the same
 * tag (>= 0) are matched in order; dtype and numel must agree. */
DS_API ds_status_t ds_comm_send(ds_comm_t* comm, const ds_tensor_t* t, int32_t dst, int32_t tag, ds_work_t** work);
DS_API ds_status_t ds_comm_recv(ds_comm_t* comm, ds_tensor_t* t, int32_t src, int32_t tag, ds_work_t** work);

/* Wait for queued work; returns the work's own status (DS_OK, DS_ABORTED or its error, with the
 * message in ds_last_error of the waiting thread). timeout_ms < 0 waits until the work finishes
 * (the communicator's timeout still bounds the work itself); on expiry DS_INPROGRESS. May be called
 * again after it returned. */
DS_API ds_status_t ds_work_wait(ds_work_t* work, int32_t timeout_ms);
/* *out_done = 1 when finished (then ds_work_wait returns at once), else 0. */
DS_API ds_status_t ds_work_test(ds_work_t* work, int32_t* out_done);
/* Free a work handle; unfinished work still runs to completion. NULL is a no-op. */
DS_API void ds_work_destroy(ds_work_t* work);

/* Comms logger (config block comms_logger: enabled, verbose, prof_all, prof_ops, debug): per-op
 * counts, message sizes, latency and algorithmic / bus bandwidth with DeepSpeed's formulas, averages
 * as 10% trimmed means. as_json = 0: DeepSpeed's text table; 1: JSON ({"rank", "world_size", "ops":
 * [{"op", "msg_size_bytes", "count", "total_latency_ms", "avg_latency_ms", "algbw_gbps",
 * "busbw_gbps", "latencies_ms"}]}). Rank-local; release *out with ds_free(). */
DS_API ds_status_t ds_comm_log_summary(const ds_comm_t* comm, int32_t as_json, char** out);
DS_API ds_status_t ds_comm_log_reset(ds_comm_t* comm);

/* ---------------------------------------------------------------------------------------------- */
/* Data: token datasets, samplers, curriculum, dynamic batching, loader                           */
/*                                                                                                */
/* A token dataset is one file (format in docs/data.md): a 64-byte header (magic "DSTOKENS",      */
/* version, token width u16/u32, document count, token count, checksums), the tokens of every     */
/* document back to back, then the documents' offsets. Files are memory-mapped and read with      */
/* bounded resident memory; a truncated or corrupt file is rejected with DS_ERR_CORRUPT and a     */
/* message naming the file and the byte offset, and nothing is ever read past its end.            */
/*                                                                                                */
/*     ds-data build --tokenizer gpt2 --vocab vocab.json --merges merges.txt -o train.dst a.txt   */
/*                                                                                                */
/*     ds_data_t* data; ds_data_open("train.dst", NULL, &data);                                   */
/*     ds_data_loader_options_t lo; ds_data_loader_options_init(&lo);                             */
/*     lo.config = cfg;            // micro batch, accumulation, data_efficiency, curriculum      */
/*     lo.seq_len = 1025; lo.window_stride = 1024; lo.rank = rank; lo.world_size = world;         */
/*     ds_data_loader_t* loader; ds_data_loader_create(data, &lo, &loader);                       */
/*     ds_data_batch_t* b;                                                                        */
/*     while (ds_data_loader_next(loader, &b) == DS_OK && b) {   // b == NULL: end of the epoch   */
/*         ds_tensor_t* tokens; ds_data_batch_get_tensor(b, DS_DATA_FIELD_TOKENS, &tokens);       */
/*         ... ds_tensor_destroy(tokens); ds_data_batch_destroy(b);                               */
/*     }                                                                                          */
/*     ds_data_loader_destroy(loader); ds_data_close(data);                                       */
/*                                                                                                */
/* The sampler gives each rank a disjoint share of a seeded per-epoch permutation in exactly the  */
/* order of PyTorch's DistributedSampler (torch.randperm, CPU generator seeded seed + epoch),     */
/* which DeepSpeed uses. Curriculum learning follows DeepSpeed's CurriculumScheduler and data     */
/* sampler; dynamic batching follows DeepSpeed's batch_by_seqlens and scale_lr.                   */
/*                                                                                                */
/* Thread-safety: a ds_data_t is immutable and thread-safe. Writers, tokenizers, samplers,        */
/* curricula, loaders and batches are handle-exclusive. A loader runs its own worker threads;     */
/* destroying it stops and joins them. Batches and the tensors taken from them stay valid after   */
/* the loader is destroyed. Every function of this section: Since 0.1.                            */
/* ---------------------------------------------------------------------------------------------- */

typedef struct ds_data ds_data_t;                     /* an open token dataset (read only) */
typedef struct ds_data_writer ds_data_writer_t;       /* a token dataset being written */
typedef struct ds_data_tokenizer ds_data_tokenizer_t; /* byte-level or GPT-2 BPE tokenizer */
typedef struct ds_sampler ds_sampler_t;               /* distributed sampler (DistributedSampler) */
typedef struct ds_data_curriculum ds_data_curriculum_t; /* curriculum schedule (+ metric buckets) */
typedef struct ds_data_loader ds_data_loader_t;       /* batches with background prefetch */
typedef struct ds_data_batch ds_data_batch_t;         /* one micro-batch handed out by a loader */

#define DS_DATA_FORMAT_VERSION 1

/* ---- tokenizers ---- */

enum ds_data_tokenizer_kind {
    DS_DATA_TOKENIZER_BYTES = 0, /* one token per byte (ids 0..255), end-of-text 256; needs no files */
    DS_DATA_TOKENIZER_GPT2 = 1   /* GPT-2 byte-level BPE from the caller's vocab.json + merges.txt */
};

typedef struct ds_data_tokenizer_options {
    uint32_t struct_size;
    uint32_t abi_version;
    int32_t kind;             /* DS_DATA_TOKENIZER_* (default BYTES) */
    int32_t reserved;         /* 0 */
    const char* vocab_path;   /* GPT2: vocab.json (token string -> id) */
    const char* merges_path;  /* GPT2: merges.txt ("#version" line, then one "a b" pair per line) */
} ds_data_tokenizer_options_t;

DS_API void ds_data_tokenizer_options_init(ds_data_tokenizer_options_t* opts);

/* Create a tokenizer. Nothing is downloaded: GPT-2 needs the two files given.
 * @return DS_OK, DS_ERR_INVALID_ARG (unknown kind, missing path), DS_ERR_VERSION, DS_ERR_IO (a file
 *         cannot be read), DS_ERR_CORRUPT (malformed vocab or merges: the message names file and line).
 * Since: 0.1 */
DS_API ds_status_t ds_data_tokenizer_create(const ds_data_tokenizer_options_t* opts, ds_data_tokenizer_t** out);
DS_API void ds_data_tokenizer_destroy(ds_data_tokenizer_t* tok);

/* Number of token ids (bytes: 257; GPT-2: the largest id in vocab.json + 1). */
DS_API ds_status_t ds_data_tokenizer_get_vocab_size(const ds_data_tokenizer_t* tok, int64_t* out);
/* The end-of-text id: 256 for bytes, the id of "<|endoftext|>" for GPT-2.
 * @return DS_OK, DS_ERR_NOT_FOUND (the vocabulary has no "<|endoftext|>"). */
DS_API ds_status_t ds_data_tokenizer_get_eot(const ds_data_tokenizer_t* tok, int32_t* out);

/* Encode len bytes of text (UTF-8; invalid bytes are kept byte-exact) into ids. (buf, cap, len):
 * with cap too small nothing is written, *len holds the count, DS_ERR_BUFFER_TOO_SMALL.
 * @return DS_OK, DS_ERR_INVALID_ARG, DS_ERR_INVALID_HANDLE, DS_ERR_BUFFER_TOO_SMALL. */
DS_API ds_status_t ds_data_tokenizer_encode(ds_data_tokenizer_t* tok, const char* text, uint64_t text_len,
                                            int32_t* buf, uint64_t cap, uint64_t* len);
/* Decode ids to bytes (not NUL-terminated); decode(encode(x)) == x for any bytes x.
 * @return DS_OK, DS_ERR_INVALID_ARG (an id outside [0, vocab size): the message names its index),
 *         DS_ERR_INVALID_HANDLE, DS_ERR_BUFFER_TOO_SMALL. */
DS_API ds_status_t ds_data_tokenizer_decode(ds_data_tokenizer_t* tok, const int32_t* ids, uint64_t n_ids,
                                            char* buf, uint64_t cap, uint64_t* len);

/* ---- writing datasets ---- */

typedef struct ds_data_writer_options {
    uint32_t struct_size;
    uint32_t abi_version;
    int32_t token_bytes;   /* 2 (u16, default) or 4 (u32) */
    int32_t reserved;      /* 0 */
    int64_t vocab_size;    /* recorded in the header; > 0: ids >= vocab_size are rejected; 0 (default):
                              unknown */
    uint64_t buffer_bytes; /* write buffer; 0 (default): 8 MiB */
} ds_data_writer_options_t;

DS_API void ds_data_writer_options_init(ds_data_writer_options_t* opts);

/* Start writing a dataset at path. Data goes to a temporary file beside it; ds_data_writer_commit
 * writes the header and offsets, syncs and renames it into place. Memory stays bounded (the write
 * buffer) whatever the size. @return DS_OK, DS_ERR_INVALID_ARG, DS_ERR_VERSION, DS_ERR_IO. */
DS_API ds_status_t ds_data_writer_create(const char* path, const ds_data_writer_options_t* opts,
                                         ds_data_writer_t** out);
/* Append ids to the current document. @return DS_OK, DS_ERR_INVALID_ARG (a negative id, an id >=
 * vocab_size, or > 65535 with token_bytes 2: the message names its index and value), DS_ERR_STATE
 * (committed or failed), DS_ERR_IO. */
DS_API ds_status_t ds_data_writer_append(ds_data_writer_t* w, const int32_t* ids, uint64_t n_ids);
/* End the current document (an empty document is recorded as one of length 0). */
DS_API ds_status_t ds_data_writer_end_document(ds_data_writer_t* w);
/* Finish the file (a document still open is ended first). Later appends give DS_ERR_STATE.
 * @return DS_OK, DS_ERR_STATE, DS_ERR_IO. */
DS_API ds_status_t ds_data_writer_commit(ds_data_writer_t* w);
/* Destroy; an uncommitted dataset is discarded (its temporary file removed). NULL is a no-op. */
DS_API void ds_data_writer_destroy(ds_data_writer_t* w);

/* How ds_data_build splits input text into documents. */
enum ds_data_split {
    DS_DATA_SPLIT_FILE = 0,      /* each input file is one document */
    DS_DATA_SPLIT_LINE = 1,      /* each non-empty line ("\n"; the newline is not encoded) */
    DS_DATA_SPLIT_PARAGRAPH = 2, /* blocks separated by one or more blank lines */
    DS_DATA_SPLIT_DELIMITER = 3  /* text between occurrences of options.delimiter */
};

/* Progress of ds_data_build, called on the calling thread about every chunk. Return 0 to go on,
 * anything else to stop (ds_data_build then returns DS_ABORTED and writes nothing). */
typedef int32_t (*ds_data_progress_fn)(uint64_t bytes_done, uint64_t bytes_total, uint64_t n_documents,
                                       uint64_t n_tokens, void* user_data);

typedef struct ds_data_build_options {
    uint32_t struct_size;
    uint32_t abi_version;
    const ds_data_tokenizer_t* tokenizer; /* NULL (default): byte-level. Not retained. */
    int32_t split;                 /* DS_DATA_SPLIT_* (default FILE) */
    int32_t append_eot;            /* 1: append the tokenizer's end-of-text id to every document */
    const char* delimiter;         /* SPLIT_DELIMITER: the separator, e.g. "<|endoftext|>" */
    int32_t token_bytes;           /* 0 (default): 2 when the vocabulary fits in u16, else 4 */
    int32_t keep_empty;            /* 1: keep documents without tokens; 0 (default): skip them */
    uint64_t chunk_bytes;          /* read size; 0 (default): 4 MiB */
    ds_data_progress_fn progress;  /* NULL: none */
    void* progress_user_data;
} ds_data_build_options_t;

typedef struct ds_data_build_stats {
    uint32_t struct_size;
    uint32_t abi_version;
    uint64_t n_files;
    uint64_t n_documents;
    uint64_t n_tokens;
    uint64_t bytes_in;
    uint64_t bytes_out;
    double seconds;
} ds_data_build_stats_t;

DS_API void ds_data_build_options_init(ds_data_build_options_t* opts);
DS_API void ds_data_build_stats_init(ds_data_build_stats_t* stats);

/* Tokenize text files into a dataset at out_path, streaming: memory is bounded by the chunk size,
 * whatever the size of the inputs. stats may be NULL.
 * @return DS_OK, DS_ERR_INVALID_ARG, DS_ERR_VERSION, DS_ERR_IO (the message names the file),
 *         DS_ABORTED (the progress callback asked to stop; nothing is left at out_path). */
DS_API ds_status_t ds_data_build(const char* out_path, const char* const* inputs, int32_t n_inputs,
                                 const ds_data_build_options_t* opts, ds_data_build_stats_t* stats);

/* ---- reading datasets ---- */

enum ds_data_verify {
    DS_DATA_VERIFY_HEADER = 0,  /* header fields, checksum and sizes against the file size */
    DS_DATA_VERIFY_OFFSETS = 1, /* + every document offset (default) */
    DS_DATA_VERIFY_FULL = 2     /* + the token checksum and every id < vocab_size (reads the file) */
};

typedef struct ds_data_options {
    uint32_t struct_size;
    uint32_t abi_version;
    int32_t verify;              /* DS_DATA_VERIFY_* (default OFFSETS) */
    int32_t reserved;            /* 0 */
    uint64_t max_resident_bytes; /* mapped pages are released after about this many bytes were read;
                                    0 (default): 256 MiB */
} ds_data_options_t;

typedef struct ds_data_info {
    uint32_t struct_size;
    uint32_t abi_version;
    uint32_t format_version;
    int32_t token_bytes;
    uint64_t n_documents;
    uint64_t n_tokens;
    uint64_t file_bytes;
    int64_t vocab_size;      /* 0: unknown */
    uint32_t tokens_crc32c;  /* CRC-32C of the token bytes, as recorded */
    int32_t reserved;        /* 0 */
} ds_data_info_t;

DS_API void ds_data_options_init(ds_data_options_t* opts);
DS_API void ds_data_info_init(ds_data_info_t* info);

/* Open and validate a dataset (memory-mapped, read only).
 * @return DS_OK, DS_ERR_INVALID_ARG, DS_ERR_VERSION (options, or a newer format version),
 *         DS_ERR_IO (cannot open or map), DS_ERR_CORRUPT (truncated, bad magic, bad checksum, offsets
 *         out of order: the message names the file and the byte offset). */
DS_API ds_status_t ds_data_open(const char* path, const ds_data_options_t* opts, ds_data_t** out);
/* Close. Loaders keep the dataset alive until they are destroyed. NULL is a no-op. */
DS_API void ds_data_close(ds_data_t* data);

/* Header facts. info->struct_size must be set (ds_data_info_init). */
DS_API ds_status_t ds_data_get_info(const ds_data_t* data, ds_data_info_t* info);
/* Document index's ids into (buf, cap, len). @return DS_OK, DS_ERR_INVALID_ARG (index out of
 * range), DS_ERR_INVALID_HANDLE, DS_ERR_BUFFER_TOO_SMALL, DS_ERR_CORRUPT. Thread-safe. */
DS_API ds_status_t ds_data_get_document(const ds_data_t* data, uint64_t index, int32_t* buf, uint64_t cap,
                                        uint64_t* len);
/* n ids starting at token position first of the concatenated stream (documents back to back) into
 * out, which holds n values. @return DS_OK, DS_ERR_INVALID_ARG (first + n > n_tokens). Thread-safe. */
DS_API ds_status_t ds_data_read_tokens(const ds_data_t* data, uint64_t first, uint64_t n, int32_t* out);

/* Per-sample metric files (custom curriculum difficulty): a 32-byte header ("DSMETRIC", version,
 * count, checksum) and one int64 value per sample. Sample i of a loader is window i or document i.
 * @return DS_OK, DS_ERR_INVALID_ARG, DS_ERR_IO. */
DS_API ds_status_t ds_data_metric_write(const char* path, const int64_t* values, uint64_t n_values);

/* ---- distributed sampler ---- */

typedef struct ds_sampler_options {
    uint32_t struct_size;
    uint32_t abi_version;
    uint64_t n_samples;  /* dataset length (> 0) */
    int32_t rank;        /* in [0, world_size) (default 0) */
    int32_t world_size;  /* number of replicas (default 1) */
    int64_t seed;        /* default 0, as DistributedSampler */
    int32_t shuffle;     /* 1 (default): permutation seeded seed + epoch; 0: 0, 1, 2, ... */
    int32_t drop_last;   /* 0 (default): pad by repeating from the start so every rank gets
                            ceil(n / world) samples; 1: drop the tail instead (floor) */
} ds_sampler_options_t;

DS_API void ds_sampler_options_init(ds_sampler_options_t* opts);
/* @return DS_OK, DS_ERR_INVALID_ARG (n_samples 0, rank outside [0, world_size), world_size < 1,
 *         drop_last with n_samples < world_size), DS_ERR_VERSION. */
DS_API ds_status_t ds_sampler_create(const ds_sampler_options_t* opts, ds_sampler_t** out);
DS_API void ds_sampler_destroy(ds_sampler_t* s);

/* Samples this rank gets per epoch (DistributedSampler's num_samples). */
DS_API ds_status_t ds_sampler_get_length(const ds_sampler_t* s, int64_t* out);
/* This rank's whole share for an epoch, in order, into (buf, cap, len). Does not move the cursor. */
DS_API ds_status_t ds_sampler_get_indices(ds_sampler_t* s, int64_t epoch, int64_t* buf, uint64_t cap,
                                          uint64_t* len);
/* Up to max_n next indices of the current epoch into out; *out_n = 0 once the epoch is exhausted
 * (then call ds_sampler_set_epoch). */
DS_API ds_status_t ds_sampler_next(ds_sampler_t* s, int64_t* out, uint64_t max_n, uint64_t* out_n);
/* Start an epoch at position 0 (DistributedSampler.set_epoch). epoch >= 0. */
DS_API ds_status_t ds_sampler_set_epoch(ds_sampler_t* s, int64_t epoch);
/* The cursor: the epoch and how many of this rank's indices were handed out. Setting a saved cursor
 * continues exactly where it stopped. @return DS_OK, DS_ERR_INVALID_ARG (position outside
 * [0, length], negative epoch). */
DS_API ds_status_t ds_sampler_get_cursor(const ds_sampler_t* s, int64_t* out_epoch, int64_t* out_position);
DS_API ds_status_t ds_sampler_set_cursor(ds_sampler_t* s, int64_t epoch, int64_t position);

/* ---- curriculum learning ---- */

enum ds_data_schedule {
    DS_DATA_SCHEDULE_FIXED_LINEAR = 0,   /* total_curriculum_step, difficulty_step */
    DS_DATA_SCHEDULE_FIXED_ROOT = 1,     /* + root_degree */
    DS_DATA_SCHEDULE_FIXED_DISCRETE = 2, /* difficulty[k], max_step[k - 1] */
    DS_DATA_SCHEDULE_CUSTOM = 3          /* custom_fn */
};

/* How fixed_linear / fixed_root treat a difficulty rounded below min_difficulty. DeepSpeed 0.19.6
 * does not clamp it (min 8 with difficulty_step 16 gives 0 at first); later versions do. */
enum ds_data_floor {
    DS_DATA_FLOOR_NONE = 0,     /* DeepSpeed <= 0.19.6 (default) */
    DS_DATA_FLOOR_MIN = 1,      /* max(d, min_difficulty) */
    DS_DATA_FLOOR_STEP_MIN = 2  /* max(d, the first multiple of difficulty_step >= min_difficulty) */
};

enum ds_data_difficulty_type {
    DS_DATA_DIFFICULTY_VALUE = 0,      /* difficulty is a metric value */
    DS_DATA_DIFFICULTY_PERCENTILE = 1  /* difficulty is a percentile of samples sorted by metric */
};

/* A custom schedule: the difficulty at a step. Called on the thread that asks. */
typedef int64_t (*ds_data_difficulty_fn)(int64_t step, void* user_data);

typedef struct ds_data_curriculum_options {
    uint32_t struct_size;
    uint32_t abi_version;
    /* Config source (not retained): the legacy top-level "curriculum_learning" block, or the metric
     * of "data_efficiency.data_sampling.curriculum_learning.curriculum_metrics" named by metric
     * (or the only one). Fields below that are set override the config. */
    const ds_config_t* config;
    const char* metric;            /* NULL: legacy block, else the only metric */
    int32_t schedule_type;         /* DS_DATA_SCHEDULE_*; DS_UNSET_I32: config */
    int32_t floor_mode;            /* DS_DATA_FLOOR_* (default NONE) */
    int64_t min_difficulty;        /* DS_UNSET_I64: config */
    int64_t max_difficulty;        /* DS_UNSET_I64: config */
    int64_t total_curriculum_step; /* DS_UNSET_I64: config */
    int64_t difficulty_step;       /* DS_UNSET_I64: config */
    double root_degree;            /* <= 0: config */
    const int64_t* discrete_difficulty; /* n_discrete + 1 values (copied); NULL: config */
    const int64_t* discrete_max_step;   /* n_discrete values (copied) */
    int32_t n_discrete;
    int32_t difficulty_type;       /* DS_DATA_DIFFICULTY_*; DS_UNSET_I32: config, else VALUE */
    ds_data_difficulty_fn custom_fn;  /* may be called from loader threads; must not call dsabi */
    void* custom_user_data;
    /* Metric-bucket sampling (DeepSpeed's data sampler, clustering_type "schedule_based"): a
     * per-sample metric file (ds_data_metric_write). NULL: config key "sample_to_metric_path";
     * absent: no buckets (the difficulty is reported and, for seqlen, truncates windows). */
    const char* metric_path;
} ds_data_curriculum_options_t;

DS_API void ds_data_curriculum_options_init(ds_data_curriculum_options_t* opts);
/* @return DS_OK, DS_ERR_INVALID_ARG (missing or inconsistent schedule settings: the message names the
 *         key), DS_ERR_NOT_FOUND (the config has no such metric), DS_ERR_VERSION, DS_ERR_IO and
 *         DS_ERR_CORRUPT (metric file). */
DS_API ds_status_t ds_data_curriculum_create(const ds_data_curriculum_options_t* opts, ds_data_curriculum_t** out);
DS_API void ds_data_curriculum_destroy(ds_data_curriculum_t* c);
/* The schedule's difficulty at step (CurriculumScheduler.get_difficulty). Stateless. */
DS_API ds_status_t ds_data_curriculum_get_difficulty(ds_data_curriculum_t* c, int64_t step, int64_t* out);
/* update_difficulty(step): moves the current difficulty while it is below the maximum; returns it. */
DS_API ds_status_t ds_data_curriculum_update(ds_data_curriculum_t* c, int64_t step, int64_t* out);
DS_API ds_status_t ds_data_curriculum_get_current(const ds_data_curriculum_t* c, int64_t* out);

/* ---- dynamic batching ---- */

enum ds_data_lr_scaling {
    DS_DATA_LR_SCALING_LINEAR = 0, /* lr * batch / base_batch (default) */
    DS_DATA_LR_SCALING_SQRT = 1,   /* lr * sqrt(batch / base_batch) */
    DS_DATA_LR_SCALING_NONE = 2    /* lr */
};

enum ds_data_picking_order {
    DS_DATA_PICK_DATALOADER = 0, /* dataset order (default) */
    DS_DATA_PICK_SEQLEN = 1,     /* shortest first */
    DS_DATA_PICK_RANDOM = 2      /* seeded shuffle (seed + epoch) */
};

/* DeepSpeed's scale_lr. @return DS_OK, DS_ERR_INVALID_ARG (unknown method, base_batch_size <= 0). */
DS_API ds_status_t ds_data_scale_lr(int32_t method, int64_t base_batch_size, int64_t batch_size, double base_lr,
                                    double* out);

/* ---- loader ---- */

enum ds_data_mode {
    DS_DATA_MODE_WINDOWS = 0,  /* sample i = seq_len ids from position i * window_stride of the
                                  concatenated stream: tokens [B, seq_len] */
    DS_DATA_MODE_DOCUMENTS = 1 /* sample i = document i (cut at seq_len when > 0), padded to the longest
                                  in the batch; with dynamic batching, documents are packed */
};

/* Tensors of a batch (ds_data_batch_get_tensor). */
enum ds_data_field {
    DS_DATA_FIELD_TOKENS = 0,       /* [B, T] ids (dtype of options.dtype); padding = pad_id */
    DS_DATA_FIELD_LENGTHS = 1,      /* [B] i32: real tokens per row */
    DS_DATA_FIELD_SAMPLE_IDS = 2,   /* [n] i64: the dataset samples of the batch, in row order */
    DS_DATA_FIELD_CU_SEQLENS = 3,   /* packed only: [n_segments + 1] i32, segment starts in the
                                       flattened [B * T] tokens (flash-attention varlen layout); each
                                       sequence is a segment and so is each row's padding tail, so the
                                       segments tile [0, B * T) */
    DS_DATA_FIELD_POSITION_IDS = 4, /* packed only: [B, T] i32, restarting at 0 for each sequence */
    DS_DATA_FIELD_SEQUENCE_IDS = 5  /* packed only: [B, T] i32, index of the sequence in its row, -1
                                       on padding (attention may not cross these boundaries) */
};

typedef struct ds_data_loader_options {
    uint32_t struct_size;
    uint32_t abi_version;
    /* Not retained. Read: train_micro_batch_size_per_gpu, gradient_accumulation_steps,
     * dataloader_drop_last, data_efficiency.{seed, data_sampling.{num_workers, pin_memory,
     * curriculum_learning, dynamic_batching}} and the legacy curriculum_learning block. */
    const ds_config_t* config;
    int32_t mode;                 /* DS_DATA_MODE_* (default WINDOWS) */
    int32_t seq_len;              /* windows: ids per sample (required); documents: cut length (0: none) */
    int32_t window_stride;        /* windows: 0 (default) = seq_len (use seq_len - 1 for input/target
                                     pairs that share one id) */
    int32_t micro_batch_size;     /* DS_UNSET_I32: config, else 1 */
    int32_t gradient_accumulation_steps; /* DS_UNSET_I32: config, else 1 */
    int32_t rank;                 /* default 0 */
    int32_t world_size;           /* data-parallel size (default 1) */
    int32_t shuffle;              /* default 1 */
    int32_t drop_last;            /* DS_UNSET_I32: config dataloader_drop_last, else 0 */
    int32_t reserved;             /* 0 */
    int64_t seed;                 /* DS_UNSET_I64: 0 (DistributedSampler), or data_efficiency.seed when
                                     curriculum or dynamic batching is on */
    int32_t num_workers;          /* prefetch threads; DS_UNSET_I32: config num_workers when > 0, else 1 */
    int32_t prefetch_depth;       /* batches prepared ahead (default 4) */
    int32_t pin_memory;           /* -1 (default): pinned when a CUDA device is present or the config
                                     sets data_sampling.pin_memory; 0: no; 1: pinned, falling back to
                                     host memory if it cannot be had (batch info and query_info say) */
    int32_t dtype;                /* DS_DTYPE_I32 (default) or DS_DTYPE_I64 */
    int32_t pad_id;               /* padding id (default 0) */
    int32_t dynamic_batching;     /* DS_UNSET_I32: config dynamic_batching.enabled; 1 needs DOCUMENTS */
    int64_t max_tokens;           /* dynamic batching: DS_UNSET_I64: config */
    int32_t lr_scaling_method;    /* DS_DATA_LR_SCALING_*; DS_UNSET_I32: config, else LINEAR */
    int32_t min_batch_size;       /* sequences per pack; DS_UNSET_I32: config, else 1 */
    int32_t max_batch_size;       /* DS_UNSET_I32: config, else unlimited (0) */
    int32_t picking_order;        /* DS_DATA_PICK_*; DS_UNSET_I32: config, else DATALOADER */
    const ds_data_curriculum_t* curriculum; /* retained; NULL: built from the config when enabled */
    int64_t start_step;           /* global step of the first batch (resume sets it via the cursor) */
} ds_data_loader_options_t;

/* Where a loader is: saved in checkpoints, restored with ds_data_loader_set_cursor. */
typedef struct ds_data_cursor {
    uint32_t struct_size;
    uint32_t abi_version;
    int64_t epoch;
    int64_t position;     /* micro-batches this rank consumed in the epoch */
    int64_t global_step;  /* optimizer steps consumed (micro-batches / accumulation steps) */
    int64_t consumed_samples; /* samples this rank consumed since the first epoch */
} ds_data_cursor_t;

typedef struct ds_data_batch_info {
    uint32_t struct_size;
    uint32_t abi_version;
    int64_t epoch;
    int64_t index;            /* micro-batch index in the epoch (this rank) */
    int64_t global_step;      /* the optimizer step this micro-batch belongs to */
    int64_t n_rows;           /* B */
    int64_t n_columns;        /* T */
    int64_t n_samples;        /* sequences (> n_rows when packed) */
    int64_t n_tokens;         /* real tokens (excluding padding) */
    int64_t difficulty;       /* curriculum difficulty used, or 0 */
    double lr_scale;          /* dynamic batching: multiply the LR by this for global_step; else 1 */
    int64_t global_batch_samples; /* dynamic batching: sequences in the whole global batch; else 0 */
    int32_t pinned;           /* 1: tensors are in pinned host memory */
    int32_t reserved;
} ds_data_batch_info_t;

DS_API void ds_data_loader_options_init(ds_data_loader_options_t* opts);
DS_API void ds_data_cursor_init(ds_data_cursor_t* cursor);
DS_API void ds_data_batch_info_init(ds_data_batch_info_t* info);

/* Create a loader over data (retained). Starts num_workers threads that prepare batches ahead.
 * @return DS_OK, DS_ERR_INVALID_ARG (the message names the field or config key), DS_ERR_VERSION,
 *         DS_ERR_INVALID_HANDLE, DS_ERR_CONFIG_VALUE (a config value dsabi cannot use),
 *         DS_ERR_NOMEM. */
DS_API ds_status_t ds_data_loader_create(ds_data_t* data, const ds_data_loader_options_t* opts,
                                         ds_data_loader_t** out);
/* Stop and join the workers, then free. Batches already handed out stay valid. NULL is a no-op. */
DS_API void ds_data_loader_destroy(ds_data_loader_t* loader);

/* The next micro-batch of this rank. At the end of an epoch *out is NULL (DS_OK) once; the next
 * call starts the following epoch. An error in a worker (e.g. an I/O error) is returned here with
 * the worker's message; the loader then stays failed (DS_ERR_STATE) until its cursor is set.
 * Ownership: release *out with ds_data_batch_destroy. */
DS_API ds_status_t ds_data_loader_next(ds_data_loader_t* loader, ds_data_batch_t** out);
/* Micro-batches this rank gets per epoch (for the current epoch with dynamic batching). */
DS_API ds_status_t ds_data_loader_get_length(ds_data_loader_t* loader, int64_t* out);
DS_API ds_status_t ds_data_loader_get_cursor(const ds_data_loader_t* loader, ds_data_cursor_t* cursor);
/* Continue from a saved cursor: batches prepared ahead are dropped and the stream resumes exactly
 * where the cursor was taken. @return DS_OK, DS_ERR_INVALID_ARG (out of range), DS_ERR_VERSION. */
DS_API ds_status_t ds_data_loader_set_cursor(ds_data_loader_t* loader, const ds_data_cursor_t* cursor);
/* The resolved settings as JSON (mode, batch sizes, workers, pinned, sampler, curriculum, dynamic
 * batching: packs per epoch, LR scaling). Release *out_json with ds_free(). */
DS_API ds_status_t ds_data_loader_query_info(const ds_data_loader_t* loader, char** out_json);

DS_API ds_status_t ds_data_batch_get_info(const ds_data_batch_t* batch, ds_data_batch_info_t* info);
/* A new tensor handle on one field (shares the batch's memory, which lives until the batch and every
 * tensor taken from it are destroyed). @return DS_OK, DS_ERR_INVALID_ARG (unknown field),
 * DS_ERR_NOT_FOUND (the field is not part of this kind of batch). Release with ds_tensor_destroy. */
DS_API ds_status_t ds_data_batch_get_tensor(const ds_data_batch_t* batch, int32_t field, ds_tensor_t** out);
DS_API void ds_data_batch_destroy(ds_data_batch_t* batch);

/* ---------------------------------------------------------------------------------------------- */
/* Function table for hosts that dlopen() dsabi                                                    */
/*                                                                                                 */
/*     void* lib = dlopen("libdsabi.so.0", RTLD_NOW | RTLD_LOCAL);                                  */
/*     ds_status_t (*get_api)(uint32_t, const ds_api_t**) = dlsym(lib, "ds_get_api");              */
/*     const ds_api_t* api; get_api(DS_ABI_VERSION, &api); api->config_parse(...);                 */
/*                                                                                                 */
/* The table only grows at the end; check struct_size before using a member newer than your header. */
/* ---------------------------------------------------------------------------------------------- */

typedef struct ds_api {
    uint32_t struct_size;
    uint32_t abi_version;
    /* library */
    void (*lib_options_init)(ds_lib_options_t*);
    ds_status_t (*lib_init)(const ds_lib_options_t*);
    ds_status_t (*lib_shutdown)(void);
    uint32_t (*version_number)(void);
    const char* (*version_string)(void);
    ds_status_t (*lib_build_info)(char**);
    ds_status_t (*lib_set_log)(ds_log_fn, void*, int32_t);
    void (*free)(void*);
    const char* (*status_str)(ds_status_t);
    const char* (*last_error)(void);
    void (*last_error_clear)(void);
    ds_status_t (*get_proc_address)(const char*, void**);
    /* config */
    void (*config_options_init)(ds_config_options_t*);
    ds_status_t (*config_parse)(const char*, uint64_t, const ds_config_options_t*, ds_config_t**);
    ds_status_t (*config_load_file)(const char*, const ds_config_options_t*, ds_config_t**);
    void (*config_destroy)(ds_config_t*);
    ds_status_t (*config_get_kind)(const ds_config_t*, const char*, int32_t*);
    ds_status_t (*config_get_i64)(const ds_config_t*, const char*, int64_t*);
    ds_status_t (*config_get_f64)(const ds_config_t*, const char*, double*);
    ds_status_t (*config_get_bool)(const ds_config_t*, const char*, int32_t*);
    ds_status_t (*config_get_str)(const ds_config_t*, const char*, char*, uint64_t, uint64_t*);
    ds_status_t (*config_get_count)(const ds_config_t*, const char*, int64_t*);
    ds_status_t (*config_to_json)(const ds_config_t*, const char*, int32_t, char**);
    ds_status_t (*config_query_diagnostics)(const ds_config_t*, char**);
    ds_status_t (*config_get_world_size)(const ds_config_t*, int32_t*, int32_t*);
    /* devices */
    void (*dev_info_init)(ds_dev_info_t*);
    ds_status_t (*dev_count)(int32_t, int32_t*);
    ds_status_t (*dev_get_info)(int32_t, int32_t, ds_dev_info_t*);
    ds_status_t (*dev_synchronize)(int32_t, int32_t);
    /* tensors */
    ds_status_t (*dtype_size)(int32_t, uint64_t*);
    const char* (*dtype_name)(int32_t);
    ds_status_t (*tensor_create)(int32_t, int32_t, const int64_t*, int32_t, int32_t, ds_tensor_t**);
    ds_status_t (*tensor_wrap)(void*, int32_t, int32_t, const int64_t*, const int64_t*, int32_t, int32_t,
                               ds_tensor_t**);
    ds_status_t (*tensor_from_dlpack)(struct DLManagedTensor*, ds_tensor_t**);
    ds_status_t (*tensor_to_dlpack)(ds_tensor_t*, struct DLManagedTensor**);
    void (*tensor_destroy)(ds_tensor_t*);
    ds_status_t (*tensor_get_dtype)(const ds_tensor_t*, int32_t*);
    ds_status_t (*tensor_get_ndim)(const ds_tensor_t*, int32_t*);
    ds_status_t (*tensor_get_shape)(const ds_tensor_t*, int64_t*, uint64_t, uint64_t*);
    ds_status_t (*tensor_get_strides)(const ds_tensor_t*, int64_t*, uint64_t, uint64_t*);
    ds_status_t (*tensor_get_numel)(const ds_tensor_t*, int64_t*);
    ds_status_t (*tensor_get_nbytes)(const ds_tensor_t*, uint64_t*);
    ds_status_t (*tensor_get_data)(const ds_tensor_t*, void**);
    ds_status_t (*tensor_get_device)(const ds_tensor_t*, int32_t*, int32_t*);
    ds_status_t (*tensor_is_contiguous)(const ds_tensor_t*, int32_t*);
    ds_status_t (*tensor_copy)(ds_tensor_t*, const ds_tensor_t*);
    ds_status_t (*tensor_clone)(const ds_tensor_t*, int32_t, int32_t, ds_tensor_t**);
    ds_status_t (*tensor_fill)(ds_tensor_t*, double);
    /* communication */
    void (*comm_options_init)(ds_comm_options_t*);
    ds_status_t (*comm_create)(const ds_comm_options_t*, ds_comm_t**);
    void (*comm_destroy)(ds_comm_t*);
    ds_status_t (*comm_abort)(ds_comm_t*);
    ds_status_t (*comm_get_rank)(const ds_comm_t*, int32_t*);
    ds_status_t (*comm_get_world_size)(const ds_comm_t*, int32_t*);
    ds_status_t (*comm_get_local_rank)(const ds_comm_t*, int32_t*);
    ds_status_t (*comm_query_info)(const ds_comm_t*, char**);
    ds_status_t (*comm_split)(ds_comm_t*, int32_t, int32_t, ds_comm_t**);
    ds_status_t (*comm_all_reduce)(ds_comm_t*, ds_tensor_t*, int32_t, ds_work_t**);
    ds_status_t (*comm_broadcast)(ds_comm_t*, ds_tensor_t*, int32_t, ds_work_t**);
    ds_status_t (*comm_reduce)(ds_comm_t*, ds_tensor_t*, int32_t, int32_t, ds_work_t**);
    ds_status_t (*comm_all_gather)(ds_comm_t*, const ds_tensor_t*, ds_tensor_t*, ds_work_t**);
    ds_status_t (*comm_all_gather_list)(ds_comm_t*, const ds_tensor_t*, ds_tensor_t* const*, int32_t, ds_work_t**);
    ds_status_t (*comm_reduce_scatter)(ds_comm_t*, const ds_tensor_t*, ds_tensor_t*, int32_t, ds_work_t**);
    ds_status_t (*comm_all_to_all)(ds_comm_t*, const ds_tensor_t*, ds_tensor_t*, ds_work_t**);
    ds_status_t (*comm_barrier)(ds_comm_t*, ds_work_t**);
    ds_status_t (*comm_send)(ds_comm_t*, const ds_tensor_t*, int32_t, int32_t, ds_work_t**);
    ds_status_t (*comm_recv)(ds_comm_t*, ds_tensor_t*, int32_t, int32_t, ds_work_t**);
    ds_status_t (*work_wait)(ds_work_t*, int32_t);
    ds_status_t (*work_test)(ds_work_t*, int32_t*);
    void (*work_destroy)(ds_work_t*);
    ds_status_t (*comm_log_summary)(const ds_comm_t*, int32_t, char**);
    ds_status_t (*comm_log_reset)(ds_comm_t*);
    /* data */
    void (*data_tokenizer_options_init)(ds_data_tokenizer_options_t* opts);
    ds_status_t (*data_tokenizer_create)(const ds_data_tokenizer_options_t* opts, ds_data_tokenizer_t** out);
    void (*data_tokenizer_destroy)(ds_data_tokenizer_t* tok);
    ds_status_t (*data_tokenizer_get_vocab_size)(const ds_data_tokenizer_t* tok, int64_t* out);
    ds_status_t (*data_tokenizer_get_eot)(const ds_data_tokenizer_t* tok, int32_t* out);
    ds_status_t (*data_tokenizer_encode)(ds_data_tokenizer_t* tok, const char* text, uint64_t text_len, int32_t* buf, uint64_t cap, uint64_t* len);
    ds_status_t (*data_tokenizer_decode)(ds_data_tokenizer_t* tok, const int32_t* ids, uint64_t n_ids, char* buf, uint64_t cap, uint64_t* len);
    void (*data_writer_options_init)(ds_data_writer_options_t* opts);
    ds_status_t (*data_writer_create)(const char* path, const ds_data_writer_options_t* opts, ds_data_writer_t** out);
    ds_status_t (*data_writer_append)(ds_data_writer_t* w, const int32_t* ids, uint64_t n_ids);
    ds_status_t (*data_writer_end_document)(ds_data_writer_t* w);
    ds_status_t (*data_writer_commit)(ds_data_writer_t* w);
    void (*data_writer_destroy)(ds_data_writer_t* w);
    void (*data_build_options_init)(ds_data_build_options_t* opts);
    void (*data_build_stats_init)(ds_data_build_stats_t* stats);
    ds_status_t (*data_build)(const char* out_path, const char* const* inputs, int32_t n_inputs, const ds_data_build_options_t* opts, ds_data_build_stats_t* stats);
    void (*data_options_init)(ds_data_options_t* opts);
    void (*data_info_init)(ds_data_info_t* info);
    ds_status_t (*data_open)(const char* path, const ds_data_options_t* opts, ds_data_t** out);
    void (*data_close)(ds_data_t* data);
    ds_status_t (*data_get_info)(const ds_data_t* data, ds_data_info_t* info);
    ds_status_t (*data_get_document)(const ds_data_t* data, uint64_t index, int32_t* buf, uint64_t cap, uint64_t* len);
    ds_status_t (*data_read_tokens)(const ds_data_t* data, uint64_t first, uint64_t n, int32_t* out);
    ds_status_t (*data_metric_write)(const char* path, const int64_t* values, uint64_t n_values);
    void (*sampler_options_init)(ds_sampler_options_t* opts);
    ds_status_t (*sampler_create)(const ds_sampler_options_t* opts, ds_sampler_t** out);
    void (*sampler_destroy)(ds_sampler_t* s);
    ds_status_t (*sampler_get_length)(const ds_sampler_t* s, int64_t* out);
    ds_status_t (*sampler_get_indices)(ds_sampler_t* s, int64_t epoch, int64_t* buf, uint64_t cap, uint64_t* len);
    ds_status_t (*sampler_next)(ds_sampler_t* s, int64_t* out, uint64_t max_n, uint64_t* out_n);
    ds_status_t (*sampler_set_epoch)(ds_sampler_t* s, int64_t epoch);
    ds_status_t (*sampler_get_cursor)(const ds_sampler_t* s, int64_t* out_epoch, int64_t* out_position);
    ds_status_t (*sampler_set_cursor)(ds_sampler_t* s, int64_t epoch, int64_t position);
    void (*data_curriculum_options_init)(ds_data_curriculum_options_t* opts);
    ds_status_t (*data_curriculum_create)(const ds_data_curriculum_options_t* opts, ds_data_curriculum_t** out);
    void (*data_curriculum_destroy)(ds_data_curriculum_t* c);
    ds_status_t (*data_curriculum_get_difficulty)(ds_data_curriculum_t* c, int64_t step, int64_t* out);
    ds_status_t (*data_curriculum_update)(ds_data_curriculum_t* c, int64_t step, int64_t* out);
    ds_status_t (*data_curriculum_get_current)(const ds_data_curriculum_t* c, int64_t* out);
    ds_status_t (*data_scale_lr)(int32_t method, int64_t base_batch_size, int64_t batch_size, double base_lr, double* out);
    void (*data_loader_options_init)(ds_data_loader_options_t* opts);
    void (*data_cursor_init)(ds_data_cursor_t* cursor);
    void (*data_batch_info_init)(ds_data_batch_info_t* info);
    ds_status_t (*data_loader_create)(ds_data_t* data, const ds_data_loader_options_t* opts, ds_data_loader_t** out);
    void (*data_loader_destroy)(ds_data_loader_t* loader);
    ds_status_t (*data_loader_next)(ds_data_loader_t* loader, ds_data_batch_t** out);
    ds_status_t (*data_loader_get_length)(ds_data_loader_t* loader, int64_t* out);
    ds_status_t (*data_loader_get_cursor)(const ds_data_loader_t* loader, ds_data_cursor_t* cursor);
    ds_status_t (*data_loader_set_cursor)(ds_data_loader_t* loader, const ds_data_cursor_t* cursor);
    ds_status_t (*data_loader_query_info)(const ds_data_loader_t* loader, char** out_json);
    ds_status_t (*data_batch_get_info)(const ds_data_batch_t* batch, ds_data_batch_info_t* info);
    ds_status_t (*data_batch_get_tensor)(const ds_data_batch_t* batch, int32_t field, ds_tensor_t** out);
    void (*data_batch_destroy)(ds_data_batch_t* batch);
    /* ops */
    ds_status_t (*op_get_cpu_isa)(int32_t* out);
    ds_status_t (*op_set_cpu_isa)(int32_t isa);
    ds_status_t (*op_set_num_threads)(int32_t n);
    ds_status_t (*op_get_num_threads)(int32_t* out);
    void (*optim_options_init)(ds_optim_options_t* opt, int32_t kind);
    ds_status_t (*op_optim_step)(const ds_optim_options_t* opt, int64_t step, ds_tensor_t* const* params, int32_t n_params, ds_tensor_t* const* grads, int32_t n_grads, ds_tensor_t* const* state1, int32_t n_state1, ds_tensor_t* const* state2, int32_t n_state2, ds_tensor_t* const* params_lp, int32_t n_params_lp, int32_t* skipped);
    ds_status_t (*op_global_norm)(ds_tensor_t* const* tensors, int32_t n_tensors, double* out);
    ds_status_t (*op_scale)(ds_tensor_t* const* tensors, int32_t n_tensors, double alpha);
    ds_status_t (*op_find_nonfinite)(ds_tensor_t* const* tensors, int32_t n_tensors, int32_t* out);
    ds_status_t (*op_cast)(const ds_tensor_t* src, ds_tensor_t* dst, float scale);
    ds_status_t (*op_embedding)(const ds_tensor_t* weight, const ds_tensor_t* ids, ds_tensor_t* out);
    ds_status_t (*op_embedding_backward)(const ds_tensor_t* ids, const ds_tensor_t* dout, ds_tensor_t* dweight);
    ds_status_t (*op_layer_norm)(const ds_tensor_t* x, const ds_tensor_t* weight, const ds_tensor_t* bias, float eps, ds_tensor_t* y, ds_tensor_t* mean, ds_tensor_t* rstd);
    ds_status_t (*op_layer_norm_backward)(const ds_tensor_t* dy, const ds_tensor_t* x, const ds_tensor_t* weight, const ds_tensor_t* mean, const ds_tensor_t* rstd, ds_tensor_t* dx, ds_tensor_t* dweight, ds_tensor_t* dbias);
    ds_status_t (*op_rms_norm)(const ds_tensor_t* x, const ds_tensor_t* weight, float eps, ds_tensor_t* y, ds_tensor_t* rstd);
    ds_status_t (*op_rms_norm_backward)(const ds_tensor_t* dy, const ds_tensor_t* x, const ds_tensor_t* weight, const ds_tensor_t* rstd, ds_tensor_t* dx, ds_tensor_t* dweight);
    ds_status_t (*op_activation)(int32_t act, const ds_tensor_t* x, ds_tensor_t* y);
    ds_status_t (*op_activation_backward)(int32_t act, const ds_tensor_t* x, const ds_tensor_t* dy, ds_tensor_t* dx);
    ds_status_t (*op_swiglu)(const ds_tensor_t* gate, const ds_tensor_t* up, ds_tensor_t* y);
    ds_status_t (*op_swiglu_backward)(const ds_tensor_t* gate, const ds_tensor_t* up, const ds_tensor_t* dy, ds_tensor_t* dgate, ds_tensor_t* dup);
    ds_status_t (*op_add)(const ds_tensor_t* a, const ds_tensor_t* b, ds_tensor_t* y);
    ds_status_t (*op_sum_rows)(const ds_tensor_t* dy, ds_tensor_t* dbias);
    ds_status_t (*op_softmax)(const ds_tensor_t* x, float scale, ds_tensor_t* y);
    ds_status_t (*op_softmax_backward)(const ds_tensor_t* y, const ds_tensor_t* dy, float scale, ds_tensor_t* dx);
    ds_status_t (*op_cross_entropy)(const ds_tensor_t* logits, const ds_tensor_t* targets, int64_t ignore_index, float dloss, ds_tensor_t* losses, ds_tensor_t* dlogits);
    ds_status_t (*op_rope)(const ds_tensor_t* x, const ds_tensor_t* positions, float theta, int32_t inverse, ds_tensor_t* y);
    ds_status_t (*op_dropout)(const ds_tensor_t* x, float p, uint64_t seed, uint64_t offset, ds_tensor_t* y);
    void (*gemm_options_init)(ds_gemm_options_t* opt);
    ds_status_t (*op_gemm)(const ds_tensor_t* a, const ds_tensor_t* b, const ds_tensor_t* bias, ds_tensor_t* c, const ds_gemm_options_t* opt);
    void (*attn_options_init)(ds_attn_options_t* opt);
    ds_status_t (*op_attention)(const ds_tensor_t* q, const ds_tensor_t* k, const ds_tensor_t* v, ds_tensor_t* o, ds_tensor_t* lse, const ds_attn_options_t* opt);
    ds_status_t (*op_attention_backward)(const ds_tensor_t* q, const ds_tensor_t* k, const ds_tensor_t* v, const ds_tensor_t* o, const ds_tensor_t* dout, const ds_tensor_t* lse, ds_tensor_t* dq, ds_tensor_t* dk, ds_tensor_t* dv, const ds_attn_options_t* opt);
    void (*quant_options_init)(ds_quant_options_t* opt);
    ds_status_t (*op_quantize)(const ds_tensor_t* x, ds_tensor_t* q, ds_tensor_t* scales, ds_tensor_t* zeros, const ds_quant_options_t* opt);
    ds_status_t (*op_dequantize)(const ds_tensor_t* q, const ds_tensor_t* scales, const ds_tensor_t* zeros, ds_tensor_t* y, const ds_quant_options_t* opt);
    ds_status_t (*op_gemm_wq)(const ds_tensor_t* x, const ds_tensor_t* wq, const ds_tensor_t* scales, const ds_tensor_t* zeros, const ds_tensor_t* bias, ds_tensor_t* y, const ds_quant_options_t* opt);
} ds_api_t;

/* The function table for ABI version abi_version (pass DS_ABI_VERSION). The table is static.
 * @return DS_OK, DS_ERR_INVALID_ARG (out NULL), DS_ERR_VERSION (abi_version not served). */
DS_API ds_status_t ds_get_api(uint32_t abi_version, const ds_api_t** out);

/* Look up any exported dsabi function by name ("ds_config_parse"), for optional or newer calls.
 * @return DS_OK, DS_ERR_INVALID_ARG, DS_ERR_NOT_FOUND. */
DS_API ds_status_t ds_get_proc_address(const char* name, void** out);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* DSABI_H */
