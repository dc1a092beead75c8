// CPU GEMM: run-time choice of the micro-kernel's instruction set (ds::op::cpu_isa()).
#include "gemm.hpp"

#include "op/cpu.hpp"

namespace ds::cpu {

void gemm(const ds_op_gemm_args_t& args) {
    switch (ds::op::cpu_isa()) {
        case DS_CPU_ISA_AVX512: detail::gemm_avx512(args); break;
        case DS_CPU_ISA_AVX2: detail::gemm_avx2(args); break;
        default: detail::gemm_scalar(args); break;
    }
}

}  // namespace ds::cpu
