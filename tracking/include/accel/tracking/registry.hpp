#pragma once
// accel::TrackerRegistry: name → factory for trackers that log_with may name. The built-ins
// (csv, jsonl, tensorboard, mlflow, ...) are listed in tracking/src/hub/builtin_trackers.cpp; users add
// their own classes with register_tracker (Accelerate: register a custom tracker under a name).
// Thread-safety: all functions may be called from any thread (internally locked).
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "accel/tracking/general_tracker.hpp"

namespace accel {

using TrackerFactory = std::function<std::unique_ptr<GeneralTracker>(const TrackerInit&)>;
// Says why a tracker cannot be used here ("MLFLOW_TRACKING_URI is not set"), or nullopt when it can.
// log_with = {"all"} starts every registered tracker whose check returns nullopt and reports the others.
using TrackerAvailability = std::function<std::optional<std::string>()>;
// The same for a tracker whose availability depends on its own options (a mode chosen in
// init_kwargs, as comet_ml's "online"): called with init_kwargs[name] ({} when there is none).
using TrackerAvailabilityWith = std::function<std::optional<std::string>(const nlohmann::json&)>;

struct TrackerRegistration {
  std::string name;
  TrackerFactory factory;
  TrackerAvailability unavailable_reason;  // empty function = always available
  bool requires_logging_directory = false;
  // False when the tracker also runs on non-main ranks (GeneralTracker::main_process_only()); lets the
  // hub skip constructing main-process-only trackers on the other ranks.
  bool main_process_only = true;
  // Checked after unavailable_reason, with the tracker's init_kwargs; empty = no further check.
  TrackerAvailabilityWith unavailable_with_options = nullptr;
  // Other names log_with accepts for this tracker ("comet" for "comet_ml"). find_tracker(alias)
  // gives this registration; "all" and registered_tracker_names() list the tracker once, under
  // name; init_kwargs are looked up under name.
  std::vector<std::string> aliases = {};
};

// Registers (or replaces) a tracker under registration.name. Throws accel::InvalidValue for an empty name.
void register_tracker(TrackerRegistration registration);
// The registration for name (or for an alias of it), or nullopt. Built-ins are always registered.
std::optional<TrackerRegistration> find_tracker(std::string_view name);
// All registered names, sorted (used in "unknown tracker" messages).
std::vector<std::string> registered_tracker_names();

namespace detail {
// Built-in registrations; defined in builtin_trackers.cpp (one line per built-in tracker).
std::vector<TrackerRegistration> builtin_trackers();
}  // namespace detail

}  // namespace accel
