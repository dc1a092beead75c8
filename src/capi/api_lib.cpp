// Library lifecycle, versions, build info, logging, errors, and the function table.
#include <cjson/cJSON.h>

#include <cstdlib>
#include <cstring>

#include "capi/guard.hpp"
#include "core/lib.hpp"
#include "core/options.hpp"

#ifndef DSABI_GIT_COMMIT
#define DSABI_GIT_COMMIT "unknown"
#endif

namespace {

char* dup_string(const char* s) {
    size_t n = std::strlen(s) + 1;
    char* out = static_cast<char*>(std::malloc(n));
    if (!out) throw std::bad_alloc();
    std::memcpy(out, s, n);
    return out;
}

cJSON* features_json() {
    cJSON* f = cJSON_CreateObject();
    auto flag = [&](const char* name, bool on) { cJSON_AddBoolToObject(f, name, on); };
    flag("cuda", DSABI_HAVE_CUDA);
    flag("nccl", DSABI_HAVE_NCCL);
    flag("gloo", DSABI_HAVE_GLOO);
    flag("aio", DSABI_HAVE_AIO);
    flag("python", DSABI_HAVE_PYTHON);
    flag("java", DSABI_HAVE_JAVA);
    flag("go", DSABI_HAVE_GO);
    flag("sanitizers", DSABI_HAVE_SANITIZE);
    return f;
}

}  // namespace

extern "C" {

void ds_lib_options_init(ds_lib_options_t* opts) {
    if (!opts) return;
    std::memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->abi_version = DS_ABI_VERSION;
    opts->log_level = DS_UNSET_I32;
    opts->load_cuda = 1;
    opts->cuda_backend_path = nullptr;
}

ds_status_t ds_lib_init(const ds_lib_options_t* opts) {
    return ds::capi::guard("ds_lib_init", [&] {
        ds_lib_options_t o = ds::read_options(opts, ds_lib_options_init, "opts");
        if (o.log_level != DS_UNSET_I32 && (o.log_level < DS_LOG_NONE || o.log_level > DS_LOG_DEBUG))
            ds::fail(DS_ERR_INVALID_ARG, "opts->log_level=%d is outside [DS_LOG_NONE=0, DS_LOG_DEBUG=4]", o.log_level);
        if (o.load_cuda != 0 && o.load_cuda != 1)
            ds::fail(DS_ERR_INVALID_ARG, "opts->load_cuda=%d must be 0 or 1", o.load_cuda);
        ds::lib::init(o);
    });
}

ds_status_t ds_lib_shutdown(void) {
    return ds::capi::guard("ds_lib_shutdown", [&] { ds::lib::shutdown(); });
}

uint32_t ds_version_number(void) { return DS_VERSION_NUMBER; }

const char* ds_version_string(void) { return DS_VERSION_STRING; }

ds_status_t ds_lib_build_info(char** out_json) {
    return ds::capi::guard("ds_lib_build_info", [&] {
        ds::capi::check_out(out_json, "out_json");
        *out_json = nullptr;
        cJSON* root = cJSON_CreateObject();
        if (!root) throw std::bad_alloc();
        cJSON_AddStringToObject(root, "version", DS_VERSION_STRING);
        cJSON_AddNumberToObject(root, "version_number", DS_VERSION_NUMBER);
        cJSON_AddNumberToObject(root, "abi_version", DS_ABI_VERSION);
        cJSON_AddStringToObject(root, "commit", DSABI_GIT_COMMIT);
        cJSON_AddStringToObject(root, "compiler", DSABI_COMPILER);
        cJSON_AddStringToObject(root, "build_type", DSABI_BUILD_TYPE);
        cJSON_AddItemToObject(root, "features", features_json());
        cJSON* versions = cJSON_AddObjectToObject(root, "versions");
        cJSON_AddStringToObject(versions, "cjson", cJSON_Version());
        cJSON_AddStringToObject(versions, "gloo", DSABI_GLOO_VERSION);
        cJSON_AddStringToObject(versions, "cuda_toolkit", DSABI_CUDA_VERSION);
        cJSON_AddStringToObject(versions, "nccl", DSABI_NCCL_VERSION);
        cJSON* cuda = cJSON_AddObjectToObject(root, "cuda_backend");
        const ds_backend_v1_t* be = ds::lib::cuda();
        cJSON_AddBoolToObject(cuda, "loaded", be != nullptr);
        cJSON_AddStringToObject(cuda, "status", ds::lib::cuda_status().c_str());
        if (be) {
            int32_t runtime = 0, driver = 0, n = 0;
            be->versions(&runtime, &driver);
            be->device_count(&n);
            cJSON_AddNumberToObject(cuda, "runtime_version", runtime);
            cJSON_AddNumberToObject(cuda, "driver_version", driver);
            cJSON_AddNumberToObject(cuda, "device_count", n);
        }
        char* text = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        if (!text) throw std::bad_alloc();
        // Re-home the string in our allocator so that ds_free (plain free) is always right.
        try {
            *out_json = dup_string(text);
        } catch (...) {
            cJSON_free(text);
            throw;
        }
        cJSON_free(text);
    });
}

ds_status_t ds_lib_set_log(ds_log_fn fn, void* user_data, int32_t max_level) {
    return ds::capi::guard("ds_lib_set_log", [&] {
        if (max_level < DS_LOG_NONE || max_level > DS_LOG_DEBUG)
            ds::fail(DS_ERR_INVALID_ARG, "max_level=%d is outside [DS_LOG_NONE=0, DS_LOG_DEBUG=4]", max_level);
        ds::log_set_sink(fn, user_data, max_level);
    });
}

void ds_free(void* ptr) { std::free(ptr); }

const char* ds_status_str(ds_status_t status) {
    switch (status) {
        case DS_OK: return "success";
        case DS_INPROGRESS: return "in progress";
        case DS_ABORTED: return "aborted";
        case DS_ERR_INVALID_ARG: return "invalid argument";
        case DS_ERR_NOMEM: return "out of host memory";
        case DS_ERR_INVALID_HANDLE: return "invalid handle";
        case DS_ERR_BUFFER_TOO_SMALL: return "buffer too small";
        case DS_ERR_UNSUPPORTED: return "unsupported";
        case DS_ERR_VERSION: return "version mismatch";
        case DS_ERR_STATE: return "invalid state";
        case DS_ERR_NOT_FOUND: return "not found";
        case DS_ERR_TYPE: return "type mismatch";
        case DS_ERR_INTERNAL: return "internal error";
        case DS_ERR_UNKNOWN: return "unknown error";
        case DS_ERR_DEVICE: return "device error";
        case DS_ERR_NO_DEVICE: return "no such device";
        case DS_ERR_DEVICE_NOMEM: return "out of device memory";
        case DS_ERR_DEVICE_MISMATCH: return "device mismatch";
        case DS_ERR_COMM: return "communication error";
        case DS_ERR_COMM_TIMEOUT: return "communication timeout";
        case DS_ERR_COMM_PEER: return "communication peer failed";
        case DS_ERR_COMM_MISMATCH: return "communication mismatch across ranks";
        case DS_ERR_IO: return "I/O error";
        case DS_ERR_CORRUPT: return "corrupt or truncated data";
        case DS_ERR_CONFIG: return "invalid configuration";
        case DS_ERR_CONFIG_PARSE: return "configuration parse error";
        case DS_ERR_CONFIG_UNKNOWN_KEY: return "unknown configuration key";
        case DS_ERR_CONFIG_VALUE: return "invalid configuration value";
        case DS_ERR_CONFIG_BATCH: return "inconsistent batch size configuration";
        case DS_ERR_CONFIG_UNSUPPORTED: return "unsupported configuration feature";
        default: return status > 0 ? "unknown non-error status" : "unknown error status";
    }
}

const char* ds_last_error(void) { return ds::last_error(); }

void ds_last_error_clear(void) { ds::clear_last_error(); }

}  // extern "C"
