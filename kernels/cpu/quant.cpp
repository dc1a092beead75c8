// CPU quantization kernels: group-wise quantize / dequantize along the last dimension and the
// weight-only quantized linear (gemm_wq). OpenMP over rows (or weight rows); inner loops are plain
// contiguous loops the compiler vectorises.
//
// Rules (shared with the CUDA kernels, which compute bit-identical q, scales and zeros):
//   symmetric, b bits (qmax = 127 or 7): scale = max|x| / qmax, q = clamp(rne(x / scale), -qmax, qmax);
//   asymmetric (qmax = 255 or 15): scale = (max - min) / qmax, zero = min,
//                                  q = clamp(rne((x - min) / scale), 0, qmax);
//   a group whose scale would be 0 (all zeros, or all equal for asymmetric) gets scale 1, so that
//   q = 0 and the dequantized group is exact; 4-bit values are stored as q + 8 (symmetric) or q,
//   the even element in the low nibble. Non-finite inputs give unspecified (but in-range) q.
//   dequantize: y = q scale (+ zero), rounded once to f32 (no fused multiply-add), then to y's dtype.
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include <new>

#include "cpu_common.hpp"
#include "gemm.hpp"

namespace ds::cpu {
namespace {

inline int64_t cmin(int64_t a, int64_t b) { return a < b ? a : b; }

inline float clampf(float v, float lo, float hi) { return fminf(fmaxf(v, lo), hi); }  // NaN -> lo

struct GroupParams {
    float scale;
    float zero;
};

// Scale (and zero) of one group of n values.
GroupParams group_params(const float* v, int64_t n, int32_t bits, int32_t symmetric) {
    if (symmetric) {
        float amax = 0.0f;
        for (int64_t i = 0; i < n; ++i) amax = fmaxf(amax, fabsf(v[i]));
        float scale = amax / (bits == 8 ? 127.0f : 7.0f);
        return {scale > 0.0f ? scale : 1.0f, 0.0f};
    }
    float mn = v[0], mx = v[0];
    for (int64_t i = 1; i < n; ++i) {
        mn = fminf(mn, v[i]);
        mx = fmaxf(mx, v[i]);
    }
    float scale = (mx - mn) / (bits == 8 ? 255.0f : 15.0f);
    return {scale > 0.0f ? scale : 1.0f, mn};
}

// The integer level of v (already offset by +8 for symmetric 4-bit storage).
inline int quant_level(float v, const GroupParams& p, int32_t bits, int32_t symmetric) {
    if (symmetric) {
        const float qmax = bits == 8 ? 127.0f : 7.0f;
        int q = static_cast<int>(clampf(rintf(v / p.scale), -qmax, qmax));
        return bits == 8 ? q : q + 8;
    }
    const float qmax = bits == 8 ? 255.0f : 15.0f;
    return static_cast<int>(clampf(rintf((v - p.zero) / p.scale), 0.0f, qmax));
}

// Level -> value: q scale (+ zero); lvl is the stored value (i8, u8 or a nibble).
inline float dequant_level(int lvl, float scale, float zero, int32_t bits, int32_t symmetric) {
    if (symmetric) {
        const int q = bits == 8 ? lvl : lvl - 8;
        return static_cast<float>(q) * scale;
    }
    const float prod = static_cast<float>(lvl) * scale;  // two roundings, as on CUDA (__fmul_rn, __fadd_rn)
    return prod + zero;
}

// Dequantize columns [k0, k1) of row r of a quantized [rows, cols] tensor into out[0 .. k1-k0).
// k0 and k1 are multiples of 2 for 4 bits (or k1 == cols). Group by group, in loops the compiler
// vectorises (the per-element form costs several cycles per element).
void dequant_row(const void* q, const float* scales, const float* zeros, int32_t bits, int32_t group,
                 int32_t symmetric, int64_t cols, int64_t r, int64_t k0, int64_t k1, float* out) {
    const int64_t ngroups = cols / group;
    const float* srow = scales + r * ngroups;
    const float* zrow = symmetric ? nullptr : zeros + r * ngroups;
    for (int64_t g0 = k0; g0 < k1;) {
        const int64_t gi = g0 / group;
        const int64_t g1 = cmin(k1, (gi + 1) * group);
        const float s = srow[gi], z = zrow ? zrow[gi] : 0.0f;
        float* o = out + (g0 - k0);
        const int64_t n = g1 - g0;
        if (bits == 8) {
            if (symmetric) {
                const int8_t* qp = static_cast<const int8_t*>(q) + r * cols + g0;
                for (int64_t i = 0; i < n; ++i) o[i] = static_cast<float>(qp[i]) * s;
            } else {
                const uint8_t* qp = static_cast<const uint8_t*>(q) + r * cols + g0;
                for (int64_t i = 0; i < n; ++i) {
                    const float prod = static_cast<float>(qp[i]) * s;  // two roundings, as on CUDA
                    o[i] = prod + z;
                }
            }
        } else if ((g0 & 1) == 0 && (n & 1) == 0) {  // whole bytes
            const uint8_t* qp = static_cast<const uint8_t*>(q) + r * (cols / 2) + g0 / 2;
            const int off = symmetric ? 8 : 0;
            for (int64_t i = 0; i < n / 2; ++i) {
                const float lo = static_cast<float>(static_cast<int>(qp[i] & 15) - off) * s;
                const float hi = static_cast<float>(static_cast<int>(qp[i] >> 4) - off) * s;
                o[2 * i] = lo + z;
                o[2 * i + 1] = hi + z;
            }
        } else {  // an odd group size: a byte may straddle two groups
            const uint8_t* qp = static_cast<const uint8_t*>(q) + r * (cols / 2);
            for (int64_t k = g0; k < g1; ++k) {
                const int lvl = (k & 1) ? qp[k >> 1] >> 4 : qp[k >> 1] & 0xf;
                out[k - k0] = dequant_level(lvl, s, z, bits, symmetric);
            }
        }
        g0 = g1;
    }
}

// 64-byte aligned float buffer owned by the calling function.
struct FloatBuf {
    float* p = nullptr;
    explicit FloatBuf(size_t n) {
        p = static_cast<float*>(aligned_alloc(64, ((n ? n : 1) * sizeof(float) + 63) & ~static_cast<size_t>(63)));
        if (!p) throw std::bad_alloc();
    }
    FloatBuf(const FloatBuf&) = delete;
    FloatBuf& operator=(const FloatBuf&) = delete;
    ~FloatBuf() { free(p); }
};

void to_f32_row(const void* src, int32_t dt, int64_t offset, int64_t n, float* dst) {
    for (int64_t i = 0; i < n; ++i) dst[i] = load_f32(src, dt, offset + i);
}

}  // namespace

void quantize(const ds_op_quant_args_t& a) {
    const int64_t rows = a.rows, cols = a.cols, group = a.group_size;
    if (rows <= 0 || cols <= 0) return;
    const int64_t ngroups = cols / group;
    const int nt = static_cast<int>(cmin(ds::op::threads(), cmin(rows, 1 + rows * cols / 16384)));
    FloatBuf buf(static_cast<size_t>(nt) * cols);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        float* v = buf.p + static_cast<int64_t>(omp_get_thread_num()) * cols;
        to_f32_row(a.x, a.x_dtype, r * cols, cols, v);
        for (int64_t gi = 0; gi < ngroups; ++gi) {
            const GroupParams p = group_params(v + gi * group, group, a.bits, a.symmetric);
            a.scales[r * ngroups + gi] = p.scale;
            if (a.zeros) a.zeros[r * ngroups + gi] = p.zero;  // 0 for symmetric
            if (a.bits == 8) {
                for (int64_t k = gi * group; k < (gi + 1) * group; ++k) {
                    const int lvl = quant_level(v[k], p, 8, a.symmetric);
                    if (a.symmetric)
                        static_cast<int8_t*>(a.q)[r * cols + k] = static_cast<int8_t>(lvl);
                    else
                        static_cast<uint8_t*>(a.q)[r * cols + k] = static_cast<uint8_t>(lvl);
                }
            } else {
                // Levels of this group are staged in v itself (as floats) and packed per row below.
                for (int64_t k = gi * group; k < (gi + 1) * group; ++k)
                    v[k] = static_cast<float>(quant_level(v[k], p, 4, a.symmetric));
            }
        }
        if (a.bits == 4) {
            uint8_t* qp = static_cast<uint8_t*>(a.q) + r * (cols / 2);
            for (int64_t i = 0; i < cols / 2; ++i)
                qp[i] = static_cast<uint8_t>(static_cast<int>(v[2 * i]) | (static_cast<int>(v[2 * i + 1]) << 4));
        }
    }
}

void dequantize(const ds_op_dequant_args_t& a) {
    const int64_t rows = a.rows, cols = a.cols;
    if (rows <= 0 || cols <= 0) return;
    const int nt = static_cast<int>(cmin(ds::op::threads(), cmin(rows, 1 + rows * cols / 16384)));
    FloatBuf buf(a.y_dtype == DS_DTYPE_F32 ? 1 : static_cast<size_t>(nt) * cols);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        if (a.y_dtype == DS_DTYPE_F32) {
            dequant_row(a.q, a.scales, a.zeros, a.bits, a.group_size, a.symmetric, cols, r, 0, cols,
                        static_cast<float*>(a.y) + r * cols);
        } else {
            float* v = buf.p + static_cast<int64_t>(omp_get_thread_num()) * cols;
            dequant_row(a.q, a.scales, a.zeros, a.bits, a.group_size, a.symmetric, cols, r, 0, cols, v);
            for (int64_t k = 0; k < cols; ++k) store_f32(a.y, a.y_dtype, r * cols + k, v[k]);
        }
    }
}

// y = x dequant(W)^T + bias.
//  M <= 4 (decode): one pass over the weight, parallel over its rows: each row is dequantized into
//  f32 once and dotted with every row of x (converted to f32 beforehand).
//  Larger M: the weight is dequantized in tiles of rows into an f32 buffer (at most ~8 MiB) and each
//  tile goes through the blocked GEMM (ds::cpu::gemm, op(B) = tile^T) writing its columns of y.
void gemm_wq(const ds_op_gemm_wq_args_t& a) {
    const int64_t M = a.m, N = a.n, K = a.k;
    if (M <= 0 || N <= 0) return;
    if (M <= 4) {
        FloatBuf xf(static_cast<size_t>(M * K));
        for (int64_t m = 0; m < M; ++m) to_f32_row(a.x, a.dtype, m * K, K, xf.p + m * K);
        const int nt = static_cast<int>(cmin(ds::op::threads(), cmin(N, 1 + N * K / 32768)));
        FloatBuf wbuf(static_cast<size_t>(nt) * (K + 16));
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t n = 0; n < N; ++n) {
            float* w = wbuf.p + static_cast<int64_t>(omp_get_thread_num()) * (K + 16);
            dequant_row(a.wq, a.scales, a.zeros, a.bits, a.group_size, a.symmetric, K, n, 0, K, w);
            const float bias = a.bias ? load_f32(a.bias, a.dtype, n) : 0.0f;
            for (int64_t m = 0; m < M; ++m) {
                const float* x = xf.p + m * K;
                float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
                int64_t k = 0;
                for (; k + 8 <= K; k += 8)
                    for (int j = 0; j < 8; ++j) s[j] += x[k + j] * w[k + j];
                for (; k < K; ++k) s[k & 7] += x[k] * w[k];
                const float dot = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
                store_f32(a.y, a.dtype, m * N + n, dot + bias);
            }
        }
        return;
    }
    int64_t tile = (int64_t(8) << 20) / (K > 0 ? K * 4 : 4);
    tile = tile < 64 ? 64 : (tile / 64) * 64;
    if (tile > N) tile = N;
    FloatBuf wt(static_cast<size_t>(tile * (K > 0 ? K : 1)));
    const int64_t esize = a.dtype == DS_DTYPE_F32 ? 4 : 2;
    for (int64_t n0 = 0; n0 < N; n0 += tile) {
        const int64_t nn = cmin(tile, N - n0);
        const int nt = static_cast<int>(cmin(ds::op::threads(), cmin(nn, 1 + nn * K / 32768)));
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t i = 0; i < nn; ++i)
            dequant_row(a.wq, a.scales, a.zeros, a.bits, a.group_size, a.symmetric, K, n0 + i, 0, K, wt.p + i * K);
        ds_op_gemm_args_t g{};
        g.a = a.x;
        g.b = wt.p;
        g.bias = a.bias ? static_cast<const char*>(a.bias) + n0 * esize : nullptr;
        g.c = static_cast<char*>(a.y) + n0 * esize;
        g.a_dtype = a.dtype;
        g.b_dtype = DS_DTYPE_F32;
        g.c_dtype = a.dtype;
        g.trans_a = 0;
        g.trans_b = 1;
        g.epilogue = a.bias ? DS_EPILOGUE_BIAS : DS_EPILOGUE_NONE;
        g.alpha = 1.0f;
        g.beta = 0.0f;
        g.batch = 1;
        g.m = M;
        g.n = nn;
        g.k = K;
        g.lda = K;
        g.ldb = K;
        g.ldc = N;
        gemm(g);
    }
}

}  // namespace ds::cpu
