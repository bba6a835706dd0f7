#include "cli/launch_command.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "plan/executable_lookup.hpp"
#include "plan/launch_error.hpp"
#include "plan/launch_plan.hpp"
#include "plan/mpirun_argv.hpp"
#include "run/supervisor.hpp"

namespace accel::launch {
namespace {

namespace fs = std::filesystem;

// The job's run folder (where failing ranks leave their status), removed when the job ends.
class RunDirectory {
 public:
  explicit RunDirectory(const fs::path& parent) {
    std::error_code ec;
    fs::create_directories(parent, ec);
    std::string pattern = (parent / "accel-launch-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      throw LaunchError(
          fmt::format("cannot create a run folder in '{}': {}; set TMPDIR to a "
                      "writable folder",
                      parent.string(), std::strerror(errno)));
    }
    path_ = pattern;
  }
  ~RunDirectory() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  RunDirectory(const RunDirectory&) = delete;
  RunDirectory& operator=(const RunDirectory&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

fs::path run_directory_parent(const LaunchPlan& plan) {
  if (plan.log_dir) return *plan.log_dir;  // shared by every machine when log_dir is
  const char* tmp = std::getenv("TMPDIR");
  return (tmp && *tmp) ? fs::path(tmp) : fs::path("/tmp");
}

void print_dry_run(const LaunchPlan& plan, const MpirunArgv& job) {
  fmt::print("accel-launch: dry run; nothing was started.\n\nsettings:\n");
  for (const auto& source : plan.sources) {
    fmt::print("  {:<28} = {:<12} ({})\n", source.name, source.value, source.origin);
  }
  fmt::print("\nenvironment of every rank{}:\n", job.via_slurm ? " (exported to srun)" : "");
  for (const auto& [name, value] : job.environment) fmt::print("  {}={}\n", name, value);
  fmt::print("  RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE (set per rank)\n");
  fmt::print("\ncommand:\n  {}\n", shell_command_line(job.argv));
}

}  // namespace

std::optional<AccelerateConfig> load_launch_config(const LaunchFlags& flags) {
  if (flags.config_file) return find_config(flags.config_file);
  if (flags.cpu) return std::nullopt;
  return find_config(std::nullopt);
}

int run_launch(const LaunchFlags& flags) {
  const std::optional<AccelerateConfig> config = load_launch_config(flags);
  if (config && !flags.quiet) {
    for (const auto& warning : config->warnings)
      fmt::print(stderr, "accel-launch: warning: {}\n", warning);
  }
  const LaunchPlan plan = resolve_launch_plan(flags, config, current_host_facts());
  if (!flags.quiet) {
    for (const auto& notice : plan.notices) fmt::print(stderr, "accel-launch: note: {}\n", notice);
  }
  if (plan.program.empty()) {
    throw UsageError(
        "no program to launch; usage: accel-launch [flags] <program> [args...] "
        "(see accel-launch --help)");
  }
  if (plan.hostfile && access(plan.hostfile->c_str(), R_OK) != 0) {
    throw UsageError(
        fmt::format("mpirun_hostfile '{}' cannot be read; give an existing file "
                    "with one line per machine (`hostname slots=N`)",
                    *plan.hostfile));
  }
  if (plan.use_slurm && !plan.extra_mpirun_args.empty() && !flags.quiet) {
    fmt::print(stderr, "accel-launch: note: --mpirun_args is ignored under srun\n");
  }

  JobTools tools;
  tools.program = resolve_program(plan.program);
  tools.launcher = plan.use_slurm ? find_srun() : find_mpirun();
  tools.self = self_executable();
  tools.running_as_root = geteuid() == 0;
  tools.console_fd = STDOUT_FILENO;  // rank 0's progress bar follows accel-launch's stdout
  std::string program_line = tools.program.string();
  for (const auto& arg : plan.program_args) program_line += " " + arg;

  if (flags.dry_run) {
    tools.run_dir = (run_directory_parent(plan) / "accel-launch-XXXXXX").string();
    print_dry_run(plan, build_mpirun_argv(plan, tools));
    return 0;
  }

  RunDirectory run_dir(run_directory_parent(plan));
  tools.run_dir = run_dir.path().string();
  const MpirunArgv job = build_mpirun_argv(plan, tools);
  if (plan.debug) fmt::print(stderr, "accel-launch: running {}\n", shell_command_line(job.argv));
  std::fflush(stdout);
  std::fflush(stderr);
  SupervisorOptions options;
  options.run_dir = run_dir.path();
  options.num_processes = plan.num_processes;
  options.program_line = program_line;
  options.debug = plan.debug;
  return supervise(job, options);
}

}  // namespace accel::launch
