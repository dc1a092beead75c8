// C API: ds_op_* of the optim family (placeholders, replaced by the kernels).
#include <cstring>

#include "capi/guard.hpp"

extern "C" {

void ds_optim_options_init(ds_optim_options_t* opt, int32_t kind) {
    if (!opt) return;
    std::memset(opt, 0, sizeof *opt);
    opt->struct_size = sizeof *opt;
    opt->abi_version = DS_ABI_VERSION;
    opt->kind = kind;
}

ds_status_t ds_op_optim_step(const ds_optim_options_t* opt, int64_t step, ds_tensor_t* const* params, int32_t n_params, ds_tensor_t* const* grads, int32_t n_grads, ds_tensor_t* const* state1, int32_t n_state1, ds_tensor_t* const* state2, int32_t n_state2, ds_tensor_t* const* params_lp, int32_t n_params_lp, int32_t* skipped) {
    return ds::capi::guard(__func__, [&] {
        (void)opt; (void)step; (void)params; (void)n_params; (void)grads; (void)n_grads; (void)state1; (void)n_state1; (void)state2; (void)n_state2; (void)params_lp; (void)n_params_lp; (void)skipped;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

ds_status_t ds_op_global_norm(ds_tensor_t* const* tensors, int32_t n_tensors, double* out) {
    return ds::capi::guard(__func__, [&] {
        (void)tensors; (void)n_tensors; (void)out;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

ds_status_t ds_op_scale(ds_tensor_t* const* tensors, int32_t n_tensors, double alpha) {
    return ds::capi::guard(__func__, [&] {
        (void)tensors; (void)n_tensors; (void)alpha;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

ds_status_t ds_op_find_nonfinite(ds_tensor_t* const* tensors, int32_t n_tensors, int32_t* out) {
    return ds::capi::guard(__func__, [&] {
        (void)tensors; (void)n_tensors; (void)out;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

ds_status_t ds_op_cast(const ds_tensor_t* src, ds_tensor_t* dst, float scale) {
    return ds::capi::guard(__func__, [&] {
        (void)src; (void)dst; (void)scale;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

}  // extern "C"
