/* Frozen layouts of the public structs (x86-64 / LP64). A failing assertion here means an ABI
 * change: fields may only be appended, never reordered or resized. */
#include <stddef.h>

#include "dsabi.h"

#define LAYOUT(cond) _Static_assert(cond, #cond)

LAYOUT(sizeof(ds_status_t) == 4);
LAYOUT(offsetof(ds_lib_options_t, struct_size) == 0);
LAYOUT(offsetof(ds_lib_options_t, abi_version) == 4);
LAYOUT(offsetof(ds_lib_options_t, log_level) == 8);
LAYOUT(offsetof(ds_lib_options_t, load_cuda) == 12);
LAYOUT(offsetof(ds_lib_options_t, cuda_backend_path) == 16);
LAYOUT(sizeof(ds_lib_options_t) == 24);

LAYOUT(offsetof(ds_config_options_t, world_size) == 8);
LAYOUT(offsetof(ds_config_options_t, strict) == 12);
LAYOUT(offsetof(ds_config_options_t, accept_auto) == 16);
LAYOUT(sizeof(ds_config_options_t) == 20);

LAYOUT(offsetof(ds_dev_info_t, type) == 8);
LAYOUT(offsetof(ds_dev_info_t, index) == 12);
LAYOUT(offsetof(ds_dev_info_t, name) == 16);
LAYOUT(offsetof(ds_dev_info_t, total_memory_bytes) == 144);
LAYOUT(offsetof(ds_dev_info_t, free_memory_bytes) == 152);
LAYOUT(offsetof(ds_dev_info_t, compute_capability_major) == 160);
LAYOUT(offsetof(ds_dev_info_t, multiprocessor_count) == 168);
LAYOUT(sizeof(ds_dev_info_t) == 176);

LAYOUT(offsetof(ds_api_t, lib_options_init) == 8);
LAYOUT(offsetof(ds_api_t, tensor_fill) == 8 + 47 * sizeof(void*));
LAYOUT(offsetof(ds_api_t, comm_options_init) == 8 + 48 * sizeof(void*));
LAYOUT(offsetof(ds_api_t, comm_log_reset) == 8 + 71 * sizeof(void*));
LAYOUT(offsetof(ds_api_t, data_tokenizer_options_init) == 8 + 72 * sizeof(void*));
LAYOUT(offsetof(ds_api_t, data_batch_destroy) == 8 + 124 * sizeof(void*));
LAYOUT(offsetof(ds_api_t, op_get_cpu_isa) == 8 + 125 * sizeof(void*));
LAYOUT(offsetof(ds_api_t, op_gemm_wq) == 8 + 160 * sizeof(void*));
LAYOUT(sizeof(ds_api_t) == 8 + 161 * sizeof(void*));

LAYOUT(offsetof(ds_optim_options_t, kind) == 8);
LAYOUT(offsetof(ds_optim_options_t, lr) == 12);
LAYOUT(offsetof(ds_optim_options_t, eps) == 24);
LAYOUT(offsetof(ds_optim_options_t, bias_correction) == 32);
LAYOUT(offsetof(ds_optim_options_t, nesterov) == 44);
LAYOUT(offsetof(ds_optim_options_t, min_coeff) == 56);
LAYOUT(offsetof(ds_optim_options_t, grad_scale) == 60);
LAYOUT(offsetof(ds_optim_options_t, check_finite) == 64);
LAYOUT(sizeof(ds_optim_options_t) == 68);
LAYOUT(offsetof(ds_gemm_options_t, trans_a) == 8);
LAYOUT(offsetof(ds_gemm_options_t, alpha) == 16);
LAYOUT(offsetof(ds_gemm_options_t, epilogue) == 24);
LAYOUT(sizeof(ds_gemm_options_t) == 28);
LAYOUT(offsetof(ds_attn_options_t, causal) == 8);
LAYOUT(offsetof(ds_attn_options_t, scale) == 12);
LAYOUT(sizeof(ds_attn_options_t) == 16);
LAYOUT(offsetof(ds_quant_options_t, bits) == 8);
LAYOUT(offsetof(ds_quant_options_t, group_size) == 12);
LAYOUT(offsetof(ds_quant_options_t, symmetric) == 16);
LAYOUT(sizeof(ds_quant_options_t) == 20);

LAYOUT(offsetof(ds_comm_options_t, rank) == 8);
LAYOUT(offsetof(ds_comm_options_t, world_size) == 12);
LAYOUT(offsetof(ds_comm_options_t, local_rank) == 16);
LAYOUT(offsetof(ds_comm_options_t, local_world_size) == 20);
LAYOUT(offsetof(ds_comm_options_t, master_port) == 24);
LAYOUT(offsetof(ds_comm_options_t, timeout_ms) == 28);
LAYOUT(offsetof(ds_comm_options_t, backend) == 32);
LAYOUT(offsetof(ds_comm_options_t, check_mismatch) == 36);
LAYOUT(offsetof(ds_comm_options_t, master_addr) == 40);
LAYOUT(offsetof(ds_comm_options_t, store_dir) == 48);
LAYOUT(offsetof(ds_comm_options_t, store_prefix) == 56);
LAYOUT(offsetof(ds_comm_options_t, bind_addr) == 64);
LAYOUT(offsetof(ds_comm_options_t, config) == 72);
LAYOUT(sizeof(ds_comm_options_t) == 80);

/* Enum values are part of the ABI too. */
LAYOUT(DS_DTYPE_F32 == 0 && DS_DTYPE_BF16 == 2 && DS_DTYPE_I64 == 7 && DS_DTYPE_FP8_E5M2 == 9);
LAYOUT(DS_DEV_CPU == 1 && DS_DEV_CUDA == 2);
LAYOUT(DS_ERR_INVALID_HANDLE == -3 && DS_ERR_NO_DEVICE == -101 && DS_ERR_COMM_TIMEOUT == -201);
LAYOUT(DS_REDUCE_SUM == 0 && DS_REDUCE_AVG == 1 && DS_REDUCE_PROD == 4);
LAYOUT(DS_COMM_BACKEND_AUTO == 0 && DS_COMM_BACKEND_NCCL == 2 && DS_COMM_SOURCE_DEFAULT == 4 && DS_COMM_SPLIT_NONE == -1);
LAYOUT(DS_ERR_IO == -300 && DS_ERR_CONFIG_BATCH == -404 && DS_ERR_CONFIG_UNSUPPORTED == -405);

int main(void) { return 0; }
