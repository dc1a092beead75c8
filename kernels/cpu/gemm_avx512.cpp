// GEMM for AVX-512 (F/BW/VL/DQ + FMA + F16C): the blocked driver (gemm_driver.hpp) with a 14 x 32
// micro-kernel: 28 zmm accumulators, 2 for the B row, 1 broadcast of A (31 of the 32 registers),
// 28 FMAs per 2 loads of B and 14 broadcasts of A (variants with fewer rows for the edge of M), and
// a transposing pack of [n, k] B through 16 x 16 in-register transposes.
// GCC 12 reports its own _mm512_undefined_* placeholders inside the unmasked intrinsics as "(may be)
// used uninitialized" (GCC bug 105593): silenced for the intrinsics header only.
#if defined(__clang__)
#include <immintrin.h>
#else
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif

#include "gemm.hpp"
#include "gemm_driver.hpp"

namespace {

struct KernelAvx512 {
    static constexpr int MR = 14, NR = 32;
    static constexpr bool kPairs = false;
    static constexpr int64_t KC = 256, MC = 112, NC = 512;

    // c[R x 32] = alpha a^T b + beta c for the first R <= MR rows of an A sliver; B row k at b + k ldb.
    template <int R>
    static void micro_r(int64_t kc, const float* __restrict a, const float* __restrict b, int64_t ldb,
                        float* __restrict c, int64_t ldc, float alpha, float beta) {
        __m512 acc[R][2];
#pragma GCC unroll 14
        for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
        for (int64_t k = 0; k < kc; ++k) {
            const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 14
            for (int r = 0; r < R; ++r) {
                const __m512 av = _mm512_set1_ps(a[r]);
                acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
            }
            a += MR;
            b += ldb;
        }
        const __m512 va = _mm512_set1_ps(alpha);
        if (beta == 0.0f) {
#pragma GCC unroll 14
            for (int r = 0; r < R; ++r) {
                _mm512_storeu_ps(c + r * ldc, _mm512_mul_ps(va, acc[r][0]));
                _mm512_storeu_ps(c + r * ldc + 16, _mm512_mul_ps(va, acc[r][1]));
            }
        } else {
            const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 14
            for (int r = 0; r < R; ++r) {
                float* cr = c + r * ldc;
                _mm512_storeu_ps(cr, _mm512_fmadd_ps(va, acc[r][0], _mm512_mul_ps(vb, _mm512_loadu_ps(cr))));
                _mm512_storeu_ps(cr + 16, _mm512_fmadd_ps(va, acc[r][1], _mm512_mul_ps(vb, _mm512_loadu_ps(cr + 16))));
            }
        }
    }

    static void micro(int mr, int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
                      float alpha, float beta) {
        switch (mr) {
            case 14: micro_r<14>(kc, a, b, ldb, c, ldc, alpha, beta); break;
            case 13: micro_r<13>(kc, a, b, ldb, c, ldc, alpha, beta); break;
            case 12: micro_r<12>(kc, a, b, ldb, c, ldc, alpha, beta); break;
            case 11: micro_r<11>(kc, a, b, ldb, c, ldc, alpha, beta); break;
            case 10: micro_r<10>(kc, a, b, ldb, c, ldc, alpha, beta); break;
            case 9: micro_r<9>(kc, a, b, ldb, c, ldc, alpha, beta); break;
            case 8: micro_r<8>(kc, a, b, ldb, c, ldc, alpha, beta); break;
            case 7: micro_r<7>(kc, a, b, ldb, c, ldc, alpha, beta); break;
            case 6: micro_r<6>(kc, a, b, ldb, c, ldc, alpha, beta); break;
            case 5: micro_r<5>(kc, a, b, ldb, c, ldc, alpha, beta); break;
            case 4: micro_r<4>(kc, a, b, ldb, c, ldc, alpha, beta); break;
            case 3: micro_r<3>(kc, a, b, ldb, c, ldc, alpha, beta); break;
            case 2: micro_r<2>(kc, a, b, ldb, c, ldc, alpha, beta); break;
            default: micro_r<1>(kc, a, b, ldb, c, ldc, alpha, beta); break;
        }
    }

    // 16 elements of a row (masked: the first n, the rest 0) as f32.
    static __m512 load16(const void* src, int32_t dt, int64_t n) {
        const __mmask16 m = n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1u);
        if (dt == DS_DTYPE_F32) return _mm512_maskz_loadu_ps(m, src);
        const __m256i h = _mm256_maskz_loadu_epi16(m, src);
        if (dt == DS_DTYPE_F16) return _mm512_maskz_cvtph_ps(0xffff, h);
        return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xffff, _mm512_maskz_cvtepu16_epi32(0xffff, h), 16));
    }

    // In-register 16 x 16 transpose: r[i][j] -> r[j][i].
    static void transpose16(__m512 (&r)[16]) {
        __m512 t[16];
        for (int i = 0; i < 8; ++i) {  // pairs of rows, interleaved within 128-bit lanes
            t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        __m512 u[16];  // u[4G + c], lane L: column 4L + c of rows 4G .. 4G+3
        for (int G = 0; G < 4; ++G) {
            u[4 * G + 0] = _mm512_shuffle_ps(t[4 * G + 0], t[4 * G + 2], 0x44);
            u[4 * G + 1] = _mm512_shuffle_ps(t[4 * G + 0], t[4 * G + 2], 0xee);
            u[4 * G + 2] = _mm512_shuffle_ps(t[4 * G + 1], t[4 * G + 3], 0x44);
            u[4 * G + 3] = _mm512_shuffle_ps(t[4 * G + 1], t[4 * G + 3], 0xee);
        }
        for (int c = 0; c < 4; ++c) {  // 4 x 4 transpose of 128-bit lanes across u[c], u[4+c], u[8+c], u[12+c]
            const __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);
            const __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xee);
            const __m512 v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
            const __m512 v3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xee);
            r[c] = _mm512_shuffle_f32x4(v0, v2, 0x88);
            r[4 + c] = _mm512_shuffle_f32x4(v0, v2, 0xdd);
            r[8 + c] = _mm512_shuffle_f32x4(v1, v3, 0x88);
            r[12 + c] = _mm512_shuffle_f32x4(v1, v3, 0xdd);
        }
    }

    // dst[k * 32 + j] = src[j * ldb + k]: 16 x 16 blocks transposed in registers.
    static void pack_bt(const void* src, int32_t dt, int64_t ldb, int64_t nr, int64_t kc, float* dst) {
        const int64_t es = dt == DS_DTYPE_F32 ? 4 : 2;
        const char* base = static_cast<const char*>(src);
        for (int64_t kb = 0; kb < kc; kb += 16) {
            const int64_t w = kc - kb < 16 ? kc - kb : 16;
            for (int h = 0; h < 2; ++h) {
                __m512 r[16];
                for (int i = 0; i < 16; ++i) {
                    const int64_t j = 16 * h + i;
                    r[i] = j < nr ? load16(base + (j * ldb + kb) * es, dt, w) : _mm512_setzero_ps();
                }
                transpose16(r);
                for (int64_t c = 0; c < w; ++c) _mm512_store_ps(dst + (kb + c) * NR + 16 * h, r[c]);
            }
        }
    }

    // dst[k * 14 + r] = src[r * lda + k]: 16 x 16 transposes of which 14 rows are kept.
    static void pack_at(const void* src, int32_t dt, int64_t lda, int64_t mr, int64_t kc, float* dst) {
        const int64_t es = dt == DS_DTYPE_F32 ? 4 : 2;
        const char* base = static_cast<const char*>(src);
        const __mmask16 keep = static_cast<__mmask16>((1u << MR) - 1u);
        for (int64_t kb = 0; kb < kc; kb += 16) {
            const int64_t w = kc - kb < 16 ? kc - kb : 16;
            __m512 r[16];
            for (int i = 0; i < 16; ++i)
                r[i] = i < mr ? load16(base + (i * lda + kb) * es, dt, w) : _mm512_setzero_ps();
            transpose16(r);
            for (int64_t c = 0; c < w; ++c) _mm512_mask_storeu_ps(dst + (kb + c) * MR, keep, r[c]);
        }
    }

    static float h2f(uint16_t h) { return _cvtsh_ss(h); }
    static uint16_t f2h(float f) { return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT)); }

    static void to_f32(const void* src, int32_t dt, int64_t n, float* dst) {
        // (The maskz forms: GCC 12 warns about _mm512_undefined_* inside the unmasked ones.)
        int64_t i = 0;
        if (dt == DS_DTYPE_F32) {  // not memcpy: a libc call per short row costs more than the copy
            const float* f = static_cast<const float*>(src);
            for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_loadu_ps(f + i));
            if (i < n) {
                const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
                _mm512_mask_storeu_ps(dst + i, m, _mm512_maskz_loadu_ps(m, f + i));
            }
            return;
        }
        const uint16_t* s = static_cast<const uint16_t*>(src);
        if (dt == DS_DTYPE_BF16) {
            for (; i + 16 <= n; i += 16) {
                __m512i v = _mm512_maskz_cvtepu16_epi32(0xffff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i)));
                _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xffff, v, 16)));
            }
            for (; i < n; ++i) dst[i] = g_bf16_to_f32(s[i]);
        } else {
            for (; i + 16 <= n; i += 16)
                _mm512_storeu_ps(dst + i, _mm512_maskz_cvtph_ps(0xffff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i))));
            for (; i < n; ++i) dst[i] = _cvtsh_ss(s[i]);
        }
    }
};

// bf16 A and B on CPUs with AVX512_BF16 (AMD Zen 4, Intel Cooper Lake / Sapphire Rapids): the same
// 14 x 32 blocking, but panels hold bf16 pairs along K (k even in the low half, k odd in the high
// half; a lone last k pairs with 0) and the micro-kernel uses VDPBF16PS, which adds both products of
// a pair into an f32 accumulator: twice the multiply-adds per instruction, half the packed bytes.
// Accumulation stays f32 (the instruction flushes bf16 denormals to zero, below 1.2e-38).
// (GCC: a target pragma over the region; clang: the same attribute applied to every function in it.)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512bf16"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512bf16")
#endif
struct KernelAvx512Bf16 : KernelAvx512 {
    static constexpr bool kPairs = true;

    // Interleave 32 bf16 of rows x and y into pairs: out[0] holds columns 0-15, out[1] 16-31.
    static void interleave_pairs(__m512i x, __m512i y, __m512i& out0, __m512i& out1) {
        const __m512i lo = _mm512_unpacklo_epi16(x, y);  // columns 0-3, 8-11, 16-19, 24-27
        const __m512i hi = _mm512_unpackhi_epi16(x, y);  // columns 4-7, 12-15, 20-23, 28-31
        const __m512i t0 = _mm512_shuffle_i32x4(lo, hi, 0x44), t1 = _mm512_shuffle_i32x4(lo, hi, 0xee);
        out0 = _mm512_shuffle_i32x4(t0, t0, 0xd8);
        out1 = _mm512_shuffle_i32x4(t1, t1, 0xd8);
    }

    // dst[p * MR + r] = (A(i0+r, pc+2p), A(i0+r, pc+2p+1)), zero padded.
    static void pack_a_pairs(const ds_op_gemm_args_t& g, const void* A, int64_t i0, int64_t mr, int64_t pc, int64_t kc,
                             float* dstf) {
        uint32_t* dst = reinterpret_cast<uint32_t*>(dstf);
        const uint16_t* a = static_cast<const uint16_t*>(A);
        const int64_t full = kc / 2;
        const __mmask16 keep = static_cast<__mmask16>((1u << MR) - 1u);
        if (!g.trans_a) {  // A [m, k]: each row's pairs are adjacent words: 16 x 16 word transposes, 14 rows kept
            for (int64_t pb = 0; pb < full; pb += 16) {
                const int64_t w = full - pb < 16 ? full - pb : 16;
                const __mmask16 m = w >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << w) - 1u);
                __m512 r[16];
                for (int i = 0; i < 16; ++i)
                    r[i] = i < mr ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi32(m, a + (i0 + i) * g.lda + pc + 2 * pb))
                                  : _mm512_setzero_ps();
                transpose16(r);
                for (int64_t c = 0; c < w; ++c) _mm512_mask_storeu_ps(dstf + (pb + c) * MR, keep, r[c]);
            }
        } else {  // A [k, m]: interleave rows k and k + 1 (MR of their columns)
            const __mmask32 m = static_cast<__mmask32>((1u << mr) - 1u);
            for (int64_t p = 0; p < full; ++p) {
                const int64_t k = pc + 2 * p;
                __m512i o0, o1;
                interleave_pairs(_mm512_maskz_loadu_epi16(m, a + k * g.lda + i0),
                                 _mm512_maskz_loadu_epi16(m, a + (k + 1) * g.lda + i0), o0, o1);
                _mm512_mask_storeu_epi32(dst + p * MR, keep, o0);
            }
        }
        if (kc & 1) {  // the lone last k, paired with 0
            const int64_t k = pc + kc - 1;
            uint32_t* d = dst + full * MR;
            for (int64_t r = 0; r < MR; ++r)
                d[r] = r < mr ? static_cast<uint32_t>(g.trans_a ? a[k * g.lda + i0 + r] : a[(i0 + r) * g.lda + k]) : 0u;
        }
    }

    // dst[p * NR + j] = (B(pc+2p, j0+j), B(pc+2p+1, j0+j)), zero padded.
    static void pack_b_pairs(const ds_op_gemm_args_t& g, const void* B, int64_t pc, int64_t kc, int64_t j0, int64_t nr,
                             float* dstf) {
        uint32_t* dst = reinterpret_cast<uint32_t*>(dstf);
        const uint16_t* b = static_cast<const uint16_t*>(B);
        const int64_t full = kc / 2;  // pairs with both halves
        if (g.trans_b) {  // B [n, k]: each row's pairs are adjacent 32-bit words: a 16 x 16 transpose of words
            for (int64_t pb = 0; pb < full; pb += 16) {
                const int64_t w = full - pb < 16 ? full - pb : 16;
                const __mmask16 m = w >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << w) - 1u);
                for (int h = 0; h < 2; ++h) {
                    __m512 r[16];
                    for (int i = 0; i < 16; ++i) {
                        const int64_t j = 16 * h + i;
                        r[i] = j < nr ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi32(m, b + (j0 + j) * g.ldb + pc + 2 * pb))
                                      : _mm512_setzero_ps();
                    }
                    transpose16(r);
                    for (int64_t c = 0; c < w; ++c) _mm512_store_ps(dstf + (pb + c) * NR + 16 * h, r[c]);
                }
            }
        } else {  // B [k, n]: interleave rows k and k + 1, 32 columns at a time
            const __mmask32 m = nr >= 32 ? 0xffffffffu : static_cast<__mmask32>((1ull << nr) - 1u);
            for (int64_t p = 0; p < full; ++p) {
                const int64_t k = pc + 2 * p;
                __m512i o0, o1;
                interleave_pairs(_mm512_maskz_loadu_epi16(m, b + k * g.ldb + j0),
                                 _mm512_maskz_loadu_epi16(m, b + (k + 1) * g.ldb + j0), o0, o1);
                _mm512_store_si512(dst + p * NR, o0);
                _mm512_store_si512(dst + p * NR + 16, o1);
            }
        }
        if (kc & 1) {  // the lone last k, paired with 0
            const int64_t k = pc + kc - 1;
            uint32_t* d = dst + full * NR;
            for (int64_t j = 0; j < NR; ++j)
                d[j] = j < nr ? static_cast<uint32_t>(g.trans_b ? b[(j0 + j) * g.ldb + k] : b[k * g.ldb + j0 + j]) : 0u;
        }
    }

    template <int R>
    static void micro_r(int64_t kc, const float* __restrict af, const float* __restrict bf, float* __restrict c,
                        int64_t ldc, float alpha, float beta) {
        const uint32_t* a = reinterpret_cast<const uint32_t*>(af);
        const __m512i* b = reinterpret_cast<const __m512i*>(bf);
        __m512 acc[R][2];
#pragma GCC unroll 14
        for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
        const int64_t np = (kc + 1) / 2;
        for (int64_t p = 0; p < np; ++p) {
            const __m512bh b0 = reinterpret_cast<__m512bh>(_mm512_load_si512(b)),
                           b1 = reinterpret_cast<__m512bh>(_mm512_load_si512(b + 1));
#pragma GCC unroll 14
            for (int r = 0; r < R; ++r) {
                const __m512bh av = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(a[r])));
                acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
                acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
            }
            a += MR;
            b += 2;
        }
        const __m512 va = _mm512_set1_ps(alpha);
        if (beta == 0.0f) {
#pragma GCC unroll 14
            for (int r = 0; r < R; ++r) {
                _mm512_storeu_ps(c + r * ldc, _mm512_mul_ps(va, acc[r][0]));
                _mm512_storeu_ps(c + r * ldc + 16, _mm512_mul_ps(va, acc[r][1]));
            }
        } else {
            const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 14
            for (int r = 0; r < R; ++r) {
                float* cr = c + r * ldc;
                _mm512_storeu_ps(cr, _mm512_fmadd_ps(va, acc[r][0], _mm512_mul_ps(vb, _mm512_loadu_ps(cr))));
                _mm512_storeu_ps(cr + 16, _mm512_fmadd_ps(va, acc[r][1], _mm512_mul_ps(vb, _mm512_loadu_ps(cr + 16))));
            }
        }
    }

    static void micro(int mr, int64_t kc, const float* a, const float* b, int64_t /*ldb: always packed*/, float* c,
                      int64_t ldc, float alpha, float beta) {
        switch (mr) {
            case 14: micro_r<14>(kc, a, b, c, ldc, alpha, beta); break;
            case 13: micro_r<13>(kc, a, b, c, ldc, alpha, beta); break;
            case 12: micro_r<12>(kc, a, b, c, ldc, alpha, beta); break;
            case 11: micro_r<11>(kc, a, b, c, ldc, alpha, beta); break;
            case 10: micro_r<10>(kc, a, b, c, ldc, alpha, beta); break;
            case 9: micro_r<9>(kc, a, b, c, ldc, alpha, beta); break;
            case 8: micro_r<8>(kc, a, b, c, ldc, alpha, beta); break;
            case 7: micro_r<7>(kc, a, b, c, ldc, alpha, beta); break;
            case 6: micro_r<6>(kc, a, b, c, ldc, alpha, beta); break;
            case 5: micro_r<5>(kc, a, b, c, ldc, alpha, beta); break;
            case 4: micro_r<4>(kc, a, b, c, ldc, alpha, beta); break;
            case 3: micro_r<3>(kc, a, b, c, ldc, alpha, beta); break;
            case 2: micro_r<2>(kc, a, b, c, ldc, alpha, beta); break;
            default: micro_r<1>(kc, a, b, c, ldc, alpha, beta); break;
        }
    }
};
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

bool cpu_has_avx512_bf16() {
    static const bool has = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512bf16") != 0;
    }();
    return has;
}

}  // namespace

namespace ds::cpu::detail {
void gemm_avx512(const ds_op_gemm_args_t& args) {
    if (args.a_dtype == DS_DTYPE_BF16 && args.b_dtype == DS_DTYPE_BF16 && cpu_has_avx512_bf16())
        GemmDriver<KernelAvx512Bf16>::run(args);
    else
        GemmDriver<KernelAvx512>::run(args);
}
}  // namespace ds::cpu::detail
