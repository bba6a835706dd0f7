#pragma once
// accel::Collectives: the little of a process group that tracking needs (sync_dist, main-process
// gating), so that tracking stays free of LibTorch and MPI. accel_distributed implements it over its
// ProcessGroup; tests implement it in-process. Calls are collective: every rank must make the same call
// in the same order. Thread-safety: called from the training thread only.
#include <span>

namespace accel {

class Collectives {
 public:
  virtual ~Collectives() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // In-place element-wise sum over all ranks. Throws accel::DistributedError on failure/timeout.
  virtual void allreduce_sum(std::span<double> values) = 0;
  // In-place element-wise max / min over all ranks.
  virtual void allreduce_max(std::span<double> values) = 0;
  virtual void allreduce_min(std::span<double> values) = 0;
};

// A single process: rank 0 of 1, every reduction is the identity.
class SingleProcessCollectives final : public Collectives {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  void allreduce_sum(std::span<double>) override {}
  void allreduce_max(std::span<double>) override {}
  void allreduce_min(std::span<double>) override {}
};

}  // namespace accel
