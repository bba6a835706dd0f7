#pragma once
// OperationProgress: how far this rank's MpiGroup got, shared by the two threads that care.
// Progress = (sequence number of the last operation started, of the last completed, its name). Sequence
// numbers count the group's operations from 1; they agree across ranks because calls are collective.
//
// Who calls it: the OperationQueue records each operation it starts and completes (begin/end, on
// whichever thread runs the operation); the Watchdog reads it (running_longer_than, snapshot) to
// answer peers' progress queries and to decide that an operation timed out.
// Thread-safety: every member may be called from any thread (one mutex, held only to copy a few
// values; the label is turned into text only in snapshot(), never on the operation's path).
// Throws nothing but std::bad_alloc (snapshot builds the label's text).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>

#include "comm/operation_label.hpp"

namespace accel::detail {

// What a rank answers to "how far are you?"; sent between ranks as raw bytes (same program on every
// rank, so the same layout).
struct ProgressReport {
  std::uint64_t started = 0;    // last operation started
  std::uint64_t completed = 0;  // last operation completed
  char operation[120] = {};     // name of `started`, e.g. "allreduce(sum) of float32 [10] (40 B)"
};

class OperationProgress {
 public:
  using Clock = std::chrono::steady_clock;

  // Operation `sequence` (described by `label`) starts now.
  void begin(std::uint64_t sequence, const OperationLabel& label) {
    std::lock_guard lock(mutex_);
    report_.started = sequence;
    label_ = label;
    started_at_ = Clock::now();
    busy_ = true;
  }

  // Operation `sequence` has completed (successfully or not).
  void end(std::uint64_t sequence) {
    std::lock_guard lock(mutex_);
    report_.completed = sequence;
    busy_ = false;
  }

  // Whether an operation is running and started more than `timeout` ago.
  bool running_longer_than(std::chrono::milliseconds timeout) const {
    std::lock_guard lock(mutex_);
    return busy_ && Clock::now() - started_at_ > timeout;
  }

  // The report with .operation filled from the label of the last operation started.
  ProgressReport snapshot() const {
    std::lock_guard lock(mutex_);
    ProgressReport report = report_;
    std::snprintf(report.operation, sizeof(report.operation), "%s",
                  report_.started == 0 ? "" : label_.text().c_str());
    return report;
  }

 private:
  mutable std::mutex mutex_;
  ProgressReport report_;  // .operation is filled from label_ when a snapshot is taken
  OperationLabel label_;
  bool busy_ = false;
  Clock::time_point started_at_;
};

}  // namespace accel::detail
