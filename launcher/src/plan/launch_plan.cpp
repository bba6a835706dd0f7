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

class Resolver {
 public:
  Resolver(const LaunchFlags& flags, const std::optional<AccelerateConfig>& config, LaunchPlan& plan)
      : flags_(flags), config_(config), plan_(plan) {}

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

 private:
  const LaunchFlags& flags_;
  const std::optional<AccelerateConfig>& config_;
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
  Resolver r(flags, config, plan);
  plan.quiet = flags.quiet;
  plan.program = flags.program;
  plan.program_args = flags.program_args;
  plan.oversubscribe = flags.oversubscribe;

  // Device kind: --cpu / --multi_gpu, else the config's use_cpu / distributed_type, else
  // CPU exactly when no GPU is visible.
  if (flags.cpu && flags.multi_gpu) {
    throw UsageError("--cpu and --multi_gpu cannot be used together; pick one");
  }
  std::string device_source = "default";
  if (flags.cpu) {
    plan.use_cpu = true;
    device_source = "--cpu";
  } else if (flags.multi_gpu) {
    plan.multi_gpu = true;
    device_source = "--multi_gpu";
  } else if (config && (config->use_cpu || config->distributed_type)) {
    const bool cpu_type = config->distributed_type && config->distributed_type->value == "MULTI_CPU";
    plan.use_cpu = (config->use_cpu && config->use_cpu->value) || cpu_type;
    plan.multi_gpu = !plan.use_cpu && config->distributed_type &&
                     config->distributed_type->value == "MULTI_GPU";
    const int line = config->use_cpu ? config->use_cpu->line : config->distributed_type->line;
    device_source = r.config_source(line);
  } else {
    plan.use_cpu = host.gpu_count == 0;
    device_source = plan.use_cpu ? "default (no GPU visible)" : "default";
  }
  r.record("use_cpu", plan.use_cpu ? "true" : "false", device_source);

  // Process count.
  const int default_processes = plan.use_cpu ? 1 : std::max(1, host.gpu_count);
  auto processes = r.pick<int>("num_processes", flags.num_processes,
                               &AccelerateConfig::num_processes, default_processes);
  if (processes.value == -1 && !flags.num_processes) {
    throw ConfigError(fmt::format("{} sets num_processes: -1, which means the count must be given "
                                  "on the command line; pass --num_processes N",
                                  processes.source));
  }
  if (processes.value < 1) r.invalid("num_processes", processes, "it must be at least 1");
  plan.num_processes = processes.value;
  if (!flags.num_processes && !(config && config->num_processes)) {
    plan.notices.push_back(fmt::format(
        "--num_processes was not given; using {} ({})", plan.num_processes,
        plan.use_cpu ? "one CPU process" : "one process per visible GPU"));
  }
  if (!plan.use_cpu && !plan.multi_gpu && host.gpu_count > 1 && plan.num_processes > 1) {
    plan.multi_gpu = true;
  }
  if (plan.multi_gpu && plan.num_processes < 2) {
    throw UsageError(fmt::format(
        "multi-GPU training (from {}) needs at least 2 processes, but num_processes = {} (from "
        "{}); pass --num_processes 2 or more",
        device_source, plan.num_processes, processes.source));
  }

  auto machines = r.pick<int>("num_machines", flags.num_machines, &AccelerateConfig::num_machines, 1);
  if (machines.value < 1) r.invalid("num_machines", machines, "it must be at least 1");
  plan.num_machines = machines.value;

  auto machine_rank =
      r.pick<int>("machine_rank", flags.machine_rank, &AccelerateConfig::machine_rank, 0);
  if (machine_rank.value != 0) {
    r.invalid("machine_rank", machine_rank,
              "accel-launch starts every machine from the main machine through mpirun's host "
              "list, so run it only there, with machine_rank 0");
  }

  auto precision = r.pick<std::string>("mixed_precision", flags.mixed_precision,
                                       &AccelerateConfig::mixed_precision, "no");
  if (precision.value != "no" && precision.value != "fp16" && precision.value != "bf16") {
    r.invalid("mixed_precision", precision, "use no, fp16 or bf16");
  }
  plan.mixed_precision = precision.value;

  auto gpu_ids = r.pick<std::string>("gpu_ids", flags.gpu_ids, &AccelerateConfig::gpu_ids, "all");
  if (gpu_ids.value != "all" && !is_gpu_id_list(gpu_ids.value)) {
    r.invalid("gpu_ids", gpu_ids, "give 'all' or comma-separated GPU numbers such as 0,1");
  }
  plan.gpu_ids = gpu_ids.value;
  if (plan.multi_gpu && plan.gpu_ids != "all" && plan.num_machines <= 1 &&
      plan.gpu_ids.find(',') == std::string::npos) {
    r.invalid("gpu_ids", gpu_ids,
              "multi-GPU training needs at least two GPU ids; list two or more, or use 'all'");
  }

  plan.debug = flags.debug || (config && config->debug && config->debug->value);
  r.record("debug", plan.debug ? "true" : "false", flags.debug ? "--debug"
                    : (config && config->debug) ? r.config_source(config->debug->line)
                                                : "default");

  auto accumulation = r.pick<int>("gradient_accumulation_steps", flags.gradient_accumulation_steps,
                                  &AccelerateConfig::gradient_accumulation_steps, 0, "not set");
  if (accumulation.source == "not set") plan.sources.back().value = "";
  if (flags.gradient_accumulation_steps || (config && config->gradient_accumulation_steps)) {
    if (accumulation.value < 1) r.invalid("gradient_accumulation_steps", accumulation, "it must be at least 1");
    plan.gradient_accumulation_steps = accumulation.value;
  }

  // Threads per process: flag, else $OMP_NUM_THREADS, else (CPU training) the physical cores
  // shared by the processes of one machine, as accelerate does.
  if (flags.num_cpu_threads_per_process) {
    plan.num_cpu_threads_per_process = *flags.num_cpu_threads_per_process;
    if (plan.num_cpu_threads_per_process < 1) {
      r.invalid("num_cpu_threads_per_process",
                Resolved<int>{plan.num_cpu_threads_per_process, "--num_cpu_threads_per_process"},
                "it must be at least 1");
    }
    r.record("num_cpu_threads_per_process", std::to_string(plan.num_cpu_threads_per_process),
             "--num_cpu_threads_per_process");
  } else if (host.omp_num_threads) {
    plan.num_cpu_threads_per_process = *host.omp_num_threads;
    r.record("num_cpu_threads_per_process", std::to_string(plan.num_cpu_threads_per_process),
             "$OMP_NUM_THREADS");
  } else {
    const int per_machine = std::max(1, plan.num_processes / plan.num_machines);
    plan.num_cpu_threads_per_process =
        plan.use_cpu ? std::max(1, host.physical_cores / per_machine) : 1;
    r.record("num_cpu_threads_per_process", std::to_string(plan.num_cpu_threads_per_process),
             "default");
  }

  {
    const int per_machine = std::max(1, plan.num_processes / plan.num_machines);
    plan.yield_when_idle = plan.oversubscribe || per_machine > host.physical_cores;
  }

  auto hostfile = r.pick<std::string>("mpirun_hostfile", flags.mpirun_hostfile,
                                      &AccelerateConfig::mpirun_hostfile, "", "not set");
  if (!hostfile.value.empty()) plan.hostfile = hostfile.value;

  if (flags.mpirun_args) plan.extra_mpirun_args = split_shell_words(*flags.mpirun_args);

  // Slurm: explicit --slurm/--no_slurm, else automatic inside an allocation without a hostfile.
  if (flags.slurm) {
    plan.use_slurm = *flags.slurm;
    if (plan.use_slurm && !host.slurm_job_id) {
      plan.notices.push_back("--slurm was given but SLURM_JOB_ID is not set; srun will ask Slurm "
                             "for a new allocation");
    }
    r.record("slurm", plan.use_slurm ? "true" : "false", *flags.slurm ? "--slurm" : "--no_slurm");
  } else if (host.slurm_job_id && !plan.hostfile && !mentions_hosts(plan.extra_mpirun_args)) {
    plan.use_slurm = true;
    plan.notices.push_back(fmt::format(
        "inside Slurm allocation {}: launching with srun --mpi=pmix (pass --no_slurm to use "
        "mpirun)",
        *host.slurm_job_id));
    r.record("slurm", "true", "$SLURM_JOB_ID");
  }

  if (plan.num_machines > 1 && !plan.use_slurm) {
    if (!plan.hostfile && !mentions_hosts(plan.extra_mpirun_args)) {
      r.invalid("num_machines", machines,
                "a launch over several machines needs their list: pass --mpirun_hostfile FILE "
                "(one line per machine: `hostname slots=N`)");
    }
    if (plan.num_processes % plan.num_machines != 0) {
      throw UsageError(fmt::format(
          "num_processes = {} (from {}) must be a multiple of num_machines = {} (from {}) so that "
          "every machine runs the same number of processes",
          plan.num_processes, processes.source, plan.num_machines, machines.source));
    }
  }

  // Rendezvous address seen by the program (MASTER_ADDR/MASTER_PORT), as accelerate sets it.
  auto ip = r.pick<std::string>("main_process_ip", flags.main_process_ip,
                                &AccelerateConfig::main_process_ip, "", "not set");
  auto port = r.pick<int>("main_process_port", flags.main_process_port,
                          &AccelerateConfig::main_process_port, kDefaultMainProcessPort);
  if (port.value < 1 || port.value > 65535) r.invalid("main_process_port", port, "use a TCP port between 1 and 65535");
  if (plan.num_machines > 1 && ip.value.empty()) {
    throw UsageError("a launch over several machines needs --main_process_ip (the address of the "
                     "machine that runs rank 0)");
  }
  if (plan.num_processes > 1 || plan.num_machines > 1) {
    plan.main_process_ip = ip.value.empty() ? "127.0.0.1" : ip.value;
    plan.main_process_port = port.value;
    if (ip.value.empty()) {
      for (auto& source : plan.sources) {
        if (source.name == "main_process_ip") source = {"main_process_ip", "127.0.0.1", "default"};
      }
    }
  }

  // Per-rank logs.
  if (flags.tee) {
    const std::string& tee = *flags.tee;
    if (tee.size() != 1 || tee[0] < '0' || tee[0] > '3') {
      throw UsageError(fmt::format("--tee {} is invalid: use 0 (no streams), 1 (stdout), 2 (stderr) "
                                   "or 3 (both)",
                                   tee));
    }
    plan.tee = tee[0] - '0';
    if (plan.tee != 0 && !flags.log_dir) {
      throw UsageError(fmt::format("--tee {} needs --log_dir DIR to say where the per-rank log files go",
                                   tee));
    }
  }
  if (flags.log_dir) {
    if (flags.log_dir->empty()) throw UsageError("--log_dir is empty; give a folder for the per-rank logs");
    plan.log_dir = *flags.log_dir;
    if (!flags.tee) plan.tee = 3;
  }
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
      if (c == '\'') quote = 0; else word += c;
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
