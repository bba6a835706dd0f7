// accel::ProcessGroupCollectives (tracking's Collectives over a ProcessGroup) under mpiexec: sums, maxima
// and minima of a double buffer agree with the local computation on every rank.
// clang-format off: torch_catch.hpp must stay the first include (include sorting would move it)
#include "torch_catch.hpp"  // first: see the header
// clang-format on
#include <torch/torch.h>

#include <vector>

#include "accel/process_group.hpp"
#include "accel/process_group_collectives.hpp"

TEST_CASE("sync_dist reductions over the process group", "[mpi]") {
  accel::ProcessGroupCollectives collectives(accel::cpu_process_group());
  const int rank = collectives.rank();
  const int world = collectives.world_size();
  REQUIRE(world >= 2);

  // Per rank: {rank, 10 * rank + 0.5, -rank}.
  const auto mine = [&] {
    return std::vector<double>{static_cast<double>(rank), 10.0 * rank + 0.5,
                               -static_cast<double>(rank)};
  };
  std::vector<double> sums = mine();
  collectives.allreduce_sum(sums);
  const double n = world;
  CHECK(sums[0] == Approx(n * (n - 1) / 2));
  CHECK(sums[1] == Approx(10.0 * n * (n - 1) / 2 + 0.5 * n));
  CHECK(sums[2] == Approx(-n * (n - 1) / 2));

  std::vector<double> maxima = mine();
  collectives.allreduce_max(maxima);
  CHECK(maxima == std::vector<double>{n - 1, 10.0 * (n - 1) + 0.5, 0.0});

  std::vector<double> minima = mine();
  collectives.allreduce_min(minima);
  CHECK(minima == std::vector<double>{0.0, 0.5, -(n - 1)});

  std::vector<double> empty;
  collectives.allreduce_sum(empty);  // collective with nothing to move
  CHECK(empty.empty());
}
