// Smoke test of the toolchain: every rank builds a tensor, MPI sums it, rank 0 prints the result.
// Run: mpirun -np 2 build/examples/allreduce_smoke/allreduce_smoke
#include <mpi.h>
#include <torch/torch.h>

#include <iostream>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  torch::Tensor t = torch::arange(4, torch::kFloat64) + rank;
  MPI_Allreduce(MPI_IN_PLACE, t.data_ptr<double>(), static_cast<int>(t.numel()), MPI_DOUBLE,
                MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) std::cout << "allreduce over " << size << " ranks: " << t << std::endl;
  MPI_Finalize();
  return 0;
}
