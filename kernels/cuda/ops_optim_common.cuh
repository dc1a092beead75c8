// Shared pieces of the optim family's CUDA translation units (ops_optim.cu: list ops, cast and the
// op table entries; ops_optim_step.cu: the optimizer step).
//
// Multi-tensor launches: the tensors of a call are described in a table passed BY VALUE as a
// __grid_constant__ kernel parameter (sm_70+ and CUDA 12.1+ allow up to 32 KiB of parameters), so no
// host-to-device copy and no synchronisation is needed. Each tensor is cut into chunks of kChunk
// elements; block b of the grid works on global chunk b and finds its tensor by binary search over
// the table's chunk offsets. A call with more tensors than a table holds makes several launches.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "cuda_common.cuh"
#include "op_optim.h"

namespace dscuda {
namespace optim {

constexpr int kThreads = 256;
constexpr int64_t kChunk = 16384;  // elements per block

// Device scratch memory from the stream-ordered allocator, released (stream-ordered) on scope exit.
struct Scratch {
    void* p = nullptr;
    ~Scratch() {
        if (p) cudaFreeAsync(p, 0);
    }
    int alloc(size_t bytes, const char* what) {
        return check(cudaMallocAsync(&p, bytes ? bytes : 16, 0), what);
    }
};

// Block-wide sum (every thread gets the result); blockDim.x == kThreads.
template <class T>
__device__ __forceinline__ T block_sum(T v, T* smem /* kThreads / 32 entries */) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    __syncthreads();  // smem may still be read by a previous call
    if (lane == 0) smem[warp] = v;
    __syncthreads();
    T s = lane < kThreads / 32 ? smem[lane] : T(0);
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    return s;
}

// Index of the table entry whose chunk range holds chunk b: the last i with chunk0[i] <= b.
template <class Table>
__device__ __forceinline__ int find_entry(const Table& tab, int64_t b) {
    int lo = 0, hi = tab.count - 1;
    while (lo < hi) {
        const int mid = (lo + hi + 1) >> 1;
        if (tab.t[mid].chunk0 <= b) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

int optim_step(int32_t dev, const void* args);  // ops_optim_step.cu

}  // namespace optim
}  // namespace dscuda
