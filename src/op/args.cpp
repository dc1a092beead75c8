#include "op/args.hpp"

#include <dlfcn.h>

#include <mutex>

#include "capi/guard.hpp"
#include "core/dtype.hpp"
#include "core/lib.hpp"
#include "core/log.hpp"

namespace ds::op {
namespace {

Tensor& checked(const ds_tensor_t* h, const char* name) {
    ds_tensor* t = capi::check_handle(h, name);
    if (!t->t.contiguous()) fail(DS_ERR_INVALID_ARG, "%s (%s) is not contiguous; ops need contiguous tensors", name, describe(t->t).c_str());
    return t->t;
}

struct OpsCache {
    std::mutex mutex;
    bool probed = false;
    const ds_backend_ops_v1_t* table = nullptr;
    std::string why;
};

const ds_backend_ops_v1_t* ops_table(std::string* why) {
    static OpsCache c;
    std::lock_guard<std::mutex> lock(c.mutex);
    if (!c.probed) {
        c.probed = true;
        const ds_backend_v1_t* be = lib::cuda();
        if (!be) {
            c.why = "the CUDA backend is not loaded (" + lib::cuda_status() + ")";
        } else {
            // The op table lives in the module that served the device table (see NcclGroup::table).
            Dl_info info;
            void* handle = nullptr;
            if (dladdr(reinterpret_cast<const void*>(be), &info) && info.dli_fname)
                handle = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_LOCAL);
            auto entry = handle ? reinterpret_cast<ds_backend_ops_entry_fn>(dlsym(handle, "ds_backend_ops_entry")) : nullptr;
            const ds_backend_ops_v1_t* t = entry ? entry() : nullptr;
            if (!t)
                c.why = "the CUDA backend module has no op table (ds_backend_ops_entry)";
            else if (t->api_version != DS_BACKEND_OPS_API_VERSION || t->struct_size < sizeof(ds_backend_ops_v1_t))
                c.why = format("the CUDA backend's op table has API version %u; this library needs %d", t->api_version,
                               DS_BACKEND_OPS_API_VERSION);
            else
                c.table = t;
        }
    }
    if (!c.table && why) *why = c.why;
    return c.table;
}

}  // namespace

const Tensor& in(const ds_tensor_t* h, const char* name) { return checked(h, name); }
Tensor& out(ds_tensor_t* h, const char* name) { return checked(h, name); }
const Tensor* opt(const ds_tensor_t* h, const char* name) { return h ? &checked(h, name) : nullptr; }
Tensor* opt_out(ds_tensor_t* h, const char* name) { return h ? &checked(h, name) : nullptr; }

std::vector<Tensor*> list(ds_tensor_t* const* hs, int32_t n, const char* name) {
    if (n < 0) fail(DS_ERR_INVALID_ARG, "n_%s=%d is negative", name, n);
    if (n > 0 && !hs) fail(DS_ERR_INVALID_ARG, "%s is NULL but n_%s=%d", name, name, n);
    std::vector<Tensor*> v;
    v.reserve(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) {
        // The fast path formats nothing: a 1000-tensor optimizer step checks 5000 entries.
        const ds_tensor_t* h = hs[i];
        if (h && handle_is_live(h, ds_tensor::kMagic) && h->t.contiguous()) {
            v.push_back(&const_cast<ds_tensor_t*>(h)->t);
            continue;
        }
        std::string item = format("%s[%d]", name, i);
        v.push_back(&checked(h, item.c_str()));
    }
    return v;
}

std::string shape_str(const Tensor& t) {
    std::string s = "[";
    for (int32_t i = 0; i < t.ndim; ++i) s += (i ? ", " : "") + std::to_string(t.shape[i]);
    return s + "]";
}

std::string describe(const Tensor& t) {
    return std::string(dtype_name(t.dtype)) + shape_str(t) + (t.dev.type == DS_DEV_CUDA ? format(" on cuda:%d", t.dev.index) : "");
}

void expect_dtype(const Tensor& t, const char* name, std::initializer_list<int32_t> allowed) {
    for (int32_t d : allowed)
        if (t.dtype == d) return;
    std::string want;
    for (int32_t d : allowed) want += std::string(want.empty() ? "" : ", ") + dtype_name(d);
    fail(DS_ERR_INVALID_ARG, "%s has dtype %s; expected one of {%s}", name, dtype_name(t.dtype), want.c_str());
}

void expect_float(const Tensor& t, const char* name) { expect_dtype(t, name, {DS_DTYPE_F32, DS_DTYPE_F16, DS_DTYPE_BF16}); }

void expect_same_dtype(const Tensor& t, const char* name, const Tensor& ref, const char* ref_name) {
    if (t.dtype != ref.dtype)
        fail(DS_ERR_INVALID_ARG, "%s has dtype %s but %s has %s; they must match", name, dtype_name(t.dtype), ref_name,
             dtype_name(ref.dtype));
}

void expect_shape(const Tensor& t, const char* name, std::initializer_list<int64_t> shape) {
    bool ok = static_cast<int32_t>(shape.size()) == t.ndim;
    int32_t i = 0;
    for (int64_t d : shape) {
        if (ok && d >= 0 && t.shape[i] != d) ok = false;
        ++i;
    }
    if (ok) return;
    std::string want = "[";
    i = 0;
    for (int64_t d : shape) want += (i++ ? ", " : "") + (d < 0 ? std::string("*") : std::to_string(d));
    want += "]";
    fail(DS_ERR_INVALID_ARG, "%s has shape %s; expected %s", name, shape_str(t).c_str(), want.c_str());
}

void expect_same_shape(const Tensor& t, const char* name, const Tensor& ref, const char* ref_name) {
    bool ok = t.ndim == ref.ndim;
    for (int32_t i = 0; ok && i < t.ndim; ++i) ok = t.shape[i] == ref.shape[i];
    if (!ok)
        fail(DS_ERR_INVALID_ARG, "%s has shape %s but %s has %s; they must match", name, shape_str(t).c_str(),
             ref_name, shape_str(ref).c_str());
}

int64_t last_dim(const Tensor& t, const char* name) {
    if (t.ndim < 1) fail(DS_ERR_INVALID_ARG, "%s is a 0-d tensor; expected at least one dimension", name);
    return t.shape[t.ndim - 1];
}

int64_t rows(const Tensor& t) {
    int64_t n = 1;
    for (int32_t i = 0; i + 1 < t.ndim; ++i) n *= t.shape[i];
    return n;
}

device::Device same_device(std::initializer_list<Named> ts) {
    const Named* first = nullptr;
    for (const Named& n : ts) {
        if (!n.t) continue;
        if (!first) {
            first = &n;
            continue;
        }
        if (!(n.t->dev == first->t->dev))
            fail(DS_ERR_DEVICE_MISMATCH, "%s is %s but %s is %s; all tensors of an op must be on one device", n.name,
                 describe(*n.t).c_str(), first->name, describe(*first->t).c_str());
    }
    if (!first) fail(DS_ERR_INVALID_ARG, "no tensor given");
    return first->t->dev;
}

device::Device same_device(const std::vector<std::vector<Tensor*>*>& lists, const std::vector<const char*>& names) {
    const Tensor* first = nullptr;
    std::string first_name;
    for (size_t l = 0; l < lists.size(); ++l) {
        for (size_t i = 0; i < lists[l]->size(); ++i) {
            const Tensor* t = (*lists[l])[i];
            if (!first) {
                first = t;
                first_name = format("%s[%zu]", names[l], i);
            } else if (!(t->dev == first->dev)) {
                fail(DS_ERR_DEVICE_MISMATCH, "%s[%zu] is %s but %s is %s; all tensors of an op must be on one device",
                     names[l], i, describe(*t).c_str(), first_name.c_str(), describe(*first).c_str());
            }
        }
    }
    return first ? first->dev : device::Device{};
}

bool is_cuda(const device::Device& dev) {
    if (dev.type == DS_DEV_CPU) return false;
    if (dev.type == DS_DEV_CUDA) return true;
    fail(DS_ERR_UNSUPPORTED, "device type %d has no kernels", dev.type);
}

void run_cuda(int32_t kop, int32_t dev, const void* args, const char* what) {
    std::string why;
    const ds_backend_ops_v1_t* t = ops_table(&why);
    if (!t) fail(DS_ERR_UNSUPPORTED, "%s on CUDA: %s", what, why.c_str());
    if (kop < 0 || kop >= t->n_ops || !t->ops[kop])
        fail(DS_ERR_UNSUPPORTED, "%s has no CUDA kernel in this build of the CUDA backend", what);
    int rc = t->ops[kop](dev, args);
    if (rc == DS_BACKEND_OK) return;
    const char* text = lib::cuda()->last_error();
    switch (rc) {
        case DS_BACKEND_NOMEM: fail(DS_ERR_DEVICE_NOMEM, "%s: %s", what, text);
        case DS_BACKEND_NO_DEVICE: fail(DS_ERR_NO_DEVICE, "%s: %s", what, text);
        case DS_BACKEND_INVALID: fail(DS_ERR_INVALID_ARG, "%s: %s", what, text);
        default: fail(DS_ERR_DEVICE, "%s: %s", what, text);
    }
}

}  // namespace ds::op
