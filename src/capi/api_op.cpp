// C API: process-wide settings of the op layer (CPU ISA, threads). The ops themselves live in
// api_op_<family>.cpp.
#include "capi/guard.hpp"
#include "op/cpu.hpp"

extern "C" {

ds_status_t ds_op_get_cpu_isa(int32_t* out) {
    return ds::capi::guard(__func__, [&] {
        ds::capi::check_out(out, "out");
        *out = ds::op::cpu_isa();
    });
}

ds_status_t ds_op_set_cpu_isa(int32_t isa) {
    return ds::capi::guard(__func__, [&] { ds::op::set_cpu_isa(isa); });
}

ds_status_t ds_op_set_num_threads(int32_t n) {
    return ds::capi::guard(__func__, [&] { ds::op::set_threads(n); });
}

ds_status_t ds_op_get_num_threads(int32_t* out) {
    return ds::capi::guard(__func__, [&] {
        ds::capi::check_out(out, "out");
        *out = ds::op::threads();
    });
}

}  // extern "C"
