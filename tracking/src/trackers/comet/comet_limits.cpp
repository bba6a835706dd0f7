#include "trackers/comet/comet_limits.hpp"

#include <fmt/format.h>

#include "accel/tracking/warnings.hpp"
#include "common/utf8.hpp"

namespace accel::comet {
namespace {

constexpr std::array<const char*, 5> kWhat = {"a metric name", "a parameter name", "an other's key",
                                              "a parameter value", "an other's value"};

}  // namespace

std::string truncate_as_sdk(std::string_view text, std::size_t limit) {
  if (utf8_code_points(text) <= limit) return std::string(text);
  const std::size_t keep = limit - LengthLimits::kTruncatedIndicator.size();
  return std::string(utf8_prefix(text, keep)) + std::string(LengthLimits::kTruncatedIndicator);
}

std::string LengthLimits::cut(std::string_view text, std::size_t limit, Kind kind) {
  std::string result = truncate_as_sdk(text, limit);
  if (result.size() != text.size() || result != text) {
    if (!warned_[kind]) {
      warned_[kind] = true;
      warn(fmt::format(
          "comet_ml: {} longer than {} characters is cut to {} as comet_ml cuts it (its last 12 "
          "become \" [truncated]\"): \"{}...\" ({} characters); use a shorter one to keep it "
          "whole. Later ones are cut without a warning",
          kWhat[kind], limit, limit, utf8_prefix(text, 60), utf8_code_points(text)));
    }
  }
  return result;
}

std::string LengthLimits::metric_name(std::string_view name) {
  return cut(name, kMaxKeyLength, kMetricName);
}

std::string LengthLimits::parameter_name(std::string_view name) {
  return cut(name, kMaxKeyLength, kParameterName);
}

std::string LengthLimits::other_key(std::string_view key) {
  return cut(key, kMaxKeyLength, kOtherKey);
}

nlohmann::json LengthLimits::parameter_value(nlohmann::json value) {
  if (value.is_string()) {
    return cut(value.get_ref<const std::string&>(), kMaxValueLength, kParameterValue);
  }
  if (value.is_array()) {
    // convert_list_to_string_truncated: json.dumps(value, separators=(",", ":")); only a text
    // longer than the limit replaces the list.
    const std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (utf8_code_points(text) > kMaxValueLength) {
      return cut(text, kMaxValueLength, kParameterValue);
    }
  }
  return value;
}

nlohmann::json LengthLimits::other_value(nlohmann::json value) {
  if (!value.is_string()) return value;
  return cut(value.get_ref<const std::string&>(), kMaxValueLength, kOtherValue);
}

}  // namespace accel::comet
