// Reading versioned options structs (struct_size + abi_version first, appended-only).
#pragma once

#include <algorithm>
#include <cstring>

#include "core/error.hpp"

namespace ds {

// Returns the caller's options merged over the defaults from init(): only the first
// min(struct_size, sizeof(T)) bytes are read, so a caller compiled against an older, smaller struct
// gets defaults for the fields it does not know. user == NULL means all defaults.
template <class T>
T read_options(const T* user, void (*init)(T*), const char* arg_name) {
    T out;
    init(&out);
    if (!user) return out;
    const uint32_t header = 2 * sizeof(uint32_t);
    if (user->struct_size < header)
        fail(DS_ERR_VERSION, "%s->struct_size=%u is smaller than the 8-byte header; fill the struct with its _options_init()",
             arg_name, user->struct_size);
    if (user->abi_version > DS_ABI_VERSION)
        fail(DS_ERR_VERSION, "%s->abi_version=%u is newer than this library's ABI %d; link the matching libdsabi",
             arg_name, user->abi_version, DS_ABI_VERSION);
    std::memcpy(static_cast<void*>(&out), static_cast<const void*>(user), std::min<size_t>(user->struct_size, sizeof(T)));
    out.struct_size = sizeof(T);
    out.abi_version = DS_ABI_VERSION;
    return out;
}

}  // namespace ds
