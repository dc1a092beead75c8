// GEMM for AVX2 + FMA + F16C: the blocked driver (gemm_driver.hpp) with a 6 x 16 micro-kernel
// (12 ymm accumulators, 2 for the B row, 1 broadcast of A: 15 of the 16 registers; variants with
// fewer rows for the edge of M) and a transposing pack of [n, k] B through 8 x 8 transposes.
#include <immintrin.h>

#include "gemm.hpp"
#include "gemm_driver.hpp"

namespace {

struct KernelAvx2 {
    static constexpr int MR = 6, NR = 16;
    static constexpr bool kPairs = false;
    static constexpr int64_t KC = 256, MC = 96, NC = 512;

    // c[R x 16] = alpha a^T b + beta c for the first R <= MR rows of an A sliver; B row k at b + k ldb.
    template <int R>
    static void micro_r(int64_t kc, const float* __restrict a, const float* __restrict b, int64_t ldb,
                        float* __restrict c, int64_t ldc, float alpha, float beta) {
        __m256 acc[R][2];
#pragma GCC unroll 6
        for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        for (int64_t k = 0; k < kc; ++k) {
            const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
            for (int r = 0; r < R; ++r) {
                const __m256 av = _mm256_broadcast_ss(a + r);
                acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
            }
            a += MR;
            b += ldb;
        }
        const __m256 va = _mm256_set1_ps(alpha);
        if (beta == 0.0f) {
#pragma GCC unroll 6
            for (int r = 0; r < R; ++r) {
                _mm256_storeu_ps(c + r * ldc, _mm256_mul_ps(va, acc[r][0]));
                _mm256_storeu_ps(c + r * ldc + 8, _mm256_mul_ps(va, acc[r][1]));
            }
        } else {
            const __m256 vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
            for (int r = 0; r < R; ++r) {
                float* cr = c + r * ldc;
                _mm256_storeu_ps(cr, _mm256_fmadd_ps(va, acc[r][0], _mm256_mul_ps(vb, _mm256_loadu_ps(cr))));
                _mm256_storeu_ps(cr + 8, _mm256_fmadd_ps(va, acc[r][1], _mm256_mul_ps(vb, _mm256_loadu_ps(cr + 8))));
            }
        }
    }

    static void micro(int mr, int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
                      float alpha, float beta) {
        switch (mr) {
            case 6: micro_r<6>(kc, a, b, ldb, c, ldc, alpha, beta); break;
            case 5: micro_r<5>(kc, a, b, ldb, c, ldc, alpha, beta); break;
            case 4: micro_r<4>(kc, a, b, ldb, c, ldc, alpha, beta); break;
            case 3: micro_r<3>(kc, a, b, ldb, c, ldc, alpha, beta); break;
            case 2: micro_r<2>(kc, a, b, ldb, c, ldc, alpha, beta); break;
            default: micro_r<1>(kc, a, b, ldb, c, ldc, alpha, beta); break;
        }
    }

    // 8 elements of a row (the first n, the rest 0) as f32.
    static __m256 load8(const void* src, int32_t dt, int64_t n) {
        if (n < 8) {
            alignas(32) float t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            to_f32(src, dt, n, t);
            return _mm256_load_ps(t);
        }
        if (dt == DS_DTYPE_F32) return _mm256_loadu_ps(static_cast<const float*>(src));
        const __m128i h = _mm_loadu_si128(static_cast<const __m128i*>(src));
        if (dt == DS_DTYPE_F16) return _mm256_cvtph_ps(h);
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }

    // In-register 8 x 8 transpose: r[i][j] -> r[j][i].
    static void transpose8(__m256 (&r)[8]) {
        __m256 t[8], u[8];
        for (int i = 0; i < 4; ++i) {
            t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        for (int G = 0; G < 2; ++G) {  // u[4G + c], lane L: column 4L + c of rows 4G .. 4G+3
            u[4 * G + 0] = _mm256_shuffle_ps(t[4 * G + 0], t[4 * G + 2], 0x44);
            u[4 * G + 1] = _mm256_shuffle_ps(t[4 * G + 0], t[4 * G + 2], 0xee);
            u[4 * G + 2] = _mm256_shuffle_ps(t[4 * G + 1], t[4 * G + 3], 0x44);
            u[4 * G + 3] = _mm256_shuffle_ps(t[4 * G + 1], t[4 * G + 3], 0xee);
        }
        for (int c = 0; c < 4; ++c) {
            r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
            r[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
        }
    }

    // dst[k * 6 + r] = src[r * lda + k]: 8 x 8 transposes of which 6 rows are kept.
    static void pack_at(const void* src, int32_t dt, int64_t lda, int64_t mr, int64_t kc, float* dst) {
        const int64_t es = dt == DS_DTYPE_F32 ? 4 : 2;
        const char* base = static_cast<const char*>(src);
        const __m256i keep = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
        for (int64_t kb = 0; kb < kc; kb += 8) {
            const int64_t w = kc - kb < 8 ? kc - kb : 8;
            __m256 r[8];
            for (int i = 0; i < 8; ++i)
                r[i] = i < mr ? load8(base + (i * lda + kb) * es, dt, w) : _mm256_setzero_ps();
            transpose8(r);
            for (int64_t c = 0; c < w; ++c) _mm256_maskstore_ps(dst + (kb + c) * MR, keep, r[c]);
        }
    }

    // dst[k * 16 + j] = src[j * ldb + k]: 8 x 8 blocks transposed in registers.
    static void pack_bt(const void* src, int32_t dt, int64_t ldb, int64_t nr, int64_t kc, float* dst) {
        const int64_t es = dt == DS_DTYPE_F32 ? 4 : 2;
        const char* base = static_cast<const char*>(src);
        for (int64_t kb = 0; kb < kc; kb += 8) {
            const int64_t w = kc - kb < 8 ? kc - kb : 8;
            for (int h = 0; h < 2; ++h) {
                __m256 r[8];
                for (int i = 0; i < 8; ++i) {
                    const int64_t j = 8 * h + i;
                    r[i] = j < nr ? load8(base + (j * ldb + kb) * es, dt, w) : _mm256_setzero_ps();
                }
                transpose8(r);
                for (int64_t c = 0; c < w; ++c) _mm256_store_ps(dst + (kb + c) * NR + 8 * h, r[c]);
            }
        }
    }

    static float h2f(uint16_t h) { return _cvtsh_ss(h); }
    static uint16_t f2h(float f) { return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT)); }

    static void to_f32(const void* src, int32_t dt, int64_t n, float* dst) {
        int64_t i = 0;
        if (dt == DS_DTYPE_F32) {  // not memcpy: a libc call per short row costs more than the copy
            const float* f = static_cast<const float*>(src);
            for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_loadu_ps(f + i));
            for (; i < n; ++i) dst[i] = f[i];
            return;
        }
        const uint16_t* s = static_cast<const uint16_t*>(src);
        if (dt == DS_DTYPE_BF16) {
            for (; i + 8 <= n; i += 8) {
                __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
                _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
            }
            for (; i < n; ++i) dst[i] = g_bf16_to_f32(s[i]);
        } else {
            for (; i + 8 <= n; i += 8)
                _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
            for (; i < n; ++i) dst[i] = _cvtsh_ss(s[i]);
        }
    }
};

}  // namespace

namespace ds::cpu::detail {
void gemm_avx2(const ds_op_gemm_args_t& args) { GemmDriver<KernelAvx2>::run(args); }
}  // namespace ds::cpu::detail
