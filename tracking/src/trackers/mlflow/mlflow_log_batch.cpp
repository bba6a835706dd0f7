#include "trackers/mlflow/mlflow_log_batch.hpp"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "accel/tracking/errors.hpp"

namespace accel {

namespace {

std::string json_string(std::string_view text) {
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string key_value_json(std::string_view key, std::string_view value) {
  return fmt::format(R"({{"key":{},"value":{}}})", json_string(key), json_string(value));
}

// Accumulates entities of one request.
struct ChunkBuilder {
  std::string metrics, params, tags;
  MlflowLogBatchChunk counts;

  std::size_t entities() const { return counts.metrics + counts.params + counts.tags; }
  bool empty() const { return entities() == 0; }
  std::size_t bytes(std::size_t envelope) const {
    return envelope + metrics.size() + params.size() + tags.size();
  }
};

}  // namespace

std::string mlflow_metric_json(const MlflowMetric& metric) {
  std::string value;
  if (std::isnan(metric.value)) {
    value = R"("NaN")";
  } else if (std::isinf(metric.value)) {
    value = metric.value > 0 ? R"("Infinity")" : R"("-Infinity")";
  } else {
    value = fmt::format("{}", metric.value);
  }
  return fmt::format(R"({{"key":{},"value":{},"timestamp":{},"step":{}}})", json_string(metric.key),
                     value, metric.timestamp_ms, metric.step);
}

std::vector<MlflowLogBatchChunk> split_mlflow_log_batch(std::string_view run_id,
                                                        std::span<const MlflowMetric> metrics,
                                                        std::span<const MlflowParam> params,
                                                        std::span<const MlflowTag> tags,
                                                        const MlflowBatchLimits& limits) {
  const std::string run_id_json = json_string(run_id);
  // {"run_id":...,"metrics":[],"params":[],"tags":[]}
  const std::size_t envelope = run_id_json.size() + 48;
  std::vector<MlflowLogBatchChunk> chunks;
  ChunkBuilder current;

  auto finish = [&] {
    if (current.empty()) return;
    MlflowLogBatchChunk chunk = current.counts;
    chunk.body.reserve(current.bytes(envelope));
    chunk.body += R"({"run_id":)";
    chunk.body += run_id_json;
    chunk.body += R"(,"metrics":[)";
    chunk.body += current.metrics;
    chunk.body += R"(],"params":[)";
    chunk.body += current.params;
    chunk.body += R"(],"tags":[)";
    chunk.body += current.tags;
    chunk.body += "]}";
    chunks.push_back(std::move(chunk));
    current = ChunkBuilder{};
  };

  enum class Kind { metric, param, tag };
  auto add = [&](Kind kind, const std::string& json) {
    const std::size_t added = json.size() + 1;  // + separating comma
    if (envelope + added > limits.max_request_bytes) {
      throw InvalidValue(
          fmt::format("one MLflow {} is {} bytes of JSON, more than a log-batch "
                      "request may hold ({} bytes); shorten its value",
                      kind == Kind::metric  ? "metric"
                      : kind == Kind::param ? "param"
                                            : "tag",
                      json.size(), limits.max_request_bytes));
    }
    auto full = [&] {
      if (current.entities() + 1 > limits.max_entities) return true;
      if (current.bytes(envelope) + added > limits.max_request_bytes) return true;
      switch (kind) {
        case Kind::metric:
          return current.counts.metrics + 1 > limits.max_metrics;
        case Kind::param:
          return current.counts.params + 1 > limits.max_params;
        case Kind::tag:
          return current.counts.tags + 1 > limits.max_tags;
      }
      return false;
    };
    if (full()) finish();
    std::string& section = kind == Kind::metric  ? current.metrics
                           : kind == Kind::param ? current.params
                                                 : current.tags;
    if (!section.empty()) section += ',';
    section += json;
    (kind == Kind::metric  ? current.counts.metrics
     : kind == Kind::param ? current.counts.params
                           : current.counts.tags) += 1;
  };

  for (const auto& param : params) add(Kind::param, key_value_json(param.key, param.value));
  for (const auto& tag : tags) add(Kind::tag, key_value_json(tag.key, tag.value));
  for (const auto& metric : metrics) add(Kind::metric, mlflow_metric_json(metric));
  finish();
  return chunks;
}

}  // namespace accel
