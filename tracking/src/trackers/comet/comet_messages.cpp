#include "trackers/comet/comet_messages.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "accel/tracking/errors.hpp"

namespace accel::comet {
namespace {

using nlohmann::json;

json optional_number(const std::optional<int64_t>& value) {
  return value ? json(*value) : json(nullptr);
}

bool is_scalar(const json& value) {
  return value.is_number() || value.is_string() || value.is_boolean() || value.is_null();
}

void flatten_into(const json& value, const std::string& prefix, FlatParameters& out) {
  if (value.is_object() && !value.empty()) {
    if (!prefix.empty()) out.nested = true;
    for (const auto& [key, inner] : value.items()) {
      flatten_into(inner, prefix.empty() ? key : prefix + "|" + key, out);
    }
    return;
  }
  if (value.is_array() && std::all_of(value.begin(), value.end(), is_scalar)) {
    out.entries.emplace_back(prefix, value);
  } else if (value.is_array() || value.is_object()) {
    out.entries.emplace_back(prefix, value.dump());  // an empty object or an array of composites
  } else if (value.is_number_float() && !std::isfinite(value.get<double>())) {
    out.entries.emplace_back(prefix, metric_value(value.get<double>()));
  } else {
    out.entries.emplace_back(prefix, value);
  }
}

// comet_ml.data_structure.Histogram with its default bins (start 1e-12, step 1.1, stop 1e20):
// 1551 counts, the midpoint 775 holding zero (shared/research/comet-formats.md §1.7).
constexpr double kStart = 1e-12;
constexpr double kStop = 1e20;
constexpr double kStep = 1.1;
constexpr int64_t kMidpoint = 775;
constexpr int64_t kLastIndex = 2 * kMidpoint;

std::optional<int64_t> bin_index(double x) {
  if (!std::isfinite(x) || std::fabs(x) >= kStop) return std::nullopt;  // numpy's path drops them
  if (std::fabs(x) <= 1e-20) return kMidpoint;
  const auto exponent =
      static_cast<int64_t>(std::ceil(std::log(std::fabs(x) / kStart) / std::log(kStep)));
  const int64_t index = x > 0 ? kMidpoint + exponent : kMidpoint - 1 - exponent;
  return std::clamp<int64_t>(index, 0, kLastIndex);
}

}  // namespace

json metric_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  return value;
}

json metric_payload(std::string_view name, json value, const Position& at) {
  return {{"local_timestamp", at.local_timestamp},
          {"metric",
           {{"epoch", optional_number(at.epoch)},
            {"metricName", name},
            {"metricValue", std::move(value)},
            {"step", optional_number(at.step)}}}};
}

json parameter_payload(std::string_view name, const json& value, const Position& at) {
  const json param = {{"paramName", name},
                      {"paramValue", value},
                      {"source", "manual"},
                      {"step", optional_number(at.step)}};
  return {{"local_timestamp", at.local_timestamp}, {value.is_array() ? "params" : "param", param}};
}

json log_other_payload(std::string_view key, json value) {
  return {{"key", key}, {"value", std::move(value)}};
}

std::string_view html_type(bool override_previous) {
  return override_previous ? "htmlOverride" : "html";
}

json html_payload(std::string_view html, bool override_previous) {
  return {{std::string(html_type(override_previous)), html}};
}

json file_upload_payload(std::string_view file_path, std::string_view upload_type,
                         json additional_params, const Position& at) {
  return {{"additional_params", std::move(additional_params)},
          {"clean", true},
          {"file_path", file_path},
          {"local_timestamp", at.local_timestamp},
          {"metadata", json::object()},
          {"upload_type", upload_type}};
}

json image_params(std::string_view name, int64_t figure, const Position& at) {
  return {{"context", nullptr},
          {"figCounter", figure},
          {"figName", name},
          {"imageId", new_uuid_hex()},
          {"overwrite", false},
          {"runId", nullptr},
          {"step", optional_number(at.step)}};
}

json asset_params(std::string_view file_name, std::string_view type, const Position& at) {
  json params = {
      {"assetId", new_uuid_hex()},       {"context", nullptr}, {"epoch", optional_number(at.epoch)},
      {"fileName", file_name},           {"overwrite", false}, {"runId", nullptr},
      {"step", optional_number(at.step)}};
  if (!type.empty()) params["type"] = type;
  return params;
}

FlatParameters flatten_parameters(const json& config) {
  FlatParameters out;
  if (config.is_object()) {
    for (const auto& [key, value] : config.items()) flatten_into(value, key, out);
  } else if (!config.is_null()) {
    flatten_into(config, "config", out);
  }
  return out;
}

json histogram_json(const Histogram& histogram, std::string_view what) {
  std::map<int64_t, double> counts;
  if (!histogram.samples.empty()) {
    for (double x : histogram.samples) {
      if (auto index = bin_index(x)) counts[*index] += 1;
    }
  } else {
    for (std::size_t i = 0; i < histogram.bucket_limits.size(); ++i) {
      const double count = i < histogram.bucket_counts.size() ? histogram.bucket_counts[i] : 0;
      if (count <= 0) continue;
      const double right = histogram.bucket_limits[i];
      const double left = i == 0 ? histogram.min : histogram.bucket_limits[i - 1];
      const double centre = std::isfinite(left) ? (left + right) / 2 : right;
      if (auto index = bin_index(centre)) counts[*index] += count;
    }
  }
  if (counts.empty()) {
    throw InvalidValue(
        fmt::format("comet_ml: histogram \"{}\" has no finite values below 1e20 to log", what));
  }
  json index_values = json::array();
  for (const auto& [index, count] : counts) {
    index_values.push_back(
        {index, count == std::floor(count) ? json(static_cast<int64_t>(count)) : json(count)});
  }
  return {{"version", 2},      {"index_values", std::move(index_values)},
          {"values", nullptr}, {"offset", 0},
          {"start", kStart},   {"stop", kStop},
          {"step", kStep}};
}

std::string new_uuid_hex() {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  std::uniform_int_distribution<int> digit(0, 15);
  std::string id(32, '0');
  for (char& c : id) c = "0123456789abcdef"[digit(generator)];
  id[12] = '4';                           // uuid version 4
  id[16] = "89ab"[digit(generator) & 3];  // RFC 4122 variant
  return id;
}

}  // namespace accel::comet
