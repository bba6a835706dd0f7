#pragma once
// Turning a LaunchPlan into the command that starts the job: `mpirun -np N ...` (or
// `srun --mpi=pmix ...` inside Slurm) running `accel-launch --rank-shim ... -- program args` on
// every rank, plus the environment Accelerate sets for its processes. Pure functions: nothing is
// started here.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "plan/launch_plan.hpp"

namespace accel::launch {

using EnvironmentList = std::vector<std::pair<std::string, std::string>>;

struct MpirunArgv {
  std::vector<std::string> argv;  // argv[0] is mpirun or srun
  EnvironmentList environment;    // what every rank sees (passed with -x, or inherited by srun)
  bool via_slurm = false;
};

// What the job's ranks are started with.
struct JobTools {
  std::filesystem::path launcher;  // mpirun or srun
  std::filesystem::path self;      // accel-launch, run as the per-rank shim
  std::filesystem::path program;   // the resolved program
  std::string run_dir;             // where failing ranks leave rank<N>.json
  bool running_as_root = false;    // adds mpirun's --allow-run-as-root
  // accel-launch's stdout: whether rank 0 draws its progress bar (console_environment); -1: no
  // ACCEL_PROGRESS_BAR variables.
  int console_fd = -1;
};

// ACCELERATE_USE_CPU, ACCELERATE_MIXED_PRECISION, ACCELERATE_GRADIENT_ACCUMULATION_STEPS,
// ACCELERATE_DEBUG_MODE, OMP_NUM_THREADS, CUDA_VISIBLE_DEVICES, MASTER_ADDR/MASTER_PORT: the
// values `accelerate launch` would set for the same settings.
EnvironmentList rank_environment(const LaunchPlan& plan);

// Whether rank 0 draws its progress bar, decided from accel-launch's own stdout (each rank's output
// is a pipe to its shim): ACCEL_PROGRESS_BAR=1 and ACCEL_PROGRESS_BAR_COLUMNS=<width> when stdout
// is a terminal, ACCEL_PROGRESS_BAR=0 otherwise (see docs/logging.md). Appended to the environment
// when JobTools::console_fd is set.
// prefix_columns: the width of the "[rank 0] " prefix the shims put before rank 0's lines (0 when
// not prefixed), taken off the width.
EnvironmentList console_environment(int stdout_fd, int prefix_columns);

MpirunArgv build_mpirun_argv(const LaunchPlan& plan, const JobTools& tools);

// `argv` as one line a POSIX shell would run unchanged.
std::string shell_command_line(const std::vector<std::string>& argv);

}  // namespace accel::launch
