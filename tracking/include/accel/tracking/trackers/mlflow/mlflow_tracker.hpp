#pragma once
// accel::MlflowTracker: the built-in "mlflow" tracker. Speaks MLflow's REST API through
// MlflowClient.
//
//   construction              resolves MlflowConfig (accel::InvalidValue for a bad configuration).
//                             Through the registry (log_with = {"mlflow"}) the credentials are also
//                             checked once, so rejected credentials fail init_trackers.
//   start                     experiment get-or-create, runs/create (or resume MLFLOW_RUN_ID). An
//                             unreachable server is not fatal: one warning, then calls throw
//                             TrackerUnavailable (TrackerHub journals them) until the server
//                             answers; then the run is created and the journal replays into it.
//   store_init_configuration  flattened params ("a/b"), keys made valid (MlflowKeyMapper), values
//                             cut to 6000 characters with one warning, sent in chunks of ≤ 100.
//   log                       scalars → metrics (timestamp = record_time(), the training loop's
//                             log time; step = step or 0), batched; ScalarGroup → one metric per
//                             series ("key/series"); strings, images (PNG), tables and histograms →
//                             artifacts through the server's artifact proxy under text/, images/,
//                             tables/, histograms/ + key + "/step_<step>".
//   flush / finish            send pending metrics; finish ends the run FINISHED / FAILED / KILLED.
//
// Batching and delivery guarantee (see docs/mlflow.md):
//   Metrics of accepted log() calls wait in `pending` until 4 x max_batch_metrics points are
//   pending or flush_interval has passed (checked on log() and by a small background flusher, so a
//   quiet loop still gets its last points out), then go out as up to 4 concurrent log-batch
//   requests of ≤ 1000 points (a replayed backlog drains at the server's speed). Each stored batch
//   is acknowledged to TrackerHub (GeneralTracker::acknowledge). Every log() call either is
//   accepted whole (metrics pending or sent, artifacts uploaded) or throws TrackerUnavailable
//   having accepted nothing, so TrackerHub's journal replays exactly what the server has not got. A
//   send that fails after retries keeps `pending` in memory, in order, and marks the server
//   offline; while offline, each call first tries (at most once per probe interval, one attempt) to
//   deliver `pending` and throws TrackerUnavailable, accepting nothing, if it cannot. So points are
//   never dropped or reordered; and a resent request whose first attempt did reach the server
//   stores nothing twice, because MLflow ignores a metric identical in key, value, step and
//   timestamp to one it has.
// Bad values (a 4xx from the server) are reported once with the server's message and dropped, not
// retried. Thread-safety: TrackerHub calls it from one worker thread (GeneralTracker contract); an
// internal mutex serialises those calls with the background flusher. The MlflowClient from
// tracker() is thread-safe.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "accel/tracking/general_tracker.hpp"
#include "accel/tracking/registry.hpp"
#include "accel/tracking/trackers/mlflow/mlflow_client.hpp"
#include "accel/tracking/trackers/mlflow/mlflow_config.hpp"

namespace accel {

class MlflowKeyMapper;  // valid MLflow names for keys (internal)

class MlflowTracker final : public GeneralTracker {
 public:
  // Resolves MlflowConfig (throws accel::InvalidValue for a bad configuration). Sends nothing.
  explicit MlflowTracker(const TrackerInit& init);
  explicit MlflowTracker(MlflowConfig config);
  ~MlflowTracker() override;

  // "mlflow": available when MLFLOW_TRACKING_URI is an http(s) URL; the factory also checks the
  // credentials (one request) so that rejected ones fail init_trackers with accel::TrackerError.
  static TrackerRegistration registration();

  std::string name() const override { return "mlflow"; }
  bool requires_logging_directory() const override { return false; }

  void start() override;
  void store_init_configuration(const nlohmann::json& config) override;
  void log(const Values& values, std::optional<int64_t> step) override;
  void flush() override;
  void finish(RunStatus status) override;
  // A MlflowClient* (valid while the tracker lives).
  std::any tracker() override { return client_.get(); }
  // Points wait in a batch of the tracker's own; acknowledged once a log-batch request stored them.
  bool holds_records() const override { return true; }
  // {"tracking_uri"} and, once the run exists, "run_id". TrackerInit::resume with these delivers
  // to that server (over MLFLOW_TRACKING_URI) and continues that run.
  nlohmann::json resume_info() const override;

  MlflowClient& client() { return *client_; }
  std::size_t pending_metrics() const;
  bool offline() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Artifact {
    std::string path;
    std::string bytes;
    std::string content_type;
  };

  // Log-batch requests sent at once when a backlog is delivered.
  static constexpr std::size_t kConcurrentRequests = 4;

  // All private members below expect mutex_ to be held.
  void ensure_run();
  void note_run_started();
  void update_acknowledged();
  bool send_batch(std::size_t offset, std::size_t n);
  void deliver_pending_while_offline();
  bool send_pending(bool whole);
  void send_pending_or_throw();
  void go_offline();
  void upload(const Artifact& artifact);
  std::string metric_key(const std::string& original);
  void report_once(const std::string& topic, const std::string& message);
  void flusher_main();
  void stop_flusher();

  std::unique_ptr<MlflowClient> client_;
  mutable std::mutex mutex_;
  bool started_ = false;
  bool warned_unreachable_at_start_ = false;
  std::vector<MlflowMetric> pending_;
  std::vector<uint64_t> pending_records_;  // for each pending point, the record it came from
  uint64_t accepted_records_ = 0;          // store_init_configuration and log calls accepted
  mutable std::mutex resume_mutex_;
  nlohmann::json resume_;
  std::mutex report_mutex_;  // report_once from concurrent batch requests
  Clock::time_point last_send_;
  bool offline_ = false;
  Clock::time_point next_probe_{};
  std::chrono::milliseconds probe_interval_{0};
  std::unique_ptr<MlflowKeyMapper> metric_keys_;  // never null
  std::unique_ptr<MlflowKeyMapper> param_keys_;   // never null
  std::set<std::string> reported_;
  uint64_t dropped_metrics_ = 0;

  std::condition_variable flusher_cv_;
  bool stopping_ = false;
  std::thread flusher_;
};

}  // namespace accel
