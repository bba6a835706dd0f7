#pragma once
// Resolving a launch: command-line flags win over the config file, which wins over defaults.
// resolve_launch_plan() is pure (it reads no files and starts nothing) so that precedence can be
// tested directly; it throws UsageError/ConfigError for invalid values and combinations, naming
// the value and where it came from.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli/config_file.hpp"
#include "cli/launch_flags.hpp"

namespace accel::launch {

// What resolution needs to know about the machine and the calling environment.
struct HostFacts {
  int gpu_count = 0;                        // visible_gpu_count()
  int physical_cores = 1;                   // physical_core_count()
  std::optional<int> omp_num_threads;       // $OMP_NUM_THREADS when it is a positive integer
  std::optional<std::string> slurm_job_id;  // $SLURM_JOB_ID
};

HostFacts current_host_facts();

struct LaunchPlan {
  int num_processes = 1;
  int num_machines = 1;
  std::string mixed_precision = "no";
  bool use_cpu = false;
  bool multi_gpu = false;
  bool debug = false;
  bool quiet = false;
  std::string gpu_ids = "all";
  std::optional<int> gradient_accumulation_steps;
  int num_cpu_threads_per_process = 1;
  std::optional<std::string> main_process_ip;  // MASTER_ADDR (set when more than one process)
  std::optional<int> main_process_port;        // MASTER_PORT
  std::optional<std::string> hostfile;
  std::optional<std::string> log_dir;
  int tee = 0;  // bit 1 = stdout, bit 2 = stderr copied to log_dir
  bool use_slurm = false;
  bool oversubscribe = false;
  // More processes on a machine than it has cores: ranks waiting in MPI must yield the CPU instead
  // of spinning (OMPI_MCA_mpi_yield_when_idle=1), or they starve the ranks doing the work.
  bool yield_when_idle = false;
  std::vector<std::string> extra_mpirun_args;
  std::string program;
  std::vector<std::string> program_args;

  // Every resolved setting, its value and where it came from ("--num_processes",
  // "config file <path>:<line>", "default"), in a fixed order, for --dry_run and `env`.
  struct Source {
    std::string name;
    std::string value;
    std::string origin;
  };
  std::vector<Source> sources;
  // Things the user should know (defaults picked, automatic Slurm), printed unless --quiet.
  std::vector<std::string> notices;
};

LaunchPlan resolve_launch_plan(const LaunchFlags& flags,
                               const std::optional<AccelerateConfig>& config,
                               const HostFacts& host);

// Splits --mpirun_args like a shell (quotes, backslashes; no command substitution).
std::vector<std::string> split_shell_words(const std::string& text);

}  // namespace accel::launch
