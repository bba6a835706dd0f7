// accel-launch: start a program on several processes through mpirun (see docs/launcher.md).
// `accel-launch --rank-shim ...` is the per-rank wrapper mpirun starts; everything else is the CLI.
#include <fmt/format.h>

#include <cstdio>
#include <cstring>
#include <exception>

#include "cli/cli.hpp"
#include "plan/launch_error.hpp"
#include "run/rank_shim.hpp"

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], accel::launch::kRankShimFlag) == 0) {
    return accel::launch::run_rank_shim(argc - 2, argv + 2);
  }
  try {
    return accel::launch::run_cli(argc, argv);
  } catch (const accel::launch::LaunchError& e) {
    fmt::print(stderr, "accel-launch: error: {}\n", e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    fmt::print(stderr, "accel-launch: internal error: {}\n", e.what());
    return 1;
  }
}
