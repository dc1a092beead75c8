// Helpers shared by the CPU kernels: scalar f16/bf16 conversions (round to nearest even), dtype
// dispatch, and the thread count. Kernels include this and nothing from the C API.
// The helpers are `static inline`: this header is compiled into translation units built for
// different instruction sets (*_avx2.cpp, *_avx512.cpp), and an ordinary inline function would be
// one COMDAT symbol for the whole library - the linker could keep the AVX-512 copy and baseline
// code would then execute AVX-512 instructions on a CPU without them.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "op/cpu.hpp"

namespace ds::cpu {

static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
}

static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13);
    } else if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else {  // subnormal: normalise
            int e = -1;
            do {
                ++e;
                man <<= 1;
            } while ((man & 0x400u) == 0);
            u = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t f32_to_f16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  // NaN
    if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
    if (a < 0x38800000u) {  // below the smallest normal half: subnormal or zero
        if (a < 0x33000000u) return static_cast<uint16_t>(sign);  // < 2^-25 rounds to 0
        uint32_t e = a >> 23;
        uint32_t m = (a & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e;  // 14 - (e - 127) + 13 - 1 ... number of bits to drop (>= 14)
        uint32_t halfway = 1u << (shift - 1);
        uint32_t rest = m & ((1u << shift) - 1);
        uint32_t r = m >> shift;
        if (rest > halfway || (rest == halfway && (r & 1u))) ++r;
        return static_cast<uint16_t>(sign | r);
    }
    uint32_t r = a - 0x38000000u;  // rebias exponent 127 -> 15 (shifted by 13)
    uint32_t lsb = (r >> 13) & 1u;
    r += 0xfffu + lsb;
    return static_cast<uint16_t>(sign | (r >> 13));
}

// Load element i of a float buffer of dtype (DS_DTYPE_F32/F16/BF16) as f32.
static inline float load_f32(const void* p, int32_t dtype, int64_t i) {
    switch (dtype) {
        case DS_DTYPE_F16: return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
        case DS_DTYPE_BF16: return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
        default: return static_cast<const float*>(p)[i];
    }
}

// Store v as element i of a float buffer of dtype (round to nearest even).
static inline void store_f32(void* p, int32_t dtype, int64_t i, float v) {
    switch (dtype) {
        case DS_DTYPE_F16: static_cast<uint16_t*>(p)[i] = f32_to_f16(v); break;
        case DS_DTYPE_BF16: static_cast<uint16_t*>(p)[i] = f32_to_bf16(v); break;
        default: static_cast<float*>(p)[i] = v; break;
    }
}

}  // namespace ds::cpu
