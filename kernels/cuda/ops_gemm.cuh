// Shared between the gemm family's CUDA translation units (ops_gemm.cu: cuBLASLt GEMM;
// ops_gemm_quant.cu: quantization and weight-only quantized linear).
#pragma once

#include <cstdint>

#include "cuda_common.cuh"
#include "op_gemm.h"

namespace dscuda::gemm {

// Run the GEMM of g on the current device (dscuda::use_device already called) on the legacy default
// stream through cuBLASLt; asynchronous. Returns DS_BACKEND_OK or an rc with the text set.
int matmul(const ds_op_gemm_args_t& g);

// Fill DS_KOP_QUANTIZE, DS_KOP_DEQUANTIZE and DS_KOP_GEMM_WQ (ops_gemm_quant.cu).
void register_quant_ops(ds_backend_op_fn* table);

}  // namespace dscuda::gemm
