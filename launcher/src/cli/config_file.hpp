#pragma once
// Accelerate-compatible config files (the YAML or JSON that `accelerate config` writes).
//
// load_config_file() reads one file and validates every key accel-launch honours; it throws
// ConfigError naming the file, the line and the key for bad YAML, wrong types and unsupported
// settings (distributed_type DEEPSPEED, a SageMaker compute_environment, ...). Keys Accelerate knows
// but accel-launch does not use are accepted silently when they keep their default value and reported
// in `warnings` otherwise; keys nobody knows are reported in `warnings` too, never fatal.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace accel::launch {

// A value read from a config file, with the line it came from (1-based) for messages.
template <typename T>
struct ConfigEntry {
  T value;
  int line = 0;
};

struct AccelerateConfig {
  std::filesystem::path path;
  std::optional<ConfigEntry<std::string>> compute_environment;  // LOCAL_MACHINE
  std::optional<ConfigEntry<std::string>> distributed_type;     // NO, MULTI_CPU, MULTI_GPU
  std::optional<ConfigEntry<std::string>> mixed_precision;      // no, fp16, bf16
  std::optional<ConfigEntry<bool>> use_cpu;
  std::optional<ConfigEntry<bool>> debug;
  std::optional<ConfigEntry<int>> num_processes;  // -1 means "pass --num_processes"
  std::optional<ConfigEntry<int>> num_machines;
  std::optional<ConfigEntry<int>> machine_rank;
  std::optional<ConfigEntry<std::string>> main_process_ip;
  std::optional<ConfigEntry<int>> main_process_port;
  std::optional<ConfigEntry<std::string>> gpu_ids;
  std::optional<ConfigEntry<std::string>> mpirun_hostfile;      // mpirun_config.mpirun_hostfile
  std::optional<ConfigEntry<int>> gradient_accumulation_steps;  // accel extension
  std::vector<std::string> warnings;  // unknown or ignored keys, one sentence each
  std::string text;                   // the file's content, for `config show` and `env`
};

// Where Accelerate looks when no --config_file is given:
// $HF_HOME/accelerate/default_config.yaml, else
// ${XDG_CACHE_HOME:-~/.cache}/huggingface/accelerate/default_config.yaml.
std::filesystem::path default_config_path();

// Reads and validates one config file. Throws ConfigError.
AccelerateConfig load_config_file(const std::filesystem::path& path);

// The config a launch uses: `explicit_path` when given (must exist), else the default file when it
// exists, else nothing.
std::optional<AccelerateConfig> find_config(const std::optional<std::string>& explicit_path);

// The text of a basic config for this machine, the same keys `accelerate config default` writes
// (CPU only when gpu_count is 0). Throws ConfigError for a mixed_precision other than no/fp16/bf16.
std::string default_config_text(const std::string& mixed_precision, int gpu_count);

// Writes default_config_text() to `path` (creating parent folders). Throws ConfigError when the
// file exists and `force` is false.
void write_default_config(const std::filesystem::path& path, const std::string& mixed_precision,
                          int gpu_count, bool force);

}  // namespace accel::launch
