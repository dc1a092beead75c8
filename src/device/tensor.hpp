// Tensors: a strided view on reference-counted storage. Storage is released through its own
// deleter (library allocation, nothing for borrowed memory, or the DLPack producer's deleter).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>

#include "device/device.hpp"

struct DLManagedTensor;

namespace ds {

struct Storage {
    device::Device dev;
    std::function<void()> release;  // empty for borrowed memory
    ~Storage() {
        if (release) release();
    }
};

struct Tensor {
    std::shared_ptr<Storage> storage;
    void* data = nullptr;  // first element
    int32_t dtype = DS_DTYPE_F32;
    int32_t ndim = 0;
    std::array<int64_t, DS_TENSOR_MAX_DIMS> shape{};
    std::array<int64_t, DS_TENSOR_MAX_DIMS> strides{};  // in elements
    device::Device dev;

    int64_t numel() const;
    uint64_t nbytes() const;
    bool contiguous() const;

    // Throwing constructors; argument names in messages are those of the C API.
    static Tensor create(int32_t dtype, int32_t ndim, const int64_t* shape, device::Device dev);
    static Tensor wrap(void* data, int32_t dtype, int32_t ndim, const int64_t* shape, const int64_t* strides,
                       device::Device dev);
    static Tensor from_dlpack(DLManagedTensor* src);  // takes ownership only on success
    DLManagedTensor* to_dlpack() const;

    void copy_from(const Tensor& src);
    void fill(double value);
};

}  // namespace ds
