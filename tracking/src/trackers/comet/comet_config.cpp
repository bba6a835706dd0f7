#include "trackers/comet/comet_config.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <vector>

#include "common/environment.hpp"

namespace accel::comet {
namespace {

std::string trim(std::string_view text) {
  const auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return {};
  const auto end = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(begin, end - begin + 1));
}

std::string upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

// configobj's value with list_values=False: a quoted value is kept with its quotes; an unquoted one
// ends at '#'.
std::string ini_value(std::string_view raw) {
  std::string text = trim(raw);
  if (!text.empty() && (text[0] == '"' || text[0] == '\'')) {
    const auto close = text.find(text[0], 1);
    return close == std::string::npos ? text : text.substr(0, close + 1);
  }
  return trim(text.substr(0, text.find('#')));
}

// The value of `name` in one ini file, if the file has it.
std::optional<std::string> ini_lookup(const std::filesystem::path& file, const std::string& name) {
  std::ifstream in(file);
  if (!in) return std::nullopt;
  std::string section;
  std::optional<std::string> found;
  for (std::string line; std::getline(in, line);) {
    const std::string text = trim(line);
    if (text.empty() || text[0] == '#') continue;
    if (text[0] == '[') {
      const std::string inner = trim(
          text.substr(text.find_first_not_of('['), text.find(']') - text.find_first_not_of('[')));
      section = inner;
      continue;
    }
    const auto equals = text.find('=');
    if (equals == std::string::npos) continue;
    const std::string key = trim(text.substr(0, equals));
    const std::string full = upper(section.empty() ? key : section + "_" + key);
    if (full == name) found = ini_value(text.substr(equals + 1));  // the last one wins
  }
  if (found && found->empty()) return std::nullopt;
  return found;
}

std::vector<std::filesystem::path> config_files() {
  std::vector<std::filesystem::path> files;
  if (auto given = detail::environment_value("COMET_CONFIG")) {
    std::filesystem::path path = *given;
    if (given->starts_with("~/")) {
      if (auto home = detail::environment_value("HOME")) path = *home + given->substr(1);
    }
    std::error_code error;
    files.push_back(std::filesystem::is_directory(path, error) ? path / ".comet.config" : path);
  }
  files.emplace_back("./.comet.config");
  if (auto home = detail::environment_value("HOME")) {
    files.push_back(std::filesystem::path(*home) / ".comet.config");
  }
  return files;
}

}  // namespace

std::optional<std::string> config_value(const std::string& name) {
  if (auto value = detail::environment_value(name.c_str())) return value;
  for (const auto& file : config_files()) {
    if (auto value = ini_lookup(file, name)) return value;
  }
  return std::nullopt;
}

}  // namespace accel::comet
