// Element conversions of the optim family shared by the CPU kernels and the CUDA module
// (kernels/cuda/ops_optim*.cu includes this header): f64 <-> f16, bf16, FP8 E4M3 (the "fn" variant:
// no infinity, S.1111.111 is nan, largest finite 448) and FP8 E5M2 (IEEE-like, largest finite
// 57344), rounding to nearest, ties to even, straight from f64 (no double rounding through f32).
//
// Overflow: f16 and bf16 become infinity (IEEE); FP8 saturates to the largest finite value, and so
// does an infinite input (E4M3 has no infinity; E5M2 follows the same rule so both FP8 formats
// behave alike). nan stays nan (sign kept).
//
// Everything lives in an anonymous namespace: each translation unit (baseline, AVX2, AVX-512, CUDA)
// gets its own copy, so the linker can never pick an instance compiled for another instruction set.
#pragma once

#include <stdint.h>

#include <cstring>

#include "op_optim.h"

#ifdef __CUDACC__
#define DSO_HD __host__ __device__ __forceinline__
#else
#define DSO_HD inline
#endif

namespace dsoptim {
namespace {

DSO_HD uint64_t f64_bits(double x) {
#ifdef __CUDA_ARCH__
    return static_cast<uint64_t>(__double_as_longlong(x));
#else
    uint64_t u;
    std::memcpy(&u, &x, 8);
    return u;
#endif
}

DSO_HD double f64_from_bits(uint64_t u) {
#ifdef __CUDA_ARCH__
    return __longlong_as_double(static_cast<long long>(u));
#else
    double x;
    std::memcpy(&x, &u, 8);
    return x;
#endif
}

// A small binary float format: M mantissa bits, exponent bias B; codes above MAXC overflow to INFC
// (or saturate to MAXC when SAT); nan is NANC; the sign is bit SIGN.
template <int M, int B, uint32_t MAXC, uint32_t INFC, uint32_t NANC, int SIGN, bool SAT>
DSO_HD uint32_t f64_to_small(double x) {
    const uint64_t u = f64_bits(x);
    const uint32_t sign = static_cast<uint32_t>(u >> 63) << SIGN;
    const uint64_t a = u & 0x7fffffffffffffffull;
    const int E = static_cast<int>(a >> 52);
    const uint64_t frac = a & 0x000fffffffffffffull;
    if (E == 0x7ff) return frac ? (sign | NANC) : (sign | (SAT ? MAXC : INFC));
    if (E == 0) return sign;  // zero, or an f64 subnormal: far below half of every target's smallest value
    const int e = E - 1023;
    constexpr int emin = 1 - B;
    const int shift = 52 - M + (e < emin ? emin - e : 0);
    if (shift >= 54) return sign;  // below half of the smallest subnormal: rounds to zero
    const uint64_t sig = (1ull << 52) | frac;
    uint64_t r = sig >> shift;
    const uint64_t rem = sig & ((1ull << shift) - 1);
    const uint64_t half = 1ull << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    // Normal: code = (exponent field << M) + mantissa = ((e - emin) << M) + r (r carries the hidden
    // bit, and a carry out of the mantissa bumps the exponent by itself). Subnormal: code = r.
    const uint64_t code = (static_cast<uint64_t>(e < emin ? 0 : e - emin) << M) + r;
    if (code > MAXC) return sign | (SAT ? MAXC : INFC);
    return sign | static_cast<uint32_t>(code);
}

// Decode: EB exponent bits; FN: the E4M3 "fn" encoding (only all-ones is nan, no infinity).
template <int M, int B, int EB, bool FN>
DSO_HD double small_to_f64(uint32_t c) {
    const uint64_t sign = static_cast<uint64_t>((c >> (EB + M)) & 1u) << 63;
    const uint32_t ex = (c >> M) & ((1u << EB) - 1);
    const uint32_t man = c & ((1u << M) - 1);
    if (FN ? (ex == (1u << EB) - 1 && man == (1u << M) - 1) : (ex == (1u << EB) - 1)) {
        if (!FN && man == 0) return f64_from_bits(sign | 0x7ff0000000000000ull);
        return f64_from_bits(sign | 0x7ff8000000000000ull);
    }
    if (ex == 0) {
        // man * 2^(1 - B - M): exact in f64.
        const double v = static_cast<double>(man) * f64_from_bits(static_cast<uint64_t>(1023 + 1 - B - M) << 52);
        return f64_from_bits(f64_bits(v) | sign);
    }
    const uint64_t bits = sign | (static_cast<uint64_t>(static_cast<int>(ex) - B + 1023) << 52) |
                          (static_cast<uint64_t>(man) << (52 - M));
    return f64_from_bits(bits);
}

DSO_HD uint16_t f64_to_f16(double x) { return static_cast<uint16_t>(f64_to_small<10, 15, 0x7bffu, 0x7c00u, 0x7e00u, 15, false>(x)); }
DSO_HD uint16_t f64_to_bf16(double x) { return static_cast<uint16_t>(f64_to_small<7, 127, 0x7f7fu, 0x7f80u, 0x7fc0u, 15, false>(x)); }
DSO_HD uint8_t f64_to_e4m3(double x) { return static_cast<uint8_t>(f64_to_small<3, 7, 0x7eu, 0x7eu, 0x7fu, 7, true>(x)); }
DSO_HD uint8_t f64_to_e5m2(double x) { return static_cast<uint8_t>(f64_to_small<2, 15, 0x7bu, 0x7cu, 0x7eu, 7, true>(x)); }

DSO_HD double f16_to_f64(uint16_t c) { return small_to_f64<10, 15, 5, false>(c); }
DSO_HD double bf16_to_f64(uint16_t c) { return small_to_f64<7, 127, 8, false>(c); }
DSO_HD double e4m3_to_f64(uint8_t c) { return small_to_f64<3, 7, 4, true>(c); }
DSO_HD double e5m2_to_f64(uint8_t c) { return small_to_f64<2, 15, 5, false>(c); }

// Element i of a buffer of dtype as f64 (f32, f16, bf16, f64, FP8).
DSO_HD double load_f64(const void* p, int32_t dtype, int64_t i) {
    switch (dtype) {
        case DS_OPTIM_DT_F32: return static_cast<double>(static_cast<const float*>(p)[i]);
        case DS_OPTIM_DT_F16: return f16_to_f64(static_cast<const uint16_t*>(p)[i]);
        case DS_OPTIM_DT_BF16: return bf16_to_f64(static_cast<const uint16_t*>(p)[i]);
        case DS_OPTIM_DT_F64: return static_cast<const double*>(p)[i];
        case DS_OPTIM_DT_E4M3: return e4m3_to_f64(static_cast<const uint8_t*>(p)[i]);
        case DS_OPTIM_DT_E5M2: return e5m2_to_f64(static_cast<const uint8_t*>(p)[i]);
        default: return 0.0;
    }
}

// Store v as element i of a buffer of dtype, rounded to nearest even.
DSO_HD void store_f64(void* p, int32_t dtype, int64_t i, double v) {
    switch (dtype) {
        case DS_OPTIM_DT_F32: static_cast<float*>(p)[i] = static_cast<float>(v); break;
        case DS_OPTIM_DT_F16: static_cast<uint16_t*>(p)[i] = f64_to_f16(v); break;
        case DS_OPTIM_DT_BF16: static_cast<uint16_t*>(p)[i] = f64_to_bf16(v); break;
        case DS_OPTIM_DT_F64: static_cast<double*>(p)[i] = v; break;
        case DS_OPTIM_DT_E4M3: static_cast<uint8_t*>(p)[i] = f64_to_e4m3(v); break;
        case DS_OPTIM_DT_E5M2: static_cast<uint8_t*>(p)[i] = f64_to_e5m2(v); break;
        default: break;
    }
}

// Typed element access for templated kernels: T is float, double, or a tag for the 16/8-bit formats.
struct F16 {};
struct BF16 {};
struct E4M3 {};
struct E5M2 {};

template <class T> struct Elem;
template <> struct Elem<float> {
    using S = float;
    static DSO_HD double get(S x) { return static_cast<double>(x); }
    static DSO_HD S put(double v) { return static_cast<float>(v); }
};
template <> struct Elem<double> {
    using S = double;
    static DSO_HD double get(S x) { return x; }
    static DSO_HD S put(double v) { return v; }
};
template <> struct Elem<F16> {
    using S = uint16_t;
    static DSO_HD double get(S x) { return f16_to_f64(x); }
    static DSO_HD S put(double v) { return f64_to_f16(v); }
};
template <> struct Elem<BF16> {
    using S = uint16_t;
    static DSO_HD double get(S x) { return bf16_to_f64(x); }
    static DSO_HD S put(double v) { return f64_to_bf16(v); }
};
template <> struct Elem<E4M3> {
    using S = uint8_t;
    static DSO_HD double get(S x) { return e4m3_to_f64(x); }
    static DSO_HD S put(double v) { return f64_to_e4m3(v); }
};
template <> struct Elem<E5M2> {
    using S = uint8_t;
    static DSO_HD double get(S x) { return e5m2_to_f64(x); }
    static DSO_HD S put(double v) { return f64_to_e5m2(v); }
};

}  // namespace
}  // namespace dsoptim
