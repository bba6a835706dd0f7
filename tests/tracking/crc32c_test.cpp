// CRC-32C: published check values, TensorBoard's masked CRC, hardware path == table path.
#include "common/crc32c.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

using accel::crc32c;
using accel::crc32c_portable;
using accel::mask_crc32c;

TEST_CASE("crc32c matches the published check values (RFC 3720 B.4)") {
  std::string check = "123456789";
  CHECK(crc32c(check.data(), check.size()) == 0xE3069283U);
  std::vector<uint8_t> zeros(32, 0), ones(32, 0xFF), up(32), down(32);
  std::iota(up.begin(), up.end(), 0);
  for (int i = 0; i < 32; ++i) down[static_cast<std::size_t>(i)] = static_cast<uint8_t>(31 - i);
  CHECK(crc32c(zeros.data(), zeros.size()) == 0x8A9136AAU);
  CHECK(crc32c(ones.data(), ones.size()) == 0x62A8AB43U);
  CHECK(crc32c(up.data(), up.size()) == 0x46DD794EU);
  CHECK(crc32c(down.data(), down.size()) == 0x113FDB5CU);
  CHECK(crc32c(nullptr, 0) == 0U);
}

TEST_CASE("masked crc equals TensorBoard's masked_crc32c") {
  // Values printed by tensorboard.compat.tensorflow_stub.pywrap_tensorflow.masked_crc32c.
  std::string check = "123456789";
  CHECK(mask_crc32c(crc32c(check.data(), check.size())) == 0xC78AB0E5U);
  uint8_t length24[8] = {24, 0, 0, 0, 0, 0, 0, 0};
  CHECK(mask_crc32c(crc32c(length24, 8)) == 0x224B7FA3U);
  CHECK(mask_crc32c(crc32c(nullptr, 0)) == 0xA282EAD8U);
}

TEST_CASE("the dispatched crc32c (hardware when available) equals the portable table code") {
  INFO("hardware accelerated: " << accel::crc32c_is_hardware_accelerated());
  std::mt19937_64 rng(42);
  std::vector<uint8_t> data(4096 + 16);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  for (std::size_t offset = 0; offset < 8; ++offset) {
    for (std::size_t size : {0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 63, 64, 100, 1000, 4096}) {
      CHECK(crc32c(data.data() + offset, size) == crc32c_portable(data.data() + offset, size));
    }
  }
}
