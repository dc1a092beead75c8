// Handle validation: every handle handed out through the C ABI is registered here with its type
// magic, so a NULL, wrong-type or destroyed handle is detected before it is dereferenced.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ds {

// One magic per handle type ('D','S', two letters).
enum HandleMagic : uint32_t {
    kMagicConfig = 0x44534346u,  // DSCF
    kMagicTensor = 0x44535454u,  // DSTT
};

void handle_register(const void* handle, uint32_t magic);
void handle_unregister(const void* handle);
bool handle_is_live(const void* handle, uint32_t magic);
size_t handle_count(uint32_t magic);

}  // namespace ds
