// CUDA optimizer step (DS_KOP_OPTIM_STEP): Adam, AdamW, LAMB, Lion, SGD and Adagrad over many tensors
// per launch (see ops_optim_common.cuh for the table scheme), with the grad conversion (f32, f16,
// bf16), the grad scale and the f16/bf16 copy of the updated params fused in the same pass.
//
// Each block owns one chunk of kChunk elements of one tensor. When every pointer of the tensor is
// aligned (16 bytes for f32 buffers, 8 bytes for 16-bit ones), threads move 4 elements per access
// (float4 / 4 x 16-bit) and keep two such groups in flight; otherwise they fall back to scalar
// accesses. The formulas are those of the CPU kernels (kernels/cpu/optim*.cpp).
//
// check_finite: a pre-pass kernel over the grads sets a device flag when g * grad_scale is inf or
// nan; the step kernels read the flag first and return at once when it is set, so the step stays
// asynchronous. Reading the flag into *skipped (when the caller asks for it) synchronises once.
//
// LAMB runs in two launches per table: phase 1 updates m, v and adds ||p||^2, ||u||^2 of each tensor
// into f64 accumulators (per-block f32 sums, f64 atomics); phase 2 recomputes u from the new m, v,
// forms the clamped trust ratio and applies the update. No [numel] temporary.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "ops_optim_common.cuh"

namespace dscuda {
namespace optim {
namespace {

constexpr int kMaxT = 320;  // tensors per launch: 320 * 64 bytes of table

struct StepTensor {
    float* p;
    const void* g;
    float* s1;
    float* s2;
    void* lp;
    int64_t n;
    int64_t chunk0;  // first global chunk of this tensor in its launch
    int32_t vec;     // every pointer aligned for 4-element accesses
    int32_t index;   // position in the call (LAMB accumulators)
};
static_assert(sizeof(StepTensor) == 64, "StepTensor layout");

struct StepTable {
    int32_t count;
    int32_t pad;
    StepTensor t[kMaxT];
};

struct Hyper {
    float lr, b1, b2, ob1, ob2, eps, wd, gs;
    float step_size;     // Adam/AdamW: lr / bc1; LAMB: lr * sqrt(bc2) / bc1 (or lr)
    float inv_sqrt_bc2;  // Adam/AdamW
    float decay;         // AdamW, Lion: 1 - lr * wd
    float l2;            // Adam: wd added to the grad
    float mom, damp;     // SGD (damp = 1 - dampening)
    float clr;           // Adagrad
    float max_coeff, min_coeff;
    int32_t first;       // SGD: step == 1
    int32_t nesterov;
    const int* skip;     // check_finite flag (nullptr: none)
    double* norms;       // LAMB: [2 * n_tensors] sums of squares
};

// ---- element access ------------------------------------------------------------------------------

template <int GDT>
__device__ __forceinline__ float load_g1(const void* g, int64_t i) {
    if constexpr (GDT == DS_OPTIM_DT_F32) {
        return static_cast<const float*>(g)[i];
    } else if constexpr (GDT == DS_OPTIM_DT_BF16) {
        return __uint_as_float(static_cast<uint32_t>(static_cast<const uint16_t*>(g)[i]) << 16);
    } else {
        return __half2float(__ushort_as_half(static_cast<const uint16_t*>(g)[i]));
    }
}

__device__ __forceinline__ float u16_to_f(uint32_t h, int gdt) {
    return gdt == DS_OPTIM_DT_BF16 ? __uint_as_float(h << 16) : __half2float(__ushort_as_half(static_cast<unsigned short>(h)));
}

// Four grads starting at element 4*i (vector path).
template <int GDT>
__device__ __forceinline__ float4 load_g4(const void* g, int64_t i) {
    if constexpr (GDT == DS_OPTIM_DT_F32) {
        return __ldg(static_cast<const float4*>(g) + i);
    } else {
        const uint2 w = __ldg(static_cast<const uint2*>(g) + i);
        return make_float4(u16_to_f(w.x & 0xffffu, GDT), u16_to_f(w.x >> 16, GDT), u16_to_f(w.y & 0xffffu, GDT),
                           u16_to_f(w.y >> 16, GDT));
    }
}

// f32 -> bf16, round to nearest even, nan kept (as the CPU kernels do).
__device__ __forceinline__ uint32_t f_to_bf16(float f) {
    const uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

template <int LDT>
__device__ __forceinline__ uint32_t to_lp(float f) {
    if constexpr (LDT == DS_OPTIM_DT_BF16) return f_to_bf16(f);
    else return __half_as_ushort(__float2half_rn(f));
}

template <int LDT>
__device__ __forceinline__ void store_lp1(void* lp, int64_t i, float f) {
    if constexpr (LDT >= 0) static_cast<uint16_t*>(lp)[i] = static_cast<uint16_t>(to_lp<LDT>(f));
}

template <int LDT>
__device__ __forceinline__ void store_lp4(void* lp, int64_t i, float4 p) {
    if constexpr (LDT >= 0) {
        uint2 w;
        w.x = to_lp<LDT>(p.x) | (to_lp<LDT>(p.y) << 16);
        w.y = to_lp<LDT>(p.z) | (to_lp<LDT>(p.w) << 16);
        static_cast<uint2*>(lp)[i] = w;
    }
}

// ---- one element of each optimizer -------------------------------------------------------------

template <int KIND>
__device__ __forceinline__ void update(const Hyper& h, float& p, float g, float& s1, float& s2, bool has_s1) {
    g *= h.gs;
    if constexpr (KIND == DS_OPTIM_K_ADAM || KIND == DS_OPTIM_K_ADAMW) {
        if constexpr (KIND == DS_OPTIM_K_ADAM) g = fmaf(h.l2, p, g);
        s1 = fmaf(h.b1, s1, h.ob1 * g);
        s2 = fmaf(h.b2, s2, (h.ob2 * g) * g);
        const float den = fmaf(sqrtf(s2), h.inv_sqrt_bc2, h.eps);
        if constexpr (KIND == DS_OPTIM_K_ADAMW) p *= h.decay;
        p = fmaf(-h.step_size, __fdiv_rn(s1, den), p);
    } else if constexpr (KIND == DS_OPTIM_K_LION) {
        const float c = fmaf(h.b1, s1, h.ob1 * g);
        float s = c > 0.0f ? 1.0f : c;
        s = c < 0.0f ? -1.0f : s;
        p = fmaf(-h.lr, s, p * h.decay);
        s1 = fmaf(h.b2, s1, h.ob2 * g);
    } else if constexpr (KIND == DS_OPTIM_K_SGD) {
        g = fmaf(h.wd, p, g);
        if (has_s1) {
            const float b = h.first ? g : fmaf(h.mom, s1, h.damp * g);
            s1 = b;
            g = h.nesterov ? fmaf(h.mom, b, g) : b;
        }
        p = fmaf(-h.lr, g, p);
    } else if constexpr (KIND == DS_OPTIM_K_ADAGRAD) {
        g = fmaf(h.wd, p, g);
        s1 = fmaf(g, g, s1);
        p = fmaf(-h.clr, __fdiv_rn(g, sqrtf(s1) + h.eps), p);
    }
    (void)s2;
    (void)has_s1;
}

__host__ __device__ constexpr bool has_state2(int kind) { return kind == DS_OPTIM_K_ADAM || kind == DS_OPTIM_K_ADAMW || kind == DS_OPTIM_K_LAMB; }

// ---- step kernel (every kind but LAMB) ---------------------------------------------------------------

// U: 16-byte vectors of each array a thread has in flight per loop trip.
template <int KIND, int GDT, int LDT, int U>
__global__ void __launch_bounds__(kThreads) step_kernel(const __grid_constant__ StepTable tab, const Hyper h) {
    if (h.skip && *h.skip) return;
    const int64_t b = blockIdx.x;
    const StepTensor& T = tab.t[find_entry(tab, b)];
    const int64_t start = (b - T.chunk0) * kChunk;
    const int len = static_cast<int>(min(kChunk, T.n - start));  // <= kChunk: 32-bit indices below
    const bool s1on = T.s1 != nullptr;
    constexpr bool S2 = has_state2(KIND);
    float* __restrict__ p = T.p + start;
    float* __restrict__ s1 = s1on ? T.s1 + start : nullptr;
    float* __restrict__ s2 = S2 ? T.s2 + start : nullptr;
    const char* gb = static_cast<const char*>(T.g) + start * (GDT == DS_OPTIM_DT_F32 ? 4 : 2);
    char* lpb = LDT >= 0 ? static_cast<char*>(T.lp) + start * 2 : nullptr;
    int done = 0;
    if (T.vec) {
        const int nv = len >> 2;
        for (int i0 = threadIdx.x; i0 < nv; i0 += U * kThreads) {
            float4 P[U], G[U], M[U], V[U];
            bool ok[U];
#pragma unroll
            for (int u = 0; u < U; ++u) {
                const int i = i0 + u * kThreads;
                ok[u] = i < nv;
                if (ok[u]) {
                    P[u] = reinterpret_cast<float4*>(p)[i];
                    G[u] = load_g4<GDT>(gb, i);
                    M[u] = s1on ? reinterpret_cast<float4*>(s1)[i] : make_float4(0.f, 0.f, 0.f, 0.f);
                    V[u] = S2 ? reinterpret_cast<float4*>(s2)[i] : make_float4(0.f, 0.f, 0.f, 0.f);
                }
            }
#pragma unroll
            for (int u = 0; u < U; ++u) {
                if (!ok[u]) continue;
                const int i = i0 + u * kThreads;
                update<KIND>(h, P[u].x, G[u].x, M[u].x, V[u].x, s1on);
                update<KIND>(h, P[u].y, G[u].y, M[u].y, V[u].y, s1on);
                update<KIND>(h, P[u].z, G[u].z, M[u].z, V[u].z, s1on);
                update<KIND>(h, P[u].w, G[u].w, M[u].w, V[u].w, s1on);
                reinterpret_cast<float4*>(p)[i] = P[u];
                if (s1on) reinterpret_cast<float4*>(s1)[i] = M[u];
                if constexpr (S2) reinterpret_cast<float4*>(s2)[i] = V[u];
                store_lp4<LDT>(lpb, i, P[u]);
            }
        }
        done = nv << 2;
    }
    for (int i = done + static_cast<int>(threadIdx.x); i < len; i += kThreads) {
        float pp = p[i], m = s1on ? s1[i] : 0.0f, v = S2 ? s2[i] : 0.0f;
        update<KIND>(h, pp, load_g1<GDT>(gb, i), m, v, s1on);
        p[i] = pp;
        if (s1on) s1[i] = m;
        if constexpr (S2) s2[i] = v;
        store_lp1<LDT>(lpb, i, pp);
    }
}

// ---- LAMB -----------------------------------------------------------------------------------------

template <int GDT>
__global__ void __launch_bounds__(kThreads) lamb_phase1(const __grid_constant__ StepTable tab, const Hyper h) {
    __shared__ float red[kThreads / 32];
    if (h.skip && *h.skip) return;
    const int64_t b = blockIdx.x;
    const StepTensor& T = tab.t[find_entry(tab, b)];
    const int64_t start = (b - T.chunk0) * kChunk;
    const int len = static_cast<int>(min(kChunk, T.n - start));  // <= kChunk: 32-bit indices below
    const float* __restrict__ p = T.p + start;
    float* __restrict__ m = T.s1 + start;
    float* __restrict__ v = T.s2 + start;
    const char* gb = static_cast<const char*>(T.g) + start * (GDT == DS_OPTIM_DT_F32 ? 4 : 2);
    float sw = 0.0f, su = 0.0f;
    auto one = [&](float pp, float g, float& mm, float& vv) {
        g *= h.gs;
        mm = fmaf(h.b1, mm, h.ob1 * g);
        vv = fmaf(h.b2, vv, (h.ob2 * g) * g);
        const float u = fmaf(h.wd, pp, __fdiv_rn(mm, sqrtf(vv) + h.eps));
        sw = fmaf(pp, pp, sw);
        su = fmaf(u, u, su);
    };
    int done = 0;
    if (T.vec) {
        const int nv = len >> 2;
        for (int i = threadIdx.x; i < nv; i += kThreads) {
            const float4 P = reinterpret_cast<const float4*>(p)[i];
            const float4 G = load_g4<GDT>(gb, i);
            float4 M = reinterpret_cast<float4*>(m)[i];
            float4 V = reinterpret_cast<float4*>(v)[i];
            one(P.x, G.x, M.x, V.x);
            one(P.y, G.y, M.y, V.y);
            one(P.z, G.z, M.z, V.z);
            one(P.w, G.w, M.w, V.w);
            reinterpret_cast<float4*>(m)[i] = M;
            reinterpret_cast<float4*>(v)[i] = V;
        }
        done = nv << 2;
    }
    for (int i = done + static_cast<int>(threadIdx.x); i < len; i += kThreads) {
        float mm = m[i], vv = v[i];
        one(p[i], load_g1<GDT>(gb, i), mm, vv);
        m[i] = mm;
        v[i] = vv;
    }
    sw = block_sum(sw, red);
    su = block_sum(su, red);
    if (threadIdx.x == 0) {
        atomicAdd(h.norms + 2 * T.index, static_cast<double>(sw));
        atomicAdd(h.norms + 2 * T.index + 1, static_cast<double>(su));
    }
}

template <int LDT>
__global__ void __launch_bounds__(kThreads) lamb_phase2(const __grid_constant__ StepTable tab, const Hyper h) {
    if (h.skip && *h.skip) return;
    const int64_t b = blockIdx.x;
    const StepTensor& T = tab.t[find_entry(tab, b)];
    const int64_t start = (b - T.chunk0) * kChunk;
    const int len = static_cast<int>(min(kChunk, T.n - start));  // <= kChunk: 32-bit indices below
    const double w = sqrt(h.norms[2 * T.index]), un = sqrt(h.norms[2 * T.index + 1]);
    double r = 1.0;
    if (w != 0.0 && un != 0.0) r = fmin(fmax(w / un, static_cast<double>(h.min_coeff)), static_cast<double>(h.max_coeff));
    const float scale = static_cast<float>(static_cast<double>(h.step_size) * r);
    float* __restrict__ p = T.p + start;
    const float* __restrict__ m = T.s1 + start;
    const float* __restrict__ v = T.s2 + start;
    char* lpb = LDT >= 0 ? static_cast<char*>(T.lp) + start * 2 : nullptr;
    auto one = [&](float& pp, float mm, float vv) {
        const float u = fmaf(h.wd, pp, __fdiv_rn(mm, sqrtf(vv) + h.eps));
        pp = fmaf(-scale, u, pp);
    };
    int done = 0;
    if (T.vec) {
        const int nv = len >> 2;
        for (int i = threadIdx.x; i < nv; i += kThreads) {
            float4 P = reinterpret_cast<float4*>(p)[i];
            const float4 M = reinterpret_cast<const float4*>(m)[i];
            const float4 V = reinterpret_cast<const float4*>(v)[i];
            one(P.x, M.x, V.x);
            one(P.y, M.y, V.y);
            one(P.z, M.z, V.z);
            one(P.w, M.w, V.w);
            reinterpret_cast<float4*>(p)[i] = P;
            store_lp4<LDT>(lpb, i, P);
        }
        done = nv << 2;
    }
    for (int i = done + static_cast<int>(threadIdx.x); i < len; i += kThreads) {
        float pp = p[i];
        one(pp, m[i], v[i]);
        p[i] = pp;
        store_lp1<LDT>(lpb, i, pp);
    }
}

// ---- check_finite pre-pass ----------------------------------------------------------------------------

template <int GDT>
__global__ void __launch_bounds__(kThreads) nonfinite_grads(const __grid_constant__ StepTable tab, float gs, int* flag) {
    // Skip the work once another block found a bad value; one read per block so that every thread
    // of the block takes the same branch (the block ends in a barrier).
    __shared__ int stop;
    if (threadIdx.x == 0) stop = *reinterpret_cast<volatile int*>(flag);
    __syncthreads();
    if (stop) return;
    const int64_t b = blockIdx.x;
    const StepTensor& T = tab.t[find_entry(tab, b)];
    const int64_t start = (b - T.chunk0) * kChunk;
    const int len = static_cast<int>(min(kChunk, T.n - start));  // <= kChunk: 32-bit indices below
    const char* gb = static_cast<const char*>(T.g) + start * (GDT == DS_OPTIM_DT_F32 ? 4 : 2);
    bool bad = false;
    int done = 0;
    if (T.vec) {
        const int nv = len >> 2;
        for (int i = threadIdx.x; i < nv; i += kThreads) {
            const float4 g = load_g4<GDT>(gb, i);
            bad |= !isfinite(g.x * gs) | !isfinite(g.y * gs) | !isfinite(g.z * gs) | !isfinite(g.w * gs);
        }
        done = nv << 2;
    }
    for (int i = done + static_cast<int>(threadIdx.x); i < len; i += kThreads) bad |= !isfinite(load_g1<GDT>(gb, i) * gs);
    if (__syncthreads_or(bad) && threadIdx.x == 0) *flag = 1;
}

// ---- host side -------------------------------------------------------------------------------------

template <int V>
using IC = std::integral_constant<int, V>;

template <class F>
void with_lp(int32_t ldt, F&& f) {
    if (ldt == DS_OPTIM_DT_BF16) f(IC<DS_OPTIM_DT_BF16>{});
    else if (ldt == DS_OPTIM_DT_F16) f(IC<DS_OPTIM_DT_F16>{});
    else f(IC<-1>{});
}

template <class F>
void with_grad(int32_t gdt, F&& f) {
    if (gdt == DS_OPTIM_DT_BF16) f(IC<DS_OPTIM_DT_BF16>{});
    else if (gdt == DS_OPTIM_DT_F16) f(IC<DS_OPTIM_DT_F16>{});
    else f(IC<DS_OPTIM_DT_F32>{});
}

// Four vectors of each array in flight per thread: measured on an H100 over 1e9 params, 9.54 vs
// 9.64 ms (f32) and 9.59 vs 9.72 ms (bf16 grads + copy) with two. Cache-streaming loads and stores
// (ld/st.global.cs) gained nothing (9.722 vs 9.717 ms f32, 10.10 vs 9.72 ms bf16).
constexpr int kUnroll = 4;

template <int KIND>
int launch_kind(const StepTable& tab, unsigned grid, const Hyper& h, int32_t gdt, int32_t ldt) {
    with_grad(gdt, [&](auto G) {
        with_lp(ldt, [&](auto L) {
            step_kernel<KIND, decltype(G)::value, decltype(L)::value, kUnroll><<<grid, kThreads, 0, 0>>>(tab, h);
        });
    });
    return check_launch("optim step kernel");
}

bool aligned(const void* q, uintptr_t a) { return (reinterpret_cast<uintptr_t>(q) & (a - 1)) == 0; }

double bias_correction(int32_t on, float beta, int64_t step) {
    return on ? 1.0 - std::pow(static_cast<double>(beta), static_cast<double>(step)) : 1.0;
}

}  // namespace

int optim_step(int32_t dev, const void* args) {
    if (int rc = use_device(dev)) return rc;
    const ds_optim_step_args_t& a = *static_cast<const ds_optim_step_args_t*>(args);
    if (a.skipped) *a.skipped = 0;
    if (a.kind < DS_OPTIM_K_ADAM || a.kind > DS_OPTIM_K_ADAGRAD) return invalid("unknown optimizer kind " + std::to_string(a.kind));
    const size_t gsz = a.grad_dtype == DS_OPTIM_DT_F32 ? 4 : 2;

    // Hyper-parameters folded on the host exactly as the CPU kernels fold them.
    Hyper h{};
    const double bc1 = bias_correction(a.bias_correction, a.beta1, a.step);
    const double bc2 = bias_correction(a.bias_correction, a.beta2, a.step);
    h.lr = a.lr;
    h.b1 = a.beta1;
    h.b2 = a.beta2;
    h.ob1 = 1.0f - a.beta1;
    h.ob2 = 1.0f - a.beta2;
    h.eps = a.eps;
    h.wd = a.weight_decay;
    h.gs = a.grad_scale;
    h.inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
    if (a.kind == DS_OPTIM_K_LAMB) h.step_size = static_cast<float>(static_cast<double>(a.lr) * std::sqrt(bc2) / bc1);
    else h.step_size = static_cast<float>(static_cast<double>(a.lr) / bc1);
    h.decay = static_cast<float>(1.0 - static_cast<double>(a.lr) * a.weight_decay);
    h.l2 = a.kind == DS_OPTIM_K_ADAM ? a.weight_decay : 0.0f;
    if (a.kind == DS_OPTIM_K_ADAMW) h.decay = static_cast<float>(1.0 - static_cast<double>(a.lr) * a.weight_decay);
    h.mom = a.momentum;
    h.damp = 1.0f - a.dampening;
    h.clr = static_cast<float>(static_cast<double>(a.lr) / (1.0 + static_cast<double>(a.step - 1) * a.lr_decay));
    h.max_coeff = a.max_coeff;
    h.min_coeff = a.min_coeff;
    h.first = a.step == 1;
    h.nesterov = a.nesterov;
    const bool sgd_buf = a.kind != DS_OPTIM_K_SGD || a.momentum != 0.0f;

    // Tables of at most kMaxT non-empty tensors.
    std::vector<StepTable> tables;
    std::vector<int64_t> chunks;
    for (int32_t i = 0; i < a.n_tensors; ++i) {
        const ds_optim_tensor_args_t& x = a.tensors[i];
        if (x.numel <= 0) continue;
        if (tables.empty() || tables.back().count == kMaxT || chunks.back() > (int64_t{1} << 30)) {
            tables.emplace_back();
            std::memset(static_cast<void*>(&tables.back()), 0, sizeof(StepTable));
            chunks.push_back(0);
        }
        StepTable& tab = tables.back();
        StepTensor& t = tab.t[tab.count++];
        t.p = x.param;
        t.g = x.grad;
        t.s1 = sgd_buf ? x.state1 : nullptr;
        t.s2 = x.state2;
        t.lp = a.lp_dtype >= 0 ? x.param_lp : nullptr;
        t.n = x.numel;
        t.chunk0 = chunks.back();
        t.index = i;
        t.vec = aligned(t.p, 16) && aligned(t.g, gsz * 4) && (!t.s1 || aligned(t.s1, 16)) && (!t.s2 || aligned(t.s2, 16)) &&
                (!t.lp || aligned(t.lp, 8));
        chunks.back() += (x.numel + kChunk - 1) / kChunk;
    }
    if (tables.empty()) return DS_BACKEND_OK;

    const bool lamb = a.kind == DS_OPTIM_K_LAMB;
    Scratch scratch;  // [flag (16 bytes)] [LAMB: 2 * n_tensors doubles]
    const size_t bytes = 16 + (lamb ? sizeof(double) * 2 * static_cast<size_t>(a.n_tensors) : 0);
    if (a.check_finite || lamb) {
        if (int rc = scratch.alloc(bytes, "cudaMallocAsync (optim step scratch)")) return rc;
        if (int rc = check(cudaMemsetAsync(scratch.p, 0, bytes, 0), "cudaMemsetAsync (optim step scratch)")) return rc;
    }
    int* flag = static_cast<int*>(scratch.p);
    h.norms = lamb ? reinterpret_cast<double*>(static_cast<char*>(scratch.p) + 16) : nullptr;
    if (a.check_finite) {
        for (size_t k = 0; k < tables.size(); ++k) {
            const unsigned grid = static_cast<unsigned>(chunks[k]);
            with_grad(a.grad_dtype, [&](auto G) {
                nonfinite_grads<decltype(G)::value><<<grid, kThreads, 0, 0>>>(tables[k], a.grad_scale, flag);
            });
            if (int rc = check_launch("optim check_finite kernel")) return rc;
        }
        h.skip = flag;
    }
    for (size_t k = 0; k < tables.size(); ++k) {
        const StepTable& tab = tables[k];
        const unsigned grid = static_cast<unsigned>(chunks[k]);
        int rc = DS_BACKEND_OK;
        switch (a.kind) {
            case DS_OPTIM_K_ADAM: rc = launch_kind<DS_OPTIM_K_ADAM>(tab, grid, h, a.grad_dtype, a.lp_dtype); break;
            case DS_OPTIM_K_ADAMW: rc = launch_kind<DS_OPTIM_K_ADAMW>(tab, grid, h, a.grad_dtype, a.lp_dtype); break;
            case DS_OPTIM_K_LION: rc = launch_kind<DS_OPTIM_K_LION>(tab, grid, h, a.grad_dtype, a.lp_dtype); break;
            case DS_OPTIM_K_SGD: rc = launch_kind<DS_OPTIM_K_SGD>(tab, grid, h, a.grad_dtype, a.lp_dtype); break;
            case DS_OPTIM_K_ADAGRAD: rc = launch_kind<DS_OPTIM_K_ADAGRAD>(tab, grid, h, a.grad_dtype, a.lp_dtype); break;
            case DS_OPTIM_K_LAMB:
                with_grad(a.grad_dtype, [&](auto G) { lamb_phase1<decltype(G)::value><<<grid, kThreads, 0, 0>>>(tab, h); });
                if ((rc = check_launch("LAMB phase 1 kernel"))) break;
                with_lp(a.lp_dtype, [&](auto L) { lamb_phase2<decltype(L)::value><<<grid, kThreads, 0, 0>>>(tab, h); });
                rc = check_launch("LAMB phase 2 kernel");
                break;
            default: break;
        }
        if (rc) return rc;
    }
    if (a.skipped && a.check_finite) {
        int f = 0;
        if (int rc = check(cudaMemcpy(&f, flag, sizeof f, cudaMemcpyDeviceToHost), "cudaMemcpy (check_finite flag)")) return rc;
        *a.skipped = f ? 1 : 0;
    }
    return DS_BACKEND_OK;
}

}  // namespace optim
}  // namespace dscuda
