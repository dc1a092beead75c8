// CRC-32C (Castagnoli), the checksum of dataset headers and token regions. Uses the SSE4.2
// instruction when the CPU has it, a table otherwise; both give identical results.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ds::data {

// Continue a CRC: crc32c(crc32c(0, a), b) == crc32c(0, a + b).
uint32_t crc32c(uint32_t crc, const void* data, size_t n);

}  // namespace ds::data
