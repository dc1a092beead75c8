// Shared pieces of the nn family's CUDA translation units (ops_nn*.cu): dtype dispatch, f32
// conversions, 16-byte vector loads/stores, warp/group reductions, the column-sum finaliser used by
// the parameter gradients, and the op functions each TU defines (registered in ops_nn.cu).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <atomic>
#include <cstdint>
#include <type_traits>

#include "cuda_common.cuh"
#include "op_nn.h"

namespace dscuda::nn {

// ---- ops (one function per DS_KOP_* index) ---------------------------------------------------------
int embedding(int32_t dev, const void* args);
int embedding_bwd(int32_t dev, const void* args);
int layer_norm(int32_t dev, const void* args);
int layer_norm_bwd(int32_t dev, const void* args);
int activation(int32_t dev, const void* args);
int activation_bwd(int32_t dev, const void* args);
int swiglu(int32_t dev, const void* args);
int swiglu_bwd(int32_t dev, const void* args);
int add(int32_t dev, const void* args);
int sum_rows(int32_t dev, const void* args);
int softmax(int32_t dev, const void* args);
int softmax_bwd(int32_t dev, const void* args);
int cross_entropy(int32_t dev, const void* args);
int rope(int32_t dev, const void* args);
int dropout(int32_t dev, const void* args);

// ---- dtypes ----------------------------------------------------------------------------------------

template <class T>
struct Tag {
    using type = T;
};

// Call f(Tag<T>{}) for the storage type of a float dtype; DS_BACKEND_INVALID for others.
template <class F>
int dispatch_float(int32_t dtype, const char* what, F&& f) {
    switch (dtype) {
        case DS_NN_F32: return f(Tag<float>{});
        case DS_NN_F16: return f(Tag<__half>{});
        case DS_NN_BF16: return f(Tag<__nv_bfloat16>{});
        default: return invalid(std::string(what) + ": unsupported dtype " + std::to_string(dtype));
    }
}

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }

template <class T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) {
    return v;
}
template <>
__device__ __forceinline__ __half from_f<__half>(float v) {
    return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}

// Elements per 16-byte access.
template <class T>
constexpr int kVec16 = static_cast<int>(16 / sizeof(T));

// VEC consecutive elements as f32: one 16-byte load when VEC * sizeof(T) == 16 (p aligned), else
// element by element.
template <class T, int VEC>
__device__ __forceinline__ void load_vec(const T* p, float (&out)[VEC]) {
    if constexpr (VEC * sizeof(T) == 16) {
        uint4 raw = *reinterpret_cast<const uint4*>(p);
        const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
        for (int j = 0; j < VEC; ++j) out[j] = to_f(e[j]);
    } else {
#pragma unroll
        for (int j = 0; j < VEC; ++j) out[j] = to_f(p[j]);
    }
}

template <class T, int VEC>
__device__ __forceinline__ void store_vec(T* p, const float (&in)[VEC]) {
    if constexpr (VEC * sizeof(T) == 16) {
        uint4 raw;
        T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
        for (int j = 0; j < VEC; ++j) e[j] = from_f<T>(in[j]);
        *reinterpret_cast<uint4*>(p) = raw;
    } else {
#pragma unroll
        for (int j = 0; j < VEC; ++j) p[j] = from_f<T>(in[j]);
    }
}

__device__ __forceinline__ int64_t load_index(const void* p, int32_t idtype, int64_t i) {
    return idtype == DS_NN_I64 ? static_cast<const int64_t*>(p)[i] : static_cast<const int32_t*>(p)[i];
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// ---- reductions ------------------------------------------------------------------------------------

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Reductions over the blockDim.x threads of one row group (threadIdx.y picks the group; blockDim.x
// a multiple of 32, at most 1024). sh: shared scratch of 32 floats per group. Every thread of the
// block must call it (it may synchronise the block); all get the result, summed in a fixed order.
__device__ __forceinline__ float group_sum(float v, float* sh) {
    v = warp_sum(v);
    if (blockDim.x == 32) return v;
    float* s = sh + threadIdx.y * 32;
    if ((threadIdx.x & 31) == 0) s[threadIdx.x >> 5] = v;
    __syncthreads();
    float t = 0.0f;
    const int nw = blockDim.x >> 5;
    for (int k = 0; k < nw; ++k) t += s[k];
    __syncthreads();
    return t;
}
__device__ __forceinline__ float group_max(float v, float* sh) {
    v = warp_max(v);
    if (blockDim.x == 32) return v;
    float* s = sh + threadIdx.y * 32;
    if ((threadIdx.x & 31) == 0) s[threadIdx.x >> 5] = v;
    __syncthreads();
    float t = -INFINITY;
    const int nw = blockDim.x >> 5;
    for (int k = 0; k < nw; ++k) t = fmaxf(t, s[k]);
    __syncthreads();
    return t;
}

// ---- launch helpers --------------------------------------------------------------------------------

inline int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Multiprocessors of the current device (cached per device).
inline int sm_count() {
    static std::atomic<int> cache[64];
    int dev = 0;
    cudaGetDevice(&dev);
    int v = dev >= 0 && dev < 64 ? cache[dev].load(std::memory_order_relaxed) : 0;
    if (v > 0) return v;
    if (cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || v <= 0) v = 1;
    if (dev >= 0 && dev < 64) cache[dev].store(v, std::memory_order_relaxed);
    return v;
}

// Blocks of a 1-D grid-stride launch over `work` items of `per_block` each.
inline unsigned grid_for(int64_t work, int64_t per_block, int64_t max_per_sm = 32) {
    int64_t b = cdiv(work, per_block);
    int64_t cap = static_cast<int64_t>(sm_count()) * max_per_sm;
    if (b > cap) b = cap;
    return static_cast<unsigned>(b < 1 ? 1 : b);
}

// Stream-ordered device scratch on the legacy default stream, freed the same way.
struct Workspace {
    void* p = nullptr;
    int rc = DS_BACKEND_OK;
    explicit Workspace(size_t bytes) { rc = check(cudaMallocAsync(&p, bytes ? bytes : 16, 0), "cudaMallocAsync (nn workspace)"); }
    ~Workspace() {
        if (p) cudaFreeAsync(p, 0);
    }
    Workspace(const Workspace&) = delete;
    Workspace& operator=(const Workspace&) = delete;
};

// dst[c] (dtype T, accumulated) += sum over p < rows of part[p * d + c], in a fixed order (so the
// result is deterministic). Launch with colsum_launch.
template <class T>
__global__ void __launch_bounds__(512) colsum_finalize(const float* __restrict__ part, int64_t rows, int64_t d,
                                                       T* __restrict__ dst) {
    __shared__ float sh[16][33];
    const int64_t c = blockIdx.x * 32 + threadIdx.x;
    float acc = 0.0f;
    if (c < d)
        for (int64_t p = threadIdx.y; p < rows; p += 16) acc += part[p * d + c];
    sh[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && c < d) {
        float t = 0.0f;
#pragma unroll
        for (int k = 0; k < 16; ++k) t += sh[k][threadIdx.x];
        dst[c] = from_f<T>(to_f(dst[c]) + t);
    }
}

template <class T>
inline int colsum_launch(const float* part, int64_t rows, int64_t d, void* dst, const char* what) {
    dim3 block(32, 16);
    colsum_finalize<T><<<static_cast<unsigned>(cdiv(d, 32)), block>>>(part, rows, d, static_cast<T*>(dst));
    return check_launch(what);
}

inline int colsum_launch_dt(int32_t dtype, const float* part, int64_t rows, int64_t d, void* dst, const char* what) {
    return dispatch_float(dtype, what, [&](auto tag) {
        using T = typename decltype(tag)::type;
        return colsum_launch<T>(part, rows, d, dst, what);
    });
}

}  // namespace dscuda::nn
