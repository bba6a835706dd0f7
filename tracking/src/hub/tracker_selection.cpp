#include "hub/tracker_selection.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/warnings.hpp"
#include "common/init_kwargs.hpp"

namespace accel::detail {

TrackerSelection::TrackerSelection(TrackerInit run, const nlohmann::json& init_kwargs,
                                   bool is_main_process)
    : run_(std::move(run)), init_kwargs_(init_kwargs), is_main_process_(is_main_process) {}

std::vector<std::shared_ptr<GeneralTracker>> TrackerSelection::select(const LogWith& log_with) {
  std::vector<std::string> named;
  for (const auto& spec : log_with) {
    if (spec.is_object()) continue;
    auto registration = find_tracker(spec.name());  // an alias counts as its tracker's name
    named.push_back(registration ? registration->name : spec.name());
  }
  for (const auto& spec : log_with) {
    if (spec.is_object()) {
      add(spec.object());
    } else if (spec.name() == "all") {
      add_all(named);
    } else {
      add_named(spec.name());
    }
  }
  if (!skipped_.empty() && is_main_process_) {
    warn(fmt::format("log_with \"all\": skipped {}", fmt::join(skipped_, "; ")));
  }
  return std::move(selected_);
}

void TrackerSelection::add(std::shared_ptr<GeneralTracker> tracker) {
  std::string name = tracker->name();
  if (!names_.insert(name).second) {
    throw InvalidValue(fmt::format(
        "init_trackers: two trackers are named '{}'; tracker names must be unique", name));
  }
  if (tracker->requires_logging_directory() && run_.logging_dir.empty()) {
    throw InvalidValue(fmt::format(
        "init_trackers: tracker '{}' writes files and needs a logging directory; set project_dir "
        "or logging_dir",
        name));
  }
  if (!is_main_process_ && tracker->main_process_only()) return;
  selected_.push_back(std::move(tracker));
}

void TrackerSelection::add_registered(const TrackerRegistration& registration) {
  if (!is_main_process_ && registration.main_process_only) {
    names_.insert(registration.name);
    return;
  }
  TrackerInit init = run_;
  init.init_kwargs = tracker_kwargs(init_kwargs_, registration.name);
  std::shared_ptr<GeneralTracker> tracker = registration.factory(init);
  if (!tracker) {
    throw InvalidValue(fmt::format("init_trackers: the factory of tracker '{}' returned nothing",
                                   registration.name));
  }
  add(std::move(tracker));
}

void TrackerSelection::add_named(const std::string& name) {
  if (names_.contains(name)) return;  // listed twice: once is enough
  auto registration = find_tracker(name);
  if (registration && names_.contains(registration->name)) return;  // also under an alias
  if (!registration) {
    throw InvalidValue(fmt::format(
        "init_trackers: unknown tracker '{}'; known trackers: {} (or \"all\", or pass a "
        "GeneralTracker object, or register_tracker your class first)",
        name, fmt::join(registered_tracker_names(), ", ")));
  }
  if (auto reason = unavailable(*registration)) {
    throw InvalidValue(
        fmt::format("init_trackers: tracker '{}' cannot be used here: {}", name, *reason));
  }
  add_registered(*registration);
}

void TrackerSelection::add_all(const std::vector<std::string>& named) {
  for (const auto& candidate : registered_tracker_names()) {
    if (names_.contains(candidate) ||
        std::find(named.begin(), named.end(), candidate) != named.end()) {
      continue;
    }
    auto registration = find_tracker(candidate);
    if (!registration) continue;
    if (auto reason = reason_to_skip(*registration)) {
      skipped_.push_back(fmt::format("{} ({})", candidate, *reason));
      continue;
    }
    add_registered(*registration);
  }
}

std::optional<std::string> TrackerSelection::unavailable(
    const TrackerRegistration& registration) const {
  if (registration.unavailable_reason) {
    if (auto reason = registration.unavailable_reason()) return reason;
  }
  if (registration.unavailable_with_options) {
    return registration.unavailable_with_options(tracker_kwargs(init_kwargs_, registration.name));
  }
  return std::nullopt;
}

std::optional<std::string> TrackerSelection::reason_to_skip(
    const TrackerRegistration& registration) const {
  std::optional<std::string> reason = unavailable(registration);
  if (!reason && registration.requires_logging_directory && run_.logging_dir.empty()) {
    reason = "needs a logging directory (set project_dir or logging_dir)";
  }
  return reason;
}

}  // namespace accel::detail
