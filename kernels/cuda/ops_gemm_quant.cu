// CUDA quantization ops of the gemm family: group-wise quantize / dequantize and the weight-only
// quantized linear y = x dequant(W)^T (+ bias). Same rules and bit-identical q, scales and zeros as
// the CPU kernels (kernels/cpu/quant.cpp): IEEE division, rintf, fminf/fmaxf, no contraction in the
// dequantization (__fmul_rn, __fadd_rn).
//
// quantize: one warp per group computes the scale (and zero); then one thread per output byte
//   quantizes its element(s), reading the parameters of each element's group (4-bit pairs may straddle
//   two groups when group_size is odd).
// dequantize: one thread per byte of q.
// gemm_wq:
//   M <= 16, x f16 or bf16, group_size and K multiples of 64, 16-byte aligned pointers: the decode
//     kernel below. The weight is read once, straight from global memory (16 bytes per lane), turned
//     into exact f16 / bf16 integer levels in registers and multiplied on the tensor cores
//     (mma.sync m16n8k16, f32 accumulation) with x as the 16-row A operand (rows >= M are zero).
//     The scale is applied per 64-wide K chunk in f32 after the MMA (levels, not dequantized values,
//     go through the tensor cores: no rounding of the weight); for asymmetric weights an MMA of x
//     with a matrix of ones gives sum(x) over the chunk, and zero * sum(x) is added. The K
//     dimension inside each MMA is permuted (same permutation for x and W, which leaves the sum
//     unchanged) so that each lane owns 16 contiguous K elements of one weight row and of two x
//     rows: every global load is a 16-byte (int8) or 8-byte (int4) vector load. A block of 8 warps
//     covers 16 weight rows; the warps split K and reduce through shared memory.
//   other M <= 16 (f32 x, other group sizes): a generic kernel, one warp per weight row.
//   M > 16: the weight is dequantized in row tiles (at most 64 MiB) into x's dtype in a per-device
//     buffer, and each tile goes through the cuBLASLt GEMM (ops_gemm.cu) with its bias; f16 / bf16
//     rounding of the dequantized weight is the one precision cost of this path.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <mutex>
#include <string>
#include <type_traits>

#include "ops_gemm.cuh"

namespace dscuda::gemm {
namespace {

__device__ inline float to_f(float v) { return v; }
__device__ inline float to_f(__half v) { return __half2float(v); }
__device__ inline float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
template <class T>
__device__ inline T from_f(float v);
template <>
__device__ inline float from_f<float>(float v) { return v; }
template <>
__device__ inline __half from_f<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ inline __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

__device__ inline float clampf(float v, float lo, float hi) { return fminf(fmaxf(v, lo), hi); }

int64_t grid_for(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads;
    return b < 1 ? 1 : b > 65535 * 16 ? 65535 * 16 : b;
}

// ---- quantize ------------------------------------------------------------------------------------

// One warp per (row, group): scale (and zero) exactly as the CPU computes them.
template <class T>
__global__ void quant_params_kernel(const T* __restrict__ x, float* __restrict__ scales, float* __restrict__ zeros,
                                    int64_t rows, int64_t cols, int group, int bits, int sym) {
    const int64_t ngroups = cols / group;
    const int64_t total = rows * ngroups;
    const int lane = threadIdx.x & 31;
    const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x >> 5);
    for (int64_t w = blockIdx.x * static_cast<int64_t>(blockDim.x >> 5) + (threadIdx.x >> 5); w < total; w += warps) {
        const int64_t r = w / ngroups, gi = w % ngroups;
        const T* p = x + r * cols + gi * group;
        float amax = 0.0f, mn = INFINITY, mx = -INFINITY;
        for (int i = lane; i < group; i += 32) {
            const float v = to_f(p[i]);
            amax = fmaxf(amax, fabsf(v));
            mn = fminf(mn, v);
            mx = fmaxf(mx, v);
        }
        for (int off = 16; off > 0; off >>= 1) {
            amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
            mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, off));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
        }
        if (lane == 0) {
            float scale, zero = 0.0f;
            if (sym) {
                scale = amax / (bits == 8 ? 127.0f : 7.0f);
            } else {
                // An all-NaN group leaves mn = +inf, mx = -inf (the CPU starts from the first value,
                // NaN): both give a non-finite, unspecified result.
                scale = (mx - mn) / (bits == 8 ? 255.0f : 15.0f);
                zero = mn;
            }
            scales[w] = scale > 0.0f ? scale : 1.0f;
            if (zeros) zeros[w] = zero;
        }
    }
}

// The stored level of value v with group parameters (s, z).
__device__ inline int quant_level(float v, float s, float z, int bits, int sym) {
    if (sym) {
        const float qmax = bits == 8 ? 127.0f : 7.0f;
        const int q = static_cast<int>(clampf(rintf(v / s), -qmax, qmax));
        return bits == 8 ? q : q + 8;
    }
    const float qmax = bits == 8 ? 255.0f : 15.0f;
    return static_cast<int>(clampf(rintf((v - z) / s), 0.0f, qmax));
}

// One thread per byte of q.
template <class T>
__global__ void quant_values_kernel(const T* __restrict__ x, uint8_t* __restrict__ q, const float* __restrict__ scales,
                                    const float* __restrict__ zeros, int64_t rows, int64_t cols, int group, int bits,
                                    int sym) {
    const int64_t ngroups = cols / group;
    const int64_t per_row = bits == 8 ? cols : cols / 2;
    const int64_t total = rows * per_row;
    for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
         idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int64_t r = idx / per_row, b = idx % per_row;
        if (bits == 8) {
            const int64_t gi = r * ngroups + b / group;
            const int lvl = quant_level(to_f(x[r * cols + b]), scales[gi], sym ? 0.0f : zeros[gi], 8, sym);
            q[idx] = static_cast<uint8_t>(sym ? static_cast<uint8_t>(static_cast<int8_t>(lvl)) : lvl);
        } else {
            const int64_t k0 = 2 * b, k1 = 2 * b + 1;
            const int64_t g0 = r * ngroups + k0 / group, g1 = r * ngroups + k1 / group;
            const int l0 = quant_level(to_f(x[r * cols + k0]), scales[g0], sym ? 0.0f : zeros[g0], 4, sym);
            const int l1 = quant_level(to_f(x[r * cols + k1]), scales[g1], sym ? 0.0f : zeros[g1], 4, sym);
            q[idx] = static_cast<uint8_t>(l0 | (l1 << 4));
        }
    }
}

template <class T>
int launch_quantize(const ds_op_quant_args_t& a) {
    const T* x = static_cast<const T*>(a.x);
    const int64_t groups = a.rows * (a.cols / a.group_size);
    quant_params_kernel<T><<<static_cast<unsigned>(grid_for(groups * 32, 256)), 256>>>(
        x, a.scales, a.symmetric ? nullptr : a.zeros, a.rows, a.cols, a.group_size, a.bits, a.symmetric);
    if (int rc = check_launch("ds_op_quantize scale kernel")) return rc;
    const int64_t bytes = a.rows * (a.bits == 8 ? a.cols : a.cols / 2);
    quant_values_kernel<T><<<static_cast<unsigned>(grid_for(bytes, 256)), 256>>>(
        x, static_cast<uint8_t*>(a.q), a.scales, a.zeros, a.rows, a.cols, a.group_size, a.bits, a.symmetric);
    if (int rc = check_launch("ds_op_quantize value kernel")) return rc;
    if (a.symmetric && a.zeros)  // a zeros tensor given with symmetric options receives 0, as on the CPU
        return check(cudaMemsetAsync(a.zeros, 0, static_cast<size_t>(groups) * sizeof(float), 0), "cudaMemsetAsync(zeros)");
    return DS_BACKEND_OK;
}

int op_quantize(int32_t dev, const void* args) {
    if (int rc = use_device(dev)) return rc;
    const auto& a = *static_cast<const ds_op_quant_args_t*>(args);
    if (a.rows <= 0 || a.cols <= 0) return DS_BACKEND_OK;
    switch (a.x_dtype) {
        case DS_OPG_F16: return launch_quantize<__half>(a);
        case DS_OPG_BF16: return launch_quantize<__nv_bfloat16>(a);
        default: return launch_quantize<float>(a);
    }
}

// ---- dequantize ----------------------------------------------------------------------------------

__device__ inline float dequant_level(int lvl, float s, float z, int bits, int sym) {
    if (sym) return __fmul_rn(static_cast<float>(bits == 8 ? lvl : lvl - 8), s);
    return __fadd_rn(__fmul_rn(static_cast<float>(lvl), s), z);
}

// One thread per byte of q; y[rows, cols] of T.
template <class T>
__global__ void dequant_kernel(const uint8_t* __restrict__ q, const float* __restrict__ scales,
                               const float* __restrict__ zeros, T* __restrict__ y, int64_t rows, int64_t cols, int group,
                               int bits, int sym) {
    const int64_t ngroups = cols / group;
    const int64_t per_row = bits == 8 ? cols : cols / 2;
    const int64_t total = rows * per_row;
    for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
         idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int64_t r = idx / per_row, b = idx % per_row;
        const uint8_t byte = q[idx];
        if (bits == 8) {
            const int64_t gi = r * ngroups + b / group;
            const int lvl = sym ? static_cast<int>(static_cast<int8_t>(byte)) : static_cast<int>(byte);
            y[r * cols + b] = from_f<T>(dequant_level(lvl, scales[gi], sym ? 0.0f : zeros[gi], 8, sym));
        } else {
            const int64_t k0 = 2 * b, k1 = k0 + 1;
            const int64_t g0 = r * ngroups + k0 / group, g1 = r * ngroups + k1 / group;
            y[r * cols + k0] = from_f<T>(dequant_level(byte & 15, scales[g0], sym ? 0.0f : zeros[g0], 4, sym));
            y[r * cols + k1] = from_f<T>(dequant_level(byte >> 4, scales[g1], sym ? 0.0f : zeros[g1], 4, sym));
        }
    }
}

__device__ inline uint32_t out_bits(float v, float*) { return __float_as_uint(v); }
__device__ inline uint32_t out_bits(float v, __half*) { return __half_as_ushort(__float2half_rn(v)); }
__device__ inline uint32_t out_bits(float v, __nv_bfloat16*) { return __bfloat16_as_ushort(__float2bfloat16_rn(v)); }

// The fast form: one thread per 16 bytes of q (16 int8 or 32 int4 values, all of one group), one
// index division per vector, 16-byte loads and stores. Needs 16-byte aligned q and y, a row of q a
// multiple of 16 bytes and group_size a multiple of the values per vector (dequant_vec_ok).
template <class T, int BITS, bool SYM>
__global__ void dequant_vec_kernel(const uint4* __restrict__ q, const float* __restrict__ scales,
                                   const float* __restrict__ zeros, T* __restrict__ y, int64_t rows, int64_t cols,
                                   int group) {
    constexpr int kPer = BITS == 8 ? 16 : 32;            // values per 16 bytes of q
    constexpr int kWordsOut = kPer * sizeof(T) / 4;      // 32-bit words of output
    const int64_t vpr = cols / kPer;                     // vectors per row
    const int64_t total = rows * vpr, ngroups = cols / group;
    for (int64_t v = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; v < total;
         v += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int64_t r = v / vpr;
        const int64_t e0 = (v - r * vpr) * kPer;
        const int64_t gi = r * ngroups + e0 / group;
        const float sc = scales[gi], z = SYM ? 0.0f : zeros[gi];
        const uint4 w = __ldg(q + v);
        const uint32_t in[4] = {w.x, w.y, w.z, w.w};
        uint32_t out[kWordsOut];
#pragma unroll
        for (int i = 0; i < kPer; ++i) {
            const uint32_t byte = (in[(BITS == 8 ? i : i / 2) / 4] >> (8 * ((BITS == 8 ? i : i / 2) % 4))) & 0xffu;
            int lvl;
            if (BITS == 8)
                lvl = SYM ? static_cast<int>(static_cast<int8_t>(byte)) : static_cast<int>(byte);
            else
                lvl = static_cast<int>((i & 1) ? byte >> 4 : byte & 15u);
            const uint32_t bits = out_bits(dequant_level(lvl, sc, z, BITS, SYM), static_cast<T*>(nullptr));
            if (sizeof(T) == 4) {
                out[i] = bits;
            } else if (i & 1) {
                out[i / 2] |= bits << 16;
            } else {
                out[i / 2] = bits;
            }
        }
        uint4* dst = reinterpret_cast<uint4*>(y + r * cols + e0);
#pragma unroll
        for (int i = 0; i < kWordsOut / 4; ++i)
            dst[i] = make_uint4(out[4 * i], out[4 * i + 1], out[4 * i + 2], out[4 * i + 3]);
    }
}

bool dequant_vec_ok(const void* q, const void* y, int64_t cols, int group, int bits) {
    const int per = bits == 8 ? 16 : 32;
    return (reinterpret_cast<uintptr_t>(q) & 15u) == 0 && (reinterpret_cast<uintptr_t>(y) & 15u) == 0 &&
           cols % per == 0 && group % per == 0;
}

template <class T, int BITS, bool SYM>
int launch_dequant_vec(const void* q, const float* scales, const float* zeros, void* y, int64_t rows, int64_t cols,
                       int group) {
    const int64_t vecs = rows * cols / (BITS == 8 ? 16 : 32);
    dequant_vec_kernel<T, BITS, SYM><<<static_cast<unsigned>(grid_for(vecs, 256)), 256>>>(
        static_cast<const uint4*>(q), scales, zeros, static_cast<T*>(y), rows, cols, group);
    return check_launch("dequantize kernel");
}

template <class T>
int launch_dequantize(const void* q, const float* scales, const float* zeros, void* y, int64_t rows, int64_t cols,
                      int group, int bits, int sym) {
    if (dequant_vec_ok(q, y, cols, group, bits)) {
        if (bits == 8)
            return sym ? launch_dequant_vec<T, 8, true>(q, scales, zeros, y, rows, cols, group)
                       : launch_dequant_vec<T, 8, false>(q, scales, zeros, y, rows, cols, group);
        return sym ? launch_dequant_vec<T, 4, true>(q, scales, zeros, y, rows, cols, group)
                   : launch_dequant_vec<T, 4, false>(q, scales, zeros, y, rows, cols, group);
    }
    const int64_t bytes = rows * (bits == 8 ? cols : cols / 2);
    dequant_kernel<T><<<static_cast<unsigned>(grid_for(bytes, 256)), 256>>>(
        static_cast<const uint8_t*>(q), scales, zeros, static_cast<T*>(y), rows, cols, group, bits, sym);
    return check_launch("dequantize kernel");
}

int dequantize_any(int32_t dt, const void* q, const float* scales, const float* zeros, void* y, int64_t rows,
                   int64_t cols, int group, int bits, int sym) {
    switch (dt) {
        case DS_OPG_F16: return launch_dequantize<__half>(q, scales, zeros, y, rows, cols, group, bits, sym);
        case DS_OPG_BF16: return launch_dequantize<__nv_bfloat16>(q, scales, zeros, y, rows, cols, group, bits, sym);
        default: return launch_dequantize<float>(q, scales, zeros, y, rows, cols, group, bits, sym);
    }
}

int op_dequantize(int32_t dev, const void* args) {
    if (int rc = use_device(dev)) return rc;
    const auto& a = *static_cast<const ds_op_dequant_args_t*>(args);
    if (a.rows <= 0 || a.cols <= 0) return DS_BACKEND_OK;
    return dequantize_any(a.y_dtype, a.q, a.scales, a.zeros, a.y, a.rows, a.cols, a.group_size, a.bits, a.symmetric);
}

// ---- gemm_wq: tensor-core decode kernel -----------------------------------------------------------

template <class T>
struct Mma;
template <>
struct Mma<__nv_bfloat16> {
    __device__ static void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
        asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    static constexpr uint32_t kOnes = 0x3f803f80u;  // bf16x2 (1, 1)
};
template <>
struct Mma<__half> {
    __device__ static void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
        asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    static constexpr uint32_t kOnes = 0x3c003c00u;  // f16x2 (1, 1)
};

__device__ inline uint32_t sub2(uint32_t v, float c, __half*) {
    __half2 h = *reinterpret_cast<__half2*>(&v);
    h = __hsub2(h, __float2half2_rn(c));
    return *reinterpret_cast<uint32_t*>(&h);
}
__device__ inline uint32_t sub2(uint32_t v, float c, __nv_bfloat16*) {
    __nv_bfloat162 h = *reinterpret_cast<__nv_bfloat162*>(&v);
    h = __hsub2(h, __float2bfloat162_rn(c));
    return *reinterpret_cast<uint32_t*>(&h);
}

// Two int8 levels (bytes b, b+1 of w, b even) as a T pair holding the exact integers.
template <class T, bool SYM>
__device__ inline uint32_t levels8(uint32_t w, int b);
template <>
__device__ inline uint32_t levels8<__half, true>(uint32_t w, int b) {
    // 1024 + u in f16 is 0x6400 | u (u < 1024); u = v + 128 for the signed levels
    const uint32_t r = __byte_perm(w ^ 0x80808080u, 0x64646464u, b ? 0x5342 : 0x5140);
    return sub2(r, 1152.0f, static_cast<__half*>(nullptr));
}
template <>
__device__ inline uint32_t levels8<__half, false>(uint32_t w, int b) {
    const uint32_t r = __byte_perm(w, 0x64646464u, b ? 0x5342 : 0x5140);
    return sub2(r, 1024.0f, static_cast<__half*>(nullptr));
}
template <bool SYM>
__device__ inline uint32_t levels8_bf16(uint32_t w, int b) {
    // bf16 has 8 significant bits: go through f32 (2^23 + u is 0x4B000000 | u), then pack exactly
    const uint32_t u = SYM ? w ^ 0x80808080u : w;
    const float off = SYM ? 8388736.0f : 8388608.0f;
    const float f0 = __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7440 + b)) - off;
    const float f1 = __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7440 + b + 1)) - off;
    __nv_bfloat162 h = __floats2bfloat162_rn(f0, f1);
    return *reinterpret_cast<uint32_t*>(&h);
}
template <>
__device__ inline uint32_t levels8<__nv_bfloat16, true>(uint32_t w, int b) { return levels8_bf16<true>(w, b); }
template <>
__device__ inline uint32_t levels8<__nv_bfloat16, false>(uint32_t w, int b) { return levels8_bf16<false>(w, b); }

// Two int4 levels (the low and high nibble of byte b of w) as a T pair of exact integers:
// 0x6400 | v is 1024 + v in f16, 0x4300 | v is 128 + v in bf16.
template <class T, bool SYM>
__device__ inline uint32_t levels4(uint32_t w, int b) {
    const uint32_t lo = (w >> (8 * b)) & 0xfu, hi = (w >> (8 * b + 4)) & 0xfu;
    if constexpr (std::is_same<T, __half>::value) {
        return sub2(0x64006400u | lo | (hi << 16), SYM ? 1032.0f : 1024.0f, static_cast<__half*>(nullptr));
    } else {
        return sub2(0x43004300u | lo | (hi << 16), SYM ? 136.0f : 128.0f, static_cast<__nv_bfloat16*>(nullptr));
    }
}

constexpr int kDecWarps = 8;  // warps per block, splitting K
constexpr int kDecTiles = 2;  // n-tiles of 8 weight rows per block
constexpr int kDecRows = 8 * kDecTiles;

// The loads of one 64-wide K chunk: this lane's 16 weight elements of rows n0 + t*8 + g, and its
// 16 x elements of rows g and g + 8.
template <int BITS>
struct Chunk {
    uint32_t w[kDecTiles][4];
    uint32_t xl[8], xh[8];
    float s[kDecTiles][2], z[kDecTiles][2];  // scale (and zero) of C fragment columns na, na + 1 of each tile
};

template <class T, int BITS, bool SYM>
__device__ inline void load_chunk(Chunk<BITS>& ch, bool valid, int c, int q, int g, int n0, int N, int K, int group,
                                  const uint8_t* __restrict__ wq, const float* __restrict__ scales,
                                  const float* __restrict__ zeros, const T* x_lo, const T* x_hi, bool row_lo,
                                  bool row_hi) {
    const int kb = c * 64 + q * 16;
    const int64_t wrow_bytes = BITS == 8 ? K : K / 2;
    const int ngroups = K / group, gi = (c * 64) / group;
#pragma unroll
    for (int t = 0; t < kDecTiles; ++t) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
            const int n = n0 + t * 8 + 2 * q + e;
            const bool ok = valid && n < N;
            ch.s[t][e] = ok ? scales[static_cast<int64_t>(n) * ngroups + gi] : 0.0f;
            ch.z[t][e] = ok && !SYM ? zeros[static_cast<int64_t>(n) * ngroups + gi] : 0.0f;
        }
    }
#pragma unroll
    for (int t = 0; t < kDecTiles; ++t) {
        const int nr = n0 + t * 8 + g;
        ch.w[t][0] = ch.w[t][1] = ch.w[t][2] = ch.w[t][3] = 0u;
        if (valid && nr < N) {
            const uint8_t* p = wq + static_cast<int64_t>(nr) * wrow_bytes + (BITS == 8 ? kb : kb / 2);
            if (BITS == 8) {
                const uint4 v = __ldcs(reinterpret_cast<const uint4*>(p));
                ch.w[t][0] = v.x, ch.w[t][1] = v.y, ch.w[t][2] = v.z, ch.w[t][3] = v.w;
            } else {
                const uint2 v = __ldcs(reinterpret_cast<const uint2*>(p));
                ch.w[t][0] = v.x, ch.w[t][1] = v.y;
            }
        }
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) ch.xl[i] = ch.xh[i] = 0u;
    if (valid && row_lo) {
        const uint4 a = __ldg(reinterpret_cast<const uint4*>(x_lo + kb));
        const uint4 b = __ldg(reinterpret_cast<const uint4*>(x_lo + kb + 8));
        ch.xl[0] = a.x, ch.xl[1] = a.y, ch.xl[2] = a.z, ch.xl[3] = a.w;
        ch.xl[4] = b.x, ch.xl[5] = b.y, ch.xl[6] = b.z, ch.xl[7] = b.w;
    }
    if (valid && row_hi) {
        const uint4 a = __ldg(reinterpret_cast<const uint4*>(x_hi + kb));
        const uint4 b = __ldg(reinterpret_cast<const uint4*>(x_hi + kb + 8));
        ch.xh[0] = a.x, ch.xh[1] = a.y, ch.xh[2] = a.z, ch.xh[3] = a.w;
        ch.xh[4] = b.x, ch.xh[5] = b.y, ch.xh[6] = b.z, ch.xh[7] = b.w;
    }
}

template <class T, int BITS, bool SYM>
__device__ inline void compute_chunk(float (&acc)[kDecTiles][4], const Chunk<BITS>& ch) {
    // MMA k index (within each k16 step j) -> K element: the permutation that gives each lane 16
    // contiguous elements; A registers {x[g][4j..4j+1]}, {x[g+8][4j..4j+1]}, {x[g][4j+2..]}, {x[g+8][4j+2..]}.
    float xs[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (!SYM) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const uint32_t a[4] = {ch.xl[2 * j], ch.xh[2 * j], ch.xl[2 * j + 1], ch.xh[2 * j + 1]};
            Mma<T>::run(xs, a, Mma<T>::kOnes, Mma<T>::kOnes);
        }
    }
#pragma unroll
    for (int t = 0; t < kDecTiles; ++t) {
        float tmp[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const uint32_t a[4] = {ch.xl[2 * j], ch.xh[2 * j], ch.xl[2 * j + 1], ch.xh[2 * j + 1]};
            uint32_t b0, b1;
            if (BITS == 8) {  // word j holds elements 4j .. 4j+3
                b0 = levels8<T, SYM>(ch.w[t][j], 0);
                b1 = levels8<T, SYM>(ch.w[t][j], 2);
            } else {  // bytes 2j, 2j+1 hold elements 4j .. 4j+3
                b0 = levels4<T, SYM>(ch.w[t][j >> 1], (2 * j) & 3);
                b1 = levels4<T, SYM>(ch.w[t][j >> 1], (2 * j + 1) & 3);
            }
            Mma<T>::run(tmp, a, b0, b1);
        }
        acc[t][0] += tmp[0] * ch.s[t][0];
        acc[t][1] += tmp[1] * ch.s[t][1];
        acc[t][2] += tmp[2] * ch.s[t][0];
        acc[t][3] += tmp[3] * ch.s[t][1];
        if (!SYM) {
            acc[t][0] += xs[0] * ch.z[t][0];
            acc[t][1] += xs[1] * ch.z[t][1];
            acc[t][2] += xs[2] * ch.z[t][0];
            acc[t][3] += xs[3] * ch.z[t][1];
        }
    }
}

// HI: M > 8, so rows g + 8 of x exist; without them (decode, M <= 8) each warp keeps four chunks in
// flight instead of two in the same registers.
template <class T, int BITS, bool SYM, bool HI>
__global__ void __launch_bounds__(kDecWarps * 32, 2) wq_decode_tc(const T* __restrict__ x, const uint8_t* __restrict__ wq,
                                                                 const float* __restrict__ scales,
                                                                 const float* __restrict__ zeros,
                                                                 const T* __restrict__ bias, T* __restrict__ y, int M,
                                                                 int N, int K, int group) {
    constexpr int U = HI ? 2 : 4;  // chunks loaded before any is used
    __shared__ float red[kDecWarps][kDecTiles][32][4];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
    const int n0 = blockIdx.x * kDecRows;
    const int nchunks = K / 64;
    const bool row_lo = g < M, row_hi = HI && g + 8 < M;
    const T* x_lo = x + static_cast<int64_t>(g) * K;
    const T* x_hi = x + static_cast<int64_t>(g + 8) * K;

    float acc[kDecTiles][4];
#pragma unroll
    for (int t = 0; t < kDecTiles; ++t) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.0f;

    // Warp w takes chunks w, w + 8, w + 16, ...; U of them per iteration, all loaded before any is
    // used: more bytes in flight per warp.
    for (int c = warp; c < nchunks; c += U * kDecWarps) {
        Chunk<BITS> ch[U];
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const int cu = c + u * kDecWarps;
            load_chunk<T, BITS, SYM>(ch[u], cu < nchunks, cu, q, g, n0, N, K, group, wq, scales, zeros, x_lo, x_hi,
                                     row_lo, row_hi);
        }
#pragma unroll
        for (int u = 0; u < U; ++u)
            if (c + u * kDecWarps < nchunks) compute_chunk<T, BITS, SYM>(acc, ch[u]);
    }
#pragma unroll
    for (int t = 0; t < kDecTiles; ++t)
#pragma unroll
        for (int e = 0; e < 4; ++e) red[warp][t][lane][e] = acc[t][e];
    __syncthreads();
    // thread -> output (m, nn): m = tid / 16, nn = tid % 16 (tile nn / 8, column nn % 8)
    const int m = threadIdx.x >> 4, nn = threadIdx.x & 15, t = nn >> 3, col = nn & 7;
    const int src_lane = (m & 7) * 4 + (col >> 1), e = (m >> 3) * 2 + (col & 1);
    float sum = 0.0f;
#pragma unroll
    for (int w = 0; w < kDecWarps; ++w) sum += red[w][t][src_lane][e];
    const int n = n0 + nn;
    if (m < M && n < N) {
        if (bias) sum += to_f(bias[n]);
        y[static_cast<int64_t>(m) * N + n] = from_f<T>(sum);
    }
}

// ---- gemm_wq: generic small-M kernel (any dtype and group size) ----------------------------------

template <class T>
__global__ void wq_decode_generic(const T* __restrict__ x, const uint8_t* __restrict__ wq,
                                  const float* __restrict__ scales, const float* __restrict__ zeros,
                                  const T* __restrict__ bias, T* __restrict__ y, int M, int64_t N, int64_t K, int group,
                                  int bits, int sym) {
    const int64_t n = blockIdx.x * static_cast<int64_t>(blockDim.x >> 5) + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (n >= N) return;
    const int64_t ngroups = K / group;
    float acc[16];
#pragma unroll
    for (int m = 0; m < 16; ++m) acc[m] = 0.0f;
    for (int64_t k = lane; k < K; k += 32) {
        const int64_t gi = n * ngroups + k / group;
        int lvl;
        if (bits == 8) {
            const uint8_t b = wq[n * K + k];
            lvl = sym ? static_cast<int>(static_cast<int8_t>(b)) : static_cast<int>(b);
        } else {
            const uint8_t b = wq[n * (K / 2) + k / 2];
            lvl = (k & 1) ? b >> 4 : b & 15;
        }
        const float w = dequant_level(lvl, scales[gi], sym ? 0.0f : zeros[gi], bits, sym);
#pragma unroll
        for (int m = 0; m < 16; ++m)
            if (m < M) acc[m] += to_f(x[m * K + k]) * w;
    }
#pragma unroll
    for (int m = 0; m < 16; ++m) {
        float v = acc[m];
        for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
        if (lane == m && m < M) y[m * N + n] = from_f<T>(v + (bias ? to_f(bias[n]) : 0.0f));
    }
}

// ---- gemm_wq: dispatch -----------------------------------------------------------------------------

constexpr size_t kTileBytes = size_t(64) << 20;  // dequantized weight tile for M > 16
constexpr int kMaxDevices = 64;

struct TileBuffer {
    std::mutex mutex;
    void* ptr = nullptr;
    size_t bytes = 0;
};
TileBuffer g_tiles[kMaxDevices];

template <class T, int BITS, bool SYM>
int launch_decode_tc(const ds_op_gemm_wq_args_t& a) {
    const unsigned blocks = static_cast<unsigned>((a.n + kDecRows - 1) / kDecRows);
    auto kernel = a.m > 8 ? wq_decode_tc<T, BITS, SYM, true> : wq_decode_tc<T, BITS, SYM, false>;
    kernel<<<blocks, kDecWarps * 32>>>(static_cast<const T*>(a.x), static_cast<const uint8_t*>(a.wq), a.scales, a.zeros,
                                       static_cast<const T*>(a.bias), static_cast<T*>(a.y), static_cast<int>(a.m),
                                       static_cast<int>(a.n), static_cast<int>(a.k), a.group_size);
    return check_launch("ds_op_gemm_wq decode kernel");
}

template <class T>
int decode_tc(const ds_op_gemm_wq_args_t& a) {
    if (a.bits == 8) return a.symmetric ? launch_decode_tc<T, 8, true>(a) : launch_decode_tc<T, 8, false>(a);
    return a.symmetric ? launch_decode_tc<T, 4, true>(a) : launch_decode_tc<T, 4, false>(a);
}

template <class T>
int decode_generic(const ds_op_gemm_wq_args_t& a) {
    const int64_t blocks = (a.n + 7) / 8;
    wq_decode_generic<T><<<static_cast<unsigned>(blocks), 256>>>(
        static_cast<const T*>(a.x), static_cast<const uint8_t*>(a.wq), a.scales, a.zeros, static_cast<const T*>(a.bias),
        static_cast<T*>(a.y), static_cast<int>(a.m), a.n, a.k, a.group_size, a.bits, a.symmetric);
    return check_launch("ds_op_gemm_wq kernel");
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

int gemm_wq_large(const ds_op_gemm_wq_args_t& a) {
    const int64_t es = a.dtype == DS_OPG_F32 ? 4 : 2;
    if (a.k == 0) {  // y = bias (or 0): the GEMM's empty-K epilogue
        ds_op_gemm_args_t g{};
        g.a = a.x;
        g.b = a.x;
        g.bias = a.bias;
        g.c = a.y;
        g.a_dtype = g.b_dtype = g.c_dtype = a.dtype;
        g.trans_b = 1;
        g.epilogue = a.bias ? DS_OPG_EPILOGUE_BIAS : DS_OPG_EPILOGUE_NONE;
        g.alpha = 1.0f;
        g.batch = 1;
        g.m = a.m;
        g.n = a.n;
        g.ldc = a.n;
        return matmul(g);
    }
    int dev = 0;
    if (int rc = check(cudaGetDevice(&dev), "cudaGetDevice")) return rc;
    if (dev < 0 || dev >= kMaxDevices) return invalid("CUDA device index beyond 64");
    int64_t tile = static_cast<int64_t>(kTileBytes) / (a.k * es);
    tile = tile >= a.n ? a.n : tile < 128 ? 128 : tile / 128 * 128;
    if (tile > a.n) tile = a.n;
    const size_t need = static_cast<size_t>(tile * a.k * es);
    TileBuffer& buf = g_tiles[dev];
    // Held while the launches are queued: a concurrent call on this device cannot swap the buffer
    // under queued work (the launches themselves are asynchronous, so this is brief).
    std::lock_guard<std::mutex> lock(buf.mutex);
    if (buf.bytes < need) {
        if (buf.ptr) {
            if (int rc = check(cudaDeviceSynchronize(), "cudaDeviceSynchronize before growing the gemm_wq buffer")) return rc;
            cudaFree(buf.ptr);
            buf.ptr = nullptr;
            buf.bytes = 0;
        }
        if (int rc = check(cudaMalloc(&buf.ptr, need), "cudaMalloc of the gemm_wq dequantization buffer")) {
            buf.ptr = nullptr;
            return rc;
        }
        buf.bytes = need;
    }
    const int64_t wrow = a.bits == 8 ? a.k : a.k / 2;
    const int64_t ngroups = a.k / a.group_size;
    for (int64_t n0 = 0; n0 < a.n; n0 += tile) {
        const int64_t nn = a.n - n0 < tile ? a.n - n0 : tile;
        if (int rc = dequantize_any(a.dtype, static_cast<const uint8_t*>(a.wq) + n0 * wrow, a.scales + n0 * ngroups,
                                    a.symmetric ? nullptr : a.zeros + n0 * ngroups, buf.ptr, nn, a.k, a.group_size,
                                    a.bits, a.symmetric))
            return rc;
        ds_op_gemm_args_t g{};
        g.a = a.x;
        g.b = buf.ptr;
        g.bias = a.bias ? static_cast<const char*>(a.bias) + n0 * es : nullptr;
        g.c = static_cast<char*>(a.y) + n0 * es;
        g.a_dtype = g.b_dtype = g.c_dtype = a.dtype;
        g.trans_a = 0;
        g.trans_b = 1;
        g.epilogue = a.bias ? DS_OPG_EPILOGUE_BIAS : DS_OPG_EPILOGUE_NONE;
        g.alpha = 1.0f;
        g.beta = 0.0f;
        g.batch = 1;
        g.m = a.m;
        g.n = nn;
        g.k = a.k;
        g.lda = a.k;
        g.ldb = a.k;
        g.ldc = a.n;
        if (int rc = matmul(g)) return rc;
    }
    return DS_BACKEND_OK;
}

int op_gemm_wq(int32_t dev, const void* args) {
    if (int rc = use_device(dev)) return rc;
    const auto& a = *static_cast<const ds_op_gemm_wq_args_t*>(args);
    if (a.m <= 0 || a.n <= 0) return DS_BACKEND_OK;
    if (a.m > 16 || a.k == 0) return gemm_wq_large(a);
    if (a.n > INT32_MAX || a.k > INT32_MAX) return gemm_wq_large(a);
    const bool tc = a.dtype != DS_OPG_F32 && a.k % 64 == 0 && a.group_size % 64 == 0 && aligned16(a.x) &&
                    aligned16(a.wq);
    if (tc) return a.dtype == DS_OPG_F16 ? decode_tc<__half>(a) : decode_tc<__nv_bfloat16>(a);
    switch (a.dtype) {
        case DS_OPG_F16: return decode_generic<__half>(a);
        case DS_OPG_BF16: return decode_generic<__nv_bfloat16>(a);
        default: return decode_generic<float>(a);
    }
}

}  // namespace

void register_quant_ops(ds_backend_op_fn* table) {
    table[DS_KOP_QUANTIZE] = op_quantize;
    table[DS_KOP_DEQUANTIZE] = op_dequantize;
    table[DS_KOP_GEMM_WQ] = op_gemm_wq;
}

}  // namespace dscuda::gemm
