// C API: ds_op_* of the attn family (placeholders, replaced by the kernels).
#include <cstring>

#include "capi/guard.hpp"

extern "C" {

void ds_attn_options_init(ds_attn_options_t* opt) {
    if (!opt) return;
    std::memset(opt, 0, sizeof *opt);
    opt->struct_size = sizeof *opt;
    opt->abi_version = DS_ABI_VERSION;
}

ds_status_t ds_op_attention(const ds_tensor_t* q, const ds_tensor_t* k, const ds_tensor_t* v, ds_tensor_t* o, ds_tensor_t* lse, const ds_attn_options_t* opt) {
    return ds::capi::guard(__func__, [&] {
        (void)q; (void)k; (void)v; (void)o; (void)lse; (void)opt;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

ds_status_t ds_op_attention_backward(const ds_tensor_t* q, const ds_tensor_t* k, const ds_tensor_t* v, const ds_tensor_t* o, const ds_tensor_t* dout, const ds_tensor_t* lse, ds_tensor_t* dq, ds_tensor_t* dk, ds_tensor_t* dv, const ds_attn_options_t* opt) {
    return ds::capi::guard(__func__, [&] {
        (void)q; (void)k; (void)v; (void)o; (void)dout; (void)lse; (void)dq; (void)dk; (void)dv; (void)opt;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

}  // extern "C"
