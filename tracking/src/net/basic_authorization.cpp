#include "net/basic_authorization.hpp"

#include <cstdint>

namespace accel::detail {

namespace {

std::string base64(std::string_view input) {
  static constexpr char table[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((input.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < input.size(); i += 3) {
    const uint32_t n = (uint32_t(uint8_t(input[i])) << 16) |
                       (uint32_t(uint8_t(input[i + 1])) << 8) | uint8_t(input[i + 2]);
    out += table[(n >> 18) & 63];
    out += table[(n >> 12) & 63];
    out += table[(n >> 6) & 63];
    out += table[n & 63];
  }
  if (i + 1 == input.size()) {
    const uint32_t n = uint32_t(uint8_t(input[i])) << 16;
    out += table[(n >> 18) & 63];
    out += table[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == input.size()) {
    const uint32_t n = (uint32_t(uint8_t(input[i])) << 16) | (uint32_t(uint8_t(input[i + 1])) << 8);
    out += table[(n >> 18) & 63];
    out += table[(n >> 12) & 63];
    out += table[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

}  // namespace

std::string basic_authorization(std::string_view user, std::string_view password) {
  std::string credentials;
  credentials.reserve(user.size() + 1 + password.size());
  credentials.append(user).append(":").append(password);
  return "Basic " + base64(credentials);
}

}  // namespace accel::detail
