// Training-thread cost of accel::TrackerHub::log with 10 scalars, per call, for one tracker setup.
//
//   log_latency_bench <setup> <directory> <iterations>
//   setup: csv | jsonl | csv+jsonl+slow   ("slow" is a tracker that takes 10 ms per log call)
//          | wandb | csv+wandb              (the wandb tracker in the mode the environment gives:
//                                            scripts/bench/wandb_log sets WANDB_MODE=offline)
//          | comet_ml | csv+comet_ml        (the comet_ml tracker in the mode the environment gives:
//                                            scripts/bench/comet_log sets COMET_START_ONLINE)
//
// Prints one JSON line: median/p99/p99.9/max/mean nanoseconds of hub.log(values, step) over the
// timed iterations (after 1,000 warm-up calls), what end_training reported, and the wall time of
// the whole run (every call, warm-up included, through end_training: rows per second).
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "accel/tracking/hub.hpp"

namespace {

using Clock = std::chrono::steady_clock;

// A deliberately slow backend: every log call takes `delay` (10 ms while timing).
class SlowTracker final : public accel::GeneralTracker {
 public:
  std::string name() const override { return "slow"; }
  bool requires_logging_directory() const override { return false; }
  void store_init_configuration(const nlohmann::json&) override {}
  void log(const accel::Values&, std::optional<int64_t>) override {
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us.load()));
  }
  std::atomic<int64_t> delay_us{10'000};
};

double percentile(std::vector<int64_t>& sorted, double p) {
  const auto index = static_cast<std::size_t>(std::ceil(p * double(sorted.size()))) - 1;
  return double(sorted[std::min(index, sorted.size() - 1)]);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr,
                 "usage: %s csv|jsonl|csv+jsonl+slow|wandb|csv+wandb|comet_ml|csv+comet_ml "
                 "<directory> <iterations>\n",
                 argv[0]);
    return 2;
  }
  const std::string setup = argv[1];
  const std::string directory = argv[2];
  const long iterations = std::stol(argv[3]);
  const long warmup = 1000;

  accel::LogWith log_with;
  auto slow = std::make_shared<SlowTracker>();
  if (setup == "csv") {
    log_with = {"csv"};
  } else if (setup == "jsonl") {
    log_with = {"jsonl"};
  } else if (setup == "csv+jsonl+slow") {
    log_with = {"csv", "jsonl", slow};
  } else if (setup == "wandb") {
    log_with = {"wandb"};
  } else if (setup == "csv+wandb") {
    log_with = {"csv", "wandb"};
  } else if (setup == "comet_ml") {
    log_with = {"comet_ml"};
  } else if (setup == "csv+comet_ml") {
    log_with = {"csv", "comet_ml"};
  } else {
    std::fprintf(stderr, "unknown setup '%s'\n", setup.c_str());
    return 2;
  }

  accel::TrackerHubOptions options;
  options.project_dir = directory;
  options.handle_signals = false;
  options.end_training_timeout = std::chrono::minutes(5);
  const auto run_start = Clock::now();
  accel::TrackerHub hub(options);
  hub.init_trackers("bench", {{"lr", 1e-3}, {"batch_size", 64}}, log_with);

  // The 10 scalars of a typical training step; values change every step like real metrics.
  accel::Values values;
  for (int k = 0; k < 10; ++k) values.set(fmt::format("train/metric_{}", k), 0.0);
  std::vector<std::string> keys;
  for (const auto& [key, value] : values) keys.push_back(key);

  std::vector<int64_t> samples;
  samples.reserve(static_cast<std::size_t>(iterations));
  for (long step = 0; step < warmup + iterations; ++step) {
    for (int k = 0; k < 10; ++k)
      values.set(keys[static_cast<std::size_t>(k)], std::sin(0.001 * double(step)) + k);
    const auto t0 = Clock::now();
    hub.log(values, step);
    const auto t1 = Clock::now();
    if (step >= warmup)
      samples.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
  }
  slow->delay_us = 0;  // timing is over: let the slow tracker drain its backlog quickly
  const auto end_start = Clock::now();
  auto report = hub.end_training();
  const auto run_end = Clock::now();
  const double end_seconds = std::chrono::duration<double>(run_end - end_start).count();
  const double run_seconds = std::chrono::duration<double>(run_end - run_start).count();

  std::sort(samples.begin(), samples.end());
  double mean = 0;
  for (auto s : samples) mean += double(s);
  mean /= double(samples.size());
  nlohmann::json delivered = nlohmann::json::object();
  for (const auto& t : report.trackers)
    delivered[t.name] = {{"logged", t.logged}, {"delivered", t.delivered}};
  nlohmann::json out = {{"setup", setup},
                        {"iterations", iterations},
                        {"median_ns", percentile(samples, 0.5)},
                        {"p99_ns", percentile(samples, 0.99)},
                        {"p999_ns", percentile(samples, 0.999)},
                        {"max_ns", double(samples.back())},
                        {"mean_ns", mean},
                        {"end_training_s", end_seconds},
                        {"rows", warmup + iterations},
                        {"run_s", run_seconds},
                        {"complete", report.complete()},
                        {"trackers", delivered}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
