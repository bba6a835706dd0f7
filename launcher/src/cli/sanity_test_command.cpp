#include "cli/sanity_test_command.hpp"

#include <fmt/format.h>

#include "cli/launch_command.hpp"
#include "plan/executable_lookup.hpp"
#include "plan/launch_error.hpp"

namespace accel::launch {

int run_sanity_test(LaunchFlags flags) {
  const auto sanity = find_sanity_program();
  if (!sanity) {
    throw MissingExecutable(
        "accel-sanity-check was not found next to accel-launch; it is built with the distributed "
        "runtime: configure accel with -DACCEL_BUILD_DISTRIBUTED=ON and build the "
        "accel-sanity-check target");
  }
  const auto config = load_launch_config(flags);
  if (!flags.num_processes && !(config && config->num_processes)) flags.num_processes = 2;
  flags.program = sanity->string();
  flags.program_args.clear();
  if (flags.dry_run) return run_launch(flags);
  fmt::print("accel-launch test: running {} over {} processes\n", sanity->filename().string(),
             flags.num_processes ? std::to_string(*flags.num_processes) : "the configured");
  std::fflush(stdout);
  const int status = run_launch(flags);
  if (status == 0) {
    fmt::print("accel-launch test: all checks passed\n");
  } else {
    fmt::print("accel-launch test: FAILED (exit status {}); the failing checks are listed above\n",
               status);
  }
  return status;
}

}  // namespace accel::launch
