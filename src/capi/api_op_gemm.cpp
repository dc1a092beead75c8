// C API: ds_op_* of the gemm family (GEMM, quantization, weight-only quantized linear). Each entry
// point checks its arguments (messages name the C argument and its shape or dtype), fills the
// argument struct of kernels/op_gemm.h and runs the CPU kernel (kernels/cpu/gemm*.cpp, quant.cpp) or
// the CUDA op (kernels/cuda/ops_gemm*.cu).
#include <cstring>
#include <string>

#include "capi/guard.hpp"
#include "core/options.hpp"
#include "cpu/gemm.hpp"
#include "op/args.hpp"
#include "op_gemm.h"

static_assert(DS_OPG_F32 == DS_DTYPE_F32 && DS_OPG_F16 == DS_DTYPE_F16 && DS_OPG_BF16 == DS_DTYPE_BF16,
              "op_gemm.h dtype codes must match enum ds_dtype");
static_assert(DS_OPG_EPILOGUE_NONE == DS_EPILOGUE_NONE && DS_OPG_EPILOGUE_BIAS == DS_EPILOGUE_BIAS &&
                  DS_OPG_EPILOGUE_GELU == DS_EPILOGUE_GELU && DS_OPG_EPILOGUE_BIAS_GELU == DS_EPILOGUE_BIAS_GELU,
              "op_gemm.h epilogue codes must match enum ds_epilogue");

namespace {

using ds::Tensor;
using ds::fail;
using ds::op::describe;
using ds::op::shape_str;

// Outputs may not share memory with inputs (none of these ops documents aliasing).
void expect_disjoint(const Tensor& out, const char* out_name, const Tensor* in, const char* in_name) {
    if (!in || !(out.dev == in->dev) || out.nbytes() == 0 || in->nbytes() == 0) return;
    const char* o0 = static_cast<const char*>(out.data);
    const char* i0 = static_cast<const char*>(in->data);
    if (o0 < i0 + in->nbytes() && i0 < o0 + out.nbytes())
        fail(DS_ERR_INVALID_ARG, "%s (%s) overlaps %s (%s) in memory; the output must not alias an input", out_name,
             describe(out).c_str(), in_name, describe(*in).c_str());
}

void expect_flag(int32_t v, const char* name) {
    if (v != 0 && v != 1) fail(DS_ERR_INVALID_ARG, "%s=%d; expected 0 or 1", name, v);
}

// Checked quantization options (the layout rules every quant op shares).
ds_quant_options_t quant_options(const ds_quant_options_t* opt) {
    ds_quant_options_t o = ds::read_options(opt, ds_quant_options_init, "opt");
    if (o.bits != 8 && o.bits != 4) fail(DS_ERR_INVALID_ARG, "opt->bits=%d; expected 8 or 4", o.bits);
    if (o.group_size <= 0) fail(DS_ERR_INVALID_ARG, "opt->group_size=%d; expected a positive group size", o.group_size);
    expect_flag(o.symmetric, "opt->symmetric");
    return o;
}

// The dtype of q for these options: i8 for symmetric 8-bit, else u8.
int32_t q_dtype(const ds_quant_options_t& o) { return o.bits == 8 && o.symmetric ? DS_DTYPE_I8 : DS_DTYPE_U8; }

// Check the group layout for a row length K: group_size divides K; 4 bits need K even.
void expect_groups(int64_t K, const ds_quant_options_t& o, const Tensor& t, const char* name) {
    if (K % o.group_size != 0)
        fail(DS_ERR_INVALID_ARG, "opt->group_size=%d does not divide the last dimension %lld of %s (%s)", o.group_size,
             static_cast<long long>(K), name, describe(t).c_str());
    if (o.bits == 4 && K % 2 != 0)
        fail(DS_ERR_INVALID_ARG, "%s (%s) has an odd last dimension %lld; 4-bit packing needs it even", name,
             describe(t).c_str(), static_cast<long long>(K));
}

// q [rows, K or K/2] of the right dtype, scales and zeros [rows, K/group] f32 (zeros only when
// asymmetric; with symmetric options a given zeros is checked the same way).
void expect_quantized(const Tensor& q, const char* q_name, const Tensor& scales, const Tensor* zeros, int64_t rows,
                      int64_t K, const ds_quant_options_t& o, const char* x_name) {
    ds::op::expect_dtype(q, q_name, {q_dtype(o)});
    const int64_t qk = o.bits == 8 ? K : K / 2;
    if (q.ndim < 1 || ds::op::last_dim(q, q_name) != qk || ds::op::rows(q) != rows)
        fail(DS_ERR_INVALID_ARG, "%s has shape %s; expected %lld rows of %lld %s (%s is %lld x %lld, %d-bit)", q_name,
             shape_str(q).c_str(), static_cast<long long>(rows), static_cast<long long>(qk),
             o.bits == 8 ? "values" : "bytes (two 4-bit values each)", x_name, static_cast<long long>(rows),
             static_cast<long long>(K), o.bits);
    const int64_t ng = K / o.group_size;
    ds::op::expect_dtype(scales, "scales", {DS_DTYPE_F32});
    if (scales.ndim < 1 || ds::op::last_dim(scales, "scales") != ng || ds::op::rows(scales) != rows)
        fail(DS_ERR_INVALID_ARG, "scales has shape %s; expected %lld rows of %lld groups (K=%lld, opt->group_size=%d)",
             shape_str(scales).c_str(), static_cast<long long>(rows), static_cast<long long>(ng),
             static_cast<long long>(K), o.group_size);
    if (!o.symmetric && !zeros)
        fail(DS_ERR_INVALID_ARG, "zeros is NULL; asymmetric quantization (opt->symmetric=0) needs it");
    if (zeros) {
        ds::op::expect_dtype(*zeros, "zeros", {DS_DTYPE_F32});
        ds::op::expect_same_shape(*zeros, "zeros", scales, "scales");
    }
}

}  // namespace

extern "C" {

void ds_gemm_options_init(ds_gemm_options_t* opt) {
    if (!opt) return;
    std::memset(opt, 0, sizeof *opt);
    opt->struct_size = sizeof *opt;
    opt->abi_version = DS_ABI_VERSION;
    opt->trans_a = 0;
    opt->trans_b = 0;
    opt->alpha = 1.0f;
    opt->beta = 0.0f;
    opt->epilogue = DS_EPILOGUE_NONE;
}

ds_status_t ds_op_gemm(const ds_tensor_t* a, const ds_tensor_t* b, const ds_tensor_t* bias, ds_tensor_t* c,
                       const ds_gemm_options_t* opt) {
    return ds::capi::guard(__func__, [&] {
        const Tensor& A = ds::op::in(a, "a");
        const Tensor& B = ds::op::in(b, "b");
        const Tensor* Bias = ds::op::opt(bias, "bias");
        Tensor& C = ds::op::out(c, "c");
        const ds_gemm_options_t o = ds::read_options(opt, ds_gemm_options_init, "opt");
        expect_flag(o.trans_a, "opt->trans_a");
        expect_flag(o.trans_b, "opt->trans_b");
        if (o.epilogue < DS_EPILOGUE_NONE || o.epilogue > DS_EPILOGUE_BIAS_GELU)
            fail(DS_ERR_INVALID_ARG, "opt->epilogue=%d; expected a ds_epilogue (0 NONE, 1 BIAS, 2 GELU, 3 BIAS_GELU)",
                 o.epilogue);
        if (o.epilogue != DS_EPILOGUE_NONE && o.beta != 0.0f)
            fail(DS_ERR_INVALID_ARG, "opt->beta=%g with opt->epilogue=%d; the epilogues need beta = 0",
                 static_cast<double>(o.beta), o.epilogue);
        const bool want_bias = o.epilogue == DS_EPILOGUE_BIAS || o.epilogue == DS_EPILOGUE_BIAS_GELU;
        if (want_bias && !Bias) fail(DS_ERR_INVALID_ARG, "bias is NULL but opt->epilogue=%d adds a bias", o.epilogue);
        if (!want_bias && Bias)
            fail(DS_ERR_INVALID_ARG, "bias (%s) is given but opt->epilogue=%d adds no bias; use DS_EPILOGUE_BIAS or "
                 "DS_EPILOGUE_BIAS_GELU", describe(*Bias).c_str(), o.epilogue);

        ds::op::expect_float(A, "a");
        ds::op::expect_same_dtype(B, "b", A, "a");
        ds::op::expect_dtype(C, "c", {A.dtype, DS_DTYPE_F32});
        if (A.ndim != 2 && A.ndim != 3)
            fail(DS_ERR_INVALID_ARG, "a has shape %s; expected [M, K] or [batch, M, K] (2-D or 3-D)", shape_str(A).c_str());
        if (B.ndim != 2 && B.ndim != 3)
            fail(DS_ERR_INVALID_ARG, "b has shape %s; expected [K, N] or [batch, K, N] (2-D or 3-D)", shape_str(B).c_str());
        const bool batched = A.ndim == 3;
        if (!batched && B.ndim == 3)
            fail(DS_ERR_INVALID_ARG, "b has shape %s (batched) but a has shape %s; a batched b needs a batched a",
                 shape_str(B).c_str(), shape_str(A).c_str());
        const int64_t batch = batched ? A.shape[0] : 1;
        if (batched && B.ndim == 3 && B.shape[0] != batch)
            fail(DS_ERR_INVALID_ARG, "b has shape %s but a has shape %s; the batch dimensions differ",
                 shape_str(B).c_str(), shape_str(A).c_str());
        const int ao = A.ndim - 2, bo = B.ndim - 2;
        const int64_t M = o.trans_a ? A.shape[ao + 1] : A.shape[ao];
        const int64_t K = o.trans_a ? A.shape[ao] : A.shape[ao + 1];
        const int64_t Kb = o.trans_b ? B.shape[bo + 1] : B.shape[bo];
        const int64_t N = o.trans_b ? B.shape[bo] : B.shape[bo + 1];
        if (K != Kb)
            fail(DS_ERR_INVALID_ARG,
                 "a has shape %s and b has shape %s: op(a) is %lld x %lld (opt->trans_a=%d) but op(b) is %lld x %lld "
                 "(opt->trans_b=%d); the inner dimensions must match",
                 shape_str(A).c_str(), shape_str(B).c_str(), static_cast<long long>(M), static_cast<long long>(K),
                 o.trans_a, static_cast<long long>(Kb), static_cast<long long>(N), o.trans_b);
        const bool c_ok = batched ? (C.ndim == 3 && C.shape[0] == batch && C.shape[1] == M && C.shape[2] == N)
                                  : (C.ndim == 2 && C.shape[0] == M && C.shape[1] == N);
        if (!c_ok) {
            std::string want = batched ? ds::format("[%lld, %lld, %lld]", static_cast<long long>(batch),
                                                    static_cast<long long>(M), static_cast<long long>(N))
                                       : ds::format("[%lld, %lld]", static_cast<long long>(M), static_cast<long long>(N));
            fail(DS_ERR_INVALID_ARG, "c has shape %s; expected %s for a %s and b %s (opt->trans_a=%d, opt->trans_b=%d)",
                 shape_str(C).c_str(), want.c_str(), shape_str(A).c_str(), shape_str(B).c_str(), o.trans_a, o.trans_b);
        }
        if (Bias) {
            ds::op::expect_same_dtype(*Bias, "bias", C, "c");
            ds::op::expect_shape(*Bias, "bias", {N});
        }
        const ds::device::Device dev = ds::op::same_device({{&A, "a"}, {&B, "b"}, {Bias, "bias"}, {&C, "c"}});
        expect_disjoint(C, "c", &A, "a");
        expect_disjoint(C, "c", &B, "b");
        expect_disjoint(C, "c", Bias, "bias");

        ds_op_gemm_args_t g{};
        g.a = A.data;
        g.b = B.data;
        g.bias = Bias ? Bias->data : nullptr;
        g.c = C.data;
        g.a_dtype = A.dtype;
        g.b_dtype = B.dtype;
        g.c_dtype = C.dtype;
        g.trans_a = o.trans_a;
        g.trans_b = o.trans_b;
        g.epilogue = o.epilogue;
        g.alpha = o.alpha;
        g.beta = o.beta;
        g.batch = batch;
        g.m = M;
        g.n = N;
        g.k = K;
        g.lda = o.trans_a ? M : K;
        g.ldb = o.trans_b ? K : N;
        g.ldc = N;
        g.stride_a = batched ? M * K : 0;
        g.stride_b = B.ndim == 3 ? K * N : 0;
        g.stride_c = batched ? M * N : 0;
        if (M == 0 || N == 0 || batch == 0) return;
        if (ds::op::is_cuda(dev))
            ds::op::run_cuda(DS_KOP_GEMM, dev.index, &g, "ds_op_gemm");
        else
            ds::cpu::gemm(g);
    });
}

void ds_quant_options_init(ds_quant_options_t* opt) {
    if (!opt) return;
    std::memset(opt, 0, sizeof *opt);
    opt->struct_size = sizeof *opt;
    opt->abi_version = DS_ABI_VERSION;
    opt->bits = 8;
    opt->group_size = 128;
    opt->symmetric = 1;
}

ds_status_t ds_op_quantize(const ds_tensor_t* x, ds_tensor_t* q, ds_tensor_t* scales, ds_tensor_t* zeros,
                           const ds_quant_options_t* opt) {
    return ds::capi::guard(__func__, [&] {
        const Tensor& X = ds::op::in(x, "x");
        Tensor& Q = ds::op::out(q, "q");
        Tensor& S = ds::op::out(scales, "scales");
        Tensor* Z = ds::op::opt_out(zeros, "zeros");
        const ds_quant_options_t o = quant_options(opt);
        ds::op::expect_float(X, "x");
        const int64_t K = ds::op::last_dim(X, "x");
        const int64_t rows = ds::op::rows(X);
        expect_groups(K, o, X, "x");
        expect_quantized(Q, "q", S, Z, rows, K, o, "x");
        const ds::device::Device dev = ds::op::same_device({{&X, "x"}, {&Q, "q"}, {&S, "scales"}, {Z, "zeros"}});
        expect_disjoint(Q, "q", &X, "x");
        expect_disjoint(S, "scales", &X, "x");
        expect_disjoint(S, "scales", &Q, "q");
        if (Z) {
            expect_disjoint(*Z, "zeros", &X, "x");
            expect_disjoint(*Z, "zeros", &Q, "q");
            expect_disjoint(*Z, "zeros", &S, "scales");
        }
        ds_op_quant_args_t qa{};
        qa.x = X.data;
        qa.q = Q.data;
        qa.scales = static_cast<float*>(S.data);
        qa.zeros = Z ? static_cast<float*>(Z->data) : nullptr;
        qa.x_dtype = X.dtype;
        qa.bits = o.bits;
        qa.group_size = o.group_size;
        qa.symmetric = o.symmetric;
        qa.rows = rows;
        qa.cols = K;
        if (rows == 0 || K == 0) return;
        if (ds::op::is_cuda(dev))
            ds::op::run_cuda(DS_KOP_QUANTIZE, dev.index, &qa, "ds_op_quantize");
        else
            ds::cpu::quantize(qa);
    });
}

ds_status_t ds_op_dequantize(const ds_tensor_t* q, const ds_tensor_t* scales, const ds_tensor_t* zeros, ds_tensor_t* y,
                             const ds_quant_options_t* opt) {
    return ds::capi::guard(__func__, [&] {
        const Tensor& Q = ds::op::in(q, "q");
        const Tensor& S = ds::op::in(scales, "scales");
        const Tensor* Z = ds::op::opt(zeros, "zeros");
        Tensor& Y = ds::op::out(y, "y");
        const ds_quant_options_t o = quant_options(opt);
        ds::op::expect_float(Y, "y");
        const int64_t K = ds::op::last_dim(Y, "y");
        const int64_t rows = ds::op::rows(Y);
        expect_groups(K, o, Y, "y");
        expect_quantized(Q, "q", S, Z, rows, K, o, "y");
        const ds::device::Device dev = ds::op::same_device({{&Q, "q"}, {&S, "scales"}, {Z, "zeros"}, {&Y, "y"}});
        expect_disjoint(Y, "y", &Q, "q");
        expect_disjoint(Y, "y", &S, "scales");
        expect_disjoint(Y, "y", Z, "zeros");
        ds_op_dequant_args_t da{};
        da.q = Q.data;
        da.scales = static_cast<const float*>(S.data);
        da.zeros = o.symmetric ? nullptr : static_cast<const float*>(Z->data);
        da.y = Y.data;
        da.y_dtype = Y.dtype;
        da.bits = o.bits;
        da.group_size = o.group_size;
        da.symmetric = o.symmetric;
        da.rows = rows;
        da.cols = K;
        if (rows == 0 || K == 0) return;
        if (ds::op::is_cuda(dev))
            ds::op::run_cuda(DS_KOP_DEQUANTIZE, dev.index, &da, "ds_op_dequantize");
        else
            ds::cpu::dequantize(da);
    });
}

ds_status_t ds_op_gemm_wq(const ds_tensor_t* x, const ds_tensor_t* wq, const ds_tensor_t* scales,
                          const ds_tensor_t* zeros, const ds_tensor_t* bias, ds_tensor_t* y,
                          const ds_quant_options_t* opt) {
    return ds::capi::guard(__func__, [&] {
        const Tensor& X = ds::op::in(x, "x");
        const Tensor& W = ds::op::in(wq, "wq");
        const Tensor& S = ds::op::in(scales, "scales");
        const Tensor* Z = ds::op::opt(zeros, "zeros");
        const Tensor* Bias = ds::op::opt(bias, "bias");
        Tensor& Y = ds::op::out(y, "y");
        const ds_quant_options_t o = quant_options(opt);
        ds::op::expect_float(X, "x");
        const int64_t K = ds::op::last_dim(X, "x");
        const int64_t M = ds::op::rows(X);
        expect_groups(K, o, X, "x");
        if (W.ndim != 2)
            fail(DS_ERR_INVALID_ARG, "wq has shape %s; expected a 2-D quantized weight [N, %lld]", shape_str(W).c_str(),
                 static_cast<long long>(o.bits == 8 ? K : K / 2));
        const int64_t N = W.shape[0];
        expect_quantized(W, "wq", S, Z, N, K, o, "the weight");
        ds::op::expect_same_dtype(Y, "y", X, "x");
        bool y_ok = Y.ndim == X.ndim && Y.shape[Y.ndim - 1] == N;
        for (int32_t i = 0; y_ok && i + 1 < X.ndim; ++i) y_ok = Y.shape[i] == X.shape[i];
        if (!y_ok) {
            std::string want = "[";
            for (int32_t i = 0; i + 1 < X.ndim; ++i) want += std::to_string(X.shape[i]) + ", ";
            want += std::to_string(N) + "]";
            fail(DS_ERR_INVALID_ARG, "y has shape %s; expected %s (x %s times the transposed weight of %lld rows)",
                 shape_str(Y).c_str(), want.c_str(), shape_str(X).c_str(), static_cast<long long>(N));
        }
        if (Bias) {
            ds::op::expect_same_dtype(*Bias, "bias", X, "x");
            ds::op::expect_shape(*Bias, "bias", {N});
        }
        const ds::device::Device dev = ds::op::same_device(
            {{&X, "x"}, {&W, "wq"}, {&S, "scales"}, {Z, "zeros"}, {Bias, "bias"}, {&Y, "y"}});
        expect_disjoint(Y, "y", &X, "x");
        expect_disjoint(Y, "y", &W, "wq");
        expect_disjoint(Y, "y", &S, "scales");
        expect_disjoint(Y, "y", Z, "zeros");
        expect_disjoint(Y, "y", Bias, "bias");
        ds_op_gemm_wq_args_t ga{};
        ga.x = X.data;
        ga.wq = W.data;
        ga.scales = static_cast<const float*>(S.data);
        ga.zeros = o.symmetric ? nullptr : static_cast<const float*>(Z->data);
        ga.bias = Bias ? Bias->data : nullptr;
        ga.y = Y.data;
        ga.dtype = X.dtype;
        ga.bits = o.bits;
        ga.group_size = o.group_size;
        ga.symmetric = o.symmetric;
        ga.m = M;
        ga.n = N;
        ga.k = K;
        if (M == 0 || N == 0) return;
        if (ds::op::is_cuda(dev))
            ds::op::run_cuda(DS_KOP_GEMM_WQ, dev.index, &ga, "ds_op_gemm_wq");
        else
            ds::cpu::gemm_wq(ga);
    });
}

}  // extern "C"
