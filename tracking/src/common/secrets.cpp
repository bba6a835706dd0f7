#include "common/secrets.hpp"

#include <algorithm>
#include <cctype>
#include <string>

namespace accel {

bool is_secret_key(std::string_view key) {
  std::string folded;
  for (unsigned char c : key) {
    if (std::isalnum(c)) folded += static_cast<char>(std::tolower(c));
  }
  constexpr std::string_view kMarks[] = {"apikey", "token",      "password",      "passwd",
                                         "secret", "credential", "authorization", "privatekey"};
  return std::any_of(std::begin(kMarks), std::end(kMarks),
                     [&](std::string_view mark) { return folded.find(mark) != std::string::npos; });
}

nlohmann::json without_secrets(const nlohmann::json& value) {
  if (value.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [key, child] : value.items()) {
      out[key] = is_secret_key(key) ? nlohmann::json("<redacted>") : without_secrets(child);
    }
    return out;
  }
  if (value.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& child : value) out.push_back(without_secrets(child));
    return out;
  }
  return value;
}

}  // namespace accel
