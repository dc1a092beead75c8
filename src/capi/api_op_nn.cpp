// C API: ds_op_* of the nn family (placeholders, replaced by the kernels).
#include <cstring>

#include "capi/guard.hpp"

extern "C" {

ds_status_t ds_op_embedding(const ds_tensor_t* weight, const ds_tensor_t* ids, ds_tensor_t* out) {
    return ds::capi::guard(__func__, [&] {
        (void)weight; (void)ids; (void)out;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

ds_status_t ds_op_embedding_backward(const ds_tensor_t* ids, const ds_tensor_t* dout, ds_tensor_t* dweight) {
    return ds::capi::guard(__func__, [&] {
        (void)ids; (void)dout; (void)dweight;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

ds_status_t ds_op_layer_norm(const ds_tensor_t* x, const ds_tensor_t* weight, const ds_tensor_t* bias, float eps, ds_tensor_t* y, ds_tensor_t* mean, ds_tensor_t* rstd) {
    return ds::capi::guard(__func__, [&] {
        (void)x; (void)weight; (void)bias; (void)eps; (void)y; (void)mean; (void)rstd;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

ds_status_t ds_op_layer_norm_backward(const ds_tensor_t* dy, const ds_tensor_t* x, const ds_tensor_t* weight, const ds_tensor_t* mean, const ds_tensor_t* rstd, ds_tensor_t* dx, ds_tensor_t* dweight, ds_tensor_t* dbias) {
    return ds::capi::guard(__func__, [&] {
        (void)dy; (void)x; (void)weight; (void)mean; (void)rstd; (void)dx; (void)dweight; (void)dbias;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

ds_status_t ds_op_rms_norm(const ds_tensor_t* x, const ds_tensor_t* weight, float eps, ds_tensor_t* y, ds_tensor_t* rstd) {
    return ds::capi::guard(__func__, [&] {
        (void)x; (void)weight; (void)eps; (void)y; (void)rstd;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

ds_status_t ds_op_rms_norm_backward(const ds_tensor_t* dy, const ds_tensor_t* x, const ds_tensor_t* weight, const ds_tensor_t* rstd, ds_tensor_t* dx, ds_tensor_t* dweight) {
    return ds::capi::guard(__func__, [&] {
        (void)dy; (void)x; (void)weight; (void)rstd; (void)dx; (void)dweight;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

ds_status_t ds_op_activation(int32_t act, const ds_tensor_t* x, ds_tensor_t* y) {
    return ds::capi::guard(__func__, [&] {
        (void)act; (void)x; (void)y;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

ds_status_t ds_op_activation_backward(int32_t act, const ds_tensor_t* x, const ds_tensor_t* dy, ds_tensor_t* dx) {
    return ds::capi::guard(__func__, [&] {
        (void)act; (void)x; (void)dy; (void)dx;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

ds_status_t ds_op_swiglu(const ds_tensor_t* gate, const ds_tensor_t* up, ds_tensor_t* y) {
    return ds::capi::guard(__func__, [&] {
        (void)gate; (void)up; (void)y;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

ds_status_t ds_op_swiglu_backward(const ds_tensor_t* gate, const ds_tensor_t* up, const ds_tensor_t* dy, ds_tensor_t* dgate, ds_tensor_t* dup) {
    return ds::capi::guard(__func__, [&] {
        (void)gate; (void)up; (void)dy; (void)dgate; (void)dup;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

ds_status_t ds_op_add(const ds_tensor_t* a, const ds_tensor_t* b, ds_tensor_t* y) {
    return ds::capi::guard(__func__, [&] {
        (void)a; (void)b; (void)y;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

ds_status_t ds_op_sum_rows(const ds_tensor_t* dy, ds_tensor_t* dbias) {
    return ds::capi::guard(__func__, [&] {
        (void)dy; (void)dbias;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

ds_status_t ds_op_softmax(const ds_tensor_t* x, float scale, ds_tensor_t* y) {
    return ds::capi::guard(__func__, [&] {
        (void)x; (void)scale; (void)y;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

ds_status_t ds_op_softmax_backward(const ds_tensor_t* y, const ds_tensor_t* dy, float scale, ds_tensor_t* dx) {
    return ds::capi::guard(__func__, [&] {
        (void)y; (void)dy; (void)scale; (void)dx;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

ds_status_t ds_op_cross_entropy(const ds_tensor_t* logits, const ds_tensor_t* targets, int64_t ignore_index, float dloss, ds_tensor_t* losses, ds_tensor_t* dlogits) {
    return ds::capi::guard(__func__, [&] {
        (void)logits; (void)targets; (void)ignore_index; (void)dloss; (void)losses; (void)dlogits;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

ds_status_t ds_op_rope(const ds_tensor_t* x, const ds_tensor_t* positions, float theta, int32_t inverse, ds_tensor_t* y) {
    return ds::capi::guard(__func__, [&] {
        (void)x; (void)positions; (void)theta; (void)inverse; (void)y;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

ds_status_t ds_op_dropout(const ds_tensor_t* x, float p, uint64_t seed, uint64_t offset, ds_tensor_t* y) {
    return ds::capi::guard(__func__, [&] {
        (void)x; (void)p; (void)seed; (void)offset; (void)y;
        ds::fail(DS_ERR_UNSUPPORTED, "not built yet");
    });
}

}  // extern "C"
