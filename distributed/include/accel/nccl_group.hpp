#pragma once
// accel::NcclGroup: ProcessGroup over NCCL for CUDA tensors. Only declared when accel is built with CUDA
// (ACCEL_WITH_CUDA); check NcclGroup::available() before constructing one.
//
// Bootstrap: rank 0 creates the ncclUniqueId, which is broadcast over an MPI (CPU) group; every rank then
// calls ncclCommInitRank for its device (cuda:<local rank> by default). Each group has a dedicated CUDA
// stream: an operation first makes that stream wait for an event recorded on the caller's current stream
// (so it sees the tensor's pending writes), runs the NCCL call there, and records a completion event.
// Work::wait() makes the caller's current stream wait for that event and blocks the host until it fired,
// polling with the group timeout (on timeout: report, ncclCommAbort, MPI_Abort). The tensor's memory is
// kept alive until the operation finished (recordStream on the comm stream).
// fp16/bf16/float/double and integer types are reduced natively; kAvg uses ncclAvg. Object collectives
// and barrier go through the MPI bootstrap group.
#if defined(ACCEL_WITH_CUDA)
#include <memory>

#include "accel/process_group.hpp"

namespace accel {

class NcclGroup final : public ProcessGroup {
 public:
  // True when a CUDA device is visible to this process.
  static bool available();

  // A group over every rank of `bootstrap` on `device` (a CUDA device). Throws accel::InvalidValue for a
  // non-CUDA device and accel::DistributedError when NCCL cannot initialise (message has NCCL's reason).
  // Collective over bootstrap.
  NcclGroup(std::shared_ptr<ProcessGroup> bootstrap, torch::Device device,
            ProcessGroupOptions options = {});
  ~NcclGroup() override;
  NcclGroup(const NcclGroup&) = delete;
  NcclGroup& operator=(const NcclGroup&) = delete;

  std::string_view backend() const override { return "nccl"; }
  int rank() const override;
  int size() const override;
  torch::Device device() const override;
  std::chrono::milliseconds timeout() const override;

  WorkPtr allreduce(const at::Tensor& tensor, ReduceOp op = ReduceOp::kSum) override;
  WorkPtr broadcast(const at::Tensor& tensor, int root = 0) override;
  WorkPtr allgather(const at::Tensor& tensor) override;
  WorkPtr barrier() override;

  std::string broadcast_object(const std::string& bytes, int root = 0) override;
  std::vector<std::string> gather_object(const std::string& bytes, int root = 0) override;
  std::vector<std::string> allgather_object(const std::string& bytes) override;
  std::string scatter_object(const std::vector<std::string>& per_rank, int root = 0) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace accel
#endif  // ACCEL_WITH_CUDA
