#include "device/tensor.hpp"

#include <dlpack/dlpack.h>

#include <cstring>
#include <vector>

#include "core/dtype.hpp"
#include "core/error.hpp"

namespace ds {

namespace {

// Validate (dtype, ndim, shape, strides) and fill the view fields of t.
void set_layout(Tensor& t, int32_t dtype, int32_t ndim, const int64_t* shape, const int64_t* strides) {
    if (!dtype_is_valid(dtype)) fail(DS_ERR_INVALID_ARG, "dtype=%d is not a ds_dtype value (0..9)", dtype);
    if (ndim < 0 || ndim > DS_TENSOR_MAX_DIMS)
        fail(DS_ERR_INVALID_ARG, "ndim=%d is outside [0, %d]", ndim, DS_TENSOR_MAX_DIMS);
    if (ndim > 0 && !shape) fail(DS_ERR_INVALID_ARG, "shape is NULL but ndim=%d", ndim);
    t.dtype = dtype;
    t.ndim = ndim;
    // Overflow-checked element count: numel * dtype size must fit in int64.
    const int64_t limit = INT64_MAX / static_cast<int64_t>(dtype_size(dtype));
    int64_t numel = 1;
    for (int32_t i = 0; i < ndim; ++i) {
        if (shape[i] < 0) fail(DS_ERR_INVALID_ARG, "shape[%d]=%lld is negative", i, static_cast<long long>(shape[i]));
        if (shape[i] > 0 && numel > limit / shape[i])
            fail(DS_ERR_INVALID_ARG, "shape[%d]=%lld makes the tensor larger than 2^63 bytes", i, static_cast<long long>(shape[i]));
        numel *= shape[i];
        t.shape[i] = shape[i];
    }
    int64_t stride = 1;
    for (int32_t i = ndim - 1; i >= 0; --i) {
        t.strides[i] = strides ? strides[i] : stride;
        stride *= t.shape[i] > 0 ? t.shape[i] : 1;
    }
}

// Byte offset of the element at linear index `linear` (row-major order over shape) in view t.
int64_t element_offset(const Tensor& t, int64_t linear) {
    int64_t off = 0;
    for (int32_t d = t.ndim - 1; d >= 0; --d) {
        int64_t idx = linear % t.shape[d];
        linear /= t.shape[d];
        off += idx * t.strides[d];
    }
    return off * static_cast<int64_t>(dtype_size(t.dtype));
}

struct DlpackExport {
    DLManagedTensor managed;
    std::shared_ptr<Storage> storage;
    int64_t shape[DS_TENSOR_MAX_DIMS];
    int64_t strides[DS_TENSOR_MAX_DIMS];
};

void dlpack_export_deleter(DLManagedTensor* self) {
    delete static_cast<DlpackExport*>(self->manager_ctx);
}

}  // namespace

int64_t Tensor::numel() const {
    int64_t n = 1;
    for (int32_t i = 0; i < ndim; ++i) n *= shape[i];
    return n;
}

uint64_t Tensor::nbytes() const { return static_cast<uint64_t>(numel()) * dtype_size(dtype); }

bool Tensor::contiguous() const {
    if (numel() == 0) return true;  // an empty tensor has no layout to get wrong
    int64_t expect = 1;
    for (int32_t i = ndim - 1; i >= 0; --i) {
        if (shape[i] != 1 && strides[i] != expect) return false;
        expect *= shape[i];
    }
    return true;
}

Tensor Tensor::create(int32_t dtype, int32_t ndim, const int64_t* shape, device::Device dev) {
    Tensor t;
    set_layout(t, dtype, ndim, shape, nullptr);
    device::check(dev, "tensor");
    t.dev = dev;
    void* p = device::alloc(dev, t.nbytes());
    auto storage = std::make_shared<Storage>();
    storage->dev = dev;
    storage->release = [dev, p] { device::release(dev, p); };
    t.storage = std::move(storage);
    t.data = p;
    return t;
}

Tensor Tensor::wrap(void* data, int32_t dtype, int32_t ndim, const int64_t* shape, const int64_t* strides,
                    device::Device dev) {
    Tensor t;
    set_layout(t, dtype, ndim, shape, strides);
    if (!data && t.numel() > 0) fail(DS_ERR_INVALID_ARG, "data is NULL for a tensor of %lld elements", static_cast<long long>(t.numel()));
    device::check(dev, "tensor");
    t.dev = dev;
    t.data = data;
    t.storage = std::make_shared<Storage>();
    t.storage->dev = dev;
    return t;
}

Tensor Tensor::from_dlpack(DLManagedTensor* src) {
    if (!src) fail(DS_ERR_INVALID_ARG, "src is NULL");
    const DLTensor& dl = src->dl_tensor;
    if (dl.dtype.lanes != 1)
        fail(DS_ERR_UNSUPPORTED, "src->dl_tensor.dtype.lanes=%u: vector dtypes are not supported", dl.dtype.lanes);
    int32_t dtype = dtype_from_dlpack(dl.dtype.code, dl.dtype.bits);
    if (dtype < 0)
        fail(DS_ERR_UNSUPPORTED, "src->dl_tensor.dtype (code=%u, bits=%u) has no ds_dtype", dl.dtype.code, dl.dtype.bits);
    device::Device dev;
    switch (dl.device.device_type) {
        case kDLCPU:
        case kDLCUDAHost: dev = {DS_DEV_CPU, 0}; break;  // pinned host memory is host memory
        case kDLCUDA: dev = {DS_DEV_CUDA, dl.device.device_id}; break;
        default:
            fail(DS_ERR_UNSUPPORTED, "src->dl_tensor.device.device_type=%d: only CPU (1), CUDA (2) and CUDA host (3) are supported",
                 static_cast<int>(dl.device.device_type));
    }
    void* data = dl.data ? static_cast<char*>(dl.data) + dl.byte_offset : nullptr;
    Tensor t = wrap(data, dtype, dl.ndim, dl.shape, dl.strides, dev);
    // Only now, with nothing left to fail, take ownership.
    if (src->deleter) t.storage->release = [src] { src->deleter(src); };
    return t;
}

DLManagedTensor* Tensor::to_dlpack() const {
    auto* ex = new DlpackExport();
    ex->storage = storage;
    for (int32_t i = 0; i < ndim; ++i) {
        ex->shape[i] = shape[i];
        ex->strides[i] = strides[i];
    }
    DLTensor& dl = ex->managed.dl_tensor;
    dl.data = data;
    dl.device.device_type = dev.type == DS_DEV_CUDA ? kDLCUDA : kDLCPU;
    dl.device.device_id = dev.index;
    dl.ndim = ndim;
    dtype_to_dlpack(dtype, &dl.dtype.code, &dl.dtype.bits);
    dl.dtype.lanes = 1;
    dl.shape = ex->shape;
    dl.strides = ex->strides;
    dl.byte_offset = 0;
    ex->managed.manager_ctx = ex;
    ex->managed.deleter = dlpack_export_deleter;
    return &ex->managed;
}

void Tensor::copy_from(const Tensor& src) {
    if (src.dtype != dtype)
        fail(DS_ERR_INVALID_ARG, "dtype differs: dst is %s, src is %s (ds_tensor_copy does not convert)", dtype_name(dtype),
             dtype_name(src.dtype));
    if (src.ndim != ndim || !std::equal(shape.begin(), shape.begin() + ndim, src.shape.begin()))
        fail(DS_ERR_INVALID_ARG, "shape differs: dst has %d dims, src has %d dims, or a dimension differs", ndim, src.ndim);
    const int64_t n = numel();
    if (n == 0) return;
    const uint32_t es = dtype_size(dtype);
    if (contiguous() && src.contiguous()) {
        device::copy(dev, data, src.dev, src.data, nbytes());
        return;
    }
    if (dev.type != DS_DEV_CPU || src.dev.type != DS_DEV_CPU)
        fail(DS_ERR_UNSUPPORTED, "a strided (non-contiguous) tensor on CUDA cannot be copied yet; make both sides contiguous");
    auto* d = static_cast<char*>(data);
    const auto* s = static_cast<const char*>(src.data);
    // Copying through a temporary keeps overlapping views (dst and src on the same storage) correct.
    std::vector<char> tmp(static_cast<size_t>(n) * es);
    for (int64_t i = 0; i < n; ++i) std::memcpy(tmp.data() + i * es, s + element_offset(src, i), es);
    for (int64_t i = 0; i < n; ++i) std::memcpy(d + element_offset(*this, i), tmp.data() + i * es, es);
}

void Tensor::fill(double value) {
    uint64_t pattern = 0;
    encode_scalar(dtype, value, &pattern);
    const int64_t n = numel();
    if (n == 0) return;
    const uint32_t es = dtype_size(dtype);
    if (contiguous()) {
        device::fill(dev, data, es, static_cast<uint64_t>(n), pattern);
        return;
    }
    if (dev.type != DS_DEV_CPU)
        fail(DS_ERR_UNSUPPORTED, "a strided (non-contiguous) tensor on CUDA cannot be filled yet");
    auto* d = static_cast<char*>(data);
    for (int64_t i = 0; i < n; ++i) std::memcpy(d + element_offset(*this, i), &pattern, es);
}

}  // namespace ds
