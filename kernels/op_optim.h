/*
 * op_optim.h - argument structs of the optim family (optimizer steps, norms, scaling, non-finite
 * checks, casts), shared by the CPU kernels (kernels/cpu/optim*.cpp) and the CUDA module
 * (kernels/cuda/ops_optim*.cu). Plain C: raw pointers to contiguous data on the op's device, element
 * counts, dtypes (enum ds_dtype values as int32). Host-side arrays (the tensor tables) and host
 * outputs (norm, flag, skipped) are plain host memory even for CUDA ops.
 *
 * Structs only grow at the end; a changed layout gets a new DS_KOP_* index (backend_ops_abi.h).
 */
#ifndef DSABI_OP_OPTIM_H
#define DSABI_OP_OPTIM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* dtype and optimizer codes: the values of enum ds_dtype and enum ds_optim_kind in dsabi.h (which the
 * CUDA module does not include; src/capi/api_op_optim.cpp checks that they agree). */
#define DS_OPTIM_DT_F32 0
#define DS_OPTIM_DT_F16 1
#define DS_OPTIM_DT_BF16 2
#define DS_OPTIM_DT_F64 3
#define DS_OPTIM_DT_E4M3 8
#define DS_OPTIM_DT_E5M2 9
#define DS_OPTIM_K_ADAM 0
#define DS_OPTIM_K_ADAMW 1
#define DS_OPTIM_K_LAMB 2
#define DS_OPTIM_K_LION 3
#define DS_OPTIM_K_SGD 4
#define DS_OPTIM_K_ADAGRAD 5

/* One parameter of an optimizer step: every buffer has `numel` elements. Unused buffers are NULL. */
typedef struct ds_optim_tensor_args {
    float* param;        /* f32 master weights, updated in place */
    const void* grad;    /* grad_dtype */
    float* state1;       /* f32 (exp_avg, momentum buffer, Adagrad sum) or NULL */
    float* state2;       /* f32 (exp_avg_sq) or NULL */
    void* param_lp;      /* lp_dtype copy of the updated param, or NULL */
    int64_t numel;
} ds_optim_tensor_args_t;

/* DS_KOP_OPTIM_STEP: one step of `kind` (enum ds_optim_kind) over n_tensors parameters. The
 * hyper-parameters are those of ds_optim_options_t, already validated by the C API. With
 * check_finite, a grad element g with g * grad_scale not finite anywhere makes the step write
 * nothing; *skipped (host, may be NULL) receives 1 then, else 0. */
typedef struct ds_optim_step_args {
    int32_t kind;
    int32_t grad_dtype;      /* DS_DTYPE_F32 / F16 / BF16, every grad */
    int32_t lp_dtype;        /* DS_DTYPE_F16 / BF16 when param_lp is given, else -1 */
    int32_t check_finite;
    int64_t step;            /* 1-based */
    float lr, beta1, beta2, eps, weight_decay;
    int32_t bias_correction;
    float momentum, dampening;
    int32_t nesterov;
    float lr_decay, max_coeff, min_coeff, grad_scale;
    int32_t n_tensors;
    const ds_optim_tensor_args_t* tensors; /* host array of n_tensors entries */
    int32_t* skipped;        /* host output, may be NULL */
} ds_optim_step_args_t;

/* A tensor of a list op (global norm, scale, find non-finite): any of f32, f16, bf16, f64. */
typedef struct ds_optim_buf {
    void* data;
    int64_t numel;
    int32_t dtype;
    int32_t reserved;
} ds_optim_buf_t;

/* DS_KOP_GLOBAL_NORM: *out (host) = sqrt(sum of squares of every element). Synchronises.
 * DS_KOP_SCALE: every element *= alpha, in place (asynchronous).
 * DS_KOP_FIND_NONFINITE: *flag (host) = 1 if an element is inf or nan, else 0. Synchronises. */
typedef struct ds_optim_list_args {
    const ds_optim_buf_t* tensors; /* host array of n_tensors entries */
    int32_t n_tensors;
    int32_t reserved;
    double alpha;   /* scale */
    double* out;    /* global norm */
    int32_t* flag;  /* find non-finite */
} ds_optim_list_args_t;

/* DS_KOP_CAST: dst[i] = convert(src[i] * scale) for numel elements, computed in f64, rounded to
 * nearest even; to FP8 saturating (inf too) to the largest finite value, nan stays nan. */
typedef struct ds_optim_cast_args {
    const void* src;
    void* dst;
    int64_t numel;
    int32_t src_dtype;
    int32_t dst_dtype;
    float scale;
    int32_t reserved;
} ds_optim_cast_args_t;

#ifdef __cplusplus
}
#endif

#endif
