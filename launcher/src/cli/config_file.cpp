#include "cli/config_file.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <array>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "plan/launch_error.hpp"

namespace accel::launch {
namespace {

namespace fs = std::filesystem;

std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

fs::path expand_home(const std::string& path) {
  if (path.starts_with("~"))
    return fs::path(env_or_empty("HOME")) / path.substr(path.size() > 1 ? 2 : 1);
  return path;
}

int line_of(const YAML::Node& node) {
  return node.Mark().line + 1;
}

class ConfigReader {
 public:
  ConfigReader(const fs::path& path, YAML::Node root) : path_(path), root_(std::move(root)) {}

  [[noreturn]] void fail(const YAML::Node& node, const std::string& key,
                         const std::string& what) const {
    throw ConfigError(fmt::format("{}:{}: key '{}' {}", path_.string(), line_of(node), key, what));
  }

  template <typename T>
  std::optional<ConfigEntry<T>> read(const YAML::Node& map, const std::string& key,
                                     const char* expected) const {
    YAML::Node node = map[key];
    if (!node || node.IsNull()) return std::nullopt;
    if (!node.IsScalar())
      fail(node, key, fmt::format("must be {}, not a list or mapping", expected));
    try {
      return ConfigEntry<T>{node.as<T>(), line_of(node)};
    } catch (const YAML::BadConversion&) {
      fail(node, key, fmt::format("must be {}, got '{}'", expected, node.Scalar()));
    }
  }

  std::optional<ConfigEntry<int>> read_int(const YAML::Node& map, const std::string& key) const {
    return read<int>(map, key, "an integer");
  }
  std::optional<ConfigEntry<bool>> read_bool(const YAML::Node& map, const std::string& key) const {
    return read<bool>(map, key, "true or false");
  }
  std::optional<ConfigEntry<std::string>> read_string(const YAML::Node& map,
                                                      const std::string& key) const {
    return read<std::string>(map, key, "a string");
  }

 private:
  fs::path path_;
  YAML::Node root_;
};

// Keys accel-launch reads.
const std::set<std::string> kHonouredKeys = {"compute_environment",
                                             "distributed_type",
                                             "mixed_precision",
                                             "use_cpu",
                                             "debug",
                                             "num_processes",
                                             "num_machines",
                                             "machine_rank",
                                             "main_process_ip",
                                             "main_process_port",
                                             "gpu_ids",
                                             "mpirun_config",
                                             "gradient_accumulation_steps",
                                             "fp16"};

// Keys Accelerate writes that change nothing for accel-launch while they keep their default.
const std::set<std::string> kAccelerateOnlyKeys = {"downcast_bf16",
                                                   "enable_cpu_affinity",
                                                   "main_training_function",
                                                   "rdzv_backend",
                                                   "same_network",
                                                   "tpu_use_cluster",
                                                   "tpu_use_sudo",
                                                   "tpu_name",
                                                   "tpu_zone",
                                                   "command_file",
                                                   "commands",
                                                   "tpu_vm",
                                                   "tpu_env",
                                                   "dynamo_config",
                                                   "dynamo_backend",
                                                   "deepspeed_config",
                                                   "fsdp_config",
                                                   "megatron_lm_config",
                                                   "fp8_config",
                                                   "parallelism_config",
                                                   "ipex_config",
                                                   "use_mps_device"};

bool is_set(const YAML::Node& node) {
  if (!node || node.IsNull()) return false;
  if (node.IsMap() || node.IsSequence()) return node.size() > 0;
  const std::string& s = node.Scalar();
  return s == "true" || s == "True" || s == "yes";
}

void check_supported(ConfigReader& reader, const YAML::Node& root, AccelerateConfig& config) {
  if (config.compute_environment && config.compute_environment->value != "LOCAL_MACHINE") {
    reader.fail(root["compute_environment"], "compute_environment",
                fmt::format("is '{}': accel-launch supports only LOCAL_MACHINE (set "
                            "compute_environment: LOCAL_MACHINE)",
                            config.compute_environment->value));
  }
  if (config.distributed_type) {
    static const std::array<std::string, 3> supported = {"NO", "MULTI_CPU", "MULTI_GPU"};
    const std::string& type = config.distributed_type->value;
    if (std::find(supported.begin(), supported.end(), type) == supported.end()) {
      reader.fail(root["distributed_type"], "distributed_type",
                  fmt::format("is '{}', which accel-launch does not support; use NO, MULTI_CPU "
                              "or MULTI_GPU",
                              type));
    }
  }
  if (config.mixed_precision) {
    const std::string& mp = config.mixed_precision->value;
    if (mp != "no" && mp != "fp16" && mp != "bf16") {
      reader.fail(root["mixed_precision"], "mixed_precision",
                  fmt::format("is '{}'; accel supports no, fp16 or bf16", mp));
    }
  }
}

}  // namespace

fs::path default_config_path() {
  std::string hf_home = env_or_empty("HF_HOME");
  if (hf_home.empty()) {
    std::string cache = env_or_empty("XDG_CACHE_HOME");
    hf_home = (cache.empty() ? expand_home("~/.cache") : fs::path(cache)) / "huggingface";
  }
  return expand_home(hf_home) / "accelerate" / "default_config.yaml";
}

AccelerateConfig load_config_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) {
    throw ConfigError(fmt::format(
        "config file '{}' cannot be read ({}); pass an existing file to --config_file or write one "
        "with `accel-launch config default --config_file {}`",
        path.string(), fs::exists(path) ? "permission denied" : "no such file", path.string()));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  AccelerateConfig config;
  config.path = path;
  config.text = buffer.str();

  YAML::Node root;
  try {
    root = YAML::Load(config.text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(fmt::format("{}:{}:{}: not valid YAML or JSON: {}", path.string(),
                                  e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  if (!root || root.IsNull()) {
    throw ConfigError(
        fmt::format("config file '{}' is empty; write one with `accel-launch config "
                    "default --config_file {}`",
                    path.string(), path.string()));
  }
  if (!root.IsMap()) {
    throw ConfigError(
        fmt::format("{}:{}: a config file must be a mapping of keys "
                    "(compute_environment: ..., num_processes: ...)",
                    path.string(), line_of(root)));
  }

  ConfigReader reader(path, root);
  config.compute_environment = reader.read_string(root, "compute_environment");
  config.distributed_type = reader.read_string(root, "distributed_type");
  config.mixed_precision = reader.read_string(root, "mixed_precision");
  if (!config.mixed_precision) {
    if (auto fp16 = reader.read_bool(root, "fp16"); fp16 && fp16->value) {
      config.mixed_precision = ConfigEntry<std::string>{"fp16", fp16->line};
    }
  }
  config.use_cpu = reader.read_bool(root, "use_cpu");
  config.debug = reader.read_bool(root, "debug");
  config.num_processes = reader.read_int(root, "num_processes");
  config.num_machines = reader.read_int(root, "num_machines");
  config.machine_rank = reader.read_int(root, "machine_rank");
  config.main_process_ip = reader.read_string(root, "main_process_ip");
  config.main_process_port = reader.read_int(root, "main_process_port");
  config.gpu_ids = reader.read_string(root, "gpu_ids");
  config.gradient_accumulation_steps = reader.read_int(root, "gradient_accumulation_steps");
  if (YAML::Node mpirun = root["mpirun_config"]; mpirun && !mpirun.IsNull()) {
    if (!mpirun.IsMap())
      reader.fail(mpirun, "mpirun_config", "must be a mapping (mpirun_hostfile: ...)");
    config.mpirun_hostfile = reader.read_string(mpirun, "mpirun_hostfile");
    if (config.mpirun_hostfile) {
      config.mpirun_hostfile->value = expand_home(config.mpirun_hostfile->value).string();
    }
  }
  check_supported(reader, root, config);

  for (const auto& item : root) {
    const std::string key = item.first.as<std::string>();
    if (kHonouredKeys.contains(key)) continue;
    if (kAccelerateOnlyKeys.contains(key)) {
      if (is_set(item.second)) {
        config.warnings.push_back(
            fmt::format("{}:{}: key '{}' is ignored: accel-launch does not implement it",
                        path.string(), line_of(item.first), key));
      }
      continue;
    }
    config.warnings.push_back(
        fmt::format("{}:{}: unknown key '{}' is ignored", path.string(), line_of(item.first), key));
  }
  return config;
}

std::optional<AccelerateConfig> find_config(const std::optional<std::string>& explicit_path) {
  if (explicit_path) return load_config_file(*explicit_path);
  fs::path fallback = default_config_path();
  std::error_code ec;
  if (fs::is_regular_file(fallback, ec)) return load_config_file(fallback);
  return std::nullopt;
}

std::string default_config_text(const std::string& mixed_precision, int gpu_count) {
  if (mixed_precision != "no" && mixed_precision != "fp16" && mixed_precision != "bf16") {
    throw ConfigError(fmt::format("--mixed_precision '{}' is not supported; use no, fp16 or bf16",
                                  mixed_precision));
  }
  const bool cpu = gpu_count <= 0;
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "compute_environment" << YAML::Value << "LOCAL_MACHINE";
  out << YAML::Key << "debug" << YAML::Value << false;
  // Quoted: YAML 1.1 readers (PyYAML, which accelerate uses) take a bare NO or no for false.
  out << YAML::Key << "distributed_type" << YAML::Value << YAML::SingleQuoted
      << (gpu_count > 1 ? "MULTI_GPU" : "NO");
  out << YAML::Key << "downcast_bf16" << YAML::Value << false;
  out << YAML::Key << "enable_cpu_affinity" << YAML::Value << false;
  out << YAML::Key << "machine_rank" << YAML::Value << 0;
  out << YAML::Key << "main_training_function" << YAML::Value << "main";
  out << YAML::Key << "mixed_precision" << YAML::Value << YAML::SingleQuoted << mixed_precision;
  out << YAML::Key << "num_machines" << YAML::Value << 1;
  out << YAML::Key << "num_processes" << YAML::Value << (cpu ? 1 : gpu_count);
  out << YAML::Key << "rdzv_backend" << YAML::Value << "static";
  out << YAML::Key << "same_network" << YAML::Value << false;
  out << YAML::Key << "tpu_use_cluster" << YAML::Value << false;
  out << YAML::Key << "tpu_use_sudo" << YAML::Value << false;
  out << YAML::Key << "use_cpu" << YAML::Value << cpu;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

void write_default_config(const fs::path& path, const std::string& mixed_precision, int gpu_count,
                          bool force) {
  const std::string text = default_config_text(mixed_precision, gpu_count);
  std::error_code ec;
  if (fs::exists(path, ec) && !force) {
    throw ConfigError(
        fmt::format("config file '{}' already exists; not overwriting it (pass "
                    "--force to replace it, or --config_file to write elsewhere)",
                    path.string()));
  }
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    throw ConfigError(
        fmt::format("cannot write config file '{}'; check that its folder is "
                    "writable",
                    path.string()));
  }
}

}  // namespace accel::launch
