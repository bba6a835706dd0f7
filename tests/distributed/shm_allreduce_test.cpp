// MpiGroup's shared-memory allreduce under mpiexec (2 and 3 ranks on this machine): results equal the
// local computation on every path (direct, staged in chunks, in place in allocate_reduction_buffer
// memory, mixed), mismatched arguments fail on every rank, and the shared memory is released.
// With ACCEL_SHM_ALLREDUCE=0 (the *_mpi_only test) the group must report MPI only, and the same
// results come through MPI.
// clang-format off: torch_catch.hpp must stay the first include (include sorting would move it)
#include "torch_catch.hpp"  // first: see the header
// clang-format on
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "accel/mpi_group.hpp"
#include "accel/tracking/errors.hpp"
#include "collective_expectations.hpp"

namespace {

using accel::ReduceOp;
using namespace accel::test;  // contribution, expected, check_close, world_group
constexpr auto& group = world_group;

// Off when ACCEL_SHM_ALLREDUCE=0, or when the test is run where the shared memory cannot be set up
// (ACCEL_TEST_EXPECT_SHARED_MEMORY=0, see pid_namespace_fallback.sh).
bool shm_expected() {
  const char* expect = std::getenv("ACCEL_TEST_EXPECT_SHARED_MEMORY");
  if (expect != nullptr) return std::string(expect) != "0";
  const char* value = std::getenv("ACCEL_SHM_ALLREDUCE");
  return value == nullptr || std::string(value) != "0";
}

// Mappings of shared reduction memory in this process (memfd "accel-shared").
int shared_mappings() {
  std::ifstream maps("/proc/self/maps");
  int n = 0;
  for (std::string line; std::getline(maps, line);) {
    if (line.find("memfd:accel-shared") != std::string::npos) ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("the group reports whether it reduces through shared memory, and why not", "[mpi]") {
  INFO(group().shared_memory_status());
  CHECK(group().uses_shared_memory() == shm_expected());
  const char* setting = std::getenv("ACCEL_SHM_ALLREDUCE");
  if (setting != nullptr && std::string(setting) == "0") {
    CHECK(group().shared_memory_status() == "off: ACCEL_SHM_ALLREDUCE=0");
  } else if (!shm_expected()) {
    // Could not be set up: the status says what failed, on this rank or a peer.
    CHECK_THAT(group().shared_memory_status(),
               Catch::StartsWith("off: ") &&
                   (Catch::Contains("/proc/") || Catch::Contains("a peer rank")));
  }
}

TEST_CASE("allreduce of every size, floating type and op equals the local computation", "[mpi]") {
  const int rank = group().rank();
  const int world = group().size();
  // 0, 1, around the 32 KiB direct limit, around the 1 MiB staging chunk (float32), several chunks.
  for (std::int64_t n : {0, 1, 8191, 8192, 8193, 262143, 262145, 600001}) {
    for (auto type : {torch::kFloat32, torch::kFloat64, torch::kHalf, torch::kBFloat16}) {
      for (auto op :
           {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax, ReduceOp::kMin, ReduceOp::kProduct}) {
        INFO(n << " elements, op " << accel::to_string(op));
        at::Tensor t = contribution(rank, {n}, type);
        group().allreduce(t, op)->wait();
        check_close(t, expected(op, world, {n}, type), type);
      }
    }
  }
}

TEST_CASE("reduction buffers are reduced in place, whole or in slices, and keep the rest",
          "[mpi]") {
  const int rank = group().rank();
  const int world = group().size();
  const std::int64_t n = 300001;
  for (auto type : {torch::kFloat32, torch::kBFloat16}) {
    at::Tensor buffer = group().allocate_reduction_buffer(n, type);
    REQUIRE(buffer.numel() == n);
    REQUIRE(buffer.scalar_type() == type);
    CHECK(torch::equal(buffer, torch::zeros({n}, type)));  // zero-filled
    for (auto op : {ReduceOp::kAvg, ReduceOp::kMax, ReduceOp::kSum}) {
      INFO("dtype " << c10::toString(type) << ", op " << accel::to_string(op));
      buffer.copy_(contribution(rank, {n}, type));
      group().allreduce(buffer, op)->wait();
      check_close(buffer, expected(op, world, {n}, type), type);
    }
    // A slice (same offset on every rank): only it changes.
    buffer.fill_(-1.0);
    at::Tensor slice = buffer.narrow(0, 1000, 50000);
    slice.copy_(contribution(rank, {50000}, type));
    group().allreduce(slice, ReduceOp::kSum)->wait();
    check_close(slice, expected(ReduceOp::kSum, world, {50000}, type), type);
    CHECK(torch::equal(buffer.narrow(0, 0, 1000), torch::full({1000}, -1.0, type)));
    CHECK(torch::equal(buffer.narrow(0, 51000, n - 51000), torch::full({n - 51000}, -1.0, type)));
  }
}

TEST_CASE("ranks may mix reduction buffers and ordinary tensors, or use different offsets",
          "[mpi]") {
  const int rank = group().rank();
  const int world = group().size();
  const std::int64_t n = 100000;
  at::Tensor buffer = group().allocate_reduction_buffer(3 * n, torch::kFloat32);
  // Rank 0 reduces a slice of shared memory, the others an ordinary tensor.
  at::Tensor mixed = rank == 0 ? buffer.narrow(0, 0, n) : torch::empty({n}, torch::kFloat32);
  mixed.copy_(contribution(rank, {n}, torch::kFloat32));
  group().allreduce(mixed, ReduceOp::kSum)->wait();
  check_close(mixed, expected(ReduceOp::kSum, world, {n}, torch::kFloat32), torch::kFloat32);
  // Every rank in shared memory, but at a different offset.
  at::Tensor shifted = buffer.narrow(0, rank * 100, n);
  shifted.copy_(contribution(rank, {n}, torch::kFloat32));
  group().allreduce(shifted, ReduceOp::kMin)->wait();
  check_close(shifted, expected(ReduceOp::kMin, world, {n}, torch::kFloat32), torch::kFloat32);
}

TEST_CASE("integer tensors and reduction buffers of integer type work too", "[mpi]") {
  const int rank = group().rank();
  const int world = group().size();
  at::Tensor ints = group().allocate_reduction_buffer(50000, torch::kInt64);
  ints.fill_(rank + 1);
  group().allreduce(ints, ReduceOp::kSum)->wait();
  CHECK(torch::equal(ints, torch::full({50000}, world * (world + 1) / 2, torch::kInt64)));
  CHECK_THROWS_AS(group().allocate_reduction_buffer(-1, torch::kFloat32), accel::InvalidValue);
}

TEST_CASE("different element counts fail on every rank, naming each rank's tensor", "[mpi]") {
  // Through MPI, mismatched counts are undefined behaviour of MPI itself.
  if (!shm_expected()) return;
  const int rank = group().rank();
  const int world = group().size();
  for (std::int64_t base : {10, 100000}) {
    at::Tensor t = torch::ones({base + rank}, torch::kFloat32);
    CHECK_THROWS_WITH(
        group().allreduce(t, ReduceOp::kSum)->wait(),
        Catch::Contains("rank 0: " + std::to_string(base) + " elements of Float") &&
            Catch::Contains("rank 1: " + std::to_string(base + 1) + " elements of Float") &&
            Catch::Contains("same number of elements"));
  }
  // The group is still usable afterwards.
  at::Tensor t = torch::full({20000}, static_cast<double>(rank), torch::kFloat32);
  group().allreduce(t, ReduceOp::kSum)->wait();
  CHECK(torch::equal(t, torch::full({20000}, world * (world - 1) / 2.0, torch::kFloat32)));
}

TEST_CASE("released reduction buffers unmap their shared memory", "[mpi]") {
  const int before = shared_mappings();
  for (int i = 0; i < 40; ++i) {
    at::Tensor buffer = group().allocate_reduction_buffer(1 << 20, torch::kFloat32);
    buffer.fill_(1.0);
    group().allreduce(buffer, ReduceOp::kSum)->wait();
    CHECK(buffer[12345].item<float>() == static_cast<float>(group().size()));
    if (shm_expected()) CHECK(shared_mappings() == before + 1);
  }
  // The communication thread drops its handle of the last operation just after the caller woke.
  for (int i = 0; i < 100 && shared_mappings() != before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(shared_mappings() == before);
}

TEST_CASE("ACCEL_SHM_ALLREDUCE values other than a switch are refused, naming the value", "[mpi]") {
  const char* saved = std::getenv("ACCEL_SHM_ALLREDUCE");
  const std::string restore = saved == nullptr ? "" : saved;
  setenv("ACCEL_SHM_ALLREDUCE", "maybe", 1);
  CHECK_THROWS_WITH(accel::MpiGroup(), Catch::Contains("ACCEL_SHM_ALLREDUCE='maybe'"));
  if (saved == nullptr) {
    unsetenv("ACCEL_SHM_ALLREDUCE");
  } else {
    setenv("ACCEL_SHM_ALLREDUCE", restore.c_str(), 1);
  }
}
