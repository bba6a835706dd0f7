#include "accel/tracking/key_rules.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <mutex>
#include <system_error>

#include "accel/tracking/errors.hpp"
#include "common/init_kwargs.hpp"

namespace accel {

void validate_key(std::string_view key) {
  for (char c : key) {
    if (!std::isspace(static_cast<unsigned char>(c))) return;
  }
  throw InvalidValue(
      fmt::format("log: key '{}' is empty or only whitespace; give every value a "
                  "name such as \"train/loss\"",
                  key));
}

std::string sanitize_key(std::string_view key, const std::function<bool(unsigned char)>& allowed,
                         char replacement) {
  std::string out(key);
  for (char& c : out) {
    if (!allowed(static_cast<unsigned char>(c))) c = replacement;
  }
  return out;
}

std::string sanitize_path_component(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    out.push_back((c == '/' || c == '\\' || u < 0x20 || u == 0x7f) ? '_' : c);
  }
  for (std::size_t pos = out.find(".."); pos != std::string::npos; pos = out.find("..")) {
    out.replace(pos, 2, "_");
  }
  if (out.empty() || out == ".") out = "_";
  return out;
}

std::filesystem::path child_directory(const std::filesystem::path& base, std::string_view name) {
  std::filesystem::path child = base / sanitize_path_component(name);
  auto normal_base = base.lexically_normal();
  auto relative = child.lexically_normal().lexically_relative(normal_base);
  if (relative.empty() || *relative.begin() == "..") {
    throw InvalidValue(
        fmt::format("run name '{}' would leave the logging directory '{}'; use a "
                    "plain name",
                    name, base.string()));
  }
  return child;
}

namespace {

nlohmann::json safe_scalar(const nlohmann::json& value) {
  if (value.is_number_float()) {
    double d = value.get<double>();
    if (std::isnan(d)) return "NaN";
    if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  }
  if (value.is_binary()) return fmt::format("<binary {} bytes>", value.get_binary().size());
  return value;
}

void flatten_into(const nlohmann::json& value, const std::string& prefix,
                  std::string_view separator,
                  std::vector<std::pair<std::string, nlohmann::json>>& out) {
  if (value.is_object() && !value.empty()) {
    for (const auto& [key, child] : value.items()) {
      flatten_into(child, prefix.empty() ? key : prefix + std::string(separator) + key, separator,
                   out);
    }
    return;
  }
  out.emplace_back(prefix, json_safe_config(value));
}

}  // namespace

std::vector<std::pair<std::string, nlohmann::json>> flatten_config(const nlohmann::json& config,
                                                                   std::string_view separator) {
  std::vector<std::pair<std::string, nlohmann::json>> out;
  if (config.is_object()) {
    for (const auto& [key, child] : config.items()) flatten_into(child, key, separator, out);
  } else if (!config.is_null()) {
    out.emplace_back("config", json_safe_config(config));
  }
  return out;
}

nlohmann::json json_safe_config(const nlohmann::json& config) {
  if (config.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [key, child] : config.items()) out[key] = json_safe_config(child);
    return out;
  }
  if (config.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& child : config) out.push_back(json_safe_config(child));
    return out;
  }
  return safe_scalar(config);
}

std::filesystem::path create_version_directory(const std::filesystem::path& base,
                                               std::string_view run_id) {
  static std::mutex mutex;
  static std::map<std::pair<std::string, std::string>, std::filesystem::path> run_directories;
  std::lock_guard lock(mutex);
  const auto key = std::make_pair(base.lexically_normal().string(), std::string(run_id));
  if (!run_id.empty()) {
    if (auto it = run_directories.find(key); it != run_directories.end()) return it->second;
  }
  std::filesystem::create_directories(base);
  long next = 0;
  for (const auto& entry : std::filesystem::directory_iterator(base)) {
    std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name.rfind("version_", 0) != 0) continue;
    const std::string digits = name.substr(8);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    next = std::max(next, std::stol(digits) + 1);
  }
  for (;; ++next) {
    auto dir = base / fmt::format("version_{}", next);
    std::error_code ec;
    if (std::filesystem::create_directory(dir, ec)) {
      if (!run_id.empty()) run_directories.emplace(key, dir);
      return dir;
    }
    if (ec) {
      throw TrackerError(
          fmt::format("cannot create run directory '{}': {}", dir.string(), ec.message()));
    }
  }
}

// init_kwargs[tracker]["run_dir"], read with the same rule every tracker option follows.
std::optional<std::filesystem::path> run_directory_option(const nlohmann::json& init_kwargs,
                                                          std::string_view tracker) {
  auto dir = detail::non_empty_string_option(init_kwargs, "run_dir", [&](const nlohmann::json& v) {
    return fmt::format(
        "init_kwargs[\"{}\"][\"run_dir\"] = {} must be a directory name (a non-empty string)",
        tracker, v.dump());
  });
  if (!dir) return std::nullopt;
  return std::filesystem::path(*dir);
}

}  // namespace accel
