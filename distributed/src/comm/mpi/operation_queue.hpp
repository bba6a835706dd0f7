#pragma once
// OperationQueue: runs an MpiGroup's operations one at a time, in call order, and completes their Works.
//
// Who runs an operation:
//   * the communication thread (started by start()) pops queued operations in sequence order;
//   * a caller of submit() runs a small operation (inline_bytes in 1..kInlineBytes) itself when the
//     communication thread is idle and nothing is queued: the hand-off to the thread and back (two
//     thread wake-ups, several microseconds) would cost more than the operation itself;
//   * a caller of Work::wait() runs its own operation, and those queued before it, when the thread has
//     not started them: allreduce(...)->wait() then costs no hand-off between threads;
//   * before start() (and in a single process without MPI, where start() is never called) submit runs
//     every operation inline and returns a completed Work.
// Order is kept: whoever runs an operation holds the execution lock, a caller takes the next sequence
// number for an inline run only when the queue is empty, and operations are popped only under the lock.
// Each operation is recorded in the OperationProgress (for the watchdog) while it runs.
//
// Who calls it: MpiGroup (submit, start, stop) and its Works (run_through).
// Thread-safety: submit and run_through may be called from any thread; start and stop by the group's
// owner, once each. An operation's exception (its what()) is rethrown as accel::DistributedError by
// Work::wait; submit throws accel::UsageError after stop().
#include <torch/types.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "accel/process_group.hpp"
#include "comm/mpi/operation_progress.hpp"
#include "comm/operation_label.hpp"

namespace accel::detail {

class MpiWork;

class OperationQueue {
 public:
  // An operation: runs the collective on the calling thread and returns the Work's result tensors.
  using Run = std::function<std::vector<at::Tensor>()>;

  // Largest operation (in bytes) a caller may run at submit instead of queueing it.
  static constexpr std::size_t kInlineBytes = 64 * 1024;

  explicit OperationQueue(OperationProgress& progress) : progress_(progress) {}
  OperationQueue(const OperationQueue&) = delete;
  OperationQueue& operator=(const OperationQueue&) = delete;

  // Starts the communication thread: from now on operations are queued (or run inline when small).
  void start();

  // Queues `run` (or runs it now, see above) and returns its Work. inline_bytes: the operation's size
  // when it may run at submit; 0 when it must not.
  WorkPtr submit(const OperationLabel& label, Run run, std::size_t inline_bytes = 0);

  // Runs queued operations up to `sequence` on the calling thread (see MpiWork::wait); waits for an
  // operation that is running to finish first.
  void run_through(std::uint64_t sequence);

  // Refuses new operations, lets the communication thread finish the queued ones and joins it. Returns
  // the execution lock, held, once no caller runs an operation any more (so that what operations use can
  // be freed); an empty lock when the queue had been stopped already or was never started.
  std::unique_lock<std::mutex> stop();

 private:
  struct Operation {
    std::uint64_t sequence = 0;
    OperationLabel label;
    Run run;
    std::shared_ptr<MpiWork> work;
  };

  void communication_loop();
  // Runs one operation and completes its Work. Precondition: execute_mutex_ is held by this thread.
  void execute_operation(Operation& op);

  OperationProgress& progress_;
  bool local_ = true;  // not started: operations run inline at submit

  // Held while an operation runs, by the communication thread or by a caller running one itself:
  // operations run one at a time, in sequence order.
  std::mutex execute_mutex_;
  std::mutex queue_mutex_;
  std::condition_variable queue_changed_;
  std::deque<Operation> queue_;
  std::uint64_t next_sequence_ = 1;
  bool stopping_ = false;
  bool shut_down_ = false;
  std::thread thread_;
};

}  // namespace accel::detail
