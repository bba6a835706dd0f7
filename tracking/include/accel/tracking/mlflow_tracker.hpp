#pragma once
// accel::MlflowTracker: the built-in "mlflow" tracker. Speaks MLflow's REST API through MlflowClient.
//
//   start                     experiment get-or-create, runs/create (or resume MLFLOW_RUN_ID). An
//                             unreachable server is not fatal: a warning is printed, calls throw
//                             TrackerUnavailable (so TrackerHub journals them) until the server
//                             answers, then the run is created and the journal replays into it.
//                             Rejected credentials or a bad configuration throw TrackerError.
//   store_init_configuration  flattened params ("a/b"), keys made valid (MlflowKeyMapper), values cut
//                             to 6000 characters with one warning, sent in chunks of ≤ 100.
//   log                       scalars → metrics (timestamp = when log() ran, step = step or 0),
//                             batched; ScalarGroup → one metric per series ("key/series");
//                             strings, images, tables, histograms → artifacts through the server's
//                             artifact proxy (text/, images/, tables/, histograms/ + key + step).
//   flush / finish            send pending metrics; finish ends the run FINISHED / FAILED / KILLED.
//
// Batching and delivery guarantee (see docs/mlflow.md):
//   Metrics of accepted log() calls wait in `pending` until max_batch_metrics points are pending or
//   flush_interval has passed, then go out as log-batch requests of ≤ 1000 points. Every log() call
//   either is accepted whole (its metrics are pending or sent, its artifacts uploaded) or throws
//   TrackerUnavailable having accepted nothing, so TrackerHub's journal replays exactly the records
//   the server has not got. A send that fails after retries keeps `pending` in memory (in order) and
//   marks the server offline; while offline every log() first tries (at most once per probe
//   interval) to deliver `pending`, and throws TrackerUnavailable without accepting its record when
//   it cannot. Points are therefore never dropped or reordered; a resent request whose first attempt
//   did reach the server stores nothing twice, because MLflow ignores a metric identical in key,
//   value, step and timestamp to one already stored.
// Bad values (a 4xx from the server) are reported once with the server's message and dropped, not
// retried. Thread-safety: TrackerHub calls it from one worker thread (GeneralTracker contract); the
// MlflowClient from tracker() is thread-safe.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "accel/tracking/general_tracker.hpp"
#include "accel/tracking/mlflow_client.hpp"
#include "accel/tracking/mlflow_config.hpp"
#include "accel/tracking/mlflow_keys.hpp"
#include "accel/tracking/mlflow_log_batch.hpp"

namespace accel {

class MlflowTracker final : public GeneralTracker {
 public:
  // Resolves MlflowConfig (throws accel::InvalidValue for a bad configuration). Sends nothing.
  explicit MlflowTracker(const TrackerInit& init);
  explicit MlflowTracker(MlflowConfig config);
  ~MlflowTracker() override;

  std::string name() const override { return "mlflow"; }
  bool requires_logging_directory() const override { return false; }

  void start() override;
  void store_init_configuration(const nlohmann::json& config) override;
  void log(const Values& values, std::optional<int64_t> step) override;
  void flush() override;
  void finish(RunStatus status) override;
  // A MlflowClient* (valid while the tracker lives).
  std::any tracker() override { return client_.get(); }

  MlflowClient& client() { return *client_; }
  std::size_t pending_metrics() const { return pending_.size(); }
  bool offline() const { return offline_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Artifact {
    std::string path;
    std::string bytes;
    std::string content_type;
  };

  void ensure_run();
  void deliver_pending_while_offline();
  // Sends pending metrics. whole=false sends only full batches (size trigger). Returns false (and
  // keeps what was not delivered) when the server is unreachable; throws nothing transient.
  bool send_pending(bool whole);
  void send_pending_or_throw();
  void upload(const Artifact& artifact);
  std::string metric_key(const std::string& original);
  std::string artifact_path(std::string_view folder, const std::string& key,
                            std::optional<int64_t> step, std::string_view extension) const;
  void report_once(const std::string& topic, const std::string& message);

  std::unique_ptr<MlflowClient> client_;
  bool started_ = false;
  bool warned_unreachable_at_start_ = false;
  std::vector<MlflowMetric> pending_;
  Clock::time_point last_send_;
  bool offline_ = false;
  Clock::time_point next_probe_;
  std::chrono::milliseconds probe_interval_{0};
  MlflowKeyMapper metric_keys_;
  MlflowKeyMapper param_keys_;
  std::set<std::string> reported_;
  uint64_t dropped_metrics_ = 0;
};

}  // namespace accel
