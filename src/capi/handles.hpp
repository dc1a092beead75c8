// The structs behind the opaque handles of dsabi.h. Each carries its type magic and name for
// check_handle, and holds its implementation through shared ownership so that children can keep
// what they depend on alive.
#pragma once

#include "core/handles.hpp"
#include "device/tensor.hpp"

struct ds_tensor {
    static constexpr uint32_t kMagic = ds::kMagicTensor;
    static constexpr const char* kTypeName = "ds_tensor_t";
    ds::Tensor t;
};
