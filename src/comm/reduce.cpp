#include "comm/reduce.hpp"

#include <cmath>
#include <cstring>
#include <type_traits>

#include "core/dtype.hpp"
#include "dsabi.h"

namespace ds::comm {

float half_to_float(uint16_t h) {
    uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    float out;
    if (exp == 0) {
        out = std::ldexp(static_cast<float>(mant), -24);  // zero or subnormal, exact
        return sign ? -out : out;
    }
    uint32_t bits;
    if (exp == 31)
        bits = sign | 0x7f800000u | (mant << 13);
    else
        bits = sign | ((exp + 112u) << 23) | (mant << 13);
    std::memcpy(&out, &bits, 4);
    return out;
}

uint16_t float_to_half(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
    uint32_t a = x & 0x7fffffffu;
    if (a >= 0x7f800000u)  // inf or NaN (NaN stays NaN: keep a quiet bit)
        return static_cast<uint16_t>(sign | 0x7c00u | (a > 0x7f800000u ? (0x200u | ((a >> 13) & 0x3ffu)) : 0u));
    if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to infinity
    if (a < 0x38800000u) {                                                 // below 2^-14: subnormal half
        float mag;
        std::memcpy(&mag, &a, 4);
        // In units of 2^-24 the value is below 1024; nearbyint rounds to nearest even (1024 is the
        // smallest normal, whose encoding 0x400 is exactly right).
        return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::nearbyint(mag * 16777216.0f)));
    }
    uint32_t h = ((a >> 23) - 112u) << 10 | ((a >> 13) & 0x3ffu);
    uint32_t rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // carries into the exponent correctly
    return static_cast<uint16_t>(sign | h);
}

float bf16_to_float(uint16_t h) {
    uint32_t bits = static_cast<uint32_t>(h) << 16;
    float out;
    std::memcpy(&out, &bits, 4);
    return out;
}

uint16_t float_to_bf16(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
    x += 0x7fffu + ((x >> 16) & 1u);
    return static_cast<uint16_t>(x >> 16);
}

namespace {

struct Sum {
    template <class T>
    static T apply(T a, T b) { return a + b; }
};
struct Prod {
    template <class T>
    static T apply(T a, T b) { return a * b; }
};
struct Max {
    template <class T>
    static T apply(T a, T b) { return a < b ? b : a; }
};
struct Min {
    template <class T>
    static T apply(T a, T b) { return b < a ? b : a; }
};

// Integers wrap on overflow as NCCL does; do the arithmetic unsigned so that it is defined.
template <class T>
struct Unsigned {
    using type = T;
};
template <>
struct Unsigned<int8_t> {
    using type = uint8_t;
};
template <>
struct Unsigned<int32_t> {
    using type = uint32_t;
};
template <>
struct Unsigned<int64_t> {
    using type = uint64_t;
};

template <class T, class Op>
void reduce_plain(void* out, const void* a, const void* b, size_t n) {
    T* o = static_cast<T*>(out);
    const T* x = static_cast<const T*>(a);
    const T* y = static_cast<const T*>(b);
    for (size_t i = 0; i < n; ++i) o[i] = Op::apply(x[i], y[i]);
}

template <class T, class Op>
void reduce_int(void* out, const void* a, const void* b, size_t n) {
    using U = typename Unsigned<T>::type;
    T* o = static_cast<T*>(out);
    const T* x = static_cast<const T*>(a);
    const T* y = static_cast<const T*>(b);
    if constexpr (std::is_same_v<Op, Sum> || std::is_same_v<Op, Prod>) {
        for (size_t i = 0; i < n; ++i)
            o[i] = static_cast<T>(Op::apply(static_cast<U>(x[i]), static_cast<U>(y[i])));
    } else {
        for (size_t i = 0; i < n; ++i) o[i] = Op::apply(x[i], y[i]);
    }
}

template <class Op, float (*Load)(uint16_t), uint16_t (*Store)(float)>
void reduce_16(void* out, const void* a, const void* b, size_t n) {
    uint16_t* o = static_cast<uint16_t*>(out);
    const uint16_t* x = static_cast<const uint16_t*>(a);
    const uint16_t* y = static_cast<const uint16_t*>(b);
    for (size_t i = 0; i < n; ++i) o[i] = Store(Op::apply(Load(x[i]), Load(y[i])));
}

template <class Op>
ReduceFn pick(int32_t dtype) {
    switch (dtype) {
        case DS_DTYPE_F32: return reduce_plain<float, Op>;
        case DS_DTYPE_F64: return reduce_plain<double, Op>;
        case DS_DTYPE_F16: return reduce_16<Op, half_to_float, float_to_half>;
        case DS_DTYPE_BF16: return reduce_16<Op, bf16_to_float, float_to_bf16>;
        case DS_DTYPE_I8: return reduce_int<int8_t, Op>;
        case DS_DTYPE_U8: return reduce_int<uint8_t, Op>;
        case DS_DTYPE_I32: return reduce_int<int32_t, Op>;
        case DS_DTYPE_I64: return reduce_int<int64_t, Op>;
        default: return nullptr;
    }
}

template <class T>
void divide_int(void* x, size_t count, int32_t n) {
    T* p = static_cast<T*>(x);
    for (size_t i = 0; i < count; ++i) p[i] = static_cast<T>(p[i] / static_cast<T>(n));
}

}  // namespace

bool comm_dtype_ok(int32_t dtype) {
    switch (dtype) {
        case DS_DTYPE_F32:
        case DS_DTYPE_F16:
        case DS_DTYPE_BF16:
        case DS_DTYPE_F64:
        case DS_DTYPE_I8:
        case DS_DTYPE_U8:
        case DS_DTYPE_I32:
        case DS_DTYPE_I64: return true;
        default: return false;
    }
}

ReduceFn reduce_fn(int32_t dtype, int32_t op) {
    switch (op) {
        case DS_REDUCE_SUM:
        case DS_REDUCE_AVG: return pick<Sum>(dtype);
        case DS_REDUCE_PROD: return pick<Prod>(dtype);
        case DS_REDUCE_MAX: return pick<Max>(dtype);
        case DS_REDUCE_MIN: return pick<Min>(dtype);
        default: return nullptr;
    }
}

void divide_by(void* x, int32_t dtype, size_t count, int32_t n) {
    const double d = static_cast<double>(n);
    switch (dtype) {
        case DS_DTYPE_F32: {
            float* p = static_cast<float*>(x);
            for (size_t i = 0; i < count; ++i) p[i] = static_cast<float>(static_cast<double>(p[i]) / d);
            return;
        }
        case DS_DTYPE_F64: {
            double* p = static_cast<double*>(x);
            for (size_t i = 0; i < count; ++i) p[i] = p[i] / d;
            return;
        }
        case DS_DTYPE_F16: {
            uint16_t* p = static_cast<uint16_t*>(x);
            for (size_t i = 0; i < count; ++i) p[i] = f64_to_f16(static_cast<double>(half_to_float(p[i])) / d);
            return;
        }
        case DS_DTYPE_BF16: {
            uint16_t* p = static_cast<uint16_t*>(x);
            for (size_t i = 0; i < count; ++i) p[i] = f64_to_bf16(static_cast<double>(bf16_to_float(p[i])) / d);
            return;
        }
        case DS_DTYPE_I8: return divide_int<int8_t>(x, count, n);
        case DS_DTYPE_U8: return divide_int<uint8_t>(x, count, n);
        case DS_DTYPE_I32: return divide_int<int32_t>(x, count, n);
        case DS_DTYPE_I64: return divide_int<int64_t>(x, count, n);
        default: return;
    }
}

}  // namespace ds::comm
