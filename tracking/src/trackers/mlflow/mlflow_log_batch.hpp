#pragma once
// The payload of MLflow's runs/log-batch and how it is split to the server's limits
// (mlflow/utils/validation.py): at most 1000 metrics, 100 params, 100 tags and 1000 entities in all
// per request, and at most 1,000,000 bytes of JSON. Entities keep their order across chunks, so
// metrics reach the server in the order they were logged.
// Metric values that are NaN or ±Inf are sent as the JSON strings "NaN", "Infinity", "-Infinity",
// which is what the mlflow Python client sends (protobuf JSON mapping); the server stores NaN as
// NaN and ±Inf as ±1.7976931348623157e308. Thread-safety: pure functions over values.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "accel/tracking/trackers/mlflow/mlflow_entities.hpp"

namespace accel {

struct MlflowBatchLimits {
  std::size_t max_metrics = 1000;
  std::size_t max_params = 100;
  std::size_t max_tags = 100;
  std::size_t max_entities = 1000;
  std::size_t max_request_bytes = 1'000'000;
};

// One runs/log-batch request body, ready to send, and how many entities of each kind it holds.
struct MlflowLogBatchChunk {
  std::string body;
  std::size_t metrics = 0;
  std::size_t params = 0;
  std::size_t tags = 0;
};

// Splits the entities into request bodies for run_id that each respect limits. Params and tags go
// first, then metrics in order. Throws accel::InvalidValue when a single entity alone exceeds
// max_request_bytes (a value that long is rejected by MLflow's own per-value limits anyway).
std::vector<MlflowLogBatchChunk> split_mlflow_log_batch(std::string_view run_id,
                                                        std::span<const MlflowMetric> metrics,
                                                        std::span<const MlflowParam> params,
                                                        std::span<const MlflowTag> tags,
                                                        const MlflowBatchLimits& limits = {});

// The JSON of one metric as MLflow's REST API expects it: {"key","value","timestamp","step"}.
std::string mlflow_metric_json(const MlflowMetric& metric);

}  // namespace accel
