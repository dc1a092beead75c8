// The CPU kernels of the nn family, compiled once per instruction set: nn.cpp (baseline x86-64,
// NN_ISA = nn_scalar), nn_avx2.cpp (nn_avx2) and nn_avx512.cpp (nn_avx512) define NN_ISA and include
// this file. The code is plain C++ written so that GCC vectorises it for the ISA of the translation
// unit: rows are converted to f32 in a per-thread scratch buffer (F16C conversions where
// available), the arithmetic runs over that buffer, reductions use 16 independent f32 lanes
// combined in f64, and exp is a branch-free polynomial (vexp, below). Working on a scratch copy of
// each row is also what makes every documented aliasing (y = x, dx = dy, dlogits = logits) safe.
//
// Everything but the entry points lives in an anonymous namespace, and nothing here instantiates a
// library template with external linkage (no std::vector): an out-of-line copy compiled for AVX-512
// must never be picked by the linker for the baseline build.
#ifndef NN_ISA
#error "define NN_ISA (the namespace of this build) before including nn_impl.hpp"
#endif

#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "cpu/cpu_common.hpp"
#include "cpu/nn.hpp"
#include "op/cpu.hpp"

namespace ds::cpu::NN_ISA {
namespace {

constexpr int kLanes = 16;        // independent accumulators of the row reductions
constexpr int64_t kChunk = 2048;  // elements per chunk of element-wise and streamed work

// ---- scratch memory (allocated before parallel regions: nothing throws inside them) -----------

struct Scratch {
    float* p = nullptr;
    explicit Scratch(int64_t floats) {
        size_t bytes = (static_cast<size_t>(floats > 0 ? floats : 1) * sizeof(float) + 63) & ~static_cast<size_t>(63);
        p = static_cast<float*>(std::aligned_alloc(64, bytes));
        if (!p) throw std::bad_alloc();
    }
    ~Scratch() { std::free(p); }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
};

// Per-thread row buffers: `per` floats for each of nt threads, 64-byte aligned slices.
struct ThreadScratch {
    int64_t stride;
    Scratch s;
    ThreadScratch(int nt, int64_t per) : stride((per + 15) & ~int64_t{15}), s(stride * nt) {}
    float* get(int t) { return s.p + stride * t; }
};

// Threads for `work` elements: one below kMinParallel (a parallel region costs more than it saves,
// and idle team members spin), else ds::op::threads().
constexpr int64_t kMinParallel = 32768;
inline int threads_for(int64_t work) { return work < kMinParallel ? 1 : ds::op::threads(); }

// ---- conversions ---------------------------------------------------------------------------------

inline float bits_f(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
inline uint32_t f_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
inline float bf16_load(uint16_t h) { return bits_f(static_cast<uint32_t>(h) << 16); }
inline uint16_t bf16_store(float f) {  // round to nearest even; NaN stays a (quiet) NaN
    uint32_t u = f_bits(f);
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (u & 0x7fffffffu) > 0x7f800000u ? static_cast<uint16_t>((u >> 16) | 0x40u) : static_cast<uint16_t>(r);
}
#if defined(__F16C__)
inline float f16_load(uint16_t h) { return _cvtsh_ss(h); }
inline uint16_t f16_store(float f) { return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }
#else
inline float f16_load(uint16_t h) { return f16_to_f32(h); }
inline uint16_t f16_store(float f) { return f32_to_f16(f); }
#endif

inline float load1(const void* p, int32_t dt, int64_t i) {
    if (dt == DS_DTYPE_F32) return static_cast<const float*>(p)[i];
    uint16_t h = static_cast<const uint16_t*>(p)[i];
    return dt == DS_DTYPE_BF16 ? bf16_load(h) : f16_load(h);
}
inline void store1(void* p, int32_t dt, int64_t i, float v) {
    if (dt == DS_DTYPE_F32)
        static_cast<float*>(p)[i] = v;
    else
        static_cast<uint16_t*>(p)[i] = dt == DS_DTYPE_BF16 ? bf16_store(v) : f16_store(v);
}

// dst[0, n) = elements [off, off + n) of a float buffer of dtype dt, as f32.
inline void load_row(const void* base, int32_t dt, int64_t off, int64_t n, float* dst) {
    if (dt == DS_DTYPE_F32) {
        std::memcpy(dst, static_cast<const float*>(base) + off, static_cast<size_t>(n) * 4);
        return;
    }
    const uint16_t* s = static_cast<const uint16_t*>(base) + off;
    if (dt == DS_DTYPE_BF16) {
        for (int64_t i = 0; i < n; ++i) dst[i] = bf16_load(s[i]);
        return;
    }
    int64_t i = 0;
#if defined(__F16C__)  // (also in the AVX-512 build: GCC 12 warns about _mm512_cvtph_ps under -Werror)
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
#endif
    for (; i < n; ++i) dst[i] = f16_load(s[i]);
}

// Elements [off, off + n) of a float buffer of dtype dt = src[0, n), rounded to nearest even.
inline void store_row(const float* src, int32_t dt, int64_t off, int64_t n, void* base) {
    if (dt == DS_DTYPE_F32) {
        std::memcpy(static_cast<float*>(base) + off, src, static_cast<size_t>(n) * 4);
        return;
    }
    uint16_t* d = static_cast<uint16_t*>(base) + off;
    if (dt == DS_DTYPE_BF16) {
        for (int64_t i = 0; i < n; ++i) d[i] = bf16_store(src[i]);
        return;
    }
    int64_t i = 0;
#if defined(__F16C__)
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
    for (; i < n; ++i) d[i] = f16_store(src[i]);
}

inline int64_t load_idx(const void* p, int32_t idtype, int64_t i) {
    return idtype == DS_DTYPE_I64 ? static_cast<const int64_t*>(p)[i] : static_cast<const int32_t*>(p)[i];
}

inline size_t esize(int32_t dt) { return dt == DS_DTYPE_F32 ? 4 : 2; }

// ---- math ----------------------------------------------------------------------------------------

// exp(x) in f32 without branches (vectorises): 2^n * p(r), r = x - n ln2 in [-ln2/2, ln2/2], p the
// degree-7 Taylor polynomial (truncation < 6e-9 relative). Below -87 the result is 0 (exp(-inf) = 0),
// above 88 it saturates at exp(88) ~ 1.65e38; NaN stays NaN. The integer n is read from the
// mantissa of x log2(e) + 1.5 * 2^23 (no float-to-int conversion).
inline float vexp(float x) {
    float xc = x > 88.0f ? 88.0f : x;
    xc = xc < -87.0f ? -87.0f : xc;
    float k = xc * 1.44269504088896341f + 12582912.0f;
    float n = k - 12582912.0f;
    float r = xc - n * 0.693145751953125f;
    r = r - n * 1.42860676533018704e-06f;
    float p = 1.98412698e-4f;
    p = p * r + 1.38888889e-3f;
    p = p * r + 8.33333333e-3f;
    p = p * r + 4.16666667e-2f;
    p = p * r + 1.66666667e-1f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    float scale = bits_f((f_bits(k) - 0x4B400000u + 127u) << 23);
    return x < -87.0f ? 0.0f : p * scale;
}

inline float sigmoid(float x) { return 1.0f / (1.0f + vexp(-x)); }

constexpr float kGeluK0 = 0.7978845608028654f;  // sqrt(2 / pi)
constexpr float kGeluK1 = 0.044715f;
constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

// GPT-2's GELU 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), evaluated as x * sigmoid(2u)
// (the same function: 1 + tanh(u) = 2 sigmoid(2u)) which keeps full relative accuracy for x << 0.
inline float act_fwd(int32_t act, float x) {
    switch (act) {
        case DS_ACT_GELU_TANH: return x * sigmoid(2.0f * kGeluK0 * (x + kGeluK1 * x * x * x));
        case DS_ACT_GELU: return 0.5f * x * std::erfc(-x * kInvSqrt2);
        case DS_ACT_SILU: return x * sigmoid(x);
        default: return x < 0.0f ? 0.0f : x;  // ReLU (NaN stays NaN)
    }
}

inline float act_grad(int32_t act, float x) {
    switch (act) {
        case DS_ACT_GELU_TANH: {
            float s = sigmoid(2.0f * kGeluK0 * (x + kGeluK1 * x * x * x));
            return s + 2.0f * x * s * (1.0f - s) * kGeluK0 * (1.0f + 3.0f * kGeluK1 * x * x);
        }
        case DS_ACT_GELU: return 0.5f * std::erfc(-x * kInvSqrt2) + x * kInvSqrt2Pi * std::exp(-0.5f * x * x);
        case DS_ACT_SILU: {
            float s = sigmoid(x);
            return s * (1.0f + x * (1.0f - s));
        }
        default: return x > 0.0f ? 1.0f : 0.0f;
    }
}

// ---- row reductions (16 f32 lanes, combined in f64) ---------------------------------------------

inline double lane_sum(const float* x, int64_t n) {
    float acc[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int j = 0; j < kLanes; ++j) acc[j] += x[i + j];
    double s = 0;
    for (; i < n; ++i) s += x[i];
    for (int j = 0; j < kLanes; ++j) s += acc[j];
    return s;
}

inline double lane_dot(const float* x, const float* y, int64_t n) {
    float acc[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int j = 0; j < kLanes; ++j) acc[j] += x[i + j] * y[i + j];
    double s = 0;
    for (; i < n; ++i) s += static_cast<double>(x[i]) * y[i];
    for (int j = 0; j < kLanes; ++j) s += acc[j];
    return s;
}

inline double lane_sqdev(const float* x, int64_t n, float c) {  // sum (x - c)^2
    float acc[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int j = 0; j < kLanes; ++j) {
            float t = x[i + j] - c;
            acc[j] += t * t;
        }
    double s = 0;
    for (; i < n; ++i) {
        double t = static_cast<double>(x[i]) - c;
        s += t * t;
    }
    for (int j = 0; j < kLanes; ++j) s += acc[j];
    return s;
}

inline float lane_max(const float* x, int64_t n) {
    float acc[kLanes];
    for (int j = 0; j < kLanes; ++j) acc[j] = -INFINITY;
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int j = 0; j < kLanes; ++j) acc[j] = x[i + j] > acc[j] ? x[i + j] : acc[j];
    float m = -INFINITY;
    for (; i < n; ++i) m = x[i] > m ? x[i] : m;
    for (int j = 0; j < kLanes; ++j) m = acc[j] > m ? acc[j] : m;
    return m;
}

// max of -x[i].
inline float lane_max_neg(const float* x, int64_t n) {
    float acc[kLanes];
    for (int j = 0; j < kLanes; ++j) acc[j] = -INFINITY;
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int j = 0; j < kLanes; ++j) acc[j] = -x[i + j] > acc[j] ? -x[i + j] : acc[j];
    float m = -INFINITY;
    for (; i < n; ++i) m = -x[i] > m ? -x[i] : m;
    for (int j = 0; j < kLanes; ++j) m = acc[j] > m ? acc[j] : m;
    return m;
}

// y[i] = exp(x[i] * scale - m) (y is x or disjoint: ivdep); returns the sum.
inline double lane_exp_sum_to(const float* x, float* y, int64_t n, float scale, float m) {
    float acc[kLanes] = {};
    int64_t i = 0;
#pragma GCC ivdep
    for (; i + kLanes <= n; i += kLanes)
#pragma GCC ivdep
        for (int j = 0; j < kLanes; ++j) {
            float e = vexp(x[i + j] * scale - m);
            y[i + j] = e;
            acc[j] += e;
        }
    double s = 0;
    for (; i < n; ++i) {
        float e = vexp(x[i] * scale - m);
        y[i] = e;
        s += e;
    }
    for (int j = 0; j < kLanes; ++j) s += acc[j];
    return s;
}

// sum of exp(x[i] - m), x not written.
inline double lane_exp_sum_ro(const float* x, int64_t n, float m) {
    float acc[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int j = 0; j < kLanes; ++j) acc[j] += vexp(x[i + j] - m);
    double s = 0;
    for (; i < n; ++i) s += vexp(x[i] - m);
    for (int j = 0; j < kLanes; ++j) s += acc[j];
    return s;
}

// Row blocks for deterministic column sums (parameter gradients): their number depends only on the
// shape, never on the thread count, and the partials are added in block order.
inline int64_t col_blocks(int64_t n, int64_t d) {
    int64_t cap = (int64_t{1} << 22) / (d > 0 ? d : 1);
    int64_t b = n < 64 ? n : 64;
    if (b > cap) b = cap;
    return b < 1 ? 1 : b;
}

// p[i] (dtype dt, accumulated) += sum over blocks of part[blk * d + i].
void add_partials(void* p, int32_t dt, const float* part, int64_t nblk, int64_t d, int nt) {
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < d; ++i) {
        double acc = load1(p, dt, i);
        for (int64_t b = 0; b < nblk; ++b) acc += part[b * d + i];
        store1(p, dt, i, static_cast<float>(acc));
    }
}

}  // namespace

// ---- embedding ------------------------------------------------------------------------------------

void embedding(const ds_nn_embedding_args_t& a) {
    const size_t row = static_cast<size_t>(a.d) * esize(a.dtype);
    const char* w = static_cast<const char*>(a.weight);
    char* out = static_cast<char*>(a.out);
#pragma omp parallel for num_threads(threads_for(a.n * a.d)) schedule(static)
    for (int64_t r = 0; r < a.n; ++r) {
        int64_t id = load_idx(a.ids, a.idtype, r);
        if (id < 0 || id >= a.v)
            std::memset(out + r * row, 0, row);
        else
            std::memcpy(out + r * row, w + id * row, row);
    }
}

void embedding_backward(const ds_nn_embedding_args_t& a) {
    if (a.n <= 0 || a.d <= 0) return;
    // Counting sort of the token indices by id (stable: increasing token index within an id).
    int64_t* start = static_cast<int64_t*>(std::calloc(static_cast<size_t>(a.v + 1), sizeof(int64_t)));
    int64_t* order = static_cast<int64_t*>(std::malloc(static_cast<size_t>(a.n) * sizeof(int64_t)));
    int64_t* rows = static_cast<int64_t*>(std::malloc(static_cast<size_t>(a.n) * sizeof(int64_t)));
    if (!start || !order || !rows) {
        std::free(start), std::free(order), std::free(rows);
        throw std::bad_alloc();
    }
    for (int64_t i = 0; i < a.n; ++i) {
        int64_t id = load_idx(a.ids, a.idtype, i);
        if (id >= 0 && id < a.v) ++start[id + 1];
    }
    int64_t n_rows = 0;
    for (int64_t r = 0; r < a.v; ++r) {
        if (start[r + 1]) rows[n_rows++] = r;
        start[r + 1] += start[r];
    }
    {
        // fill positions: a running cursor per id (reuse `order` positions from start[])
        int64_t* cursor = static_cast<int64_t*>(std::malloc(static_cast<size_t>(a.v) * sizeof(int64_t)));
        if (!cursor) {
            std::free(start), std::free(order), std::free(rows);
            throw std::bad_alloc();
        }
        std::memcpy(cursor, start, static_cast<size_t>(a.v) * sizeof(int64_t));
        for (int64_t i = 0; i < a.n; ++i) {
            int64_t id = load_idx(a.ids, a.idtype, i);
            if (id >= 0 && id < a.v) order[cursor[id]++] = i;
        }
        std::free(cursor);
    }
    const int nt = threads_for(a.n * a.d);
    const int64_t d = a.d;
    try {
        ThreadScratch buf(nt, 2 * d);
#pragma omp parallel num_threads(nt)
        {
            float* acc = buf.get(omp_get_thread_num());
            float* tmp = acc + d;
#pragma omp for schedule(dynamic, 16)
            for (int64_t k = 0; k < n_rows; ++k) {
                const int64_t r = rows[k];
                std::memset(acc, 0, static_cast<size_t>(d) * sizeof(float));
                for (int64_t j = start[r]; j < start[r + 1]; ++j) {
                    load_row(a.dout, a.dtype, order[j] * d, d, tmp);
                    for (int64_t i = 0; i < d; ++i) acc[i] += tmp[i];
                }
                load_row(a.dweight, a.pdtype, r * d, d, tmp);
                for (int64_t i = 0; i < d; ++i) tmp[i] += acc[i];
                store_row(tmp, a.pdtype, r * d, d, a.dweight);
            }
        }
    } catch (...) {
        std::free(start), std::free(order), std::free(rows);
        throw;
    }
    std::free(start), std::free(order), std::free(rows);
}

// ---- layer norm / RMS norm ------------------------------------------------------------------------

// A row as f32: the data itself for f32 tensors, else converted into `scratch`.
inline const float* src_row(const void* base, int32_t dt, int64_t off, int64_t n, float* scratch) {
    if (dt == DS_DTYPE_F32) return static_cast<const float*>(base) + off;
    load_row(base, dt, off, n, scratch);
    return scratch;
}
// Where to write a row's f32 results: the destination itself for f32, else `scratch` (then
// finish_row converts it into place).
inline float* dst_row(void* base, int32_t dt, int64_t off, float* scratch) {
    return dt == DS_DTYPE_F32 ? static_cast<float*>(base) + off : scratch;
}
inline void finish_row(const float* scratch, int32_t dt, int64_t off, int64_t n, void* base) {
    if (dt != DS_DTYPE_F32) store_row(scratch, dt, off, n, base);
}

// One row of the norm backward, fused: pass A reads x and dy once (xhat kept in xh, the parameter
// partials updated, the two row sums accumulated in lanes), pass B writes dx. Element-wise in pass B,
// so dx may alias dy or x (x is no longer read, xhat is in xh).
template <bool RMS, bool W, bool B>
inline void norm_bwd_row(const float* x, const float* dy, const float* w, float mean, float rstd, int64_t d,
                         float* xh, float* bw, float* bb, float* dx) {
    // ivdep: xh, bw and bb never overlap x, dy or w; dx is dy, x or disjoint (element-wise).
    float l1[kLanes] = {}, l2[kLanes] = {};
    int64_t i = 0;
#pragma GCC ivdep
    for (; i + kLanes <= d; i += kLanes)
#pragma GCC ivdep
        for (int j = 0; j < kLanes; ++j) {
            const float h = (x[i + j] - mean) * rstd, g0 = dy[i + j], g = g0 * w[i + j];
            xh[i + j] = h;
            if (W) bw[i + j] += g0 * h;
            if (B) bb[i + j] += g0;
            l1[j] += g;
            l2[j] += g * h;
        }
    double s1 = 0, s2 = 0;
    for (; i < d; ++i) {
        const float h = (x[i] - mean) * rstd, g0 = dy[i], g = g0 * w[i];
        xh[i] = h;
        if (W) bw[i] += g0 * h;
        if (B) bb[i] += g0;
        s1 += g;
        s2 += static_cast<double>(g) * h;
    }
    for (int j = 0; j < kLanes; ++j) s1 += l1[j], s2 += l2[j];
    const float c1 = RMS ? 0.0f : static_cast<float>(s1 / static_cast<double>(d));
    const float c2 = static_cast<float>(s2 / static_cast<double>(d));
#pragma GCC ivdep
    for (int64_t k = 0; k < d; ++k) dx[k] = rstd * (dy[k] * w[k] - c1 - xh[k] * c2);
}

void norm(const ds_nn_norm_args_t& a) {
    const int64_t n = a.n, d = a.d;
    if (n <= 0 || d <= 0) return;
    const int nt = threads_for(n * d);
    const int32_t dt = a.dtype;
    Scratch wb(2 * d);
    float* w = wb.p;
    float* b = a.bias ? wb.p + d : nullptr;
    load_row(a.weight, dt, 0, d, w);
    if (b) load_row(a.bias, dt, 0, d, b);
    ThreadScratch scratch(nt, dt == DS_DTYPE_F32 ? 0 : d);
#pragma omp parallel num_threads(nt)
    {
        float* buf = scratch.get(omp_get_thread_num());
#pragma omp for schedule(static)
        for (int64_t r = 0; r < n; ++r) {
            const float* x = src_row(a.x, dt, r * d, d, buf);
            float* y = dst_row(a.y, dt, r * d, buf);  // == x when converted: element-wise below
            float mean = 0.0f, rstd;
            if (a.rms) {
                rstd = static_cast<float>(1.0 / std::sqrt(lane_dot(x, x, d) / static_cast<double>(d) + a.eps));
                for (int64_t i = 0; i < d; ++i) y[i] = x[i] * rstd * w[i];
            } else {
                mean = static_cast<float>(lane_sum(x, d) / static_cast<double>(d));
                rstd = static_cast<float>(1.0 / std::sqrt(lane_sqdev(x, d, mean) / static_cast<double>(d) + a.eps));
                if (b)
                    for (int64_t i = 0; i < d; ++i) y[i] = (x[i] - mean) * rstd * w[i] + b[i];
                else
                    for (int64_t i = 0; i < d; ++i) y[i] = (x[i] - mean) * rstd * w[i];
            }
            finish_row(y, dt, r * d, d, a.y);
            if (a.mean) a.mean[r] = mean;
            if (a.rstd) a.rstd[r] = rstd;
        }
    }
}

void norm_backward(const ds_nn_norm_args_t& a) {
    const int64_t n = a.n, d = a.d;
    if (n <= 0 || d <= 0) return;
    const int nt = threads_for(n * d);
    const int32_t dt = a.dtype;
    const bool want_w = a.dweight != nullptr, want_b = !a.rms && a.dbias != nullptr;
    const int64_t nblk = col_blocks(n, d);
    Scratch wbuf(d);
    float* w = wbuf.p;
    load_row(a.weight, dt, 0, d, w);
    Scratch part((want_w ? nblk * d : 0) + (want_b ? nblk * d : 0));
    float* pw = want_w ? part.p : nullptr;
    float* pb = want_b ? part.p + (want_w ? nblk * d : 0) : nullptr;
    const int64_t rowbuf = (d + 15) & ~int64_t{15};
    ThreadScratch scratch(nt, dt == DS_DTYPE_F32 ? rowbuf : 3 * rowbuf);
#pragma omp parallel num_threads(nt)
    {
        float* xh = scratch.get(omp_get_thread_num());
        float* xb = xh + rowbuf;   // converted x (f16/bf16)
        float* gb = xb + rowbuf;   // converted dy, then dx (f16/bf16)
#pragma omp for schedule(dynamic, 1)
        for (int64_t blk = 0; blk < nblk; ++blk) {
            const int64_t r0 = blk * n / nblk, r1 = (blk + 1) * n / nblk;
            float* bw = pw ? pw + blk * d : nullptr;
            float* bb = pb ? pb + blk * d : nullptr;
            if (bw) std::memset(bw, 0, static_cast<size_t>(d) * sizeof(float));
            if (bb) std::memset(bb, 0, static_cast<size_t>(d) * sizeof(float));
            for (int64_t r = r0; r < r1; ++r) {
                const float* x = src_row(a.x, dt, r * d, d, xb);
                const float* dy = src_row(a.dy, dt, r * d, d, gb);
                float* dx = dst_row(a.dx, dt, r * d, gb);  // gb: dy converted, overwritten element-wise
                const float mean = a.rms ? 0.0f : a.mean[r];
                const float rstd = a.rstd[r];
                if (a.rms) {
                    if (bw) norm_bwd_row<true, true, false>(x, dy, w, mean, rstd, d, xh, bw, bb, dx);
                    else norm_bwd_row<true, false, false>(x, dy, w, mean, rstd, d, xh, bw, bb, dx);
                } else if (bw && bb) {
                    norm_bwd_row<false, true, true>(x, dy, w, mean, rstd, d, xh, bw, bb, dx);
                } else if (bw) {
                    norm_bwd_row<false, true, false>(x, dy, w, mean, rstd, d, xh, bw, bb, dx);
                } else if (bb) {
                    norm_bwd_row<false, false, true>(x, dy, w, mean, rstd, d, xh, bw, bb, dx);
                } else {
                    norm_bwd_row<false, false, false>(x, dy, w, mean, rstd, d, xh, bw, bb, dx);
                }
                finish_row(dx, dt, r * d, d, a.dx);
            }
        }
    }
    if (want_w) add_partials(a.dweight, a.pdtype, pw, nblk, d, nt);
    if (want_b) add_partials(a.dbias, a.pdtype, pb, nblk, d, nt);
}

// ---- element-wise ---------------------------------------------------------------------------------

// Element-wise maps over chunks of kChunk: f32 tensors are read and written in place, f16/bf16 go
// through f32 stack chunks. Outputs may be their first input (ivdep: equal or disjoint, element-wise).
template <class F>
void map1(const void* x, void* y, int32_t dt, int64_t numel, F f) {  // y = f(x)
    const int64_t nchunks = (numel + kChunk - 1) / kChunk;
#pragma omp parallel for num_threads(threads_for(numel)) schedule(static)
    for (int64_t c = 0; c < nchunks; ++c) {
        float xb[kChunk];
        const int64_t off = c * kChunk, len = numel - off < kChunk ? numel - off : kChunk;
        const float* xp = src_row(x, dt, off, len, xb);
        float* yp = dst_row(y, dt, off, xb);
#pragma GCC ivdep
        for (int64_t i = 0; i < len; ++i) yp[i] = f(xp[i]);
        finish_row(yp, dt, off, len, y);
    }
}

template <class F>
void map2(const void* a, const void* b, void* y, int32_t dt, int64_t numel, F f) {  // y = f(a, b)
    const int64_t nchunks = (numel + kChunk - 1) / kChunk;
#pragma omp parallel for num_threads(threads_for(numel)) schedule(static)
    for (int64_t c = 0; c < nchunks; ++c) {
        float ab[kChunk], bb[kChunk];
        const int64_t off = c * kChunk, len = numel - off < kChunk ? numel - off : kChunk;
        const float* ap = src_row(a, dt, off, len, ab);
        const float* bp = src_row(b, dt, off, len, bb);
        float* yp = dst_row(y, dt, off, ab);
#pragma GCC ivdep
        for (int64_t i = 0; i < len; ++i) yp[i] = f(ap[i], bp[i]);
        finish_row(yp, dt, off, len, y);
    }
}

void activation(const ds_nn_act_args_t& a) {
    switch (a.act) {  // one instantiation per activation so that each vectorises
        case DS_ACT_GELU_TANH: map1(a.x, a.out, a.dtype, a.numel, [](float x) { return act_fwd(DS_ACT_GELU_TANH, x); }); break;
        case DS_ACT_GELU: map1(a.x, a.out, a.dtype, a.numel, [](float x) { return act_fwd(DS_ACT_GELU, x); }); break;
        case DS_ACT_SILU: map1(a.x, a.out, a.dtype, a.numel, [](float x) { return act_fwd(DS_ACT_SILU, x); }); break;
        default: map1(a.x, a.out, a.dtype, a.numel, [](float x) { return act_fwd(DS_ACT_RELU, x); }); break;
    }
}

void activation_backward(const ds_nn_act_args_t& a) {
    // out = dy * act'(x): map2 over (dy, x) so that out may be dy
    switch (a.act) {
        case DS_ACT_GELU_TANH:
            map2(a.dy, a.x, a.out, a.dtype, a.numel, [](float g, float x) { return g * act_grad(DS_ACT_GELU_TANH, x); });
            break;
        case DS_ACT_GELU:
            map2(a.dy, a.x, a.out, a.dtype, a.numel, [](float g, float x) { return g * act_grad(DS_ACT_GELU, x); });
            break;
        case DS_ACT_SILU:
            map2(a.dy, a.x, a.out, a.dtype, a.numel, [](float g, float x) { return g * act_grad(DS_ACT_SILU, x); });
            break;
        default:
            map2(a.dy, a.x, a.out, a.dtype, a.numel, [](float g, float x) { return x > 0.0f ? g : 0.0f; });
            break;
    }
}

void swiglu(const ds_nn_swiglu_args_t& a) {
    map2(a.gate, a.up, a.y, a.dtype, a.numel, [](float g, float u) { return g * sigmoid(g) * u; });
}

void swiglu_backward(const ds_nn_swiglu_args_t& a) {
    const int64_t nchunks = (a.numel + kChunk - 1) / kChunk;
    const int32_t dt = a.dtype;
#pragma omp parallel for num_threads(threads_for(a.numel)) schedule(static)
    for (int64_t c = 0; c < nchunks; ++c) {
        float gb[kChunk], ub[kChunk], db[kChunk];
        const int64_t off = c * kChunk, len = a.numel - off < kChunk ? a.numel - off : kChunk;
        const float* g = src_row(a.gate, dt, off, len, gb);
        const float* u = src_row(a.up, dt, off, len, ub);
        const float* dy = src_row(a.dy, dt, off, len, db);
        float* dg = dst_row(a.dgate, dt, off, gb);
        float* du = dst_row(a.dup, dt, off, ub);
#pragma GCC ivdep
        for (int64_t i = 0; i < len; ++i) {
            const float gv = g[i], uv = u[i], d = dy[i];
            const float sg = sigmoid(gv);
            dg[i] = d * uv * sg * (1.0f + gv * (1.0f - sg));
            du[i] = d * gv * sg;
        }
        finish_row(dg, dt, off, len, a.dgate);
        finish_row(du, dt, off, len, a.dup);
    }
}

void add(const ds_nn_add_args_t& a) {
    const int64_t d = a.d;
    if (a.b_rows == a.n || a.n <= 1) {  // same shapes: element-wise
        map2(a.a, a.b, a.y, a.dtype, a.n * d, [](float x, float z) { return x + z; });
        return;
    }
    if (d <= 0) return;
    Scratch bbuf(d);
    load_row(a.b, a.dtype, 0, d, bbuf.p);
    const float* b = bbuf.p;
    const int32_t dt = a.dtype;
    const int64_t cper = (d + kChunk - 1) / kChunk;  // chunks per row
    const int64_t total = a.n * cper;
#pragma omp parallel for num_threads(threads_for(total * kChunk)) schedule(static)
    for (int64_t t = 0; t < total; ++t) {
        float xb[kChunk];
        const int64_t r = t / cper, c0 = (t % cper) * kChunk, len = d - c0 < kChunk ? d - c0 : kChunk;
        const float* x = src_row(a.a, dt, r * d + c0, len, xb);
        float* y = dst_row(a.y, dt, r * d + c0, xb);
#pragma GCC ivdep
        for (int64_t i = 0; i < len; ++i) y[i] = x[i] + b[c0 + i];
        finish_row(y, dt, r * d + c0, len, a.y);
    }
}

void sum_rows(const ds_nn_add_args_t& a) {
    const int64_t n = a.n, d = a.d;
    if (n <= 0 || d <= 0) return;
    const int nt = threads_for(n * d);
    const int64_t nblk = col_blocks(n, d);
    Scratch part(nblk * d);
    ThreadScratch scratch(nt, d);
#pragma omp parallel num_threads(nt)
    {
        float* x = scratch.get(omp_get_thread_num());
#pragma omp for schedule(dynamic, 1)
        for (int64_t blk = 0; blk < nblk; ++blk) {
            float* p = part.p + blk * d;
            std::memset(p, 0, static_cast<size_t>(d) * sizeof(float));
            for (int64_t r = blk * n / nblk; r < (blk + 1) * n / nblk; ++r) {
                load_row(a.a, a.dtype, r * d, d, x);
                for (int64_t i = 0; i < d; ++i) p[i] += x[i];
            }
        }
    }
    add_partials(a.y, a.pdtype, part.p, nblk, d, nt);
}

// ---- softmax and cross-entropy --------------------------------------------------------------------

void softmax(const ds_nn_softmax_args_t& a) {
    const int64_t n = a.n, d = a.d;
    if (n <= 0 || d <= 0) return;
    const int nt = threads_for(n * d);
    const int32_t dt = a.dtype;
    ThreadScratch scratch(nt, dt == DS_DTYPE_F32 ? 0 : d);
    const float scale = a.scale;
#pragma omp parallel num_threads(nt)
    {
        float* buf = scratch.get(omp_get_thread_num());
#pragma omp for schedule(static)
        for (int64_t r = 0; r < n; ++r) {
            const float* x = src_row(a.x, dt, r * d, d, buf);
            float* y = dst_row(a.out, dt, r * d, buf);
            // max of x * scale: the max of x (scale > 0) or of -x (scale < 0), times scale
            const float m = scale >= 0.0f ? lane_max(x, d) * scale : -lane_max_neg(x, d) * scale;
            const float inv = static_cast<float>(1.0 / lane_exp_sum_to(x, y, d, scale, m));
            for (int64_t i = 0; i < d; ++i) y[i] *= inv;
            finish_row(y, dt, r * d, d, a.out);
        }
    }
}

void softmax_backward(const ds_nn_softmax_args_t& a) {
    const int64_t n = a.n, d = a.d;
    if (n <= 0 || d <= 0) return;
    const int nt = threads_for(n * d);
    const int32_t dt = a.dtype;
    const int64_t rowbuf = (d + 15) & ~int64_t{15};
    ThreadScratch scratch(nt, dt == DS_DTYPE_F32 ? 0 : 2 * rowbuf);
    const float scale = a.scale;
#pragma omp parallel num_threads(nt)
    {
        float* yb = scratch.get(omp_get_thread_num());
        float* gb = yb + rowbuf;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < n; ++r) {
            const float* y = src_row(a.x, dt, r * d, d, yb);
            const float* g = src_row(a.dy, dt, r * d, d, gb);
            float* dx = dst_row(a.out, dt, r * d, gb);  // element-wise: may be dy
            const float dot = static_cast<float>(lane_dot(y, g, d));
            for (int64_t i = 0; i < d; ++i) dx[i] = scale * y[i] * (g[i] - dot);
            finish_row(dx, dt, r * d, d, a.out);
        }
    }
}

void cross_entropy(const ds_nn_xent_args_t& a) {
    const int64_t n = a.n, v = a.v;
    if (n <= 0) return;
    const int32_t dt = a.dtype;
#pragma omp parallel for num_threads(threads_for(n * v)) schedule(static)
    for (int64_t r = 0; r < n; ++r) {
        float buf[kChunk];
        const int64_t t = load_idx(a.targets, a.idtype, r);
        const int64_t base = r * v;
        if (t == a.ignore_index || t < 0 || t >= v) {
            if (a.losses) a.losses[r] = 0.0f;
            if (a.dlogits) std::memset(static_cast<char*>(a.dlogits) + base * static_cast<int64_t>(esize(dt)), 0,
                                       static_cast<size_t>(v) * esize(dt));
            continue;
        }
        // Pass 1: running max M and sum S of exp(x - M), one chunk at a time (logits not written).
        double m = -INFINITY, s = 0.0;
        const float xt = load1(a.logits, dt, base + t);
        for (int64_t c0 = 0; c0 < v; c0 += kChunk) {
            const int64_t len = v - c0 < kChunk ? v - c0 : kChunk;
            const float* x = src_row(a.logits, dt, base + c0, len, buf);
            const float cm = lane_max(x, len);
            if (cm == -INFINITY) continue;  // every element -inf: adds nothing
            const double cs = lane_exp_sum_ro(x, len, cm);
            if (cm > m) {
                s = s * std::exp(m - cm) + cs;
                m = cm;
            } else {
                s += cs * std::exp(cm - m);
            }
        }
        if (a.losses) a.losses[r] = static_cast<float>(std::log(s) + m - xt);
        if (!a.dlogits) continue;
        // Pass 2: dlogits = (exp(x - M) / S - onehot) * dloss, element-wise (dlogits may be logits).
        const float mf = static_cast<float>(m);
        const float k = static_cast<float>(a.dloss / s);
        for (int64_t c0 = 0; c0 < v; c0 += kChunk) {
            const int64_t len = v - c0 < kChunk ? v - c0 : kChunk;
            const float* x = src_row(a.logits, dt, base + c0, len, buf);
            float* y = dst_row(a.dlogits, dt, base + c0, buf);
            for (int64_t i = 0; i < len; ++i) y[i] = vexp(x[i] - mf) * k;
            if (t >= c0 && t < c0 + len) y[t - c0] -= a.dloss;
            finish_row(y, dt, base + c0, len, a.dlogits);
        }
    }
}

// ---- rotary embedding -------------------------------------------------------------------------------

void rope(const ds_nn_rope_args_t& a) {
    const int64_t n = a.n, h = a.h, d = a.d, half = a.d / 2;
    if (n <= 0 || h <= 0 || d <= 0) return;
    const int nt = threads_for(n * h * d);
    Scratch invf(half);
    for (int64_t i = 0; i < half; ++i)
        invf.p[i] = std::pow(a.theta, -static_cast<float>(2 * i) / static_cast<float>(d));
    ThreadScratch scratch(nt, 2 * half + d);
    const float sign = a.inverse ? -1.0f : 1.0f;
#pragma omp parallel num_threads(nt)
    {
        float* cs = scratch.get(omp_get_thread_num());
        float* sn = cs + half;
        float* x = sn + half;
#pragma omp for schedule(static)
        for (int64_t t = 0; t < n; ++t) {
            const float pos = static_cast<float>(load_idx(a.positions, a.idtype, t));
            for (int64_t i = 0; i < half; ++i) {
                const float ang = pos * invf.p[i];
                float c, sv;
                ::sincosf(ang, &sv, &c);
                cs[i] = c;
                sn[i] = sign * sv;
            }
            for (int64_t hh = 0; hh < h; ++hh) {
                const int64_t off = (t * h + hh) * d;
                load_row(a.x, a.dtype, off, d, x);
                for (int64_t i = 0; i < half; ++i) {
                    const float x1 = x[i], x2 = x[i + half];
                    x[i] = x1 * cs[i] - x2 * sn[i];
                    x[i + half] = x2 * cs[i] + x1 * sn[i];
                }
                store_row(x, a.dtype, off, d, a.y);
            }
        }
    }
}

// ---- dropout ----------------------------------------------------------------------------------------

void dropout(const ds_nn_dropout_args_t& a) {
    const int64_t nchunks = (a.numel + kChunk - 1) / kChunk;
    const uint64_t key = ds_nn_mix64(a.seed);
    const float p = a.p;
    const float scale = p >= 1.0f ? 0.0f : 1.0f / (1.0f - p);
    const int32_t dt = a.dtype;
#pragma omp parallel for num_threads(threads_for(a.numel)) schedule(static)
    for (int64_t c = 0; c < nchunks; ++c) {
        float xb[kChunk];
        const int64_t off = c * kChunk, len = a.numel - off < kChunk ? a.numel - off : kChunk;
        const float* x = src_row(a.x, dt, off, len, xb);
        float* y = dst_row(a.y, dt, off, xb);
        const uint64_t c0 = a.offset + static_cast<uint64_t>(off);
#pragma GCC ivdep
        for (int64_t i = 0; i < len; ++i) {
            const uint64_t ctr = c0 + static_cast<uint64_t>(i);
            const float u = ds_nn_dropout_u(ds_nn_dropout_hash(key, ctr >> 1), ctr);
            y[i] = u >= p ? x[i] * scale : 0.0f;
        }
        finish_row(y, dt, off, len, a.y);
    }
}

}  // namespace ds::cpu::NN_ISA
