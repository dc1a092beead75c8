// C API: ds_op_* of the gemm family (placeholders, replaced by the kernels).
#include <cstring>

#include "capi/guard.hpp"

extern "C" {

void ds_gemm_options_init(ds_gemm_options_t* opt) {
    if (!opt) return;
    std::memset(opt, 0, sizeof *opt);
    opt->struct_size = sizeof *opt;
    opt->abi_version = DS_ABI_VERSION;
}

ds_status_t ds_op_gemm(const ds_tensor_t* a, const ds_tensor_t* b, const ds_tensor_t* bias, ds_tensor_t* c, const ds_gemm_options_t* opt) {
    return ds::capi::guard(__func__, [&] {
        (void)a; (void)b; (void)bias; (void)c; (void)opt;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

void ds_quant_options_init(ds_quant_options_t* opt) {
    if (!opt) return;
    std::memset(opt, 0, sizeof *opt);
    opt->struct_size = sizeof *opt;
    opt->abi_version = DS_ABI_VERSION;
}

ds_status_t ds_op_quantize(const ds_tensor_t* x, ds_tensor_t* q, ds_tensor_t* scales, ds_tensor_t* zeros, const ds_quant_options_t* opt) {
    return ds::capi::guard(__func__, [&] {
        (void)x; (void)q; (void)scales; (void)zeros; (void)opt;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

ds_status_t ds_op_dequantize(const ds_tensor_t* q, const ds_tensor_t* scales, const ds_tensor_t* zeros, ds_tensor_t* y, const ds_quant_options_t* opt) {
    return ds::capi::guard(__func__, [&] {
        (void)q; (void)scales; (void)zeros; (void)y; (void)opt;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

ds_status_t ds_op_gemm_wq(const ds_tensor_t* x, const ds_tensor_t* wq, const ds_tensor_t* scales, const ds_tensor_t* zeros, const ds_tensor_t* bias, ds_tensor_t* y, const ds_quant_options_t* opt) {
    return ds::capi::guard(__func__, [&] {
        (void)x; (void)wq; (void)scales; (void)zeros; (void)bias; (void)y; (void)opt;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

}  // extern "C"
