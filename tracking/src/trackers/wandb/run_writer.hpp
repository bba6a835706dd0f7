#pragma once
// accel::wandb::RunWriter: the wandb_internal.Record sequence of one run, in the order the wandb
// SDK (0.31.0) writes it, appended to a TransactionLog:
//
//   header   {version_info{producer, min_consumer}}
//   run      {run_id, project, entity, display_name, notes, tags, run_group, job_type, host,
//             start_time, and for a resumed run resumed + starting_step}
//                                                      (first: `wandb sync` reads the run from it)
//   metric   ×2 in StepMode::step_metric: define_metric(step_metric) and
//             define_metric("*", step_metric=step_metric, step_sync=True), as Lightning does
//   config   {update[{key, value_json}]}              one item per top-level key, nesting kept
//   per row: artifact {a logged table's run_table artifact}, files {media the row refers to},
//             history {items, step{num}}, summary {the row's items} (sync does not derive the
//             summary; the last value of each key wins)
//   artifact {log_artifact's artifacts}, between rows
//   exit     {exit_code, runtime}
//
// Rows (see wandb_settings.hpp for the two step modes):
//   step_metric   every log() call is one row, written at once: _step = rows written before,
//                 step_metric = the call's step (or the last step given, as step_sync fills it).
//   pass_through  W&B's own rule (core handler, handlePartialHistorySync): a pending row R at
//                 step S. No step: merge into R, write R as S, S += 1. Step k > S: write R (when
//                 not empty) as S, S = k, R = the values. k == S: merge into R. k < S: dropped with
//                 W&B's warning ("Tried to log to step k that is less than the current step S..."),
//                 printed once per key with accel::warn and kept in the run's console log
//                 (output_raw). finish() writes R.
// Each row carries _step, _runtime (seconds since the start) and _timestamp (Unix seconds) like the
// SDK's rows. Every call appends its records in one write: it either reaches the file whole or
// throws (TransactionLog's errors) and leaves the writer as it was before the call. A RunObserver
// (the online mode's file_stream) is told of each row and console line once its records are in
// the file.
// Thread-safety: none (the tracker's worker thread owns it).
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "trackers/wandb/transaction_log.hpp"
#include "trackers/wandb/wandb_settings.hpp"

namespace accel::wandb {

using Clock = std::chrono::system_clock;
using KeyPath = std::vector<std::string>;  // a W&B nested_key: ["loss", "train"]

// One W&B row being built: values by key path, in the order first set; setting a path again
// replaces its value (W&B's merge of several log calls into one row).
class Row {
 public:
  struct Item {
    KeyPath key;
    nlohmann::json value;
  };
  // Sets path = value; a JSON object value is flattened into one item per leaf (["img", "_type"],
  // ...), as the SDK writes media values.
  void set(const KeyPath& path, const nlohmann::json& value);
  void merge(const Row& other);
  bool empty() const { return items_.empty(); }
  const std::vector<Item>& items() const { return items_; }
  // The top-level keys of the row ("loss" for ["loss", "train"]).
  std::set<std::string> top_level_keys() const;

 private:
  void set_leaf(const KeyPath& path, const nlohmann::json& value);
  std::vector<Item> items_;
};

// Told what a RunWriter call wrote, after it reached the file (same thread as the call).
class RunObserver {
 public:
  virtual ~RunObserver() = default;
  // A history row as written: its items, _step, _runtime and _timestamp included.
  virtual void row_written(const Row& row) = 0;
  // A console line the run printed (W&B's dropped-step warning), and whether it went to stderr.
  virtual void console_line(const std::string& text, bool is_stderr, Clock::time_point when) = 0;
};

// wandb's run.define_metric(name, step_metric=..., step_sync=..., hidden=...): name may be a glob
// ("val/*"). step_sync defaults to true when a step metric is given, as wandb-core does.
struct MetricDefinition {
  std::string name;
  std::string step_metric;
  bool step_sync = true;
  bool hidden = false;
  bool is_glob() const { return name.find('*') != std::string::npos; }
};

struct RunInfo {
  std::string run_id, project, entity, name, notes, group, job_type, host;
  std::vector<std::string> tags;
  Clock::time_point start;
  StepMode step_mode = StepMode::step_metric;
  std::string step_metric = "trainer/global_step";
  // A resumed run (the server had it): rows go on at starting_step, which the run record carries
  // with resumed = true; last_step_value is the step metric's value in its last row, if any.
  bool resumed = false;
  int64_t starting_step = 0;
  std::optional<int64_t> last_step_value;
};

class RunWriter {
 public:
  RunWriter(TransactionLog& log, RunInfo info) : log_(log), info_(std::move(info)) {}

  // Tells observer (which must outlive the writer, or be reset to nullptr) what is written.
  void set_observer(RunObserver* observer) { observer_ = observer; }

  // header, run and (step_metric mode) the two metric definitions.
  void start();
  // A config record: each top-level key of config (an object) with its value.
  void config(const nlohmann::json& config);
  // One log call: its values (flattened), the media files they refer to (relative to files/),
  // the step given to log(), the call's time, and its number among the tracker's calls.
  // artifacts: serialized wandb_internal.ArtifactRecord messages of the call (its tables' run_table
  // artifacts, artifact_manifest.hpp), written first, as the SDK writes them before the row.
  void log(const Row& values, const std::vector<std::string>& files, std::optional<int64_t> step,
           Clock::time_point when, uint64_t call, const std::vector<std::string>& artifacts = {});
  // An artifact record (a serialized wandb_internal.ArtifactRecord) outside a log call.
  void artifact(const std::string& record);
  // A metric record (define_metric through the tracker's handle).
  void define_metric(const MetricDefinition& metric);
  // A summary record setting key (run.summary[key] = value); later rows' values replace it.
  void set_summary(const KeyPath& key, const nlohmann::json& value);
  // pass_through: writes the pending row as step S and moves to S + 1, what W&B's commit=True does
  // (a later call with step S is then dropped with W&B's warning). Used by flush(), which must
  // leave nothing accepted outside the file.
  void commit_pending();
  // Writes the pending row, the final runtime and the exit record.
  void finish(int exit_code, Clock::time_point when);

  // The _step the next written row gets (names media files like the SDK's row counter).
  int64_t next_row_step() const;
  // The number of the first call whose values wait in the pending row (pass_through), 0 when none.
  uint64_t pending_since() const { return state_.pending_since; }

 private:
  struct State {
    int64_t rows = 0;          // rows written (step_metric mode: the next _step)
    int64_t current_step = 0;  // pass_through: S
    Row pending;               // pass_through: R
    Clock::time_point pending_time{};
    uint64_t pending_since = 0;
    std::optional<int64_t> last_user_step;  // step_metric: what step_sync fills in
    std::set<std::string> warned_keys;      // pass_through: keys dropped (warned once each)
    int64_t records = 0;                    // Record.num of the last record
    std::vector<Row> new_rows;              // written by the current call, for the observer
    std::vector<std::string> new_console;   // the same for console lines (stderr)
    Clock::time_point console_time{};
  };

  // Stores state as the writer's and tells the observer what it wrote.
  void commit(State state);

  void write_row(State& state, Row row, int64_t step, Clock::time_point when,
                 std::vector<std::string>& out) const;
  void drop(State& state, const Row& values, int64_t step, Clock::time_point when,
            std::vector<std::string>& out) const;
  double runtime(Clock::time_point when) const;

  TransactionLog& log_;
  RunInfo info_;
  State state_;
  RunObserver* observer_ = nullptr;
};

}  // namespace accel::wandb
