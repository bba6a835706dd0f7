// A rank that skips a collective must not hang the job: with ACCEL_COLLECTIVE_TIMEOUT=2 the waiting rank
// reports the operation, the tensor and the peer that has not arrived, then the job is aborted.
// The test runs `mpiexec -n 2` on this executable ("[.timeout_child]") under a wall-clock bound.
// clang-format off: torch_catch.hpp must stay the first include (include sorting would move it)
#include "torch_catch.hpp"  // first: see the header
// clang-format on
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "accel/mpi_group.hpp"
#include "accel/state.hpp"
#include "shell.hpp"

namespace {

struct Outcome {
  int exit_status = -1;
  std::string output;
  double seconds = 0;
};

Outcome run(const std::string& command) {
  const auto start = std::chrono::steady_clock::now();
  Outcome outcome;
  const auto result = accel::test::run_shell(command + " 2>&1");
  outcome.output = result.output;
  outcome.exit_status = result.exit_code();
  outcome.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return outcome;
}

std::string self_path() {
  std::array<char, 4096> path{};
  const ssize_t n = readlink("/proc/self/exe", path.data(), path.size() - 1);
  REQUIRE(n > 0);
  return std::string(path.data(), static_cast<std::size_t>(n));
}

}  // namespace

TEST_CASE("timeout child: rank 1 skips the allreduce", "[.timeout_child]") {
  accel::MpiGroup group;
  group.barrier()->wait();  // operation #1, everyone
  if (group.rank() == 1) {
    std::this_thread::sleep_for(std::chrono::seconds(60));  // "forgot" operation #2
    return;
  }
  at::Tensor t = torch::ones({1000}, torch::kFloat32);
  group.allreduce(t)->wait();  // operation #2: must be reported, never return
  std::puts("UNEXPECTED: allreduce returned");
}

TEST_CASE("a skipped collective ends the job with a report instead of a hang", "[mpi]") {
  // The waiting rank sleeps in the shared-memory allreduce (default on one machine) or inside MPI.
  const std::string setting =
      GENERATE(std::string("ACCEL_SHM_ALLREDUCE=1"), std::string("ACCEL_SHM_ALLREDUCE=0"));
  const std::string command = setting + " ACCEL_COLLECTIVE_TIMEOUT=2 timeout -s KILL 90 " +
                              ACCEL_TEST_MPIEXEC + " -n 2 " + ACCEL_TEST_MPIEXEC_FLAGS + " " +
                              self_path() + " \"[.timeout_child]\"";
  const Outcome outcome = run(command);
  INFO("command: " << command << "\noutput:\n" << outcome.output);
  CHECK(outcome.exit_status != 0);
  CHECK(outcome.exit_status != 137);  // not killed by the wall-clock bound
  CHECK(outcome.seconds < 60);
  CHECK(outcome.output.find("collective timeout on rank 0/2") != std::string::npos);
  CHECK(outcome.output.find("operation #2 'allreduce(sum) of Float [1000] (3.9 KiB)'") !=
        std::string::npos);
  CHECK(outcome.output.find("within 2000 ms") != std::string::npos);
  CHECK(outcome.output.find("rank 1: has not arrived; idle since it completed #1 'barrier'") !=
        std::string::npos);
  CHECK(outcome.output.find("UNEXPECTED") == std::string::npos);
}
