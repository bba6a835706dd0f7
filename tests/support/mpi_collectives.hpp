#pragma once
// MPI for the tracking tests that run under mpiexec (no LibTorch): starting MPI once, and
// accel::Collectives over MPI_COMM_WORLD for TrackerHub and MetricAggregator.
#include <array>
#include <span>

#include "accel/tracking/collectives.hpp"

namespace accel::test {

// Starts MPI on the first call and finishes it at exit (Catch2 owns main()). Idempotent.
void ensure_mpi();

// accel::Collectives over MPI_COMM_WORLD: in-place MPI_Allreduce on doubles (starts MPI first).
// Counts the calls of each kind. Throws accel::DistributedError when MPI_Allreduce fails.
class MpiCollectives final : public Collectives {
 public:
  MpiCollectives();
  int rank() const override { return rank_; }
  int world_size() const override { return size_; }
  void allreduce_sum(std::span<double> values) override;
  void allreduce_max(std::span<double> values) override;
  void allreduce_min(std::span<double> values) override;

  std::array<int, 3> calls() const { return calls_; }  // sum, max, min

 private:
  int rank_ = 0;
  int size_ = 1;
  std::array<int, 3> calls_{};
};

}  // namespace accel::test
