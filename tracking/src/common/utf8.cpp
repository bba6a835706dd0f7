#include "common/utf8.hpp"

#include <algorithm>

namespace accel {

std::size_t utf8_announced_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 0;
}

std::size_t utf8_sequence_length(std::string_view text, std::size_t i) {
  const std::size_t n = utf8_announced_length(static_cast<unsigned char>(text[i]));
  if (n == 0 || i + n > text.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if (!is_utf8_continuation(static_cast<unsigned char>(text[i + k]))) return 0;
  }
  return n;
}

bool is_valid_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = utf8_sequence_length(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::size_t utf8_code_points(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return !is_utf8_continuation(static_cast<unsigned char>(c));
  }));
}

std::string_view utf8_prefix(std::string_view text, std::size_t max_code_points) {
  std::size_t points = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (is_utf8_continuation(static_cast<unsigned char>(text[i]))) continue;
    if (points == max_code_points) return text.substr(0, i);
    ++points;
  }
  return text;
}

std::string truncate_utf8(std::string_view text, std::size_t max_code_points, bool* truncated) {
  const std::string_view prefix = utf8_prefix(text, max_code_points);
  if (truncated) *truncated = prefix.size() < text.size();
  return std::string(prefix);
}

}  // namespace accel
