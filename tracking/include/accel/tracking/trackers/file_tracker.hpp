#pragma once
// accel::FileTracker<Tracker>: what every tracker that writes files under TrackerInit::logging_dir
// shares (csv, jsonl, tensorboard; a new file-based tracker derives from it as they do):
//   - its registry entry, registration(): the name Tracker::kName, a factory that constructs a
//     Tracker from the TrackerInit, requires_logging_directory = true;
//   - name() is Tracker::kName, requires_logging_directory() is true, holds_records() is true;
//   - the logging-directory check: the constructor throws accel::InvalidValue ("the <name> tracker
//     writes files and needs a logging directory; set project_dir or logging_dir") when
//     init.logging_dir is empty (TrackerHub checks the same before it constructs one);
//   - the run directory: log_dir() (and tracker(), as a std::filesystem::path) once the tracker has
//     called set_log_dir; resume_info() {"directory": "<the run directory>"} once it has called
//     publish_run_directory (at the end of start()), null before (thread-safe).
//
//   class MyTracker final : public FileTracker<MyTracker> {
//    public:
//     static constexpr const char* kName = "mine";
//     explicit MyTracker(TrackerInit init) : FileTracker(init), init_(std::move(init)) {}
//     ...
//   };
#include <any>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "accel/tracking/general_tracker.hpp"
#include "accel/tracking/registry.hpp"

namespace accel {

namespace detail {

// Throws accel::InvalidValue naming the tracker when init.logging_dir is empty.
void require_logging_directory(std::string_view tracker, const TrackerInit& init);

// The run directory a file tracker reports through resume_info(), once published. Thread-safe.
class PublishedRunDirectory {
 public:
  void publish(const std::filesystem::path& dir);
  nlohmann::json resume_info() const;  // {"directory": ...}, or null before publish

 private:
  mutable std::mutex mutex_;
  nlohmann::json resume_info_;  // guarded by mutex_
};

}  // namespace detail

template <class Tracker>
class FileTracker : public GeneralTracker {
 public:
  static TrackerRegistration registration() {
    return {.name = Tracker::kName,
            .factory = [](const TrackerInit& init) -> std::unique_ptr<GeneralTracker> {
              return std::make_unique<Tracker>(init);
            },
            .unavailable_reason = {},
            .requires_logging_directory = true};
  }

  std::string name() const final { return Tracker::kName; }
  bool requires_logging_directory() const final { return true; }
  bool holds_records() const override { return true; }
  // {"directory": "<the run directory>"} once started; null before.
  nlohmann::json resume_info() const override { return run_directory_.resume_info(); }
  // The run directory (std::filesystem::path), once started.
  std::any tracker() override { return log_dir_; }
  // The run directory, once started; empty before.
  const std::filesystem::path& log_dir() const { return log_dir_; }

 protected:
  // Throws accel::InvalidValue when init.logging_dir is empty.
  explicit FileTracker(const TrackerInit& init) {
    detail::require_logging_directory(Tracker::kName, init);
  }
  // Where the run writes: log_dir() and tracker() give it from now on.
  void set_log_dir(const std::filesystem::path& dir) { log_dir_ = dir; }
  // At the end of start(): resume_info() names log_dir() from now on.
  void publish_run_directory() { run_directory_.publish(log_dir_); }

 private:
  std::filesystem::path log_dir_;
  detail::PublishedRunDirectory run_directory_;
};

}  // namespace accel
