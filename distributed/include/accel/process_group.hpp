#pragma once
// accel::ProcessGroup: the collective operations every rank of a job takes part in, with asynchronous
// Work handles. Backends: MpiGroup (CPU tensors, mpi_group.hpp) and NcclGroup (CUDA tensors,
// nccl_group.hpp).
//
// Contract for every collective:
//   * It is collective: every rank of the group calls the same operations, in the same order, with
//     matching arguments (same dtype and shape, except where noted). The call checks the arguments and
//     queues the operation; the group runs its operations in call order. A backend may run a small
//     operation to completion inside the call when nothing else is queued (MpiGroup: up to 64 KiB), as
//     the hand-off to another thread would cost more than the operation. So with several groups, make
//     the calls in the same order across groups too (rank 0: g1 then g2, rank 1: g2 then g1 can block).
//   * Tensors are handles: in-place operations write their result into the tensor passed (also when it is
//     not contiguous) before the Work completes. Do not touch the tensor until wait() returned.
//   * Zero-element tensors are fine (the operation completes with nothing to move).
//   * Timeout: an operation that has not completed `timeout` after it started (options.timeout, default
//     from ACCEL_COLLECTIVE_TIMEOUT, else 30 min) prints, on stderr of the rank that noticed it, the
//     operation, its sequence number, tensor shape/dtype/bytes and which peers had not reached it (with the
//     last operation each peer did reach), then calls MPI_Abort: the job ends, it never hangs silently.
//   * Bad arguments (wrong device, unsupported dtype, root out of range, AVG of an integer tensor) throw
//     accel::InvalidValue from the call, before anything is queued. A failure while running (e.g. an
//     allgather whose trailing dimensions differ across ranks) is rethrown by Work::wait() as
//     accel::DistributedError on every rank.
// Thread-safety: a group may be used from several threads, but the order of calls must be the same on
// every rank (so in practice: one thread issues collectives, e.g. the training thread and the autograd
// hooks it runs).
#include <torch/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace accel {

enum class ReduceOp { kSum, kAvg, kMax, kMin, kProduct };
// "sum", "avg", "max", "min", "product".
std::string_view to_string(ReduceOp op);

// Handle of one queued collective. Obtained from a ProcessGroup; shared by the caller and the group.
class Work {
 public:
  virtual ~Work() = default;
  // True once the operation finished (successfully or not). Never blocks.
  virtual bool is_completed() const = 0;
  // Blocks until the operation finished; rethrows its failure as accel::DistributedError. For CUDA
  // tensors the results are then ready for the host and for the current CUDA stream. The group's
  // timeout bounds this wait (on timeout the job is aborted, see above).
  virtual void wait() = 0;
  // Waits at most `timeout`: true when finished (failure rethrown), false when still running (the
  // operation continues; call wait again later).
  virtual bool wait(std::chrono::milliseconds timeout) = 0;
  // The outputs, valid after wait(): allreduce/broadcast: {the tensor passed}; allgather: one tensor per
  // rank, in rank order (torch::cat(result()) gives the concatenation); barrier: empty.
  virtual const std::vector<at::Tensor>& result() const = 0;
};
using WorkPtr = std::shared_ptr<Work>;

struct ProcessGroupOptions {
  // How long one operation may take once started. Default: collective_timeout_from_env().
  std::chrono::milliseconds timeout = std::chrono::milliseconds{0};  // 0 = from the environment
};

// ACCEL_COLLECTIVE_TIMEOUT in seconds (decimals allowed, e.g. "2.5"); 1800 s when unset.
// Throws accel::InvalidValue naming the value when it is not a positive number.
std::chrono::milliseconds collective_timeout_from_env();

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;

  virtual std::string_view backend() const = 0;  // "mpi" or "nccl"
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Where tensors passed to this group must live (cpu for MpiGroup, cuda:<n> for NcclGroup).
  virtual torch::Device device() const = 0;
  virtual std::chrono::milliseconds timeout() const = 0;

  // In place: every rank ends with op(tensor of rank 0, ..., tensor of rank n-1). Floating types
  // (float64/32/16, bfloat16) and integer types; fp16/bf16 are reduced in fp32 where the backend has no
  // native type. kAvg needs a floating type.
  virtual WorkPtr allreduce(const at::Tensor& tensor, ReduceOp op = ReduceOp::kSum) = 0;
  // In place: every rank ends with root's tensor. Any dtype.
  virtual WorkPtr broadcast(const at::Tensor& tensor, int root = 0) = 0;
  // Every rank contributes `tensor`; sizes may differ in dimension 0 (the other dimensions and the dtype
  // must agree). Work::result() holds one tensor per rank, in rank order (a 0-dim tensor counts as one
  // element of dimension 0).
  virtual WorkPtr allgather(const at::Tensor& tensor) = 0;
  // Completes when every rank has called barrier.
  virtual WorkPtr barrier() = 0;

  // A zero-filled 1-D tensor of `numel` elements on device(), for data this group allreduces over and
  // over (the Reducer's gradient buckets). Collective: every rank calls it with the same arguments, in
  // the same order as its other collectives. A backend may place it where it reduces fastest: MpiGroup,
  // when every rank runs on one machine, returns memory all ranks map, which its allreduce then reduces
  // in place without copies. Otherwise (and by default) an ordinary tensor. Either way it is a normal
  // tensor for the caller; slices of it may be allreduced too.
  virtual at::Tensor allocate_reduction_buffer(std::int64_t numel, at::ScalarType dtype);

  // Object collectives on opaque bytes (e.g. a serialised config); blocking, same timeout.
  // Every rank receives root's bytes.
  virtual std::string broadcast_object(const std::string& bytes, int root = 0) = 0;
  // Root receives every rank's bytes in rank order; other ranks receive an empty vector.
  virtual std::vector<std::string> gather_object(const std::string& bytes, int root = 0) = 0;
  // Every rank receives every rank's bytes in rank order.
  virtual std::vector<std::string> allgather_object(const std::string& bytes) = 0;
  // Root passes one entry per rank (size() entries, else accel::InvalidValue); rank i receives entry i.
  // Other ranks' per_rank argument is ignored.
  virtual std::string scatter_object(const std::vector<std::string>& per_rank, int root = 0) = 0;
};

// The process-wide group for State::instance().device(): an NcclGroup when that device is CUDA, else an
// MpiGroup. Created on first call (collectively: call it on every rank), lives until process exit.
std::shared_ptr<ProcessGroup> default_process_group();
// The process-wide MpiGroup (CPU tensors, objects), whatever the device. Created on first call.
std::shared_ptr<ProcessGroup> cpu_process_group();

}  // namespace accel
