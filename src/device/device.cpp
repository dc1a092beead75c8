#include "device/device.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "core/error.hpp"
#include "core/lib.hpp"
#include "core/log.hpp"

namespace ds::device {

namespace {

constexpr size_t kCpuAlignment = 64;

const ds_backend_v1_t& cuda_or_throw(const char* what) {
    const ds_backend_v1_t* be = lib::cuda();
    if (!be) fail(DS_ERR_NO_DEVICE, "%s: no CUDA device (CUDA backend %s)", what, lib::cuda_status().c_str());
    return *be;
}

// Map a backend return code to a thrown ds::Error with the backend's message.
void check_rc(const ds_backend_v1_t& be, int rc, const char* what) {
    if (rc == DS_BACKEND_OK) return;
    ds_status_t st = rc == DS_BACKEND_NOMEM      ? DS_ERR_DEVICE_NOMEM
                     : rc == DS_BACKEND_NO_DEVICE ? DS_ERR_NO_DEVICE
                     : rc == DS_BACKEND_INVALID   ? DS_ERR_INVALID_ARG
                                                  : DS_ERR_DEVICE;
    fail(st, "%s: %s", what, be.last_error());
}

uint64_t cpu_total_memory() {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

uint64_t cpu_available_memory() {
    std::ifstream in("/proc/meminfo");
    std::string key;
    uint64_t kib = 0;
    std::string unit;
    while (in >> key >> kib >> unit)
        if (key == "MemAvailable:") return kib * 1024;
    long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

std::string cpu_model_name() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("model name", 0) == 0) {
            size_t colon = line.find(':');
            if (colon != std::string::npos) return "cpu: " + line.substr(line.find_first_not_of(' ', colon + 1));
        }
    }
    return "cpu";
}

}  // namespace

int32_t count(int32_t type) {
    if (type == DS_DEV_CPU) return 1;
    if (type == DS_DEV_CUDA) {
        const ds_backend_v1_t* be = lib::cuda();
        if (!be) return 0;
        int32_t n = 0;
        check_rc(*be, be->device_count(&n), "CUDA device count");
        return n;
    }
    fail(DS_ERR_INVALID_ARG, "device type %d is not DS_DEV_CPU (1) or DS_DEV_CUDA (2)", type);
}

void check(const Device& dev, const char* what) {
    int32_t n = count(dev.type);
    if (dev.index < 0 || dev.index >= n) {
        if (dev.type == DS_DEV_CUDA && n == 0)
            fail(DS_ERR_NO_DEVICE, "%s: no CUDA device is present (CUDA backend %s)", what, lib::cuda_status().c_str());
        fail(DS_ERR_NO_DEVICE, "%s: device index %d out of range [0, %d) for %s", what, dev.index, n,
             dev.type == DS_DEV_CPU ? "cpu" : "cuda");
    }
}

void get_info(const Device& dev, ds_dev_info_t* info) {
    check(dev, "device");
    ds_dev_info_t out;
    std::memset(&out, 0, sizeof out);
    out.type = dev.type;
    out.index = dev.index;
    if (dev.type == DS_DEV_CPU) {
        std::snprintf(out.name, sizeof out.name, "%s", cpu_model_name().c_str());
        out.total_memory_bytes = cpu_total_memory();
        out.free_memory_bytes = cpu_available_memory();
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        out.multiprocessor_count = cores > 0 ? static_cast<int32_t>(cores) : 1;
    } else {
        const ds_backend_v1_t& be = cuda_or_throw("device info");
        ds_backend_dev_info_t bi;
        check_rc(be, be.device_info(dev.index, &bi), "CUDA device info");
        std::memcpy(out.name, bi.name, sizeof out.name);
        out.name[sizeof out.name - 1] = '\0';
        out.total_memory_bytes = bi.total_memory_bytes;
        out.free_memory_bytes = bi.free_memory_bytes;
        out.compute_capability_major = bi.compute_capability_major;
        out.compute_capability_minor = bi.compute_capability_minor;
        out.multiprocessor_count = bi.multiprocessor_count;
    }
    // Write only the part of the struct the caller knows about.
    size_t n = std::min<size_t>(info->struct_size, sizeof out) - 2 * sizeof(uint32_t);
    std::memcpy(reinterpret_cast<char*>(info) + 2 * sizeof(uint32_t), reinterpret_cast<const char*>(&out) + 2 * sizeof(uint32_t), n);
}

void synchronize(const Device& dev) {
    check(dev, "synchronize");
    if (dev.type == DS_DEV_CUDA) {
        const ds_backend_v1_t& be = cuda_or_throw("synchronize");
        check_rc(be, be.synchronize(dev.index), "CUDA synchronize");
    }
}

void* alloc(const Device& dev, uint64_t bytes) {
    if (dev.type == DS_DEV_CPU) {
        size_t rounded = (bytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
        if (rounded < bytes) fail(DS_ERR_NOMEM, "allocation of %llu bytes overflows", static_cast<unsigned long long>(bytes));
        void* p = std::aligned_alloc(kCpuAlignment, rounded ? rounded : kCpuAlignment);
        if (!p) fail(DS_ERR_NOMEM, "cannot allocate %llu bytes of host memory", static_cast<unsigned long long>(bytes));
        std::memset(p, 0, rounded);
        return p;
    }
    const ds_backend_v1_t& be = cuda_or_throw("allocate");
    void* p = nullptr;
    check_rc(be, be.malloc(dev.index, bytes, &p), format("cudaMalloc of %llu bytes on cuda:%d", static_cast<unsigned long long>(bytes), dev.index).c_str());
    lib::note_device_alloc();
    int rc = be.fill(dev.index, p, 1, bytes, 0);
    if (rc != DS_BACKEND_OK) {
        release(dev, p);
        check_rc(be, rc, "zero-fill of a new CUDA allocation");
    }
    return p;
}

void release(const Device& dev, void* ptr) noexcept {
    if (!ptr) return;
    if (dev.type == DS_DEV_CPU) {
        std::free(ptr);
        return;
    }
    const ds_backend_v1_t* be = lib::cuda();
    if (!be) return;
    if (be->free(dev.index, ptr) != DS_BACKEND_OK) log(DS_LOG_ERROR, "cudaFree failed: %s", be->last_error());
    lib::note_device_free();
}

void* alloc_pinned(uint64_t bytes) {
    const ds_backend_v1_t& be = cuda_or_throw("pinned host memory");
    void* p = nullptr;
    check_rc(be, be.host_alloc(bytes, &p),
             format("pinned allocation of %llu bytes", static_cast<unsigned long long>(bytes)).c_str());
    lib::note_device_alloc();
    return p;
}

void release_pinned(void* ptr) noexcept {
    if (!ptr) return;
    const ds_backend_v1_t* be = lib::cuda();
    if (!be) return;
    if (be->host_free(ptr) != DS_BACKEND_OK) log(DS_LOG_ERROR, "cudaFreeHost failed: %s", be->last_error());
    lib::note_device_free();
}

void copy(const Device& dst_dev, void* dst, const Device& src_dev, const void* src, uint64_t bytes) {
    if (bytes == 0) return;
    if (dst_dev.type == DS_DEV_CPU && src_dev.type == DS_DEV_CPU) {
        std::memmove(dst, src, bytes);
        return;
    }
    const ds_backend_v1_t& be = cuda_or_throw("copy");
    int rc;
    if (dst_dev.type == DS_DEV_CUDA && src_dev.type == DS_DEV_CPU)
        rc = be.memcpy(dst_dev.index, dst, src, bytes, DS_BACKEND_H2D);
    else if (dst_dev.type == DS_DEV_CPU)
        rc = be.memcpy(src_dev.index, dst, src, bytes, DS_BACKEND_D2H);
    else if (dst_dev.index == src_dev.index)
        rc = be.memcpy(dst_dev.index, dst, src, bytes, DS_BACKEND_D2D);
    else
        rc = be.memcpy_peer(dst_dev.index, dst, src_dev.index, src, bytes);
    check_rc(be, rc, "CUDA copy");
}

void fill(const Device& dev, void* ptr, uint32_t elem_size, uint64_t n, uint64_t pattern) {
    if (n == 0) return;
    if (dev.type == DS_DEV_CPU) {
        switch (elem_size) {
            case 1: std::memset(ptr, static_cast<int>(pattern & 0xff), n); return;
            case 2: { uint16_t v = static_cast<uint16_t>(pattern); auto* p = static_cast<uint16_t*>(ptr); for (uint64_t i = 0; i < n; ++i) p[i] = v; return; }
            case 4: { uint32_t v = static_cast<uint32_t>(pattern); auto* p = static_cast<uint32_t*>(ptr); for (uint64_t i = 0; i < n; ++i) p[i] = v; return; }
            case 8: { auto* p = static_cast<uint64_t*>(ptr); for (uint64_t i = 0; i < n; ++i) p[i] = pattern; return; }
            default: fail(DS_ERR_INTERNAL, "fill: element size %u", elem_size);
        }
    }
    const ds_backend_v1_t& be = cuda_or_throw("fill");
    check_rc(be, be.fill(dev.index, ptr, elem_size, n, pattern), "CUDA fill");
}

}  // namespace ds::device
