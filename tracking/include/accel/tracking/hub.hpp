#pragma once
// accel::TrackerHub: owns a run's trackers and feeds them without ever blocking the training loop.
//
//   TrackerHub hub({.project_dir = "runs"});
//   hub.init_trackers("digits", {{"lr", 1e-3}}, {"csv", "jsonl", std::make_shared<MyTracker>()});
//   hub.log({{"train/loss", 0.25}, {"train/acc", 0.9}}, step);
//   auto report = hub.end_training();   // flush, finish, report what could not be delivered
//
// Promises:
//   - log() only validates, copies the values once (shared by every tracker) and enqueues. Each
//     tracker has its own worker thread and a queue bounded by bytes (queue_bytes); a slow or hung
//     tracker never slows log() or the other trackers.
//   - Nothing is lost: every record log() accepted is in the tracker's queue, in flight, at the
//     backend or in the tracker's on-disk journal (see journal.hpp and docs/reliability.md; 0600).
//     When a queue is full records go to the journal; while a backend is unavailable they wait and
//     are retried with exponential backoff; both are delivered in order, exactly once. flush() and
//     a signal do not wait for a backend known to be down: they make the journal durable. What is
//     not delivered when end_training's timeout passes is written to the journal, counted in the
//     report from the file itself, and printed with the `accel-launch sync` command that delivers
//     it.
//   - A tracker that throws anything else is disabled with one warning naming it and the error; the
//     others go on. With strict = true the error is instead thrown (accel::TrackerError, nesting
//     the original) from the next log(), flush() or end_training() on the training thread.
//   - Main-process gating: on a non-main process only trackers whose main_process_only() is false
//     are created; get_tracker there returns a no-op tracker for the others and never throws.
//   - With handle_signals (default), SIGTERM/SIGINT make the hub flush and finish every tracker
//     with RunStatus::killed, then the signal's default action proceeds (the process ends as it
//     would have). The work is done on a helper thread; the handler itself only writes one byte to
//     a pipe. Only installed when the signal's disposition is the default one.
//
// Bad input: empty/whitespace keys, malformed images/histograms/tables → accel::InvalidValue
// (nothing is logged); log before init_trackers or after end_training → accel::UsageError; unknown
// tracker names → accel::InvalidValue listing the registered ones. Steps that go backwards are
// logged anyway, with one warning per tracker and key.
//
// Thread-safety: init_trackers, log, flush and end_training are meant for the training thread; they
// are internally synchronised (end_training may also come from the signal helper thread).
// get_tracker returns the tracker the worker thread is using: calling into it is the caller's
// responsibility.
#include <any>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "accel/tracking/aggregation.hpp"
#include "accel/tracking/collectives.hpp"
#include "accel/tracking/general_tracker.hpp"
#include "accel/tracking/log_options.hpp"
#include "accel/tracking/log_with.hpp"
#include "accel/tracking/progress_bar.hpp"
#include "accel/tracking/values.hpp"

namespace accel {

namespace detail {
class TrackerChannel;
struct ErrorSlot;
struct LeftoverSync;

// Throws accel::InvalidValue: get_tracker<wanted>(name) found a handle whose type is `held`.
[[noreturn]] void throw_wrong_tracker_handle(std::string_view name, const std::type_info& held,
                                             const std::type_info& wanted);

// get_tracker<H>(name) of TrackerHub and Accelerator: the handle of `tracker` (named `name`) as H*.
template <class H>
H* tracker_handle_as(GeneralTracker& tracker, std::string_view name) {
  std::any handle = tracker.tracker();
  if (!handle.has_value()) return nullptr;
  if (auto* pointer = std::any_cast<H*>(&handle)) return *pointer;
  throw_wrong_tracker_handle(name, handle.type(), typeid(H));
}
}  // namespace detail

struct TrackerHubOptions {
  bool is_main_process = true;
  int rank = 0;
  int world_size = 1;
  std::filesystem::path project_dir{};
  // Where trackers write; empty = project_dir (Accelerate's ProjectConfiguration).
  std::filesystem::path logging_dir{};
  // A failing tracker throws on the training thread instead of being disabled.
  bool strict = false;
  // Per-tracker bound of queued records (approximate bytes) before they spill to the journal.
  std::size_t queue_bytes = std::size_t{64} << 20;
  // How long flush() waits for the trackers to catch up.
  std::chrono::milliseconds flush_timeout{10'000};
  // How long end_training() waits for the trackers to deliver everything and finish.
  std::chrono::milliseconds end_training_timeout{30'000};
  // Journal files; empty = <logging_dir>/.accel_journal, or a directory under the system temp dir
  // when no logging directory is set.
  std::filesystem::path journal_dir{};
  // Journals an earlier run left in journal_dir (records it never delivered). false: init_trackers
  // says so and names the `accel-launch sync` command. true: they are delivered into their own runs
  // in the background (sync_journal), first thing, within end_training_timeout.
  bool sync_leftover_journals = false;
  // Backoff between attempts while a backend is unavailable (doubling from initial up to max).
  std::chrono::milliseconds retry_initial_delay{100};
  std::chrono::milliseconds retry_max_delay{5'000};
  // Flush and finish (RunStatus::killed) on SIGTERM/SIGINT, then let the signal end the process.
  bool handle_signals = true;
  // Lightning-style logging (log(name, value, LogOptions), step_end, epoch_end): step values reach
  // the trackers every log_every_n_steps steps (MetricAggregator). 0: never.
  int64_t log_every_n_steps = 50;
  // The console progress bar; drawn on the main process only, and only when its output is a
  // terminal unless progress_bar.enabled forces it (see progress_bar.hpp).
  ProgressBarOptions progress_bar{};
  // Collective operations for sync_dist; not owned; nullptr = this process only. When set, rank,
  // world_size and is_main_process (rank 0) are taken from it.
  Collectives* collectives = nullptr;
};

// What became of one tracker's log records: logged == delivered + journaled + lost.
struct TrackerDelivery {
  std::string name;
  uint64_t logged = 0;       // log() calls accepted for this tracker
  uint64_t delivered = 0;    // of those, acknowledged by the backend
  uint64_t undelivered = 0;  // logged - delivered
  uint64_t journaled = 0;    // of the undelivered, kept in `journal` (counted in the file itself)
  uint64_t lost = 0;         // of the undelivered, neither delivered nor kept (the disk failed)
  std::string error;         // why the tracker was disabled, or why records remain; empty if none
  std::filesystem::path journal;  // the journal kept on disk with undelivered records, if any
  std::string sync_command;       // the command that delivers `journal` later, if any
  bool timed_out = false;         // the tracker did not finish within end_training_timeout
};

struct EndTrainingReport {
  std::vector<TrackerDelivery> trackers;
  // True when every tracker got every record and finished without error.
  bool complete() const;
};

class TrackerHub {
 public:
  explicit TrackerHub(TrackerHubOptions options = {});
  // Ends training (RunStatus::finished, or failed while an exception unwinds) if it was not ended.
  ~TrackerHub();
  TrackerHub(const TrackerHub&) = delete;
  TrackerHub& operator=(const TrackerHub&) = delete;

  // Creates the trackers named in log_with (see log_with.hpp), starts them and sends them config.
  // init_kwargs is an object keyed by tracker name; each tracker receives its own entry.
  // Throws accel::InvalidValue (unknown name, bad init_kwargs, duplicate tracker names, a tracker
  // that needs a logging directory when none is set) and accel::UsageError when called twice.
  void init_trackers(std::string_view project_name,
                     const nlohmann::json& config = nlohmann::json::object(),
                     const LogWith& log_with = {},
                     const nlohmann::json& init_kwargs = nlohmann::json::object());

  // Validates and enqueues one log call for every tracker. An empty Values is ignored.
  void log(const Values& values, std::optional<int64_t> step = std::nullopt);
  void log(Values&& values, std::optional<int64_t> step = std::nullopt);

  // ---- Lightning's logging model (see aggregation.hpp and docs/logging.md) ----
  //   hub.start_epoch(epoch, steps_per_epoch);
  //   for each batch: hub.log("train/loss", loss, {.on_epoch = true, .prog_bar = true});
  //   hub.step_end(step++); hub.epoch_end();
  // Records one value in the aggregator (nothing is sent yet). Throws as MetricAggregator::log.
  void log(std::string_view name, double value, const LogOptions& options = {},
           Phase phase = Phase::train);
  void log_dict(const Values& values, const LogOptions& options, Phase phase = Phase::train);
  // After each training step: sends the due step values (every log_every_n_steps) with
  // step = global_step and advances the progress bar. Collective when sync_dist step values are
  // due.
  void step_end(int64_t global_step);
  // Starts the progress bar line of an epoch.
  void start_epoch(int64_t epoch, std::optional<int64_t> total_steps = std::nullopt);
  // Sends the epoch values with step = `step`, or else the last global_step given to step_end
  // (Lightning's convention). Collective when there are sync_dist metrics.
  void epoch_end(std::optional<int64_t> step = std::nullopt);
  MetricAggregator& aggregator() { return aggregator_; }
  ProgressBar& progress_bar() { return *progress_bar_; }

  // Waits (up to flush_timeout) for every tracker to receive what was logged so far and flush it;
  // fsyncs journals. Returns false when some tracker did not catch up in time.
  bool flush();

  // Delivers what is left (up to end_training_timeout), finishes every tracker with status, prints
  // and returns what could not be delivered. Throws accel::UsageError when called twice.
  EndTrainingReport end_training(RunStatus status = RunStatus::finished);

  // Tells the trackers this process runs of a committed checkpoint (GeneralTracker::
  // checkpoint_saved, on this thread). A tracker that throws is warned about once; training goes
  // on. Nothing before init_trackers or after end_training.
  void checkpoint_saved(const std::filesystem::path& dir, bool best = false);

  // The tracker named name. On the main process: throws accel::InvalidValue when no such tracker
  // was started (or accel::UsageError before init_trackers). On other processes: a no-op tracker
  // when this rank does not run it; never throws.
  GeneralTracker& get_tracker(std::string_view name);
  // Accelerate's get_tracker(name, unwrap=True): the backend's own handle (GeneralTracker::tracker())
  // as H*, e.g. get_tracker<TensorBoardWriter>("tensorboard"). nullptr where the tracker has no
  // handle: on processes that do not run it, and for trackers whose tracker() is empty. Throws as
  // get_tracker(name), and accel::InvalidValue naming the handle's real type when it is not an H*.
  // A handle held by value (csv's and jsonl's directory) is read from get_tracker(name).tracker().
  template <class H>
  H* get_tracker(std::string_view name) {
    return detail::tracker_handle_as<H>(get_tracker(name), name);
  }

  // The trackers running on this process, in log_with order.
  std::vector<GeneralTracker*> trackers();
  bool is_main_process() const { return options_.is_main_process; }
  const TrackerHubOptions& options() const { return options_; }
  // Where trackers write (logging_dir, else project_dir; may be empty).
  std::filesystem::path logging_dir() const;

 private:
  enum class State { created, active, ending, ended };

  void enqueue(std::shared_ptr<const Values> values, std::optional<int64_t> step);
  void rethrow_pending_error();
  void on_signal();
  std::filesystem::path journal_dir() const;

  void find_leftover_journals(const std::vector<std::filesystem::path>& ours);
  void wait_leftover_sync(std::chrono::steady_clock::time_point deadline);

  TrackerHubOptions options_;
  std::shared_ptr<detail::ErrorSlot> errors_;
  std::shared_ptr<detail::LeftoverSync> leftover_sync_;
  std::vector<std::shared_ptr<detail::TrackerChannel>> channels_;
  std::map<std::string, std::unique_ptr<GeneralTracker>, std::less<>> no_op_trackers_;
  std::set<std::string, std::less<>> checkpoint_warned_;  // trackers whose checkpoint_saved threw

  mutable std::mutex state_mutex_;
  std::condition_variable ended_cv_;
  State state_ = State::created;
  bool ended_by_signal_ = false;
  bool signals_attached_ = false;
  EndTrainingReport last_report_;

  MetricAggregator aggregator_;
  std::unique_ptr<ProgressBar> progress_bar_;
  std::optional<int64_t> last_global_step_;
};

}  // namespace accel
