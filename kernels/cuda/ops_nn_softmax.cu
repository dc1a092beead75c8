// CUDA softmax (forward, backward) and the fused cross-entropy.
//
// Softmax: one thread group per row with the row in registers (ops_nn_rows.cuh): max, exp and sum,
// scale, one read and one write of the row. Rows too wide for registers: a block per row with an
// online max/sum pass and a second pass that re-reads the row.
//
// Cross-entropy: one block per row (grid-stride), an online max/sum over the vocabulary in 16-byte
// vectors (one exp per element), the loss from the block's (max, sum); with dlogits a second pass
// writes (softmax - onehot) * dloss, reading the row from a shared-memory copy made during the first
// pass when it fits (<= kXentSmemBytes), else from global memory again (mostly L2). Targets outside
// [0, V) are treated like ignore_index (loss 0, zero gradient row): the C API documents this.
#include "ops_nn_rows.cuh"

namespace dscuda::nn {
namespace {

constexpr int kGenericThreads = 512;
constexpr int64_t kXentSmemBytes = 113 * 1024;  // two blocks of cached rows per SM (228 KB)

// ---- softmax, register-resident ------------------------------------------------------------------------

template <class T, int VEC, int CH>
__global__ void __launch_bounds__(512) softmax_fwd_kernel(const ds_nn_softmax_args_t a) {
    __shared__ float sh[16 * 32];
    const int64_t d = a.d;
    for (int64_t r0 = static_cast<int64_t>(blockIdx.x) * blockDim.y; r0 < a.n;
         r0 += static_cast<int64_t>(gridDim.x) * blockDim.y) {
        const int64_t row = r0 + threadIdx.y;
        const bool valid = row < a.n;
        float v[CH][VEC];
        load_row<T, VEC, CH>(static_cast<const T*>(a.x) + row * d, d, valid, v);
        float m = -INFINITY;
#pragma unroll
        for (int c = 0; c < CH; ++c) {
            const bool in = chunk_index<VEC>(c) < d;
#pragma unroll
            for (int j = 0; j < VEC; ++j) {
                v[c][j] = in ? v[c][j] * a.scale : -INFINITY;
                m = fmaxf(m, v[c][j]);
            }
        }
        m = group_max(m, sh);
        float s = 0.0f;
#pragma unroll
        for (int c = 0; c < CH; ++c)
#pragma unroll
            for (int j = 0; j < VEC; ++j) {
                v[c][j] = v[c][j] == -INFINITY ? 0.0f : expf(v[c][j] - m);
                s += v[c][j];
            }
        const float inv = 1.0f / group_sum(s, sh);
#pragma unroll
        for (int c = 0; c < CH; ++c)
#pragma unroll
            for (int j = 0; j < VEC; ++j) v[c][j] *= inv;
        store_row<T, VEC, CH>(static_cast<T*>(a.out) + row * d, d, valid, v);
    }
}

template <class T, int VEC, int CH>
__global__ void __launch_bounds__(512) softmax_bwd_kernel(const ds_nn_softmax_args_t a) {
    __shared__ float sh[16 * 32];
    const int64_t d = a.d;
    for (int64_t r0 = static_cast<int64_t>(blockIdx.x) * blockDim.y; r0 < a.n;
         r0 += static_cast<int64_t>(gridDim.x) * blockDim.y) {
        const int64_t row = r0 + threadIdx.y;
        const bool valid = row < a.n;
        float y[CH][VEC], g[CH][VEC];
        load_row<T, VEC, CH>(static_cast<const T*>(a.x) + row * d, d, valid, y);
        load_row<T, VEC, CH>(static_cast<const T*>(a.dy) + row * d, d, valid, g);
        float s = 0.0f;
#pragma unroll
        for (int c = 0; c < CH; ++c)
#pragma unroll
            for (int j = 0; j < VEC; ++j) s += y[c][j] * g[c][j];
        const float dot = group_sum(s, sh);
#pragma unroll
        for (int c = 0; c < CH; ++c)
#pragma unroll
            for (int j = 0; j < VEC; ++j) g[c][j] = a.scale * y[c][j] * (g[c][j] - dot);
        store_row<T, VEC, CH>(static_cast<T*>(a.out) + row * d, d, valid, g);
    }
}

// ---- softmax, wide rows ----------------------------------------------------------------------------------

// Merge of per-thread (max, sum of exp(x - max)) pairs over the block.
__device__ __forceinline__ void block_max_sum(float m, float s, float* sh, float* out_m, float* out_s) {
    const float bm = group_max(m, sh);
    const float adj = m == -INFINITY ? 0.0f : s * expf(m - bm);
    *out_m = bm;
    *out_s = group_sum(adj, sh);
}

// Online update of (m, s) with one value.
__device__ __forceinline__ void online_add(float v, float& m, float& s) {
    if (v > m) {
        s = s * expf(m - v) + 1.0f;  // m = -inf: expf(-inf) = 0
        m = v;
    } else if (v != -INFINITY) {
        s += expf(v - m);
    }
}

template <class T>
__global__ void __launch_bounds__(kGenericThreads) softmax_fwd_generic(const ds_nn_softmax_args_t a) {
    __shared__ float sh[32];
    const int64_t d = a.d;
    for (int64_t row = blockIdx.x; row < a.n; row += gridDim.x) {
        const T* x = static_cast<const T*>(a.x) + row * d;
        T* y = static_cast<T*>(a.out) + row * d;
        float m = -INFINITY, s = 0.0f;
        for (int64_t i = threadIdx.x; i < d; i += blockDim.x) online_add(to_f(x[i]) * a.scale, m, s);
        float bm, bs;
        block_max_sum(m, s, sh, &bm, &bs);
        const float inv = 1.0f / bs;
        for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
            const float v = to_f(x[i]) * a.scale;
            y[i] = from_f<T>(v == -INFINITY ? 0.0f : expf(v - bm) * inv);
        }
    }
}

template <class T>
__global__ void __launch_bounds__(kGenericThreads) softmax_bwd_generic(const ds_nn_softmax_args_t a) {
    __shared__ float sh[32];
    const int64_t d = a.d;
    for (int64_t row = blockIdx.x; row < a.n; row += gridDim.x) {
        const T* y = static_cast<const T*>(a.x) + row * d;
        const T* dy = static_cast<const T*>(a.dy) + row * d;
        T* dx = static_cast<T*>(a.out) + row * d;
        float s = 0.0f;
        for (int64_t i = threadIdx.x; i < d; i += blockDim.x) s += to_f(y[i]) * to_f(dy[i]);
        const float dot = group_sum(s, sh);
        for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
            const float yv = to_f(y[i]);
            dx[i] = from_f<T>(a.scale * yv * (to_f(dy[i]) - dot));
        }
    }
}

// ---- cross-entropy ---------------------------------------------------------------------------------------

template <class T, int VEC, bool CACHE>
__global__ void __launch_bounds__(1024) xent_kernel(const ds_nn_xent_args_t a) {
    extern __shared__ uint4 cache_raw[];
    __shared__ float sh[32];
    T* cache = reinterpret_cast<T*>(cache_raw);
    const int64_t v = a.v, nvec = v / VEC;
    for (int64_t row = blockIdx.x; row < a.n; row += gridDim.x) {
        const int64_t t = load_index(a.targets, a.idtype, row);
        const T* x = static_cast<const T*>(a.logits) + row * v;
        T* dl = a.dlogits ? static_cast<T*>(a.dlogits) + row * v : nullptr;
        if (t == a.ignore_index || t < 0 || t >= v) {  // the same for the whole block
            if (threadIdx.x == 0 && a.losses) a.losses[row] = 0.0f;
            if (a.dlogits)
                for (int64_t i = threadIdx.x; i < v; i += blockDim.x) dl[i] = from_f<T>(0.0f);
            continue;
        }
        if constexpr (CACHE) __syncthreads();  // the previous row's copy is no longer read
        // logits[t] before anything is written: dlogits may alias logits
        const float xt = threadIdx.x == 0 ? to_f(x[t]) : 0.0f;
        float m = -INFINITY, s = 0.0f;
#pragma unroll 4
        for (int64_t k = threadIdx.x; k < nvec; k += blockDim.x) {
            float e[VEC];
            if constexpr (VEC * sizeof(T) == 16) {
                const uint4 raw = reinterpret_cast<const uint4*>(x)[k];
                if constexpr (CACHE) reinterpret_cast<uint4*>(cache)[k] = raw;
                const T* p = reinterpret_cast<const T*>(&raw);
#pragma unroll
                for (int j = 0; j < VEC; ++j) e[j] = to_f(p[j]);
            } else {
                const T raw = x[k];
                if constexpr (CACHE) cache[k] = raw;
                e[0] = to_f(raw);
            }
            float lm = e[0];
#pragma unroll
            for (int j = 1; j < VEC; ++j) lm = fmaxf(lm, e[j]);
            if (lm > m) {
                s *= expf(m - lm);
                m = lm;
            }
            if (m != -INFINITY) {
#pragma unroll
                for (int j = 0; j < VEC; ++j) s += expf(e[j] - m);
            }
        }
        float bm, bs;
        block_max_sum(m, s, sh, &bm, &bs);  // synchronises: the shared copy is complete
        if (threadIdx.x == 0 && a.losses) a.losses[row] = logf(bs) + bm - xt;
        if (!a.dlogits) continue;
        const float k1 = a.dloss / bs;
#pragma unroll 4
        for (int64_t k = threadIdx.x; k < nvec; k += blockDim.x) {
            float e[VEC];
            if constexpr (VEC * sizeof(T) == 16) {
                const uint4 raw = CACHE ? reinterpret_cast<const uint4*>(cache)[k] : reinterpret_cast<const uint4*>(x)[k];
                const T* p = reinterpret_cast<const T*>(&raw);
#pragma unroll
                for (int j = 0; j < VEC; ++j) e[j] = to_f(p[j]);
            } else {
                e[0] = to_f(CACHE ? cache[k] : x[k]);
            }
#pragma unroll
            for (int j = 0; j < VEC; ++j) {
                e[j] = expf(e[j] - bm) * k1;
                if (k * VEC + j == t) e[j] -= a.dloss;
            }
            store_vec<T, VEC>(dl + k * VEC, e);
        }
    }
}

// ---- launchers ---------------------------------------------------------------------------------------

template <class T>
int softmax_launch(const ds_nn_softmax_args_t& a, bool bwd) {
    const char* what = bwd ? "ds_op_softmax_backward kernel" : "ds_op_softmax kernel";
    const bool al = aligned16(a.x) && aligned16(a.out) && (!bwd || aligned16(a.dy));
    const RowPlan p = plan_rows<T>(a.d, al, bwd ? 32 : 64);
    if (!p.ch) {
        if (bwd)
            softmax_bwd_generic<T><<<grid_for(a.n, 1, 4), kGenericThreads>>>(a);
        else
            softmax_fwd_generic<T><<<grid_for(a.n, 1, 4), kGenericThreads>>>(a);
        return check_launch(what);
    }
    return with_plan<T>(p, [&](auto vec, auto ch) -> int {
        constexpr int VEC = decltype(vec)::value, CH = decltype(ch)::value;
        const unsigned grid = grid_for(a.n, p.r, 64);
        if (bwd) {
            if constexpr (VEC * CH > 32) {
                return invalid("internal: no softmax backward kernel for this row layout");
            } else {
                softmax_bwd_kernel<T, VEC, CH><<<grid, dim3(p.g, p.r)>>>(a);
            }
        } else {
            softmax_fwd_kernel<T, VEC, CH><<<grid, dim3(p.g, p.r)>>>(a);
        }
        return check_launch(what);
    });
}

template <class T, int VEC, bool CACHE>
int xent_launch_with(const ds_nn_xent_args_t& a, int threads) {
    auto kernel = xent_kernel<T, VEC, CACHE>;
    size_t smem = 0;
    if (CACHE) {
        smem = static_cast<size_t>(a.v) * sizeof(T);
        if (int rc = check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)),
                           "cudaFuncSetAttribute (ds_op_cross_entropy)"))
            return rc;
    }
    int per_sm = 0;
    if (int rc = check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem),
                       "cudaOccupancyMaxActiveBlocksPerMultiprocessor"))
        return rc;
    kernel<<<grid_for(a.n, 1, per_sm > 0 ? per_sm : 1), threads, smem>>>(a);
    return check_launch("ds_op_cross_entropy kernel");
}

template <class T>
int xent_launch(const ds_nn_xent_args_t& a) {
    const bool vec = aligned16(a.logits) && (!a.dlogits || aligned16(a.dlogits)) &&
                     (a.v * static_cast<int64_t>(sizeof(T))) % 16 == 0;
    const int64_t nvec = vec ? a.v / kVec16<T> : a.v;
    int64_t threads = cdiv(cdiv(nvec, 4), 32) * 32;
    threads = threads < 32 ? 32 : threads > 1024 ? 1024 : threads;
    const bool cache = a.dlogits && static_cast<int64_t>(a.v * sizeof(T)) <= kXentSmemBytes;
    if (vec)
        return cache ? xent_launch_with<T, kVec16<T>, true>(a, static_cast<int>(threads))
                     : xent_launch_with<T, kVec16<T>, false>(a, static_cast<int>(threads));
    return cache ? xent_launch_with<T, 1, true>(a, static_cast<int>(threads))
                 : xent_launch_with<T, 1, false>(a, static_cast<int>(threads));
}

}  // namespace

int softmax(int32_t dev, const void* args) {
    if (int rc = use_device(dev)) return rc;
    const auto& a = *static_cast<const ds_nn_softmax_args_t*>(args);
    return dispatch_float(a.dtype, "ds_op_softmax", [&](auto tag) {
        return softmax_launch<typename decltype(tag)::type>(a, false);
    });
}

int softmax_bwd(int32_t dev, const void* args) {
    if (int rc = use_device(dev)) return rc;
    const auto& a = *static_cast<const ds_nn_softmax_args_t*>(args);
    return dispatch_float(a.dtype, "ds_op_softmax_backward", [&](auto tag) {
        return softmax_launch<typename decltype(tag)::type>(a, true);
    });
}

int cross_entropy(int32_t dev, const void* args) {
    if (int rc = use_device(dev)) return rc;
    const auto& a = *static_cast<const ds_nn_xent_args_t*>(args);
    return dispatch_float(a.dtype, "ds_op_cross_entropy", [&](auto tag) {
        return xent_launch<typename decltype(tag)::type>(a);
    });
}

}  // namespace dscuda::nn
