// CPU kernels of the gemm family: GEMM, group-wise quantization, weight-only quantized linear.
//
// The GEMM is our own blocked kernel (no BLAS: Debian's reference BLAS, which is what a BLAS
// dependency resolves to on a stock system, runs at about 1-2 GFLOP/s per core, and the optimised
// ones are not a dependency we may require). Structure (Goto / BLIS): panels of op(B) (KC x NC) and
// blocks of op(A) (MC x KC) are packed into f32, converting f16/bf16 on the way, and an MR x NR
// register-blocked micro-kernel (AVX-512 14x32, AVX2 6x16, scalar 4x16) runs over them with f32
// accumulation. See gemm_driver.hpp.
#pragma once

#include "op_gemm.h"

namespace ds::cpu {

// Every shape, dtype and leading dimension in the args is valid (checked by the C API).
void gemm(const ds_op_gemm_args_t& args);
void quantize(const ds_op_quant_args_t& args);
void dequantize(const ds_op_dequant_args_t& args);
void gemm_wq(const ds_op_gemm_wq_args_t& args);

namespace detail {
// One translation unit per instruction set (gemm_scalar.cpp, gemm_avx2.cpp, gemm_avx512.cpp).
void gemm_scalar(const ds_op_gemm_args_t& args);
void gemm_avx2(const ds_op_gemm_args_t& args);
void gemm_avx512(const ds_op_gemm_args_t& args);
}  // namespace detail

}  // namespace ds::cpu
