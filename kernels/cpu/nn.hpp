// CPU kernels of the nn family (transformer ops). The entry points in ds::cpu dispatch on
// ds::op::cpu_isa() to one of three builds of kernels/cpu/nn_impl.hpp: nn.cpp (baseline x86-64),
// nn_avx2.cpp and nn_avx512.cpp. Arguments are the plain structs of kernels/op_nn.h; they are
// validated by the C API (src/capi/api_op_nn.cpp) before they get here.
#pragma once

#include <cstdint>

#include "op_nn.h"

namespace ds::cpu {

#define DS_NN_CPU_KERNELS(X)                                          \
    X(embedding, ds_nn_embedding_args_t)                              \
    X(embedding_backward, ds_nn_embedding_args_t)                     \
    X(norm, ds_nn_norm_args_t)                                        \
    X(norm_backward, ds_nn_norm_args_t)                               \
    X(activation, ds_nn_act_args_t)                                   \
    X(activation_backward, ds_nn_act_args_t)                          \
    X(swiglu, ds_nn_swiglu_args_t)                                    \
    X(swiglu_backward, ds_nn_swiglu_args_t)                           \
    X(add, ds_nn_add_args_t)                                          \
    X(sum_rows, ds_nn_add_args_t)                                     \
    X(softmax, ds_nn_softmax_args_t)                                  \
    X(softmax_backward, ds_nn_softmax_args_t)                         \
    X(cross_entropy, ds_nn_xent_args_t)                               \
    X(rope, ds_nn_rope_args_t)                                        \
    X(dropout, ds_nn_dropout_args_t)

#define DS_NN_DECLARE(name, type) void name(const type& a);
// The dispatching entry points.
DS_NN_CPU_KERNELS(DS_NN_DECLARE)
// One build per instruction set (never call these directly: the dispatchers check the CPU).
namespace nn_scalar {
DS_NN_CPU_KERNELS(DS_NN_DECLARE)
}
namespace nn_avx2 {
DS_NN_CPU_KERNELS(DS_NN_DECLARE)
}
namespace nn_avx512 {
DS_NN_CPU_KERNELS(DS_NN_DECLARE)
}
#undef DS_NN_DECLARE

// Index of the first element of idx[n] (i32 or i64) outside [0, hi) that is not `ignore`
// (has_ignore), or -1; *value receives it.
int64_t nn_first_bad_index(const void* idx, int32_t idtype, int64_t n, int64_t hi, bool has_ignore, int64_t ignore,
                           int64_t* value);

}  // namespace ds::cpu
