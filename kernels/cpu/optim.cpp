// CPU kernels of the optim family: the optimizer step (Adam/AdamW through the per-ISA kernels of
// optim_avx2.cpp / optim_avx512.cpp, the other kinds through portable loops that GCC vectorises),
// global norm, scale, non-finite scan and casts.
//
// Work is cut into chunks of kChunk elements (a tensor's last chunk is shorter) and the chunks of
// every tensor of a call are spread over the OpenMP team with a guided schedule, so each thread
// streams through long contiguous ranges of memory. Reductions keep one partial per chunk and add
// them in chunk order: results do not depend on the thread count.
#include <emmintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "cpu/optim.hpp"
#include "cpu/optim_elem.hpp"
#include "op/cpu.hpp"

namespace ds::cpu {

namespace optim_isa {
namespace {

// The portable kernels work in blocks of kB elements: GCC does not vectorise a loop that calls sqrt
// (under the default -fmath-errno the errno path is control flow), so each block runs its
// element-wise loops (vectorised) around one square-root pass written with SSE2, which every
// x86-64 CPU has.
constexpr int kB = 256;

inline void sqrt_block(float* x, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) _mm_storeu_ps(x + i, _mm_sqrt_ps(_mm_loadu_ps(x + i)));
    for (; i < n; ++i) x[i] = _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(x[i])));
}

// bf16 without a branch (the select vectorises).
inline uint16_t f32_to_bf16_sel(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    const uint32_t q = (u >> 16) | 0x40u;
    return static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? q : r);
}

// The lp copy of n updated params.
template <int LDT>
inline void store_lp_block(void* lp, const float* p, int n) {
    if constexpr (LDT == DS_DTYPE_BF16) {
        uint16_t* d = static_cast<uint16_t*>(lp);
        for (int i = 0; i < n; ++i) d[i] = f32_to_bf16_sel(p[i]);
    } else if constexpr (LDT == DS_DTYPE_F16) {
        uint16_t* d = static_cast<uint16_t*>(lp);
        for (int i = 0; i < n; ++i) d[i] = f32_to_f16(p[i]);
    } else {
        (void)lp;
        (void)p;
        (void)n;
    }
}

// Grads of a block as f32 times grad_scale.
template <int GDT>
inline void load_grad_block(float* out, const void* g, int n, float gs) {
    if constexpr (GDT == DS_DTYPE_F32) {
        const float* s = static_cast<const float*>(g);
        for (int i = 0; i < n; ++i) out[i] = s[i] * gs;
    } else if constexpr (GDT == DS_DTYPE_BF16) {
        const uint16_t* s = static_cast<const uint16_t*>(g);
        for (int i = 0; i < n; ++i) {
            const uint32_t u = static_cast<uint32_t>(s[i]) << 16;
            float f;
            std::memcpy(&f, &u, 4);
            out[i] = f * gs;
        }
    } else {
        const uint16_t* s = static_cast<const uint16_t*>(g);
        for (int i = 0; i < n; ++i) out[i] = f16_to_f32(s[i]) * gs;
    }
}

template <class T>
T* offset(T* p, int64_t i, size_t esize) {
    using B = std::conditional_t<std::is_const_v<T>, const char, char>;
    return p ? reinterpret_cast<T*>(reinterpret_cast<B*>(p) + static_cast<size_t>(i) * esize) : nullptr;
}

constexpr size_t grad_bytes(int gdt) { return gdt == DS_DTYPE_F32 ? 4 : 2; }

template <int GDT, int LDT, bool ADAMW>
struct AdamScalar {
    static void run(const AdamConst& c, float* p, const void* g, float* m, float* v, void* lp, int64_t n) {
        alignas(64) float gb[kB], den[kB];
        for (int64_t b = 0; b < n; b += kB) {
            const int len = static_cast<int>(std::min<int64_t>(kB, n - b));
            float* pb = p + b;
            float* mb = m + b;
            float* vb = v + b;
            load_grad_block<GDT>(gb, offset(g, b, grad_bytes(GDT)), len, c.grad_scale);
            for (int i = 0; i < len; ++i) {
                float gi = gb[i];
                if constexpr (!ADAMW) gi += c.l2 * pb[i];
                mb[i] = c.beta1 * mb[i] + c.one_minus_beta1 * gi;
                const float vi = c.beta2 * vb[i] + (c.one_minus_beta2 * gi) * gi;
                vb[i] = vi;
                den[i] = vi;
            }
            sqrt_block(den, len);
            for (int i = 0; i < len; ++i) {
                float pi = pb[i];
                if constexpr (ADAMW) pi *= c.decay;
                pb[i] = pi - c.step_size * (mb[i] / (den[i] * c.inv_sqrt_bc2 + c.eps));
            }
            store_lp_block<LDT>(offset(lp, b, 2), pb, len);
        }
    }
};

}  // namespace

AdamFn adam_scalar(int32_t gdt, int32_t ldt, bool adamw) { return pick_adam<AdamScalar>(gdt, ldt, adamw); }
bool nonfinite_scalar(const void* x, int32_t dt, int64_t n, float scale) { return nonfinite_any(x, dt, n, scale); }
double sumsq_scalar(const void* x, int32_t dt, int64_t n) { return sumsq_any(x, dt, n); }

}  // namespace optim_isa

namespace {

using namespace optim_isa;

constexpr int64_t kChunk = int64_t{1} << 15;

struct Chunk {
    int32_t t;      // tensor index
    int64_t begin;  // first element
    int64_t len;
};

template <class NumelOf>
std::vector<Chunk> chunks_of(int32_t n, NumelOf numel, int64_t* total) {
    std::vector<Chunk> cs;
    int64_t sum = 0;
    for (int32_t t = 0; t < n; ++t) {
        const int64_t ne = numel(t);
        sum += ne;
        for (int64_t b = 0; b < ne; b += kChunk) cs.push_back({t, b, std::min(kChunk, ne - b)});
    }
    *total = sum;
    return cs;
}

// Threads for `total` elements: one below two chunks (the fork costs more than the work).
int team(int64_t total) { return total < 2 * kChunk ? 1 : std::max(1, ds::op::threads()); }

// Guided schedule: threads start on large contiguous runs of chunks (streaming) and the last,
// smaller pieces go to whichever thread is free, so a core slowed down by other work on the machine
// does not hold the whole step back.
template <class Body>
void for_chunks(const std::vector<Chunk>& cs, int nt, Body&& body) {
    const int64_t nc = static_cast<int64_t>(cs.size());
#pragma omp parallel for schedule(guided) num_threads(nt)
    for (int64_t c = 0; c < nc; ++c) body(cs[static_cast<size_t>(c)], c);
}

size_t dtype_bytes(int32_t dt) {
    switch (dt) {
        case DS_DTYPE_F64: return 8;
        case DS_DTYPE_F32: return 4;
        case DS_DTYPE_F16:
        case DS_DTYPE_BF16: return 2;
        case DS_DTYPE_FP8_E4M3:
        case DS_DTYPE_FP8_E5M2: return 1;
        default: return 4;
    }
}

template <class T>
T* at(T* p, int64_t i, size_t esize) {
    using B = std::conditional_t<std::is_const_v<T>, const char, char>;
    return p ? reinterpret_cast<T*>(reinterpret_cast<B*>(p) + static_cast<size_t>(i) * esize) : nullptr;
}

template <int V>
using IC = std::integral_constant<int, V>;

// Call f(IC<grad dtype>, IC<lp dtype or -1>).
template <class F>
void dispatch_types(int32_t gdt, int32_t ldt, F&& f) {
    auto with_g = [&](auto G) {
        switch (ldt) {
            case DS_DTYPE_F16: f(G, IC<DS_DTYPE_F16>{}); break;
            case DS_DTYPE_BF16: f(G, IC<DS_DTYPE_BF16>{}); break;
            default: f(G, IC<-1>{}); break;
        }
    };
    switch (gdt) {
        case DS_DTYPE_F16: with_g(IC<DS_DTYPE_F16>{}); break;
        case DS_DTYPE_BF16: with_g(IC<DS_DTYPE_BF16>{}); break;
        default: with_g(IC<DS_DTYPE_F32>{}); break;
    }
}

AdamFn adam_fn(int32_t gdt, int32_t ldt, bool adamw) {
    const int32_t isa = ds::op::cpu_isa();
    AdamFn f = nullptr;
    if (isa >= DS_CPU_ISA_AVX512) f = adam_avx512(gdt, ldt, adamw);
    if (!f && isa >= DS_CPU_ISA_AVX2) f = adam_avx2(gdt, ldt, adamw);
    return f ? f : adam_scalar(gdt, ldt, adamw);
}

NonfiniteFn nonfinite_fn() {
    const int32_t isa = ds::op::cpu_isa();
    if (isa >= DS_CPU_ISA_AVX512) return nonfinite_avx512;
    if (isa >= DS_CPU_ISA_AVX2) return nonfinite_avx2;
    return nonfinite_scalar;
}

SumsqFn sumsq_fn() {
    const int32_t isa = ds::op::cpu_isa();
    if (isa >= DS_CPU_ISA_AVX512) return sumsq_avx512;
    if (isa >= DS_CPU_ISA_AVX2) return sumsq_avx2;
    return sumsq_scalar;
}

double bias_correction(int32_t on, float beta, int64_t step) {
    return on ? 1.0 - std::pow(static_cast<double>(beta), static_cast<double>(step)) : 1.0;
}

// ---- Adam / AdamW -----------------------------------------------------------------------------

void adam_step(const ds_optim_step_args_t& a, const std::vector<Chunk>& cs, int nt) {
    const bool adamw = a.kind == DS_OPTIM_ADAMW;
    const double bc1 = bias_correction(a.bias_correction, a.beta1, a.step);
    const double bc2 = bias_correction(a.bias_correction, a.beta2, a.step);
    AdamConst c;
    c.beta1 = a.beta1;
    c.beta2 = a.beta2;
    c.one_minus_beta1 = 1.0f - a.beta1;
    c.one_minus_beta2 = 1.0f - a.beta2;
    c.eps = a.eps;
    c.step_size = static_cast<float>(static_cast<double>(a.lr) / bc1);
    c.inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
    c.l2 = adamw ? 0.0f : a.weight_decay;
    c.decay = adamw ? static_cast<float>(1.0 - static_cast<double>(a.lr) * a.weight_decay) : 1.0f;
    c.grad_scale = a.grad_scale;
    const AdamFn fn = adam_fn(a.grad_dtype, a.lp_dtype, adamw);
    const size_t ges = dtype_bytes(a.grad_dtype);
    for_chunks(cs, nt, [&](const Chunk& ch, int64_t) {
        const ds_optim_tensor_args_t& t = a.tensors[ch.t];
        fn(c, t.param + ch.begin, at(t.grad, ch.begin, ges), t.state1 + ch.begin, t.state2 + ch.begin,
           at(t.param_lp, ch.begin, 2), ch.len);
    });
}

// ---- LAMB (DeepSpeed FusedLamb) ---------------------------------------------------------------
// Phase 1 updates m and v and sums ||p||^2 and ||u||^2 per chunk, u = m / (sqrt(v) + eps) + wd * p
// (m, v not bias-corrected); the per-tensor trust ratio r = ||p|| / ||u|| (1 when either is 0) is
// clamped to [min_coeff, max_coeff]; phase 2 recomputes u from the new m, v and applies
// p -= step_size * r * u with step_size = lr * sqrt(bc2) / bc1 (lr without bias correction).

template <int GDT>
void lamb_phase1(const ds_optim_step_args_t& a, const ds_optim_tensor_args_t& t, int64_t b0, int64_t n, double* wsq,
                 double* usq) {
    const float b1 = a.beta1, b2 = a.beta2, ob1 = 1.0f - a.beta1, ob2 = 1.0f - a.beta2, eps = a.eps,
                wd = a.weight_decay, gs = a.grad_scale;
    alignas(64) float gb[kB], den[kB];
    double sw = 0.0, su = 0.0;
    for (int64_t b = b0; b < b0 + n; b += kB) {
        const int len = static_cast<int>(std::min<int64_t>(kB, b0 + n - b));
        const float* p = t.param + b;
        float* m = t.state1 + b;
        float* v = t.state2 + b;
        load_grad_block<GDT>(gb, at(t.grad, b, dtype_bytes(GDT)), len, gs);
        for (int i = 0; i < len; ++i) {
            const float gi = gb[i];
            m[i] = b1 * m[i] + ob1 * gi;
            const float vi = b2 * v[i] + (ob2 * gi) * gi;
            v[i] = vi;
            den[i] = vi;
        }
        sqrt_block(den, len);
#pragma omp simd reduction(+ : sw, su)
        for (int i = 0; i < len; ++i) {
            const float u = m[i] / (den[i] + eps) + wd * p[i];
            sw += static_cast<double>(p[i]) * p[i];
            su += static_cast<double>(u) * u;
        }
    }
    *wsq = sw;
    *usq = su;
}

template <int LDT>
void lamb_phase2(const ds_optim_step_args_t& a, const ds_optim_tensor_args_t& t, int64_t b0, int64_t n, float scale) {
    const float eps = a.eps, wd = a.weight_decay;
    alignas(64) float den[kB];
    for (int64_t b = b0; b < b0 + n; b += kB) {
        const int len = static_cast<int>(std::min<int64_t>(kB, b0 + n - b));
        float* p = t.param + b;
        const float* m = t.state1 + b;
        const float* v = t.state2 + b;
        std::memcpy(den, v, sizeof(float) * static_cast<size_t>(len));
        sqrt_block(den, len);
        for (int i = 0; i < len; ++i) {
            const float u = m[i] / (den[i] + eps) + wd * p[i];
            p[i] = p[i] - scale * u;
        }
        store_lp_block<LDT>(at(t.param_lp, b, 2), p, len);
    }
}

void lamb_step(const ds_optim_step_args_t& a, const std::vector<Chunk>& cs, int nt) {
    std::vector<double> wsq(cs.size()), usq(cs.size());
    dispatch_types(a.grad_dtype, -1, [&](auto G, auto) {
        for_chunks(cs, nt, [&](const Chunk& ch, int64_t c) {
            lamb_phase1<decltype(G)::value>(a, a.tensors[ch.t], ch.begin, ch.len, &wsq[static_cast<size_t>(c)],
                                            &usq[static_cast<size_t>(c)]);
        });
    });
    const double bc1 = bias_correction(a.bias_correction, a.beta1, a.step);
    const double bc2 = bias_correction(a.bias_correction, a.beta2, a.step);
    const double step_size = static_cast<double>(a.lr) * std::sqrt(bc2) / bc1;
    std::vector<float> scale(static_cast<size_t>(a.n_tensors), 0.0f);
    std::vector<double> tw(static_cast<size_t>(a.n_tensors), 0.0), tu(static_cast<size_t>(a.n_tensors), 0.0);
    for (size_t c = 0; c < cs.size(); ++c) {
        tw[static_cast<size_t>(cs[c].t)] += wsq[c];
        tu[static_cast<size_t>(cs[c].t)] += usq[c];
    }
    for (int32_t t = 0; t < a.n_tensors; ++t) {
        const double w = std::sqrt(tw[static_cast<size_t>(t)]), u = std::sqrt(tu[static_cast<size_t>(t)]);
        double r = 1.0;
        if (w != 0.0 && u != 0.0) r = std::min<double>(std::max<double>(w / u, a.min_coeff), a.max_coeff);
        scale[static_cast<size_t>(t)] = static_cast<float>(step_size * r);
    }
    dispatch_types(DS_DTYPE_F32, a.lp_dtype, [&](auto, auto L) {
        for_chunks(cs, nt, [&](const Chunk& ch, int64_t) {
            lamb_phase2<decltype(L)::value>(a, a.tensors[ch.t], ch.begin, ch.len, scale[static_cast<size_t>(ch.t)]);
        });
    });
}

// ---- Lion ---------------------------------------------------------------------------------------

template <int GDT, int LDT>
void lion_run(const ds_optim_step_args_t& a, const ds_optim_tensor_args_t& t, int64_t b0, int64_t n) {
    const float b1 = a.beta1, b2 = a.beta2, ob1 = 1.0f - a.beta1, ob2 = 1.0f - a.beta2, lr = a.lr, gs = a.grad_scale;
    const float decay = static_cast<float>(1.0 - static_cast<double>(a.lr) * a.weight_decay);
    alignas(64) float gb[kB];
    for (int64_t b = b0; b < b0 + n; b += kB) {
        const int len = static_cast<int>(std::min<int64_t>(kB, b0 + n - b));
        float* p = t.param + b;
        float* m = t.state1 + b;
        load_grad_block<GDT>(gb, at(t.grad, b, dtype_bytes(GDT)), len, gs);
        for (int i = 0; i < len; ++i) {
            const float gi = gb[i];
            const float c = b1 * m[i] + ob1 * gi;
            float s = c > 0.0f ? 1.0f : c;  // sign; 0 and nan stay
            s = c < 0.0f ? -1.0f : s;
            p[i] = p[i] * decay - lr * s;
            m[i] = b2 * m[i] + ob2 * gi;
        }
        store_lp_block<LDT>(at(t.param_lp, b, 2), p, len);
    }
}

// ---- SGD (torch.optim.SGD) ----------------------------------------------------------------------

template <int GDT, int LDT>
void sgd_run(const ds_optim_step_args_t& a, const ds_optim_tensor_args_t& t, int64_t b0, int64_t n) {
    const float lr = a.lr, wd = a.weight_decay, mom = a.momentum, damp = 1.0f - a.dampening, gs = a.grad_scale;
    const bool first = a.step == 1, nesterov = a.nesterov != 0, use_buf = mom != 0.0f && t.state1;
    alignas(64) float gb[kB];
    for (int64_t b = b0; b < b0 + n; b += kB) {
        const int len = static_cast<int>(std::min<int64_t>(kB, b0 + n - b));
        float* p = t.param + b;
        load_grad_block<GDT>(gb, at(t.grad, b, dtype_bytes(GDT)), len, gs);
        if (!use_buf) {
            for (int i = 0; i < len; ++i) p[i] -= lr * (gb[i] + wd * p[i]);
        } else {
            float* buf = t.state1 + b;
            if (first) {
                for (int i = 0; i < len; ++i) {
                    const float gi = gb[i] + wd * p[i];
                    buf[i] = gi;
                    p[i] -= lr * (nesterov ? gi + mom * gi : gi);
                }
            } else {
                for (int i = 0; i < len; ++i) {
                    const float gi = gb[i] + wd * p[i];
                    const float bi = mom * buf[i] + damp * gi;
                    buf[i] = bi;
                    p[i] -= lr * (nesterov ? gi + mom * bi : bi);
                }
            }
        }
        store_lp_block<LDT>(at(t.param_lp, b, 2), p, len);
    }
}

// ---- Adagrad (torch.optim.Adagrad) --------------------------------------------------------------

template <int GDT, int LDT>
void adagrad_run(const ds_optim_step_args_t& a, const ds_optim_tensor_args_t& t, int64_t b0, int64_t n) {
    const float wd = a.weight_decay, eps = a.eps, gs = a.grad_scale;
    const float clr = static_cast<float>(static_cast<double>(a.lr) /
                                         (1.0 + static_cast<double>(a.step - 1) * a.lr_decay));
    alignas(64) float gb[kB], den[kB];
    for (int64_t b = b0; b < b0 + n; b += kB) {
        const int len = static_cast<int>(std::min<int64_t>(kB, b0 + n - b));
        float* p = t.param + b;
        float* sum = t.state1 + b;
        load_grad_block<GDT>(gb, at(t.grad, b, dtype_bytes(GDT)), len, gs);
        for (int i = 0; i < len; ++i) {
            const float gi = gb[i] + wd * p[i];
            gb[i] = gi;
            const float s = sum[i] + gi * gi;
            sum[i] = s;
            den[i] = s;
        }
        sqrt_block(den, len);
        for (int i = 0; i < len; ++i) p[i] -= clr * (gb[i] / (den[i] + eps));
        store_lp_block<LDT>(at(t.param_lp, b, 2), p, len);
    }
}

template <class Run>
void elementwise_step(const ds_optim_step_args_t& a, const std::vector<Chunk>& cs, int nt, Run run) {
    dispatch_types(a.grad_dtype, a.lp_dtype, [&](auto G, auto L) {
        for_chunks(cs, nt, [&](const Chunk& ch, int64_t) {
            run(G, L, a.tensors[ch.t], ch.begin, ch.len);
        });
    });
}

}  // namespace

void optim_step(const ds_optim_step_args_t& a) {
    if (a.skipped) *a.skipped = 0;
    int64_t total = 0;
    const std::vector<Chunk> cs = chunks_of(a.n_tensors, [&](int32_t t) { return a.tensors[t].numel; }, &total);
    if (cs.empty()) return;
    const int nt = team(total);
    if (a.check_finite) {
        const NonfiniteFn nf = nonfinite_fn();
        const size_t ges = dtype_bytes(a.grad_dtype);
        std::atomic<int> found{0};
        for_chunks(cs, nt, [&](const Chunk& ch, int64_t) {
            if (found.load(std::memory_order_relaxed)) return;
            if (nf(at(a.tensors[ch.t].grad, ch.begin, ges), a.grad_dtype, ch.len, a.grad_scale))
                found.store(1, std::memory_order_relaxed);
        });
        if (found.load()) {
            if (a.skipped) *a.skipped = 1;
            return;
        }
    }
    switch (a.kind) {
        case DS_OPTIM_ADAM:
        case DS_OPTIM_ADAMW: adam_step(a, cs, nt); break;
        case DS_OPTIM_LAMB: lamb_step(a, cs, nt); break;
        case DS_OPTIM_LION:
            elementwise_step(a, cs, nt, [&](auto G, auto L, const ds_optim_tensor_args_t& t, int64_t b, int64_t n) {
                lion_run<decltype(G)::value, decltype(L)::value>(a, t, b, n);
            });
            break;
        case DS_OPTIM_SGD:
            elementwise_step(a, cs, nt, [&](auto G, auto L, const ds_optim_tensor_args_t& t, int64_t b, int64_t n) {
                sgd_run<decltype(G)::value, decltype(L)::value>(a, t, b, n);
            });
            break;
        case DS_OPTIM_ADAGRAD:
            elementwise_step(a, cs, nt, [&](auto G, auto L, const ds_optim_tensor_args_t& t, int64_t b, int64_t n) {
                adagrad_run<decltype(G)::value, decltype(L)::value>(a, t, b, n);
            });
            break;
        default: break;  // the C API rejects unknown kinds
    }
}

// ---- list ops -----------------------------------------------------------------------------------

namespace {

std::vector<Chunk> list_chunks(const ds_optim_list_args_t& a, int* nt) {
    int64_t total = 0;
    std::vector<Chunk> cs = chunks_of(a.n_tensors, [&](int32_t t) { return a.tensors[t].numel; }, &total);
    *nt = team(total);
    return cs;
}

const void* chunk_ptr(const ds_optim_buf_t& b, const Chunk& ch) { return at(static_cast<const void*>(b.data), ch.begin, dtype_bytes(b.dtype)); }
void* chunk_ptr_mut(const ds_optim_buf_t& b, const Chunk& ch) { return at(b.data, ch.begin, dtype_bytes(b.dtype)); }

}  // namespace

void optim_global_norm(const ds_optim_list_args_t& a) {
    int nt = 1;
    const std::vector<Chunk> cs = list_chunks(a, &nt);
    std::vector<double> part(cs.size(), 0.0);
    const SumsqFn sq = sumsq_fn();
    for_chunks(cs, nt, [&](const Chunk& ch, int64_t c) {
        const ds_optim_buf_t& b = a.tensors[ch.t];
        const void* x = chunk_ptr(b, ch);
        double s = 0.0;
        if (b.dtype == DS_DTYPE_F64) {
            const double* d = static_cast<const double*>(x);
#pragma omp simd reduction(+ : s)
            for (int64_t i = 0; i < ch.len; ++i) s += d[i] * d[i];
        } else {
            s = sq(x, b.dtype, ch.len);
        }
        part[static_cast<size_t>(c)] = s;
    });
    double sum = 0.0;
    for (double s : part) sum += s;
    *a.out = std::sqrt(sum);
}

void optim_scale(const ds_optim_list_args_t& a) {
    int nt = 1;
    const std::vector<Chunk> cs = list_chunks(a, &nt);
    const double alpha = a.alpha;
    for_chunks(cs, nt, [&](const Chunk& ch, int64_t) {
        const ds_optim_buf_t& b = a.tensors[ch.t];
        void* x = chunk_ptr_mut(b, ch);
        const int64_t n = ch.len;
        switch (b.dtype) {
            case DS_DTYPE_F32: {
                float* f = static_cast<float*>(x);
                for (int64_t i = 0; i < n; ++i) f[i] = static_cast<float>(static_cast<double>(f[i]) * alpha);
                break;
            }
            case DS_DTYPE_F64: {
                double* d = static_cast<double*>(x);
                for (int64_t i = 0; i < n; ++i) d[i] *= alpha;
                break;
            }
            case DS_DTYPE_F16: {
                uint16_t* h = static_cast<uint16_t*>(x);
                for (int64_t i = 0; i < n; ++i) h[i] = dsoptim::f64_to_f16(dsoptim::f16_to_f64(h[i]) * alpha);
                break;
            }
            case DS_DTYPE_BF16: {
                uint16_t* h = static_cast<uint16_t*>(x);
                for (int64_t i = 0; i < n; ++i) h[i] = dsoptim::f64_to_bf16(static_cast<double>(bf16_to_f32(h[i])) * alpha);
                break;
            }
            default: break;
        }
    });
}

void optim_find_nonfinite(const ds_optim_list_args_t& a) {
    int nt = 1;
    const std::vector<Chunk> cs = list_chunks(a, &nt);
    const NonfiniteFn nf = nonfinite_fn();
    std::atomic<int> found{0};
    for_chunks(cs, nt, [&](const Chunk& ch, int64_t) {
        if (found.load(std::memory_order_relaxed)) return;
        const ds_optim_buf_t& b = a.tensors[ch.t];
        const void* x = chunk_ptr(b, ch);
        bool bad = false;
        if (b.dtype == DS_DTYPE_F64) {
            const uint64_t* u = static_cast<const uint64_t*>(x);
            uint64_t any = 0;
            for (int64_t i = 0; i < ch.len; ++i) any |= static_cast<uint64_t>((u[i] & 0x7ff0000000000000ull) == 0x7ff0000000000000ull);
            bad = any != 0;
        } else {
            bad = nf(x, b.dtype, ch.len, 1.0f);
        }
        if (bad) found.store(1, std::memory_order_relaxed);
    });
    *a.flag = found.load();
}

// ---- cast -------------------------------------------------------------------------------------

namespace {

template <class S, class D>
void cast_run(const void* src, void* dst, int64_t n, double scale) {
    using SE = dsoptim::Elem<S>;
    using DE = dsoptim::Elem<D>;
    const typename SE::S* s = static_cast<const typename SE::S*>(src);
    typename DE::S* d = static_cast<typename DE::S*>(dst);
    if (scale == 1.0) {
        for (int64_t i = 0; i < n; ++i) d[i] = DE::put(SE::get(s[i]));
    } else {
        for (int64_t i = 0; i < n; ++i) d[i] = DE::put(SE::get(s[i]) * scale);
    }
}

using CastFn = void (*)(const void*, void*, int64_t, double);

template <class S>
CastFn cast_to(int32_t dst) {
    switch (dst) {
        case DS_DTYPE_F32: return &cast_run<S, float>;
        case DS_DTYPE_F64: return &cast_run<S, double>;
        case DS_DTYPE_F16: return &cast_run<S, dsoptim::F16>;
        case DS_DTYPE_BF16: return &cast_run<S, dsoptim::BF16>;
        case DS_DTYPE_FP8_E4M3: return &cast_run<S, dsoptim::E4M3>;
        case DS_DTYPE_FP8_E5M2: return &cast_run<S, dsoptim::E5M2>;
        default: return nullptr;
    }
}

CastFn cast_fn(int32_t src, int32_t dst) {
    switch (src) {
        case DS_DTYPE_F32: return cast_to<float>(dst);
        case DS_DTYPE_F64: return cast_to<double>(dst);
        case DS_DTYPE_F16: return cast_to<dsoptim::F16>(dst);
        case DS_DTYPE_BF16: return cast_to<dsoptim::BF16>(dst);
        case DS_DTYPE_FP8_E4M3: return cast_to<dsoptim::E4M3>(dst);
        case DS_DTYPE_FP8_E5M2: return cast_to<dsoptim::E5M2>(dst);
        default: return nullptr;
    }
}

}  // namespace

void optim_cast(const ds_optim_cast_args_t& a) {
    const CastFn fn = cast_fn(a.src_dtype, a.dst_dtype);
    if (!fn || a.numel <= 0) return;
    int64_t total = 0;
    const std::vector<Chunk> cs = chunks_of(1, [&](int32_t) { return a.numel; }, &total);
    const size_t ses = dtype_bytes(a.src_dtype), des = dtype_bytes(a.dst_dtype);
    const double scale = static_cast<double>(a.scale);
    for_chunks(cs, team(total), [&](const Chunk& ch, int64_t) {
        fn(at(a.src, ch.begin, ses), at(a.dst, ch.begin, des), ch.len, scale);
    });
}

}  // namespace ds::cpu
