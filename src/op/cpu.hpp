// Process-wide settings of the CPU kernels: the instruction set in use and the thread count.
#pragma once

#include <cstdint>

#include "dsabi.h"

namespace ds::op {

// Best ISA this CPU supports (ds_cpu_isa).
int32_t cpu_isa_supported();
// ISA the kernels use now (DSABI_CPU_ISA or ds_op_set_cpu_isa, else the best supported).
int32_t cpu_isa();
// Throws DS_ERR_UNSUPPORTED when the CPU lacks isa, DS_ERR_INVALID_ARG when it is unknown.
void set_cpu_isa(int32_t isa);
const char* cpu_isa_name(int32_t isa);

// Threads for `#pragma omp parallel num_threads(ds::op::threads())`: never below 1.
int threads();
void set_threads(int32_t n);  // 0: default

}  // namespace ds::op
