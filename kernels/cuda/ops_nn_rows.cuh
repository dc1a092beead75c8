// Row-kernel layout shared by the norm and softmax TUs: each row of d elements is handled by a group
// of G = blockDim.x threads (a multiple of 32; R = blockDim.y groups per block), thread t holding
// chunks c = 0..CH-1 of VEC elements at element (c * G + t) * VEC in registers. VEC is 16 bytes of
// elements when the row length and every pointer allow it, else 1.
#pragma once

#include <type_traits>

#include "ops_nn_common.cuh"

namespace dscuda::nn {

struct RowPlan {
    bool vec16 = false;  // VEC = kVec16<T> (else 1)
    int ch = 0;          // chunks per thread; 0: too wide for registers (use the generic kernel)
    int g = 0;           // threads per row
    int r = 0;           // rows per block
};

// max_elems: the most elements one thread may hold (register budget of the kernel).
template <class T>
inline RowPlan plan_rows(int64_t d, bool aligned, int max_elems) {
    RowPlan p;
    p.vec16 = aligned && (d * static_cast<int64_t>(sizeof(T))) % 16 == 0;
    const int vec = p.vec16 ? kVec16<T> : 1;
    const int64_t nch = cdiv(d, vec);
    static const int chs[] = {1, 2, 4, 8};
    for (int limit : {256, 512}) {
        for (int ch : chs) {
            if (ch * vec > max_elems) break;
            if (nch <= static_cast<int64_t>(limit) * ch) {
                p.ch = ch;
                break;
            }
        }
        if (p.ch) break;
    }
    if (!p.ch) return p;
    p.g = static_cast<int>(cdiv(cdiv(nch, p.ch), 32) * 32);
    p.r = p.g >= 256 ? 1 : 256 / p.g;
    return p;
}

// Calls f(std::integral_constant<int, VEC>, std::integral_constant<int, CH>) for the plan.
template <class T, class F>
inline int with_plan(const RowPlan& p, F&& f) {
    constexpr int V = kVec16<T>;
    if (p.vec16) {
        switch (p.ch) {
            case 1: return f(std::integral_constant<int, V>{}, std::integral_constant<int, 1>{});
            case 2: return f(std::integral_constant<int, V>{}, std::integral_constant<int, 2>{});
            case 4: return f(std::integral_constant<int, V>{}, std::integral_constant<int, 4>{});
            default: return f(std::integral_constant<int, V>{}, std::integral_constant<int, 8>{});
        }
    }
    switch (p.ch) {
        case 1: return f(std::integral_constant<int, 1>{}, std::integral_constant<int, 1>{});
        case 2: return f(std::integral_constant<int, 1>{}, std::integral_constant<int, 2>{});
        case 4: return f(std::integral_constant<int, 1>{}, std::integral_constant<int, 4>{});
        default: return f(std::integral_constant<int, 1>{}, std::integral_constant<int, 8>{});
    }
}

// Element index of chunk c of this thread.
template <int VEC>
__device__ __forceinline__ int64_t chunk_index(int c) {
    return (static_cast<int64_t>(c) * blockDim.x + threadIdx.x) * VEC;
}

// Load this thread's chunks of row p (zeros outside [0, d) or when !valid).
template <class T, int VEC, int CH>
__device__ __forceinline__ void load_row(const T* p, int64_t d, bool valid, float (&v)[CH][VEC]) {
#pragma unroll
    for (int c = 0; c < CH; ++c) {
        const int64_t idx = chunk_index<VEC>(c);
        if (valid && idx < d) {
            load_vec<T, VEC>(p + idx, v[c]);
        } else {
#pragma unroll
            for (int j = 0; j < VEC; ++j) v[c][j] = 0.0f;
        }
    }
}

template <class T, int VEC, int CH>
__device__ __forceinline__ void store_row(T* p, int64_t d, bool valid, const float (&v)[CH][VEC]) {
#pragma unroll
    for (int c = 0; c < CH; ++c) {
        const int64_t idx = chunk_index<VEC>(c);
        if (valid && idx < d) store_vec<T, VEC>(p + idx, v[c]);
    }
}

}  // namespace dscuda::nn
