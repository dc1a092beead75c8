// Process-wide library state: options given to ds_lib_init and the loaded device backends.
#pragma once

#include <string>

#include "backend_abi.h"
#include "dsabi.h"

namespace ds::lib {

// Initialise with opts on the first call; later calls do nothing. Thread-safe.
void init(const ds_lib_options_t& opts);
// Initialise with default options if nobody did yet. Cheap after the first call.
void ensure_init();
// Unload backends. Throws DS_ERR_STATE if CUDA memory is still allocated.
void shutdown();

// The CUDA backend table, or nullptr when it is not loaded (initialises the library).
const ds_backend_v1_t* cuda();
// Where the CUDA backend was loaded from, or why it was not.
std::string cuda_status();

// Bookkeeping of live device allocations (shutdown refuses to unload under them).
void note_device_alloc();
void note_device_free();

}  // namespace ds::lib
