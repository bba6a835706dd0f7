#include "trackers/mlflow/mlflow_params.hpp"

#include <fmt/format.h>

#include <cmath>

namespace accel {

namespace {

void flatten(const nlohmann::json& node, const std::string& prefix,
             std::vector<std::pair<std::string, std::string>>& out) {
  if (node.is_object() && !node.empty()) {
    for (const auto& [key, value] : node.items()) {
      flatten(value, prefix.empty() ? key : prefix + "/" + key, out);
    }
    return;
  }
  out.emplace_back(prefix, render_mlflow_param_value(node));
}

}  // namespace

std::string render_mlflow_param_value(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::string:
      return value.get<std::string>();
    case nlohmann::json::value_t::boolean:
      return value.get<bool>() ? "True" : "False";
    case nlohmann::json::value_t::null:
      return "None";
    case nlohmann::json::value_t::number_float: {
      const double v = value.get<double>();
      if (std::isnan(v)) return "nan";
      if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
      return value.dump();
    }
    default:
      return value.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
  }
}

std::vector<std::pair<std::string, std::string>> flatten_mlflow_params(
    const nlohmann::json& config) {
  std::vector<std::pair<std::string, std::string>> out;
  if (config.is_null() || (config.is_object() && config.empty())) return out;
  if (!config.is_object()) {
    out.emplace_back("config", render_mlflow_param_value(config));
    return out;
  }
  flatten(config, "", out);
  return out;
}

}  // namespace accel
