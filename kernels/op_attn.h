/*
 * op_attn.h - argument structs of the attention ops (DS_KOP_ATTENTION, DS_KOP_ATTENTION_BWD), shared by
 * the CPU kernels (kernels/cpu/attn*.cpp) and the CUDA module (kernels/cuda/ops_attn*.cu).
 *
 * Layouts (contiguous, BSHD as flash-attn): q, o, dq, dout [B, S, Hq, D]; k, v, dk, dv [B, Skv, Hkv, D];
 * lse [B, Hq, S] f32 (natural log of the row's sum of exp(scale * q.k)). Query head h uses kv head
 * h / (Hq / Hkv). causal: query i sees key j iff j <= i + (Skv - S); a row that sees no key has output 0
 * and lse -inf. The entry points (src/capi/api_op_attn.cpp) have validated everything; scale is final
 * (never 0). Structs only grow at the end.
 */
#ifndef DSABI_OP_ATTN_H
#define DSABI_OP_ATTN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* dtype codes: the values of enum ds_dtype in dsabi.h (which the CUDA module does not include). */
#define DS_ATTN_DTYPE_F32 0
#define DS_ATTN_DTYPE_F16 1
#define DS_ATTN_DTYPE_BF16 2

typedef struct ds_attn_fwd_args {
    const void* q;
    const void* k;
    const void* v;
    void* o;
    float* lse; /* may be NULL */
    int64_t batch, seq_q, seq_kv;
    int32_t heads_q, heads_kv, head_dim;
    int32_t dtype; /* DS_ATTN_DTYPE_* (CUDA: F16 or BF16) */
    int32_t causal;
    float scale;
} ds_attn_fwd_args_t;

typedef struct ds_attn_bwd_args {
    const void* q;
    const void* k;
    const void* v;
    const void* o;
    const void* dout;
    const float* lse;
    void* dq; /* overwritten */
    void* dk;
    void* dv;
    int64_t batch, seq_q, seq_kv;
    int32_t heads_q, heads_kv, head_dim;
    int32_t dtype;
    int32_t causal;
    float scale;
} ds_attn_bwd_args_t;

#ifdef __cplusplus
}
#endif

#endif
