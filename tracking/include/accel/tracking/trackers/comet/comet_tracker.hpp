#pragma once
// accel::CometTracker ("comet_ml", Accelerate's name): logs to Comet natively (no Python at run
// time), in the formats of comet_ml 3.58.8 (see docs/comet.md and
// shared/research/comet-formats.md).
//
// Modes, chosen as comet_ml.start chooses them (init_kwargs["comet_ml"]["online"], else
// COMET_START_ONLINE, else online):
//   online   the experiment is created on the Comet server (COMET_URL_OVERRIDE, default
//            https://www.comet.com/clientlib/) and every call is sent as comet_ml's Experiment
//            sends it: metrics and parameters in gzip batches (at most 1000 values, about every
//            2 s), others, html and uploads one request each, heartbeats at the interval the
//            server asks for (see OnlineExperiment). Needs an API key: init_kwargs "api_key", else
//            COMET_API_KEY, else api_key under [comet] in $COMET_CONFIG, ./.comet.config or
//            ~/.comet.config (the constructor throws accel::InvalidValue when there is none).
//            Nothing is written to disk: while the server is away the hub journals the calls.
//   offline  <offline_directory>/<experiment key>.zip, the archive OfflineExperiment writes
//            (experiment.json, messages.json, one member per image/asset), which `comet upload`
//            sends later. <offline_directory> is init_kwargs "offline_directory", else
//            COMET_OFFLINE_DIRECTORY, else the logging directory, else ./.cometml-runs. Until
//            finish() the members live in <offline_directory>/.<key>.staging/ (see
//            OfflineArchive), flushed by every call.
// Both modes build the same messages (comet_messages.hpp): an online run gives the server what
// `comet upload` of the same run's archive gives it (but the other "offline_experiment").
// The API key is sent to the server only: it is in no message, error, file or journal.
//
// Values: int/float → metric_msg (NaN/±Inf as "NaN"/"Infinity"/"-Infinity"); string → log_other
// (as Accelerate's CometMLTracker); ScalarGroup → metrics "<key>/<series>" (log_metrics' nesting);
// Image → a PNG file_upload "visualization"; Histogram → a "histogram3d" file_upload of Comet's
// histogram JSON; Table → a CSV "asset" named <key>.csv. A scalar entry named "epoch" sets the
// epoch of the call's metrics instead of being logged (as Lightning's CometLogger). Step and epoch
// are sticky, as in the SDK: a call without a step uses the last one. Metric, parameter and other
// names longer than 100 characters and parameter/other string values longer than 1000 are cut as
// the SDK cuts them (comet_limits.hpp), with one warning per kind. Metrics carry no context
// (null): the hub hands trackers no phase (train / validate / test). Config: log_parameters of
// the init_trackers config, secrets redacted, nesting flattened with '|' (plus the other
// "hasNestedParams"). finish(status) writes the stop time and the archive (offline), or sends
// what waits and the last heartbeat (online); a failed or killed run is marked as the SDK marks a
// crashed one (customer_error_reported with the status; online, the same experiment error).
//
// init_kwargs: {"api_key", "workspace", "project_name", "experiment_name", "online",
// "offline_directory", "experiment_key", "tags"}; unknown keys are rejected (accel::InvalidValue).
//
// Errors: the constructor throws accel::InvalidValue for a bad option or online mode without an
// API key, and accel::TrackerError when the offline directory cannot be created; a write the disk
// refuses throws accel::TrackerUnavailable. log() writes the valid entries of a call, then throws
// accel::InvalidValue naming the bad ones. Online: while the server is away start, log,
// store_init_configuration, flush and finish throw accel::TrackerUnavailable (nothing of that call
// accepted; the hub keeps it and calls again); a refused key (HTTP 401/403) throws
// accel::TrackerError naming the server and how to fix the key.
// Delivery: offline, every call's messages are in the staging directory when it returns
// (holds_records() false). Online, holds_records() is true: a call's messages may wait for their
// batch, and acknowledged() counts the calls the server has every message of.
// Thread-safety: as GeneralTracker; log_html and log_text (through tracker()) may be called from
// any thread (internally locked; online they are sent with the next call), as may the getters
// (fixed at construction).
#include <any>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "accel/tracking/general_tracker.hpp"
#include "accel/tracking/registry.hpp"

namespace accel {

namespace comet {
class LengthLimits;
class MessageSink;
class OfflineArchive;
class OnlineExperiment;
struct Settings;
}  // namespace comet

class CometTracker final : public GeneralTracker {
 public:
  explicit CometTracker(TrackerInit init);
  ~CometTracker() override;
  static TrackerRegistration registration();

  std::string name() const override { return "comet_ml"; }
  bool requires_logging_directory() const override { return false; }
  void start() override;
  void store_init_configuration(const nlohmann::json& config) override;
  void log(const Values& values, std::optional<int64_t> step) override;
  void flush() override;
  void finish(RunStatus status) override;
  // This tracker (CometTracker*).
  std::any tracker() override { return this; }
  bool holds_records() const override;
  // {"experiment_key": ...}: `accel-launch sync` logs a journal into the same experiment key.
  nlohmann::json resume_info() const override;

  // Experiment.log_html(html, clear): an html (clear = false) or htmlOverride message.
  void log_html(std::string_view html, bool clear = false);
  // Experiment.log_text(text, step): a text-sample upload at step, which becomes the current step
  // (as in the SDK), else at the current step.
  void log_text(std::string_view text, std::optional<int64_t> step = std::nullopt);

  // "online" or "offline".
  std::string mode() const;
  const std::string& experiment_key() const { return experiment_key_; }
  // Offline: <offline_directory>/<experiment key>.zip (written by finish()); online: empty.
  const std::filesystem::path& archive_path() const { return archive_path_; }

 private:
  void require_started(const char* call) const;
  void write_experiment(std::optional<RunStatus> status);
  void log_entry(const std::string& key, const Value& value);
  // A log_other payload with key and value cut to comet_ml's lengths (LengthLimits).
  nlohmann::json other_payload(std::string_view key, nlohmann::json value);
  // Online: sends what is due; throws TrackerUnavailable (accepting nothing) while the server is
  // away.
  void check_reachable();
  // Closes the call just written: flushes the archive, or lets the online experiment send.
  void end_call();

  TrackerInit init_;
  std::unique_ptr<comet::Settings> settings_;
  std::string experiment_key_;
  std::filesystem::path archive_path_;
  int64_t start_ms_ = 0;
  std::unique_ptr<comet::LengthLimits> limits_;  // keys and values cut as the SDK cuts them
  std::mutex mutex_;  // guards everything below (log_html/log_text may come from other threads)
  std::unique_ptr<comet::OfflineArchive> archive_;
  std::unique_ptr<comet::OnlineExperiment> online_;
  comet::MessageSink* sink_ = nullptr;  // archive_ or online_
  uint64_t calls_ = 0;                  // calls accepted (GeneralTracker's count)
  std::optional<int64_t> step_;
  std::optional<int64_t> epoch_;
  int64_t now_ms_ = 0;  // the time of the call being written
  int64_t figures_ = 0;
  bool finished_ = false;
};

}  // namespace accel
