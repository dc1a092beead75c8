/*
 * op_gemm.h - argument structs of the gemm family (GEMM, quantize, dequantize, weight-only quantized
 * linear), shared by the CPU kernels (kernels/cpu/gemm*.cpp, quant*.cpp) and the CUDA module
 * (kernels/cuda/ops_gemm*.cu, op indices DS_KOP_GEMM .. DS_KOP_GEMM_WQ). Plain C: raw pointers,
 * sizes in elements, dtypes as ds_dtype values. The C API (src/capi/api_op_gemm.cpp) has checked
 * every shape, dtype and device before a kernel sees these structs. Structs only grow at the end.
 */
#ifndef DSABI_OP_GEMM_H
#define DSABI_OP_GEMM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* dtype and epilogue codes: the values of enum ds_dtype and enum ds_epilogue in dsabi.h, which the
 * CUDA module does not include (src/capi/api_op_gemm.cpp asserts that they agree). */
#define DS_OPG_F32 0
#define DS_OPG_F16 1
#define DS_OPG_BF16 2
#define DS_OPG_EPILOGUE_NONE 0
#define DS_OPG_EPILOGUE_BIAS 1
#define DS_OPG_EPILOGUE_GELU 2
#define DS_OPG_EPILOGUE_BIAS_GELU 3

/* C[b] (m x n, row-major, leading dimension ldc) = epilogue(alpha * op(A[b]) op(B[b]) + beta * C[b]).
 * op(A) is m x k: A stored [m, k] (trans_a 0, lda >= k) or [k, m] (trans_a 1, lda >= m).
 * op(B) is k x n: B stored [k, n] (trans_b 0, ldb >= n) or [n, k] (trans_b 1, ldb >= k).
 * Batch b's matrices start at a + b * stride_a (elements); stride_b 0 shares B over the batch.
 * bias: n elements of c_dtype (epilogues BIAS, BIAS_GELU), NULL otherwise. beta is 0 with an
 * epilogue; beta 0 never reads C (NaNs in C are overwritten). */
typedef struct ds_op_gemm_args {
    const void* a;
    const void* b;
    const void* bias;
    void* c;
    int32_t a_dtype; /* f32, f16, bf16; the C API requires a_dtype == b_dtype */
    int32_t b_dtype;
    int32_t c_dtype; /* a_dtype or f32 */
    int32_t trans_a;
    int32_t trans_b;
    int32_t epilogue; /* ds_epilogue */
    float alpha;
    float beta;
    int64_t batch;
    int64_t m, n, k;
    int64_t lda, ldb, ldc;
    int64_t stride_a, stride_b, stride_c;
} ds_op_gemm_args_t;

/* Group-wise quantization along the last dimension of x[rows, cols] (ds_op_quantize):
 * bits 8: q is i8 (symmetric) or u8 (asymmetric) [rows, cols]; bits 4: u8 [rows, cols / 2], the even
 * element in the low nibble. scales and zeros (asymmetric only, else NULL) are f32
 * [rows, cols / group_size]. */
typedef struct ds_op_quant_args {
    const void* x;
    void* q;
    float* scales;
    float* zeros;
    int32_t x_dtype;
    int32_t bits;       /* 8 or 4 */
    int32_t group_size; /* divides cols (cols is even with 4 bits) */
    int32_t symmetric;
    int64_t rows, cols;
} ds_op_quant_args_t;

/* y[rows, cols] (float, y_dtype) = dequantized q (ds_op_dequantize). */
typedef struct ds_op_dequant_args {
    const void* q;
    const float* scales;
    const float* zeros;
    void* y;
    int32_t y_dtype;
    int32_t bits;
    int32_t group_size;
    int32_t symmetric;
    int64_t rows, cols;
} ds_op_dequant_args_t;

/* y[m, n] = x[m, k] dequant(wq)^T (+ bias[n]) (ds_op_gemm_wq); x, y and bias share dtype. wq, scales
 * and zeros describe an [n, k] weight exactly as ds_op_quant_args_t does (rows n, cols k). */
typedef struct ds_op_gemm_wq_args {
    const void* x;
    const void* wq;
    const float* scales;
    const float* zeros;
    const void* bias;
    void* y;
    int32_t dtype;
    int32_t bits;
    int32_t group_size;
    int32_t symmetric;
    int64_t m, n, k;
} ds_op_gemm_wq_args_t;

#ifdef __cplusplus
}
#endif

#endif
