// mlflow_log_bench: logs steps x metrics points through TrackerHub to the MLflow server named by
// MLFLOW_TRACKING_URI, into the run --run-id, the way a training loop would (one hub.log per step),
// and prints one JSON line: points, wall seconds until the server has every point (hub.flush();
// end_training, which also ends the run, is timed apart),
// seconds the training thread spent inside log(), the slowest log() call, requests sent.
//
// usage: mlflow_log_bench --run-id ID --steps N --metrics M [--prefix accel]
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "accel/tracking/hub.hpp"
#include "accel/tracking/trackers/mlflow/mlflow_client.hpp"

int main(int argc, char** argv) {
  std::string run_id, prefix = "accel";
  long steps = 10000, metrics = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--run-id")
      run_id = argv[i + 1];
    else if (flag == "--steps")
      steps = std::atol(argv[i + 1]);
    else if (flag == "--metrics")
      metrics = std::atol(argv[i + 1]);
    else if (flag == "--prefix")
      prefix = argv[i + 1];
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  std::vector<std::string> keys;
  for (long k = 0; k < metrics; ++k) keys.push_back(fmt::format("{}/metric_{}", prefix, k));

  using Clock = std::chrono::steady_clock;
  accel::TrackerHubOptions options;
  options.handle_signals = false;
  options.flush_timeout = std::chrono::seconds(600);
  options.end_training_timeout = std::chrono::seconds(300);
  accel::TrackerHub hub(options);
  nlohmann::json kwargs = {{"mlflow", {{"run_id", run_id}}}};
  hub.init_trackers("mlflow_log_bench", nlohmann::json::object(), {"mlflow"}, kwargs);
  // The run is resumed on the tracker's worker; let that happen before timing (the Python writers'
  // run exists before their clock starts too).
  if (!hub.flush()) {
    std::fprintf(stderr, "the mlflow tracker did not start\n");
    return 1;
  }

  const auto begin = Clock::now();
  Clock::duration in_log{0}, slowest{0};
  for (long step = 0; step < steps; ++step) {
    accel::Values values;
    for (long k = 0; k < metrics; ++k)
      values.set(keys[static_cast<std::size_t>(k)], std::sin(0.001 * double(step)) + double(k));
    const auto call = Clock::now();
    hub.log(std::move(values), step);
    const auto took = Clock::now() - call;
    in_log += took;
    slowest = std::max(slowest, took);
  }
  // Delivered = the tracker has handed every point to the server (flush), like
  // MlflowClient.log_batch returning. Ending the run is timed separately.
  const bool flushed = hub.flush();
  const double seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  const auto end_begin = Clock::now();
  const auto report = hub.end_training();
  const double end_seconds = std::chrono::duration<double>(Clock::now() - end_begin).count();
  auto* client = hub.get_tracker<accel::MlflowClient>("mlflow");
  if (!flushed || !report.complete() || client == nullptr) {
    std::fprintf(stderr, "not everything was delivered\n");
    return 1;
  }
  std::printf("%s\n", nlohmann::json{{"points", steps * metrics},
                                     {"seconds", seconds},
                                     {"end_training_seconds", end_seconds},
                                     {"log_seconds", std::chrono::duration<double>(in_log).count()},
                                     {"slowest_log_us",
                                      std::chrono::duration<double, std::micro>(slowest).count()},
                                     {"requests", client->requests_sent()}}
                          .dump()
                          .c_str());
  return 0;
}
