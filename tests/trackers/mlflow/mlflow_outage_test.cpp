// Outage survival through the real TrackerHub: the MLflow server is not up when training starts,
// comes up, is killed mid-run (SIGKILL) while the loop keeps logging, and is restarted on the same
// store. Every metric must arrive exactly once and in order, and the training thread must never
// wait on the network.
#include <atomic>
#include <catch2/catch.hpp>
#include <future>
#include <mutex>
#include <thread>

#include "accel/tracking/hub.hpp"
#include "accel/tracking/trackers/mlflow/mlflow_tracker.hpp"
#include "accel/tracking/warnings.hpp"
#include "mlflow_test_server.hpp"

using namespace accel;
using namespace std::chrono_literals;
using nlohmann::json;

TEST_CASE("server down at start, killed mid-run and restarted: every point once, in order") {
  test::TempDir dir;
  test::MlflowServer server(dir.path() / "store");  // same store and port across restarts

  std::mutex warnings_mutex;
  std::string warnings;
  WarningHandler previous = set_warning_handler([&](std::string_view message) {
    std::lock_guard lock(warnings_mutex);
    warnings += std::string(message) + "\n";
  });

  TrackerHubOptions options;
  options.project_dir = dir.path() / "project";
  options.handle_signals = false;
  options.retry_initial_delay = 50ms;
  options.retry_max_delay = 500ms;
  options.end_training_timeout = 60s;
  ::setenv("MLFLOW_TRACKING_URI", server.uri().c_str(), 1);  // as a user would configure it
  TrackerHub hub(options);
  hub.init_trackers("outage", {{"lr", 0.1}, {"model", {{"depth", 3}}}}, {"mlflow"},
                    {{"mlflow",
                      {{"run_name", "outage"},
                       {"flush_interval_ms", 200},
                       {"max_probe_interval_ms", 500},
                       {"retry", {{"max_attempts", 3}, {"initial_backoff_ms", 100}}}}}});

  std::atomic<int> phase{0};  // 0: down at start, 1: up, 2: killed, 3: restarted
  auto operator_thread = std::async(std::launch::async, [&] {
    std::this_thread::sleep_for(1s);
    server.start();  // ~ seconds of Python start-up while training logs on
    phase = 1;
    std::this_thread::sleep_for(3s);
    server.kill_hard();
    phase = 2;
    std::this_thread::sleep_for(3s);
    server.start();
    phase = 3;
  });

  const int metrics_per_step = 3;
  int64_t step = 0;
  std::chrono::nanoseconds slowest_log{0};
  std::array<int64_t, 4> steps_in_phase{};
  auto after_restart = std::chrono::steady_clock::time_point::max();
  while (true) {
    const int p = phase.load();
    if (p == 3 && after_restart == std::chrono::steady_clock::time_point::max()) {
      after_restart = std::chrono::steady_clock::now();
    }
    if (std::chrono::steady_clock::now() - after_restart > 2s) break;
    Values values;
    for (int k = 0; k < metrics_per_step; ++k)
      values.set("m" + std::to_string(k), double(step) * 10 + k);
    const auto begin = std::chrono::steady_clock::now();
    hub.log(values, step);
    slowest_log = std::max(slowest_log, std::chrono::steady_clock::now() - begin);
    ++steps_in_phase[static_cast<std::size_t>(p)];
    ++step;
    std::this_thread::sleep_for(2ms);
  }
  operator_thread.get();
  const EndTrainingReport report = hub.end_training();
  set_warning_handler(previous);

  INFO("warnings:\n" << warnings);
  REQUIRE(report.trackers.size() == 1);
  CHECK(report.trackers[0].error.empty());
  CHECK(report.trackers[0].undelivered == 0);
  CHECK(report.complete());
  // Logging went on through every phase, and never waited for the network.
  for (auto n : steps_in_phase) CHECK(n > 50);
  CHECK(slowest_log < 250ms);  // a network wait would be >= 300 ms (retries with 100 ms backoff)
  CHECK(warnings.find("unreachable") != std::string::npos);

  auto* client = hub.get_tracker<MlflowClient>("mlflow");
  REQUIRE(client != nullptr);
  const json run = test::read_run(server.uri(), client->run_id());
  CHECK(run["info"]["status"] == "FINISHED");
  CHECK(run["params"]["model/depth"] == "3");
  for (int k = 0; k < metrics_per_step; ++k) {
    const auto& history = run["metrics"]["m" + std::to_string(k)];
    REQUIRE(history.size() == static_cast<std::size_t>(step));  // exactly once
    int64_t previous_time = 0;
    for (int64_t s = 0; s < step; ++s) {
      const auto& point = history[static_cast<std::size_t>(s)];
      if (point[0].get<int64_t>() != s || point[1].get<double>() != double(s) * 10 + k) {
        FAIL("metric m" << k << " at index " << s << " is " << point.dump());
      }
      // Timestamps are the training loop's log times: they grow with the step (arrival in order).
      if (point[2].get<int64_t>() < previous_time) FAIL("timestamp goes back at step " << s);
      previous_time = point[2].get<int64_t>();
    }
  }
  server.stop();
}
