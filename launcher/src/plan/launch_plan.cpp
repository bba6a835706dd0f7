#include "plan/launch_plan.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <string_view>

#include "plan/launch_error.hpp"
#include "plan/machine_info.hpp"

namespace accel::launch {
namespace {

constexpr int kDefaultMainProcessPort = 29500;

// A resolved value and where it came from.
template <typename T>
struct Resolved {
  T value;
  std::string source;
};

// Resolves one LaunchPlan: one step per group of settings, run by resolve_launch_plan() in the order
// the settings appear in plan.sources (and in which their errors are reported).
class Resolver {
 public:
  Resolver(const LaunchFlags& flags, const std::optional<AccelerateConfig>& config,
           const HostFacts& host, LaunchPlan& plan)
      : flags_(flags), config_(config), host_(host), plan_(plan) {}

  std::string config_source(int line) const {
    return fmt::format("config file {}:{}", config_->path.string(), line);
  }

  // flag > config entry > fallback.
  template <typename T>
  Resolved<T> pick(const char* name, const std::optional<T>& flag,
                   const std::optional<ConfigEntry<T>> AccelerateConfig::*entry, T fallback,
                   std::string fallback_source = "default") {
    Resolved<T> result{std::move(fallback), std::move(fallback_source)};
    if (flag) {
      result = {*flag, fmt::format("--{}", name)};
    } else if (config_ && (*config_).*entry) {
      const auto& e = *((*config_).*entry);
      result = {e.value, config_source(e.line)};
    }
    record(name, fmt::format("{}", result.value), result.source);
    return result;
  }

  void record(const std::string& name, const std::string& value, const std::string& source) {
    plan_.sources.push_back({name, value, source});
  }

  template <typename T>
  [[noreturn]] void invalid(const char* name, const Resolved<T>& value, const std::string& fix) {
    throw UsageError(
        fmt::format("{} = {} (from {}) is invalid: {}", name, value.value, value.source, fix));
  }

  // The steps. Each resolves its settings into the plan and records where they came from.
  void copy_program_and_switches();
  std::string resolve_device();  // returns where the device kind came from
  Resolved<int> resolve_num_processes(const std::string& device_source);
  Resolved<int> resolve_machines();
  void resolve_mixed_precision();
  void resolve_gpu_ids();
  void resolve_debug();
  void resolve_gradient_accumulation();
  void resolve_cpu_threads();
  void resolve_hostfile_and_mpirun_args();
  void resolve_slurm();
  void check_machine_list(const Resolved<int>& processes, const Resolved<int>& machines);
  void resolve_rendezvous();
  void resolve_rank_logs();

 private:
  const LaunchFlags& flags_;
  const std::optional<AccelerateConfig>& config_;
  const HostFacts& host_;
  LaunchPlan& plan_;
};

bool is_gpu_id_list(std::string_view ids) {
  if (ids.empty()) return false;
  bool digit_seen = false;
  for (char c : ids) {
    if (c == ',') {
      if (!digit_seen) return false;
      digit_seen = false;
    } else if (c >= '0' && c <= '9') {
      digit_seen = true;
    } else if (c != ' ') {
      return false;
    }
  }
  return digit_seen;
}

bool mentions_hosts(const std::vector<std::string>& mpirun_args) {
  for (const auto& arg : mpirun_args) {
    if (arg == "-H" || arg == "--host" || arg == "-host" || arg == "--hostfile" ||
        arg == "-hostfile" || arg == "--machinefile" || arg == "-machinefile" ||
        arg.starts_with("--host=") || arg.starts_with("--hostfile=")) {
      return true;
    }
  }
  return false;
}

void Resolver::copy_program_and_switches() {
  plan_.quiet = flags_.quiet;
  plan_.program = flags_.program;
  plan_.program_args = flags_.program_args;
  plan_.oversubscribe = flags_.oversubscribe;
}

// Device kind: --cpu / --multi_gpu, else the config's use_cpu / distributed_type, else
// CPU exactly when no GPU is visible.
std::string Resolver::resolve_device() {
  if (flags_.cpu && flags_.multi_gpu) {
    throw UsageError("--cpu and --multi_gpu cannot be used together; pick one");
  }
  std::string device_source = "default";
  if (flags_.cpu) {
    plan_.use_cpu = true;
    device_source = "--cpu";
  } else if (flags_.multi_gpu) {
    plan_.multi_gpu = true;
    device_source = "--multi_gpu";
  } else if (config_ && (config_->use_cpu || config_->distributed_type)) {
    const bool cpu_type =
        config_->distributed_type && config_->distributed_type->value == "MULTI_CPU";
    plan_.use_cpu = (config_->use_cpu && config_->use_cpu->value) || cpu_type;
    plan_.multi_gpu = !plan_.use_cpu && config_->distributed_type &&
                      config_->distributed_type->value == "MULTI_GPU";
    const int line = config_->use_cpu ? config_->use_cpu->line : config_->distributed_type->line;
    device_source = config_source(line);
  } else {
    plan_.use_cpu = host_.gpu_count == 0;
    device_source = plan_.use_cpu ? "default (no GPU visible)" : "default";
  }
  record("use_cpu", plan_.use_cpu ? "true" : "false", device_source);
  return device_source;
}

// Process count.
Resolved<int> Resolver::resolve_num_processes(const std::string& device_source) {
  const int default_processes = plan_.use_cpu ? 1 : std::max(1, host_.gpu_count);
  auto processes = pick<int>("num_processes", flags_.num_processes,
                             &AccelerateConfig::num_processes, default_processes);
  if (processes.value == -1 && !flags_.num_processes) {
    throw ConfigError(
        fmt::format("{} sets num_processes: -1, which means the count must be given "
                    "on the command line; pass --num_processes N",
                    processes.source));
  }
  if (processes.value < 1) invalid("num_processes", processes, "it must be at least 1");
  plan_.num_processes = processes.value;
  if (!flags_.num_processes && !(config_ && config_->num_processes)) {
    plan_.notices.push_back(
        fmt::format("--num_processes was not given; using {} ({})", plan_.num_processes,
                    plan_.use_cpu ? "one CPU process" : "one process per visible GPU"));
  }
  if (!plan_.use_cpu && !plan_.multi_gpu && host_.gpu_count > 1 && plan_.num_processes > 1) {
    plan_.multi_gpu = true;
  }
  if (plan_.multi_gpu && plan_.num_processes < 2) {
    throw UsageError(fmt::format(
        "multi-GPU training (from {}) needs at least 2 processes, but num_processes = {} (from "
        "{}); pass --num_processes 2 or more",
        device_source, plan_.num_processes, processes.source));
  }
  return processes;
}

// num_machines, and machine_rank (which must be 0).
Resolved<int> Resolver::resolve_machines() {
  auto machines =
      pick<int>("num_machines", flags_.num_machines, &AccelerateConfig::num_machines, 1);
  if (machines.value < 1) invalid("num_machines", machines, "it must be at least 1");
  plan_.num_machines = machines.value;

  auto machine_rank =
      pick<int>("machine_rank", flags_.machine_rank, &AccelerateConfig::machine_rank, 0);
  if (machine_rank.value != 0) {
    invalid("machine_rank", machine_rank,
            "accel-launch starts every machine from the main machine through mpirun's host "
            "list, so run it only there, with machine_rank 0");
  }
  return machines;
}

void Resolver::resolve_mixed_precision() {
  auto precision = pick<std::string>("mixed_precision", flags_.mixed_precision,
                                     &AccelerateConfig::mixed_precision, "no");
  if (precision.value != "no" && precision.value != "fp16" && precision.value != "bf16") {
    invalid("mixed_precision", precision, "use no, fp16 or bf16");
  }
  plan_.mixed_precision = precision.value;
}

void Resolver::resolve_gpu_ids() {
  auto gpu_ids = pick<std::string>("gpu_ids", flags_.gpu_ids, &AccelerateConfig::gpu_ids, "all");
  if (gpu_ids.value != "all" && !is_gpu_id_list(gpu_ids.value)) {
    invalid("gpu_ids", gpu_ids, "give 'all' or comma-separated GPU numbers such as 0,1");
  }
  plan_.gpu_ids = gpu_ids.value;
  if (plan_.multi_gpu && plan_.gpu_ids != "all" && plan_.num_machines <= 1 &&
      plan_.gpu_ids.find(',') == std::string::npos) {
    invalid("gpu_ids", gpu_ids,
            "multi-GPU training needs at least two GPU ids; list two or more, or use 'all'");
  }
}

void Resolver::resolve_debug() {
  plan_.debug = flags_.debug || (config_ && config_->debug && config_->debug->value);
  record("debug", plan_.debug ? "true" : "false",
         flags_.debug                  ? "--debug"
         : (config_ && config_->debug) ? config_source(config_->debug->line)
                                       : "default");
}

void Resolver::resolve_gradient_accumulation() {
  auto accumulation = pick<int>("gradient_accumulation_steps", flags_.gradient_accumulation_steps,
                                &AccelerateConfig::gradient_accumulation_steps, 0, "not set");
  if (accumulation.source == "not set") plan_.sources.back().value = "";
  if (flags_.gradient_accumulation_steps || (config_ && config_->gradient_accumulation_steps)) {
    if (accumulation.value < 1)
      invalid("gradient_accumulation_steps", accumulation, "it must be at least 1");
    plan_.gradient_accumulation_steps = accumulation.value;
  }
}

// Threads per process: flag, else $OMP_NUM_THREADS, else (CPU training) the physical cores
// shared by the processes of one machine, as accelerate does.
void Resolver::resolve_cpu_threads() {
  if (flags_.num_cpu_threads_per_process) {
    plan_.num_cpu_threads_per_process = *flags_.num_cpu_threads_per_process;
    if (plan_.num_cpu_threads_per_process < 1) {
      invalid("num_cpu_threads_per_process",
              Resolved<int>{plan_.num_cpu_threads_per_process, "--num_cpu_threads_per_process"},
              "it must be at least 1");
    }
    record("num_cpu_threads_per_process", std::to_string(plan_.num_cpu_threads_per_process),
           "--num_cpu_threads_per_process");
  } else if (host_.omp_num_threads) {
    plan_.num_cpu_threads_per_process = *host_.omp_num_threads;
    record("num_cpu_threads_per_process", std::to_string(plan_.num_cpu_threads_per_process),
           "$OMP_NUM_THREADS");
  } else {
    const int per_machine = std::max(1, plan_.num_processes / plan_.num_machines);
    plan_.num_cpu_threads_per_process =
        plan_.use_cpu ? std::max(1, host_.physical_cores / per_machine) : 1;
    record("num_cpu_threads_per_process", std::to_string(plan_.num_cpu_threads_per_process),
           "default");
  }

  {
    const int per_machine = std::max(1, plan_.num_processes / plan_.num_machines);
    plan_.yield_when_idle = plan_.oversubscribe || per_machine > host_.physical_cores;
  }
}

void Resolver::resolve_hostfile_and_mpirun_args() {
  auto hostfile = pick<std::string>("mpirun_hostfile", flags_.mpirun_hostfile,
                                    &AccelerateConfig::mpirun_hostfile, "", "not set");
  if (!hostfile.value.empty()) plan_.hostfile = hostfile.value;

  if (flags_.mpirun_args) plan_.extra_mpirun_args = split_shell_words(*flags_.mpirun_args);
}

// Slurm: explicit --slurm/--no_slurm, else automatic inside an allocation without a hostfile.
void Resolver::resolve_slurm() {
  if (flags_.slurm) {
    plan_.use_slurm = *flags_.slurm;
    if (plan_.use_slurm && !host_.slurm_job_id) {
      plan_.notices.push_back(
          "--slurm was given but SLURM_JOB_ID is not set; srun will ask Slurm "
          "for a new allocation");
    }
    record("slurm", plan_.use_slurm ? "true" : "false", *flags_.slurm ? "--slurm" : "--no_slurm");
  } else if (host_.slurm_job_id && !plan_.hostfile && !mentions_hosts(plan_.extra_mpirun_args)) {
    plan_.use_slurm = true;
    plan_.notices.push_back(fmt::format(
        "inside Slurm allocation {}: launching with srun --mpi=pmix (pass --no_slurm to use "
        "mpirun)",
        *host_.slurm_job_id));
    record("slurm", "true", "$SLURM_JOB_ID");
  }
}

// Several machines under mpirun: their list must be given, and each runs as many processes.
void Resolver::check_machine_list(const Resolved<int>& processes, const Resolved<int>& machines) {
  if (plan_.num_machines > 1 && !plan_.use_slurm) {
    if (!plan_.hostfile && !mentions_hosts(plan_.extra_mpirun_args)) {
      invalid("num_machines", machines,
              "a launch over several machines needs their list: pass --mpirun_hostfile FILE "
              "(one line per machine: `hostname slots=N`)");
    }
    if (plan_.num_processes % plan_.num_machines != 0) {
      throw UsageError(fmt::format(
          "num_processes = {} (from {}) must be a multiple of num_machines = {} (from {}) so that "
          "every machine runs the same number of processes",
          plan_.num_processes, processes.source, plan_.num_machines, machines.source));
    }
  }
}

// Rendezvous address seen by the program (MASTER_ADDR/MASTER_PORT), as accelerate sets it.
void Resolver::resolve_rendezvous() {
  auto ip = pick<std::string>("main_process_ip", flags_.main_process_ip,
                              &AccelerateConfig::main_process_ip, "", "not set");
  auto port = pick<int>("main_process_port", flags_.main_process_port,
                        &AccelerateConfig::main_process_port, kDefaultMainProcessPort);
  if (port.value < 1 || port.value > 65535)
    invalid("main_process_port", port, "use a TCP port between 1 and 65535");
  if (plan_.num_machines > 1 && ip.value.empty()) {
    throw UsageError(
        "a launch over several machines needs --main_process_ip (the address of the "
        "machine that runs rank 0)");
  }
  if (plan_.num_processes > 1 || plan_.num_machines > 1) {
    plan_.main_process_ip = ip.value.empty() ? "127.0.0.1" : ip.value;
    plan_.main_process_port = port.value;
    if (ip.value.empty()) {
      for (auto& source : plan_.sources) {
        if (source.name == "main_process_ip") source = {"main_process_ip", "127.0.0.1", "default"};
      }
    }
  }
}

// Per-rank logs.
void Resolver::resolve_rank_logs() {
  if (flags_.tee) {
    const std::string& tee = *flags_.tee;
    if (tee.size() != 1 || tee[0] < '0' || tee[0] > '3') {
      throw UsageError(
          fmt::format("--tee {} is invalid: use 0 (no streams), 1 (stdout), 2 (stderr) "
                      "or 3 (both)",
                      tee));
    }
    plan_.tee = tee[0] - '0';
    if (plan_.tee != 0 && !flags_.log_dir) {
      throw UsageError(
          fmt::format("--tee {} needs --log_dir DIR to say where the per-rank log files go", tee));
    }
  }
  if (flags_.log_dir) {
    if (flags_.log_dir->empty())
      throw UsageError("--log_dir is empty; give a folder for the per-rank logs");
    plan_.log_dir = *flags_.log_dir;
    if (!flags_.tee) plan_.tee = 3;
  }
}

}  // namespace

HostFacts current_host_facts() {
  HostFacts facts;
  facts.gpu_count = visible_gpu_count();
  facts.physical_cores = physical_core_count();
  if (const char* omp = std::getenv("OMP_NUM_THREADS")) {
    char* end = nullptr;
    long value = std::strtol(omp, &end, 10);
    if (end != omp && *end == '\0' && value > 0) facts.omp_num_threads = static_cast<int>(value);
  }
  if (const char* job = std::getenv("SLURM_JOB_ID"); job && *job) facts.slurm_job_id = job;
  return facts;
}

LaunchPlan resolve_launch_plan(const LaunchFlags& flags,
                               const std::optional<AccelerateConfig>& config,
                               const HostFacts& host) {
  LaunchPlan plan;
  Resolver r(flags, config, host, plan);
  r.copy_program_and_switches();
  const std::string device_source = r.resolve_device();
  const Resolved<int> processes = r.resolve_num_processes(device_source);
  const Resolved<int> machines = r.resolve_machines();
  r.resolve_mixed_precision();
  r.resolve_gpu_ids();
  r.resolve_debug();
  r.resolve_gradient_accumulation();
  r.resolve_cpu_threads();
  r.resolve_hostfile_and_mpirun_args();
  r.resolve_slurm();
  r.check_machine_list(processes, machines);
  r.resolve_rendezvous();
  r.resolve_rank_logs();
  return plan;
}

std::vector<std::string> split_shell_words(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quote == '\'') {
      if (c == '\'')
        quote = 0;
      else
        word += c;
    } else if (quote == '"') {
      if (c == '"') {
        quote = 0;
      } else if (c == '\\' && i + 1 < text.size() &&
                 std::string_view("\"\\$`").find(text[i + 1]) != std::string_view::npos) {
        word += text[++i];
      } else {
        word += c;
      }
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      in_word = true;
      if (c == '\'' || c == '"') {
        quote = c;
      } else if (c == '\\' && i + 1 < text.size()) {
        word += text[++i];
      } else {
        word += c;
      }
    }
  }
  if (quote != 0) {
    throw UsageError(fmt::format("--mpirun_args \"{}\" has an unbalanced {} quote", text, quote));
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

}  // namespace accel::launch
