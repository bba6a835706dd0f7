#include "common/init_kwargs.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "accel/tracking/errors.hpp"

namespace accel {
namespace detail {

void check_init_kwargs(const nlohmann::json& init_kwargs) {
  if (init_kwargs.is_object() || init_kwargs.is_null()) return;
  throw InvalidValue(fmt::format(
      "init_trackers: init_kwargs must be an object keyed by tracker name, e.g. {{\"csv\": "
      "{{...}}}}, not {}",
      init_kwargs.dump()));
}

nlohmann::json tracker_kwargs(const nlohmann::json& init_kwargs, const std::string& tracker) {
  if (!init_kwargs.is_object()) return nlohmann::json::object();
  auto it = init_kwargs.find(tracker);
  if (it == init_kwargs.end()) return nlohmann::json::object();
  if (!it->is_object()) {
    throw InvalidValue(fmt::format("init_trackers: init_kwargs[\"{}\"] must be an object, not {}",
                                   tracker, it->dump()));
  }
  return *it;
}

std::optional<std::string> first_unknown_option(const nlohmann::json& options,
                                                std::span<const char* const> known) {
  for (const auto& [name, value] : options.items()) {
    if (std::find_if(known.begin(), known.end(), [&](const char* k) { return name == k; }) ==
        known.end()) {
      return name;
    }
  }
  return std::nullopt;
}

std::string option_list(std::span<const char* const> known) {
  return fmt::format("{}", fmt::join(known, ", "));
}

std::optional<std::string> non_empty_string_option(const nlohmann::json& options,
                                                   std::string_view name,
                                                   const OptionComplaint& complaint) {
  if (!options.is_object()) return std::nullopt;
  auto it = options.find(name);
  if (it == options.end() || it->is_null()) return std::nullopt;
  if (!it->is_string() || it->get_ref<const std::string&>().empty()) {
    throw InvalidValue(complaint(*it));
  }
  return it->get<std::string>();
}

int64_t integer_option(const nlohmann::json& options, std::string_view name, int64_t minimum,
                       int64_t fallback, const OptionComplaint& complaint) {
  if (!options.is_object()) return fallback;
  auto it = options.find(name);
  if (it == options.end()) return fallback;
  if (!it->is_number_integer() || it->get<int64_t>() < minimum) throw InvalidValue(complaint(*it));
  return it->get<int64_t>();
}

}  // namespace detail

}  // namespace accel
