// accel::MpiGroup under mpiexec (2 and 3 ranks): every collective's result is compared with the same
// computation done locally from every rank's (deterministic) input.
// clang-format off: torch_catch.hpp must stay the first include (include sorting would move it)
#include "torch_catch.hpp"  // first: see the header
// clang-format on
#include <torch/torch.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "accel/mpi_group.hpp"
#include "accel/state.hpp"
#include "accel/tracking/errors.hpp"
#include "collective_expectations.hpp"

namespace {

using accel::ReduceOp;
using namespace accel::test;  // contribution, expected, check_close, world_group
constexpr auto& group = world_group;

}  // namespace

TEST_CASE("allreduce of every floating type and op equals the local computation", "[mpi]") {
  const int rank = group().rank();
  const int world = group().size();
  REQUIRE(world == accel::State::instance().world_size());
  for (auto type : {torch::kFloat32, torch::kFloat64, torch::kHalf, torch::kBFloat16}) {
    for (auto op :
         {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax, ReduceOp::kMin, ReduceOp::kProduct}) {
      at::Tensor t = contribution(rank, {4, 5}, type);
      auto work = group().allreduce(t, op);
      work->wait();
      CHECK(work->is_completed());
      INFO("op " << accel::to_string(op));
      check_close(t, expected(op, world, {4, 5}, type), type);
      REQUIRE(work->result().size() == 1);
      CHECK(work->result()[0].is_same(t));
    }
  }
}

TEST_CASE("allreduce of integer types is exact; AVG of integers is refused", "[mpi]") {
  const int rank = group().rank();
  const int world = group().size();
  for (auto type : {torch::kInt32, torch::kInt64, torch::kInt8, torch::kUInt8, torch::kInt16}) {
    for (auto op : {ReduceOp::kSum, ReduceOp::kMax, ReduceOp::kMin}) {
      at::Tensor t = contribution(rank, {7}, type);
      group().allreduce(t, op)->wait();
      CHECK(torch::equal(t, expected(op, world, {7}, type).to(type)));
    }
  }
  at::Tensor ints = torch::ones({3}, torch::kInt64);
  CHECK_THROWS_AS(group().allreduce(ints, ReduceOp::kAvg), accel::InvalidValue);
  at::Tensor flags = torch::ones({3}, torch::kBool);
  CHECK_THROWS_WITH(group().allreduce(flags), Catch::Contains("Bool"));
}

TEST_CASE("allreduce writes into non-contiguous tensors (views) and leaves the rest alone",
          "[mpi]") {
  const int rank = group().rank();
  const int world = group().size();
  for (auto type : {torch::kFloat32, torch::kBFloat16}) {
    at::Tensor base = torch::full({6, 4}, -1.0, torch::TensorOptions().dtype(type));
    at::Tensor view = base.t().narrow(1, 1, 3);  // [4, 3], strided
    REQUIRE_FALSE(view.is_contiguous());
    view.copy_(contribution(rank, {4, 3}, type));
    group().allreduce(view, ReduceOp::kSum)->wait();
    check_close(view, expected(ReduceOp::kSum, world, {4, 3}, type), type);
    // Rows 0 and 4..5 of base (outside the view) are untouched.
    CHECK(torch::equal(base.narrow(0, 0, 1), torch::full({1, 4}, -1.0, type)));
    CHECK(torch::equal(base.narrow(0, 4, 2), torch::full({2, 4}, -1.0, type)));
  }
}

TEST_CASE("zero-element tensors complete and stay empty", "[mpi]") {
  for (auto shape : {std::vector<std::int64_t>{0}, std::vector<std::int64_t>{3, 0}}) {
    at::Tensor t = torch::empty(shape, torch::kFloat32);
    group().allreduce(t)->wait();
    CHECK(t.numel() == 0);
    group().broadcast(t, 0)->wait();
    CHECK(t.sizes() == at::IntArrayRef(shape));
  }
}

TEST_CASE("many operations in flight complete in order, whatever order they are waited for",
          "[mpi]") {
  const int rank = group().rank();
  const int world = group().size();
  std::vector<at::Tensor> tensors;
  std::vector<accel::WorkPtr> works;
  for (int i = 0; i < 20; ++i) {
    tensors.push_back(torch::full({1000 + i}, static_cast<double>(rank + i), torch::kFloat64));
    works.push_back(group().allreduce(tensors.back()));
  }
  for (int i = 19; i >= 0; --i) {
    CHECK(works[i]->wait(std::chrono::milliseconds(60000)));
    const double sum = world * i + world * (world - 1) / 2.0;
    CHECK(torch::equal(tensors[i], torch::full({1000 + i}, sum, torch::kFloat64)));
  }
}

TEST_CASE("broadcast copies root's tensor, any dtype, non-contiguous included", "[mpi]") {
  const int rank = group().rank();
  const int world = group().size();
  const int root = world - 1;
  for (auto type : {torch::kFloat32, torch::kBFloat16, torch::kInt64, torch::kBool}) {
    at::Tensor base = torch::zeros({5, 6}, type);
    at::Tensor view = base.t();
    if (rank == root) view.copy_((torch::arange(30).reshape({6, 5}).remainder(2)).to(type));
    group().broadcast(view, root)->wait();
    CHECK(torch::equal(view, (torch::arange(30).reshape({6, 5}).remainder(2)).to(type)));
  }
  at::Tensor t = torch::zeros({2});
  CHECK_THROWS_AS(group().broadcast(t, world), accel::InvalidValue);
  CHECK_THROWS_AS(group().broadcast(t, -1), accel::InvalidValue);
}

TEST_CASE("allgather with uneven first dimension returns every rank's tensor in rank order",
          "[mpi]") {
  const int rank = group().rank();
  const int world = group().size();
  // Rank r contributes r rows (rank 0: none) of [r, r, r].
  at::Tensor mine = torch::full({rank, 3}, static_cast<double>(rank), torch::kFloat32);
  auto work = group().allgather(mine);
  work->wait();
  const auto& parts = work->result();
  REQUIRE(parts.size() == static_cast<std::size_t>(world));
  for (int r = 0; r < world; ++r) {
    CHECK(parts[r].sizes() == at::IntArrayRef({r, 3}));
    CHECK(torch::equal(parts[r], torch::full({r, 3}, static_cast<double>(r), torch::kFloat32)));
  }
  CHECK(torch::cat(parts).size(0) == world * (world - 1) / 2);

  // Scalars count as one row; non-contiguous input is fine.
  auto scalars = group().allgather(torch::tensor(static_cast<std::int64_t>(rank * 10)));
  scalars->wait();
  CHECK(torch::equal(torch::cat(scalars->result()), torch::arange(world, torch::kLong) * 10));
  at::Tensor strided = torch::arange(8, torch::kFloat64).reshape({2, 4}).t();  // [4, 2]
  auto s = group().allgather(strided);
  s->wait();
  for (const auto& part : s->result()) CHECK(torch::equal(part, strided));
}

TEST_CASE("allgather with different trailing shapes fails on every rank, naming both", "[mpi]") {
  const int rank = group().rank();
  at::Tensor mine = torch::zeros({2, rank == 1 ? 4 : 3});
  auto work = group().allgather(mine);
  CHECK_THROWS_WITH(work->wait(), Catch::Contains("rank 1 passed Float [2, 4]") &&
                                      Catch::Contains("rank 0 passed Float [2, 3]"));
  // The group is still usable afterwards.
  at::Tensor ok = torch::ones({1});
  group().allreduce(ok)->wait();
  CHECK(ok.item<float>() == static_cast<float>(group().size()));
}

TEST_CASE("barrier completes on every rank", "[mpi]") {
  auto work = group().barrier();
  work->wait();
  CHECK(work->is_completed());
  CHECK(work->result().empty());
}

TEST_CASE("object collectives move bytes, including empty and binary ones", "[mpi]") {
  const int rank = group().rank();
  const int world = group().size();
  const std::string binary("a\0b\xff", 4);
  CHECK(group().broadcast_object(rank == 0 ? binary : std::string("ignored"), 0) == binary);
  CHECK(group().broadcast_object(rank == 1 ? std::string() : std::string("x"), 1).empty());

  const auto gathered = group().gather_object("from " + std::to_string(rank), 0);
  if (rank == 0) {
    REQUIRE(gathered.size() == static_cast<std::size_t>(world));
    for (int r = 0; r < world; ++r) CHECK(gathered[r] == "from " + std::to_string(r));
  } else {
    CHECK(gathered.empty());
  }

  const auto all = group().allgather_object(std::string(static_cast<std::size_t>(rank), 'z'));
  REQUIRE(all.size() == static_cast<std::size_t>(world));
  for (int r = 0; r < world; ++r) CHECK(all[r] == std::string(static_cast<std::size_t>(r), 'z'));

  std::vector<std::string> per_rank;
  if (rank == 0) {
    for (int r = 0; r < world; ++r) per_rank.push_back("for " + std::to_string(r));
  }
  CHECK(group().scatter_object(per_rank, 0) == "for " + std::to_string(rank));
}

TEST_CASE("scatter_object with the wrong number of entries fails on every rank", "[mpi]") {
  const int rank = group().rank();
  if (rank == 0) {
    CHECK_THROWS_AS(group().scatter_object({"only one"}, 0), accel::InvalidValue);
  } else {
    CHECK_THROWS_WITH(group().scatter_object({}, 0),
                      Catch::Contains("did not pass one entry per rank"));
  }
}

TEST_CASE("ACCEL_COLLECTIVE_TIMEOUT is read in seconds and bad values are refused", "[mpi]") {
  setenv("ACCEL_COLLECTIVE_TIMEOUT", "2.5", 1);
  CHECK(accel::collective_timeout_from_env() == std::chrono::milliseconds(2500));
  setenv("ACCEL_COLLECTIVE_TIMEOUT", "ten", 1);
  CHECK_THROWS_WITH(accel::collective_timeout_from_env(), Catch::Contains("'ten'"));
  setenv("ACCEL_COLLECTIVE_TIMEOUT", "-3", 1);
  CHECK_THROWS_AS(accel::collective_timeout_from_env(), accel::InvalidValue);
  unsetenv("ACCEL_COLLECTIVE_TIMEOUT");
  CHECK(accel::collective_timeout_from_env() == std::chrono::minutes(30));
  CHECK(group().timeout() == std::chrono::minutes(30));
}

TEST_CASE("a timed wait returns on time while a peer is late, then the operation completes",
          "[mpi]") {
  const int rank = group().rank();
  const int world = group().size();
  for (std::int64_t n : {256, 1 << 20}) {  // small (may run on the caller) and large
    group().barrier()->wait();
    if (rank == 1) std::this_thread::sleep_for(std::chrono::milliseconds(400));
    at::Tensor t = torch::full({n}, 1.0, torch::kFloat32);
    auto work = group().allreduce(t, ReduceOp::kSum);
    if (rank == 0 && !work->is_completed()) {
      const auto start = std::chrono::steady_clock::now();
      CHECK_FALSE(work->wait(std::chrono::milliseconds(20)));
      CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(200));
    }
    work->wait();
    CHECK(torch::equal(t, torch::full({n}, static_cast<double>(world), torch::kFloat32)));
  }
}
