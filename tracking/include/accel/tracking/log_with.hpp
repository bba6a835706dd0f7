#pragma once
// accel::TrackerSpec / accel::LogWith: what `log_with` lists — a tracker name ("csv",
// "tensorboard", a name given to register_tracker), "all", or a tracker object the user
// constructed.
//
//   hub.init_trackers("proj", config, {"csv", "jsonl", std::make_shared<MyTracker>()});
//
// "all" selects every registered tracker whose prerequisites are present (see TrackerRegistration::
// unavailable_reason); the hub reports, once, which were skipped and why.
// Thread-safety: value types.
#include <concepts>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "accel/tracking/general_tracker.hpp"

namespace accel {

class TrackerSpec {
 public:
  TrackerSpec(const char* name) : name_(name) {}             // NOLINT: implicit on purpose
  TrackerSpec(std::string name) : name_(std::move(name)) {}  // NOLINT
  TrackerSpec(std::string_view name) : name_(name) {}        // NOLINT
  template <std::derived_from<GeneralTracker> T>
  TrackerSpec(std::shared_ptr<T> tracker) : tracker_(std::move(tracker)) {}  // NOLINT
  template <std::derived_from<GeneralTracker> T>
  TrackerSpec(std::unique_ptr<T> tracker) : tracker_(std::move(tracker)) {}  // NOLINT

  bool is_object() const { return tracker_ != nullptr; }
  // The name given, or the object's name().
  std::string name() const { return tracker_ ? tracker_->name() : name_; }
  const std::shared_ptr<GeneralTracker>& object() const { return tracker_; }

 private:
  std::string name_;
  std::shared_ptr<GeneralTracker> tracker_;
};

using LogWith = std::vector<TrackerSpec>;

}  // namespace accel
