/*
 * backend_ops_abi.h - the versioned table of CUDA ops between libdsabi and libdsabi_cuda.so.
 *
 * The module exports ds_backend_ops_entry, returning a const ds_backend_ops_v1_t*. Each op is one
 * function `int fn(int32_t dev, const void* args)` at index ds_kop in `ops`; args points to the op's
 * plain C argument struct from kernels/op_<family>.h (shared with the CPU kernels). The function
 * makes dev current, launches on the legacy default stream, and returns a ds_backend_rc; on failure
 * the text is read with the device table's last_error(). A NULL entry is an op this module lacks.
 * Argument structs only grow at the end; a new layout gets a new op index.
 */
#ifndef DSABI_BACKEND_OPS_ABI_H
#define DSABI_BACKEND_OPS_ABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DS_BACKEND_OPS_API_VERSION 1

/* Op indices: stable, grouped by family. */
enum ds_kop {
    /* optim (kernels/op_optim.h) */
    DS_KOP_OPTIM_STEP = 0,
    DS_KOP_GLOBAL_NORM = 1,
    DS_KOP_SCALE = 2,
    DS_KOP_FIND_NONFINITE = 3,
    DS_KOP_CAST = 4,
    /* nn (kernels/op_nn.h) */
    DS_KOP_EMBEDDING = 16,
    DS_KOP_EMBEDDING_BWD = 17,
    DS_KOP_LAYER_NORM = 18,
    DS_KOP_LAYER_NORM_BWD = 19,
    DS_KOP_RMS_NORM = 20,
    DS_KOP_RMS_NORM_BWD = 21,
    DS_KOP_ACTIVATION = 22,
    DS_KOP_ACTIVATION_BWD = 23,
    DS_KOP_SWIGLU = 24,
    DS_KOP_SWIGLU_BWD = 25,
    DS_KOP_ADD = 26,
    DS_KOP_SUM_ROWS = 27,
    DS_KOP_SOFTMAX = 28,
    DS_KOP_SOFTMAX_BWD = 29,
    DS_KOP_CROSS_ENTROPY = 30,
    DS_KOP_ROPE = 31,
    DS_KOP_DROPOUT = 32,
    /* gemm and quantization (kernels/op_gemm.h) */
    DS_KOP_GEMM = 48,
    DS_KOP_QUANTIZE = 49,
    DS_KOP_DEQUANTIZE = 50,
    DS_KOP_GEMM_WQ = 51,
    /* attention (kernels/op_attn.h) */
    DS_KOP_ATTENTION = 64,
    DS_KOP_ATTENTION_BWD = 65,

    DS_KOP_COUNT = 80
};

typedef int (*ds_backend_op_fn)(int32_t dev, const void* args);

typedef struct ds_backend_ops_v1 {
    uint32_t api_version; /* DS_BACKEND_OPS_API_VERSION */
    uint32_t struct_size; /* sizeof(ds_backend_ops_v1_t) */
    int32_t n_ops;        /* entries in ops (DS_KOP_COUNT of the module's build) */
    const ds_backend_op_fn* ops;
} ds_backend_ops_v1_t;

typedef const ds_backend_ops_v1_t* (*ds_backend_ops_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif
