// CPU kernels of the attention ops (kernels/op_attn.h): flash-style forward and FlashAttention-2
// backward, f32 arithmetic, OpenMP over (batch, head, tile). attention()/attention_backward() allocate
// the scratch memory and pick the build for ds::op::cpu_isa().
#pragma once

#include <stddef.h>

#include "op_attn.h"

namespace ds::cpu {

void attention(const ds_attn_fwd_args_t& a);
void attention_backward(const ds_attn_bwd_args_t& a);

namespace attn_detail {
constexpr int kQ = 32;  // query rows per task
constexpr int kK = 64;  // keys per tile
constexpr int kR = 4;   // query rows processed together (register blocking)
// Scratch floats per thread: forward q, o [kQ][D], k^T [D][kK], v [kK][D], a row, m and l [kQ].
static constexpr size_t fwd_scratch(int D) {
    return static_cast<size_t>(2 * kQ + 2 * kK + 1) * static_cast<size_t>(D) + 2 * kQ + 16;
}
// Backward: k^T, v^T [D][kK], two [kK][D] accumulators, q, dO [kQ][D], a row, lse and Dsum [kQ].
static constexpr size_t bwd_scratch(int D) {
    return static_cast<size_t>(4 * kK + 2 * kQ + 1) * static_cast<size_t>(D) + 2 * kQ + 16;
}
}  // namespace attn_detail

// One build per instruction set (attn.cpp, attn_avx2.cpp, attn_avx512.cpp). scratch holds
// nthreads * fwd_scratch(D) (bwd_scratch(D)) floats; dsum B * Hq * S floats.
#define DS_ATTN_DECLARE(ns)                                                                   \
    namespace ns {                                                                            \
    void attention_fwd(const ds_attn_fwd_args_t& a, float* scratch, int nthreads);            \
    void attention_bwd(const ds_attn_bwd_args_t& a, float* dsum, float* scratch, int nthreads); \
    }
DS_ATTN_DECLARE(attn_scalar)
DS_ATTN_DECLARE(attn_avx2)
DS_ATTN_DECLARE(attn_avx512)
#undef DS_ATTN_DECLARE

}  // namespace ds::cpu
