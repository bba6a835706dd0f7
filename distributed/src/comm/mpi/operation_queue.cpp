// OperationQueue and its Work (see operation_queue.hpp).
#include "comm/mpi/operation_queue.hpp"

#include <torch/torch.h>

#include <atomic>
#include <exception>
#include <string>
#include <utility>

#include "accel/tracking/errors.hpp"

namespace accel::detail {

class MpiWork final : public Work {
 public:
  // queue: the group's, or null when the operation completes before the Work is returned.
  explicit MpiWork(OperationQueue* queue) : queue_(queue) {}
  void set_sequence(std::uint64_t sequence) { sequence_ = sequence; }

  // done_ is set (release) after result_ and error_ are written and never cleared, so a reader that
  // saw it (acquire) may read them without the mutex.
  bool is_completed() const override { return done_.load(std::memory_order_acquire); }
  void wait() override {
    help();
    if (!is_completed()) {
      std::unique_lock lock(mutex_);
      finished_.wait(lock, [&] { return is_completed(); });
    }
    if (!error_.empty()) throw DistributedError(error_);
  }
  // No help here: running the operation could take longer than the caller allowed.
  bool wait(std::chrono::milliseconds timeout) override {
    if (!is_completed()) {
      std::unique_lock lock(mutex_);
      if (!finished_.wait_for(lock, timeout, [&] { return is_completed(); })) return false;
    }
    if (!error_.empty()) throw DistributedError(error_);
    return true;
  }
  const std::vector<at::Tensor>& result() const override { return result_; }

  void finish(std::vector<at::Tensor> result, std::string error) {
    {
      std::lock_guard lock(mutex_);
      result_ = std::move(result);
      error_ = std::move(error);
      done_.store(true, std::memory_order_release);
    }
    finished_.notify_all();
  }

 private:
  // A caller about to block runs its own operation (and those queued before it) itself when the
  // communication thread has not started it: allreduce(...)->wait() then costs no hand-off between
  // threads. (The group outlives every operation that is not done, so queue_ is valid here.)
  void help() {
    if (queue_ != nullptr && !is_completed()) queue_->run_through(sequence_);
  }

  OperationQueue* queue_;
  std::uint64_t sequence_ = 0;
  mutable std::mutex mutex_;
  std::condition_variable finished_;
  std::atomic<bool> done_{false};
  std::string error_;
  std::vector<at::Tensor> result_;
};

void OperationQueue::start() {
  local_ = false;
  thread_ = std::thread([this] { communication_loop(); });
}

WorkPtr OperationQueue::submit(const OperationLabel& label, Run run, std::size_t inline_bytes) {
  auto work = std::make_shared<MpiWork>(local_ ? nullptr : this);
  if (!local_ && inline_bytes > 0 && inline_bytes <= kInlineBytes) {
    std::unique_lock execute(execute_mutex_, std::try_to_lock);
    if (execute.owns_lock()) {
      std::unique_lock lock(queue_mutex_);
      if (queue_.empty() && !stopping_) {
        work->set_sequence(next_sequence_);
        Operation op{next_sequence_++, label, std::move(run), work};
        lock.unlock();
        torch::NoGradGuard no_grad;  // results are written into leaf tensors (parameters)
        execute_operation(op);
        return work;
      }
    }
  }
  if (local_) {
    std::vector<at::Tensor> result;
    std::string error;
    try {
      result = run();
    } catch (const std::exception& e) {
      error = e.what();
    }
    work->finish(std::move(result), std::move(error));
    return work;
  }
  {
    std::lock_guard lock(queue_mutex_);
    if (stopping_) {
      throw UsageError("MpiGroup: " + label.text() +
                       " called after the group was shut down (at process exit or by shutdown()); "
                       "issue collectives before that.");
    }
    work->set_sequence(next_sequence_);
    queue_.push_back(Operation{next_sequence_++, label, std::move(run), work});
  }
  queue_changed_.notify_one();
  return work;
}

void OperationQueue::communication_loop() {
  torch::NoGradGuard no_grad;  // results are written into leaf tensors (parameters)
  at::init_num_threads();      // intra-op threads as the program configured them
  for (;;) {
    {
      std::unique_lock lock(queue_mutex_);
      queue_changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
    }
    std::lock_guard execute(execute_mutex_);
    Operation op;
    {
      std::lock_guard lock(queue_mutex_);
      if (queue_.empty()) continue;
      op = std::move(queue_.front());
      queue_.pop_front();
    }
    execute_operation(op);
  }
}

void OperationQueue::run_through(std::uint64_t sequence) {
  std::lock_guard execute(execute_mutex_);
  torch::NoGradGuard no_grad;  // results are written into leaf tensors (parameters)
  for (;;) {
    Operation op;
    {
      std::lock_guard lock(queue_mutex_);
      if (queue_.empty() || queue_.front().sequence > sequence) return;
      op = std::move(queue_.front());
      queue_.pop_front();
    }
    execute_operation(op);
  }
}

// Progress is what the watchdog reports on timeout.
void OperationQueue::execute_operation(Operation& op) {
  progress_.begin(op.sequence, op.label);
  std::vector<at::Tensor> result;
  std::string error;
  try {
    result = op.run();
  } catch (const std::exception& e) {
    error = e.what();
  }
  // Drop the operation's references to its tensors before the caller wakes: after wait() the caller
  // holds the only ones (freeing a tensor then really frees it).
  op.run = nullptr;
  progress_.end(op.sequence);
  op.work->finish(std::move(result), std::move(error));
}

std::unique_lock<std::mutex> OperationQueue::stop() {
  {
    std::lock_guard lock(queue_mutex_);
    if (shut_down_) return {};
    shut_down_ = true;
    stopping_ = true;
  }
  if (local_) return {};
  queue_changed_.notify_all();
  if (thread_.joinable()) thread_.join();
  // A caller may still be running an operation itself (inline or from wait()): let it finish before
  // what operations use goes. No new one starts: `stopping_` is set.
  return std::unique_lock(execute_mutex_);
}

}  // namespace accel::detail
