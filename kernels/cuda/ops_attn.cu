// CUDA ops of the attn family (placeholder until the family's kernels land: the table entries stay NULL,
// which the core reports as DS_ERR_UNSUPPORTED).
#include "cuda_common.cuh"

namespace dscuda {
void register_attn_ops(ds_backend_op_fn*) {}
}  // namespace dscuda
