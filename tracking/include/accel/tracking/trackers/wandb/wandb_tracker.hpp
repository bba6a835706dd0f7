#pragma once
// accel::WandbTracker ("wandb"): logs to Weights & Biases natively (no Python at run time), in the
// formats of wandb 0.31.0 (see docs/wandb.md and shared/research/wandb-formats.md).
//
// Modes, chosen as the wandb SDK chooses them (init_kwargs["wandb"]["mode"], else WANDB_MODE, else
// "online" when an API key is configured):
//   offline   <dir>/wandb/offline-run-<YYYYmmdd_HHMMSS>-<id>/run-<id>.wandb (the transaction log:
//             run, config, history, summary, files, exit records), files/media/... and the
//             wandb/latest-run link; `wandb sync <run dir>` uploads it later. <dir> is
//             init_kwargs "dir", else WANDB_DIR, else the logging directory, else the current
//             directory. Every call's records reach the file (write(2)) before the call returns, so
//             a killed process leaves a file that wandb reads up to its last record.
//   disabled  a no-op, like the SDK's mode="disabled": nothing is written.
//   online    streams the run to the W&B server at WANDB_BASE_URL (default https://api.wandb.ai)
//             as wandb-core does: UpsertBucket, file_stream batches of history rows, summary and
//             console lines (every few seconds or once enough lines wait), artifacts (tables,
//             log_artifact) with the next request after they are written, at finish the media
//             files, config.yaml and wandb-summary.json, then complete + exitcode. The same
//             .wandb file is written beside it, in <dir>/wandb/run-<ts>-<id>/, so a run whose
//             server stayed away can be uploaded later with `wandb sync`. All network I/O is on
//             the hub's worker thread; the run's URL is printed once (stderr).
// The API key (WANDB_API_KEY, else the netrc password for the base URL's host) is read only for
// the online connection; it is never written to a file, a message or a journal.
//
// Values: int/float → number; string → string; ScalarGroup → nested keys ("loss" → {"train":…,
// "val":…}, shown as loss.train, loss.val); Image → PNG under files/media/images/ + an image-file
// value; Histogram → W&B's 64-bin histogram; Table → files/media/table/*.table.json + a
// table-file value + the run_table artifact "run-<id>-<key>" (see log_artifact). Config: the
// init_trackers config, nesting kept, secrets redacted (without_secrets). Summary: the last value
// of every key (summary records). finish(status) writes the exit record: finished → 0, failed →
// 1, killed → 143 (128 + SIGTERM).
//
// Steps (init_kwargs "step_mode"): "step_metric" (default, Lightning's WandbLogger) makes every
// log() call one W&B row and logs the step as the metric "trainer/global_step" (init_kwargs
// "step_metric"), the x-axis of every other metric — nothing is dropped, whatever the steps do.
// "pass_through" (Accelerate's WandBTracker) hands the step to W&B as its own step: a call with a
// smaller step than the current one is dropped with W&B's warning, once per key.
//
// Resume (init_kwargs "id" + "resume", WANDB_RUN_ID / WANDB_RESUME, as wandb.init): online, the
// server is asked (RunResumeStatus) before the first record; a run it has continues at its next
// _step and file_stream offsets ("allow", "must", "never", "auto" — see wandb_settings.hpp).
// resume_info() names the run, so `accel-launch sync` delivers a journal into it.
//
// init_kwargs: {"mode", "dir", "id", "name", "notes", "tags", "group", "job_type", "entity",
// "step_mode", "step_metric", "resume"}; unknown keys are rejected (accel::InvalidValue).
//
// Errors: the constructor throws accel::InvalidValue for a bad option or online mode without a
// key, and accel::TrackerError when the run directory cannot be created; a write the disk refuses
// throws accel::TrackerUnavailable (the file keeps every whole record before it; the hub keeps
// the call). Online: a key the server refuses (401/403) throws accel::TrackerError naming the
// base URL and the fix; while the server is away log() goes on (the rows wait, the .wandb file
// has them) and flush()/finish() throw accel::TrackerUnavailable (the hub keeps what the server
// has not acknowledged; finish writes the exit record first and, called again, only retries the
// network part).
// log() writes the valid entries of a call, then throws accel::InvalidValue naming the bad ones.
//
// Delivery (see GeneralTracker): online, holds_records() is true and acknowledged() counts the
// calls the server has accepted. Offline, in step_metric mode every call is in the file when it
// returns (holds_records() false). In pass_through mode a row waits until a call with a larger step (or
// finish) writes it: holds_records() is true and acknowledged() counts the calls whose values are
// in the file.
// Thread-safety: as GeneralTracker (one worker thread); run_id(), run_dir(), mode(), run_url(),
// tracker(), log_artifact() and log_model() may be called from any thread.
#include <any>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "accel/tracking/general_tracker.hpp"
#include "accel/tracking/registry.hpp"

namespace accel {

namespace wandb {
class TransactionLog;
class RunWriter;
class MediaFiles;
class OnlineRun;
class ArtifactStaging;
struct Artifact;
struct ArtifactRequest;
struct Settings;
}  // namespace wandb

class WandbTracker final : public GeneralTracker {
 public:
  // Chooses the mode and, offline, creates the run directory. Throws as described above.
  explicit WandbTracker(TrackerInit init);
  ~WandbTracker() override;
  static TrackerRegistration registration();

  std::string name() const override { return "wandb"; }
  bool requires_logging_directory() const override { return false; }
  void start() override;
  void store_init_configuration(const nlohmann::json& config) override;
  void log(const Values& values, std::optional<int64_t> step) override;
  void flush() override;
  void finish(RunStatus status) override;
  bool holds_records() const override;
  // {"run_id", "mode", "entity" when one was set}: `accel-launch sync` continues this run.
  nlohmann::json resume_info() const override;
  // This tracker (WandbTracker*): run_id(), run_dir(), mode().
  std::any tracker() override { return this; }

  // "online", "offline" or "disabled".
  std::string mode() const;
  // Online: <W&B app>/<entity>/<project>/runs/<id> (https://wandb.ai/... for the default server);
  // empty otherwise.
  std::string run_url() const;
  // The run's id (8 characters [a-z0-9] unless init_kwargs "id" / WANDB_RUN_ID gave one); empty
  // when disabled.
  const std::string& run_id() const { return run_id_; }
  // The run directory (…/wandb/offline-run-<ts>-<id>, online …/wandb/run-<ts>-<id>); empty when
  // disabled.
  const std::filesystem::path& run_dir() const { return run_dir_; }
  // The transaction log, run_dir()/run-<id>.wandb; empty when disabled.
  const std::filesystem::path& log_file() const { return log_file_; }

  // Artifacts (wandb's run.log_artifact): logs the file or the directory at path (its files,
  // recursively, named by their paths below it) as a new version of artifact `name` of `type`,
  // with `aliases` ("latest" is always added, as W&B does), an optional description and metadata
  // (a JSON object). The files are copied on the calling thread into
  // run_dir()/artifacts/<name>-<client id>/, so the caller may change or delete them at once; the
  // digests (base64 MD5 of each file, the manifest digest) are computed and the ArtifactRecord is
  // written to the .wandb file on the worker thread at the tracker's next call (the next log,
  // flush or end_training); online, the artifact is then uploaded and committed (docs/wandb.md).
  // `wandb sync` of the run uploads it from the copies. May be called from any thread; a no-op
  // when disabled. Throws accel::InvalidValue naming the bad value (a path that is not a file or a
  // directory with files, a name with '/', a type with '/' or ':' or reserved by W&B, an alias
  // with '/' or ':', metadata that is not an object), accel::TrackerError when a copy fails, and
  // accel::UsageError after finish.
  void log_artifact(const std::filesystem::path& path, const std::string& name,
                    const std::string& type, const std::vector<std::string>& aliases = {},
                    const std::string& description = "", const nlohmann::json& metadata = nullptr);
  // Lightning's WandbLogger(log_model=...) upload of one checkpoint: log_artifact(checkpoint,
  // "model-<run id>", "model", {"latest"} plus "best" when best is true). Throws as log_artifact.
  void log_model(const std::filesystem::path& checkpoint, bool best = false);
  // wandb's run.define_metric(name, step_metric=, step_sync=, hidden=) and run.summary[key] = v,
  // from any thread: applied on the worker thread before the next record it handles (the next
  // log, flush or end_training), written to the .wandb file and, online, sent with the next
  // request (`_wandb.m` of the config; the summary). The key is one summary key, as the SDK's
  // (an object value nests: set_summary("best", {{"acc", 0.95}})).
  // Throws accel::InvalidValue for an empty name and accel::UsageError after end_training.
  void define_metric(const std::string& name, const std::string& step_metric = "",
                     bool step_sync = true, bool hidden = false);
  void set_summary(const std::string& key, nlohmann::json value);
  // init_kwargs "log_model" (Lightning's WandbLogger(log_model=...)): "all" logs every checkpoint
  // save_state writes as it is saved; true the latest (and the best) once, at the end of a run
  // that finished; false (default) none. A checkpoint save_state committed is hard-linked into the
  // run directory (copied across file systems), so it costs no copy on the training thread;
  // log_model() itself copies (the caller may rewrite its files in place).
  void checkpoint_saved(const std::filesystem::path& dir, bool best) override;

 private:
  bool enabled() const { return writer_ != nullptr || !run_dir_.empty(); }
  void accepted();
  void send_if_due();
  void save_auto_resume_id() const;
  // Worker thread: seals the artifacts log_artifact staged, writes their records, hands them to
  // the online run. An artifact whose copy cannot be read is warned about and dropped; a record
  // the .wandb file refuses throws TrackerUnavailable (it and the rest stay staged).
  void write_staged_artifacts();
  void stage_artifact(const wandb::ArtifactRequest& request);
  void log_models_at_end();
  // Worker thread: what define_metric and set_summary staged, in call order.
  void apply_handle_calls();
  // log_model's staging; link_files for save_state's checkpoints (never rewritten in place).
  void stage_model(const std::filesystem::path& checkpoint, bool best, bool link_files);

  TrackerInit init_;
  std::unique_ptr<wandb::Settings> settings_;
  std::string run_id_;
  std::filesystem::path run_dir_;
  std::filesystem::path log_file_;
  std::chrono::system_clock::time_point start_{};
  std::unique_ptr<wandb::OnlineRun> online_;  // online mode only
  std::unique_ptr<wandb::TransactionLog> log_;
  std::unique_ptr<wandb::RunWriter> writer_;
  std::unique_ptr<wandb::MediaFiles> media_;
  std::unique_ptr<wandb::ArtifactStaging> staging_;
  // Guards staged_, artifacts_closed_ and the checkpoints (log_artifact, checkpoint_saved: any
  // thread).
  std::mutex staged_mutex_;
  std::optional<std::filesystem::path> latest_checkpoint_, best_checkpoint_;  // log_model = true
  struct HandleCall {
    bool is_metric = false;  // define_metric; else set_summary
    std::string name, step_metric;
    bool step_sync = true, hidden = false;
    std::vector<std::string> key;  // set_summary's key path
    nlohmann::json value;
  };
  std::vector<HandleCall> handle_calls_;
  std::vector<wandb::Artifact> staged_;
  bool artifacts_closed_ = false;
  uint64_t calls_ = 0;           // accepted calls (see GeneralTracker::acknowledge)
  uint64_t calls_streamed_ = 0;  // online: calls handed to OnlineRun::accepted_call
  bool written_exit_ = false;    // finish wrote the exit record
  double runtime_seconds_ = 0;
  bool finished_ = false;
};

}  // namespace accel
