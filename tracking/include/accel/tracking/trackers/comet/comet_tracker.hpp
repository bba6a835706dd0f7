#pragma once
// accel::CometTracker ("comet_ml", Accelerate's name): logs to Comet natively (no Python at run
// time), in the formats of comet_ml 3.58.8 (see docs/comet.md and
// shared/research/comet-formats.md).
//
// Modes, chosen as comet_ml.start chooses them (init_kwargs["comet_ml"]["online"], else
// COMET_START_ONLINE, else online):
//   offline  <offline_directory>/<experiment key>.zip, the archive OfflineExperiment writes
//            (experiment.json, messages.json, one member per image/asset), which `comet upload`
//            sends later. <offline_directory> is init_kwargs "offline_directory", else
//            COMET_OFFLINE_DIRECTORY, else the logging directory, else ./.cometml-runs. Until
//            finish() the members live in <offline_directory>/.<key>.staging/ (see
//            OfflineArchive), flushed by every call.
//   online   not built yet: the constructor (so init_trackers) throws accel::InvalidValue saying
//            so and how to choose offline.
// The API key (COMET_API_KEY, init_kwargs "api_key") is never read, so never written anywhere.
//
// Values: int/float → metric_msg (NaN/±Inf as "NaN"/"Infinity"/"-Infinity"); string → log_other
// (as Accelerate's CometMLTracker); ScalarGroup → metrics "<key>/<series>" (log_metrics' nesting);
// Image → a PNG file_upload "visualization"; Histogram → a "histogram3d" file_upload of Comet's
// histogram JSON; Table → a CSV "asset" named <key>.csv. A scalar entry named "epoch" sets the
// epoch of the call's metrics instead of being logged (as Lightning's CometLogger). Step and epoch
// are sticky, as in the SDK: a call without a step uses the last one. Config: log_parameters of
// the init_trackers config, secrets redacted, nesting flattened with '|' (plus the other
// "hasNestedParams"). finish(status) writes the stop time and the archive; a failed or killed run
// is marked as the SDK marks a crashed one (customer_error_reported with the status).
//
// init_kwargs: {"api_key", "workspace", "project_name", "experiment_name", "online",
// "offline_directory", "experiment_key", "tags"}; unknown keys are rejected (accel::InvalidValue).
//
// Errors: the constructor throws accel::InvalidValue for a bad option or online mode and
// accel::TrackerError when the offline directory cannot be created; a write the disk refuses
// throws accel::TrackerUnavailable. log() writes the valid entries of a call, then throws
// accel::InvalidValue naming the bad ones.
// Delivery: every call's messages are in the staging directory when it returns (holds_records()
// false). Thread-safety: as GeneralTracker; log_html and log_text (through tracker()) may be
// called from any thread (internally locked), as may the getters (fixed at construction).
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
class OfflineArchive;
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

  // Experiment.log_html(html, clear): an html (clear = false) or htmlOverride message.
  void log_html(std::string_view html, bool clear = false);
  // Experiment.log_text(text, step): a text-sample upload at step (else the current step).
  void log_text(std::string_view text, std::optional<int64_t> step = std::nullopt);

  // "offline" (the only mode built).
  std::string mode() const { return "offline"; }
  const std::string& experiment_key() const { return experiment_key_; }
  // <offline_directory>/<experiment key>.zip (written by finish()).
  const std::filesystem::path& archive_path() const { return archive_path_; }

 private:
  void require_started(const char* call) const;
  void write_experiment(std::optional<RunStatus> status);
  void log_entry(const std::string& key, const Value& value);

  TrackerInit init_;
  std::unique_ptr<comet::Settings> settings_;
  std::string experiment_key_;
  std::filesystem::path archive_path_;
  int64_t start_ms_ = 0;
  std::mutex mutex_;  // guards everything below (log_html/log_text may come from other threads)
  std::unique_ptr<comet::OfflineArchive> archive_;
  std::optional<int64_t> step_;
  std::optional<int64_t> epoch_;
  int64_t now_ms_ = 0;  // the time of the call being written
  int64_t figures_ = 0;
  bool finished_ = false;
};

}  // namespace accel
