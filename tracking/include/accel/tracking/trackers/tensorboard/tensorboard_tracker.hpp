#pragma once
// accel::TensorBoardTracker ("tensorboard"): logs to TensorBoard event files through a
// TensorBoardWriter.
//
//   <logging_dir>/<run_name>/events.out.tfevents.<secs>.<host>.<pid>.<n>   what TensorBoard reads
//   <logging_dir>/<run_name>/hparams.yaml                                  the configuration
//
// (the directory Accelerate's TensorBoardTracker uses: logging_dir joined with the project name,
// made safe as one directory name). Values: int/float → scalar; string → text; Image → PNG image;
// Histogram → histogram; Table → text (a markdown table); ScalarGroup → one scalar series per
// entry, tag "<key>/<name>", in this run (torch's add_scalars would create one extra run per entry
// instead), and a Custom Scalars chart "<key>" that overlays the entries (see
// TensorBoardWriter::add_scalars). A log call without step uses the number of log calls made before
// it as the step. Event wall times are record_time(): when the training loop made the call, also
// for records replayed from the hub's journal. Keys are cleaned like SummaryWriter cleans tags (see
// TensorBoardWriter::clean_tag); two keys that clean to the same tag are rejected
// (accel::InvalidValue) instead of being merged into one series.
//
// HParams: store_init_configuration writes hparams.yaml and the session_start_info (flattened "a/b"
// keys) into this same run; finish writes the experiment (the config's hparams plus every scalar
// tag logged, as metrics) and session_end_info (finished → success, failed/killed → failure). Until
// then TensorBoard infers the same table from session_start_info and the run's scalars.
//
// init_kwargs: {"flush_secs": 120, "filename_suffix": "", "double_precision": false,
//               "hparams_experiment": true}  (false: never write the experiment summary, so that
// TensorBoard infers one across all runs of the log directory). Unknown keys are rejected.
//
// Errors: the constructor (run by init_trackers) and start() throw accel::TrackerError when the run
// directory or the events file cannot be created; log() writes every valid entry of the call, then
// throws accel::InvalidValue naming the bad ones. An I/O failure (disk full) is thrown as
// accel::TrackerError naming the file and the OS reason (see TensorBoardWriter), and so is every
// later call: the events file keeps the whole records written before the failure, the hub's journal
// keeps the records that were not acknowledged.
//
// Delivery (see GeneralTracker): holds_records() is true. The writer buffers events, so a call that
// returns has not necessarily reached the file: acknowledged() counts the accepted calls
// (store_init_configuration, log, finish) whose events the writer has handed to the OS — at its
// flush every flush_secs, when its buffer is full, at flush() (which acknowledges every accepted
// call when it returns) and at finish().
//
// resume_info() is {"directory": "<the run directory>"} once started. Constructed with
// TrackerInit::resume = that (as `accel-launch sync` does), the tracker writes into that directory:
// a new events file beside the earlier ones (TensorBoard reads every events file of a run
// directory as one run).
// Thread-safety: as GeneralTracker (one worker thread); the writer from tracker(), resume_info()
// and acknowledged() may be used from any thread.
#include <atomic>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "accel/tracking/trackers/file_tracker.hpp"
#include "accel/tracking/trackers/tensorboard/tensorboard_writer.hpp"

namespace accel {

class TensorBoardTracker final : public FileTracker<TensorBoardTracker> {
 public:
  static constexpr const char* kName = "tensorboard";
  // Creates the run directory. Throws accel::InvalidValue for an empty logging_dir or a bad
  // init_kwargs entry (named, with the fix), accel::TrackerError when the run directory cannot be
  // created/written.
  explicit TensorBoardTracker(TrackerInit init);
  ~TensorBoardTracker() override;

  // Opens the events file (a new one beside the earlier ones when resuming).
  void start() override;
  // Writes hparams.yaml and the session_start_info.
  void store_init_configuration(const nlohmann::json& config) override;
  // Writes every valid entry, then throws accel::InvalidValue naming the bad ones.
  void log(const Values& values, std::optional<int64_t> step) override;
  // Hands the buffered events to the OS; acknowledges every accepted call.
  void flush() override;
  // Writes the experiment (unless hparams_experiment is false) and the session_end_info, and
  // closes the events file.
  void finish(RunStatus status) override;
  // The TensorBoardWriter* (thread-safe). Starts the tracker first if start() has not run yet, so
  // the handle is valid as soon as init_trackers returns; throws like start() when that fails.
  std::any tracker() override;

  // <logging_dir>/<run_name> (or TrackerInit::resume's directory), known from construction.
  const std::filesystem::path& run_dir() const { return run_dir_; }
  TensorBoardWriter* writer() { return writer_.get(); }

 private:
  const std::string& tag_for(const std::string& key);
  TensorBoardWriter& started_writer(const char* call);
  void throw_if_failed(TensorBoardWriter& writer);
  void accepted(TensorBoardWriter& writer);
  void written(uint64_t bytes);

  TrackerInit init_;
  TensorBoardWriterOptions options_;
  bool write_experiment_ = true;
  std::filesystem::path run_dir_;
  std::atomic<bool> started_{false};  // the writer exists
  uint64_t accepted_ = 0;             // calls accepted so far (see GeneralTracker::acknowledge)
  std::mutex unwritten_mutex_;        // taken inside the writer's lock (its written callback)
  // Accepted calls whose events may not have reached the OS yet: (call number, the events file's
  // size once they have). Guarded by unwritten_mutex_.
  std::deque<std::pair<uint64_t, uint64_t>> unwritten_;
  std::once_flag writer_once_;  // start() may race with tracker() from the training thread
  std::unique_ptr<TensorBoardWriter> writer_;
  std::optional<nlohmann::json> config_;
  std::unordered_map<std::string, std::string> tag_of_key_;  // user key → TensorBoard tag
  std::unordered_map<std::string, std::string> key_of_tag_;  // TensorBoard tag → user key
  std::vector<std::string> scalar_tags_;                     // in first-logged order
  std::unordered_set<std::string> scalar_tag_set_;
  int64_t log_calls_ = 0;
  bool finished_ = false;
};

}  // namespace accel
