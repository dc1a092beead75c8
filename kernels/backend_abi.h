/*
 * backend_abi.h - the frozen, versioned table between libdsabi and a device backend module.
 *
 * A backend is a shared module (libdsabi_cuda.so) that exports exactly one symbol,
 * ds_backend_entry, returning a const ds_backend_v1_t*. libdsabi dlopen()s it at init, checks
 * api_version and struct_size, and only then calls into it. The module may be rebuilt against a new
 * CUDA without relinking libdsabi. This is an internal interface: it is not part of dsabi.h, and a
 * new version gets a new struct (ds_backend_v2_t) while v1 stays frozen.
 *
 * Every function returns a ds_backend_rc (0 on success). On failure the module's thread-local text
 * is read with last_error(). Pointers named dev are device pointers of device index dev.
 */
#ifndef DSABI_BACKEND_ABI_H
#define DSABI_BACKEND_ABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DS_BACKEND_API_VERSION 1

enum ds_backend_rc {
    DS_BACKEND_OK = 0,
    DS_BACKEND_ERR = 1,       /* a runtime call failed */
    DS_BACKEND_NOMEM = 2,     /* device memory exhausted */
    DS_BACKEND_NO_DEVICE = 3, /* no driver, no GPU, or index out of range */
    DS_BACKEND_INVALID = 4    /* bad argument */
};

typedef struct ds_backend_dev_info {
    char name[128];
    uint64_t total_memory_bytes;
    uint64_t free_memory_bytes;
    int32_t compute_capability_major;
    int32_t compute_capability_minor;
    int32_t multiprocessor_count;
} ds_backend_dev_info_t;

/* Direction of a copy: which side is host memory. */
enum ds_backend_copy_kind {
    DS_BACKEND_H2D = 0,
    DS_BACKEND_D2H = 1,
    DS_BACKEND_D2D = 2
};

typedef struct ds_backend_v1 {
    uint32_t api_version; /* DS_BACKEND_API_VERSION */
    uint32_t struct_size; /* sizeof(ds_backend_v1_t) */
    const char* name;     /* "cuda" */

    int (*init)(void); /* creates nothing on the device; may be called more than once */
    int (*device_count)(int32_t* out);
    int (*device_info)(int32_t dev, ds_backend_dev_info_t* out);
    int (*malloc)(int32_t dev, uint64_t bytes, void** out);
    int (*free)(int32_t dev, void* ptr);
    /* dev: the device whose context runs the copy (the device side; for D2D the destination) */
    int (*memcpy)(int32_t dev, void* dst, const void* src, uint64_t bytes, int32_t kind);
    int (*memcpy_peer)(int32_t dst_dev, void* dst, int32_t src_dev, const void* src, uint64_t bytes);
    /* Set n elements of elem_size bytes (1, 2, 4 or 8) to the low elem_size bytes of pattern. */
    int (*fill)(int32_t dev, void* ptr, uint32_t elem_size, uint64_t n, uint64_t pattern);
    int (*synchronize)(int32_t dev);
    const char* (*last_error)(void);
    /* Versions as the CUDA runtime reports them (e.g. 13000); 0 when unknown. */
    int (*versions)(int32_t* runtime, int32_t* driver);
    /* Page-locked host memory usable with every device (portable); needs a GPU. */
    int (*host_alloc)(uint64_t bytes, void** out);
    int (*host_free)(void* ptr);
} ds_backend_v1_t;

typedef const ds_backend_v1_t* (*ds_backend_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif
