// AVX2 + FMA + F16C kernels of the optim family: Adam/AdamW with the grad conversion and the
// f16/bf16 copy of the updated weights fused in one pass, the non-finite scan and the f64 sum of
// squares. 8 lanes; the tail runs through the scalar element formulas (optim_elem.hpp).
#include <immintrin.h>

#include "cpu/optim_elem.hpp"

namespace ds::cpu::optim_isa {
namespace {

template <int GDT>
inline __m256 load_g(const void* g, int64_t i) {
    if constexpr (GDT == DS_DTYPE_F32) {
        return _mm256_loadu_ps(static_cast<const float*>(g) + i);
    } else {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(g) + i));
        if constexpr (GDT == DS_DTYPE_F16) return _mm256_cvtph_ps(h);
        else return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
}

inline __m128i to_bf16(__m256 x) {
    const __m256i u = _mm256_castps_si256(x);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    const __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    r = _mm256_blendv_epi8(r, q, nan);
    // Every lane is <= 0xffff, so the signed->unsigned saturating pack is exact.
    return _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
}

// The lp copy is written once and not read back by the step: with a 16-byte aligned destination it
// goes out with non-temporal stores (no read-for-ownership of its lines).
template <int LDT>
inline void store_lp(void* lp, int64_t i, __m256 x, bool stream) {
    if constexpr (LDT == DS_DTYPE_F16 || LDT == DS_DTYPE_BF16) {
        __m128i h;
        if constexpr (LDT == DS_DTYPE_F16) h = _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        else h = to_bf16(x);
        __m128i* d = reinterpret_cast<__m128i*>(static_cast<uint16_t*>(lp) + i);
        if (stream) _mm_stream_si128(d, h);
        else _mm_storeu_si128(d, h);
    } else {
        (void)stream;
        (void)lp;
        (void)i;
        (void)x;
    }
}

template <int GDT, int LDT, bool ADAMW>
struct Adam {
    static inline void step8(const AdamConst& c, float* p, const void* g, float* m, float* v, void* lp, int64_t i,
                             bool stream) {
        __m256 gv = _mm256_mul_ps(load_g<GDT>(g, i), _mm256_set1_ps(c.grad_scale));
        __m256 pv = _mm256_loadu_ps(p + i);
        __m256 mv = _mm256_loadu_ps(m + i);
        __m256 vv = _mm256_loadu_ps(v + i);
        if constexpr (!ADAMW) gv = _mm256_fmadd_ps(_mm256_set1_ps(c.l2), pv, gv);
        mv = _mm256_fmadd_ps(_mm256_set1_ps(c.beta1), mv, _mm256_mul_ps(_mm256_set1_ps(c.one_minus_beta1), gv));
        vv = _mm256_fmadd_ps(_mm256_set1_ps(c.beta2), vv,
                             _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(c.one_minus_beta2), gv), gv));
        const __m256 den = _mm256_fmadd_ps(_mm256_sqrt_ps(vv), _mm256_set1_ps(c.inv_sqrt_bc2), _mm256_set1_ps(c.eps));
        if constexpr (ADAMW) pv = _mm256_mul_ps(pv, _mm256_set1_ps(c.decay));
        pv = _mm256_fnmadd_ps(_mm256_set1_ps(c.step_size), _mm256_div_ps(mv, den), pv);
        _mm256_storeu_ps(p + i, pv);
        _mm256_storeu_ps(m + i, mv);
        _mm256_storeu_ps(v + i, vv);
        store_lp<LDT>(lp, i, pv, stream);
    }

    static void run(const AdamConst& c, float* p, const void* g, float* m, float* v, void* lp, int64_t n) {
        const bool stream = LDT >= 0 && (reinterpret_cast<uintptr_t>(lp) & 15u) == 0;
        int64_t i = 0;
        for (; i + 16 <= n; i += 16) {
            step8(c, p, g, m, v, lp, i, stream);
            step8(c, p, g, m, v, lp, i + 8, stream);
        }
        for (; i + 8 <= n; i += 8) step8(c, p, g, m, v, lp, i, stream);
        if (stream) _mm_sfence();  // order the non-temporal stores before the caller's barrier
        for (; i < n; ++i) {
            adam_elem<ADAMW>(c, p[i], load_as_f32<GDT>(g, i), m[i], v[i]);
            if constexpr (LDT >= 0) store_from_f32<LDT>(lp, i, p[i]);
        }
    }
};

template <int GDT>
bool nonfinite_t(const void* x, int64_t n, float scale) {
    const __m256 s = _mm256_set1_ps(scale);
    const __m256i expo = _mm256_set1_epi32(0x7f800000);
    __m256i any = _mm256_setzero_si256();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i u = _mm256_castps_si256(_mm256_mul_ps(load_g<GDT>(x, i), s));
        any = _mm256_or_si256(any, _mm256_cmpeq_epi32(_mm256_and_si256(u, expo), expo));
        if ((i & 0xffff) == 0 && !_mm256_testz_si256(any, any)) return true;
    }
    if (!_mm256_testz_si256(any, any)) return true;
    return nonfinite_run<GDT>(static_cast<const char*>(x) + i * (GDT == DS_DTYPE_F32 ? 4 : 2), n - i, scale);
}

template <int GDT>
double sumsq_t(const void* x, int64_t n) {
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd(), a2 = _mm256_setzero_pd(), a3 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 x0 = load_g<GDT>(x, i);
        const __m256 x1 = load_g<GDT>(x, i + 8);
        const __m256d d0 = _mm256_cvtps_pd(_mm256_castps256_ps128(x0));
        const __m256d d1 = _mm256_cvtps_pd(_mm256_extractf128_ps(x0, 1));
        const __m256d d2 = _mm256_cvtps_pd(_mm256_castps256_ps128(x1));
        const __m256d d3 = _mm256_cvtps_pd(_mm256_extractf128_ps(x1, 1));
        a0 = _mm256_fmadd_pd(d0, d0, a0);
        a1 = _mm256_fmadd_pd(d1, d1, a1);
        a2 = _mm256_fmadd_pd(d2, d2, a2);
        a3 = _mm256_fmadd_pd(d3, d3, a3);
    }
    const __m256d s = _mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3));
    alignas(32) double lanes[4];
    _mm256_store_pd(lanes, s);
    double tail = sumsq_run<GDT>(static_cast<const char*>(x) + i * (GDT == DS_DTYPE_F32 ? 4 : 2), n - i);
    return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail;
}

}  // namespace

AdamFn adam_avx2(int32_t gdt, int32_t ldt, bool adamw) { return pick_adam<Adam>(gdt, ldt, adamw); }

bool nonfinite_avx2(const void* x, int32_t dt, int64_t n, float scale) {
    switch (dt) {
        case DS_DTYPE_F16: return nonfinite_t<DS_DTYPE_F16>(x, n, scale);
        case DS_DTYPE_BF16: return nonfinite_t<DS_DTYPE_BF16>(x, n, scale);
        default: return nonfinite_t<DS_DTYPE_F32>(x, n, scale);
    }
}

double sumsq_avx2(const void* x, int32_t dt, int64_t n) {
    switch (dt) {
        case DS_DTYPE_F16: return sumsq_t<DS_DTYPE_F16>(x, n);
        case DS_DTYPE_BF16: return sumsq_t<DS_DTYPE_BF16>(x, n);
        default: return sumsq_t<DS_DTYPE_F32>(x, n);
    }
}

}  // namespace ds::cpu::optim_isa
