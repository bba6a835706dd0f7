#pragma once
// `accel-launch [flags] program [args]`: resolve flags and config, then print the job (--dry_run)
// or run it under the supervisor. Throws LaunchError subclasses for anything the user can fix.
#include <optional>

#include "cli/config_file.hpp"
#include "cli/launch_flags.hpp"

namespace accel::launch {

// The config file a launch reads: --config_file, else the default file, except that (as in
// `accelerate launch`) --cpu skips the default file.
std::optional<AccelerateConfig> load_launch_config(const LaunchFlags& flags);

// Returns accel-launch's exit status (the failing rank's status when the job fails).
int run_launch(const LaunchFlags& flags);

}  // namespace accel::launch
