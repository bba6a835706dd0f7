#pragma once
// accel::comet::LengthLimits: keys and values cut to the lengths comet_ml 3.58.8 cuts them to before
// it writes or sends a message (comet_ml/config/config_constants.py MAXIMAL_KEY_LENGTH = 100,
// MAXIMAL_VALUE_LENGTH = 1000; convert_utils.convert_to_string_truncated): text longer than the
// limit (counted in code points, as Python's len) becomes its first limit - 12 code points plus
// " [truncated]", so exactly the limit. What is cut, as the SDK's Experiment cuts it:
//   metric name, parameter name, other key    to kMaxKeyLength
//   parameter value (a string; an array whose compact JSON text is longer becomes that text, cut)
//   other value (a string)                    to kMaxValueLength
// Numbers, bools and null are never cut. The first cut of each kind warns (accel::warn), naming
// the text, the limit and the fix; later cuts of that kind are silent (the SDK warns every time).
// Thread-safety: none (CometTracker serialises its calls).
#include <array>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace accel::comet {

class LengthLimits {
 public:
  static constexpr std::size_t kMaxKeyLength = 100;                        // MAXIMAL_KEY_LENGTH
  static constexpr std::size_t kMaxValueLength = 1000;                     // MAXIMAL_VALUE_LENGTH
  static constexpr std::string_view kTruncatedIndicator = " [truncated]";  // TRUNCATED_INDICATOR

  std::string metric_name(std::string_view name);
  std::string parameter_name(std::string_view name);
  std::string other_key(std::string_view key);
  nlohmann::json parameter_value(nlohmann::json value);
  nlohmann::json other_value(nlohmann::json value);

 private:
  enum Kind : std::size_t {
    kMetricName,
    kParameterName,
    kOtherKey,
    kParameterValue,
    kOtherValue,
    kKinds
  };
  std::string cut(std::string_view text, std::size_t limit, Kind kind);

  std::array<bool, kKinds> warned_{};
};

// convert_to_string_truncated's cut alone: text when it has at most limit code points, else its
// first limit - 12 code points and " [truncated]".
std::string truncate_as_sdk(std::string_view text, std::size_t limit);

}  // namespace accel::comet
