#pragma once
// accel-launch's command line (CLI11): the launch flags of `accelerate launch` and the
// config/env/test subcommands. Returns the process exit status; LaunchError subclasses thrown by
// the commands propagate to main().
namespace accel::launch {

int run_cli(int argc, char** argv);

}  // namespace accel::launch
