// Element types: sizes, names, DLPack codes and the f16 / bf16 conversions.
#pragma once

#include <cstdint>

#include "dsabi.h"

namespace ds {

bool dtype_is_valid(int32_t dtype);
uint32_t dtype_size(int32_t dtype);    // 0 for invalid dtypes
const char* dtype_name(int32_t dtype); // "invalid" for unknown values
bool dtype_is_float(int32_t dtype);

// DLPack type code / bits of a dtype, and back (-1 if there is no match).
void dtype_to_dlpack(int32_t dtype, uint8_t* code, uint8_t* bits);
int32_t dtype_from_dlpack(uint8_t code, uint8_t bits);

// IEEE binary16 and bfloat16, rounding to nearest, ties to even, directly from double (no double
// rounding through float). NaN stays NaN, overflow becomes infinity.
uint16_t f64_to_f16(double v);
uint16_t f64_to_bf16(double v);
double f16_to_f64(uint16_t bits);
double bf16_to_f64(uint16_t bits);

// Encode value as one element of dtype into the low bytes of *pattern. Throws ds::Error
// (DS_ERR_INVALID_ARG) when the value cannot be represented (a fraction or out-of-range value for
// an integer type, a finite value beyond the range of f32).
void encode_scalar(int32_t dtype, double value, uint64_t* pattern);

}  // namespace ds
