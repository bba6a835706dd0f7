#pragma once
// accel::crc32c: CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected), the checksum of the
// TFRecord / tfevents framing. Uses the SSE4.2 crc32 instruction when the CPU has it (checked once
// at run time) and a slicing-by-8 table otherwise; both give identical results.
// Thread-safety: pure functions.
#include <cstddef>
#include <cstdint>
#include <span>

namespace accel {

// CRC-32C of data (initial value 0, the standard definition: crc32c("123456789") == 0xE3069283).
uint32_t crc32c(std::span<const std::byte> data);
uint32_t crc32c(const void* data, std::size_t size);
// The CRC-32C of (what crc was computed over) followed by data: crc32c_extend(crc32c(a), b) ==
// crc32c(a + b).
uint32_t crc32c_extend(uint32_t crc, const void* data, std::size_t size);
// The same, computed by the portable table code whatever the CPU (for tests and benchmarks).
uint32_t crc32c_portable(const void* data, std::size_t size);
// True when crc32c() uses the hardware instruction on this machine.
bool crc32c_is_hardware_accelerated();

// TFRecord's masked CRC, stored after the length and after the data:
// ((crc >> 15) | (crc << 17)) + 0xA282EAD8.
constexpr uint32_t mask_crc32c(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xA282EAD8U;
}

}  // namespace accel
