// Devices and tensors.
#include <cstring>

#include "capi/guard.hpp"
#include "capi/handles.hpp"
#include "core/dtype.hpp"

using ds::capi::check_handle;
using ds::capi::check_out;
using ds::capi::guard;

namespace {

ds_tensor_t* publish_tensor(ds::Tensor t) { return ds::capi::publish(new ds_tensor{std::move(t)}); }

ds::device::Device make_device(int32_t type, int32_t index) {
    if (type != DS_DEV_CPU && type != DS_DEV_CUDA)
        ds::fail(DS_ERR_INVALID_ARG, "dev_type=%d is not DS_DEV_CPU (1) or DS_DEV_CUDA (2)", type);
    return {type, index};
}

// (buf, cap, &len) output of ndim int64 values.
void write_dims(const ds::Tensor& t, const int64_t* values, int64_t* buf, uint64_t cap, uint64_t* len) {
    check_out(len, "len");
    *len = static_cast<uint64_t>(t.ndim);
    if (cap < static_cast<uint64_t>(t.ndim))
        ds::fail(DS_ERR_BUFFER_TOO_SMALL, "cap=%llu but the tensor has %d dimensions", static_cast<unsigned long long>(cap), t.ndim);
    if (t.ndim > 0 && !buf) ds::fail(DS_ERR_INVALID_ARG, "buf is NULL but cap=%llu", static_cast<unsigned long long>(cap));
    if (t.ndim > 0) std::memcpy(buf, values, sizeof(int64_t) * static_cast<size_t>(t.ndim));
}

}  // namespace

extern "C" {

void ds_dev_info_init(ds_dev_info_t* info) {
    if (!info) return;
    std::memset(info, 0, sizeof *info);
    info->struct_size = sizeof *info;
    info->abi_version = DS_ABI_VERSION;
}

ds_status_t ds_dev_count(int32_t type, int32_t* out) {
    return guard("ds_dev_count", [&] {
        check_out(out, "out");
        *out = ds::device::count(type);
    });
}

ds_status_t ds_dev_get_info(int32_t type, int32_t index, ds_dev_info_t* info) {
    return guard("ds_dev_get_info", [&] {
        check_out(info, "info");
        if (info->struct_size < 2 * sizeof(uint32_t) + 2 * sizeof(int32_t))
            ds::fail(DS_ERR_VERSION, "info->struct_size=%u is too small; call ds_dev_info_init first", info->struct_size);
        if (info->abi_version > DS_ABI_VERSION)
            ds::fail(DS_ERR_VERSION, "info->abi_version=%u is newer than this library's ABI %d", info->abi_version, DS_ABI_VERSION);
        ds::device::get_info(make_device(type, index), info);
    });
}

ds_status_t ds_dev_synchronize(int32_t type, int32_t index) {
    return guard("ds_dev_synchronize", [&] { ds::device::synchronize(make_device(type, index)); });
}

ds_status_t ds_dtype_size(int32_t dtype, uint64_t* out_bytes) {
    return guard("ds_dtype_size", [&] {
        check_out(out_bytes, "out_bytes");
        if (!ds::dtype_is_valid(dtype)) ds::fail(DS_ERR_INVALID_ARG, "dtype=%d is not a ds_dtype value (0..9)", dtype);
        *out_bytes = ds::dtype_size(dtype);
    });
}

const char* ds_dtype_name(int32_t dtype) { return ds::dtype_name(dtype); }

ds_status_t ds_tensor_create(int32_t dtype, int32_t ndim, const int64_t* shape, int32_t dev_type, int32_t dev_index,
                             ds_tensor_t** out) {
    return guard("ds_tensor_create", [&] {
        check_out(out, "out");
        *out = nullptr;
        *out = publish_tensor(ds::Tensor::create(dtype, ndim, shape, make_device(dev_type, dev_index)));
    });
}

ds_status_t ds_tensor_wrap(void* data, int32_t dtype, int32_t ndim, const int64_t* shape, const int64_t* strides,
                           int32_t dev_type, int32_t dev_index, ds_tensor_t** out) {
    return guard("ds_tensor_wrap", [&] {
        check_out(out, "out");
        *out = nullptr;
        *out = publish_tensor(ds::Tensor::wrap(data, dtype, ndim, shape, strides, make_device(dev_type, dev_index)));
    });
}

ds_status_t ds_tensor_from_dlpack(struct DLManagedTensor* src, ds_tensor_t** out) {
    return guard("ds_tensor_from_dlpack", [&] {
        check_out(out, "out");
        *out = nullptr;
        ds::Tensor t = ds::Tensor::from_dlpack(src);
        try {
            *out = publish_tensor(std::move(t));
        } catch (...) {
            // Ownership was not transferred: do not call the producer's deleter on the way out.
            t.storage->release = nullptr;
            throw;
        }
    });
}

ds_status_t ds_tensor_to_dlpack(ds_tensor_t* t, struct DLManagedTensor** out) {
    return guard("ds_tensor_to_dlpack", [&] {
        check_out(out, "out");
        *out = nullptr;
        *out = check_handle(t, "t")->t.to_dlpack();
    });
}

void ds_tensor_destroy(ds_tensor_t* t) { ds::capi::retire(t); }

ds_status_t ds_tensor_get_dtype(const ds_tensor_t* t, int32_t* out) {
    return guard("ds_tensor_get_dtype", [&] {
        check_out(out, "out");
        *out = check_handle(t, "t")->t.dtype;
    });
}

ds_status_t ds_tensor_get_ndim(const ds_tensor_t* t, int32_t* out) {
    return guard("ds_tensor_get_ndim", [&] {
        check_out(out, "out");
        *out = check_handle(t, "t")->t.ndim;
    });
}

ds_status_t ds_tensor_get_shape(const ds_tensor_t* t, int64_t* buf, uint64_t cap, uint64_t* len) {
    return guard("ds_tensor_get_shape", [&] {
        const ds::Tensor& x = check_handle(t, "t")->t;
        write_dims(x, x.shape.data(), buf, cap, len);
    });
}

ds_status_t ds_tensor_get_strides(const ds_tensor_t* t, int64_t* buf, uint64_t cap, uint64_t* len) {
    return guard("ds_tensor_get_strides", [&] {
        const ds::Tensor& x = check_handle(t, "t")->t;
        write_dims(x, x.strides.data(), buf, cap, len);
    });
}

ds_status_t ds_tensor_get_numel(const ds_tensor_t* t, int64_t* out) {
    return guard("ds_tensor_get_numel", [&] {
        check_out(out, "out");
        *out = check_handle(t, "t")->t.numel();
    });
}

ds_status_t ds_tensor_get_nbytes(const ds_tensor_t* t, uint64_t* out) {
    return guard("ds_tensor_get_nbytes", [&] {
        check_out(out, "out");
        *out = check_handle(t, "t")->t.nbytes();
    });
}

ds_status_t ds_tensor_get_data(const ds_tensor_t* t, void** out) {
    return guard("ds_tensor_get_data", [&] {
        check_out(out, "out");
        *out = check_handle(t, "t")->t.data;
    });
}

ds_status_t ds_tensor_get_device(const ds_tensor_t* t, int32_t* out_type, int32_t* out_index) {
    return guard("ds_tensor_get_device", [&] {
        check_out(out_type, "out_type");
        check_out(out_index, "out_index");
        const ds::Tensor& x = check_handle(t, "t")->t;
        *out_type = x.dev.type;
        *out_index = x.dev.index;
    });
}

ds_status_t ds_tensor_is_contiguous(const ds_tensor_t* t, int32_t* out) {
    return guard("ds_tensor_is_contiguous", [&] {
        check_out(out, "out");
        *out = check_handle(t, "t")->t.contiguous() ? 1 : 0;
    });
}

ds_status_t ds_tensor_copy(ds_tensor_t* dst, const ds_tensor_t* src) {
    return guard("ds_tensor_copy", [&] {
        ds_tensor_t* d = check_handle(dst, "dst");
        const ds_tensor_t* s = check_handle(src, "src");
        d->t.copy_from(s->t);
    });
}

ds_status_t ds_tensor_clone(const ds_tensor_t* src, int32_t dev_type, int32_t dev_index, ds_tensor_t** out) {
    return guard("ds_tensor_clone", [&] {
        check_out(out, "out");
        *out = nullptr;
        const ds::Tensor& s = check_handle(src, "src")->t;
        ds::Tensor t = ds::Tensor::create(s.dtype, s.ndim, s.shape.data(), make_device(dev_type, dev_index));
        t.copy_from(s);
        *out = publish_tensor(std::move(t));
    });
}

ds_status_t ds_tensor_fill(ds_tensor_t* t, double value) {
    return guard("ds_tensor_fill", [&] { check_handle(t, "t")->t.fill(value); });
}

}  // extern "C"
