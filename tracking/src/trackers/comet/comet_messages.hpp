#pragma once
// accel::comet: the payloads of the messages.json lines accel writes, in the shapes comet_ml 3.58.8
// writes them and its schemas (comet_ml/schemas/offline-*.schema.json) require; see
// shared/research/comet-formats.md §1.4-1.7. Step and epoch are null when none was set; context
// is omitted (accel has no phase for Comet yet). local_timestamp is an integer of epoch ms.
// Thread-safety: pure functions.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "accel/tracking/values.hpp"

namespace accel::comet {

struct Position {
  std::optional<int64_t> step;
  std::optional<int64_t> epoch;
  int64_t local_timestamp = 0;  // epoch ms
};

// A metric value as the SDK writes it: a number, or "NaN" / "Infinity" / "-Infinity".
nlohmann::json metric_value(double value);

// metric_msg: {"local_timestamp", "metric": {"metricName", "metricValue", "step", "epoch"}}.
nlohmann::json metric_payload(std::string_view name, nlohmann::json value, const Position& at);

// parameter_msg: "param" for a scalar/string/bool/null value, "params" for an array of those;
// source "manual", step = the current step.
nlohmann::json parameter_payload(std::string_view name, const nlohmann::json& value,
                                 const Position& at);

// log_other: {"key", "value"} (no timestamp, no context: its schema has neither).
nlohmann::json log_other_payload(std::string_view key, nlohmann::json value);

// html / htmlOverride (type from html_type): {"html": ...} or {"htmlOverride": ...}.
nlohmann::json html_payload(std::string_view html, bool override_previous);
std::string_view html_type(bool override_previous);

// file_upload: {"additional_params", "clean": true, "file_path", "local_timestamp", "metadata": {},
// "upload_type"}.
nlohmann::json file_upload_payload(std::string_view file_path, std::string_view upload_type,
                                   nlohmann::json additional_params, const Position& at);
// additional_params of log_image (upload_type "visualization"); figure counts 0, 1, ...
nlohmann::json image_params(std::string_view name, int64_t figure, const Position& at);
// additional_params of an asset (upload_type "asset", or "text-sample"/"histogram3d" with
// their "type"); fileName is the asset's name.
nlohmann::json asset_params(std::string_view file_name, std::string_view type, const Position& at);

// The configuration as log_parameters(config) flattens it: nested objects joined with '|', keys in
// order. Arrays of scalars stay arrays (the "params" form); an array holding objects or arrays,
// as the SDK's str(), becomes its JSON text. nested is true when any object was flattened (the SDK
// then logs the other "hasNestedParams").
struct FlatParameters {
  std::vector<std::pair<std::string, nlohmann::json>> entries;
  bool nested = false;
};
FlatParameters flatten_parameters(const nlohmann::json& config);

// comet_ml.data_structure.Histogram(...).to_json() of the samples (or of the bins, each count put
// at its bucket's centre): {"version": 2, "index_values": [[index, count], ...], "values": null,
// "offset": 0, "start": 1e-12, "stop": 1e20, "step": 1.1}. Throws accel::InvalidValue naming `what`
// when it is empty.
nlohmann::json histogram_json(const Histogram& histogram, std::string_view what);

// A uuid4 as 32 lowercase hex digits (imageId, assetId).
std::string new_uuid_hex();

}  // namespace accel::comet
