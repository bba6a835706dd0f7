#include "accel/tracking/log_options.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "accel/tracking/errors.hpp"

namespace accel {

std::string_view to_string(Phase phase) {
  switch (phase) {
    case Phase::train:
      return "train";
    case Phase::validation:
      return "validation";
    case Phase::test:
      return "test";
    case Phase::predict:
      return "predict";
  }
  return "unknown";
}

ReduceFx::ReduceFx(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "mean" || lower == "avg") {
    kind_ = Kind::mean;
  } else if (lower == "sum") {
    kind_ = Kind::sum;
  } else if (lower == "max") {
    kind_ = Kind::max;
  } else if (lower == "min") {
    kind_ = Kind::min;
  } else {
    throw InvalidValue(fmt::format(
        "reduce_fx '{}' is not supported; use one of \"mean\" (or \"avg\"), \"sum\", \"max\", "
        "\"min\", or pass a ReduceFunction for a custom reduction",
        name));
  }
  name_ = lower == "avg" ? "mean" : lower;
}

ReduceFx::ReduceFx(ReduceFunction function, std::string name)
    : kind_(Kind::custom), name_(std::move(name)), function_(std::move(function)) {
  if (!function_) {
    throw InvalidValue(
        fmt::format("reduce_fx '{}': the custom reduction function is empty; pass a "
                    "callable or one of \"mean\", \"sum\", \"max\", \"min\"",
                    name_));
  }
}

}  // namespace accel
