#pragma once
// A GeneralTracker that records what it receives (shared by the accelerator tests).
#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "accel/tracking/general_tracker.hpp"

namespace accel_test {

class RecordingTracker final : public accel::GeneralTracker {
 public:
  explicit RecordingTracker(std::string name = "recording", bool main_only = true)
      : name_(std::move(name)), main_only_(main_only) {}
  std::string name() const override { return name_; }
  bool requires_logging_directory() const override { return false; }
  bool main_process_only() const override { return main_only_; }
  void start() override { started = true; }
  void store_init_configuration(const nlohmann::json& c) override {
    std::lock_guard<std::mutex> lock(mutex);
    config = c;
  }
  void log(const accel::Values& values, std::optional<int64_t> step) override {
    std::lock_guard<std::mutex> lock(mutex);
    records.emplace_back(values, step);
  }
  void finish(accel::RunStatus) override { finished = true; }

  std::mutex mutex;
  nlohmann::json config;
  std::vector<std::pair<accel::Values, std::optional<int64_t>>> records;
  std::atomic<bool> started{false};
  std::atomic<bool> finished{false};

 private:
  std::string name_;
  bool main_only_;
};

}  // namespace accel_test
