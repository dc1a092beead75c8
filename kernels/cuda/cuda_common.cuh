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
// Launch kernel<<<grid, block, smem, stream 0>>>(args...) with programmatic stream serialization: it may
// start while the kernel ahead of it in the stream still runs, so it must call griddepcontrol.wait
// (dsattn::grid_dep_wait) before it touches what that kernel writes. For compute capability 9.0 and up.
template <typename... Params, typename... Args>
int launch_dependent(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, const char* what, Args&&... args) {
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = 0;
    cudaLaunchAttribute attr{};
    attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr.val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
    return check(cudaLaunchKernelEx(&cfg, kernel, static_cast<Args&&>(args)...), what);
}
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
