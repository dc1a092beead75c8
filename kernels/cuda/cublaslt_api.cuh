// cuBLASLt, loaded on first use.
//
// Linking libdsabi_cuda.so against libcublasLt would make every process that loads dsabi - CPU-only
// work included - map cuBLASLt and dirty ~90 MB of its relocated data at ds_lib_init. The module
// therefore dlopen()s it the first time a GEMM runs and calls it through this table.
#pragma once

#include <cublasLt.h>
#include <dlfcn.h>

#include <mutex>
#include <string>

namespace dscuda {

struct LtApi {
#define DS_LT_FN(name) decltype(&::cublasLt##name) name = nullptr;
#include "cublaslt_fns.inc"
#undef DS_LT_FN
    std::string error;  // why loading failed (empty when it worked)
};

// The loaded table, or one whose `error` says why cuBLASLt is unavailable. Thread-safe.
inline const LtApi& lt() {
    static LtApi api;
    static std::once_flag once;
    std::call_once(once, [] {
        const std::string soname = "libcublasLt.so." + std::to_string(CUBLAS_VER_MAJOR);
        void* h = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            const char* e = dlerror();
            api.error = "cannot load " + soname + ": " + (e ? e : "unknown error");
            return;
        }
#define DS_LT_FN(name)                                                                       \
    api.name = reinterpret_cast<decltype(api.name)>(dlsym(h, "cublasLt" #name));            \
    if (!api.name && api.error.empty()) api.error = soname + " lacks cublasLt" #name;
#include "cublaslt_fns.inc"
#undef DS_LT_FN
    });
    return api;
}

}  // namespace dscuda
