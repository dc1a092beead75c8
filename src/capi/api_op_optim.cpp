// C API: ds_op_* of the optim family (optimizer steps, global norm, scale, non-finite check, cast).
// Arguments are validated here (messages name the C argument, e.g. "grads[3]"); the kernels live in
// kernels/cpu/optim*.cpp and kernels/cuda/ops_optim*.cu.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "capi/guard.hpp"
#include "core/dtype.hpp"
#include "cpu/optim.hpp"
#include "op/args.hpp"
#include "op_optim.h"

static_assert(DS_OPTIM_DT_F32 == DS_DTYPE_F32 && DS_OPTIM_DT_F16 == DS_DTYPE_F16 && DS_OPTIM_DT_BF16 == DS_DTYPE_BF16 &&
                  DS_OPTIM_DT_F64 == DS_DTYPE_F64 && DS_OPTIM_DT_E4M3 == DS_DTYPE_FP8_E4M3 &&
                  DS_OPTIM_DT_E5M2 == DS_DTYPE_FP8_E5M2,
              "op_optim.h dtype codes must equal enum ds_dtype");
static_assert(DS_OPTIM_K_ADAM == DS_OPTIM_ADAM && DS_OPTIM_K_ADAMW == DS_OPTIM_ADAMW && DS_OPTIM_K_LAMB == DS_OPTIM_LAMB &&
                  DS_OPTIM_K_LION == DS_OPTIM_LION && DS_OPTIM_K_SGD == DS_OPTIM_SGD && DS_OPTIM_K_ADAGRAD == DS_OPTIM_ADAGRAD,
              "op_optim.h optimizer codes must equal enum ds_optim_kind");

namespace {

using ds::fail;
using ds::format;
using ds::Tensor;

const char* kind_name(int32_t kind) {
    switch (kind) {
        case DS_OPTIM_ADAM: return "Adam";
        case DS_OPTIM_ADAMW: return "AdamW";
        case DS_OPTIM_LAMB: return "LAMB";
        case DS_OPTIM_LION: return "Lion";
        case DS_OPTIM_SGD: return "SGD";
        case DS_OPTIM_ADAGRAD: return "Adagrad";
        default: return "unknown";
    }
}

bool known_kind(int32_t kind) { return kind >= DS_OPTIM_ADAM && kind <= DS_OPTIM_ADAGRAD; }

// The caller's options over the defaults of its kind (the struct grows at the end: fields past the
// caller's struct_size keep the defaults).
ds_optim_options_t read_optim_options(const ds_optim_options_t* user) {
    if (!user) fail(DS_ERR_INVALID_ARG, "opt is NULL; fill a ds_optim_options_t with ds_optim_options_init(&opt, kind)");
    const uint32_t need = static_cast<uint32_t>(offsetof(ds_optim_options_t, kind) + sizeof(int32_t));
    if (user->struct_size < need)
        fail(DS_ERR_VERSION, "opt->struct_size=%u is too small to hold `kind` (%u bytes); fill the struct with ds_optim_options_init()",
             user->struct_size, need);
    if (user->abi_version > DS_ABI_VERSION)
        fail(DS_ERR_VERSION, "opt->abi_version=%u is newer than this library's ABI %d; link the matching libdsabi",
             user->abi_version, DS_ABI_VERSION);
    if (!known_kind(user->kind))
        fail(DS_ERR_INVALID_ARG, "opt->kind=%d is not a ds_optim_kind (0 Adam, 1 AdamW, 2 LAMB, 3 Lion, 4 SGD, 5 Adagrad)",
             user->kind);
    ds_optim_options_t o;
    ds_optim_options_init(&o, user->kind);
    std::memcpy(static_cast<void*>(&o), static_cast<const void*>(user), std::min<size_t>(user->struct_size, sizeof o));
    o.struct_size = sizeof o;
    o.abi_version = DS_ABI_VERSION;
    return o;
}

void check_hyper(const ds_optim_options_t& o, int64_t step) {
    const char* k = kind_name(o.kind);
    if (step < 1) fail(DS_ERR_INVALID_ARG, "step=%lld: the step number is 1-based (the first step is 1)", static_cast<long long>(step));
    auto nonneg = [&](float v, const char* field) {
        if (!(v >= 0.0f) || !std::isfinite(v))
            fail(DS_ERR_INVALID_ARG, "opt->%s=%g: %s needs a finite value >= 0", field, static_cast<double>(v), k);
    };
    nonneg(o.lr, "lr");
    nonneg(o.weight_decay, "weight_decay");
    if (!std::isfinite(o.grad_scale))
        fail(DS_ERR_INVALID_ARG, "opt->grad_scale=%g: expected a finite value", static_cast<double>(o.grad_scale));
    auto beta = [&](float v, const char* field, bool one_ok) {
        if (!(v >= 0.0f) || !(one_ok ? v <= 1.0f : v < 1.0f))
            fail(DS_ERR_INVALID_ARG, "opt->%s=%g: %s needs a value in [0, 1%s", field, static_cast<double>(v), k, one_ok ? "]" : ")");
    };
    switch (o.kind) {
        case DS_OPTIM_ADAM:
        case DS_OPTIM_ADAMW:
        case DS_OPTIM_LAMB:
            beta(o.beta1, "beta1", false);
            beta(o.beta2, "beta2", false);
            nonneg(o.eps, "eps");
            if (o.kind == DS_OPTIM_LAMB) {
                nonneg(o.min_coeff, "min_coeff");
                nonneg(o.max_coeff, "max_coeff");
                if (o.min_coeff > o.max_coeff)
                    fail(DS_ERR_INVALID_ARG, "opt->min_coeff=%g is larger than opt->max_coeff=%g", static_cast<double>(o.min_coeff),
                         static_cast<double>(o.max_coeff));
            }
            break;
        case DS_OPTIM_LION:
            beta(o.beta1, "beta1", true);
            beta(o.beta2, "beta2", true);
            break;
        case DS_OPTIM_SGD:
            nonneg(o.momentum, "momentum");
            if (!std::isfinite(o.dampening))
                fail(DS_ERR_INVALID_ARG, "opt->dampening=%g: expected a finite value", static_cast<double>(o.dampening));
            if (o.nesterov && (o.momentum <= 0.0f || o.dampening != 0.0f))
                fail(DS_ERR_INVALID_ARG, "opt->nesterov=%d needs opt->momentum > 0 and opt->dampening == 0 (momentum=%g, dampening=%g)",
                     o.nesterov, static_cast<double>(o.momentum), static_cast<double>(o.dampening));
            break;
        case DS_OPTIM_ADAGRAD:
            nonneg(o.eps, "eps");
            nonneg(o.lr_decay, "lr_decay");
            break;
        default: break;
    }
}

void expect_count(int32_t n, const char* list, int32_t want, const char* kind, const char* what) {
    if (n != want) fail(DS_ERR_INVALID_ARG, "n_%s=%d but %s needs %d (%s)", list, n, kind, want, what);
}

bool same_shape(const Tensor& a, const Tensor& b) {
    if (a.ndim != b.ndim) return false;
    for (int32_t d = 0; d < a.ndim; ++d)
        if (a.shape[static_cast<size_t>(d)] != b.shape[static_cast<size_t>(d)]) return false;
    return true;
}

void expect_like(const Tensor& t, const std::string& name, const Tensor& p, const std::string& pname) {
    ds::op::expect_same_shape(t, name.c_str(), p, pname.c_str());
}

// Kernel table entry of a list op: float tensors (f32, f16, bf16, f64) on one device.
std::vector<ds_optim_buf_t> list_bufs(const std::vector<Tensor*>& ts, ds::device::Device* dev) {
    std::vector<ds_optim_buf_t> bufs;
    bufs.reserve(ts.size());
    for (size_t i = 0; i < ts.size(); ++i) {
        const int32_t dt = ts[i]->dtype;
        if (dt != DS_DTYPE_F32 && dt != DS_DTYPE_F16 && dt != DS_DTYPE_BF16 && dt != DS_DTYPE_F64)
            ds::op::expect_dtype(*ts[i], format("tensors[%zu]", i).c_str(),
                                 {DS_DTYPE_F32, DS_DTYPE_F16, DS_DTYPE_BF16, DS_DTYPE_F64});
        ds_optim_buf_t b{};
        b.data = ts[i]->data;
        b.numel = ts[i]->numel();
        b.dtype = ts[i]->dtype;
        bufs.push_back(b);
    }
    std::vector<Tensor*> copy = ts;
    *dev = ds::op::same_device({&copy}, {"tensors"});
    return bufs;
}

}  // namespace

extern "C" {

void ds_optim_options_init(ds_optim_options_t* opt, int32_t kind) {
    if (!opt) return;
    std::memset(static_cast<void*>(opt), 0, sizeof *opt);
    opt->struct_size = sizeof *opt;
    opt->abi_version = DS_ABI_VERSION;
    opt->kind = kind;
    opt->bias_correction = 1;
    opt->grad_scale = 1.0f;
    opt->check_finite = 1;
    switch (kind) {
        case DS_OPTIM_ADAM:
        case DS_OPTIM_ADAMW:
        case DS_OPTIM_LAMB:
            opt->lr = 1e-3f;
            opt->beta1 = 0.9f;
            opt->beta2 = 0.999f;
            opt->eps = 1e-8f;
            opt->weight_decay = kind == DS_OPTIM_ADAMW ? 0.01f : 0.0f;
            if (kind == DS_OPTIM_LAMB) {
                opt->max_coeff = 10.0f;
                opt->min_coeff = 0.01f;
            }
            break;
        case DS_OPTIM_LION:
            opt->lr = 1e-4f;
            opt->beta1 = 0.9f;
            opt->beta2 = 0.99f;
            break;
        case DS_OPTIM_SGD: opt->lr = 1e-3f; break;
        case DS_OPTIM_ADAGRAD:
            opt->lr = 1e-2f;
            opt->eps = 1e-10f;
            break;
        default: break;  // unknown kind: header only; ds_op_optim_step rejects it
    }
}

ds_status_t ds_op_optim_step(const ds_optim_options_t* opt, int64_t step, ds_tensor_t* const* params, int32_t n_params,
                             ds_tensor_t* const* grads, int32_t n_grads, ds_tensor_t* const* state1, int32_t n_state1,
                             ds_tensor_t* const* state2, int32_t n_state2, ds_tensor_t* const* params_lp,
                             int32_t n_params_lp, int32_t* skipped) {
    return ds::capi::guard(__func__, [&] {
        const ds_optim_options_t o = read_optim_options(opt);
        check_hyper(o, step);
        const char* k = kind_name(o.kind);
        std::vector<Tensor*> P = ds::op::list(params, n_params, "params");
        std::vector<Tensor*> G = ds::op::list(grads, n_grads, "grads");
        std::vector<Tensor*> S1 = ds::op::list(state1, n_state1, "state1");
        std::vector<Tensor*> S2 = ds::op::list(state2, n_state2, "state2");
        std::vector<Tensor*> LP = ds::op::list(params_lp, n_params_lp, "params_lp");
        const int32_t n = n_params;
        expect_count(n_grads, "grads", n, k, "one gradient per parameter");
        switch (o.kind) {
            case DS_OPTIM_ADAM:
            case DS_OPTIM_ADAMW:
            case DS_OPTIM_LAMB:
                expect_count(n_state1, "state1", n, k, "one exp_avg per parameter");
                expect_count(n_state2, "state2", n, k, "one exp_avg_sq per parameter");
                break;
            case DS_OPTIM_LION:
                expect_count(n_state1, "state1", n, k, "one exp_avg per parameter");
                expect_count(n_state2, "state2", 0, k, "no second state");
                break;
            case DS_OPTIM_SGD:
                if (o.momentum != 0.0f)
                    expect_count(n_state1, "state1", n, k, "one momentum buffer per parameter when opt->momentum != 0");
                else
                    expect_count(n_state1, "state1", 0, k, "no momentum buffer when opt->momentum == 0");
                expect_count(n_state2, "state2", 0, k, "no second state");
                break;
            case DS_OPTIM_ADAGRAD:
                expect_count(n_state1, "state1", n, k, "one sum of squares per parameter");
                expect_count(n_state2, "state2", 0, k, "no second state");
                break;
            default: break;
        }
        if (n_params_lp != 0 && n_params_lp != n)
            fail(DS_ERR_INVALID_ARG, "n_params_lp=%d: expected 0 (no low-precision copies) or n_params=%d", n_params_lp, n);

        // Per-entry checks; the "list[i]" names are only formatted when a check fails (a model
        // passes thousands of tensors per step).
        auto name = [](const char* list, int32_t i) { return format("%s[%d]", list, i); };
        for (int32_t i = 0; i < n; ++i) {
            const Tensor& p = *P[i];
            const Tensor& g = *G[i];
            if (p.dtype != DS_DTYPE_F32) ds::op::expect_dtype(p, name("params", i).c_str(), {DS_DTYPE_F32});
            if (g.dtype != DS_DTYPE_F32 && g.dtype != DS_DTYPE_F16 && g.dtype != DS_DTYPE_BF16)
                ds::op::expect_float(g, name("grads", i).c_str());
            if (g.dtype != G[0]->dtype) ds::op::expect_same_dtype(g, name("grads", i).c_str(), *G[0], "grads[0]");
            if (!same_shape(g, p)) expect_like(g, name("grads", i), p, name("params", i));
            if (!S1.empty()) {
                if (S1[i]->dtype != DS_DTYPE_F32) ds::op::expect_dtype(*S1[i], name("state1", i).c_str(), {DS_DTYPE_F32});
                if (!same_shape(*S1[i], p)) expect_like(*S1[i], name("state1", i), p, name("params", i));
            }
            if (!S2.empty()) {
                if (S2[i]->dtype != DS_DTYPE_F32) ds::op::expect_dtype(*S2[i], name("state2", i).c_str(), {DS_DTYPE_F32});
                if (!same_shape(*S2[i], p)) expect_like(*S2[i], name("state2", i), p, name("params", i));
            }
            if (!LP.empty()) {
                const Tensor& l = *LP[i];
                if (l.dtype != DS_DTYPE_F16 && l.dtype != DS_DTYPE_BF16)
                    ds::op::expect_dtype(l, name("params_lp", i).c_str(), {DS_DTYPE_F16, DS_DTYPE_BF16});
                if (l.dtype != LP[0]->dtype) ds::op::expect_same_dtype(l, name("params_lp", i).c_str(), *LP[0], "params_lp[0]");
                if (!same_shape(l, p)) expect_like(l, name("params_lp", i), p, name("params", i));
            }
        }
        const ds::device::Device dev =
            ds::op::same_device({&P, &G, &S1, &S2, &LP}, {"params", "grads", "state1", "state2", "params_lp"});
        if (skipped) *skipped = 0;
        if (n == 0) return;

        std::vector<ds_optim_tensor_args_t> ts(static_cast<size_t>(n));
        for (int32_t i = 0; i < n; ++i) {
            ds_optim_tensor_args_t& t = ts[static_cast<size_t>(i)];
            t.param = static_cast<float*>(P[i]->data);
            t.grad = G[i]->data;
            t.state1 = S1.empty() ? nullptr : static_cast<float*>(S1[i]->data);
            t.state2 = S2.empty() ? nullptr : static_cast<float*>(S2[i]->data);
            t.param_lp = LP.empty() ? nullptr : LP[i]->data;
            t.numel = P[i]->numel();
        }
        ds_optim_step_args_t a{};
        a.kind = o.kind;
        a.grad_dtype = G[0]->dtype;
        a.lp_dtype = LP.empty() ? -1 : LP[0]->dtype;
        a.check_finite = o.check_finite ? 1 : 0;
        a.step = step;
        a.lr = o.lr;
        a.beta1 = o.beta1;
        a.beta2 = o.beta2;
        a.eps = o.eps;
        a.weight_decay = o.weight_decay;
        a.bias_correction = o.bias_correction ? 1 : 0;
        a.momentum = o.momentum;
        a.dampening = o.dampening;
        a.nesterov = o.nesterov ? 1 : 0;
        a.lr_decay = o.lr_decay;
        a.max_coeff = o.max_coeff;
        a.min_coeff = o.min_coeff;
        a.grad_scale = o.grad_scale;
        a.n_tensors = n;
        a.tensors = ts.data();
        a.skipped = skipped;
        if (ds::op::is_cuda(dev))
            ds::op::run_cuda(DS_KOP_OPTIM_STEP, dev.index, &a, "ds_op_optim_step");
        else
            ds::cpu::optim_step(a);
    });
}

ds_status_t ds_op_global_norm(ds_tensor_t* const* tensors, int32_t n_tensors, double* out) {
    return ds::capi::guard(__func__, [&] {
        ds::capi::check_out(out, "out");
        std::vector<Tensor*> T = ds::op::list(tensors, n_tensors, "tensors");
        ds::device::Device dev;
        std::vector<ds_optim_buf_t> bufs = list_bufs(T, &dev);
        *out = 0.0;
        if (bufs.empty()) return;
        ds_optim_list_args_t a{};
        a.tensors = bufs.data();
        a.n_tensors = static_cast<int32_t>(bufs.size());
        a.out = out;
        if (ds::op::is_cuda(dev))
            ds::op::run_cuda(DS_KOP_GLOBAL_NORM, dev.index, &a, "ds_op_global_norm");
        else
            ds::cpu::optim_global_norm(a);
    });
}

ds_status_t ds_op_scale(ds_tensor_t* const* tensors, int32_t n_tensors, double alpha) {
    return ds::capi::guard(__func__, [&] {
        std::vector<Tensor*> T = ds::op::list(tensors, n_tensors, "tensors");
        ds::device::Device dev;
        std::vector<ds_optim_buf_t> bufs = list_bufs(T, &dev);
        if (bufs.empty()) return;
        ds_optim_list_args_t a{};
        a.tensors = bufs.data();
        a.n_tensors = static_cast<int32_t>(bufs.size());
        a.alpha = alpha;
        if (ds::op::is_cuda(dev))
            ds::op::run_cuda(DS_KOP_SCALE, dev.index, &a, "ds_op_scale");
        else
            ds::cpu::optim_scale(a);
    });
}

ds_status_t ds_op_find_nonfinite(ds_tensor_t* const* tensors, int32_t n_tensors, int32_t* out) {
    return ds::capi::guard(__func__, [&] {
        ds::capi::check_out(out, "out");
        std::vector<Tensor*> T = ds::op::list(tensors, n_tensors, "tensors");
        ds::device::Device dev;
        std::vector<ds_optim_buf_t> bufs = list_bufs(T, &dev);
        *out = 0;
        if (bufs.empty()) return;
        ds_optim_list_args_t a{};
        a.tensors = bufs.data();
        a.n_tensors = static_cast<int32_t>(bufs.size());
        a.flag = out;
        if (ds::op::is_cuda(dev))
            ds::op::run_cuda(DS_KOP_FIND_NONFINITE, dev.index, &a, "ds_op_find_nonfinite");
        else
            ds::cpu::optim_find_nonfinite(a);
    });
}

ds_status_t ds_op_cast(const ds_tensor_t* src, ds_tensor_t* dst, float scale) {
    return ds::capi::guard(__func__, [&] {
        const Tensor& s = ds::op::in(src, "src");
        Tensor& d = ds::op::out(dst, "dst");
        const std::initializer_list<int32_t> kinds = {DS_DTYPE_F32, DS_DTYPE_F16, DS_DTYPE_BF16, DS_DTYPE_F64,
                                                            DS_DTYPE_FP8_E4M3, DS_DTYPE_FP8_E5M2};
        ds::op::expect_dtype(s, "src", kinds);
        ds::op::expect_dtype(d, "dst", kinds);
        if (s.numel() != d.numel())
            fail(DS_ERR_INVALID_ARG, "dst (%s) has %lld elements but src (%s) has %lld; they must match",
                 ds::op::describe(d).c_str(), static_cast<long long>(d.numel()), ds::op::describe(s).c_str(),
                 static_cast<long long>(s.numel()));
        const ds::device::Device dev = ds::op::same_device({{&s, "src"}, {&d, "dst"}});
        if (s.numel() == 0) return;
        ds_optim_cast_args_t a{};
        a.src = s.data;
        a.dst = d.data;
        a.numel = s.numel();
        a.src_dtype = s.dtype;
        a.dst_dtype = d.dtype;
        a.scale = scale;
        if (ds::op::is_cuda(dev))
            ds::op::run_cuda(DS_KOP_CAST, dev.index, &a, "ds_op_cast");
        else
            ds::cpu::optim_cast(a);
    });
}

}  // extern "C"
