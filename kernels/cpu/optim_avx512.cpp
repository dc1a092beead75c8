// AVX-512 (F/BW/VL/DQ) kernels of the optim family: Adam/AdamW with the grad conversion and the
// f16/bf16 copy of the updated weights fused in one pass, the non-finite scan and the f64 sum of
// squares. 16 lanes; the tail runs masked. Compiled with -mavx512f/bw/vl/dq -mfma -mf16c.
#include <immintrin.h>

// GCC 12 reports the _mm512_undefined_ps() pass-through operand inside its own intrinsics
// (_mm512_sqrt_ps, ...) as "may be used uninitialized": a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "cpu/optim_elem.hpp"

namespace ds::cpu::optim_isa {
namespace {

template <int GDT>
inline __m512 load_g(const void* g, int64_t i, __mmask16 k, bool full) {
    if constexpr (GDT == DS_DTYPE_F32) {
        const float* s = static_cast<const float*>(g) + i;
        return full ? _mm512_loadu_ps(s) : _mm512_maskz_loadu_ps(k, s);
    } else {
        const uint16_t* s = static_cast<const uint16_t*>(g) + i;
        __m256i h = full ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s)) : _mm256_maskz_loadu_epi16(k, s);
        if constexpr (GDT == DS_DTYPE_F16) return _mm512_cvtph_ps(h);
        else return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
}

// f32 -> bf16 with round to nearest even; nan stays (quiet) nan.
inline __m256i to_bf16(__m512 x) {
    const __m512i u = _mm512_castps_si512(x);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
    return _mm512_cvtepi32_epi16(r);
}

// The lp copy is written once and not read back by the step: with a 32-byte aligned destination it
// goes out with non-temporal stores (no read-for-ownership of its lines, 2 bytes per param saved).
template <int LDT>
inline void store_lp(void* lp, int64_t i, __m512 x, __mmask16 k, bool full, bool stream) {
    if constexpr (LDT == DS_DTYPE_F16 || LDT == DS_DTYPE_BF16) {
        __m256i h;
        if constexpr (LDT == DS_DTYPE_F16) h = _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        else h = to_bf16(x);
        uint16_t* d = static_cast<uint16_t*>(lp) + i;
        if (full && stream) _mm256_stream_si256(reinterpret_cast<__m256i*>(d), h);
        else if (full) _mm256_storeu_si256(reinterpret_cast<__m256i*>(d), h);
        else _mm256_mask_storeu_epi16(d, k, h);
    } else {
        (void)stream;
        (void)lp;
        (void)i;
        (void)x;
        (void)k;
        (void)full;
    }
}

template <int GDT, int LDT, bool ADAMW>
struct Adam {
    static inline void step16(const AdamConst& c, float* p, const void* g, float* m, float* v, void* lp, int64_t i,
                              __mmask16 k, bool full, bool stream) {
        const __m512 gs = _mm512_set1_ps(c.grad_scale);
        __m512 gv = _mm512_mul_ps(load_g<GDT>(g, i, k, full), gs);
        __m512 pv = full ? _mm512_loadu_ps(p + i) : _mm512_maskz_loadu_ps(k, p + i);
        __m512 mv = full ? _mm512_loadu_ps(m + i) : _mm512_maskz_loadu_ps(k, m + i);
        __m512 vv = full ? _mm512_loadu_ps(v + i) : _mm512_maskz_loadu_ps(k, v + i);
        if constexpr (!ADAMW) gv = _mm512_fmadd_ps(_mm512_set1_ps(c.l2), pv, gv);
        mv = _mm512_fmadd_ps(_mm512_set1_ps(c.beta1), mv, _mm512_mul_ps(_mm512_set1_ps(c.one_minus_beta1), gv));
        vv = _mm512_fmadd_ps(_mm512_set1_ps(c.beta2), vv,
                             _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(c.one_minus_beta2), gv), gv));
        const __m512 den = _mm512_fmadd_ps(_mm512_sqrt_ps(vv), _mm512_set1_ps(c.inv_sqrt_bc2), _mm512_set1_ps(c.eps));
        if constexpr (ADAMW) pv = _mm512_mul_ps(pv, _mm512_set1_ps(c.decay));
        pv = _mm512_fnmadd_ps(_mm512_set1_ps(c.step_size), _mm512_div_ps(mv, den), pv);
        if (full) {
            _mm512_storeu_ps(p + i, pv);
            _mm512_storeu_ps(m + i, mv);
            _mm512_storeu_ps(v + i, vv);
        } else {
            _mm512_mask_storeu_ps(p + i, k, pv);
            _mm512_mask_storeu_ps(m + i, k, mv);
            _mm512_mask_storeu_ps(v + i, k, vv);
        }
        store_lp<LDT>(lp, i, pv, k, full, stream);
    }

    static void run(const AdamConst& c, float* p, const void* g, float* m, float* v, void* lp, int64_t n) {
        const bool stream = LDT >= 0 && (reinterpret_cast<uintptr_t>(lp) & 31u) == 0;
        int64_t i = 0;
        for (; i + 32 <= n; i += 32) {
            step16(c, p, g, m, v, lp, i, 0xffff, true, stream);
            step16(c, p, g, m, v, lp, i + 16, 0xffff, true, stream);
        }
        for (; i + 16 <= n; i += 16) step16(c, p, g, m, v, lp, i, 0xffff, true, stream);
        if (i < n) step16(c, p, g, m, v, lp, i, static_cast<__mmask16>((1u << (n - i)) - 1u), false, stream);
        if (stream) _mm_sfence();  // order the non-temporal stores before the caller's barrier
    }
};

template <int GDT>
bool nonfinite_t(const void* x, int64_t n, float scale) {
    const __m512 s = _mm512_set1_ps(scale);
    const __m512i expo = _mm512_set1_epi32(0x7f800000);
    __mmask16 any = 0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512i u = _mm512_castps_si512(_mm512_mul_ps(load_g<GDT>(x, i, 0xffff, true), s));
        any |= _mm512_cmpeq_epi32_mask(_mm512_and_si512(u, expo), expo);
        if ((i & 0xffff) == 0 && any) return true;
    }
    if (i < n) {
        const __mmask16 k = static_cast<__mmask16>((1u << (n - i)) - 1u);
        const __m512i u = _mm512_castps_si512(_mm512_mul_ps(load_g<GDT>(x, i, k, false), s));
        any |= _mm512_mask_cmpeq_epi32_mask(k, _mm512_and_si512(u, expo), expo);
    }
    return any != 0;
}

template <int GDT>
double sumsq_t(const void* x, int64_t n) {
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd(), a2 = _mm512_setzero_pd(), a3 = _mm512_setzero_pd();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 x0 = load_g<GDT>(x, i, 0xffff, true);
        const __m512 x1 = load_g<GDT>(x, i + 16, 0xffff, true);
        const __m512d d0 = _mm512_cvtps_pd(_mm512_castps512_ps256(x0));
        const __m512d d1 = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x0), 1)));
        const __m512d d2 = _mm512_cvtps_pd(_mm512_castps512_ps256(x1));
        const __m512d d3 = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x1), 1)));
        a0 = _mm512_fmadd_pd(d0, d0, a0);
        a1 = _mm512_fmadd_pd(d1, d1, a1);
        a2 = _mm512_fmadd_pd(d2, d2, a2);
        a3 = _mm512_fmadd_pd(d3, d3, a3);
    }
    for (; i < n; i += 16) {
        const int64_t left = n - i;
        const __mmask16 k = left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1u);
        const __m512 x0 = load_g<GDT>(x, i, k, false);  // masked-off lanes are 0
        const __m512d d0 = _mm512_cvtps_pd(_mm512_castps512_ps256(x0));
        const __m512d d1 = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x0), 1)));
        a0 = _mm512_fmadd_pd(d0, d0, a0);
        a1 = _mm512_fmadd_pd(d1, d1, a1);
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3)));
}

}  // namespace

AdamFn adam_avx512(int32_t gdt, int32_t ldt, bool adamw) { return pick_adam<Adam>(gdt, ldt, adamw); }

bool nonfinite_avx512(const void* x, int32_t dt, int64_t n, float scale) {
    switch (dt) {
        case DS_DTYPE_F16: return nonfinite_t<DS_DTYPE_F16>(x, n, scale);
        case DS_DTYPE_BF16: return nonfinite_t<DS_DTYPE_BF16>(x, n, scale);
        default: return nonfinite_t<DS_DTYPE_F32>(x, n, scale);
    }
}

double sumsq_avx512(const void* x, int32_t dt, int64_t n) {
    switch (dt) {
        case DS_DTYPE_F16: return sumsq_t<DS_DTYPE_F16>(x, n);
        case DS_DTYPE_BF16: return sumsq_t<DS_DTYPE_BF16>(x, n);
        default: return sumsq_t<DS_DTYPE_F32>(x, n);
    }
}

}  // namespace ds::cpu::optim_isa
