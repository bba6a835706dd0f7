#include "accel/tracking/registry.hpp"

#include <algorithm>
#include <map>
#include <mutex>

#include "accel/tracking/errors.hpp"

namespace accel {
namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, TrackerRegistration, std::less<>> trackers;
  std::map<std::string, std::string, std::less<>> aliases;  // alias -> name
};

void add_locked(Registry& r, TrackerRegistration registration) {
  for (const auto& alias : registration.aliases)
    r.aliases.insert_or_assign(alias, registration.name);
  r.aliases.erase(registration.name);  // a tracker registered under a name wins over an alias
  std::string name = registration.name;
  r.trackers.insert_or_assign(std::move(name), std::move(registration));
}

// Built-ins are listed on first use, so user registrations made later replace them by name.
Registry& registry() {
  static Registry* instance = [] {
    auto* r =
        new Registry();  // never destroyed: trackers may be looked up during static destruction
    for (auto& registration : detail::builtin_trackers()) add_locked(*r, std::move(registration));
    return r;
  }();
  return *instance;
}

}  // namespace

void register_tracker(TrackerRegistration registration) {
  if (registration.name.empty()) {
    throw InvalidValue(
        "register_tracker: the tracker name is empty; register it under the name "
        "log_with will use, e.g. \"my_tracker\"");
  }
  if (!registration.factory) {
    throw InvalidValue("register_tracker: tracker '" + registration.name +
                       "' has no factory; give a function that constructs it from a TrackerInit");
  }
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  add_locked(r, std::move(registration));
}

std::optional<TrackerRegistration> find_tracker(std::string_view name) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  auto it = r.trackers.find(name);
  if (it == r.trackers.end()) {
    auto alias = r.aliases.find(name);
    if (alias != r.aliases.end()) it = r.trackers.find(alias->second);
  }
  if (it == r.trackers.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> registered_tracker_names() {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  std::vector<std::string> names;
  names.reserve(r.trackers.size());
  for (const auto& [name, registration] : r.trackers) names.push_back(name);
  return names;
}

}  // namespace accel
