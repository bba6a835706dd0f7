// What a dead tracking server costs the training loop, and what it leaves behind.
//
//   dead_backend_bench <project dir> <calls> <queue bytes>
//
// Logs <calls> records of 10 scalars through TrackerHub with the mlflow tracker at
// MLFLOW_TRACKING_URI (the caller points it at a closed port, or at a live server), timing every
// call, sampling the resident memory every 5 ms, then ends training (3 s timeout). Prints one JSON
// line: latency percentiles (ns), calls over 1 ms, peak RSS above the start, wall time, and the end
// report (delivered, journaled, lost, the journal's path).
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "accel/tracking/hub.hpp"
#include "accel/tracking/warnings.hpp"

namespace {

using Clock = std::chrono::steady_clock;

std::size_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

double percentile(const std::vector<int64_t>& sorted, double p) {
  const auto index = static_cast<std::size_t>(std::ceil(p * double(sorted.size()))) - 1;
  return double(sorted[std::min(index, sorted.size() - 1)]);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s <project dir> <calls> <queue bytes>\n", argv[0]);
    return 2;
  }
  const std::string project = argv[1];
  const int64_t calls = std::stoll(argv[2]);
  accel::set_warning_handler([](std::string_view) {});  // the outage warnings are expected

  accel::TrackerHubOptions options;
  options.project_dir = project;
  options.handle_signals = false;
  options.queue_bytes = std::stoull(argv[3]);
  options.end_training_timeout = std::chrono::seconds(3);
  const std::size_t baseline = rss_bytes();
  std::atomic<bool> stop{false};
  std::atomic<std::size_t> peak{baseline};
  std::thread sampler([&] {
    while (!stop) {
      peak = std::max(peak.load(), rss_bytes());
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });

  std::vector<std::string> keys;
  for (int k = 0; k < 10; ++k) keys.push_back(fmt::format("train/metric_{}", k));
  std::vector<int64_t> samples;
  samples.reserve(static_cast<std::size_t>(calls));
  accel::EndTrainingReport report;
  const auto begin = Clock::now();
  {
    accel::TrackerHub hub(options);
    hub.init_trackers("dead_backend", {{"lr", 1e-3}}, {"mlflow"},
                      {{"mlflow", {{"retry", {{"max_attempts", 1}}}}}});
    for (int64_t step = 0; step < calls; ++step) {
      accel::Values values;
      for (int k = 0; k < 10; ++k) values.set(keys[k], std::sin(0.001 * double(step)) + k);
      const auto t0 = Clock::now();
      hub.log(std::move(values), step);
      samples.push_back((Clock::now() - t0).count());
    }
    report = hub.end_training();
  }
  const double wall = std::chrono::duration<double>(Clock::now() - begin).count();
  stop = true;
  sampler.join();
  const int64_t over_1ms =
      std::count_if(samples.begin(), samples.end(), [](int64_t ns) { return ns > 1'000'000; });
  std::sort(samples.begin(), samples.end());
  const auto& t = report.trackers.at(0);
  nlohmann::json out = {{"calls", calls},
                        {"median_ns", percentile(samples, 0.5)},
                        {"p99_ns", percentile(samples, 0.99)},
                        {"p999_ns", percentile(samples, 0.999)},
                        {"max_ns", double(samples.back())},
                        {"calls_over_1ms", over_1ms},
                        {"peak_rss_above_start_bytes", peak - baseline},
                        {"queue_bytes", options.queue_bytes},
                        {"wall_s", wall},
                        {"logged", t.logged},
                        {"delivered", t.delivered},
                        {"journaled", t.journaled},
                        {"lost", t.lost},
                        {"journal", t.journal.string()}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
