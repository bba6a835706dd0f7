#pragma once
// accel::GeneralTracker: the interface every experiment tracker implements — the built-ins (csv,
// jsonl, tensorboard, mlflow, ...) and user subclasses alike. Mirrors Accelerate's GeneralTracker.
//
// Threading contract: TrackerHub calls start, store_init_configuration, log and finish of one
// tracker from ONE worker thread, never concurrently, in the order the training loop issued them. A
// tracker therefore needs no locking of its own for these calls. The handle returned by tracker()
// may be used by the user from another thread, so a backend handle that is shared that way must be
// thread-safe.
//
// Failure contract (how TrackerHub treats exceptions thrown from these methods):
//   - accel::TrackerUnavailable: the backend is temporarily unreachable (server down, 5xx,
//     timeout). The hub keeps the record in the tracker's on-disk journal and retries later, in
//     order.
//   - any other exception: the tracker is broken. The hub warns once, stops feeding it, and the
//     other trackers go on (in strict mode the error is rethrown to the training loop instead).
//
// Delivery contract (how TrackerHub knows what the backend has; see docs/reliability.md):
//   - A call that returns normally has accepted its record; one that throws has accepted nothing.
//   - A tracker whose holds_records() is false has stored an accepted record when the call returns.
//   - A tracker whose holds_records() is true may keep accepted records in a batch of its own (to
//     send many in one request, or to write them later). It reports progress with acknowledge(n):
//     the first n records it accepted (store_init_configuration, log and finish calls, counted
//     from 1 in call order) are stored by the backend. A flush() or finish() that returns normally
//     acknowledges every record accepted before it. Records held when a call throws
//     TrackerUnavailable stay the tracker's to deliver; what is not acknowledged when the run ends
//     is written to the hub's journal, so that `accel-launch sync` delivers it later.
#include <any>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/values.hpp"

namespace accel {

enum class RunStatus { finished, failed, killed };
std::string_view to_string(RunStatus status);

class GeneralTracker {
 public:
  virtual ~GeneralTracker() = default;

  // Unique name, used in log_with, init_kwargs and get_tracker ("csv", "tensorboard",
  // "my_tracker").
  virtual std::string name() const = 0;
  // True when the tracker writes under a logging directory (the hub then requires one).
  virtual bool requires_logging_directory() const = 0;
  // True (default): only the main process runs this tracker. False: every rank runs it.
  virtual bool main_process_only() const { return true; }

  // Called once after construction on the ranks that run the tracker: open files, create the run.
  virtual void start() {}
  // The run's configuration (hyper-parameters); nested objects allowed.
  virtual void store_init_configuration(const nlohmann::json& config) = 0;
  // One log call. step is absent when the user gave none.
  virtual void log(const Values& values, std::optional<int64_t> step) = 0;
  // Flush buffered data to durable storage / the server. Called by TrackerHub::flush and before
  // finish.
  virtual void flush() {}
  // End of the run; no other call follows. Called after flush(), also when that flush threw
  // TrackerUnavailable (so a tracker can write the end of its local files while its server is
  // away). A finish that throws TrackerUnavailable is called again later (with flush() before it),
  // so it must not repeat what it already did; one that returns normally is not called again.
  virtual void finish([[maybe_unused]] RunStatus status) {}

  // A checkpoint Accelerator::save_state committed (dir holds all of it and is never rewritten in
  // place); best: the user marked it the best so far (Accelerator::mark_best_checkpoint, called
  // again for a checkpoint told before). Called on the TRAINING thread, not the worker, on the
  // processes that run the tracker: it must be thread-safe and quick (hand the work to the
  // worker, as W&B's log_model stages its upload). An exception is warned about, once per tracker,
  // and training goes on. Default: nothing.
  virtual void checkpoint_saved([[maybe_unused]] const std::filesystem::path& dir,
                                [[maybe_unused]] bool best) {}

  // The backend's own handle (a writer, a client) for direct use, e.g. a TensorBoardWriter*.
  // Empty when the tracker has none. See TrackerHub::get_tracker<H>(name).
  virtual std::any tracker() { return {}; }

  // True when accepted records may wait inside the tracker (see the delivery contract above).
  virtual bool holds_records() const { return false; }
  // What a later process needs to continue this run in the same place (e.g. {"run_id": "..."} or
  // {"directory": "..."}); null when nothing. Stored in the journal, so never a secret. Handed back
  // as TrackerInit::resume when `accel-launch sync` delivers a journal. Called from any thread.
  virtual nlohmann::json resume_info() const { return nullptr; }

  // How many accepted records the backend has stored (see acknowledge). Thread-safe.
  uint64_t acknowledged() const { return acknowledged_.load(std::memory_order_acquire); }

 protected:
  GeneralTracker() = default;
  // For trackers that hold records: the first `count` accepted records are stored by the backend.
  // Monotonic (a smaller count is ignored); may be called from any thread.
  void acknowledge(uint64_t count) {
    uint64_t seen = acknowledged_.load(std::memory_order_relaxed);
    while (count > seen &&
           !acknowledged_.compare_exchange_weak(seen, count, std::memory_order_acq_rel)) {
    }
  }

 private:
  std::atomic<uint64_t> acknowledged_{0};
};

// What a built-in or registered tracker is constructed from (Accelerate: tracker_init(run_name,
// logging_dir, **init_kwargs[name])).
struct TrackerInit {
  std::string run_name{};               // the project name given to init_trackers
  std::filesystem::path logging_dir{};  // ProjectConfiguration.logging_dir; empty if none was set
  nlohmann::json init_kwargs = nlohmann::json::object();  // init_kwargs[name], or {}
  // Unique per TrackerHub::init_trackers call (empty when constructed elsewhere). Trackers of one
  // run use it to share a run directory (see create_version_directory in key_rules.hpp).
  std::string run_id{};
  // What resume_info() returned in the process that wrote a journal, when `accel-launch sync` (or
  // sync_journal) recreates the tracker to deliver it; null otherwise. The tracker continues that
  // run (same run id, same directory) instead of starting a new one.
  nlohmann::json resume = nullptr;
};

// Inside a GeneralTracker call made by TrackerHub: the wall time of the training-loop call that
// produced the record (init_trackers, log or end_training), also when the record is replayed later
// from the journal. Trackers use it as the event time (TensorBoard wall_time, MLflow timestamp).
// Outside such a call: the current time. Thread-safety: per thread.
std::chrono::system_clock::time_point record_time();

}  // namespace accel
