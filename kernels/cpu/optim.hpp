// CPU kernels of the optim family: entry points called by src/capi/api_op_optim.cpp, and the
// per-instruction-set pieces (optim_avx2.cpp, optim_avx512.cpp) that optim.cpp dispatches to.
#pragma once

#include <cstdint>

#include "op_optim.h"

namespace ds::cpu {

// Entry points (arguments already validated; run on ds::op::threads() OpenMP threads).
void optim_step(const ds_optim_step_args_t& a);
void optim_global_norm(const ds_optim_list_args_t& a);    // writes *a.out
void optim_scale(const ds_optim_list_args_t& a);
void optim_find_nonfinite(const ds_optim_list_args_t& a); // writes *a.flag
void optim_cast(const ds_optim_cast_args_t& a);

namespace optim_isa {

// Constants of one Adam/AdamW step, folded on the host.
struct AdamConst {
    float beta1, beta2;
    float one_minus_beta1, one_minus_beta2;
    float eps;
    float step_size;     // lr / bias_correction1
    float inv_sqrt_bc2;  // 1 / sqrt(bias_correction2)
    float l2;            // Adam: weight_decay added to the gradient (0 for AdamW)
    float decay;         // AdamW: 1 - lr * weight_decay (1 for Adam)
    float grad_scale;
};

// One contiguous run of n elements of one parameter: p, m, v f32; g of the grad dtype; lp of the
// lp dtype or NULL.
using AdamFn = void (*)(const AdamConst& c, float* p, const void* g, float* m, float* v, void* lp, int64_t n);

// Kernel for (grad dtype, lp dtype or -1, AdamW?) of each instruction set; nullptr if that ISA
// was not compiled in.
AdamFn adam_scalar(int32_t grad_dtype, int32_t lp_dtype, bool adamw);
AdamFn adam_avx2(int32_t grad_dtype, int32_t lp_dtype, bool adamw);
AdamFn adam_avx512(int32_t grad_dtype, int32_t lp_dtype, bool adamw);

// True when some x * scale (x an element of a f32/f16/bf16 buffer) is inf or nan.
using NonfiniteFn = bool (*)(const void* x, int32_t dtype, int64_t n, float scale);
bool nonfinite_scalar(const void* x, int32_t dtype, int64_t n, float scale);
bool nonfinite_avx2(const void* x, int32_t dtype, int64_t n, float scale);
bool nonfinite_avx512(const void* x, int32_t dtype, int64_t n, float scale);

// Sum of squares of a f32/f16/bf16 buffer, accumulated in f64.
using SumsqFn = double (*)(const void* x, int32_t dtype, int64_t n);
double sumsq_scalar(const void* x, int32_t dtype, int64_t n);
double sumsq_avx2(const void* x, int32_t dtype, int64_t n);
double sumsq_avx512(const void* x, int32_t dtype, int64_t n);

}  // namespace optim_isa
}  // namespace ds::cpu
