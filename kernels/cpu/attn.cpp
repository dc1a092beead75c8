// Attention on the CPU: the baseline x86-64 build of attn_impl.hpp, and the entry points that allocate
// scratch memory and dispatch on the instruction set.
#include "attn.hpp"

#define DS_ATTN_NS attn_scalar
#include "attn_impl.hpp"

#include <algorithm>
#include <vector>

#include "op/cpu.hpp"

namespace ds::cpu {

void attention(const ds_attn_fwd_args_t& a) {
    const int64_t tasks = a.batch * a.heads_q * ((a.seq_q + attn_detail::kQ - 1) / attn_detail::kQ);
    if (tasks == 0) return;
    const int nthreads = static_cast<int>(std::min<int64_t>(ds::op::threads(), tasks));
    std::vector<float> scratch(attn_detail::fwd_scratch(a.head_dim) * static_cast<size_t>(nthreads));
    switch (ds::op::cpu_isa()) {
        case DS_CPU_ISA_AVX512: attn_avx512::attention_fwd(a, scratch.data(), nthreads); break;
        case DS_CPU_ISA_AVX2: attn_avx2::attention_fwd(a, scratch.data(), nthreads); break;
        default: attn_scalar::attention_fwd(a, scratch.data(), nthreads); break;
    }
}

void attention_backward(const ds_attn_bwd_args_t& a) {
    const int64_t kv_tasks = a.batch * a.heads_kv * ((a.seq_kv + attn_detail::kK - 1) / attn_detail::kK);
    const int64_t q_tasks = a.batch * a.heads_q * ((a.seq_q + attn_detail::kQ - 1) / attn_detail::kQ);
    const int64_t tasks = std::max(kv_tasks, std::max(q_tasks, a.batch * a.seq_q));
    if (tasks == 0) return;
    const int nthreads = static_cast<int>(std::min<int64_t>(ds::op::threads(), tasks));
    std::vector<float> dsum(static_cast<size_t>(a.batch * a.heads_q * a.seq_q) + 1);
    std::vector<float> scratch(attn_detail::bwd_scratch(a.head_dim) * static_cast<size_t>(nthreads));
    switch (ds::op::cpu_isa()) {
        case DS_CPU_ISA_AVX512: attn_avx512::attention_bwd(a, dsum.data(), scratch.data(), nthreads); break;
        case DS_CPU_ISA_AVX2: attn_avx2::attention_bwd(a, dsum.data(), scratch.data(), nthreads); break;
        default: attn_scalar::attention_bwd(a, dsum.data(), scratch.data(), nthreads); break;
    }
}

}  // namespace ds::cpu
