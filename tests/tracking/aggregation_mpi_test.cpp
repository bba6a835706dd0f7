// MetricAggregator with sync_dist over real MPI (run under mpiexec with 2 and 3 ranks): the synced
// epoch values equal the values computed locally from the union of every rank's logs, every rank
// gets the same bits, and the whole epoch costs one MPI_Allreduce per reduction kind.
#include <mpi.h>

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "accel/tracking/aggregation.hpp"
#include "mpi_collectives.hpp"
#include "reduction_expectations.hpp"

using accel::MetricAggregator;
using accel::Phase;
using accel::Values;
using accel::test::MpiCollectives;

namespace {

double scalar(const Values& values, const std::string& key) {
  const auto* v = values.find(key);
  if (v == nullptr) FAIL("missing key " << key);
  return v->as_double();
}

// True when every rank holds exactly the same bits in `x`.
bool same_on_every_rank(double x) {
  double hi = x, lo = x;
  MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
  return hi == x && lo == x;
}

const char* const kKinds[] = {"mean", "sum", "max", "min"};
constexpr int kMetrics = 16;

// What rank r logs: metric m at step s, and the batch size of that step. Ranks run different
// numbers of steps (uneven data), so the union is not a multiple of one rank's logs.
int steps_of(int rank) {
  return 5 + 2 * rank;
}
double value_of(int rank, int m, int s) {
  return 0.5 * m - 1.25 * rank + 0.75 * s * (rank + 1);
}
int64_t batch_of(int rank, int s) {
  return 8 + 3 * rank + (s % 3);
}

}  // namespace

TEST_CASE("epoch values over MPI equal the union of every rank's logs, in 2 collective calls") {
  MpiCollectives mpi;
  MetricAggregator agg;
  const int rank = mpi.rank();
  for (int s = 0; s < steps_of(rank); ++s) {
    for (int m = 0; m < kMetrics; ++m) {
      agg.log("val/m" + std::to_string(m), value_of(rank, m, s),
              {.reduce_fx = kKinds[m % 4], .sync_dist = true, .batch_size = batch_of(rank, s)},
              Phase::validation);
    }
    agg.log("val/rank", static_cast<double>(rank), {}, Phase::validation);  // not synced
  }
  const Values epoch = agg.epoch_end(&mpi);

  // One MPI_Allreduce(MAX) carrying max, min and the consistency check; one MPI_Allreduce(SUM).
  REQUIRE(mpi.calls() == std::array<int, 3>{1, 1, 0});
  REQUIRE(epoch.size() == kMetrics + 1);
  REQUIRE(scalar(epoch, "val/rank") == static_cast<double>(rank));
  for (int m = 0; m < kMetrics; ++m) {
    const auto expected = accel::test::expected_reductions(
        mpi.world_size(), steps_of, [m](int q, int s) { return value_of(q, m, s); }, batch_of);
    const std::string key = "val/m" + std::to_string(m);
    INFO("rank " << rank << " of " << mpi.world_size() << ", " << key << " (" << kKinds[m % 4]
                 << ")");
    REQUIRE(scalar(epoch, key) == Approx(expected[m % 4]).epsilon(1e-12));
    REQUIRE(same_on_every_rank(scalar(epoch, key)));
  }
}

TEST_CASE("synced step values over MPI: one call per kind per emitted step") {
  MpiCollectives mpi;
  MetricAggregator agg({.log_every_n_steps = 3});
  const int rank = mpi.rank();
  const int n = mpi.world_size();
  for (int s = 0; s < 6; ++s) {
    agg.log("train/loss", 1.0 + rank + s, {.sync_dist = true, .batch_size = rank + 1});
    agg.log("train/tokens", 100.0 * (rank + 1), {.reduce_fx = "sum", .sync_dist = true});
    const Values v = agg.step_values(s, &mpi);
    if (s == 5) {
      double weighted = 0, weights = 0;
      for (int q = 0; q < n; ++q) {
        weighted += (1.0 + q + s) * (q + 1);
        weights += q + 1;
      }
      REQUIRE(scalar(v, "train/loss") == Approx(weighted / weights).epsilon(1e-12));
      REQUIRE(scalar(v, "train/tokens") == 100.0 * n * (n + 1) / 2);
    }
  }
  REQUIRE(mpi.calls() == std::array<int, 3>{2, 2, 0});  // steps 2 and 5
}

TEST_CASE("ranks that log different sync_dist metrics all fail with DistributedError, no hang") {
  MpiCollectives mpi;
  MetricAggregator agg;
  agg.log(mpi.rank() == 1 ? "val/b" : "val/a", 1.0, {.sync_dist = true}, Phase::validation);
  REQUIRE_THROWS_AS(agg.epoch_end(&mpi), accel::DistributedError);
  // Every rank is still in step: a later collective completes.
  REQUIRE(same_on_every_rank(42.0));
}
