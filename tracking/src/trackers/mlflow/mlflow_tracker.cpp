#include "accel/tracking/trackers/mlflow/mlflow_tracker.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <future>
#include <iostream>

#include "accel/tracking/warnings.hpp"
#include "common/png_encoder.hpp"
#include "common/utf8.hpp"
#include "trackers/mlflow/mlflow_keys.hpp"
#include "trackers/mlflow/mlflow_log_batch.hpp"
#include "trackers/mlflow/mlflow_params.hpp"

namespace accel {

namespace {

int64_t to_ms(std::chrono::system_clock::time_point time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

void warn_mlflow(std::string_view message) {
  warn(fmt::format("mlflow: {}", message));
}

// A file name part made of safe characters: what is not [A-Za-z0-9._-] becomes '_'.
std::string safe_file_part(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    out += (std::isalnum(c) || c == '.' || c == '_' || c == '-') ? static_cast<char>(c) : '_';
  }
  if (out.empty() || out == "." || out == "..") out.insert(0, 1, '_');
  return out;
}

// <folder>/<key segments made safe>/step_<step><extension> ("value" instead of step_<n> without
// one).
std::string artifact_path(std::string_view folder, std::string_view key,
                          std::optional<int64_t> step, std::string_view extension) {
  std::string path(folder);
  const std::size_t folder_size = path.size();
  std::size_t begin = 0;
  while (begin <= key.size()) {
    const std::size_t end = std::min(key.find('/', begin), key.size());
    if (end > begin) path += "/" + safe_file_part(key.substr(begin, end - begin));
    begin = end + 1;
  }
  if (path.size() == folder_size) path += "/_";
  path += step ? fmt::format("/step_{}", *step) : std::string("/value");
  path += extension;
  return path;
}

std::string table_json(const Table& table) {
  // mlflow.log_table's layout (pandas "split" orientation): {"columns": [...], "data": [[...]]}.
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& row : table.rows) rows.push_back(row);
  return nlohmann::json{{"columns", table.columns}, {"data", rows}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string histogram_json(const Histogram& histogram) {
  nlohmann::json out = {{"min", histogram.min},
                        {"max", histogram.max},
                        {"sum", histogram.sum},
                        {"sum_squares", histogram.sum_squares},
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

TrackerRegistration MlflowTracker::registration() {
  return {.name = "mlflow",
          .factory =
              [](const TrackerInit& init) {
                auto tracker = std::make_unique<MlflowTracker>(init);
                tracker->client().check_credentials();
                return tracker;
              },
          .unavailable_reason = [] { return MlflowConfig::unavailable_reason(); },
          .requires_logging_directory = false};
}

namespace {
MlflowConfig resumed(const TrackerInit& init) {
  if (!init.resume.is_object()) return MlflowConfig::resolve(init);
  // `accel-launch sync`: the server and the run the journal was written for. A tracking URI set
  // for this process (init_kwargs, MLFLOW_TRACKING_URI) wins: the server may have moved.
  TrackerInit with_server = init;
  const bool uri_given =
      init.init_kwargs.contains("tracking_uri") || std::getenv("MLFLOW_TRACKING_URI") != nullptr;
  if (auto uri = init.resume.find("tracking_uri"); uri != init.resume.end() && !uri_given) {
    with_server.init_kwargs["tracking_uri"] = *uri;
  }
  MlflowConfig config = MlflowConfig::resolve(with_server);
  if (auto run = init.resume.find("run_id"); run != init.resume.end()) {
    config.run_id = run->get<std::string>();
  }
  return config;
}
}  // namespace

MlflowTracker::MlflowTracker(const TrackerInit& init) : MlflowTracker(resumed(init)) {}

MlflowTracker::MlflowTracker(MlflowConfig config)
    : client_(std::make_unique<MlflowClient>(std::move(config))),
      last_send_(Clock::now()),
      metric_keys_(std::make_unique<MlflowKeyMapper>()),
      param_keys_(std::make_unique<MlflowKeyMapper>()) {
  resume_ = {{"tracking_uri", client_->config().tracking_uri}};
}

MlflowTracker::~MlflowTracker() {
  stop_flusher();
}

std::size_t MlflowTracker::pending_metrics() const {
  std::lock_guard lock(mutex_);
  return pending_.size();
}

bool MlflowTracker::offline() const {
  std::lock_guard lock(mutex_);
  return offline_;
}

void MlflowTracker::report_once(const std::string& topic, const std::string& message) {
  if (reported_.insert(topic).second) warn_mlflow(message);
}

void MlflowTracker::start() {
  std::unique_lock lock(mutex_);
  if (!started_ && !warned_unreachable_at_start_) {
    try {
      client_->start_run();
      started_ = true;
      note_run_started();
    } catch (const TrackerUnavailable& e) {
      // Not fatal: records are journaled by TrackerHub until the server answers.
      warned_unreachable_at_start_ = true;
      warn_mlflow(
          fmt::format("{}. Training goes on: what is logged for MLflow is kept and the run is "
                      "created when the server answers (check MLFLOW_TRACKING_URI if it "
                      "never does)",
                      e.what()));
      probe_interval_ = client_->config().retry.initial_backoff;
      next_probe_ = Clock::now() + probe_interval_;
    }
  }
  if (!flusher_.joinable()) flusher_ = std::thread([this] { flusher_main(); });
}

void MlflowTracker::ensure_run() {
  if (started_) return;
  if (Clock::now() < next_probe_) {
    throw TrackerUnavailable(
        fmt::format("MLflow server {} is unreachable; the run is not created yet",
                    client_->config().tracking_uri));
  }
  try {
    if (!client_->reachable()) {
      throw TrackerUnavailable(
          fmt::format("MLflow server {} is unreachable; the run is not created "
                      "yet",
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
  note_run_started();
  if (warned_unreachable_at_start_) {
    warn_mlflow(fmt::format("server {} answers now; run {} created", client_->config().tracking_uri,
                            client_->run_id()));
  }
}

nlohmann::json MlflowTracker::resume_info() const {
  std::lock_guard lock(resume_mutex_);
  return resume_;
}

void MlflowTracker::note_run_started() {
  {
    std::lock_guard lock(resume_mutex_);
    resume_ = {{"tracking_uri", client_->config().tracking_uri}, {"run_id", client_->run_id()}};
  }
  // Once per run, where the run can be looked at (the tracker runs on the main process only).
  const auto& config = client_->config();
  std::cerr << fmt::format("[accel] mlflow run{}: {}/#/experiments/{}/runs/{}\n",
                           config.run_name.empty() ? "" : fmt::format(" '{}'", config.run_name),
                           config.tracking_uri, client_->experiment_id(), client_->run_id())
            << std::flush;
}

void MlflowTracker::update_acknowledged() {
  acknowledge(pending_records_.empty() ? accepted_records_ : pending_records_.front() - 1);
}

// Sends one log-batch request; false when the server is unreachable.
bool MlflowTracker::send_batch(std::size_t offset, std::size_t n) {
  try {
    client_->log_batch(std::span(pending_).subspan(offset, n));
  } catch (const TrackerUnavailable&) {
    return false;
  } catch (const MlflowRequestError& e) {
    // Rejected by the server (a bad value): report once, drop this batch, go on.
    std::lock_guard lock(report_mutex_);
    dropped_metrics_ += n;
    report_once("metrics:" + e.error_code(),
                fmt::format("{} metric points were dropped: {}", n, e.what()));
  }
  return true;
}

bool MlflowTracker::send_pending(bool whole) {
  const std::size_t batch = client_->config().max_batch_metrics;
  const std::size_t count = whole ? pending_.size() : pending_.size() / batch * batch;
  std::size_t delivered = 0;
  bool reachable = true;
  while (delivered < count && reachable) {
    // A backlog (a journal replay) goes out as several requests at once; points carry their own
    // step and timestamp, so the server's order of arrival does not matter.
    const std::size_t requests =
        std::min<std::size_t>(kConcurrentRequests, (count - delivered + batch - 1) / batch);
    std::vector<std::future<bool>> others;
    for (std::size_t r = 1; r < requests; ++r) {
      const std::size_t offset = delivered + r * batch;
      const std::size_t n = std::min(batch, count - offset);
      others.push_back(
          std::async(std::launch::async, [this, offset, n] { return send_batch(offset, n); }));
    }
    const std::size_t first = std::min(batch, count - delivered);
    reachable = send_batch(delivered, first);
    std::size_t done = reachable ? first : 0;
    for (std::size_t r = 0; r < others.size(); ++r) {
      const bool ok = others[r].get();
      // Only a prefix counts as delivered: a later batch that got through is resent with the
      // failed one, and the server ignores the points it already has.
      if (reachable && ok) {
        done += std::min(batch, count - (delivered + (r + 1) * batch));
      } else {
        reachable = false;
      }
    }
    delivered += done;
  }
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(delivered));
  pending_records_.erase(pending_records_.begin(),
                         pending_records_.begin() + static_cast<std::ptrdiff_t>(delivered));
  if (reachable) last_send_ = Clock::now();
  update_acknowledged();
  return reachable;
}

void MlflowTracker::go_offline() {
  if (!offline_) probe_interval_ = client_->config().retry.initial_backoff;
  offline_ = true;
  next_probe_ = Clock::now() + probe_interval_;
}

void MlflowTracker::send_pending_or_throw() {
  if (pending_.empty()) return;
  if (!send_pending(true)) {
    go_offline();
    throw TrackerUnavailable(
        fmt::format("MLflow server {} is unreachable; {} metric points are "
                    "kept and sent when it answers",
                    client_->config().tracking_uri, pending_.size()));
  }
  offline_ = false;
}

void MlflowTracker::deliver_pending_while_offline() {
  if (!offline_) return;
  if (Clock::now() < next_probe_) {
    throw TrackerUnavailable(fmt::format("MLflow server {} is unreachable ({} metric points wait)",
                                         client_->config().tracking_uri, pending_.size()));
  }
  // One cheap attempt per probe: the worker must not spend the outage sleeping in backoff.
  if (!client_->reachable() || !send_pending(true)) {
    probe_interval_ = std::clamp(probe_interval_ * 2, client_->config().retry.initial_backoff,
                                 client_->config().max_probe_interval);
    next_probe_ = Clock::now() + probe_interval_;
    throw TrackerUnavailable(fmt::format("MLflow server {} is unreachable ({} metric points wait)",
                                         client_->config().tracking_uri, pending_.size()));
  }
  offline_ = false;
}

std::string MlflowTracker::metric_key(const std::string& original) {
  auto mapped = metric_keys_->map(original);
  if (mapped.first_time && mapped.renamed) {
    warn_mlflow(
        fmt::format("metric key '{}' is logged to MLflow as '{}' (MLflow allows "
                    "alphanumerics, '_', '-', '.', ' ', ':' and '/', at most 250 characters)",
                    original, mapped.key));
  }
  return mapped.key;
}

void MlflowTracker::upload(const Artifact& artifact) {
  if (!client_->artifacts_proxied()) {
    report_once("artifacts:not-proxied",
                fmt::format("the server does not proxy artifacts (run artifact URI '{}'), so "
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
  std::lock_guard lock(mutex_);
  ensure_run();
  deliver_pending_while_offline();
  std::vector<MlflowParam> params;
  std::vector<std::string> cut_keys;
  std::set<std::string> seen;
  for (auto& [flat_key, value] : flatten_mlflow_params(config)) {
    // {"a": {"b": 1}, "a/b": 2} flattens to "a/b" twice: the later one becomes "a/b_2".
    std::string key = flat_key;
    for (int n = 2; !seen.insert(key).second; ++n) key = fmt::format("{}_{}", flat_key, n);
    auto mapped = param_keys_->map(key);
    if (mapped.first_time && (mapped.renamed || key != flat_key)) {
      warn_mlflow(fmt::format("config key '{}' is logged to MLflow as param '{}'{}", flat_key,
                              mapped.key,
                              key != flat_key ? " (the name occurs twice after flattening)" : ""));
    }
    bool cut = false;
    std::string sent = truncate_utf8(value, kMlflowMaxParamValueLength, &cut);
    if (cut) cut_keys.push_back(mapped.key);
    params.push_back({mapped.key, std::move(sent)});
  }
  if (!cut_keys.empty()) {
    std::string keys;
    for (const auto& k : cut_keys) keys += (keys.empty() ? "'" : ", '") + k + "'";
    warn_mlflow(fmt::format("{} config value{} longer than {} characters cut to {}: {}",
                            cut_keys.size(), cut_keys.size() == 1 ? " is" : "s are",
                            kMlflowMaxParamValueLength, kMlflowMaxParamValueLength, keys));
  }
  try {
    client_->log_batch({}, params);
  } catch (const MlflowRequestError& e) {
    report_once("params:" + e.error_code(),
                fmt::format("the run configuration was not stored: {}", e.what()));
  }
  ++accepted_records_;
  update_acknowledged();
}

void MlflowTracker::log(const Values& values, std::optional<int64_t> step) {
  std::unique_lock lock(mutex_);
  ensure_run();
  deliver_pending_while_offline();

  const int64_t timestamp = to_ms(record_time());
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
      artifacts.push_back(
          {artifact_path("text", key, step, ".txt"), *text, "text/plain; charset=utf-8"});
    } else if (const auto* image = std::get_if<Image>(&storage)) {
      artifacts.push_back(
          {artifact_path("images", key, step, ".png"), encode_png(*image, key), "image/png"});
    } else if (const auto* table = std::get_if<Table>(&storage)) {
      artifacts.push_back(
          {artifact_path("tables", key, step, ".json"), table_json(*table), "application/json"});
    } else if (const auto* histogram = std::get_if<Histogram>(&storage)) {
      artifacts.push_back({artifact_path("histograms", key, step, ".json"),
                           histogram_json(*histogram), "application/json"});
    }
  }
  // Artifacts first: if one cannot be uploaded, nothing of this record has been accepted yet and
  // the journal replays it whole (uploads go to fixed paths, so a repeat overwrites).
  for (const auto& artifact : artifacts) upload(artifact);

  ++accepted_records_;
  pending_records_.insert(pending_records_.end(), metrics.size(), accepted_records_);
  pending_.insert(pending_.end(), std::make_move_iterator(metrics.begin()),
                  std::make_move_iterator(metrics.end()));
  update_acknowledged();
  const auto& config = client_->config();
  const bool full = pending_.size() >= config.max_batch_metrics * kConcurrentRequests;
  const bool due = !pending_.empty() && Clock::now() - last_send_ >= config.flush_interval;
  if ((full || due) && !send_pending(/*whole=*/due)) {
    // This record is accepted (its points are pending, in order); later ones wait in the journal.
    go_offline();
    report_once("offline", fmt::format("server {} stopped answering; its points are kept and "
                                       "resent in order when it is back",
                                       config.tracking_uri));
  }
}

void MlflowTracker::flush() {
  std::lock_guard lock(mutex_);
  ensure_run();
  send_pending_or_throw();
}

void MlflowTracker::finish(RunStatus status) {
  {
    std::lock_guard lock(mutex_);
    ensure_run();
    send_pending_or_throw();
    client_->end_run(status);
    if (dropped_metrics_ > 0) {
      warn_mlflow(
          fmt::format("{} metric points were rejected by the server (see the warnings "
                      "above)",
                      dropped_metrics_));
    }
  }
  stop_flusher();
}

void MlflowTracker::flusher_main() {
  std::unique_lock lock(mutex_);
  const auto interval = client_->config().flush_interval;
  while (!stopping_) {
    flusher_cv_.wait_for(lock, interval / 2 + std::chrono::milliseconds(1));
    if (stopping_ || !started_ || pending_.empty()) continue;
    const auto now = Clock::now();
    if (offline_) {
      if (now < next_probe_) continue;
      try {
        deliver_pending_while_offline();
      } catch (const TrackerUnavailable&) {
      }
    } else if (now - last_send_ >= interval && !send_pending(true)) {
      go_offline();
    }
  }
}

void MlflowTracker::stop_flusher() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  flusher_cv_.notify_all();
  if (flusher_.joinable() && flusher_.get_id() != std::this_thread::get_id()) flusher_.join();
}

}  // namespace accel
