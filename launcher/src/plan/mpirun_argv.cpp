#include "plan/mpirun_argv.hpp"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <string_view>

namespace accel::launch {
namespace {

std::string shell_quote(const std::string& word) {
  if (!word.empty() && word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                              "0123456789-_./=:,+@%") == std::string::npos) {
    return word;
  }
  std::string quoted = "'";
  for (char c : word) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

void append_shim(std::vector<std::string>& argv, const LaunchPlan& plan, const JobTools& tools) {
  argv.push_back(tools.self.string());
  argv.push_back("--rank-shim");
  argv.push_back("--run-dir");
  argv.push_back(tools.run_dir);
  if (plan.num_processes > 1) argv.push_back("--prefix");
  if (plan.log_dir) {
    argv.push_back("--log-dir");
    argv.push_back(*plan.log_dir);
    argv.push_back("--tee");
    argv.push_back(std::to_string(plan.tee));
  }
  argv.push_back("--");
  argv.push_back(tools.program.string());
  argv.insert(argv.end(), plan.program_args.begin(), plan.program_args.end());
}

}  // namespace

EnvironmentList rank_environment(const LaunchPlan& plan) {
  EnvironmentList env;
  env.emplace_back("ACCELERATE_USE_CPU", plan.use_cpu ? "True" : "False");
  env.emplace_back("ACCELERATE_MIXED_PRECISION", plan.mixed_precision);
  if (plan.gradient_accumulation_steps) {
    env.emplace_back("ACCELERATE_GRADIENT_ACCUMULATION_STEPS",
                     std::to_string(*plan.gradient_accumulation_steps));
  }
  if (plan.debug) env.emplace_back("ACCELERATE_DEBUG_MODE", "true");
  env.emplace_back("OMP_NUM_THREADS", std::to_string(plan.num_cpu_threads_per_process));
  if (!plan.use_cpu && plan.gpu_ids != "all") {
    std::string ids;
    for (char c : plan.gpu_ids) {
      if (c != ' ') ids += c;
    }
    env.emplace_back("CUDA_VISIBLE_DEVICES", ids);
  }
  if (plan.main_process_ip) env.emplace_back("MASTER_ADDR", *plan.main_process_ip);
  if (plan.main_process_port)
    env.emplace_back("MASTER_PORT", std::to_string(*plan.main_process_port));
  if (plan.yield_when_idle && std::getenv("OMPI_MCA_mpi_yield_when_idle") == nullptr) {
    env.emplace_back("OMPI_MCA_mpi_yield_when_idle", "1");
  }
  return env;
}

EnvironmentList console_environment(int stdout_fd, int prefix_columns) {
  EnvironmentList env;
  if (::isatty(stdout_fd) != 1) {
    env.emplace_back("ACCEL_PROGRESS_BAR", "0");
    return env;
  }
  env.emplace_back("ACCEL_PROGRESS_BAR", "1");
  winsize size{};
  int columns = 0;
  if (::ioctl(stdout_fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) columns = size.ws_col;
  if (columns == 0) {
    if (const char* value = std::getenv("COLUMNS")) columns = std::atoi(value);
  }
  if (columns > prefix_columns) {
    env.emplace_back("ACCEL_PROGRESS_BAR_COLUMNS", std::to_string(columns - prefix_columns));
  }
  return env;
}

MpirunArgv build_mpirun_argv(const LaunchPlan& plan, const JobTools& tools) {
  MpirunArgv job;
  job.environment = rank_environment(plan);
  if (tools.console_fd >= 0) {
    const int prefix_columns =
        plan.num_processes > 1 ? static_cast<int>(std::string_view("[rank 0] ").size()) : 0;
    for (auto& entry : console_environment(tools.console_fd, prefix_columns)) {
      job.environment.push_back(std::move(entry));
    }
  }
  job.via_slurm = plan.use_slurm;
  std::vector<std::string>& argv = job.argv;
  argv.push_back(tools.launcher.string());
  if (plan.use_slurm) {
    argv.push_back("--mpi=pmix");
    argv.push_back(fmt::format("--ntasks={}", plan.num_processes));
    if (plan.num_machines > 1) argv.push_back(fmt::format("--nodes={}", plan.num_machines));
    argv.push_back("--kill-on-bad-exit=1");
    argv.push_back("--export=ALL");
  } else {
    argv.insert(argv.end(), {"-np", std::to_string(plan.num_processes)});
    if (tools.running_as_root) argv.push_back("--allow-run-as-root");
    if (plan.hostfile) {
      argv.insert(argv.end(), {"--hostfile", *plan.hostfile, "--npernode",
                               std::to_string(plan.num_processes / plan.num_machines)});
    }
    // Each rank runs its own OpenMP/intra-op threads: do not pin it to one core.
    argv.insert(argv.end(), {"--bind-to", "none"});
    if (plan.oversubscribe) argv.push_back("--oversubscribe");
    for (const auto& [name, value] : job.environment) {
      argv.push_back("-x");
      argv.push_back(fmt::format("{}={}", name, value));
    }
    argv.insert(argv.end(), plan.extra_mpirun_args.begin(), plan.extra_mpirun_args.end());
  }
  append_shim(argv, plan, tools);
  return job;
}

std::string shell_command_line(const std::vector<std::string>& argv) {
  std::string line;
  for (const auto& word : argv) {
    if (!line.empty()) line += ' ';
    line += shell_quote(word);
  }
  return line;
}

}  // namespace accel::launch
