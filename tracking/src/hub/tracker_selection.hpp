#pragma once
// Internal: which trackers TrackerHub::init_trackers starts, and their construction (see hub.hpp,
// init_trackers). log_with entries are taken in order: a GeneralTracker object is used as given; a
// name is looked up in the registry (accel::InvalidValue when unknown or unavailable here; listed
// twice: started once); "all" adds every registered tracker that log_with does not name itself and
// that can run here, and reports the others in one warning (main process only). Every tracker name
// must be unique, and a tracker that writes files needs a logging directory (accel::InvalidValue
// otherwise). On a process that is not the main one, main-process-only trackers are not started;
// registered ones are not even constructed.
// Thread-safety: none (init_trackers uses one selection on its own thread).
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "accel/tracking/general_tracker.hpp"
#include "accel/tracking/log_with.hpp"
#include "accel/tracking/registry.hpp"

namespace accel::detail {

class TrackerSelection {
 public:
  // run: what every tracker's TrackerInit holds (run name, logging directory, run id); init_kwargs:
  // as init_trackers got it (checked with check_init_kwargs), each tracker gets its own entry.
  TrackerSelection(TrackerInit run, const nlohmann::json& init_kwargs, bool is_main_process);

  // The trackers this process runs, constructed, in log_with order.
  std::vector<std::shared_ptr<GeneralTracker>> select(const LogWith& log_with);

 private:
  void add(std::shared_ptr<GeneralTracker> tracker);
  void add_registered(const TrackerRegistration& registration);
  void add_named(const std::string& name);
  void add_all(const std::vector<std::string>& named);
  // Why the registration cannot be used (its unavailable_reason, then unavailable_with_options with
  // its init_kwargs), or nullopt.
  std::optional<std::string> unavailable(const TrackerRegistration& registration) const;
  // Why "all" leaves the registered tracker out (unavailable here, or no logging directory).
  std::optional<std::string> reason_to_skip(const TrackerRegistration& registration) const;

  TrackerInit run_;
  const nlohmann::json& init_kwargs_;
  bool is_main_process_;
  std::set<std::string, std::less<>> names_;  // every tracker taken, also those not started here
  std::vector<std::shared_ptr<GeneralTracker>> selected_;
  std::vector<std::string> skipped_;  // by "all": "<name> (<reason>)"
};

}  // namespace accel::detail
