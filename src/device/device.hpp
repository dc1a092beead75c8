// Devices: CPU memory directly, CUDA through the backend module. All functions throw ds::Error.
#pragma once

#include <cstdint>

#include "dsabi.h"

namespace ds::device {

struct Device {
    int32_t type = DS_DEV_CPU;
    int32_t index = 0;
    bool operator==(const Device& o) const { return type == o.type && index == o.index; }
};

int32_t count(int32_t type);
// Throws DS_ERR_INVALID_ARG (unknown type) or DS_ERR_NO_DEVICE (absent or index out of range).
void check(const Device& dev, const char* what);
void get_info(const Device& dev, ds_dev_info_t* info);
void synchronize(const Device& dev);

// Allocation of `bytes` on dev, zero-filled. Never returns nullptr.
void* alloc(const Device& dev, uint64_t bytes);
void release(const Device& dev, void* ptr) noexcept;

// Page-locked host memory for fast transfers; DS_ERR_NO_DEVICE without a GPU. Not zero-filled.
void* alloc_pinned(uint64_t bytes);
void release_pinned(void* ptr) noexcept;

// Copy bytes between any two devices (contiguous ranges).
void copy(const Device& dst_dev, void* dst, const Device& src_dev, const void* src, uint64_t bytes);
// Set n elements of elem_size bytes to pattern.
void fill(const Device& dev, void* ptr, uint32_t elem_size, uint64_t n, uint64_t pattern);

}  // namespace ds::device
