#pragma once
// The launch flags exactly as the user typed them (nullopt / false = not given). Names follow
// `accelerate launch`. Resolution against the config file happens in launch_plan.hpp.
#include <optional>
#include <string>
#include <vector>

namespace accel::launch {

struct LaunchFlags {
  std::optional<int> num_processes;
  std::optional<int> num_machines;
  std::optional<int> machine_rank;
  std::optional<std::string> main_process_ip;
  std::optional<int> main_process_port;
  std::optional<std::string> mixed_precision;
  bool cpu = false;
  bool multi_gpu = false;
  std::optional<std::string> gpu_ids;
  std::optional<int> gradient_accumulation_steps;
  std::optional<int> num_cpu_threads_per_process;
  std::optional<std::string> config_file;
  std::optional<std::string> mpirun_hostfile;
  bool debug = false;
  bool quiet = false;
  std::optional<std::string> tee;      // "0".."3": which streams to copy into --log_dir
  std::optional<std::string> log_dir;  // per-rank log files go here
  bool dry_run = false;
  std::optional<std::string> mpirun_args;  // extra mpirun arguments, split like a shell would
  bool oversubscribe = false;
  std::optional<bool> slurm;  // --slurm / --no_slurm; unset = automatic inside an allocation

  std::string program;
  std::vector<std::string> program_args;
};

}  // namespace accel::launch
