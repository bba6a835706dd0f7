// accel::State under mpiexec ("[mpi]": agrees with the launcher and across ranks) and as a plain process
// started without any launcher ("[single]": rank 0 of 1, no MPI).
// clang-format off: torch_catch.hpp must stay the first include (include sorting would move it)
#include "torch_catch.hpp"  // first: see the header
// clang-format on
#include <mpi.h>
#include <torch/torch.h>

#include <cstdlib>
#include <string>

#include "accel/mpi_group.hpp"
#include "accel/state.hpp"
#include "accel/tracking/errors.hpp"

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

}  // namespace

TEST_CASE("State matches the launcher and is consistent across ranks", "[mpi]") {
  const accel::State& state = accel::State::instance();
  REQUIRE(state.uses_mpi());
  CHECK(state.world_size() == std::stoi(env("OMPI_COMM_WORLD_SIZE")));
  CHECK(state.rank() == std::stoi(env("OMPI_COMM_WORLD_RANK")));
  CHECK(state.local_rank() == std::stoi(env("OMPI_COMM_WORLD_LOCAL_RANK")));
  CHECK(state.local_world_size() == std::stoi(env("OMPI_COMM_WORLD_LOCAL_SIZE")));
  CHECK(state.num_nodes() == 1);
  CHECK(state.node_rank() == 0);
  CHECK(state.is_main_process() == (state.rank() == 0));
  CHECK(state.is_local_main_process() == (state.local_rank() == 0));
  CHECK(state.device().is_cpu());  // no GPU on the test machines; ACCEL_USE_CPU is honoured anyway
  // Exported for programs that read torch/Accelerate variables.
  CHECK(env("RANK") == std::to_string(state.rank()));
  CHECK(env("WORLD_SIZE") == std::to_string(state.world_size()));
  CHECK(env("LOCAL_RANK") == std::to_string(state.local_rank()));
  CHECK(env("LOCAL_WORLD_SIZE") == std::to_string(state.local_world_size()));

  int provided = 0;
  MPI_Query_thread(&provided);
  CHECK(provided == MPI_THREAD_MULTIPLE);

  // Every rank sees the same world and distinct ranks.
  accel::MpiGroup group;
  const auto all = group.allgather_object(std::to_string(state.rank()) + "/" +
                                          std::to_string(state.world_size()));
  REQUIRE(all.size() == static_cast<std::size_t>(state.world_size()));
  for (int r = 0; r < state.world_size(); ++r) {
    CHECK(all[r] == std::to_string(r) + "/" + std::to_string(state.world_size()));
  }
  CHECK(state.describe().find("rank " + std::to_string(state.rank()) + "/") != std::string::npos);
}

TEST_CASE("Without a launcher the program is one process and MPI is not started", "[single]") {
  REQUIRE(std::getenv("OMPI_COMM_WORLD_SIZE") == nullptr);
  const accel::State& state = accel::State::instance();
  CHECK_FALSE(state.uses_mpi());
  int initialized = 1;
  MPI_Initialized(&initialized);
  CHECK(initialized == 0);
  CHECK(state.rank() == 0);
  CHECK(state.world_size() == 1);
  CHECK(state.local_rank() == 0);
  CHECK(state.local_world_size() == 1);
  CHECK(state.num_nodes() == 1);
  CHECK(state.is_main_process());
  CHECK_FALSE(state.is_distributed());
  CHECK(env("RANK") == "0");
  CHECK(env("WORLD_SIZE") == "1");

  // Collectives of a single process are local and behave as the one-rank case.
  accel::MpiGroup group;
  at::Tensor t = torch::arange(6, torch::kFloat32).reshape({2, 3});
  group.allreduce(t, accel::ReduceOp::kAvg)->wait();
  CHECK(torch::equal(t, torch::arange(6, torch::kFloat32).reshape({2, 3})));
  auto gathered = group.allgather(t);
  gathered->wait();
  REQUIRE(gathered->result().size() == 1);
  CHECK(torch::equal(gathered->result()[0], t));
  CHECK(group.broadcast_object("config", 0) == "config");
  CHECK(group.scatter_object({"only"}, 0) == "only");
  CHECK_THROWS_AS(group.broadcast(t, 1), accel::InvalidValue);
}
