// The CUDA op table (backend_ops_abi.h): each family's translation unit fills its indices.
#include "cuda_common.cuh"

namespace {

struct OpTable {
    ds_backend_op_fn ops[DS_KOP_COUNT] = {};
    ds_backend_ops_v1_t table{};
    OpTable() {
        dscuda::register_optim_ops(ops);
        dscuda::register_nn_ops(ops);
        dscuda::register_gemm_ops(ops);
        dscuda::register_attn_ops(ops);
        table.api_version = DS_BACKEND_OPS_API_VERSION;
        table.struct_size = sizeof(ds_backend_ops_v1_t);
        table.n_ops = DS_KOP_COUNT;
        table.ops = ops;
    }
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const ds_backend_ops_v1_t* ds_backend_ops_entry(void) {
    static const OpTable t;
    return &t.table;
}
