// C API: ds_op_* of the attn family: scaled dot-product attention, forward and backward
// (kernels/op_attn.h; CPU kernels in kernels/cpu/attn*.cpp, CUDA in kernels/cuda/ops_attn*.cu).
#include <cmath>
#include <cstring>

#include "capi/guard.hpp"
#include "core/options.hpp"
#include "cpu/attn.hpp"
#include "op/args.hpp"
#include "op_attn.h"

static_assert(DS_ATTN_DTYPE_F32 == DS_DTYPE_F32 && DS_ATTN_DTYPE_F16 == DS_DTYPE_F16 && DS_ATTN_DTYPE_BF16 == DS_DTYPE_BF16,
              "op_attn.h dtype codes follow enum ds_dtype");

namespace {

using ds::Tensor;
using ds::fail;

struct Bshd {
    int64_t b, s, h, d;
};

Bshd bshd(const Tensor& t, const char* name, const char* layout) {
    if (t.ndim != 4)
        fail(DS_ERR_INVALID_ARG, "%s has shape %s; expected 4 dimensions %s", name, ds::op::shape_str(t).c_str(), layout);
    return {t.shape[0], t.shape[1], t.shape[2], t.shape[3]};
}

ds_attn_options_t options(const ds_attn_options_t* opt) {
    ds_attn_options_t o = ds::read_options(opt, ds_attn_options_init, "opt");
    if (o.causal != 0 && o.causal != 1) fail(DS_ERR_INVALID_ARG, "opt->causal=%d; expected 0 or 1", o.causal);
    if (!std::isfinite(o.scale)) fail(DS_ERR_INVALID_ARG, "opt->scale=%g is not finite", static_cast<double>(o.scale));
    return o;
}

// The common checks of q, k, v: float dtype (the same), [B, S, Hq, D] and [B, S_kv, Hkv, D] with
// Hq % Hkv == 0. Returns q's and k's dimensions.
void check_qkv(const Tensor& Q, const Tensor& K, const Tensor& V, Bshd& sq, Bshd& sk) {
    ds::op::expect_float(Q, "q");
    ds::op::expect_same_dtype(K, "k", Q, "q");
    ds::op::expect_same_dtype(V, "v", Q, "q");
    sq = bshd(Q, "q", "[B, S, Hq, D]");
    sk = bshd(K, "k", "[B, S_kv, Hkv, D]");
    if (sq.d < 1) fail(DS_ERR_INVALID_ARG, "q has shape %s: head dimension D=0", ds::op::shape_str(Q).c_str());
    if (sk.b != sq.b || sk.d != sq.d)
        fail(DS_ERR_INVALID_ARG, "k has shape %s; expected [%lld, S_kv, Hkv, %lld] (B and D of q %s)",
             ds::op::shape_str(K).c_str(), static_cast<long long>(sq.b), static_cast<long long>(sq.d),
             ds::op::shape_str(Q).c_str());
    if (sk.h < 1) fail(DS_ERR_INVALID_ARG, "k has shape %s: Hkv=0 heads", ds::op::shape_str(K).c_str());
    if (sq.h % sk.h != 0)
        fail(DS_ERR_INVALID_ARG, "q has Hq=%lld heads and k has Hkv=%lld; Hq must be a multiple of Hkv (grouped-query attention)",
             static_cast<long long>(sq.h), static_cast<long long>(sk.h));
    ds::op::expect_same_shape(V, "v", K, "k");
    if (sq.h > INT32_MAX || sq.d > INT32_MAX)
        fail(DS_ERR_INVALID_ARG, "q has shape %s: too many heads or too large a head dimension", ds::op::shape_str(Q).c_str());
}

void check_cuda(const Tensor& Q, const Bshd& sq) {
    if (Q.dtype != DS_DTYPE_F16 && Q.dtype != DS_DTYPE_BF16)
        fail(DS_ERR_INVALID_ARG, "q has dtype %s; attention on CUDA needs f16 or bf16 tensors", ds::op::describe(Q).c_str());
    if (sq.d != 64 && sq.d != 128)
        fail(DS_ERR_INVALID_ARG, "q has shape %s: attention on CUDA supports head dimensions D = 64 and 128, not %lld",
             ds::op::shape_str(Q).c_str(), static_cast<long long>(sq.d));
}

void check_lse(const Tensor& L, const Bshd& sq) {
    ds::op::expect_dtype(L, "lse", {DS_DTYPE_F32});
    ds::op::expect_shape(L, "lse", {sq.b, sq.h, sq.s});
}

bool overlap(const Tensor* a, const Tensor* b) {
    if (!a || !b || a->numel() == 0 || b->numel() == 0) return false;
    if (a == b) return true;
    const char* a0 = static_cast<const char*>(a->data);
    const char* b0 = static_cast<const char*>(b->data);
    return a->dev == b->dev && a0 < b0 + b->nbytes() && b0 < a0 + a->nbytes();
}

void no_alias(const Tensor* out, const char* out_name, std::initializer_list<ds::op::Named> others) {
    for (const ds::op::Named& n : others)
        if (std::strcmp(n.name, out_name) != 0 && overlap(out, n.t))
            fail(DS_ERR_INVALID_ARG, "%s overlaps %s in memory; attention outputs may not alias other arguments",
                 out_name, n.name);
}

}  // namespace

extern "C" {

void ds_attn_options_init(ds_attn_options_t* opt) {
    if (!opt) return;
    std::memset(opt, 0, sizeof *opt);
    opt->struct_size = sizeof *opt;
    opt->abi_version = DS_ABI_VERSION;
    opt->causal = 0;
    opt->scale = 0.0f;
}

ds_status_t ds_op_attention(const ds_tensor_t* q, const ds_tensor_t* k, const ds_tensor_t* v, ds_tensor_t* o,
                            ds_tensor_t* lse, const ds_attn_options_t* opt) {
    return ds::capi::guard(__func__, [&] {
        const ds_attn_options_t op = options(opt);
        const Tensor& Q = ds::op::in(q, "q");
        const Tensor& K = ds::op::in(k, "k");
        const Tensor& V = ds::op::in(v, "v");
        Tensor& O = ds::op::out(o, "o");
        Tensor* L = ds::op::opt_out(lse, "lse");
        Bshd sq{}, sk{};
        check_qkv(Q, K, V, sq, sk);
        ds::op::expect_same_dtype(O, "o", Q, "q");
        ds::op::expect_same_shape(O, "o", Q, "q");
        if (L) check_lse(*L, sq);
        const ds::device::Device dev =
            ds::op::same_device({{&Q, "q"}, {&K, "k"}, {&V, "v"}, {&O, "o"}, {L, "lse"}});
        const bool cuda = ds::op::is_cuda(dev);
        if (cuda) check_cuda(Q, sq);
        no_alias(&O, "o", {{&Q, "q"}, {&K, "k"}, {&V, "v"}, {L, "lse"}});

        ds_attn_fwd_args_t a{};
        a.q = Q.data;
        a.k = K.data;
        a.v = V.data;
        a.o = O.data;
        a.lse = L ? static_cast<float*>(L->data) : nullptr;
        a.batch = sq.b;
        a.seq_q = sq.s;
        a.seq_kv = sk.s;
        a.heads_q = static_cast<int32_t>(sq.h);
        a.heads_kv = static_cast<int32_t>(sk.h);
        a.head_dim = static_cast<int32_t>(sq.d);
        a.dtype = Q.dtype;
        a.causal = op.causal;
        a.scale = op.scale != 0.0f ? op.scale : static_cast<float>(1.0 / std::sqrt(static_cast<double>(sq.d)));
        if (O.numel() == 0) return;
        if (cuda)
            ds::op::run_cuda(DS_KOP_ATTENTION, dev.index, &a, "ds_op_attention");
        else
            ds::cpu::attention(a);
    });
}

ds_status_t ds_op_attention_backward(const ds_tensor_t* q, const ds_tensor_t* k, const ds_tensor_t* v,
                                     const ds_tensor_t* o, const ds_tensor_t* dout, const ds_tensor_t* lse,
                                     ds_tensor_t* dq, ds_tensor_t* dk, ds_tensor_t* dv, const ds_attn_options_t* opt) {
    return ds::capi::guard(__func__, [&] {
        const ds_attn_options_t op = options(opt);
        const Tensor& Q = ds::op::in(q, "q");
        const Tensor& K = ds::op::in(k, "k");
        const Tensor& V = ds::op::in(v, "v");
        const Tensor& O = ds::op::in(o, "o");
        const Tensor& DO = ds::op::in(dout, "dout");
        if (!lse)
            fail(DS_ERR_INVALID_ARG,
                 "lse is NULL; the backward needs the log-sum-exp [B, Hq, S] f32 that ds_op_attention wrote");
        const Tensor& L = ds::op::in(lse, "lse");
        Tensor& DQ = ds::op::out(dq, "dq");
        Tensor& DK = ds::op::out(dk, "dk");
        Tensor& DV = ds::op::out(dv, "dv");
        Bshd sq{}, sk{};
        check_qkv(Q, K, V, sq, sk);
        ds::op::expect_same_dtype(O, "o", Q, "q");
        ds::op::expect_same_shape(O, "o", Q, "q");
        ds::op::expect_same_dtype(DO, "dout", Q, "q");
        ds::op::expect_same_shape(DO, "dout", Q, "q");
        check_lse(L, sq);
        ds::op::expect_same_dtype(DQ, "dq", Q, "q");
        ds::op::expect_same_shape(DQ, "dq", Q, "q");
        ds::op::expect_same_dtype(DK, "dk", K, "k");
        ds::op::expect_same_shape(DK, "dk", K, "k");
        ds::op::expect_same_dtype(DV, "dv", V, "v");
        ds::op::expect_same_shape(DV, "dv", V, "v");
        const ds::device::Device dev = ds::op::same_device({{&Q, "q"}, {&K, "k"}, {&V, "v"}, {&O, "o"}, {&DO, "dout"},
                                                            {&L, "lse"}, {&DQ, "dq"}, {&DK, "dk"}, {&DV, "dv"}});
        const bool cuda = ds::op::is_cuda(dev);
        if (cuda) check_cuda(Q, sq);
        for (const ds::op::Named& out : {ds::op::Named{&DQ, "dq"}, ds::op::Named{&DK, "dk"}, ds::op::Named{&DV, "dv"}})
            no_alias(out.t, out.name,
                     {{&Q, "q"}, {&K, "k"}, {&V, "v"}, {&O, "o"}, {&DO, "dout"}, {&L, "lse"}, {&DQ, "dq"}, {&DK, "dk"},
                      {&DV, "dv"}});

        ds_attn_bwd_args_t a{};
        a.q = Q.data;
        a.k = K.data;
        a.v = V.data;
        a.o = O.data;
        a.dout = DO.data;
        a.lse = static_cast<const float*>(L.data);
        a.dq = DQ.data;
        a.dk = DK.data;
        a.dv = DV.data;
        a.batch = sq.b;
        a.seq_q = sq.s;
        a.seq_kv = sk.s;
        a.heads_q = static_cast<int32_t>(sq.h);
        a.heads_kv = static_cast<int32_t>(sk.h);
        a.head_dim = static_cast<int32_t>(sq.d);
        a.dtype = Q.dtype;
        a.causal = op.causal;
        a.scale = op.scale != 0.0f ? op.scale : static_cast<float>(1.0 / std::sqrt(static_cast<double>(sq.d)));
        if (DQ.numel() == 0 && DK.numel() == 0) return;
        if (cuda)
            ds::op::run_cuda(DS_KOP_ATTENTION_BWD, dev.index, &a, "ds_op_attention_backward");
        else
            ds::cpu::attention_backward(a);
    });
}

}  // extern "C"
