/* dsabi_common.i - the language-neutral part of the SWIG bindings.
 *
 * Each language has one entry file (bindings/<lang>/dsabi_<lang>.i) that declares its %module and
 * its typemaps and %exception rules (how a pending status becomes an error there), then %includes
 * this file - after them, so that they apply to everything declared here - and finally adds its own
 * helpers, which use the functions of status.i.
 *
 *   status.i     pending status and message (thread-local) - the only error channel
 *   buffers.i    strings out of the library, two-call (buf, cap, &len), dimension lists
 *   naming.i     class and function names of the generated layer
 *   structs.i    the options and result structs exposed field by field (whitelisted fields)
 *   handles.i    ConfigHandle, TensorHandle and DevInfo classes and the shared helper functions
 *   data.i       the data pipeline: datasets, writers, tokenizers, samplers, curricula, loaders
 *   comm.i       communicators and their work handles
 *   ops.i        the op layer (ds_op_*): optimizers, reductions, casts, transformer ops, GEMM,
 *                attention, quantization, CPU ISA / thread settings
 *
 * dsabi.h is wrapped through a whitelist: %ignoreall, then the functions whose signature needs no
 * help (no status, no out-parameter), the enumerations and macros the bindings use, and the
 * DevInfo fields. Everything else is reached through the helpers of handles.i, data.i, comm.i and
 * ops.i (and, for the options structs they expose, only the fields they name), so a function
 * added to dsabi.h never shows up in a binding unseen. ds_free is used inside the helpers only, and
 * ds_get_api stays C-only (it serves dlopen() hosts; a binding is linked to the library already).
 */

%{
#include "dsabi.h"
#include <dlpack/dlpack.h>
#include <stdbool.h>
#include <stdint.h>
%}

%include <stdint.i>

/* dsabi.h's export and deprecation macros mean nothing to SWIG. */
#define DS_API
#define DS_DEPRECATED(msg)

%include "status.i"
%include "buffers.i"
%include "naming.i"

%ignoreall
%rename("%(strip:[ds_])s") ds_version_number;
%rename("%(strip:[ds_])s") ds_version_string;
%rename("%(strip:[ds_])s") ds_status_str;
%rename("%(strip:[ds_])s") ds_last_error;
%rename("%(strip:[ds_])s") ds_last_error_clear;
%rename("%(strip:[ds_])s") ds_dtype_name;
%unignore ds_status_code;
%unignore ds_dtype;
%unignore ds_dev_type;
%unignore ds_log_level;
%unignore ds_json_kind;
%unignore ds_config_world_source;
%unignore ds_reduce_op;
%unignore ds_comm_backend;
%unignore ds_comm_source;
%unignore ds_data_tokenizer_kind;
%unignore ds_data_split;
%unignore ds_data_verify;
%unignore ds_data_schedule;
%unignore ds_data_floor;
%unignore ds_data_difficulty_type;
%unignore ds_data_lr_scaling;
%unignore ds_data_picking_order;
%unignore ds_data_mode;
%unignore ds_data_field;
%unignore ds_cpu_isa;
%unignore ds_optim_kind;
%unignore ds_activation;
%unignore ds_epilogue;
%rename("%s", regextarget=1) "^DS_(OK|INPROGRESS|ABORTED|ERR_[A-Z0-9_]+|DTYPE_[A-Z0-9_]+|DEV_[A-Z]+|LOG_[A-Z]+|JSON_[A-Z]+|WORLD_[A-Z_]+|REDUCE_[A-Z]+|COMM_BACKEND_[A-Z]+|COMM_SOURCE_[A-Z_]+|DATA_[A-Z0-9_]+|CPU_ISA_[A-Z0-9]+|OPTIM_[A-Z]+|ACT_[A-Z_]+|EPILOGUE_[A-Z_]+)$";
#if !defined(SWIGJAVA) /* Java would put macros in a public constants interface: dsabi_java.i */
%unignore DS_VERSION_MAJOR;
%unignore DS_VERSION_MINOR;
%unignore DS_VERSION_PATCH;
%unignore DS_VERSION_NUMBER;
%unignore DS_VERSION_STRING;
%unignore DS_ABI_VERSION;
%unignore DS_TENSOR_MAX_DIMS;
%unignore DS_UNSET_I32;
%unignore DS_UNSET_I64;
%unignore DS_COMM_SPLIT_NONE;
#else
%ignore DS_DATA_FORMAT_VERSION; /* a macro, which the DATA_ pattern above would make a public constant */
#endif
%rename(DevInfo) ds_dev_info;
%rename(DevInfo) ds_dev_info_t;
%rename(device_type) ds_dev_info::type; /* "type" is a Go keyword */
%rename(device_index) ds_dev_info::index;
%unignore ds_dev_info::name;
%unignore ds_dev_info::total_memory_bytes;
%unignore ds_dev_info::free_memory_bytes;
%unignore ds_dev_info::compute_capability_major;
%unignore ds_dev_info::compute_capability_minor;
%unignore ds_dev_info::multiprocessor_count;
%include "structs.i"

%immutable;
%include "dsabi.h"
%mutable;

%unignoreall

DSABI_HELPER_NAMES
%include "handles.i"
%include "data.i"
%include "comm.i"
%include "ops.i"
