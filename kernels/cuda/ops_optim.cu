// CUDA ops of the optim family: the table entries, and the list ops (global norm, scale, find
// non-finite) and cast. The optimizer step lives in ops_optim_step.cu.
//
// List ops use the multi-tensor scheme of ops_optim_common.cuh: one block per chunk of kChunk
// elements, tensors of any of f32 / f16 / bf16 / f64 in one launch.
//   global norm: each block sums the squares of its chunk in f32 (f64 for f64 tensors) and writes the
//     partial as f64; one block then adds the partials in f64 in a fixed order (deterministic), and
//     the result is copied to the host (synchronises).
//   scale: x = x * alpha computed in f64 and rounded once to the tensor's dtype (asynchronous).
//   find non-finite: a device flag, copied to the host (synchronises).
//   cast: element-wise through the f64 conversions of kernels/cpu/optim_convert.hpp (the same code
//     as the CPU kernels, so both devices round alike).
#include <cuda_runtime.h>

#include <cstring>
#include <string>
#include <vector>

#include "cpu/optim_convert.hpp"
#include "ops_optim_common.cuh"

namespace dscuda {
namespace optim {
namespace {

constexpr int kMaxL = 512;

struct ListTensor {
    void* data;
    int64_t n;
    int64_t chunk0;
    int32_t dtype;
    int32_t pad;
};
static_assert(sizeof(ListTensor) == 32, "ListTensor layout");

struct ListTable {
    int32_t count;
    int32_t pad;
    int64_t chunk_base;  // global index of this launch's first chunk (norm partials)
    ListTensor t[kMaxL];
};

// Build launch tables of at most kMaxL non-empty tensors; chunks[k] = chunks of table k.
void build_tables(const ds_optim_list_args_t& a, std::vector<ListTable>& tables, std::vector<int64_t>& chunks) {
    int64_t base = 0;
    for (int32_t i = 0; i < a.n_tensors; ++i) {
        const ds_optim_buf_t& b = a.tensors[i];
        if (b.numel <= 0) continue;
        if (tables.empty() || tables.back().count == kMaxL || chunks.back() > (int64_t{1} << 30)) {
            if (!tables.empty()) base += chunks.back();
            tables.emplace_back();
            std::memset(static_cast<void*>(&tables.back()), 0, sizeof(ListTable));
            tables.back().chunk_base = base;
            chunks.push_back(0);
        }
        ListTable& tab = tables.back();
        ListTensor& t = tab.t[tab.count++];
        t.data = b.data;
        t.n = b.numel;
        t.dtype = b.dtype;
        t.chunk0 = chunks.back();
        chunks.back() += (b.numel + kChunk - 1) / kChunk;
    }
}

__device__ __forceinline__ float elem_f(const void* p, int32_t dt, int64_t i) {
    switch (dt) {
        case DS_OPTIM_DT_F32: return static_cast<const float*>(p)[i];
        case DS_OPTIM_DT_BF16: return __uint_as_float(static_cast<uint32_t>(static_cast<const uint16_t*>(p)[i]) << 16);
        default: return static_cast<float>(dsoptim::load_f64(p, dt, i));
    }
}

__global__ void __launch_bounds__(kThreads) sumsq_kernel(const __grid_constant__ ListTable tab, double* partial) {
    __shared__ double red[kThreads / 32];
    const int64_t b = blockIdx.x;
    const ListTensor& T = tab.t[find_entry(tab, b)];
    const int64_t start = (b - T.chunk0) * kChunk;
    const int len = static_cast<int>(min(kChunk, T.n - start));  // <= kChunk: 32-bit indices below
    double s = 0.0;
    if (T.dtype == DS_OPTIM_DT_F64) {
        const double* x = static_cast<const double*>(T.data) + start;
        for (int i = threadIdx.x; i < len; i += kThreads) s = fma(x[i], x[i], s);
    } else {
        float f = 0.0f;
        const char* base = static_cast<const char*>(T.data) + start * (T.dtype == DS_OPTIM_DT_F32 ? 4 : 2);
        for (int i = threadIdx.x; i < len; i += kThreads) {
            const float x = elem_f(base, T.dtype, i);
            f = fmaf(x, x, f);
        }
        s = f;
    }
    // per-block partial: summed in f32 within a thread, combined in f64 across the block
    s = block_sum(s, red);
    if (threadIdx.x == 0) partial[tab.chunk_base + b] = s;
}

__global__ void __launch_bounds__(1024) sum_partials(const double* partial, int64_t n, double* out) {
    __shared__ double red[1024];
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += 1024) s += partial[i];
    red[threadIdx.x] = s;
    __syncthreads();
    for (int w = 512; w > 0; w >>= 1) {
        if (static_cast<int>(threadIdx.x) < w) red[threadIdx.x] += red[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) *out = sqrt(red[0]);
}

__global__ void __launch_bounds__(kThreads) scale_kernel(const __grid_constant__ ListTable tab, double alpha) {
    const int64_t b = blockIdx.x;
    const ListTensor& T = tab.t[find_entry(tab, b)];
    const int64_t start = (b - T.chunk0) * kChunk;
    const int len = static_cast<int>(min(kChunk, T.n - start));  // <= kChunk: 32-bit indices below
    switch (T.dtype) {
        case DS_OPTIM_DT_F32: {
            float* x = static_cast<float*>(T.data) + start;
            for (int i = threadIdx.x; i < len; i += kThreads) x[i] = __double2float_rn(static_cast<double>(x[i]) * alpha);
            break;
        }
        case DS_OPTIM_DT_F64: {
            double* x = static_cast<double*>(T.data) + start;
            for (int i = threadIdx.x; i < len; i += kThreads) x[i] *= alpha;
            break;
        }
        case DS_OPTIM_DT_F16: {
            uint16_t* x = static_cast<uint16_t*>(T.data) + start;
            for (int i = threadIdx.x; i < len; i += kThreads) x[i] = dsoptim::f64_to_f16(dsoptim::f16_to_f64(x[i]) * alpha);
            break;
        }
        case DS_OPTIM_DT_BF16: {
            uint16_t* x = static_cast<uint16_t*>(T.data) + start;
            for (int i = threadIdx.x; i < len; i += kThreads) x[i] = dsoptim::f64_to_bf16(dsoptim::bf16_to_f64(x[i]) * alpha);
            break;
        }
        default: break;
    }
}

__global__ void __launch_bounds__(kThreads) nonfinite_kernel(const __grid_constant__ ListTable tab, int* flag) {
    // Skip the work once another block found a bad value; one read per block so that every thread
    // of the block takes the same branch (the block ends in a barrier).
    __shared__ int stop;
    if (threadIdx.x == 0) stop = *reinterpret_cast<volatile int*>(flag);
    __syncthreads();
    if (stop) return;
    const int64_t b = blockIdx.x;
    const ListTensor& T = tab.t[find_entry(tab, b)];
    const int64_t start = (b - T.chunk0) * kChunk;
    const int len = static_cast<int>(min(kChunk, T.n - start));  // <= kChunk: 32-bit indices below
    bool bad = false;
    if (T.dtype == DS_OPTIM_DT_F64) {
        const double* x = static_cast<const double*>(T.data) + start;
        for (int i = threadIdx.x; i < len; i += kThreads) bad |= !isfinite(x[i]);
    } else {
        const char* base = static_cast<const char*>(T.data) + start * (T.dtype == DS_OPTIM_DT_F32 ? 4 : 2);
        for (int i = threadIdx.x; i < len; i += kThreads) bad |= !isfinite(elem_f(base, T.dtype, i));
    }
    if (__syncthreads_or(bad) && threadIdx.x == 0) *flag = 1;
}

template <class S, class D>
__global__ void __launch_bounds__(kThreads) cast_kernel(const void* src, void* dst, int64_t n, double scale) {
    using SE = dsoptim::Elem<S>;
    using DE = dsoptim::Elem<D>;
    const typename SE::S* s = static_cast<const typename SE::S*>(src);
    typename DE::S* d = static_cast<typename DE::S*>(dst);
    const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
    for (int64_t i = blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x; i < n; i += stride)
        d[i] = DE::put(SE::get(s[i]) * scale);
}

template <class S>
int launch_cast_to(const ds_optim_cast_args_t& a, unsigned grid) {
    const double scale = static_cast<double>(a.scale);
    switch (a.dst_dtype) {
        case DS_OPTIM_DT_F32: cast_kernel<S, float><<<grid, kThreads, 0, 0>>>(a.src, a.dst, a.numel, scale); break;
        case DS_OPTIM_DT_F64: cast_kernel<S, double><<<grid, kThreads, 0, 0>>>(a.src, a.dst, a.numel, scale); break;
        case DS_OPTIM_DT_F16: cast_kernel<S, dsoptim::F16><<<grid, kThreads, 0, 0>>>(a.src, a.dst, a.numel, scale); break;
        case DS_OPTIM_DT_BF16: cast_kernel<S, dsoptim::BF16><<<grid, kThreads, 0, 0>>>(a.src, a.dst, a.numel, scale); break;
        case DS_OPTIM_DT_E4M3: cast_kernel<S, dsoptim::E4M3><<<grid, kThreads, 0, 0>>>(a.src, a.dst, a.numel, scale); break;
        case DS_OPTIM_DT_E5M2: cast_kernel<S, dsoptim::E5M2><<<grid, kThreads, 0, 0>>>(a.src, a.dst, a.numel, scale); break;
        default: return invalid("cast: unsupported dst dtype " + std::to_string(a.dst_dtype));
    }
    return check_launch("cast kernel");
}

// ---- op entry points --------------------------------------------------------------------------

int op_global_norm(int32_t dev, const void* args) {
    if (int rc = use_device(dev)) return rc;
    const ds_optim_list_args_t& a = *static_cast<const ds_optim_list_args_t*>(args);
    std::vector<ListTable> tables;
    std::vector<int64_t> chunks;
    build_tables(a, tables, chunks);
    if (tables.empty()) {
        *a.out = 0.0;
        return DS_BACKEND_OK;
    }
    int64_t total = 0;
    for (int64_t c : chunks) total += c;
    Scratch s;  // [result][partials...]
    if (int rc = s.alloc(sizeof(double) * static_cast<size_t>(total + 1), "cudaMallocAsync (global norm partials)")) return rc;
    double* out = static_cast<double*>(s.p);
    double* partial = out + 1;
    for (size_t k = 0; k < tables.size(); ++k) {
        sumsq_kernel<<<static_cast<unsigned>(chunks[k]), kThreads, 0, 0>>>(tables[k], partial);
        if (int rc = check_launch("global norm kernel")) return rc;
    }
    sum_partials<<<1, 1024, 0, 0>>>(partial, total, out);
    if (int rc = check_launch("global norm final kernel")) return rc;
    return check(cudaMemcpy(a.out, out, sizeof(double), cudaMemcpyDeviceToHost), "cudaMemcpy (global norm)");
}

int op_scale(int32_t dev, const void* args) {
    if (int rc = use_device(dev)) return rc;
    const ds_optim_list_args_t& a = *static_cast<const ds_optim_list_args_t*>(args);
    std::vector<ListTable> tables;
    std::vector<int64_t> chunks;
    build_tables(a, tables, chunks);
    for (size_t k = 0; k < tables.size(); ++k) {
        scale_kernel<<<static_cast<unsigned>(chunks[k]), kThreads, 0, 0>>>(tables[k], a.alpha);
        if (int rc = check_launch("scale kernel")) return rc;
    }
    return DS_BACKEND_OK;
}

int op_find_nonfinite(int32_t dev, const void* args) {
    if (int rc = use_device(dev)) return rc;
    const ds_optim_list_args_t& a = *static_cast<const ds_optim_list_args_t*>(args);
    std::vector<ListTable> tables;
    std::vector<int64_t> chunks;
    build_tables(a, tables, chunks);
    *a.flag = 0;
    if (tables.empty()) return DS_BACKEND_OK;
    Scratch s;
    if (int rc = s.alloc(sizeof(int), "cudaMallocAsync (non-finite flag)")) return rc;
    int* flag = static_cast<int*>(s.p);
    if (int rc = check(cudaMemsetAsync(flag, 0, sizeof(int), 0), "cudaMemsetAsync (non-finite flag)")) return rc;
    for (size_t k = 0; k < tables.size(); ++k) {
        nonfinite_kernel<<<static_cast<unsigned>(chunks[k]), kThreads, 0, 0>>>(tables[k], flag);
        if (int rc = check_launch("find non-finite kernel")) return rc;
    }
    int f = 0;
    if (int rc = check(cudaMemcpy(&f, flag, sizeof f, cudaMemcpyDeviceToHost), "cudaMemcpy (non-finite flag)")) return rc;
    *a.flag = f ? 1 : 0;
    return DS_BACKEND_OK;
}

int op_cast(int32_t dev, const void* args) {
    if (int rc = use_device(dev)) return rc;
    const ds_optim_cast_args_t& a = *static_cast<const ds_optim_cast_args_t*>(args);
    if (a.numel <= 0) return DS_BACKEND_OK;
    const int64_t want = (a.numel + kThreads - 1) / kThreads;
    const unsigned grid = static_cast<unsigned>(want < 65536 * 8 ? want : 65536 * 8);
    switch (a.src_dtype) {
        case DS_OPTIM_DT_F32: return launch_cast_to<float>(a, grid);
        case DS_OPTIM_DT_F64: return launch_cast_to<double>(a, grid);
        case DS_OPTIM_DT_F16: return launch_cast_to<dsoptim::F16>(a, grid);
        case DS_OPTIM_DT_BF16: return launch_cast_to<dsoptim::BF16>(a, grid);
        case DS_OPTIM_DT_E4M3: return launch_cast_to<dsoptim::E4M3>(a, grid);
        case DS_OPTIM_DT_E5M2: return launch_cast_to<dsoptim::E5M2>(a, grid);
        default: return invalid("cast: unsupported src dtype " + std::to_string(a.src_dtype));
    }
}

}  // namespace
}  // namespace optim

void register_optim_ops(ds_backend_op_fn* table) {
    table[DS_KOP_OPTIM_STEP] = &optim::optim_step;
    table[DS_KOP_GLOBAL_NORM] = &optim::op_global_norm;
    table[DS_KOP_SCALE] = &optim::op_scale;
    table[DS_KOP_FIND_NONFINITE] = &optim::op_find_nonfinite;
    table[DS_KOP_CAST] = &optim::op_cast;
}

}  // namespace dscuda
