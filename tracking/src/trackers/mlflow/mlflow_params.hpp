#pragma once
// How a run configuration (nested JSON) becomes MLflow params.
//   - Nested objects are flattened with '/' ({"model": {"hidden": 128}} → "model/hidden").
//   - Strings are sent as they are; numbers in their shortest round-trip form ("0.001", "128");
//     booleans as "True"/"False" and null as "None" (what the Python client would store);
//     arrays and empty objects as compact JSON ("[1,2,3]", "{}").
//   - Values longer than 6000 characters (MLflow's limit, counted in Unicode code points) are cut
//     to 6000; the result says which keys were cut so the caller can warn once.
// Keys are left as they are here; MlflowKeyMapper makes them valid.
// Thread-safety: pure functions.
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace accel {

inline constexpr std::size_t kMlflowMaxParamValueLength = 6000;
inline constexpr std::size_t kMlflowMaxTagValueLength = 8000;

// (key, value) in the order nlohmann::json iterates (keys sorted within each object).
std::vector<std::pair<std::string, std::string>> flatten_mlflow_params(
    const nlohmann::json& config);

// How one JSON scalar or array is rendered as a param value (see above).
std::string render_mlflow_param_value(const nlohmann::json& value);

}  // namespace accel
