#include "core/dtype.hpp"

#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.hpp"

namespace ds {

namespace {

struct DtypeRow {
    const char* name;
    uint32_t size;
    uint8_t dl_code;  // DLDataTypeCode: 0 int, 1 uint, 2 float, 4 bfloat
    bool is_float;
};

// Indexed by enum ds_dtype. FP8 types are DLPack float8 (code 2, 8 bits) by size only: they are
// reserved and not exchanged through DLPack 0.6.
constexpr DtypeRow kDtypes[] = {
    {"f32", 4, 2, true},  {"f16", 2, 2, true}, {"bf16", 2, 4, true}, {"f64", 8, 2, true},
    {"i8", 1, 0, false},  {"u8", 1, 1, false}, {"i32", 4, 0, false}, {"i64", 8, 0, false},
    {"fp8_e4m3", 1, 255, true}, {"fp8_e5m2", 1, 255, true},
};
constexpr int32_t kNumDtypes = static_cast<int32_t>(sizeof kDtypes / sizeof kDtypes[0]);

// Round |v| (finite, > 0) to a binary float with exp_bits exponent and man_bits mantissa bits.
uint16_t round_to_small_float(double v, int exp_bits, int man_bits) {
    const int bias = (1 << (exp_bits - 1)) - 1;
    const uint32_t exp_all_ones = (1u << exp_bits) - 1;
    uint16_t sign = std::signbit(v) ? static_cast<uint16_t>(1u << (exp_bits + man_bits)) : 0;
    if (std::isnan(v)) return static_cast<uint16_t>(sign | (exp_all_ones << man_bits) | (1u << (man_bits - 1)));
    double a = std::fabs(v);
    if (std::isinf(a)) return static_cast<uint16_t>(sign | (exp_all_ones << man_bits));
    if (a == 0.0) return sign;
    int e2 = 0;
    std::frexp(a, &e2);        // a = m * 2^e2, m in [0.5, 1)
    int exponent = e2 - 1;     // a = 1.f * 2^exponent
    const int min_normal = 1 - bias;
    if (exponent < min_normal) {
        // Subnormal range: multiples of 2^(min_normal - man_bits). Rounding up to 2^man_bits lands
        // exactly on the smallest normal number, whose encoding is the same integer.
        double q = std::rint(std::ldexp(a, man_bits - min_normal));
        return static_cast<uint16_t>(sign | static_cast<uint32_t>(q));
    }
    double q = std::rint(std::ldexp(a, man_bits - exponent));  // in [2^man, 2^(man+1)]
    if (q >= std::ldexp(1.0, man_bits + 1)) {
        q = std::ldexp(1.0, man_bits);
        ++exponent;
    }
    if (exponent + bias >= static_cast<int>(exp_all_ones)) return static_cast<uint16_t>(sign | (exp_all_ones << man_bits));
    uint32_t mant = static_cast<uint32_t>(q) - (1u << man_bits);
    return static_cast<uint16_t>(sign | (static_cast<uint32_t>(exponent + bias) << man_bits) | mant);
}

double small_float_to_f64(uint16_t bits, int exp_bits, int man_bits) {
    const int bias = (1 << (exp_bits - 1)) - 1;
    const uint32_t exp_all_ones = (1u << exp_bits) - 1;
    bool neg = (bits >> (exp_bits + man_bits)) & 1u;
    uint32_t e = (bits >> man_bits) & exp_all_ones;
    uint32_t m = bits & ((1u << man_bits) - 1);
    double r;
    if (e == exp_all_ones)
        r = m ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
    else if (e == 0)
        r = std::ldexp(static_cast<double>(m), 1 - bias - man_bits);
    else
        r = std::ldexp(static_cast<double>(m | (1u << man_bits)), static_cast<int>(e) - bias - man_bits);
    return neg ? -r : r;
}

template <class T>
uint64_t encode_int(double value, int32_t dtype) {
    if (!std::isfinite(value) || value != std::trunc(value))
        fail(DS_ERR_INVALID_ARG, "value=%.17g is not an integer, as dtype %s requires", value, dtype_name(dtype));
    // Compare in double against the exact bounds; 2^63 is representable, INT64_MAX is not.
    const double lo = static_cast<double>(std::numeric_limits<T>::min());
    const double hi_exclusive = static_cast<double>(std::numeric_limits<T>::max()) + 1.0;
    if (value < lo || value >= hi_exclusive)
        fail(DS_ERR_INVALID_ARG, "value=%.17g is outside the range of dtype %s", value, dtype_name(dtype));
    T t = static_cast<T>(value);
    uint64_t pattern = 0;
    std::memcpy(&pattern, &t, sizeof t);
    return pattern;
}

}  // namespace

bool dtype_is_valid(int32_t dtype) { return dtype >= 0 && dtype < kNumDtypes; }
uint32_t dtype_size(int32_t dtype) { return dtype_is_valid(dtype) ? kDtypes[dtype].size : 0; }
const char* dtype_name(int32_t dtype) { return dtype_is_valid(dtype) ? kDtypes[dtype].name : "invalid"; }
bool dtype_is_float(int32_t dtype) { return dtype_is_valid(dtype) && kDtypes[dtype].is_float; }

void dtype_to_dlpack(int32_t dtype, uint8_t* code, uint8_t* bits) {
    *code = kDtypes[dtype].dl_code;
    *bits = static_cast<uint8_t>(kDtypes[dtype].size * 8);
}

int32_t dtype_from_dlpack(uint8_t code, uint8_t bits) {
    for (int32_t d = 0; d < kNumDtypes; ++d)
        if (kDtypes[d].dl_code == code && kDtypes[d].size * 8 == bits) return d;
    return -1;
}

uint16_t f64_to_f16(double v) { return round_to_small_float(v, 5, 10); }
uint16_t f64_to_bf16(double v) { return round_to_small_float(v, 8, 7); }
double f16_to_f64(uint16_t bits) { return small_float_to_f64(bits, 5, 10); }
double bf16_to_f64(uint16_t bits) { return small_float_to_f64(bits, 8, 7); }

void encode_scalar(int32_t dtype, double value, uint64_t* pattern) {
    *pattern = 0;
    switch (dtype) {
        case DS_DTYPE_F32: {
            if (std::isfinite(value) && std::fabs(value) > static_cast<double>(FLT_MAX))
                fail(DS_ERR_INVALID_ARG, "value=%.17g is beyond the finite range of f32 (max %g)", value,
                     static_cast<double>(FLT_MAX));
            float f = static_cast<float>(value);
            std::memcpy(pattern, &f, sizeof f);
            return;
        }
        case DS_DTYPE_F64: std::memcpy(pattern, &value, sizeof value); return;
        case DS_DTYPE_F16: *pattern = f64_to_f16(value); return;
        case DS_DTYPE_BF16: *pattern = f64_to_bf16(value); return;
        case DS_DTYPE_I8: *pattern = encode_int<int8_t>(value, dtype); return;
        case DS_DTYPE_U8: *pattern = encode_int<uint8_t>(value, dtype); return;
        case DS_DTYPE_I32: *pattern = encode_int<int32_t>(value, dtype); return;
        case DS_DTYPE_I64: *pattern = encode_int<int64_t>(value, dtype); return;
        default:
            fail(DS_ERR_UNSUPPORTED, "dtype %s (%d) cannot be filled: it is reserved for future kernels",
                 dtype_name(dtype), dtype);
    }
}

}  // namespace ds
