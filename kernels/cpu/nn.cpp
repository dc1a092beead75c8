// CPU kernels of the nn family: the baseline (x86-64) build of nn_impl.hpp and the dispatchers that
// pick the build matching ds::op::cpu_isa().
#define NN_ISA nn_scalar
#include "cpu/nn_impl.hpp"
#undef NN_ISA

namespace ds::cpu {

#define DS_NN_DISPATCH(name, type)                                       \
    void name(const type& a) {                                            \
        switch (ds::op::cpu_isa()) {                                      \
            case DS_CPU_ISA_AVX512: nn_avx512::name(a); break;            \
            case DS_CPU_ISA_AVX2: nn_avx2::name(a); break;                \
            default: nn_scalar::name(a); break;                           \
        }                                                                 \
    }
DS_NN_CPU_KERNELS(DS_NN_DISPATCH)
#undef DS_NN_DISPATCH

int64_t nn_first_bad_index(const void* idx, int32_t idtype, int64_t n, int64_t hi, bool has_ignore, int64_t ignore,
                           int64_t* value) {
    for (int64_t i = 0; i < n; ++i) {
        const int64_t v = idtype == DS_DTYPE_I64 ? static_cast<const int64_t*>(idx)[i] : static_cast<const int32_t*>(idx)[i];
        if (has_ignore && v == ignore) continue;
        if (v < 0 || v >= hi) {
            if (value) *value = v;
            return i;
        }
    }
    return -1;
}

}  // namespace ds::cpu
