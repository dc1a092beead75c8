// Flash-style attention on the CPU: the body of the forward and backward kernels, compiled once per
// instruction set. Each of attn.cpp (baseline x86-64), attn_avx2.cpp and attn_avx512.cpp defines
// DS_ATTN_NS (its namespace) and includes this file, so nothing here is shared between translation
// units built with different -m flags: everything here has internal linkage, and no C++ library template
// (whose out-of-line copies the linker would merge across ISAs) is used; scratch memory comes from the
// caller (attn.cpp).
//
// Forward, per task (batch, query head, tile of kQ query rows): the query tile is converted to f32 and
// pre-scaled; keys and values stream through in tiles of kK rows (K transposed for a dot product that
// vectorises over keys), with the running max / sum of the online softmax per row. No [S, S_kv]
// matrix exists anywhere. Causal rows only visit the keys they can see.
//
// Backward (FlashAttention-2 recipe): Dsum_i = rowsum(dO * O); P is recomputed from q, k and the
// forward's lse; dS = P * (dP - Dsum_i) with dP = dO V^T. Two passes keep every output owned by one
// task (deterministic, no atomics): pass 1 per (batch, kv head, key tile) accumulates dK and dV over all
// query heads of its group and all query tiles; pass 2 per (batch, query head, query tile) accumulates
// dQ over the key tiles. Arithmetic is f32 for every storage dtype.
#ifndef DS_ATTN_NS
#error "define DS_ATTN_NS before including attn_impl.hpp"
#endif

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <omp.h>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "dsabi.h"
#include "attn.hpp"
#include "op_attn.h"

namespace ds::cpu::DS_ATTN_NS {
namespace {

using namespace attn_detail;

template <class T>
inline T mn(T a, T b) {
    return b < a ? b : a;
}
template <class T>
inline T mx(T a, T b) {
    return a < b ? b : a;
}
inline void zero(float* p, int64_t n) {
    for (int64_t i = 0; i < n; ++i) p[i] = 0.0f;
}

// ---- conversions (private copies: see the header comment) ----------------------------------------

inline float bf16_f32(uint16_t h) {
    uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

inline uint16_t f32_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    uint32_t nan = (u >> 16) | 0x0040u;
    return static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
}

inline float f16_f32(uint16_t h) {
    uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t em = h & 0x7fffu;
    uint32_t u;
    if (em >= 0x7c00u) {
        u = sign | 0x7f800000u | ((em & 0x3ffu) << 13);
    } else if (em >= 0x0400u) {
        u = sign | ((em << 13) + 0x38000000u);
    } else {  // subnormal or zero: em * 2^-24, exact in f32
        float f = static_cast<float>(em) * 5.9604644775390625e-8f;
        uint32_t m;
        memcpy(&m, &f, 4);
        u = sign | m;
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

inline uint16_t f32_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
    if (a < 0x38800000u) {  // subnormal half: round |f| * 2^24 to an integer, ties to even
        float x;
        memcpy(&x, &a, 4);
        float scaled = x * 16777216.0f;  // exact (power of two)
        float r = nearbyintf(scaled);  // default rounding mode: nearest even
        return static_cast<uint16_t>(sign | static_cast<uint32_t>(r));
    }
    uint32_t r = a - 0x38000000u;
    r += 0xfffu + ((r >> 13) & 1u);
    return static_cast<uint16_t>(sign | (r >> 13));
}

// dst[i] = src[i] * mul for n elements of a float buffer of dtype starting at element off.
inline void load_row(const void* base, int32_t dtype, int64_t off, int n, float mul, float* dst) {
    if (dtype == DS_DTYPE_F32) {
        const float* s = static_cast<const float*>(base) + off;
        for (int i = 0; i < n; ++i) dst[i] = s[i] * mul;
    } else if (dtype == DS_DTYPE_BF16) {
        const uint16_t* s = static_cast<const uint16_t*>(base) + off;
        for (int i = 0; i < n; ++i) dst[i] = bf16_f32(s[i]) * mul;
    } else {
        const uint16_t* s = static_cast<const uint16_t*>(base) + off;
        int i = 0;
#if defined(__F16C__)
        for (; i + 8 <= n; i += 8) {
            __m256 x = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
            _mm256_storeu_ps(dst + i, _mm256_mul_ps(x, _mm256_set1_ps(mul)));
        }
#endif
        for (; i < n; ++i) dst[i] = f16_f32(s[i]) * mul;
    }
}

// Element off + i of a float buffer of dtype = src[i] * mul (round to nearest even).
inline void store_row(void* base, int32_t dtype, int64_t off, int n, float mul, const float* src) {
    if (dtype == DS_DTYPE_F32) {
        float* d = static_cast<float*>(base) + off;
        for (int i = 0; i < n; ++i) d[i] = src[i] * mul;
    } else if (dtype == DS_DTYPE_BF16) {
        uint16_t* d = static_cast<uint16_t*>(base) + off;
        for (int i = 0; i < n; ++i) d[i] = f32_bf16(src[i] * mul);
    } else {
        uint16_t* d = static_cast<uint16_t*>(base) + off;
        int i = 0;
#if defined(__F16C__)
        for (; i + 8 <= n; i += 8) {
            __m256 x = _mm256_mul_ps(_mm256_loadu_ps(src + i), _mm256_set1_ps(mul));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
        }
#endif
        for (; i < n; ++i) d[i] = f32_f16(src[i] * mul);
    }
}

// ---- SIMD helpers: GCC vector extensions as wide as the ISA's registers ----------------------------

#if defined(__AVX512F__)
constexpr int kW = 16;
#elif defined(__AVX2__)
constexpr int kW = 8;
#else
constexpr int kW = 4;
#endif
typedef float v16 __attribute__((vector_size(kW * 4)));
typedef float v16u __attribute__((vector_size(kW * 4), aligned(4)));
typedef int32_t i16v __attribute__((vector_size(kW * 4)));

inline v16 ld(const float* p) { return *reinterpret_cast<const v16u*>(p); }
inline void st(float* p, v16 v) { *reinterpret_cast<v16u*>(p) = v; }
inline v16 splat(float x) { return v16{} + x; }
inline float hmax(v16 v) {
    float m = v[0];
    for (int i = 1; i < kW; ++i) m = mx(m, v[i]);
    return m;
}
inline float hsum(v16 v) {
    float s = 0.0f;
    for (int i = 0; i < kW; ++i) s += v[i];
    return s;
}
inline i16v iota16(int base) {
    i16v v;
    for (int i = 0; i < kW; ++i) v[i] = base + i;
    return v;
}

// exp(x) per lane (Cephes polynomial, about 1 ulp): x below -87.3 (including -inf) gives 0, x above
// 88 is clamped to 88; NaN is not expected here.
inline v16 exp_v(v16 x) {
    const v16 lo = splat(-87.3f), hi = splat(88.0f);
    v16 xc = x < lo ? lo : x;
    xc = xc > hi ? hi : xc;
    const v16 t = xc * 1.44269504088896341f;
    const v16 fn = (t + 12582912.0f) - 12582912.0f;  // round to nearest (|t| < 2^22)
    v16 r = xc - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    v16 p = splat(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const v16 y = p * r * r + r + 1.0f;
    const i16v bits = (__builtin_convertvector(fn, i16v) + 127) << 23;
    const v16 res = y * __builtin_bit_cast(v16, bits);
    return x < lo ? v16{} : res;
}
inline float exp_f32(float x) { return exp_v(splat(x))[0]; }

constexpr float kNegInf = -__builtin_inff();

// Keys [j0, j0 + nk) of one kv head into kt (transposed, [D][kK], columns past nk zeroed) and, when
// rows != nullptr, row-major [kK][D] into rows (rows past nk zeroed).
inline void load_kv_tile(const void* base, int32_t dtype, int64_t row_stride, int64_t head_off, int64_t j0, int nk, int D,
                         float* tmp, float* kt, float* rows) {
    for (int jj = 0; jj < nk; ++jj) {
        float* dst = rows ? rows + static_cast<int64_t>(jj) * D : tmp;
        load_row(base, dtype, (j0 + jj) * row_stride + head_off, D, 1.0f, dst);
        if (kt)
            for (int d = 0; d < D; ++d) kt[static_cast<int64_t>(d) * kK + jj] = dst[d];
    }
    if (kt && nk < kK)
        for (int d = 0; d < D; ++d)
            for (int jj = nk; jj < kK; ++jj) kt[static_cast<int64_t>(d) * kK + jj] = 0.0f;
    if (rows && nk < kK) zero(rows + static_cast<int64_t>(nk) * D, static_cast<int64_t>(kK - nk) * D);
}

// s[r][jj] = sum_d a_r[d] * bt[d][jj] for r < nr (<= kR) and all kK columns; a rows have stride D
// (rows past nr repeat the last one and are not used).
inline void block_scores(const float* a, int nr, int D, const float* bt, float (*s)[kK]) {
    const float* a0 = a;
    const float* a1 = a + static_cast<int64_t>(mn(1, nr - 1)) * D;
    const float* a2 = a + static_cast<int64_t>(mn(2, nr - 1)) * D;
    const float* a3 = a + static_cast<int64_t>(mn(3, nr - 1)) * D;
    for (int c = 0; c < kK; c += kW) {
        v16 s0{}, s1{}, s2{}, s3{};
        for (int d = 0; d < D; ++d) {
            const v16 b = ld(bt + static_cast<int64_t>(d) * kK + c);
            s0 += a0[d] * b;
            s1 += a1[d] * b;
            s2 += a2[d] * b;
            s3 += a3[d] * b;
        }
        st(s[0] + c, s0);
        st(s[1] + c, s1);
        st(s[2] + c, s2);
        st(s[3] + c, s3);
    }
}

// out_r[d] = out_r[d] * alpha[r] + sum_{jj < n} w[r][jj] * rows[jj][d] for r < NR (out rows stride D).
template <int NR>
inline void block_acc(float* out, const float* alpha, const float (*w)[kK], int n, const float* rows, int D) {
    int d0 = 0;
    for (; d0 + kW <= D; d0 += kW) {
        v16 o[NR];
        for (int r = 0; r < NR; ++r) o[r] = ld(out + static_cast<int64_t>(r) * D + d0) * alpha[r];
        for (int jj = 0; jj < n; ++jj) {
            const v16 v = ld(rows + static_cast<int64_t>(jj) * D + d0);
            for (int r = 0; r < NR; ++r) o[r] += w[r][jj] * v;
        }
        for (int r = 0; r < NR; ++r) st(out + static_cast<int64_t>(r) * D + d0, o[r]);
    }
    for (; d0 < D; ++d0)
        for (int r = 0; r < NR; ++r) {
            float o = out[static_cast<int64_t>(r) * D + d0] * alpha[r];
            for (int jj = 0; jj < n; ++jj) o += w[r][jj] * rows[static_cast<int64_t>(jj) * D + d0];
            out[static_cast<int64_t>(r) * D + d0] = o;
        }
}
inline void block_acc_n(int nr, float* out, const float* alpha, const float (*w)[kK], int n, const float* rows, int D) {
    switch (nr) {
        case 4: block_acc<4>(out, alpha, w, n, rows, D); break;
        case 3: block_acc<3>(out, alpha, w, n, rows, D); break;
        case 2: block_acc<2>(out, alpha, w, n, rows, D); break;
        default: block_acc<1>(out, alpha, w, n, rows, D); break;
    }
}

// dst[jj][d] += sum_{r < NR} w[r][jj] * src_r[d] for jj < n (dst rows stride D, src rows stride D).
template <int NR>
inline void key_acc(float* dst, const float (*w)[kK], int n, const float* src, int D) {
    int d0 = 0;
    for (; d0 + kW <= D; d0 += kW) {
        v16 x[NR];
        for (int r = 0; r < NR; ++r) x[r] = ld(src + static_cast<int64_t>(r) * D + d0);
        for (int jj = 0; jj < n; ++jj) {
            float* o = dst + static_cast<int64_t>(jj) * D + d0;
            v16 acc = ld(o);
            for (int r = 0; r < NR; ++r) acc += w[r][jj] * x[r];
            st(o, acc);
        }
    }
    for (; d0 < D; ++d0)
        for (int jj = 0; jj < n; ++jj) {
            float acc = dst[static_cast<int64_t>(jj) * D + d0];
            for (int r = 0; r < NR; ++r) acc += w[r][jj] * src[static_cast<int64_t>(r) * D + d0];
            dst[static_cast<int64_t>(jj) * D + d0] = acc;
        }
}
inline void key_acc_n(int nr, float* dst, const float (*w)[kK], int n, const float* src, int D) {
    switch (nr) {
        case 4: key_acc<4>(dst, w, n, src, D); break;
        case 3: key_acc<3>(dst, w, n, src, D); break;
        case 2: key_acc<2>(dst, w, n, src, D); break;
        default: key_acc<1>(dst, w, n, src, D); break;
    }
}

struct Dims {
    int64_t B, S, Skv, off;
    int Hq, Hkv, G, D;
    int64_t q_row, kv_row;  // elements between consecutive positions of one head
    int32_t dtype;
    bool causal;
    float scale;
};

template <class A>
Dims dims_of(const A& a) {
    Dims d;
    d.B = a.batch;
    d.S = a.seq_q;
    d.Skv = a.seq_kv;
    d.off = a.seq_kv - a.seq_q;
    d.Hq = a.heads_q;
    d.Hkv = a.heads_kv;
    d.G = a.heads_q / a.heads_kv;
    d.D = a.head_dim;
    d.q_row = static_cast<int64_t>(a.heads_q) * a.head_dim;
    d.kv_row = static_cast<int64_t>(a.heads_kv) * a.head_dim;
    d.dtype = a.dtype;
    d.causal = a.causal != 0;
    d.scale = a.scale;
    return d;
}

// Keys visible to query row i: [0, key_limit(i)).
inline int64_t key_limit(const Dims& g, int64_t i) {
    if (!g.causal) return g.Skv;
    return mx<int64_t>(0, mn<int64_t>(g.Skv, i + g.off + 1));
}

// Query rows that see key j: [first_query(j), S).
inline int64_t first_query(const Dims& g, int64_t j) {
    if (!g.causal) return 0;
    return mn<int64_t>(g.S, mx<int64_t>(0, j - g.off));
}

}  // namespace

// scratch: nthreads * fwd_scratch(D) floats.
void attention_fwd(const ds_attn_fwd_args_t& a, float* scratch, int nthreads) {
    const Dims g = dims_of(a);
    const int D = g.D;
    const int64_t n_qt = (g.S + kQ - 1) / kQ;
    const int64_t n_tasks = g.B * g.Hq * n_qt;
    if (n_tasks == 0) return;
    const size_t per = fwd_scratch(D);

#pragma omp parallel num_threads(nthreads)
    {
        float* qs = scratch + per * static_cast<size_t>(omp_get_thread_num());
        float* os = qs + kQ * D;
        float* kt = os + kQ * D;
        float* vs = kt + static_cast<int64_t>(D) * kK;
        float* tmp = vs + static_cast<int64_t>(kK) * D;
        float* m = tmp + D;
        float* l = m + kQ;
        alignas(64) float s[kR][kK];

#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < n_tasks; ++task) {
            // Longest tasks (last query tiles, under a causal mask) first.
            const int64_t qt = n_qt - 1 - task % n_qt;
            const int64_t bh = task / n_qt;
            const int h = static_cast<int>(bh % g.Hq);
            const int64_t b = bh / g.Hq;
            const int hk = h / g.G;
            const int64_t i0 = qt * kQ;
            const int nq = static_cast<int>(mn<int64_t>(kQ, g.S - i0));
            const int64_t q_base = b * g.S * g.q_row + static_cast<int64_t>(h) * D;
            const int64_t kv_base = b * g.Skv * g.kv_row + static_cast<int64_t>(hk) * D;

            for (int r = 0; r < nq; ++r) {
                load_row(a.q, g.dtype, q_base + (i0 + r) * g.q_row, D, g.scale, qs + r * D);
                zero(os + r * D, D);
                m[r] = kNegInf;
                l[r] = 0.0f;
            }
            const int64_t kend = key_limit(g, i0 + nq - 1);
            for (int64_t j0 = 0; j0 < kend; j0 += kK) {
                const int nk = static_cast<int>(mn<int64_t>(kK, kend - j0));
                load_kv_tile(a.k, g.dtype, g.kv_row, kv_base, j0, nk, D, tmp, kt, nullptr);
                load_kv_tile(a.v, g.dtype, g.kv_row, kv_base, j0, nk, D, tmp, nullptr, vs);
                for (int r0 = 0; r0 < nq; r0 += kR) {
                    const int nr = mn(kR, nq - r0);
                    // Row blocks that see nothing of this tile are skipped before the product.
                    if (key_limit(g, i0 + r0 + nr - 1) <= j0) continue;
                    block_scores(qs + r0 * D, nr, D, kt, s);
                    float alpha[kR];
                    int nmax = 0;
                    for (int r = 0; r < nr; ++r) {
                        const int row = r0 + r;
                        const int nv = static_cast<int>(mx<int64_t>(0, mn<int64_t>(nk, key_limit(g, i0 + row) - j0)));
                        nmax = mx(nmax, nv);
                        alpha[r] = 1.0f;
                        if (nv <= 0) {  // this row sees nothing of the tile
                            for (int c = 0; c < kK; c += kW) st(s[r] + c, v16{});
                            continue;
                        }
                        const i16v lim = i16v{} + nv;
                        v16 top = splat(kNegInf);
                        for (int c = 0; c < kK; c += kW) {
                            const v16 x = ld(s[r] + c);
                            const v16 masked = iota16(c) < lim ? x : splat(kNegInf);
                            top = masked > top ? masked : top;
                        }
                        const float m_new = mx(m[row], hmax(top));
                        alpha[r] = m[row] == kNegInf ? 0.0f : exp_f32(m[row] - m_new);
                        v16 sum{};
                        for (int c = 0; c < kK; c += kW) {
                            const v16 pv = exp_v(ld(s[r] + c) - m_new);
                            const v16 p = iota16(c) < lim ? pv : v16{};
                            st(s[r] + c, p);
                            sum += p;
                        }
                        l[row] = l[row] * alpha[r] + hsum(sum);
                        m[row] = m_new;
                    }
                    block_acc_n(nr, os + r0 * D, alpha, s, nmax, vs, D);
                }
            }
            for (int r = 0; r < nq; ++r) {
                const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
                store_row(a.o, g.dtype, q_base + (i0 + r) * g.q_row, D, inv, os + r * D);
                if (a.lse) {
                    const int64_t li = (b * g.Hq + h) * g.S + i0 + r;
                    a.lse[li] = l[r] > 0.0f ? m[r] + logf(l[r]) : kNegInf;
                }
            }
        }
    }
}

// dsum: B * Hq * S floats; scratch: nthreads * bwd_scratch(D) floats.
void attention_bwd(const ds_attn_bwd_args_t& a, float* dsum, float* scratch, int nthreads) {
    const Dims g = dims_of(a);
    const int D = g.D;
    const size_t per = bwd_scratch(D);
    const int64_t n_rows = g.B * g.S;
    const int64_t n_kt = (g.Skv + kK - 1) / kK;
    const int64_t tasks1 = g.B * g.Hkv * n_kt;
    const int64_t n_qt = (g.S + kQ - 1) / kQ;
    const int64_t tasks2 = g.B * g.Hq * n_qt;

    // Rows of a query tile (q, dO, lse, Dsum) into per-thread buffers.
    auto load_q_tile = [&](int64_t b, int h, int64_t i0, int nq, float* qs, float* dos, float* lse_t, float* ds_t) {
        const int64_t q_base = b * g.S * g.q_row + static_cast<int64_t>(h) * D;
        for (int r = 0; r < nq; ++r) {
            load_row(a.q, g.dtype, q_base + (i0 + r) * g.q_row, D, 1.0f, qs + r * D);
            load_row(a.dout, g.dtype, q_base + (i0 + r) * g.q_row, D, 1.0f, dos + r * D);
            const int64_t li = (b * g.Hq + h) * g.S + i0 + r;
            lse_t[r] = a.lse[li];
            ds_t[r] = dsum[li];
        }
    };

    // For nr (<= kR) query rows (absolute index i_abs) against key tile [j0, j0 + nk): p = exp(scale q.k
    // - lse), zero where masked, and dp = p * (dO.v - Dsum). nv[r]: keys of the tile row r sees.
    auto probs = [&](const float* qs, const float* dos, const float* lse_t, const float* ds_t, int64_t i_abs, int nr,
                     int64_t j0, int nk, const float* kt, const float* vt, float (*p)[kK], float (*dp)[kK], int* nv) {
        block_scores(qs, nr, D, kt, p);
        block_scores(dos, nr, D, vt, dp);
        int nmax = 0;
        for (int r = 0; r < nr; ++r) {
            nv[r] = static_cast<int>(mx<int64_t>(0, mn<int64_t>(nk, key_limit(g, i_abs + r) - j0)));
            nmax = mx(nmax, nv[r]);
            const i16v lim = i16v{} + nv[r];
            const float lse = lse_t[r];
            const float dsv = ds_t[r];
            for (int c = 0; c < kK; c += kW) {
                const v16 e = exp_v(ld(p[r] + c) * g.scale - lse);
                const v16 pv = iota16(c) < lim ? e : v16{};
                st(p[r] + c, pv);
                st(dp[r] + c, pv * (ld(dp[r] + c) - dsv));
            }
        }
        return nmax;
    };

#pragma omp parallel num_threads(nthreads)
    {
        float* base = scratch + per * static_cast<size_t>(omp_get_thread_num());
        float* kt = base;                                   // [D][kK]
        float* vt = kt + static_cast<int64_t>(D) * kK;      // [D][kK]
        float* krows = vt + static_cast<int64_t>(D) * kK;   // [kK][D]: pass 1 dk, pass 2 k rows
        float* dv = krows + static_cast<int64_t>(D) * kK;   // [kK][D]: pass 1 dv, pass 2 dq
        float* qs = dv + static_cast<int64_t>(D) * kK;      // [kQ][D]
        float* dos = qs + kQ * D;                           // [kQ][D]
        float* tmp = dos + kQ * D;                          // [D]
        float* lse_t = tmp + D;                             // [kQ]
        float* ds_t = lse_t + kQ;                           // [kQ]
        alignas(64) float p[kR][kK];
        alignas(64) float dp[kR][kK];
        int nv[kR];
        const float ones[kR] = {1.0f, 1.0f, 1.0f, 1.0f};

        // ---- Dsum[b, h, i] = sum_d dO * O ------------------------------------------------------------
#pragma omp for schedule(static)
        for (int64_t bi = 0; bi < n_rows; ++bi) {
            const int64_t b = bi / g.S, i = bi % g.S;
            for (int h = 0; h < g.Hq; ++h) {
                const int64_t off = bi * g.q_row + static_cast<int64_t>(h) * D;
                load_row(a.dout, g.dtype, off, D, 1.0f, qs);
                load_row(a.o, g.dtype, off, D, 1.0f, dos);
                float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
                for (int d = 0; d < D; ++d) acc += qs[d] * dos[d];
                dsum[(b * g.Hq + h) * g.S + i] = acc;
            }
        }  // implicit barrier: dsum is complete

        // ---- pass 1: dK, dV per (b, kv head, key tile) -----------------------------------------------
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks1; ++task) {
            const int64_t kt_i = task % n_kt;  // early key tiles see the most queries under a causal mask
            const int64_t bh = task / n_kt;
            const int hk = static_cast<int>(bh % g.Hkv);
            const int64_t b = bh / g.Hkv;
            const int64_t j0 = kt_i * kK;
            const int nk = static_cast<int>(mn<int64_t>(kK, g.Skv - j0));
            const int64_t kv_base = b * g.Skv * g.kv_row + static_cast<int64_t>(hk) * D;
            float* dk = krows;
            load_kv_tile(a.k, g.dtype, g.kv_row, kv_base, j0, nk, D, tmp, kt, nullptr);
            load_kv_tile(a.v, g.dtype, g.kv_row, kv_base, j0, nk, D, tmp, vt, nullptr);
            zero(dk, static_cast<int64_t>(kK) * D);
            zero(dv, static_cast<int64_t>(kK) * D);
            const int64_t i_first = first_query(g, j0);
            for (int h = hk * g.G; h < (hk + 1) * g.G; ++h) {
                for (int64_t i0 = i_first; i0 < g.S; i0 += kQ) {
                    const int nq = static_cast<int>(mn<int64_t>(kQ, g.S - i0));
                    load_q_tile(b, h, i0, nq, qs, dos, lse_t, ds_t);
                    for (int r0 = 0; r0 < nq; r0 += kR) {
                        const int nr = mn(kR, nq - r0);
                        const int nmax =
                            probs(qs + r0 * D, dos + r0 * D, lse_t + r0, ds_t + r0, i0 + r0, nr, j0, nk, kt, vt, p, dp, nv);
                        key_acc_n(nr, dv, p, nmax, dos + r0 * D, D);
                        key_acc_n(nr, dk, dp, nmax, qs + r0 * D, D);
                    }
                }
            }
            for (int jj = 0; jj < nk; ++jj) {
                const int64_t off = kv_base + (j0 + jj) * g.kv_row;
                store_row(a.dk, g.dtype, off, D, g.scale, dk + static_cast<int64_t>(jj) * D);
                store_row(a.dv, g.dtype, off, D, 1.0f, dv + static_cast<int64_t>(jj) * D);
            }
        }

        // ---- pass 2: dQ per (b, query head, query tile) ----------------------------------------------
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks2; ++task) {
            const int64_t qt = n_qt - 1 - task % n_qt;
            const int64_t bh = task / n_qt;
            const int h = static_cast<int>(bh % g.Hq);
            const int64_t b = bh / g.Hq;
            const int hk = h / g.G;
            const int64_t i0 = qt * kQ;
            const int nq = static_cast<int>(mn<int64_t>(kQ, g.S - i0));
            const int64_t kv_base = b * g.Skv * g.kv_row + static_cast<int64_t>(hk) * D;
            float* dq = dv;
            load_q_tile(b, h, i0, nq, qs, dos, lse_t, ds_t);
            zero(dq, static_cast<int64_t>(kQ) * D);
            const int64_t kend = key_limit(g, i0 + nq - 1);
            for (int64_t j0 = 0; j0 < kend; j0 += kK) {
                const int nk = static_cast<int>(mn<int64_t>(kK, kend - j0));
                load_kv_tile(a.k, g.dtype, g.kv_row, kv_base, j0, nk, D, tmp, kt, krows);
                load_kv_tile(a.v, g.dtype, g.kv_row, kv_base, j0, nk, D, tmp, vt, nullptr);
                for (int r0 = 0; r0 < nq; r0 += kR) {
                    const int nr = mn(kR, nq - r0);
                    if (key_limit(g, i0 + r0 + nr - 1) <= j0) continue;
                    const int nmax =
                        probs(qs + r0 * D, dos + r0 * D, lse_t + r0, ds_t + r0, i0 + r0, nr, j0, nk, kt, vt, p, dp, nv);
                    block_acc_n(nr, dq + r0 * D, ones, dp, nmax, krows, D);
                }
            }
            const int64_t q_base = b * g.S * g.q_row + static_cast<int64_t>(h) * D;
            for (int r = 0; r < nq; ++r)
                store_row(a.dq, g.dtype, q_base + (i0 + r) * g.q_row, D, g.scale, dq + r * D);
        }
    }
}

}  // namespace ds::cpu::DS_ATTN_NS
