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
 *   handles.i    ConfigHandle, TensorHandle and DevInfo classes and the shared helper functions
 *
 * dsabi.h is wrapped through a whitelist: %ignoreall, then the functions whose signature needs no
 * help (no status, no out-parameter), the enumerations and macros the bindings use, and the
 * DevInfo fields. Everything else is reached through the helpers of handles.i, so a function
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
%rename("%s", regextarget=1) "^DS_(OK|INPROGRESS|ABORTED|ERR_[A-Z0-9_]+|DTYPE_[A-Z0-9_]+|DEV_[A-Z]+|LOG_[A-Z]+|JSON_[A-Z]+)$";
#if !defined(SWIGJAVA) /* Java would put macros in a public constants interface: dsabi_java.i */
%unignore DS_VERSION_MAJOR;
%unignore DS_VERSION_MINOR;
%unignore DS_VERSION_PATCH;
%unignore DS_VERSION_NUMBER;
%unignore DS_VERSION_STRING;
%unignore DS_ABI_VERSION;
%unignore DS_TENSOR_MAX_DIMS;
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

%immutable;
%include "dsabi.h"
%mutable;

%unignoreall

#if !defined(SWIGJAVA)
/* The macro's value (INT32_MIN) means nothing to SWIG: wrap it as a constant that C evaluates.
 * (#undef acts on SWIG's preprocessor only.) */
#undef DS_UNSET_I32
%constant int32_t DS_UNSET_I32 = INT32_MIN;
#endif

DSABI_HELPER_NAMES
%include "handles.i"
