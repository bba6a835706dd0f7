// MpiGroup (see accel/mpi_group.hpp).
//
// Threads per group:
//   * the communication thread runs queued operations one at a time, in call order, with blocking MPI
//     collectives on `comm` (the same algorithms a program calling MPI_Allreduce itself gets) or the
//     shared-memory allreduce, so callers overlap their own work with communication. A caller may run
//     operations itself, in the same order and under the same lock: a small one at submit when the
//     thread is idle, and any not yet started when it waits for it (Work::wait);
//   * the watchdog thread wakes every kWatchdogPeriod: it answers peers' progress queries on `control`
//     and, when the running operation has exceeded the timeout, asks every peer how far it got, prints
//     the report and calls MPI_Abort.
// Progress = (sequence number of the last operation started, of the last completed, its name). Sequence
// numbers count this group's operations from 1; they agree across ranks because calls are collective.
#include "accel/mpi_group.hpp"

#include <fmt/format.h>
#include <mpi.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "accel/state.hpp"
#include "accel/tracking/errors.hpp"
#include "comm/group_registry.hpp"
#include "comm/operation_label.hpp"
#include "comm/shm/shm_allreduce.hpp"

namespace accel {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kQueryTag = 0x4143;   // "how far are you?" (payload: the asker's sequence number)
constexpr int kReplyTag = 0x4144;   // ProgressReport
constexpr int kObjectTag = 0x4145;  // point-to-point object bytes
constexpr std::chrono::milliseconds kWatchdogPeriod{20};
constexpr std::size_t kChunkBytes = std::size_t{1}
                                    << 30;  // MPI counts are int: move bytes in chunks
constexpr int kMaxAllgatherDims = 8;

struct ProgressReport {
  std::uint64_t started = 0;    // last operation started
  std::uint64_t completed = 0;  // last operation completed
  char operation[120] = {};     // name of `started`, e.g. "allreduce(sum) of float32 [10] (40 B)"
};

std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, static_cast<std::size_t>(length));
}

void check_mpi(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    throw DistributedError(fmt::format("accel: {} failed: {}", what, mpi_error_text(rc)));
  }
}

std::string join_sizes(at::IntArrayRef sizes) {
  std::string out = "[";
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (i != 0) out += ", ";
    out += std::to_string(sizes[i]);
  }
  return out + "]";
}

using detail::human_bytes;
using detail::OperationLabel;

OperationLabel tensor_label(const char* kind, const at::Tensor& t) {
  return OperationLabel::of_tensor(kind, t.scalar_type(), t.sizes(),
                                   static_cast<std::uint64_t>(t.numel()) * t.element_size());
}

OperationLabel object_label(const char* kind, int root, std::optional<std::uint64_t> bytes) {
  OperationLabel label;
  label.kind = kind;
  label.root = root;
  label.subject =
      bytes ? OperationLabel::Subject::kObjectBytes : OperationLabel::Subject::kUnknownObjectBytes;
  label.count = bytes.value_or(0);
  return label;
}

// The MPI type a tensor of `type` is reduced as (fp16/bf16: float after conversion).
MPI_Datatype reduction_type(at::ScalarType type) {
  switch (type) {
    case at::kFloat:
    case at::kHalf:
    case at::kBFloat16:
      return MPI_FLOAT;
    case at::kDouble:
      return MPI_DOUBLE;
    case at::kChar:
      return MPI_INT8_T;
    case at::kByte:
      return MPI_UINT8_T;
    case at::kShort:
      return MPI_INT16_T;
    case at::kInt:
      return MPI_INT32_T;
    case at::kLong:
      return MPI_INT64_T;
    default:
      return MPI_DATATYPE_NULL;
  }
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg:
      return MPI_SUM;
    case ReduceOp::kMax:
      return MPI_MAX;
    case ReduceOp::kMin:
      return MPI_MIN;
    case ReduceOp::kProduct:
      return MPI_PROD;
  }
  return MPI_SUM;
}

// Runs queued operations up to a sequence number on the calling thread (see MpiWork::wait).
class OperationRunner {
 public:
  virtual ~OperationRunner() = default;
  // Waits for an operation that is running to finish first.
  virtual void run_through(std::uint64_t sequence) = 0;
};

class MpiWork final : public Work {
 public:
  // runner: the group, or null when the operation completes before the Work is returned.
  explicit MpiWork(OperationRunner* runner) : runner_(runner) {}
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
  // threads. (The group outlives every operation that is not done, so runner_ is valid here.)
  void help() {
    if (runner_ != nullptr && !is_completed()) runner_->run_through(sequence_);
  }

  OperationRunner* runner_;
  std::uint64_t sequence_ = 0;
  mutable std::mutex mutex_;
  std::condition_variable finished_;
  std::atomic<bool> done_{false};
  std::string error_;
  std::vector<at::Tensor> result_;
};

OperationLabel allreduce_label(const at::Tensor& tensor, ReduceOp op) {
  OperationLabel label = tensor_label("allreduce", tensor);
  label.op = op;
  return label;
}

void check_cpu(const at::Tensor& tensor, const char* op) {
  if (!tensor.defined()) {
    throw InvalidValue(fmt::format("MpiGroup::{}: the tensor is undefined; pass a tensor.", op));
  }
  if (!tensor.device().is_cpu()) {
    throw InvalidValue(
        fmt::format("MpiGroup::{}: tensor is on {}, but MpiGroup moves CPU tensors; move it with "
                    ".cpu() or use the "
                    "NCCL group (default_process_group()) for CUDA tensors.",
                    op, tensor.device().str()));
  }
}

}  // namespace

struct MpiGroup::Impl final : OperationRunner {
  using Run = std::function<std::vector<at::Tensor>()>;
  struct Operation {
    std::uint64_t sequence = 0;
    OperationLabel label;
    Run run;
    std::shared_ptr<MpiWork> work;
  };

  std::chrono::milliseconds timeout{0};
  int rank = 0;
  int size = 1;
  bool local = true;  // single process without MPI: operations run inline
  MPI_Comm comm = MPI_COMM_NULL;
  MPI_Comm control = MPI_COMM_NULL;

  // Held while an operation runs, by the communication thread or by a caller running a small
  // operation inline (see submit): operations run one at a time, in sequence order.
  std::mutex execute_mutex;
  std::mutex queue_mutex;
  std::condition_variable queue_changed;
  std::deque<Operation> queue;
  std::uint64_t next_sequence = 1;
  bool stopping = false;
  bool shut_down = false;

  std::mutex progress_mutex;
  ProgressReport progress;  // .operation is filled from progress_label when a snapshot is taken
  OperationLabel progress_label;
  bool busy = false;
  Clock::time_point started_at;

  std::mutex watchdog_mutex;
  std::condition_variable watchdog_wake;
  bool watchdog_stop = false;
  std::uint64_t query_payload = 0;
  MPI_Request query_request = MPI_REQUEST_NULL;

  std::unique_ptr<detail::ShmAllreduce> shm;  // null: every allreduce uses MPI
  std::string shm_status = "off: a single process";

  std::thread comm_thread;
  std::thread watchdog_thread;
  std::uint64_t registry_id = 0;

  // Small operations (inline_bytes > 0 and at most kInlineBytes) run on the caller's thread when the
  // communication thread is idle and nothing is queued: the hand-off to the communication thread and
  // back (two thread wake-ups, several microseconds) would cost more than the operation itself.
  // Order is kept: the caller holds execute_mutex and takes the next sequence number only when the
  // queue is empty, and the communication thread pops an operation only while holding execute_mutex.
  static constexpr std::size_t kInlineBytes = 64 * 1024;

  WorkPtr submit(const OperationLabel& label, Run run, std::size_t inline_bytes = 0) {
    auto work = std::make_shared<MpiWork>(local ? nullptr : this);
    if (!local && inline_bytes > 0 && inline_bytes <= kInlineBytes) {
      std::unique_lock execute(execute_mutex, std::try_to_lock);
      if (execute.owns_lock()) {
        std::unique_lock lock(queue_mutex);
        if (queue.empty() && !stopping) {
          work->set_sequence(next_sequence);
          Operation op{next_sequence++, label, std::move(run), work};
          lock.unlock();
          torch::NoGradGuard no_grad;  // results are written into leaf tensors (parameters)
          execute_operation(op);
          return work;
        }
      }
    }
    if (local) {
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
      std::lock_guard lock(queue_mutex);
      if (stopping) {
        throw UsageError(
            "MpiGroup: " + label.text() +
            " called after the group was shut down (at process exit or by shutdown()); "
            "issue collectives before that.");
      }
      work->set_sequence(next_sequence);
      queue.push_back(Operation{next_sequence++, label, std::move(run), work});
    }
    queue_changed.notify_one();
    return work;
  }

  void communication_loop() {
    torch::NoGradGuard no_grad;  // results are written into leaf tensors (parameters)
    at::init_num_threads();      // intra-op threads as the program configured them
    for (;;) {
      {
        std::unique_lock lock(queue_mutex);
        queue_changed.wait(lock, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) return;
      }
      std::lock_guard execute(execute_mutex);
      Operation op;
      {
        std::lock_guard lock(queue_mutex);
        if (queue.empty()) continue;
        op = std::move(queue.front());
        queue.pop_front();
      }
      execute_operation(op);
    }
  }

  void run_through(std::uint64_t sequence) override {
    std::lock_guard execute(execute_mutex);
    torch::NoGradGuard no_grad;  // results are written into leaf tensors (parameters)
    for (;;) {
      Operation op;
      {
        std::lock_guard lock(queue_mutex);
        if (queue.empty() || queue.front().sequence > sequence) return;
        op = std::move(queue.front());
        queue.pop_front();
      }
      execute_operation(op);
    }
  }

  // Runs one operation and completes its Work; progress is what the watchdog reports on timeout.
  // Precondition: execute_mutex is held by the calling thread.
  void execute_operation(Operation& op) {
    {
      std::lock_guard lock(progress_mutex);
      progress.started = op.sequence;
      progress_label = op.label;
      started_at = Clock::now();
      busy = true;
    }
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
    {
      std::lock_guard lock(progress_mutex);
      progress.completed = op.sequence;
      busy = false;
    }
    op.work->finish(std::move(result), std::move(error));
  }

  ProgressReport snapshot() {
    std::lock_guard lock(progress_mutex);
    ProgressReport report = progress;
    std::snprintf(report.operation, sizeof(report.operation), "%s",
                  progress.started == 0 ? "" : progress_label.text().c_str());
    return report;
  }

  void post_query_receive() {
    MPI_Irecv(&query_payload, 1, MPI_UINT64_T, MPI_ANY_SOURCE, kQueryTag, control, &query_request);
  }

  // Answers every progress query that has arrived. Watchdog thread only.
  void answer_queries() {
    for (;;) {
      int arrived = 0;
      MPI_Status status;
      MPI_Test(&query_request, &arrived, &status);
      if (arrived == 0) return;
      ProgressReport report = snapshot();
      MPI_Send(&report, sizeof(report), MPI_BYTE, status.MPI_SOURCE, kReplyTag, control);
      post_query_receive();
    }
  }

  void watchdog_loop() {
    post_query_receive();
    for (;;) {
      {
        std::unique_lock lock(watchdog_mutex);
        if (watchdog_wake.wait_for(lock, kWatchdogPeriod, [&] { return watchdog_stop; })) break;
      }
      answer_queries();
      bool expired = false;
      {
        std::lock_guard lock(progress_mutex);
        expired = busy && Clock::now() - started_at > timeout;
      }
      if (expired) report_timeout_and_abort();
    }
    MPI_Cancel(&query_request);
    MPI_Wait(&query_request, MPI_STATUS_IGNORE);
  }

  [[noreturn]] void report_timeout_and_abort() {
    const ProgressReport mine = snapshot();
    // Ask every peer, then collect answers for a bounded grace period (answering others meanwhile:
    // they may be timing out too).
    std::vector<ProgressReport> replies(static_cast<std::size_t>(size));
    std::vector<MPI_Request> receives(static_cast<std::size_t>(size), MPI_REQUEST_NULL);
    std::vector<MPI_Request> sends(static_cast<std::size_t>(size), MPI_REQUEST_NULL);
    std::vector<char> answered(static_cast<std::size_t>(size), 0);
    for (int peer = 0; peer < size; ++peer) {
      if (peer == rank) continue;
      MPI_Irecv(&replies[peer], sizeof(ProgressReport), MPI_BYTE, peer, kReplyTag, control,
                &receives[peer]);
      MPI_Isend(&mine.started, 1, MPI_UINT64_T, peer, kQueryTag, control, &sends[peer]);
    }
    const auto grace =
        std::clamp(timeout, std::chrono::milliseconds(1000), std::chrono::milliseconds(5000));
    const auto deadline = Clock::now() + grace;
    int missing = size - 1;
    while (missing > 0 && Clock::now() < deadline) {
      answer_queries();
      for (int peer = 0; peer < size; ++peer) {
        if (peer == rank || answered[peer] != 0) continue;
        int done = 0;
        MPI_Test(&receives[peer], &done, MPI_STATUS_IGNORE);
        if (done != 0) {
          answered[peer] = 1;
          --missing;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }

    std::string not_arrived;
    std::string other_lines;
    for (int peer = 0; peer < size; ++peer) {
      if (peer == rank) continue;
      if (answered[peer] == 0) {
        not_arrived +=
            fmt::format("\n    rank {}: did not answer within {} ms (hung outside MPI, or dead)",
                        peer, grace.count());
        continue;
      }
      const ProgressReport& p = replies[peer];
      const std::string peer_op(p.operation, strnlen(p.operation, sizeof(p.operation)));
      if (p.started < mine.started) {
        const bool idle = p.completed == p.started;
        not_arrived +=
            fmt::format("\n    rank {}: has not arrived; {} #{} {}", peer,
                        idle ? "idle since it completed" : "still running", p.started,
                        p.started == 0 ? std::string("(no operation yet)") : "'" + peer_op + "'");
      } else if (p.started == mine.started && peer_op != mine.operation) {
        not_arrived += fmt::format(
            "\n    rank {}: called a DIFFERENT operation as #{}: '{}' (collective calls do not "
            "match)",
            peer, p.started, peer_op);
      } else if (p.started == mine.started) {
        other_lines += fmt::format("\n    rank {}: arrived, waiting in #{} too", peer, p.started);
      } else {
        other_lines +=
            fmt::format("\n    rank {}: is ahead, at #{} '{}'", peer, p.started, peer_op);
      }
    }
    const std::string message = fmt::format(
        "accel: collective timeout on {}: operation #{} '{}' did not complete within {} ms "
        "(ACCEL_COLLECTIVE_TIMEOUT).\n  peers that had not arrived:{}{}\n  Every rank must make "
        "the same "
        "collective calls in the same order. Aborting the job (MPI_Abort).\n",
        State::instance().describe(), mine.started, mine.operation, timeout.count(),
        not_arrived.empty() ? std::string("\n    (none: all peers are inside it; slow network?)")
                            : not_arrived,
        other_lines.empty() ? std::string() : "\n  others:" + other_lines);
    std::fputs(message.c_str(), stderr);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 3);
    std::abort();
  }

  void start(ProcessGroupOptions options) {
    const State& state = State::instance();
    timeout = options.timeout.count() > 0 ? options.timeout : collective_timeout_from_env();
    rank = state.rank();
    size = state.world_size();
    local = !state.uses_mpi();
    if (local) return;
    const bool shm_wanted = detail::shm_allreduce_enabled_from_env();
    check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &comm), "MPI_Comm_dup");
    check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &control), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    start_shared_memory(shm_wanted);
    comm_thread = std::thread([this] { communication_loop(); });
    watchdog_thread = std::thread([this] { watchdog_loop(); });
    registry_id = detail::register_group_shutdown([this] { stop(); });
  }

  // Collective: every rank takes the same decision (a rank whose environment says 0 turns it off for
  // all).
  void start_shared_memory(bool wanted) {
    int mine = wanted ? 1 : 0;
    int all = 0;
    check_mpi(MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, comm), "MPI_Allreduce");
    if (all == 0) {
      shm_status = "off: ACCEL_SHM_ALLREDUCE=0";
      return;
    }
    std::string why;
    shm = detail::ShmAllreduce::create(comm, &why);
    shm_status = shm ? std::string("on: every rank runs on this machine") : "off: " + why;
  }

  void stop() {
    {
      std::lock_guard lock(queue_mutex);
      if (shut_down) return;
      shut_down = true;
      stopping = true;
    }
    if (local) return;
    queue_changed.notify_all();
    if (comm_thread.joinable()) comm_thread.join();
    // A caller may still be running an operation itself (inline or from wait()): let it finish before
    // the watchdog, the shared memory and the communicators go. No new one starts: `stopping` is set.
    std::lock_guard execute(execute_mutex);
    {
      std::lock_guard lock(watchdog_mutex);
      watchdog_stop = true;
    }
    watchdog_wake.notify_all();
    if (watchdog_thread.joinable()) watchdog_thread.join();
    shm.reset();
    if (detail::mpi_usable()) {
      MPI_Comm_free(&comm);
      MPI_Comm_free(&control);
    }
  }

  // ---- operations (run on the communication thread) ----

  void allreduce_in_place(void* data, std::int64_t count, MPI_Datatype type, MPI_Op op) const {
    int type_size = 0;
    MPI_Type_size(type, &type_size);
    const std::int64_t per_chunk = static_cast<std::int64_t>(kChunkBytes) / type_size;
    auto* bytes = static_cast<char*>(data);
    for (std::int64_t done = 0; done < count || (count == 0 && done == 0);) {
      const std::int64_t n = std::min(per_chunk, count - done);
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, bytes + done * type_size, static_cast<int>(n), type, op,
                              comm),
                "MPI_Allreduce");
      done += n;
      if (count == 0) break;
    }
  }

  void broadcast_bytes(void* data, std::uint64_t bytes, int root) const {
    auto* p = static_cast<char*>(data);
    for (std::uint64_t done = 0; done < bytes;) {
      const auto n = static_cast<int>(std::min<std::uint64_t>(kChunkBytes, bytes - done));
      check_mpi(MPI_Bcast(p + done, n, MPI_BYTE, root, comm), "MPI_Bcast");
      done += static_cast<std::uint64_t>(n);
    }
  }

  void send_bytes(const std::string& bytes, int to) const {
    std::uint64_t n = bytes.size();
    check_mpi(MPI_Send(&n, 1, MPI_UINT64_T, to, kObjectTag, comm), "MPI_Send");
    for (std::uint64_t done = 0; done < n;) {
      const auto chunk = static_cast<int>(std::min<std::uint64_t>(kChunkBytes, n - done));
      check_mpi(MPI_Send(bytes.data() + done, chunk, MPI_BYTE, to, kObjectTag, comm), "MPI_Send");
      done += static_cast<std::uint64_t>(chunk);
    }
  }

  std::string receive_bytes(int from) const {
    std::uint64_t n = 0;
    check_mpi(MPI_Recv(&n, 1, MPI_UINT64_T, from, kObjectTag, comm, MPI_STATUS_IGNORE), "MPI_Recv");
    std::string out(n, '\0');
    for (std::uint64_t done = 0; done < n;) {
      const auto chunk = static_cast<int>(std::min<std::uint64_t>(kChunkBytes, n - done));
      check_mpi(
          MPI_Recv(out.data() + done, chunk, MPI_BYTE, from, kObjectTag, comm, MPI_STATUS_IGNORE),
          "MPI_Recv");
      done += static_cast<std::uint64_t>(chunk);
    }
    return out;
  }

  void check_root(int root, const char* op) const {
    if (root < 0 || root >= size) {
      throw InvalidValue(fmt::format("MpiGroup::{}: root {} is not a rank of this group (0..{}).",
                                     op, root, size - 1));
    }
  }
};

MpiGroup::MpiGroup(ProcessGroupOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->start(options);
}

MpiGroup::~MpiGroup() {
  if (impl_->registry_id != 0) detail::unregister_group_shutdown(impl_->registry_id);
  impl_->stop();
}

void MpiGroup::shutdown() {
  if (impl_->registry_id != 0) detail::unregister_group_shutdown(impl_->registry_id);
  impl_->registry_id = 0;
  impl_->stop();
}

int MpiGroup::rank() const {
  return impl_->rank;
}
int MpiGroup::size() const {
  return impl_->size;
}
std::chrono::milliseconds MpiGroup::timeout() const {
  return impl_->timeout;
}

WorkPtr MpiGroup::allreduce(const at::Tensor& tensor, ReduceOp op) {
  check_cpu(tensor, "allreduce");
  const at::ScalarType type = tensor.scalar_type();
  const MPI_Datatype mpi_type = reduction_type(type);
  if (mpi_type == MPI_DATATYPE_NULL) {
    throw InvalidValue(
        fmt::format("MpiGroup::allreduce: dtype {} is not supported; use a floating "
                    "(float64/32/16, bfloat16) or "
                    "integer tensor (convert bool with .to(torch::kUInt8)).",
                    c10::toString(type)));
  }
  if (op == ReduceOp::kAvg && !at::isFloatingType(type)) {
    throw InvalidValue(
        fmt::format("MpiGroup::allreduce: ReduceOp::kAvg of an integer tensor ({}) would truncate; "
                    "reduce with kSum "
                    "and divide, or convert to a floating type first.",
                    c10::toString(type)));
  }
  Impl* impl = impl_.get();
  const bool through_shm = impl->shm && detail::ShmAllreduce::supports(type);
  auto run = [impl, tensor, op, mpi_type, through_shm]() -> std::vector<at::Tensor> {
    at::Tensor buffer;
    if (through_shm) {  // any floating type, reduced as it is (fp16/bf16 accumulated in float)
      buffer = tensor.contiguous();
      impl->shm->allreduce(buffer, op);
    } else {  // MPI has no fp16/bf16: reduce those in float
      const bool widen = tensor.scalar_type() == at::kHalf || tensor.scalar_type() == at::kBFloat16;
      buffer = widen ? tensor.to(at::kFloat, false, false, at::MemoryFormat::Contiguous)
                     : tensor.contiguous();
      if (!impl->local)
        impl->allreduce_in_place(buffer.data_ptr(), buffer.numel(), mpi_type, mpi_op(op));
      if (op == ReduceOp::kAvg && impl->size > 1) buffer.div_(impl->size);
    }
    if (!buffer.is_same(tensor)) tensor.copy_(buffer);
    return {tensor};
  };
  const auto bytes = static_cast<std::size_t>(tensor.numel()) * tensor.element_size();
  return impl->submit(allreduce_label(tensor, op), std::move(run), std::max<std::size_t>(bytes, 1));
}

WorkPtr MpiGroup::broadcast(const at::Tensor& tensor, int root) {
  check_cpu(tensor, "broadcast");
  impl_->check_root(root, "broadcast");
  Impl* impl = impl_.get();
  auto run = [impl, tensor, root]() -> std::vector<at::Tensor> {
    if (impl->local) return {tensor};
    at::Tensor buffer = tensor.contiguous();
    impl->broadcast_bytes(buffer.data_ptr(),
                          static_cast<std::uint64_t>(buffer.numel()) * buffer.element_size(), root);
    if (!buffer.is_same(tensor) && impl->rank != root) tensor.copy_(buffer);
    return {tensor};
  };
  OperationLabel label = tensor_label("broadcast", tensor);
  label.root = root;
  return impl->submit(label, std::move(run));
}

WorkPtr MpiGroup::allgather(const at::Tensor& tensor) {
  check_cpu(tensor, "allgather");
  if (tensor.dim() > kMaxAllgatherDims) {
    throw InvalidValue(
        fmt::format("MpiGroup::allgather: tensor has {} dimensions; at most {} are "
                    "supported (reshape it first).",
                    tensor.dim(), kMaxAllgatherDims));
  }
  Impl* impl = impl_.get();
  auto run = [impl, tensor]() -> std::vector<at::Tensor> {
    const at::Tensor input = (tensor.dim() == 0 ? tensor.reshape({1}) : tensor).contiguous();
    if (impl->local) return {input.clone()};
    // Header: dtype, ndim, sizes[kMaxAllgatherDims] -- compared across ranks before moving data.
    constexpr int kHeader = 2 + kMaxAllgatherDims;
    std::array<std::int64_t, kHeader> mine{};
    mine[0] = static_cast<std::int64_t>(input.scalar_type());
    mine[1] = input.dim();
    for (int d = 0; d < input.dim(); ++d) mine[2 + d] = input.size(d);
    std::vector<std::int64_t> all(static_cast<std::size_t>(kHeader) * impl->size);
    check_mpi(MPI_Allgather(mine.data(), kHeader, MPI_INT64_T, all.data(), kHeader, MPI_INT64_T,
                            impl->comm),
              "MPI_Allgather");
    const auto shape_of = [&](int r) {
      const std::int64_t* h = &all[static_cast<std::size_t>(r) * kHeader];
      std::vector<std::int64_t> s(h + 2, h + 2 + h[1]);
      return fmt::format("{} {}", c10::toString(static_cast<at::ScalarType>(h[0])), join_sizes(s));
    };
    for (int r = 1; r < impl->size; ++r) {
      const std::int64_t* h = &all[static_cast<std::size_t>(r) * kHeader];
      bool same = h[0] == all[0] && h[1] == all[1];
      for (int d = 1; same && d < h[1]; ++d) same = h[2 + d] == all[2 + d];
      if (!same) {
        throw DistributedError(fmt::format(
            "accel: allgather: rank {} passed {} but rank 0 passed {}; only dimension 0 may differ "
            "between ranks (dtype and the other dimensions must match).",
            r, shape_of(r), shape_of(0)));
      }
    }
    std::vector<std::int64_t> rows(static_cast<std::size_t>(impl->size));
    std::int64_t total_rows = 0;
    for (int r = 0; r < impl->size; ++r) {
      rows[r] = all[static_cast<std::size_t>(r) * kHeader + 2];
      total_rows += rows[r];
    }
    std::vector<std::int64_t> out_shape(input.sizes().begin(), input.sizes().end());
    out_shape[0] = total_rows;
    at::Tensor output = torch::empty(out_shape, input.options());
    const std::int64_t row_elems = output.numel() / std::max<std::int64_t>(total_rows, 1);
    const std::int64_t row_size = row_elems * input.element_size();
    if (row_size > 0 && total_rows > 0) {
      if (row_size > INT_MAX || total_rows > INT_MAX) {
        throw DistributedError(fmt::format(
            "accel: allgather of {} rows of {} bytes exceeds MPI's int counts; split the tensor.",
            total_rows, row_size));
      }
      MPI_Datatype row_type = MPI_DATATYPE_NULL;
      MPI_Type_contiguous(static_cast<int>(row_size), MPI_BYTE, &row_type);
      MPI_Type_commit(&row_type);
      std::vector<int> counts(static_cast<std::size_t>(impl->size));
      std::vector<int> displacements(static_cast<std::size_t>(impl->size));
      int offset = 0;
      for (int r = 0; r < impl->size; ++r) {
        counts[r] = static_cast<int>(rows[r]);
        displacements[r] = offset;
        offset += counts[r];
      }
      const int rc =
          MPI_Allgatherv(input.data_ptr(), counts[impl->rank], row_type, output.data_ptr(),
                         counts.data(), displacements.data(), row_type, impl->comm);
      MPI_Type_free(&row_type);
      check_mpi(rc, "MPI_Allgatherv");
    }
    auto parts = output.split_with_sizes(rows, 0);
    return std::vector<at::Tensor>(parts.begin(), parts.end());
  };
  return impl->submit(tensor_label("allgather", tensor), std::move(run));
}

at::Tensor MpiGroup::allocate_reduction_buffer(std::int64_t numel, at::ScalarType dtype) {
  if (numel < 0) {
    throw InvalidValue(fmt::format(
        "MpiGroup::allocate_reduction_buffer: numel is {}; pass a count of elements >= 0.", numel));
  }
  Impl* impl = impl_.get();
  if (!impl->shm || !detail::ShmAllreduce::supports(dtype)) {
    return ProcessGroup::allocate_reduction_buffer(numel, dtype);
  }
  auto out = std::make_shared<at::Tensor>();
  OperationLabel label;
  label.kind = "allocate_reduction_buffer";
  label.subject = OperationLabel::Subject::kElements;
  label.dtype = dtype;
  label.count = static_cast<std::uint64_t>(numel);
  impl->submit(label,
               [impl, out, numel, dtype]() -> std::vector<at::Tensor> {
                 *out = impl->shm->allocate(numel, dtype);
                 return {};
               })
      ->wait();
  return *out;
}

bool MpiGroup::uses_shared_memory() const {
  return impl_->shm != nullptr;
}
std::string MpiGroup::shared_memory_status() const {
  return impl_->shm_status;
}

WorkPtr MpiGroup::barrier() {
  Impl* impl = impl_.get();
  OperationLabel label;
  label.kind = "barrier";
  return impl->submit(label, [impl]() -> std::vector<at::Tensor> {
    if (!impl->local) check_mpi(MPI_Barrier(impl->comm), "MPI_Barrier");
    return {};
  });
}

std::string MpiGroup::broadcast_object(const std::string& bytes, int root) {
  impl_->check_root(root, "broadcast_object");
  Impl* impl = impl_.get();
  auto out = std::make_shared<std::string>();
  if (impl->rank == root) *out = bytes;
  impl->submit(object_label(
                   "broadcast_object", root,
                   impl->rank == root ? std::optional<std::uint64_t>(bytes.size()) : std::nullopt),
               [impl, out, root]() -> std::vector<at::Tensor> {
                 if (impl->local) return {};
                 std::uint64_t n = out->size();
                 check_mpi(MPI_Bcast(&n, 1, MPI_UINT64_T, root, impl->comm), "MPI_Bcast");
                 out->resize(n);
                 impl->broadcast_bytes(out->data(), n, root);
                 return {};
               })
      ->wait();
  return std::move(*out);
}

std::vector<std::string> MpiGroup::gather_object(const std::string& bytes, int root) {
  impl_->check_root(root, "gather_object");
  Impl* impl = impl_.get();
  auto out = std::make_shared<std::vector<std::string>>();
  auto mine = std::make_shared<std::string>(bytes);
  impl->submit(object_label("gather_object", root, bytes.size()),
               [impl, out, mine, root]() -> std::vector<at::Tensor> {
                 if (impl->rank != root) {
                   impl->send_bytes(*mine, root);
                   return {};
                 }
                 out->resize(static_cast<std::size_t>(impl->size));
                 for (int r = 0; r < impl->size; ++r) {
                   (*out)[r] = r == root ? *mine : impl->receive_bytes(r);
                 }
                 return {};
               })
      ->wait();
  return std::move(*out);
}

std::vector<std::string> MpiGroup::allgather_object(const std::string& bytes) {
  Impl* impl = impl_.get();
  auto out = std::make_shared<std::vector<std::string>>();
  auto mine = std::make_shared<std::string>(bytes);
  impl->submit(
          object_label("allgather_object", -1, bytes.size()),
          [impl, out, mine]() -> std::vector<at::Tensor> {
            if (impl->local) {
              out->push_back(*mine);
              return {};
            }
            std::uint64_t n = mine->size();
            std::vector<std::uint64_t> sizes(static_cast<std::size_t>(impl->size));
            check_mpi(MPI_Allgather(&n, 1, MPI_UINT64_T, sizes.data(), 1, MPI_UINT64_T, impl->comm),
                      "MPI_Allgather");
            std::uint64_t total = 0;
            for (auto s : sizes) total += s;
            if (total > INT_MAX) {
              throw DistributedError(fmt::format(
                  "accel: allgather_object of {} in total exceeds 2 GiB; send smaller objects.",
                  human_bytes(total)));
            }
            std::vector<int> counts(sizes.size());
            std::vector<int> displacements(sizes.size());
            std::string all(total, '\0');
            int offset = 0;
            for (std::size_t r = 0; r < sizes.size(); ++r) {
              counts[r] = static_cast<int>(sizes[r]);
              displacements[r] = offset;
              offset += counts[r];
            }
            check_mpi(MPI_Allgatherv(mine->data(), static_cast<int>(n), MPI_BYTE, all.data(),
                                     counts.data(), displacements.data(), MPI_BYTE, impl->comm),
                      "MPI_Allgatherv");
            for (std::size_t r = 0; r < sizes.size(); ++r) {
              out->push_back(all.substr(static_cast<std::size_t>(displacements[r]), sizes[r]));
            }
            return {};
          })
      ->wait();
  return std::move(*out);
}

std::string MpiGroup::scatter_object(const std::vector<std::string>& per_rank, int root) {
  impl_->check_root(root, "scatter_object");
  Impl* impl = impl_.get();
  const bool valid = impl->rank != root || per_rank.size() == static_cast<std::size_t>(impl->size);
  auto entries = std::make_shared<std::vector<std::string>>();
  if (impl->rank == root && valid) *entries = per_rank;
  auto out = std::make_shared<std::string>();
  try {
    OperationLabel label;
    label.kind = "scatter_object";
    label.root = root;
    impl->submit(
            label,
            [impl, entries, out, root, valid]() -> std::vector<at::Tensor> {
              if (impl->local) {
                if (valid) *out = (*entries)[0];
                return {};
              }
              // Root first tells everyone whether its input is usable, so a bad call fails on every
              // rank instead of leaving the others waiting.
              int ok = valid ? 1 : 0;
              check_mpi(MPI_Bcast(&ok, 1, MPI_INT, root, impl->comm), "MPI_Bcast");
              if (ok == 0) {
                throw DistributedError(fmt::format(
                    "accel: scatter_object: root rank {} did not pass one entry per rank ({}).",
                    root, impl->size));
              }
              if (impl->rank == root) {
                for (int r = 0; r < impl->size; ++r) {
                  if (r != root) impl->send_bytes((*entries)[r], r);
                }
                *out = (*entries)[root];
              } else {
                *out = impl->receive_bytes(root);
              }
              return {};
            })
        ->wait();
  } catch (const DistributedError&) {
    if (valid) throw;
  }
  if (!valid) {
    throw InvalidValue(
        fmt::format("MpiGroup::scatter_object: root passed {} entries but the group has {} ranks; "
                    "pass exactly one "
                    "entry per rank.",
                    per_rank.size(), impl->size));
  }
  return std::move(*out);
}

}  // namespace accel
