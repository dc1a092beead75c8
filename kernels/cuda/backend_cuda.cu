// libdsabi_cuda.so: the CUDA device backend behind kernels/backend_abi.h.
//
// Loaded by libdsabi at init with dlopen. It must load on a machine without a GPU or driver: the
// CUDA runtime is linked statically and reports "no device" through cudaGetDeviceCount, which this
// module turns into a device count of zero.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "backend_abi.h"
#include "cuda_common.cuh"

namespace dscuda {

namespace {
thread_local std::string t_error;
}

void set_error_text(const std::string& text) { t_error = text; }

int set_error(int rc, const char* what, cudaError_t err) {
    t_error = std::string(what) + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
    cudaGetLastError();  // clear the non-sticky error state
    return rc;
}

int check(cudaError_t err, const char* what) {
    if (err == cudaSuccess) return DS_BACKEND_OK;
    if (err == cudaErrorMemoryAllocation) return set_error(DS_BACKEND_NOMEM, what, err);
    if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver || err == cudaErrorInvalidDevice)
        return set_error(DS_BACKEND_NO_DEVICE, what, err);
    return set_error(DS_BACKEND_ERR, what, err);
}

int use_device(int32_t dev) {
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) return check(err, "cudaGetDeviceCount");
    if (dev < 0 || dev >= n) {
        t_error = "CUDA device index " + std::to_string(dev) + " out of range [0, " + std::to_string(n) + ")";
        return DS_BACKEND_NO_DEVICE;
    }
    return check(cudaSetDevice(dev), "cudaSetDevice");
}

const char* last_error_text() { return t_error.c_str(); }

}  // namespace dscuda

namespace {

using dscuda::check;
using dscuda::set_error;
using dscuda::use_device;

template <class T>
__global__ void fill_kernel(T* __restrict__ p, uint64_t n, T value) {
    uint64_t i = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x;
    uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
    for (; i < n; i += stride) p[i] = value;
}

template <class T>
int launch_fill(void* ptr, uint64_t n, uint64_t pattern) {
    T value;
    std::memcpy(&value, &pattern, sizeof(T));  // little-endian: the low bytes
    const int threads = 256;
    uint64_t blocks = (n + threads - 1) / threads;
    if (blocks > 65535ull * 16) blocks = 65535ull * 16;
    fill_kernel<T><<<static_cast<unsigned>(blocks), threads>>>(static_cast<T*>(ptr), n, value);
    int rc = check(cudaGetLastError(), "fill kernel launch");
    if (rc) return rc;
    return check(cudaDeviceSynchronize(), "fill kernel");
}

int be_init() {
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess && err != cudaErrorNoDevice && err != cudaErrorInsufficientDriver)
        return check(err, "cudaGetDeviceCount");
    if (err != cudaSuccess) cudaGetLastError();
    return DS_BACKEND_OK;
}

int be_device_count(int32_t* out) {
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        // No driver or no GPU is a normal state for this module: zero devices.
        check(err, "cudaGetDeviceCount");
        n = 0;
    }
    *out = n;
    return DS_BACKEND_OK;
}

int be_device_info(int32_t dev, ds_backend_dev_info_t* out) {
    if (int rc = use_device(dev)) return rc;
    cudaDeviceProp prop;
    if (int rc = check(cudaGetDeviceProperties(&prop, dev), "cudaGetDeviceProperties")) return rc;
    std::memset(out, 0, sizeof *out);
    std::snprintf(out->name, sizeof out->name, "%.127s", prop.name);
    size_t free_b = 0, total_b = 0;
    if (int rc = check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo")) return rc;
    out->total_memory_bytes = total_b;
    out->free_memory_bytes = free_b;
    out->compute_capability_major = prop.major;
    out->compute_capability_minor = prop.minor;
    out->multiprocessor_count = prop.multiProcessorCount;
    return DS_BACKEND_OK;
}

int be_malloc(int32_t dev, uint64_t bytes, void** out) {
    if (int rc = use_device(dev)) return rc;
    void* p = nullptr;
    if (int rc = check(cudaMalloc(&p, bytes ? bytes : 1), "cudaMalloc")) return rc;
    *out = p;
    return DS_BACKEND_OK;
}

int be_free(int32_t dev, void* ptr) {
    if (int rc = use_device(dev)) return rc;
    return check(cudaFree(ptr), "cudaFree");
}

int be_memcpy(int32_t dev, void* dst, const void* src, uint64_t bytes, int32_t kind) {
    if (int rc = use_device(dev)) return rc;
    cudaMemcpyKind k = kind == DS_BACKEND_H2D ? cudaMemcpyHostToDevice
                       : kind == DS_BACKEND_D2H ? cudaMemcpyDeviceToHost
                                                : cudaMemcpyDeviceToDevice;
    return check(cudaMemcpy(dst, src, bytes, k), "cudaMemcpy");
}

int be_memcpy_peer(int32_t dst_dev, void* dst, int32_t src_dev, const void* src, uint64_t bytes) {
    if (int rc = use_device(dst_dev)) return rc;
    if (int rc = check(cudaMemcpyPeer(dst, dst_dev, src, src_dev, bytes), "cudaMemcpyPeer")) return rc;
    return check(cudaDeviceSynchronize(), "cudaMemcpyPeer");
}

int be_fill(int32_t dev, void* ptr, uint32_t elem_size, uint64_t n, uint64_t pattern) {
    if (int rc = use_device(dev)) return rc;
    if (n == 0) return DS_BACKEND_OK;
    switch (elem_size) {
        case 1: return launch_fill<uint8_t>(ptr, n, pattern);
        case 2: return launch_fill<uint16_t>(ptr, n, pattern);
        case 4: return launch_fill<uint32_t>(ptr, n, pattern);
        case 8: return launch_fill<uint64_t>(ptr, n, pattern);
        default: dscuda::set_error_text("fill: element size " + std::to_string(elem_size) + " not in {1,2,4,8}"); return DS_BACKEND_INVALID;
    }
}

int be_synchronize(int32_t dev) {
    if (int rc = use_device(dev)) return rc;
    return check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

const char* be_last_error() { return dscuda::last_error_text(); }

int be_versions(int32_t* runtime, int32_t* driver) {
    int r = 0, d = 0;
    cudaRuntimeGetVersion(&r);
    if (cudaDriverGetVersion(&d) != cudaSuccess) d = 0;
    cudaGetLastError();
    *runtime = r;
    *driver = d;
    return DS_BACKEND_OK;
}

int be_host_alloc(uint64_t bytes, void** out) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        cudaGetLastError();
        dscuda::set_error_text("pinned host memory needs a CUDA device");
        return DS_BACKEND_NO_DEVICE;
    }
    void* p = nullptr;
    if (int rc = check(cudaHostAlloc(&p, bytes ? bytes : 1, cudaHostAllocPortable), "cudaHostAlloc")) return rc;
    *out = p;
    return DS_BACKEND_OK;
}

int be_host_free(void* ptr) { return check(cudaFreeHost(ptr), "cudaFreeHost"); }

const ds_backend_v1_t k_table = {
    DS_BACKEND_API_VERSION, sizeof(ds_backend_v1_t), "cuda",
    be_init, be_device_count, be_device_info, be_malloc, be_free, be_memcpy, be_memcpy_peer, be_fill,
    be_synchronize, be_last_error, be_versions, be_host_alloc, be_host_free,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const ds_backend_v1_t* ds_backend_entry(void) { return &k_table; }
