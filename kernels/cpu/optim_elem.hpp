// Scalar element formulas of the optim CPU kernels, included by optim.cpp, optim_avx2.cpp and
// optim_avx512.cpp (the vector kernels use them for their tails). Anonymous namespace: every
// translation unit keeps its own copy compiled for its own instruction set (an inline function with
// external linkage could be taken by the linker from an AVX-512 unit for the baseline one).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "cpu/optim.hpp"
#include "cpu/optim_convert.hpp"
#include "dsabi.h"

namespace ds::cpu::optim_isa {
namespace {

inline float bf16_to_f32(uint16_t h) {
    uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
}

inline float f16_to_f32(uint16_t h) { return static_cast<float>(dsoptim::f16_to_f64(h)); }
inline uint16_t f32_to_f16(float f) { return dsoptim::f64_to_f16(static_cast<double>(f)); }

template <int DT>
inline float load_as_f32(const void* p, int64_t i) {
    if constexpr (DT == DS_DTYPE_F16) return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    else if constexpr (DT == DS_DTYPE_BF16) return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    else return static_cast<const float*>(p)[i];
}

template <int DT>
inline void store_from_f32(void* p, int64_t i, float x) {
    if constexpr (DT == DS_DTYPE_F16) static_cast<uint16_t*>(p)[i] = f32_to_f16(x);
    else if constexpr (DT == DS_DTYPE_BF16) static_cast<uint16_t*>(p)[i] = f32_to_bf16(x);
    else if constexpr (DT == DS_DTYPE_F32) static_cast<float*>(p)[i] = x;
}

// One Adam/AdamW element (DeepSpeed CPU Adam = torch.optim.Adam/AdamW, eps outside the sqrt).
template <bool ADAMW>
inline void adam_elem(const AdamConst& c, float& p, float g, float& m, float& v) {
    g *= c.grad_scale;
    if constexpr (!ADAMW) g += c.l2 * p;
    m = c.beta1 * m + c.one_minus_beta1 * g;
    v = c.beta2 * v + (c.one_minus_beta2 * g) * g;
    const float den = std::sqrt(v) * c.inv_sqrt_bc2 + c.eps;
    if constexpr (ADAMW) p *= c.decay;
    p -= c.step_size * (m / den);
}

// Map (grad dtype, lp dtype, adamw) to an instance of K<GDT, LDT, ADAMW>::run.
template <template <int, int, bool> class K>
AdamFn pick_adam(int32_t gdt, int32_t ldt, bool adamw) {
#define DSO_PICK_L(G, W)                                                        \
    switch (ldt) {                                                              \
        case DS_DTYPE_F16: return &K<G, DS_DTYPE_F16, W>::run;                  \
        case DS_DTYPE_BF16: return &K<G, DS_DTYPE_BF16, W>::run;                \
        default: return &K<G, -1, W>::run;                                      \
    }
#define DSO_PICK_G(W)                                                           \
    switch (gdt) {                                                              \
        case DS_DTYPE_F16: DSO_PICK_L(DS_DTYPE_F16, W)                          \
        case DS_DTYPE_BF16: DSO_PICK_L(DS_DTYPE_BF16, W)                        \
        default: DSO_PICK_L(DS_DTYPE_F32, W)                                    \
    }
    if (adamw) {
        DSO_PICK_G(true)
    } else {
        DSO_PICK_G(false)
    }
#undef DSO_PICK_G
#undef DSO_PICK_L
}

// Scalar non-finite test of x * scale for a run of elements (the exponent bits of the product).
template <int DT>
inline bool nonfinite_run(const void* x, int64_t n, float scale) {
    uint32_t any = 0;
    for (int64_t i = 0; i < n; ++i) {
        float f = load_as_f32<DT>(x, i) * scale;
        uint32_t u;
        std::memcpy(&u, &f, 4);
        any |= static_cast<uint32_t>((u & 0x7f800000u) == 0x7f800000u);
    }
    return any != 0;
}

inline bool nonfinite_any(const void* x, int32_t dt, int64_t n, float scale) {
    switch (dt) {
        case DS_DTYPE_F16: return nonfinite_run<DS_DTYPE_F16>(x, n, scale);
        case DS_DTYPE_BF16: return nonfinite_run<DS_DTYPE_BF16>(x, n, scale);
        default: return nonfinite_run<DS_DTYPE_F32>(x, n, scale);
    }
}

template <int DT>
inline double sumsq_run(const void* x, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        const double d = static_cast<double>(load_as_f32<DT>(x, i));
        s += d * d;
    }
    return s;
}

inline double sumsq_any(const void* x, int32_t dt, int64_t n) {
    switch (dt) {
        case DS_DTYPE_F16: return sumsq_run<DS_DTYPE_F16>(x, n);
        case DS_DTYPE_BF16: return sumsq_run<DS_DTYPE_BF16>(x, n);
        default: return sumsq_run<DS_DTYPE_F32>(x, n);
    }
}

}  // namespace
}  // namespace ds::cpu::optim_isa
