#include "mpi_collectives.hpp"

#include <mpi.h>

#include <cstdlib>

#include "accel/tracking/errors.hpp"

namespace accel::test {

namespace {

void finalize_mpi() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void allreduce(std::span<double> values, MPI_Op op) {
  if (MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_DOUBLE, op,
                    MPI_COMM_WORLD) != MPI_SUCCESS) {
    throw DistributedError("MPI_Allreduce failed");
  }
}

}  // namespace

void ensure_mpi() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    MPI_Init(nullptr, nullptr);
    std::atexit(finalize_mpi);
  }
}

MpiCollectives::MpiCollectives() {
  ensure_mpi();
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

void MpiCollectives::allreduce_sum(std::span<double> values) {
  ++calls_[0];
  allreduce(values, MPI_SUM);
}

void MpiCollectives::allreduce_max(std::span<double> values) {
  ++calls_[1];
  allreduce(values, MPI_MAX);
}

void MpiCollectives::allreduce_min(std::span<double> values) {
  ++calls_[2];
  allreduce(values, MPI_MIN);
}

}  // namespace accel::test
