#pragma once
// accel::MpiGroup: ProcessGroup over MPI for CPU tensors.
//
// Each group owns two duplicates of MPI_COMM_WORLD and two threads. Calls queue operations; the
// communication thread runs them in order with blocking MPI collectives (MPI_Allreduce, MPI_Bcast,
// MPI_Allgatherv, ...), so the caller (e.g. autograd running backward) keeps computing meanwhile. A small
// operation (up to 64 KiB) runs inside the call when nothing is queued, and Work::wait() runs its
// operation (and those queued before it) on the caller's thread when the communication thread has not
// started it. The watchdog thread enforces the timeout: it answers "how far are you?" queries from peers
// on the second communicator; on timeout it asks every peer and reports who has not arrived before
// MPI_Abort. In a single process without MPI (see State) every operation is local.
// fp16/bf16 are converted to fp32 for the reduction and back (MPI has no such types); non-contiguous
// tensors go through a contiguous copy that is written back.
// Shared memory: when every rank runs on this machine, floating-point allreduces (float32/64, fp16,
// bf16; every op) go through memory the ranks share instead of MPI (see
// src/comm/shm/shm_allreduce.hpp): tensors from allocate_reduction_buffer() are reduced in place with no
// copies, others through a staging area.
// Integer tensors, and jobs spanning machines, use MPI. ACCEL_SHM_ALLREDUCE=0 turns it off.
// Thread-safety: see ProcessGroup. Destruction joins the threads after the queued operations finished
// (and after any operation a caller runs itself); do not destroy a group while another thread is still
// inside wait() on one of its Works.
#include <memory>
#include <string>

#include "accel/process_group.hpp"

namespace accel {

class MpiGroup final : public ProcessGroup {
 public:
  // A group over every rank of the job. Initialises State (and MPI) if needed. Collective: every rank
  // constructs its groups in the same order.
  explicit MpiGroup(ProcessGroupOptions options = {});
  ~MpiGroup() override;
  MpiGroup(const MpiGroup&) = delete;
  MpiGroup& operator=(const MpiGroup&) = delete;

  std::string_view backend() const override { return "mpi"; }
  int rank() const override;
  int size() const override;
  torch::Device device() const override { return torch::kCPU; }
  std::chrono::milliseconds timeout() const override;

  WorkPtr allreduce(const at::Tensor& tensor, ReduceOp op = ReduceOp::kSum) override;
  WorkPtr broadcast(const at::Tensor& tensor, int root = 0) override;
  WorkPtr allgather(const at::Tensor& tensor) override;
  WorkPtr barrier() override;
  // Shared memory when uses_shared_memory(), else an ordinary zero-filled tensor. Collective.
  at::Tensor allocate_reduction_buffer(std::int64_t numel, at::ScalarType dtype) override;

  // Whether allreduce goes through shared memory (every rank on this machine, more than one rank,
  // ACCEL_SHM_ALLREDUCE not 0, and the memory could be set up), and if not, why.
  bool uses_shared_memory() const;
  std::string shared_memory_status() const;

  std::string broadcast_object(const std::string& bytes, int root = 0) override;
  std::vector<std::string> gather_object(const std::string& bytes, int root = 0) override;
  std::vector<std::string> allgather_object(const std::string& bytes) override;
  std::string scatter_object(const std::vector<std::string>& per_rank, int root = 0) override;

  // Waits for queued operations, stops the communication and watchdog threads and frees the
  // communicators. Called by the destructor and by State at process exit; later calls throw
  // accel::UsageError. Idempotent.
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace accel
