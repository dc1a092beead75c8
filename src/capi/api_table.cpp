// ds_get_api and ds_get_proc_address: the entry points for hosts that dlopen() dsabi.
#include <cstring>

#include "capi/guard.hpp"

namespace {

#define DS_FN(name) ds_##name,
const ds_api_t k_api_v0 = {
    sizeof(ds_api_t),
    DS_ABI_VERSION,
#include "capi/api_list.inc"
};
#undef DS_FN

struct ProcEntry {
    const char* name;
    void* fn;
};

#define DS_FN(name) {"ds_" #name, reinterpret_cast<void*>(&ds_##name)},
const ProcEntry k_procs[] = {
#include "capi/api_list.inc"
    {"ds_get_api", reinterpret_cast<void*>(&ds_get_api)},
};
#undef DS_FN

}  // namespace

extern "C" {

ds_status_t ds_get_api(uint32_t abi_version, const ds_api_t** out) {
    return ds::capi::guard("ds_get_api", [&] {
        ds::capi::check_out(out, "out");
        *out = nullptr;
        if (abi_version != DS_ABI_VERSION)
            ds::fail(DS_ERR_VERSION, "abi_version=%u is not served by this library (ABI %d)", abi_version, DS_ABI_VERSION);
        *out = &k_api_v0;
    });
}

ds_status_t ds_get_proc_address(const char* name, void** out) {
    return ds::capi::guard("ds_get_proc_address", [&] {
        ds::capi::check_out(out, "out");
        *out = nullptr;
        if (!name) ds::fail(DS_ERR_INVALID_ARG, "name is NULL");
        for (const ProcEntry& e : k_procs) {
            if (std::strcmp(e.name, name) == 0) {
                *out = e.fn;
                return;
            }
        }
        ds::fail(DS_ERR_NOT_FOUND, "name=\"%s\" is not an exported dsabi function", name);
    });
}

}  // extern "C"
