// MetricAggregator: Lightning's logging model (defaults per phase, suffixes, log_every_n_steps,
// reductions, sync_dist batching) and its bad-input errors.
#include "accel/tracking/aggregation.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <barrier>
#include <catch2/catch.hpp>
#include <cmath>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "reduction_expectations.hpp"

using accel::LogOptions;
using accel::MetricAggregator;
using accel::Phase;
using accel::Values;

namespace {

double scalar(const Values& values, std::string_view key) {
  const auto* v = values.find(key);
  if (v == nullptr) FAIL("missing key " << key);
  return v->as_double();
}

std::vector<std::string> keys(const Values& values) {
  std::vector<std::string> out;
  for (const auto& [key, value] : values) out.push_back(key);
  return out;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "<no exception>";
}

// N ranks in one process, one thread each; reductions are exact element-wise sum/max/min over the
// ranks' buffers. Counts the calls of each kind per rank, and records buffers of unequal length.
class InProcessGroup {
 public:
  explicit InProcessGroup(int size) : size_(size), barrier_(size), slots_(size), calls_(size) {}

  class Rank final : public accel::Collectives {
   public:
    Rank(InProcessGroup& group, int rank) : group_(group), rank_(rank) {}
    int rank() const override { return rank_; }
    int world_size() const override { return group_.size_; }
    void allreduce_sum(std::span<double> v) override { group_.reduce(rank_, v, 0); }
    void allreduce_max(std::span<double> v) override { group_.reduce(rank_, v, 1); }
    void allreduce_min(std::span<double> v) override { group_.reduce(rank_, v, 2); }

   private:
    InProcessGroup& group_;
    int rank_;
  };

  // Runs body(rank, collectives) on every rank concurrently; rethrows nothing, returns the messages
  // of exceptions per rank ("" when none).
  std::vector<std::string> run(const std::function<void(int, accel::Collectives&)>& body) {
    std::vector<std::string> errors(size_);
    std::vector<std::thread> threads;
    for (int r = 0; r < size_; ++r) {
      threads.emplace_back([&, r] {
        Rank rank(*this, r);
        try {
          body(r, rank);
        } catch (const std::exception& e) {
          errors[r] = e.what();
        }
      });
    }
    for (auto& t : threads) t.join();
    return errors;
  }

  // calls(rank)[kind]: kind 0 sum, 1 max, 2 min.
  std::array<int, 3> calls(int rank) const { return calls_[rank]; }
  bool saw_length_mismatch() const { return length_mismatch_; }

 private:
  void reduce(int rank, std::span<double> values, int kind) {
    ++calls_[rank][kind];
    slots_[rank] = values;
    barrier_.arrive_and_wait();
    std::vector<double> result(values.begin(), values.end());
    for (int r = 0; r < size_; ++r) {
      if (slots_[r].size() != values.size()) {
        length_mismatch_ = true;
        continue;
      }
      if (r == rank) continue;
      for (std::size_t i = 0; i < values.size(); ++i) {
        const double other = slots_[r][i];
        if (kind == 0) result[i] += other;
        if (kind == 1) result[i] = std::max(result[i], other);
        if (kind == 2) result[i] = std::min(result[i], other);
      }
    }
    barrier_.arrive_and_wait();
    std::copy(result.begin(), result.end(), values.begin());
  }

  int size_;
  std::barrier<> barrier_;
  std::vector<std::span<double>> slots_;
  std::vector<std::array<int, 3>> calls_;
  std::atomic<bool> length_mismatch_{false};
};

}  // namespace

TEST_CASE("train phase defaults: on_step only, emitted on Lightning's (step + 1) % n == 0 rule") {
  MetricAggregator agg;  // log_every_n_steps = 50
  REQUIRE(agg.log_every_n_steps() == 50);
  std::vector<int64_t> emitted;
  for (int64_t step = 0; step < 150; ++step) {
    agg.log("loss", static_cast<double>(step));
    Values v = agg.step_values(step);
    if (!v.empty()) {
      emitted.push_back(step);
      REQUIRE(keys(v) == std::vector<std::string>{"loss"});  // no suffix: on_step only
      REQUIRE(scalar(v, "loss") == static_cast<double>(step));
    }
  }
  REQUIRE(emitted == std::vector<int64_t>{49, 99, 149});
  REQUIRE(agg.epoch_end().empty());  // on_epoch is false by default in train
  REQUIRE(agg.should_log_step(49));
  REQUIRE_FALSE(agg.should_log_step(50));
  REQUIRE_FALSE(agg.should_log_step(0));
}

TEST_CASE("log_every_n_steps = 1 emits every step, 0 never, negative is rejected") {
  MetricAggregator every({.log_every_n_steps = 1});
  MetricAggregator never({.log_every_n_steps = 0});
  for (int64_t step = 0; step < 5; ++step) {
    every.log("x", 1.0);
    never.log("x", 1.0);
    REQUIRE(every.step_values(step).size() == 1);
    REQUIRE(never.step_values(step).empty());
  }
  never.log("x", 7.0);
  REQUIRE(scalar(never.step_values(3, nullptr, /*force=*/true), "x") == 7.0);
  REQUIRE_THROWS_AS(MetricAggregator({.log_every_n_steps = -1}), accel::InvalidValue);
}

TEST_CASE(
    "step values: last value since the previous step_values call; stale ones are not resent") {
  MetricAggregator agg({.log_every_n_steps = 2});
  agg.log("a", 1.0);
  agg.log("a", 2.0);  // the last value of the step wins
  agg.log("b", 5.0);
  REQUIRE(agg.step_values(0).empty());  // not due; clears pending
  agg.log("a", 3.0);
  Values v = agg.step_values(1);
  REQUIRE(keys(v) == std::vector<std::string>{"a"});  // b was not logged since step 0
  REQUIRE(scalar(v, "a") == 3.0);
  agg.log("c", 0.1, {.batch_size = 3});
  REQUIRE(scalar(agg.step_values(3), "c") == 0.1);  // the logged value itself, bit for bit
}

TEST_CASE("validation and test default to on_epoch with a batch-size-weighted mean") {
  for (Phase phase : {Phase::validation, Phase::test}) {
    MetricAggregator agg({.log_every_n_steps = 1});
    agg.log("val/acc", 1.0, {.batch_size = 10}, phase);
    agg.log("val/acc", 4.0, {.batch_size = 30}, phase);
    REQUIRE(agg.step_values(0).empty());  // on_step is false by default
    Values epoch = agg.epoch_end();
    REQUIRE(keys(epoch) == std::vector<std::string>{"val/acc"});
    REQUIRE(scalar(epoch, "val/acc") == Approx((1.0 * 10 + 4.0 * 30) / 40.0));  // 3.25
  }
}

TEST_CASE("on_step and on_epoch together: _step and _epoch suffixes") {
  MetricAggregator agg({.log_every_n_steps = 1});
  LogOptions both{.on_step = true, .on_epoch = true};
  agg.log("loss", 2.0, both);
  REQUIRE(keys(agg.step_values(0)) == std::vector<std::string>{"loss_step"});
  agg.log("loss", 4.0, both);
  REQUIRE(scalar(agg.step_values(1), "loss_step") == 4.0);
  Values epoch = agg.epoch_end();
  REQUIRE(keys(epoch) == std::vector<std::string>{"loss_epoch"});
  REQUIRE(scalar(epoch, "loss_epoch") == 3.0);
}

TEST_CASE("reductions: sum, max, min, custom; an epoch resets the accumulation") {
  MetricAggregator agg;
  auto median = [](std::span<const double> values, std::span<const double> weights) {
    REQUIRE(values.size() == weights.size());
    std::vector<double> sorted(values.begin(), values.end());
    std::sort(sorted.begin(), sorted.end());
    return sorted[sorted.size() / 2];
  };
  const std::vector<double> xs{3.0, -1.0, 10.0, 2.5, 7.0};
  for (double x : xs) {
    agg.log("sum", x, {.on_step = false, .on_epoch = true, .reduce_fx = "sum"});
    agg.log("max", x, {.on_step = false, .on_epoch = true, .reduce_fx = "max"});
    agg.log("min", x, {.on_step = false, .on_epoch = true, .reduce_fx = "MIN"});
    agg.log("avg", x, {.on_step = false, .on_epoch = true, .reduce_fx = "avg"});
    agg.log("median", x, {.on_step = false, .on_epoch = true, .reduce_fx = {median, "median"}});
  }
  Values epoch = agg.epoch_end();
  REQUIRE(keys(epoch) == std::vector<std::string>{"sum", "max", "min", "avg", "median"});
  REQUIRE(scalar(epoch, "sum") == 21.5);
  REQUIRE(scalar(epoch, "max") == 10.0);
  REQUIRE(scalar(epoch, "min") == -1.0);
  REQUIRE(scalar(epoch, "avg") == Approx(4.3));
  REQUIRE(scalar(epoch, "median") == 3.0);

  agg.log("max", -5.0, {.on_step = false, .on_epoch = true, .reduce_fx = "max"});
  Values second = agg.epoch_end();
  REQUIRE(keys(second) == std::vector<std::string>{"max"});  // the others were not logged again
  REQUIRE(scalar(second, "max") == -5.0);
}

TEST_CASE("epoch_end(phase) ends one phase and keeps the other's accumulation") {
  MetricAggregator agg;
  agg.log("train/loss", 1.0, {.on_epoch = true});
  agg.log("val/loss", 5.0, {}, Phase::validation);
  Values val = agg.epoch_end(Phase::validation);
  REQUIRE(keys(val) == std::vector<std::string>{"val/loss"});
  agg.log("train/loss", 3.0, {.on_epoch = true});
  Values train = agg.epoch_end(Phase::train);
  REQUIRE(keys(train) == std::vector<std::string>{"train/loss_epoch"});
  REQUIRE(scalar(train, "train/loss_epoch") == 2.0);
}

TEST_CASE("logger=false reaches the progress bar and callback_metrics but not trackers") {
  MetricAggregator agg({.log_every_n_steps = 1});
  agg.log("lr", 0.1, {.prog_bar = true, .logger = false});
  agg.log("loss", 0.5, {.on_step = true, .on_epoch = true, .prog_bar = true});
  agg.log("acc", 0.9, {}, Phase::validation);
  REQUIRE(keys(agg.step_values(0)) == std::vector<std::string>{"loss_step"});
  Values bar = agg.prog_bar_values();
  REQUIRE(keys(bar) == std::vector<std::string>{"lr", "loss_step"});
  REQUIRE(scalar(bar, "lr") == 0.1);

  Values callback = agg.callback_metrics();  // before epoch end: train step values only
  REQUIRE(keys(callback) == std::vector<std::string>{"lr", "loss", "loss_step"});

  agg.log("loss", 1.5, {.on_step = true, .on_epoch = true, .prog_bar = true});
  Values epoch = agg.epoch_end();
  REQUIRE(keys(epoch) == std::vector<std::string>{"loss_epoch", "acc"});
  bar = agg.prog_bar_values();
  REQUIRE(keys(bar) == std::vector<std::string>{"lr", "loss_step", "loss_epoch"});
  REQUIRE(scalar(bar, "loss_step") == 1.5);
  REQUIRE(scalar(bar, "loss_epoch") == 1.0);
  callback = agg.callback_metrics();
  REQUIRE(keys(callback) ==
          std::vector<std::string>{"lr", "loss", "loss_step", "loss_epoch", "acc"});
  REQUIRE(scalar(callback, "loss") == 1.0);  // the epoch value came last
  REQUIRE(scalar(callback, "acc") == 0.9);
}

TEST_CASE("log_dict logs every scalar; a non-scalar rejects the whole call") {
  MetricAggregator agg({.log_every_n_steps = 1});
  agg.log_dict({{"a", 1.0}, {"b", 2}});
  Values v = agg.step_values(0);
  REQUIRE(keys(v) == std::vector<std::string>{"a", "b"});
  REQUIRE(scalar(v, "b") == 2.0);
  std::string msg = message_of([&] { agg.log_dict({{"c", 1.0}, {"text", "hello"}}); });
  REQUIRE_THAT(msg, Catch::Contains("'text'") && Catch::Contains("string"));
  REQUIRE(agg.step_values(1).empty());  // "c" was not logged either
}

TEST_CASE("NaN and Inf are kept and propagate through every reduction") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  MetricAggregator agg({.log_every_n_steps = 1});
  for (const char* fx : {"mean", "sum", "max", "min"}) {
    LogOptions o{.on_step = true, .on_epoch = true, .reduce_fx = fx};
    agg.log(fx, 1.0, o);
    agg.log(fx, nan, o);
    agg.log(fx, 2.0, o);
  }
  agg.log("inf", inf, {.on_epoch = true, .reduce_fx = "max"});
  REQUIRE(std::isnan(scalar(agg.step_values(0), "max_step")) == false);  // last value: 2.0
  Values epoch = agg.epoch_end();
  for (const char* fx : {"mean", "sum", "max", "min"}) {
    INFO(fx);
    REQUIRE(std::isnan(scalar(epoch, std::string(fx) + "_epoch")));
  }
  REQUIRE(scalar(epoch, "inf_epoch") == inf);
}

TEST_CASE("bad input: typed errors that name the metric and the fix") {
  MetricAggregator agg;
  std::string msg = message_of([&] { agg.log("", 1.0); });
  REQUIRE_THAT(msg, Catch::Contains("non-whitespace"));
  REQUIRE_THROWS_AS(agg.log(" \t", 1.0), accel::InvalidValue);

  msg = message_of([&] { agg.log("x", 1.0, {.on_step = false, .on_epoch = false}); });
  REQUIRE_THAT(msg, Catch::Contains("'x'") && Catch::Contains("on_step"));
  REQUIRE_THROWS_AS(agg.log("x", 1.0, {.on_step = false, .on_epoch = false}), accel::InvalidValue);

  msg = message_of([&] { agg.log("bs", 1.0, {.batch_size = 0}); });
  REQUIRE_THAT(msg, Catch::Contains("'bs'") && Catch::Contains("batch_size = 0"));

  msg = message_of([&] {
    LogOptions o{.reduce_fx = "median"};
    (void)o;
  });
  REQUIRE_THAT(msg, Catch::Contains("'median'") && Catch::Contains("\"mean\"") &&
                        Catch::Contains("\"sum\"") && Catch::Contains("\"max\"") &&
                        Catch::Contains("\"min\""));
  REQUIRE_THROWS_AS(accel::ReduceFx("median"), accel::InvalidValue);
  REQUIRE_THROWS_AS(accel::ReduceFx(accel::ReduceFunction{}), accel::InvalidValue);

  auto first = [](std::span<const double> v, std::span<const double>) { return v[0]; };
  msg = message_of([&] { agg.log("c", 1.0, {.reduce_fx = {first, "first"}, .sync_dist = true}); });
  REQUIRE_THAT(msg, Catch::Contains("'c'") && Catch::Contains("sync_dist"));
  // rank_zero_only is never synchronised, so a custom reduction is fine there.
  REQUIRE_NOTHROW(agg.log(
      "c0", 1.0, {.reduce_fx = {first, "first"}, .sync_dist = true, .rank_zero_only = true}));

  REQUIRE_THROWS_AS(agg.log("p", 1.0, {}, Phase::predict), accel::UsageError);
}

TEST_CASE("a metric keeps its options for the epoch; they may change after epoch_end") {
  MetricAggregator agg;
  agg.log("loss", 1.0, {.on_epoch = true, .batch_size = 4});
  REQUIRE_NOTHROW(
      agg.log("loss", 2.0, {.on_epoch = true, .batch_size = 8}));  // batch size may vary
  std::string msg =
      message_of([&] { agg.log("loss", 1.0, {.on_epoch = true, .reduce_fx = "max"}); });
  REQUIRE_THAT(msg,
               Catch::Contains("'loss'") && Catch::Contains("reduce_fx: mean before, max now"));
  REQUIRE_THROWS_AS(agg.log("loss", 1.0, {.prog_bar = true}), accel::InvalidValue);
  // The same name in another phase is another metric.
  REQUIRE_NOTHROW(agg.log("loss", 1.0, {.reduce_fx = "max"}, Phase::validation));
  agg.epoch_end();
  REQUIRE_NOTHROW(agg.log("loss", 3.0, {.on_epoch = true, .reduce_fx = "max"}));
  REQUIRE(scalar(agg.epoch_end(), "loss_epoch") == 3.0);
}

TEST_CASE("sync_dist: one batched all-reduce per kind for the whole epoch, equal to the union") {
  constexpr int kRanks = 3;
  constexpr int kMetrics = 12;  // 3 of each reduction
  constexpr int kSteps = 7;
  const char* kinds[] = {"mean", "sum", "max", "min"};
  // value of metric m at step s on rank r, and its batch size.
  auto value = [](int r, int m, int s) { return 0.25 * r - 0.5 * m + 1.5 * s + r * s * 0.125; };
  auto batch = [](int r, int s) { return static_cast<int64_t>(1 + r + 2 * s); };

  InProcessGroup group(kRanks);
  std::vector<Values> results(kRanks);
  auto errors = group.run([&](int r, accel::Collectives& c) {
    MetricAggregator agg({.log_every_n_steps = 1000});
    for (int s = 0; s < kSteps; ++s) {
      for (int m = 0; m < kMetrics; ++m) {
        agg.log("m" + std::to_string(m), value(r, m, s),
                {.on_epoch = true,
                 .reduce_fx = kinds[m % 4],
                 .sync_dist = true,
                 .batch_size = batch(r, s)},
                Phase::validation);
      }
      agg.log("local", static_cast<double>(r), {}, Phase::validation);  // not synced
      if (!agg.step_values(s, &c).empty()) throw std::runtime_error("unexpected step values");
    }
    results[r] = agg.epoch_end(&c);
  });
  for (const auto& e : errors) REQUIRE(e.empty());
  REQUIRE_FALSE(group.saw_length_mismatch());

  for (int r = 0; r < kRanks; ++r) {
    // Exactly one max (carrying max, min and the consistency check) and one sum (means, sums).
    REQUIRE(group.calls(r) == std::array<int, 3>{1, 1, 0});
    REQUIRE(results[r].size() == kMetrics + 1);
    REQUIRE(scalar(results[r], "local") == static_cast<double>(r));
    for (int m = 0; m < kMetrics; ++m) {
      const auto expected = accel::test::expected_reductions(
          kRanks, [](int) { return kSteps; }, [&, m](int q, int s) { return value(q, m, s); },
          batch);
      INFO("rank " << r << " metric m" << m);
      REQUIRE(scalar(results[r], "m" + std::to_string(m)) == Approx(expected[m % 4]));
    }
  }
}

TEST_CASE("sync_dist on_step metrics are synced once per emitted step, not per log call") {
  InProcessGroup group(2);
  std::vector<Values> emitted(2);
  auto errors = group.run([&](int r, accel::Collectives& c) {
    MetricAggregator agg({.log_every_n_steps = 4});
    for (int s = 0; s < 8; ++s) {
      agg.log("loss", 10.0 * r + s, {.sync_dist = true, .batch_size = r + 1});
      agg.log("peak", 10.0 * r + s, {.reduce_fx = "max", .sync_dist = true});
      Values v = agg.step_values(s, &c);
      if (s == 7) emitted[r] = v;
    }
  });
  for (const auto& e : errors) REQUIRE(e.empty());
  for (int r = 0; r < 2; ++r) {
    REQUIRE(group.calls(r) == std::array<int, 3>{2, 2, 0});  // steps 3 and 7 only
    // step 7: rank 0 logged 7 (weight 1), rank 1 logged 17 (weight 2).
    REQUIRE(scalar(emitted[r], "loss") == Approx((7.0 * 1 + 17.0 * 2) / 3.0));
    REQUIRE(scalar(emitted[r], "peak") == 17.0);
  }
}

TEST_CASE("sync_dist: ranks that logged different metrics all get a DistributedError") {
  InProcessGroup group(3);
  auto errors = group.run([&](int r, accel::Collectives& c) {
    MetricAggregator agg;
    agg.log(r == 1 ? "b" : "a", 1.0, {.sync_dist = true}, Phase::validation);
    agg.epoch_end(&c);
  });
  for (const auto& e : errors) {
    REQUIRE_THAT(e, Catch::Contains("different sync_dist metrics"));
  }
  REQUIRE(group.calls(0) == std::array<int, 3>{0, 1, 0});  // stopped after the checking call
}

TEST_CASE("sync_dist NaN on one rank makes the synced value NaN for max and mean") {
  InProcessGroup group(2);
  std::vector<Values> results(2);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto errors = group.run([&](int r, accel::Collectives& c) {
    MetricAggregator agg;
    agg.log("max", r == 0 ? nan : 1.0, {.reduce_fx = "max", .sync_dist = true}, Phase::test);
    agg.log("min", r == 0 ? 5.0 : 2.0, {.reduce_fx = "min", .sync_dist = true}, Phase::test);
    agg.log("mean", r == 1 ? nan : 1.0, {.sync_dist = true}, Phase::test);
    results[r] = agg.epoch_end(&c);
  });
  for (const auto& e : errors) REQUIRE(e.empty());
  for (int r = 0; r < 2; ++r) {
    REQUIRE(std::isnan(scalar(results[r], "max")));
    REQUIRE(scalar(results[r], "min") == 2.0);
    REQUIRE(std::isnan(scalar(results[r], "mean")));
  }
}

TEST_CASE("no collective call without synced metrics; rank_zero_only is never synced") {
  InProcessGroup group(2);
  auto errors = group.run([&](int r, accel::Collectives& c) {
    MetricAggregator agg({.log_every_n_steps = 1});
    agg.log("plain", 1.0, {.on_epoch = true});
    if (r == 0)
      agg.log("only0", 1.0, {.on_epoch = true, .sync_dist = true, .rank_zero_only = true});
    agg.step_values(0, &c);
    Values epoch = agg.epoch_end(&c);
    if (r == 0 && !(epoch.contains("only0_epoch") && epoch.contains("plain_epoch"))) {
      throw std::runtime_error("rank 0 misses its epoch values");
    }
  });
  for (const auto& e : errors) REQUIRE(e.empty());
  REQUIRE(group.calls(0) == std::array<int, 3>{0, 0, 0});
  REQUIRE(group.calls(1) == std::array<int, 3>{0, 0, 0});
}

TEST_CASE("a null or single-process Collectives reduces locally") {
  accel::SingleProcessCollectives single;
  MetricAggregator a, b;
  for (auto* agg : {&a, &b}) {
    agg->log("x", 2.0, {.sync_dist = true, .batch_size = 1}, Phase::validation);
    agg->log("x", 5.0, {.sync_dist = true, .batch_size = 2}, Phase::validation);
  }
  REQUIRE(scalar(a.epoch_end(nullptr), "x") == 4.0);
  REQUIRE(scalar(b.epoch_end(&single), "x") == 4.0);
}
