// Argument checking and device dispatch shared by the ds_op_* entry points (src/capi/api_op_*.cpp).
//
// Each entry point turns its handles into ds::Tensor references with in()/out()/opt(), checks
// dtypes and shapes with the expect_* helpers (whose messages name the C argument), finds the one
// device of the call with same_device(), fills the op's argument struct (kernels/op_<family>.h) and
// runs either the CPU kernel or run_cuda(). Everything throws ds::Error.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "backend_ops_abi.h"
#include "capi/handles.hpp"
#include "core/error.hpp"
#include "device/tensor.hpp"

namespace ds::op {

// A required tensor argument: a live handle, contiguous. name is the C argument name.
const Tensor& in(const ds_tensor_t* h, const char* name);
// The same for an output tensor (documents intent; same checks).
Tensor& out(ds_tensor_t* h, const char* name);
// An optional tensor argument: nullptr when h is NULL.
const Tensor* opt(const ds_tensor_t* h, const char* name);
Tensor* opt_out(ds_tensor_t* h, const char* name);
// A list argument (ds_tensor_t* const* list, int32_t n): n >= 0, list non-NULL when n > 0, each
// entry checked as in(); entry i is named "name[i]".
std::vector<Tensor*> list(ds_tensor_t* const* hs, int32_t n, const char* name);

// "f32[4, 8]" style description.
std::string describe(const Tensor& t);
std::string shape_str(const Tensor& t);

// dtype of t must be one of allowed.
void expect_dtype(const Tensor& t, const char* name, std::initializer_list<int32_t> allowed);
// f32, f16 or bf16.
void expect_float(const Tensor& t, const char* name);
// Same dtype as ref.
void expect_same_dtype(const Tensor& t, const char* name, const Tensor& ref, const char* ref_name);
// Exactly this shape (use -1 for "any" in a dimension).
void expect_shape(const Tensor& t, const char* name, std::initializer_list<int64_t> shape);
// Same shape as ref.
void expect_same_shape(const Tensor& t, const char* name, const Tensor& ref, const char* ref_name);
// Last dimension of t (throws for 0-d tensors).
int64_t last_dim(const Tensor& t, const char* name);
// Product of all dimensions but the last.
int64_t rows(const Tensor& t);

// The device shared by all non-null tensors (DS_ERR_DEVICE_MISMATCH naming the first that differs).
struct Named {
    const Tensor* t;
    const char* name;
};
device::Device same_device(std::initializer_list<Named> ts);
device::Device same_device(const std::vector<std::vector<Tensor*>*>& lists, const std::vector<const char*>& names);

// Run CUDA op `kop` on device index dev with args; throws DS_ERR_UNSUPPORTED when the module or the op
// is missing (what names the op for the message) and maps backend failures to statuses.
void run_cuda(int32_t kop, int32_t dev, const void* args, const char* what);
// Throw DS_ERR_UNSUPPORTED unless dev is CPU or CUDA.
bool is_cuda(const device::Device& dev);

}  // namespace ds::op
