#pragma once
// `accel-launch test`: launches accel-sanity-check (collectives, gradient sync, gathering,
// tracker gating) over the resolved number of processes (2 when neither a flag nor the config
// file says) and reports "all checks passed" or what failed.
#include "cli/launch_flags.hpp"

namespace accel::launch {

// Returns 0 when every check passed, else the launch's failing status.
int run_sanity_test(LaunchFlags flags);

}  // namespace accel::launch
