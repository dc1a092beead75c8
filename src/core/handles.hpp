// Handle validation: every handle handed out through the C ABI is registered here with its type
// magic, so a NULL, wrong-type or destroyed handle is detected before it is dereferenced.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ds {

// One magic per handle type ('D','S', two letters), all here so that none is used twice.
enum HandleMagic : uint32_t {
    kMagicConfig = 0x44534346u,  // DSCF
    kMagicTensor = 0x44535454u,  // DSTT
    kMagicComm = 0x4453434Du,  // DSCM
    kMagicWork = 0x4453574Bu,  // DSWK
    kMagicData = 0x44534441u,  // DSDA
    kMagicDataWriter = 0x44534457u,  // DSDW
    kMagicTokenizer = 0x4453544Bu,  // DSTK
    kMagicSampler = 0x44535341u,  // DSSA
    kMagicCurriculum = 0x44534355u,  // DSCU
    kMagicLoader = 0x44534C44u,  // DSLD
    kMagicBatch = 0x44534241u,  // DSBA
};

void handle_register(const void* handle, uint32_t magic);
void handle_unregister(const void* handle);
bool handle_is_live(const void* handle, uint32_t magic);
size_t handle_count(uint32_t magic);

}  // namespace ds
