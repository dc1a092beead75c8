// Element-wise reductions on host memory for the CPU backends: out[i] = a[i] (op) b[i] for every
// ds_dtype a collective accepts. out may alias a or b. AVG is SUM followed by divide_by().
#pragma once

#include <cstddef>
#include <cstdint>

namespace ds::comm {

using ReduceFn = void (*)(void* out, const void* a, const void* b, size_t n);

// The function for (dtype, op) with op in SUM/PROD/MAX/MIN (AVG maps to SUM). nullptr if the pair
// is not supported (callers validate first).
ReduceFn reduce_fn(int32_t dtype, int32_t op);

// x[i] = x[i] / n in place: floating types divide in double and round once to the dtype (f16 and
// bf16 to nearest even); integer types truncate toward zero as C does.
void divide_by(void* x, int32_t dtype, size_t count, int32_t n);

// Whether collectives accept this dtype (f32, f16, bf16, f64, i8, u8, i32, i64).
bool comm_dtype_ok(int32_t dtype);

// float <-> f16 / bf16 bit patterns, round to nearest even (fast paths for the reductions).
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
float bf16_to_float(uint16_t h);
uint16_t float_to_bf16(float f);

}  // namespace ds::comm
