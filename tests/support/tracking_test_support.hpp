#pragma once
// Helpers shared by the tracking tests: hub options for a test directory, captured warnings, and
// small trackers with scripted behaviour. Includes temp_dir.hpp and python.hpp, which they use with
// these.
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "accel/tracking/general_tracker.hpp"
#include "accel/tracking/hub.hpp"
#include "accel/tracking/warnings.hpp"
#include "python.hpp"
#include "temp_dir.hpp"

namespace accel::test {

// Hub options for tests: files under dir, no process-wide signal handlers.
inline TrackerHubOptions hub_options_in(const TempDir& dir) {
  TrackerHubOptions o;
  o.project_dir = dir.path();
  o.handle_signals = false;
  return o;
}

// Collects accel::warn messages while alive.
class WarningCapture {
 public:
  WarningCapture() {
    previous_ = set_warning_handler([this](std::string_view message) {
      std::lock_guard lock(mutex_);
      messages_.emplace_back(message);
    });
  }
  ~WarningCapture() { set_warning_handler(std::move(previous_)); }
  WarningCapture(const WarningCapture&) = delete;
  WarningCapture& operator=(const WarningCapture&) = delete;

  std::vector<std::string> messages() const {
    std::lock_guard lock(mutex_);
    return messages_;
  }
  // How many warnings contain every one of the given fragments.
  std::size_t count(std::initializer_list<std::string_view> fragments) const {
    std::size_t n = 0;
    for (const auto& m : messages()) {
      bool all = true;
      for (auto f : fragments) all = all && m.find(f) != std::string::npos;
      n += all ? 1 : 0;
    }
    return n;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> messages_;
  WarningHandler previous_;
};

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A TrackerInit as TrackerHub fills it (fields set by name, so new fields keep their defaults).
inline TrackerInit tracker_init(std::string run_name, std::filesystem::path logging_dir,
                                nlohmann::json init_kwargs = nlohmann::json::object()) {
  TrackerInit init;
  init.run_name = std::move(run_name);
  init.logging_dir = std::move(logging_dir);
  init.init_kwargs = std::move(init_kwargs);
  return init;
}

// The message of the E that f throws; fails the test when f throws nothing or something else.
template <class E, class F>
std::string thrown(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("threw another exception type: " << e.what());
  }
  FAIL("threw nothing");
  return {};
}

// The one version_<N> directory under dir/name.
inline std::filesystem::path only_version_dir(const std::filesystem::path& base) {
  std::vector<std::filesystem::path> found;
  for (const auto& e : std::filesystem::directory_iterator(base)) found.push_back(e.path());
  REQUIRE(found.size() == 1);
  return found.front();
}

// Records every call it receives; optionally slow, hung, failing or unavailable on a schedule.
class RecordingTracker : public GeneralTracker {
 public:
  struct Call {
    std::string what;  // "start", "config", "log", "flush", "finish"
    std::optional<int64_t> step;
    Values values;
    nlohmann::json config;
    RunStatus status = RunStatus::finished;
  };

  explicit RecordingTracker(std::string name = "recording", bool main_only = true)
      : name_(std::move(name)), main_only_(main_only) {}

  std::string name() const override { return name_; }
  bool requires_logging_directory() const override { return false; }
  bool main_process_only() const override { return main_only_; }
  void start() override { record(call("start")); }
  void store_init_configuration(const nlohmann::json& config) override {
    before_call();
    Call c = call("config");
    c.config = config;
    record(std::move(c));
  }
  void log(const Values& values, std::optional<int64_t> step) override {
    before_call();
    if (throw_after_logs >= 0 && logs_seen_.load() >= throw_after_logs) {
      throw std::runtime_error("disk on fire");
    }
    if (unavailable_calls.load() > 0) {
      --unavailable_calls;
      throw TrackerUnavailable("server at 127.0.0.1:1 refused the connection");
    }
    ++logs_seen_;
    Call c = call("log");
    c.step = step;
    c.values = values;
    record(std::move(c));
  }
  void flush() override { record(call("flush")); }
  void finish(RunStatus status) override {
    Call c = call("finish");
    c.status = status;
    record(std::move(c));
  }
  std::any tracker() override { return this; }

  std::vector<Call> calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  std::vector<Call> logs() const {
    std::vector<Call> out;
    for (auto& c : calls()) {
      if (c.what == "log") out.push_back(c);
    }
    return out;
  }
  int64_t logs_seen() const { return logs_seen_.load(); }

  // Behaviour knobs (set before use).
  std::chrono::microseconds delay{0};     // every config/log call sleeps this long
  std::atomic<bool> hang{false};          // config/log calls block while true
  int64_t throw_after_logs = -1;          // log throws std::runtime_error after n logs
  std::atomic<int> unavailable_calls{0};  // the next n log calls throw TrackerUnavailable

 private:
  static Call call(std::string what) {
    Call c;
    c.what = std::move(what);
    return c;
  }
  void before_call() {
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    while (hang.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  void record(Call c) {
    std::lock_guard lock(mutex_);
    calls_.push_back(std::move(c));
  }

  std::string name_;
  bool main_only_;
  mutable std::mutex mutex_;
  std::vector<Call> calls_;
  std::atomic<int64_t> logs_seen_{0};
};

// A backend that never answers: every call throws TrackerUnavailable.
class DeadTracker final : public GeneralTracker {
 public:
  std::string name() const override { return "dead"; }
  bool requires_logging_directory() const override { return false; }
  void store_init_configuration(const nlohmann::json&) override { down(); }
  void log(const Values&, std::optional<int64_t>) override { down(); }
  void flush() override { down(); }
  void finish(RunStatus) override { down(); }

 private:
  static void down() { throw TrackerUnavailable("dead: connection refused"); }
};

}  // namespace accel::test
