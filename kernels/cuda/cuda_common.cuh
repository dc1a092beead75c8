// Shared helpers of the CUDA module's translation units: error text, device selection, launch checks.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "backend_abi.h"
#include "backend_ops_abi.h"

namespace dscuda {

// The module's thread-local error text (read through ds_backend_v1_t::last_error).
void set_error_text(const std::string& text);
// Record `what: <CUDA error>` and return rc.
int set_error(int rc, const char* what, cudaError_t err);
// DS_BACKEND_OK, or the rc matching err with the text recorded.
int check(cudaError_t err, const char* what);
// Make dev current (DS_BACKEND_NO_DEVICE when out of range).
int use_device(int32_t dev);
const char* last_error_text();
// Check for a launch error of the kernel just launched (does not synchronise).
inline int check_launch(const char* what) { return check(cudaGetLastError(), what); }
// An invalid-argument return with a message.
inline int invalid(const std::string& text) {
    set_error_text(text);
    return DS_BACKEND_INVALID;
}

// Registration of each family's ops into the module's table (kernels/cuda/ops_<family>.cu).
void register_optim_ops(ds_backend_op_fn* table);
void register_nn_ops(ds_backend_op_fn* table);
void register_gemm_ops(ds_backend_op_fn* table);
void register_attn_ops(ds_backend_op_fn* table);

}  // namespace dscuda
