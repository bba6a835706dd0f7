#include "trackers/mlflow/mlflow_keys.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <vector>

#include "common/utf8.hpp"

namespace accel {

namespace {

bool allowed_ascii(unsigned char c) {
  return std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == ' ' || c == ':' || c == '/';
}

// Length of the UTF-8 sequence that starts with lead (1 for a stray continuation byte).
std::size_t utf8_length(unsigned char lead) {
  return std::max<std::size_t>(1, utf8_announced_length(lead));
}

}  // namespace

bool is_valid_mlflow_key(std::string_view key) {
  if (key.empty() || key.size() > kMlflowMaxKeyLength) return false;
  for (unsigned char c : key) {
    if (!allowed_ascii(c)) return false;
  }
  // posixpath.normpath(key) == key, and not "." and not starting with ".." or "/".
  if (key.front() == '/' || key.back() == '/' || key.starts_with("..")) return false;
  std::size_t begin = 0;
  while (begin <= key.size()) {
    const std::size_t end = std::min(key.find('/', begin), key.size());
    const std::string_view segment = key.substr(begin, end - begin);
    if (segment.empty() || segment == "." || segment == "..") return false;
    begin = end + 1;
  }
  return true;
}

std::string sanitize_mlflow_key(std::string_view key) {
  std::string replaced;
  replaced.reserve(key.size());
  for (std::size_t i = 0; i < key.size();) {
    const unsigned char c = static_cast<unsigned char>(key[i]);
    if (allowed_ascii(c)) {
      replaced += static_cast<char>(c);
      ++i;
    } else {
      replaced += '_';
      i += std::min(utf8_length(c), key.size() - i);
    }
  }
  std::string out;
  out.reserve(replaced.size());
  std::size_t begin = 0;
  while (begin <= replaced.size()) {
    const std::size_t end = std::min(replaced.find('/', begin), replaced.size());
    std::string_view segment = std::string_view(replaced).substr(begin, end - begin);
    begin = end + 1;
    if (segment.empty() || segment == ".") continue;
    if (!out.empty()) out.push_back('/');
    if (segment == "..") {
      out.append(2, '_');
    } else {
      out.append(segment.data(), segment.size());
    }
  }
  if (out.empty()) out.push_back('_');
  if (out.starts_with("..")) out[0] = out[1] = '_';  // MLflow refuses names starting with ".."

  if (out.size() > kMlflowMaxKeyLength) {
    out.resize(kMlflowMaxKeyLength);
    // Cutting may leave a trailing '/' or a trailing "." / ".." segment.
    while (!is_valid_mlflow_key(out) && !out.empty()) {
      if (out.back() == '/' || out.back() == '.') {
        out.back() = '_';
      } else {
        break;
      }
    }
  }
  return out;
}

MlflowKeyMapper::Mapped MlflowKeyMapper::map(std::string_view original) {
  std::string original_key(original);
  if (auto it = by_original_.find(original_key); it != by_original_.end()) {
    return {it->second, it->second != original, false};
  }
  std::string candidate = sanitize_mlflow_key(original);
  if (taken_.contains(candidate)) {
    for (int n = 2;; ++n) {
      const std::string suffix = fmt::format("_{}", n);
      std::string attempt = candidate.substr(0, kMlflowMaxKeyLength - suffix.size());
      attempt.append(suffix);
      if (!taken_.contains(attempt) && is_valid_mlflow_key(attempt)) {
        candidate = std::move(attempt);
        break;
      }
    }
  }
  taken_.insert(candidate);
  auto [it, inserted] = by_original_.emplace(std::move(original_key), std::move(candidate));
  return {it->second, it->second != original, true};
}

}  // namespace accel
