#include "accel/tracking/mlflow_tracker.hpp"

#include <algorithm>
#include <cmath>
#include <iostream>

#include <fmt/format.h>

#include "accel/tracking/mlflow_params.hpp"

namespace accel {

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void warn(std::string_view message) { std::cerr << "accel mlflow: warning: " << message << '\n'; }

// A file name part made of safe characters: what is not [A-Za-z0-9._-] becomes '_'.
std::string safe_file_part(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    out += (std::isalnum(c) || c == '.' || c == '_' || c == '-') ? static_cast<char>(c) : '_';
  }
  if (out.empty() || out == "." || out == "..") out = "_" + out;
  return out;
}

// NumPy .npy (format 1.0) of a uint8 array with the image's shape.
std::string image_npy(const Image& image) {
  std::string header = fmt::format("{{'descr': '|u1', 'fortran_order': False, 'shape': ({}, {}, {}), }}",
                                   image.height, image.width, image.channels);
  const std::size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xFF);
  out += static_cast<char>((header.size() >> 8) & 0xFF);
  out += header;
  out.append(reinterpret_cast<const char*>(image.pixels.data()), image.pixels.size());
  return out;
}

std::string table_json(const Table& table) {
  // mlflow.log_table's layout (pandas "split" orientation): {"columns": [...], "data": [[...]]}.
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& row : table.rows) rows.push_back(row);
  return nlohmann::json{{"columns", table.columns}, {"data", rows}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string histogram_json(const Histogram& histogram) {
  nlohmann::json out = {{"min", histogram.min},   {"max", histogram.max},
                        {"sum", histogram.sum},   {"sum_squares", histogram.sum_squares},
                        {"count", histogram.count()}};
  if (histogram.is_binned()) {
    out["bucket_limits"] = histogram.bucket_limits;
    out["bucket_counts"] = histogram.bucket_counts;
  } else {
    out["samples"] = histogram.samples;
  }
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

MlflowTracker::MlflowTracker(const TrackerInit& init) : MlflowTracker(MlflowConfig::resolve(init)) {}

MlflowTracker::MlflowTracker(MlflowConfig config)
    : client_(std::make_unique<MlflowClient>(std::move(config))), last_send_(Clock::now()) {}

MlflowTracker::~MlflowTracker() = default;

void MlflowTracker::report_once(const std::string& topic, const std::string& message) {
  if (reported_.insert(topic).second) warn(message);
}

void MlflowTracker::start() {
  try {
    client_->start_run();
    started_ = true;
  } catch (const TrackerUnavailable& e) {
    // Not fatal: records are journaled by TrackerHub until the server answers.
    warned_unreachable_at_start_ = true;
    warn(fmt::format("{}. Training goes on; accel keeps what is logged for MLflow and creates the "
                     "run when the server answers (check MLFLOW_TRACKING_URI if it never does)",
                     e.what()));
    offline_ = true;
    probe_interval_ = client_->config().retry.initial_backoff;
    next_probe_ = Clock::now() + probe_interval_;
  }
}

void MlflowTracker::ensure_run() {
  if (started_) return;
  const auto now = Clock::now();
  if (now < next_probe_) {
    throw TrackerUnavailable(fmt::format("MLflow server {} is unreachable; the run is not created yet",
                                         client_->config().tracking_uri));
  }
  try {
    if (!client_->reachable()) {
      throw TrackerUnavailable(fmt::format("MLflow server {} is unreachable; the run is not "
                                           "created yet",
                                           client_->config().tracking_uri));
    }
    client_->start_run();
  } catch (const TrackerUnavailable&) {
    probe_interval_ = std::clamp(probe_interval_ * 2, client_->config().retry.initial_backoff,
                                 client_->config().max_probe_interval);
    next_probe_ = Clock::now() + probe_interval_;
    throw;
  }
  started_ = true;
  offline_ = false;
  if (warned_unreachable_at_start_) {
    warn(fmt::format("MLflow server {} answers now; run {} created", client_->config().tracking_uri,
                     client_->run_id()));
  }
}

bool MlflowTracker::send_pending(bool whole) {
  const std::size_t batch = client_->config().max_batch_metrics;
  std::size_t count = whole ? pending_.size() : pending_.size() / batch * batch;
  std::size_t delivered = 0;
  bool reachable = true;
  while (delivered < count) {
    const std::size_t n = std::min(batch, count - delivered);
    try {
      client_->log_batch(std::span(pending_).subspan(delivered, n));
    } catch (const TrackerUnavailable&) {
      reachable = false;
      break;
    } catch (const MlflowRequestError& e) {
      // Rejected by the server (a bad value): report once, drop this batch, go on.
      dropped_metrics_ += n;
      report_once("metrics:" + e.error_code(),
                  fmt::format("{} metric points were dropped: {}", n, e.what()));
    }
    delivered += n;
  }
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(delivered));
  if (delivered > 0 || whole) last_send_ = Clock::now();
  return reachable;
}

void MlflowTracker::send_pending_or_throw() {
  if (pending_.empty()) return;
  if (!send_pending(true)) {
    offline_ = true;
    throw TrackerUnavailable(fmt::format("MLflow server {} is unreachable; {} metric points are "
                                         "kept and sent when it answers",
                                         client_->config().tracking_uri, pending_.size()));
  }
  offline_ = false;
}

void MlflowTracker::deliver_pending_while_offline() {
  if (!offline_) return;
  const auto now = Clock::now();
  if (now < next_probe_) {
    throw TrackerUnavailable(fmt::format("MLflow server {} is unreachable ({} metric points wait)",
                                         client_->config().tracking_uri, pending_.size()));
  }
  // One cheap attempt per probe: the worker must not spend the outage sleeping in backoff.
  const std::size_t before = pending_.size();
  const bool reachable = client_->reachable() && send_pending(true);
  if (!reachable) {
    probe_interval_ = std::clamp(probe_interval_ * 2, client_->config().retry.initial_backoff,
                                 client_->config().max_probe_interval);
    next_probe_ = Clock::now() + probe_interval_;
    throw TrackerUnavailable(fmt::format("MLflow server {} is unreachable ({} of {} metric points "
                                         "wait)",
                                         client_->config().tracking_uri, pending_.size(), before));
  }
  offline_ = false;
  probe_interval_ = client_->config().retry.initial_backoff;
}

std::string MlflowTracker::metric_key(const std::string& original) {
  auto mapped = metric_keys_.map(original);
  if (mapped.first_time && mapped.renamed) {
    warn(fmt::format("metric key '{}' is logged to MLflow as '{}' (MLflow allows alphanumerics, "
                     "'_', '-', '.', ' ', ':' and '/', at most 250 characters)",
                     original, mapped.key));
  }
  return mapped.key;
}

std::string MlflowTracker::artifact_path(std::string_view folder, const std::string& key,
                                         std::optional<int64_t> step,
                                         std::string_view extension) const {
  std::string path(folder);
  std::size_t begin = 0;
  while (begin <= key.size()) {
    const std::size_t end = std::min(key.find('/', begin), key.size());
    if (end > begin) path += "/" + safe_file_part(std::string_view(key).substr(begin, end - begin));
    begin = end + 1;
  }
  if (path == folder) path += "/_";
  path += step ? fmt::format("/step_{}", *step) : std::string("/value");
  path += extension;
  return path;
}

void MlflowTracker::upload(const Artifact& artifact) {
  if (!client_->artifacts_proxied()) {
    report_once("artifacts:not-proxied",
                fmt::format("the MLflow server does not proxy artifacts (run artifact URI '{}'), so "
                            "strings, images and tables are not sent; start `mlflow server` with "
                            "artifact serving (the default) to get them",
                            client_->artifact_uri()));
    return;
  }
  try {
    client_->log_artifact_bytes(artifact.path, artifact.bytes, artifact.content_type);
  } catch (const MlflowRequestError& e) {
    report_once("artifacts:" + e.error_code(),
                fmt::format("artifact '{}' was not stored: {}", artifact.path, e.what()));
  }
}

void MlflowTracker::store_init_configuration(const nlohmann::json& config) {
  ensure_run();
  deliver_pending_while_offline();
  std::vector<MlflowParam> params;
  std::vector<std::string> cut_keys;
  for (auto& [key, value] : flatten_mlflow_params(config)) {
    auto mapped = param_keys_.map(key);
    if (mapped.first_time && mapped.renamed) {
      warn(fmt::format("config key '{}' is logged to MLflow as param '{}'", key, mapped.key));
    }
    bool cut = false;
    std::string sent = truncate_utf8(value, kMlflowMaxParamValueLength, &cut);
    if (cut) cut_keys.push_back(mapped.key);
    params.push_back({mapped.key, std::move(sent)});
  }
  // Keys mapped to the same name within one call cannot happen (the mapper makes them unique), but
  // the same original key twice can (a config that repeats a flattened path): keep the last value.
  std::vector<MlflowParam> unique;
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    if (std::none_of(unique.begin(), unique.end(), [&](const MlflowParam& p) { return p.key == it->key; })) {
      unique.push_back(*it);
    }
  }
  std::reverse(unique.begin(), unique.end());
  if (!cut_keys.empty()) {
    std::string keys;
    for (const auto& k : cut_keys) keys += (keys.empty() ? "'" : ", '") + k + "'";
    warn(fmt::format("{} config value{} longer than {} characters cut to {} for MLflow: {}",
                     cut_keys.size(), cut_keys.size() == 1 ? " is" : "s are",
                     kMlflowMaxParamValueLength, kMlflowMaxParamValueLength, keys));
  }
  try {
    client_->log_batch({}, unique);
  } catch (const MlflowRequestError& e) {
    report_once("params:" + e.error_code(),
                fmt::format("the run configuration was not stored: {}", e.what()));
  }
}

void MlflowTracker::log(const Values& values, std::optional<int64_t> step) {
  ensure_run();
  deliver_pending_while_offline();

  const int64_t timestamp = now_ms();
  const int64_t metric_step = step.value_or(0);
  std::vector<MlflowMetric> metrics;
  std::vector<Artifact> artifacts;
  for (const auto& [key, value] : values) {
    const auto& storage = value.storage();
    if (value.is_scalar()) {
      metrics.push_back({metric_key(key), value.as_double(), timestamp, metric_step});
    } else if (const auto* group = std::get_if<ScalarGroup>(&storage)) {
      for (const auto& [series, v] : group->series) {
        metrics.push_back({metric_key(key + "/" + series), v, timestamp, metric_step});
      }
    } else if (const auto* text = std::get_if<std::string>(&storage)) {
      artifacts.push_back({artifact_path("text", key, step, ".txt"), *text, "text/plain; charset=utf-8"});
    } else if (const auto* image = std::get_if<Image>(&storage)) {
      image->validate(key);
      artifacts.push_back({artifact_path("images", key, step, ".npy"), image_npy(*image),
                           "application/octet-stream"});
    } else if (const auto* table = std::get_if<Table>(&storage)) {
      artifacts.push_back({artifact_path("tables", key, step, ".json"), table_json(*table), "application/json"});
    } else if (const auto* histogram = std::get_if<Histogram>(&storage)) {
      artifacts.push_back({artifact_path("histograms", key, step, ".json"), histogram_json(*histogram),
                           "application/json"});
    }
  }
  // Artifacts first: if one cannot be uploaded, nothing of this record has been accepted yet and
  // the journal replays it whole (uploads go to fixed paths, so a repeat overwrites).
  for (const auto& artifact : artifacts) upload(artifact);

  pending_.insert(pending_.end(), std::make_move_iterator(metrics.begin()),
                  std::make_move_iterator(metrics.end()));
  const auto& config = client_->config();
  const bool full = pending_.size() >= config.max_batch_metrics;
  const bool due = !pending_.empty() && Clock::now() - last_send_ >= config.flush_interval;
  if (full || due) {
    if (!send_pending(/*whole=*/due)) {
      // This record is accepted (its points are pending); later records wait in the journal.
      offline_ = true;
      probe_interval_ = config.retry.initial_backoff;
      next_probe_ = Clock::now() + probe_interval_;
      report_once("offline", fmt::format("MLflow server {} stopped answering; accel keeps logging "
                                         "to its journal and resends when it is back",
                                         config.tracking_uri));
    }
  }
}

void MlflowTracker::flush() {
  if (!started_) ensure_run();
  send_pending_or_throw();
}

void MlflowTracker::finish(RunStatus status) {
  ensure_run();
  send_pending_or_throw();
  client_->end_run(status);
  if (dropped_metrics_ > 0) {
    warn(fmt::format("{} metric points were rejected by the MLflow server (see the warnings above)",
                     dropped_metrics_));
  }
}

}  // namespace accel
