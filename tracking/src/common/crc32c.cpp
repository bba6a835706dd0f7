#include "common/crc32c.hpp"

#include <array>
#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#include <nmmintrin.h>
#define ACCEL_CRC32C_X86 1
#endif

namespace accel {
namespace {

// Slicing-by-8 tables for the reflected Castagnoli polynomial 0x82F63B78.
struct Crc32cTables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  constexpr Crc32cTables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1U) ? (c >> 1) ^ 0x82F63B78U : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i) {
      for (std::size_t s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFFU];
    }
  }
};
constexpr Crc32cTables kTables;

uint32_t extend_portable(uint32_t crc, const unsigned char* p, std::size_t n) {
  const auto& t = kTables.t;
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);  // little-endian hosts only (x86-64, aarch64)
    word ^= crc;
    crc = t[7][word & 0xFF] ^ t[6][(word >> 8) & 0xFF] ^ t[5][(word >> 16) & 0xFF] ^
          t[4][(word >> 24) & 0xFF] ^ t[3][(word >> 32) & 0xFF] ^ t[2][(word >> 40) & 0xFF] ^
          t[1][(word >> 48) & 0xFF] ^ t[0][word >> 56];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xFFU];
  return crc;
}

#ifdef ACCEL_CRC32C_X86
// Compiled for SSE4.2 only inside this function; called only after the CPUID check below.
__attribute__((target("sse4.2"))) uint32_t extend_sse42(uint32_t crc, const unsigned char* p,
                                                        std::size_t n) {
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c = _mm_crc32_u64(c, word);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<uint32_t>(c);
  if (n >= 4) {
    uint32_t word;
    std::memcpy(&word, p, 4);
    c32 = _mm_crc32_u32(c32, word);
    p += 4;
    n -= 4;
  }
  while (n-- > 0) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}

bool cpu_has_sse42() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}
#endif

using ExtendFn = uint32_t (*)(uint32_t, const unsigned char*, std::size_t);

ExtendFn select_extend() {
#ifdef ACCEL_CRC32C_X86
  if (cpu_has_sse42()) return &extend_sse42;
#endif
  return &extend_portable;
}

// Chosen when the library is loaded. Before that (a static initialiser of another library calling
// crc32c) the pointer is still null and the choice is made on the spot.
ExtendFn g_extend = select_extend();

ExtendFn extend_fn() {
  ExtendFn fn = g_extend;
  return fn != nullptr ? fn : select_extend();
}

}  // namespace

uint32_t crc32c(const void* data, std::size_t size) {
  return ~extend_fn()(~0U, static_cast<const unsigned char*>(data), size);
}

uint32_t crc32c_extend(uint32_t crc, const void* data, std::size_t size) {
  return ~extend_fn()(~crc, static_cast<const unsigned char*>(data), size);
}

uint32_t crc32c(std::span<const std::byte> data) {
  return crc32c(data.data(), data.size());
}

uint32_t crc32c_portable(const void* data, std::size_t size) {
  return ~extend_portable(~0U, static_cast<const unsigned char*>(data), size);
}

bool crc32c_is_hardware_accelerated() {
  return extend_fn() != &extend_portable;
}

}  // namespace accel
