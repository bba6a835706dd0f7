// custom_tracker: write your own experiment tracker and use it beside the built-in ones.
//
//   ./custom_tracker [logging_dir]        (default: runs/custom_tracker)
//
// BestValueTracker keeps the best (lowest) value of every scalar it sees and writes them, with the
// step where each was reached and the run's configuration, to <logging_dir>/best_values.json when
// the run finishes. It runs beside "csv" and "jsonl" on a small simulated training loop, once
// passed as an object and once registered under a name.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>

#include "accel/tracking/hub.hpp"
#include "accel/tracking/registry.hpp"

namespace {

class BestValueTracker final : public accel::GeneralTracker {
 public:
  explicit BestValueTracker(std::filesystem::path logging_dir)
      : path_(std::move(logging_dir) / "best_values.json") {}

  std::string name() const override { return "best_values"; }
  bool requires_logging_directory() const override { return true; }

  void store_init_configuration(const nlohmann::json& config) override { config_ = config; }

  // Called on the tracker's own worker thread, in log order; no locking needed.
  void log(const accel::Values& values, std::optional<int64_t> step) override {
    for (const auto& [key, value] : values) {
      if (!value.is_scalar() || std::isnan(value.as_double())) continue;
      auto [it, inserted] = best_.try_emplace(key, Best{value.as_double(), step});
      if (!inserted && value.as_double() < it->second.value)
        it->second = Best{value.as_double(), step};
    }
  }

  void finish(accel::RunStatus status) override {
    nlohmann::json out = {{"status", accel::to_string(status)},
                          {"config", config_},
                          {"best", nlohmann::json::object()}};
    for (const auto& [key, best] : best_) {
      out["best"][key] = {{"value", best.value},
                          {"step", best.step ? nlohmann::json(*best.step) : nlohmann::json()}};
    }
    std::filesystem::create_directories(path_.parent_path());
    std::ofstream(path_) << out.dump(2) << '\n';
  }

  // The handle get_tracker<BestValueTracker> returns: here, the tracker itself.
  std::any tracker() override { return this; }

 private:
  struct Best {
    double value;
    std::optional<int64_t> step;
  };
  std::filesystem::path path_;
  nlohmann::json config_;
  std::map<std::string, Best> best_;
};

// A simulated training curve: a noisy, decaying loss.
double simulated_loss(int64_t step) {
  return 2.0 * std::exp(-0.01 * double(step)) + 0.05 * std::sin(double(step));
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path logging_dir = argc > 1 ? argv[1] : "runs/custom_tracker";
  const nlohmann::json config = {{"lr", 1e-3},
                                 {"optimizer", {{"name", "adamw"}, {"weight_decay", 0.01}}}};

  // 1. Pass an object in log_with, next to built-in names.
  {
    accel::TrackerHub hub({.project_dir = logging_dir});
    hub.init_trackers("custom_tracker", config,
                      {"csv", "jsonl", std::make_shared<BestValueTracker>(logging_dir)});
    for (int64_t step = 0; step < 300; ++step) {
      hub.log(
          {{"train/loss", simulated_loss(step)}, {"train/lr", 1e-3 * (1.0 - double(step) / 300.0)}},
          step);
      if (step % 100 == 99) hub.log({{"val/loss", simulated_loss(step) + 0.1}}, step);
    }
    auto* best = hub.get_tracker<BestValueTracker>("best_values");
    std::printf("best_values tracker handle: %s\n", best != nullptr ? "available" : "missing");
    auto report = hub.end_training();
    for (const auto& t : report.trackers) {
      std::printf("%-12s delivered %llu of %llu log calls%s\n", t.name.c_str(),
                  static_cast<unsigned long long>(t.delivered),
                  static_cast<unsigned long long>(t.logged),
                  t.error.empty() ? "" : (" (" + t.error + ")").c_str());
    }
    if (!report.complete()) return 1;
  }

  // 2. Register the class under a name, then select it by name like a built-in.
  accel::register_tracker({.name = "best_values",
                           .factory =
                               [](const accel::TrackerInit& init) {
                                 return std::make_unique<BestValueTracker>(init.logging_dir /
                                                                           "registered");
                               },
                           .unavailable_reason = {},
                           .requires_logging_directory = true});
  accel::TrackerHub hub({.project_dir = logging_dir});
  hub.init_trackers("custom_tracker", config, {"best_values"});
  for (int64_t step = 0; step < 10; ++step) hub.log({{"loss", simulated_loss(step)}}, step);
  if (!hub.end_training().complete()) return 1;

  std::printf("wrote %s (csv, jsonl) and %s\n", (logging_dir / "custom_tracker").c_str(),
              (logging_dir / "best_values.json").c_str());
  return 0;
}
