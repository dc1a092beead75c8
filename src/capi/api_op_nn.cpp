// C API: ds_op_* of the nn family (transformer ops). Each entry point checks its arguments (messages
// name the C argument), fills the family's argument struct (kernels/op_nn.h) and runs the CPU kernel
// (kernels/cpu/nn*.cpp) or the CUDA op (kernels/cuda/ops_nn*.cu).
#include <cmath>
#include <cstring>

#include "capi/guard.hpp"
#include "core/dtype.hpp"
#include "cpu/nn.hpp"
#include "op/args.hpp"
#include "op_nn.h"

static_assert(DS_NN_F32 == DS_DTYPE_F32 && DS_NN_F16 == DS_DTYPE_F16 && DS_NN_BF16 == DS_DTYPE_BF16 &&
                  DS_NN_I32 == DS_DTYPE_I32 && DS_NN_I64 == DS_DTYPE_I64,
              "op_nn.h dtype codes must match enum ds_dtype");
static_assert(DS_NN_ACT_GELU_TANH == DS_ACT_GELU_TANH && DS_NN_ACT_GELU == DS_ACT_GELU &&
                  DS_NN_ACT_SILU == DS_ACT_SILU && DS_NN_ACT_RELU == DS_ACT_RELU,
              "op_nn.h activation codes must match enum ds_activation");

namespace {

using ds::Tensor;
using ds::fail;
using namespace ds::op;

long long ll(int64_t v) { return static_cast<long long>(v); }

// t has last dimension d and n rows ("[N, D]" in the header's sense).
void expect_rows(const Tensor& t, const char* name, int64_t n, int64_t d, const char* why) {
    if (t.ndim < 1 || t.shape[t.ndim - 1] != d || rows(t) != n)
        fail(DS_ERR_INVALID_ARG, "%s has shape %s; expected [%lld, %lld] (any leading dimensions holding %lld rows: %s)",
             name, shape_str(t).c_str(), ll(n), ll(d), ll(n), why);
}

// A per-row vector: f32 (or the given dtypes) with n elements, shaped [n] or like ref without its
// last dimension.
void expect_row_vector(const Tensor& t, const char* name, int64_t n, const Tensor& ref, const char* ref_name,
                       std::initializer_list<int32_t> dtypes) {
    expect_dtype(t, name, dtypes);
    bool ok = t.ndim == 1 && t.shape[0] == n;
    if (!ok && ref.ndim >= 1 && t.ndim == ref.ndim - 1) {
        ok = true;
        for (int32_t i = 0; i < t.ndim; ++i) ok = ok && t.shape[i] == ref.shape[i];
    }
    if (!ok)
        fail(DS_ERR_INVALID_ARG, "%s has shape %s; expected [%lld] (one value per row of %s %s)", name,
             shape_str(t).c_str(), ll(n), ref_name, shape_str(ref).c_str());
}

void expect_vector(const Tensor& t, const char* name, int64_t d, const Tensor& ref, const char* ref_name) {
    expect_same_dtype(t, name, ref, ref_name);
    if (t.ndim != 1 || t.shape[0] != d)
        fail(DS_ERR_INVALID_ARG, "%s has shape %s; expected [%lld] (the last dimension of %s %s)", name,
             shape_str(t).c_str(), ll(d), ref_name, shape_str(ref).c_str());
}

void expect_like(const Tensor& t, const char* name, const Tensor& ref, const char* ref_name) {
    expect_same_dtype(t, name, ref, ref_name);
    expect_same_shape(t, name, ref, ref_name);
}

void expect_index(const Tensor& t, const char* name, int64_t n, const char* what) {
    expect_dtype(t, name, {DS_DTYPE_I32, DS_DTYPE_I64});
    if (t.numel() != n)
        fail(DS_ERR_INVALID_ARG, "%s has shape %s (%lld elements); expected %lld elements (%s)", name,
             shape_str(t).c_str(), ll(t.numel()), ll(n), what);
}

void expect_finite(float v, const char* name) {
    if (!std::isfinite(v)) fail(DS_ERR_INVALID_ARG, "%s=%g is not finite", name, static_cast<double>(v));
}

void expect_act(int32_t act) {
    if (act < DS_ACT_GELU_TANH || act > DS_ACT_RELU)
        fail(DS_ERR_INVALID_ARG, "act=%d is not a ds_activation (DS_ACT_GELU_TANH=0 .. DS_ACT_RELU=3)", act);
}

int64_t norm_dim(const Tensor& x, const char* name) {
    const int64_t d = last_dim(x, name);
    if (d == 0 && rows(x) > 0)
        fail(DS_ERR_INVALID_ARG, "%s has shape %s; the normalised (last) dimension must not be 0", name,
             shape_str(x).c_str());
    return d;
}

}  // namespace

extern "C" {

ds_status_t ds_op_embedding(const ds_tensor_t* weight, const ds_tensor_t* ids, ds_tensor_t* out) {
    return ds::capi::guard(__func__, [&] {
        const Tensor& w = in(weight, "weight");
        const Tensor& id = in(ids, "ids");
        Tensor& o = ds::op::out(out, "out");
        expect_float(w, "weight");
        if (w.ndim != 2) fail(DS_ERR_INVALID_ARG, "weight has shape %s; expected [V, D]", shape_str(w).c_str());
        expect_dtype(id, "ids", {DS_DTYPE_I32, DS_DTYPE_I64});
        expect_same_dtype(o, "out", w, "weight");
        const int64_t v = w.shape[0], d = w.shape[1], n = id.numel();
        expect_rows(o, "out", n, d, "a row of D for each of the N ids");
        const auto dev = same_device({{&w, "weight"}, {&id, "ids"}, {&o, "out"}});
        ds_nn_embedding_args_t a{};
        a.weight = w.data, a.ids = id.data, a.out = o.data;
        a.n = n, a.v = v, a.d = d, a.dtype = w.dtype, a.idtype = id.dtype, a.pdtype = w.dtype;
        if (n == 0 || d == 0) return;
        if (is_cuda(dev)) return run_cuda(DS_KOP_EMBEDDING, dev.index, &a, "ds_op_embedding");
        int64_t bad_v = 0;
        const int64_t bad = ds::cpu::nn_first_bad_index(id.data, id.dtype, n, v, false, 0, &bad_v);
        if (bad >= 0)
            fail(DS_ERR_INVALID_ARG, "ids[%lld]=%lld is outside [0, %lld) (V, the first dimension of weight)", ll(bad),
                 ll(bad_v), ll(v));
        ds::cpu::embedding(a);
    });
}

ds_status_t ds_op_embedding_backward(const ds_tensor_t* ids, const ds_tensor_t* dout, ds_tensor_t* dweight) {
    return ds::capi::guard(__func__, [&] {
        const Tensor& id = in(ids, "ids");
        const Tensor& g = in(dout, "dout");
        Tensor& dw = out(dweight, "dweight");
        expect_dtype(id, "ids", {DS_DTYPE_I32, DS_DTYPE_I64});
        expect_float(g, "dout");
        expect_same_dtype(dw, "dweight", g, "dout");
        if (dw.ndim != 2) fail(DS_ERR_INVALID_ARG, "dweight has shape %s; expected [V, D]", shape_str(dw).c_str());
        const int64_t v = dw.shape[0], d = dw.shape[1], n = id.numel();
        expect_rows(g, "dout", n, d, "a row of D for each of the N ids");
        const auto dev = same_device({{&id, "ids"}, {&g, "dout"}, {&dw, "dweight"}});
        ds_nn_embedding_args_t a{};
        a.ids = id.data, a.dout = g.data, a.dweight = dw.data;
        a.n = n, a.v = v, a.d = d, a.dtype = g.dtype, a.idtype = id.dtype, a.pdtype = dw.dtype;
        if (n == 0 || d == 0) return;
        if (is_cuda(dev)) return run_cuda(DS_KOP_EMBEDDING_BWD, dev.index, &a, "ds_op_embedding_backward");
        int64_t bad_v = 0;
        const int64_t bad = ds::cpu::nn_first_bad_index(id.data, id.dtype, n, v, false, 0, &bad_v);
        if (bad >= 0)
            fail(DS_ERR_INVALID_ARG, "ids[%lld]=%lld is outside [0, %lld) (V, the first dimension of dweight)", ll(bad),
                 ll(bad_v), ll(v));
        ds::cpu::embedding_backward(a);
    });
}

ds_status_t ds_op_layer_norm(const ds_tensor_t* x, const ds_tensor_t* weight, const ds_tensor_t* bias, float eps,
                             ds_tensor_t* y, ds_tensor_t* mean, ds_tensor_t* rstd) {
    return ds::capi::guard(__func__, [&] {
        const Tensor& tx = in(x, "x");
        const Tensor& tw = in(weight, "weight");
        const Tensor* tb = opt(bias, "bias");
        Tensor& ty = out(y, "y");
        Tensor* tm = opt_out(mean, "mean");
        Tensor* tr = opt_out(rstd, "rstd");
        expect_float(tx, "x");
        const int64_t d = norm_dim(tx, "x"), n = rows(tx);
        expect_vector(tw, "weight", d, tx, "x");
        if (tb) expect_vector(*tb, "bias", d, tx, "x");
        expect_like(ty, "y", tx, "x");
        if (tm) expect_row_vector(*tm, "mean", n, tx, "x", {DS_DTYPE_F32});
        if (tr) expect_row_vector(*tr, "rstd", n, tx, "x", {DS_DTYPE_F32});
        if (!(eps >= 0.0f) || !std::isfinite(eps))
            fail(DS_ERR_INVALID_ARG, "eps=%g must be finite and >= 0", static_cast<double>(eps));
        const auto dev = same_device(
            {{&tx, "x"}, {&tw, "weight"}, {tb, "bias"}, {&ty, "y"}, {tm, "mean"}, {tr, "rstd"}});
        ds_nn_norm_args_t a{};
        a.x = tx.data, a.weight = tw.data, a.bias = tb ? tb->data : nullptr, a.y = ty.data;
        a.mean = tm ? static_cast<float*>(tm->data) : nullptr;
        a.rstd = tr ? static_cast<float*>(tr->data) : nullptr;
        a.n = n, a.d = d, a.eps = eps, a.rms = 0, a.dtype = tx.dtype, a.pdtype = tx.dtype;
        if (n == 0) return;
        if (is_cuda(dev)) return run_cuda(DS_KOP_LAYER_NORM, dev.index, &a, "ds_op_layer_norm");
        ds::cpu::norm(a);
    });
}

ds_status_t ds_op_layer_norm_backward(const ds_tensor_t* dy, const ds_tensor_t* x, const ds_tensor_t* weight,
                                      const ds_tensor_t* mean, const ds_tensor_t* rstd, ds_tensor_t* dx,
                                      ds_tensor_t* dweight, ds_tensor_t* dbias) {
    return ds::capi::guard(__func__, [&] {
        const Tensor& tdy = in(dy, "dy");
        const Tensor& tx = in(x, "x");
        const Tensor& tw = in(weight, "weight");
        const Tensor& tm = in(mean, "mean");
        const Tensor& tr = in(rstd, "rstd");
        Tensor& tdx = out(dx, "dx");
        Tensor* tdw = opt_out(dweight, "dweight");
        Tensor* tdb = opt_out(dbias, "dbias");
        expect_float(tx, "x");
        const int64_t d = norm_dim(tx, "x"), n = rows(tx);
        expect_like(tdy, "dy", tx, "x");
        expect_vector(tw, "weight", d, tx, "x");
        expect_row_vector(tm, "mean", n, tx, "x", {DS_DTYPE_F32});
        expect_row_vector(tr, "rstd", n, tx, "x", {DS_DTYPE_F32});
        expect_like(tdx, "dx", tx, "x");
        if (tdw) expect_vector(*tdw, "dweight", d, tx, "x");
        if (tdb) expect_vector(*tdb, "dbias", d, tx, "x");
        const auto dev = same_device({{&tdy, "dy"}, {&tx, "x"}, {&tw, "weight"}, {&tm, "mean"}, {&tr, "rstd"},
                                      {&tdx, "dx"}, {tdw, "dweight"}, {tdb, "dbias"}});
        ds_nn_norm_args_t a{};
        a.x = tx.data, a.weight = tw.data, a.dy = tdy.data, a.dx = tdx.data;
        a.mean = static_cast<float*>(tm.data), a.rstd = static_cast<float*>(tr.data);
        a.dweight = tdw ? tdw->data : nullptr, a.dbias = tdb ? tdb->data : nullptr;
        a.n = n, a.d = d, a.rms = 0, a.dtype = tx.dtype, a.pdtype = tx.dtype;
        if (n == 0) return;
        if (is_cuda(dev)) return run_cuda(DS_KOP_LAYER_NORM_BWD, dev.index, &a, "ds_op_layer_norm_backward");
        ds::cpu::norm_backward(a);
    });
}

ds_status_t ds_op_rms_norm(const ds_tensor_t* x, const ds_tensor_t* weight, float eps, ds_tensor_t* y,
                           ds_tensor_t* rstd) {
    return ds::capi::guard(__func__, [&] {
        const Tensor& tx = in(x, "x");
        const Tensor& tw = in(weight, "weight");
        Tensor& ty = out(y, "y");
        Tensor* tr = opt_out(rstd, "rstd");
        expect_float(tx, "x");
        const int64_t d = norm_dim(tx, "x"), n = rows(tx);
        expect_vector(tw, "weight", d, tx, "x");
        expect_like(ty, "y", tx, "x");
        if (tr) expect_row_vector(*tr, "rstd", n, tx, "x", {DS_DTYPE_F32});
        if (!(eps >= 0.0f) || !std::isfinite(eps))
            fail(DS_ERR_INVALID_ARG, "eps=%g must be finite and >= 0", static_cast<double>(eps));
        const auto dev = same_device({{&tx, "x"}, {&tw, "weight"}, {&ty, "y"}, {tr, "rstd"}});
        ds_nn_norm_args_t a{};
        a.x = tx.data, a.weight = tw.data, a.y = ty.data;
        a.rstd = tr ? static_cast<float*>(tr->data) : nullptr;
        a.n = n, a.d = d, a.eps = eps, a.rms = 1, a.dtype = tx.dtype, a.pdtype = tx.dtype;
        if (n == 0) return;
        if (is_cuda(dev)) return run_cuda(DS_KOP_RMS_NORM, dev.index, &a, "ds_op_rms_norm");
        ds::cpu::norm(a);
    });
}

ds_status_t ds_op_rms_norm_backward(const ds_tensor_t* dy, const ds_tensor_t* x, const ds_tensor_t* weight,
                                    const ds_tensor_t* rstd, ds_tensor_t* dx, ds_tensor_t* dweight) {
    return ds::capi::guard(__func__, [&] {
        const Tensor& tdy = in(dy, "dy");
        const Tensor& tx = in(x, "x");
        const Tensor& tw = in(weight, "weight");
        const Tensor& tr = in(rstd, "rstd");
        Tensor& tdx = out(dx, "dx");
        Tensor* tdw = opt_out(dweight, "dweight");
        expect_float(tx, "x");
        const int64_t d = norm_dim(tx, "x"), n = rows(tx);
        expect_like(tdy, "dy", tx, "x");
        expect_vector(tw, "weight", d, tx, "x");
        expect_row_vector(tr, "rstd", n, tx, "x", {DS_DTYPE_F32});
        expect_like(tdx, "dx", tx, "x");
        if (tdw) expect_vector(*tdw, "dweight", d, tx, "x");
        const auto dev = same_device(
            {{&tdy, "dy"}, {&tx, "x"}, {&tw, "weight"}, {&tr, "rstd"}, {&tdx, "dx"}, {tdw, "dweight"}});
        ds_nn_norm_args_t a{};
        a.x = tx.data, a.weight = tw.data, a.dy = tdy.data, a.dx = tdx.data;
        a.rstd = static_cast<float*>(tr.data);
        a.dweight = tdw ? tdw->data : nullptr;
        a.n = n, a.d = d, a.rms = 1, a.dtype = tx.dtype, a.pdtype = tx.dtype;
        if (n == 0) return;
        if (is_cuda(dev)) return run_cuda(DS_KOP_RMS_NORM_BWD, dev.index, &a, "ds_op_rms_norm_backward");
        ds::cpu::norm_backward(a);
    });
}

ds_status_t ds_op_activation(int32_t act, const ds_tensor_t* x, ds_tensor_t* y) {
    return ds::capi::guard(__func__, [&] {
        const Tensor& tx = in(x, "x");
        Tensor& ty = out(y, "y");
        expect_act(act);
        expect_float(tx, "x");
        expect_like(ty, "y", tx, "x");
        const auto dev = same_device({{&tx, "x"}, {&ty, "y"}});
        ds_nn_act_args_t a{};
        a.x = tx.data, a.out = ty.data, a.numel = tx.numel(), a.act = act, a.dtype = tx.dtype;
        if (a.numel == 0) return;
        if (is_cuda(dev)) return run_cuda(DS_KOP_ACTIVATION, dev.index, &a, "ds_op_activation");
        ds::cpu::activation(a);
    });
}

ds_status_t ds_op_activation_backward(int32_t act, const ds_tensor_t* x, const ds_tensor_t* dy, ds_tensor_t* dx) {
    return ds::capi::guard(__func__, [&] {
        const Tensor& tx = in(x, "x");
        const Tensor& tdy = in(dy, "dy");
        Tensor& tdx = out(dx, "dx");
        expect_act(act);
        expect_float(tx, "x");
        expect_like(tdy, "dy", tx, "x");
        expect_like(tdx, "dx", tx, "x");
        const auto dev = same_device({{&tx, "x"}, {&tdy, "dy"}, {&tdx, "dx"}});
        ds_nn_act_args_t a{};
        a.x = tx.data, a.dy = tdy.data, a.out = tdx.data, a.numel = tx.numel(), a.act = act, a.dtype = tx.dtype;
        if (a.numel == 0) return;
        if (is_cuda(dev)) return run_cuda(DS_KOP_ACTIVATION_BWD, dev.index, &a, "ds_op_activation_backward");
        ds::cpu::activation_backward(a);
    });
}

ds_status_t ds_op_swiglu(const ds_tensor_t* gate, const ds_tensor_t* up, ds_tensor_t* y) {
    return ds::capi::guard(__func__, [&] {
        const Tensor& tg = in(gate, "gate");
        const Tensor& tu = in(up, "up");
        Tensor& ty = out(y, "y");
        expect_float(tg, "gate");
        expect_like(tu, "up", tg, "gate");
        expect_like(ty, "y", tg, "gate");
        const auto dev = same_device({{&tg, "gate"}, {&tu, "up"}, {&ty, "y"}});
        ds_nn_swiglu_args_t a{};
        a.gate = tg.data, a.up = tu.data, a.y = ty.data, a.numel = tg.numel(), a.dtype = tg.dtype;
        if (a.numel == 0) return;
        if (is_cuda(dev)) return run_cuda(DS_KOP_SWIGLU, dev.index, &a, "ds_op_swiglu");
        ds::cpu::swiglu(a);
    });
}

ds_status_t ds_op_swiglu_backward(const ds_tensor_t* gate, const ds_tensor_t* up, const ds_tensor_t* dy,
                                  ds_tensor_t* dgate, ds_tensor_t* dup) {
    return ds::capi::guard(__func__, [&] {
        const Tensor& tg = in(gate, "gate");
        const Tensor& tu = in(up, "up");
        const Tensor& tdy = in(dy, "dy");
        Tensor& tdg = out(dgate, "dgate");
        Tensor& tdu = out(dup, "dup");
        expect_float(tg, "gate");
        expect_like(tu, "up", tg, "gate");
        expect_like(tdy, "dy", tg, "gate");
        expect_like(tdg, "dgate", tg, "gate");
        expect_like(tdu, "dup", tg, "gate");
        if (tdg.data == tdu.data && tg.numel() > 0)
            fail(DS_ERR_INVALID_ARG, "dgate and dup are the same memory; they must be distinct outputs");
        const auto dev = same_device({{&tg, "gate"}, {&tu, "up"}, {&tdy, "dy"}, {&tdg, "dgate"}, {&tdu, "dup"}});
        ds_nn_swiglu_args_t a{};
        a.gate = tg.data, a.up = tu.data, a.dy = tdy.data, a.dgate = tdg.data, a.dup = tdu.data;
        a.numel = tg.numel(), a.dtype = tg.dtype;
        if (a.numel == 0) return;
        if (is_cuda(dev)) return run_cuda(DS_KOP_SWIGLU_BWD, dev.index, &a, "ds_op_swiglu_backward");
        ds::cpu::swiglu_backward(a);
    });
}

ds_status_t ds_op_add(const ds_tensor_t* a_, const ds_tensor_t* b_, ds_tensor_t* y) {
    return ds::capi::guard(__func__, [&] {
        const Tensor& ta = in(a_, "a");
        const Tensor& tb = in(b_, "b");
        Tensor& ty = out(y, "y");
        expect_float(ta, "a");
        expect_same_dtype(tb, "b", ta, "a");
        expect_like(ty, "y", ta, "a");
        bool same = tb.ndim == ta.ndim;
        for (int32_t i = 0; same && i < ta.ndim; ++i) same = tb.shape[i] == ta.shape[i];
        const int64_t d = ta.ndim >= 1 ? ta.shape[ta.ndim - 1] : 1;
        const int64_t n = ta.ndim >= 1 ? rows(ta) : 1;
        if (!same && !(tb.ndim == 1 && ta.ndim >= 1 && tb.shape[0] == d))
            fail(DS_ERR_INVALID_ARG, "b has shape %s; expected the shape of a %s or [%lld] (a bias over its last dimension)",
                 shape_str(tb).c_str(), shape_str(ta).c_str(), ll(d));
        const auto dev = same_device({{&ta, "a"}, {&tb, "b"}, {&ty, "y"}});
        ds_nn_add_args_t a{};
        a.a = ta.data, a.b = tb.data, a.y = ty.data, a.n = n, a.d = d, a.b_rows = same ? n : 1;
        a.dtype = ta.dtype, a.pdtype = ta.dtype;
        if (ta.numel() == 0) return;
        if (is_cuda(dev)) return run_cuda(DS_KOP_ADD, dev.index, &a, "ds_op_add");
        ds::cpu::add(a);
    });
}

ds_status_t ds_op_sum_rows(const ds_tensor_t* dy, ds_tensor_t* dbias) {
    return ds::capi::guard(__func__, [&] {
        const Tensor& tdy = in(dy, "dy");
        Tensor& tdb = out(dbias, "dbias");
        expect_float(tdy, "dy");
        const int64_t d = last_dim(tdy, "dy"), n = rows(tdy);
        expect_vector(tdb, "dbias", d, tdy, "dy");
        const auto dev = same_device({{&tdy, "dy"}, {&tdb, "dbias"}});
        ds_nn_add_args_t a{};
        a.a = tdy.data, a.y = tdb.data, a.n = n, a.d = d, a.b_rows = 0, a.dtype = tdy.dtype, a.pdtype = tdb.dtype;
        if (n == 0 || d == 0) return;
        if (is_cuda(dev)) return run_cuda(DS_KOP_SUM_ROWS, dev.index, &a, "ds_op_sum_rows");
        ds::cpu::sum_rows(a);
    });
}

ds_status_t ds_op_softmax(const ds_tensor_t* x, float scale, ds_tensor_t* y) {
    return ds::capi::guard(__func__, [&] {
        const Tensor& tx = in(x, "x");
        Tensor& ty = out(y, "y");
        expect_float(tx, "x");
        const int64_t d = last_dim(tx, "x"), n = rows(tx);
        expect_like(ty, "y", tx, "x");
        expect_finite(scale, "scale");
        const auto dev = same_device({{&tx, "x"}, {&ty, "y"}});
        ds_nn_softmax_args_t a{};
        a.x = tx.data, a.out = ty.data, a.n = n, a.d = d, a.scale = scale, a.dtype = tx.dtype;
        if (n == 0 || d == 0) return;
        if (is_cuda(dev)) return run_cuda(DS_KOP_SOFTMAX, dev.index, &a, "ds_op_softmax");
        ds::cpu::softmax(a);
    });
}

ds_status_t ds_op_softmax_backward(const ds_tensor_t* y, const ds_tensor_t* dy, float scale, ds_tensor_t* dx) {
    return ds::capi::guard(__func__, [&] {
        const Tensor& ty = in(y, "y");
        const Tensor& tdy = in(dy, "dy");
        Tensor& tdx = out(dx, "dx");
        expect_float(ty, "y");
        const int64_t d = last_dim(ty, "y"), n = rows(ty);
        expect_like(tdy, "dy", ty, "y");
        expect_like(tdx, "dx", ty, "y");
        expect_finite(scale, "scale");
        const auto dev = same_device({{&ty, "y"}, {&tdy, "dy"}, {&tdx, "dx"}});
        ds_nn_softmax_args_t a{};
        a.x = ty.data, a.dy = tdy.data, a.out = tdx.data, a.n = n, a.d = d, a.scale = scale, a.dtype = ty.dtype;
        if (n == 0 || d == 0) return;
        if (is_cuda(dev)) return run_cuda(DS_KOP_SOFTMAX_BWD, dev.index, &a, "ds_op_softmax_backward");
        ds::cpu::softmax_backward(a);
    });
}

ds_status_t ds_op_cross_entropy(const ds_tensor_t* logits, const ds_tensor_t* targets, int64_t ignore_index,
                                float dloss, ds_tensor_t* losses, ds_tensor_t* dlogits) {
    return ds::capi::guard(__func__, [&] {
        const Tensor& tl = in(logits, "logits");
        const Tensor& tt = in(targets, "targets");
        Tensor& tls = out(losses, "losses");
        Tensor* tdl = opt_out(dlogits, "dlogits");
        expect_float(tl, "logits");
        const int64_t v = last_dim(tl, "logits"), n = rows(tl);
        if (v == 0 && n > 0)
            fail(DS_ERR_INVALID_ARG, "logits has shape %s; the vocabulary (last) dimension must not be 0",
                 shape_str(tl).c_str());
        expect_index(tt, "targets", n, "one target per row of logits");
        expect_row_vector(tls, "losses", n, tl, "logits", {DS_DTYPE_F32});
        if (tdl) expect_like(*tdl, "dlogits", tl, "logits");
        expect_finite(dloss, "dloss");
        const auto dev = same_device({{&tl, "logits"}, {&tt, "targets"}, {&tls, "losses"}, {tdl, "dlogits"}});
        ds_nn_xent_args_t a{};
        a.logits = tl.data, a.targets = tt.data, a.losses = static_cast<float*>(tls.data);
        a.dlogits = tdl ? tdl->data : nullptr;
        a.n = n, a.v = v, a.ignore_index = ignore_index, a.dloss = dloss, a.dtype = tl.dtype, a.idtype = tt.dtype;
        if (n == 0) return;
        if (is_cuda(dev)) return run_cuda(DS_KOP_CROSS_ENTROPY, dev.index, &a, "ds_op_cross_entropy");
        int64_t bad_v = 0;
        const int64_t bad = ds::cpu::nn_first_bad_index(tt.data, tt.dtype, n, v, true, ignore_index, &bad_v);
        if (bad >= 0)
            fail(DS_ERR_INVALID_ARG, "targets[%lld]=%lld (row %lld) is outside [0, %lld) and is not ignore_index=%lld",
                 ll(bad), ll(bad_v), ll(bad), ll(v), ll(ignore_index));
        ds::cpu::cross_entropy(a);
    });
}

ds_status_t ds_op_rope(const ds_tensor_t* x, const ds_tensor_t* positions, float theta, int32_t inverse,
                       ds_tensor_t* y) {
    return ds::capi::guard(__func__, [&] {
        const Tensor& tx = in(x, "x");
        const Tensor& tp = in(positions, "positions");
        Tensor& ty = out(y, "y");
        expect_float(tx, "x");
        if (tx.ndim < 3) fail(DS_ERR_INVALID_ARG, "x has shape %s; expected [N, H, D]", shape_str(tx).c_str());
        const int64_t d = tx.shape[tx.ndim - 1], h = tx.shape[tx.ndim - 2];
        int64_t n = 1;
        for (int32_t i = 0; i + 2 < tx.ndim; ++i) n *= tx.shape[i];
        if (d % 2 != 0)
            fail(DS_ERR_INVALID_ARG, "x has shape %s; its last dimension D=%lld must be even", shape_str(tx).c_str(), ll(d));
        expect_index(tp, "positions", n, "one position per token N of x [N, H, D]");
        expect_like(ty, "y", tx, "x");
        if (!(theta > 0.0f) || !std::isfinite(theta))
            fail(DS_ERR_INVALID_ARG, "theta=%g must be finite and > 0", static_cast<double>(theta));
        if (inverse != 0 && inverse != 1) fail(DS_ERR_INVALID_ARG, "inverse=%d must be 0 or 1", inverse);
        const auto dev = same_device({{&tx, "x"}, {&tp, "positions"}, {&ty, "y"}});
        ds_nn_rope_args_t a{};
        a.x = tx.data, a.positions = tp.data, a.y = ty.data, a.n = n, a.h = h, a.d = d, a.theta = theta;
        a.inverse = inverse, a.dtype = tx.dtype, a.idtype = tp.dtype;
        if (tx.numel() == 0) return;
        if (is_cuda(dev)) return run_cuda(DS_KOP_ROPE, dev.index, &a, "ds_op_rope");
        ds::cpu::rope(a);
    });
}

ds_status_t ds_op_dropout(const ds_tensor_t* x, float p, uint64_t seed, uint64_t offset, ds_tensor_t* y) {
    return ds::capi::guard(__func__, [&] {
        const Tensor& tx = in(x, "x");
        Tensor& ty = out(y, "y");
        expect_float(tx, "x");
        expect_like(ty, "y", tx, "x");
        if (!(p >= 0.0f && p <= 1.0f)) fail(DS_ERR_INVALID_ARG, "p=%g must be in [0, 1]", static_cast<double>(p));
        const auto dev = same_device({{&tx, "x"}, {&ty, "y"}});
        ds_nn_dropout_args_t a{};
        a.x = tx.data, a.y = ty.data, a.numel = tx.numel(), a.seed = seed, a.offset = offset, a.p = p;
        a.dtype = tx.dtype;
        if (a.numel == 0) return;
        if (is_cuda(dev)) return run_cuda(DS_KOP_DROPOUT, dev.index, &a, "ds_op_dropout");
        ds::cpu::dropout(a);
    });
}

}  // extern "C"
