// allreduce_bench: algorithm bandwidth of accel::MpiGroup::allreduce (queue + communication thread +
// wait) against a plain MPI_Allreduce on the same float32 buffer, sizes 1 KiB .. max, interleaved so both
// see the same machine state. Rank 0 prints one JSON object per size:
//   {"bytes": n, "iterations": k, "accel_seconds": t, "mpi_seconds": t}   (median over repetitions)
// usage: mpiexec -n 2 allreduce_bench [--max-bytes N] [--budget-bytes N]
#include <mpi.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "accel/mpi_group.hpp"
#include "accel/state.hpp"

namespace {

double max_over_ranks(double seconds) {
  double out = 0;
  MPI_Allreduce(&seconds, &out, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t max_bytes = std::int64_t{256} << 20;
  std::int64_t budget_bytes = std::int64_t{2} << 30;  // bytes reduced per size and variant
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--max-bytes") max_bytes = std::atoll(argv[i + 1]);
    if (flag == "--budget-bytes") budget_bytes = std::atoll(argv[i + 1]);
  }
  torch::set_num_threads(1);
  const accel::State& state = accel::State::instance();
  accel::MpiGroup group;
  MPI_Comm raw_comm = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &raw_comm);

  for (std::int64_t bytes = 1024; bytes <= max_bytes; bytes *= 4) {
    const std::int64_t count = bytes / 4;
    at::Tensor a = torch::zeros({count}, torch::kFloat32);  // zeros: sums stay finite
    at::Tensor b = torch::zeros({count}, torch::kFloat32);
    const int iterations =
        static_cast<int>(std::clamp<std::int64_t>(budget_bytes / bytes / 5, 3, 2000));
    // Warm-up both paths (connection setup, first-touch of buffers).
    for (int i = 0; i < 2; ++i) {
      group.allreduce(a)->wait();
      MPI_Allreduce(MPI_IN_PLACE, b.data_ptr<float>(), static_cast<int>(count), MPI_FLOAT, MPI_SUM,
                    raw_comm);
    }
    std::vector<double> accel_times;
    std::vector<double> mpi_times;
    for (int repetition = 0; repetition < 5; ++repetition) {
      MPI_Barrier(MPI_COMM_WORLD);
      double start = MPI_Wtime();
      for (int i = 0; i < iterations; ++i) group.allreduce(a)->wait();
      accel_times.push_back(max_over_ranks(MPI_Wtime() - start) / iterations);

      MPI_Barrier(MPI_COMM_WORLD);
      start = MPI_Wtime();
      for (int i = 0; i < iterations; ++i) {
        MPI_Allreduce(MPI_IN_PLACE, b.data_ptr<float>(), static_cast<int>(count), MPI_FLOAT,
                      MPI_SUM, raw_comm);
      }
      mpi_times.push_back(max_over_ranks(MPI_Wtime() - start) / iterations);
    }
    if (state.is_main_process()) {
      std::printf(
          "{\"bytes\": %lld, \"iterations\": %d, \"accel_seconds\": %.9g, \"mpi_seconds\": %.9g}\n",
          static_cast<long long>(bytes), iterations, median(accel_times), median(mpi_times));
      std::fflush(stdout);
    }
  }
  MPI_Comm_free(&raw_comm);
  return 0;
}
