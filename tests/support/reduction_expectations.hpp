#pragma once
// What MetricAggregator's synced values should be, computed locally from every rank's logs: for
// one metric, the batch-weighted mean, the sum, the max and the min of value(rank, step) over every
// step of every rank (the union of the logs, as if one process had logged them all).
#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <limits>

namespace accel::test {

// {mean, sum, max, min} (the order of the reduce_fx kinds "mean", "sum", "max", "min").
inline std::array<double, 4> expected_reductions(
    int ranks, const std::function<int(int rank)>& steps_of,
    const std::function<double(int rank, int step)>& value_of,
    const std::function<int64_t(int rank, int step)>& batch_of) {
  double weighted = 0, weights = 0, sum = 0;
  double hi = -std::numeric_limits<double>::infinity(), lo = -hi;
  for (int q = 0; q < ranks; ++q) {
    for (int s = 0; s < steps_of(q); ++s) {
      const double v = value_of(q, s);
      weighted += v * static_cast<double>(batch_of(q, s));
      weights += static_cast<double>(batch_of(q, s));
      sum += v;
      hi = std::max(hi, v);
      lo = std::min(lo, v);
    }
  }
  return {weighted / weights, sum, hi, lo};
}

}  // namespace accel::test
