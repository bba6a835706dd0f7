#include "cli/config_command.hpp"

#include <fmt/format.h>

#include "cli/config_file.hpp"
#include "plan/machine_info.hpp"

namespace accel::launch {

int run_config_default(const std::optional<std::string>& config_file,
                       const std::string& mixed_precision, bool force) {
  const std::filesystem::path path =
      config_file ? std::filesystem::path(*config_file) : default_config_path();
  write_default_config(path, mixed_precision, visible_gpu_count(), force);
  fmt::print("accel-launch configuration saved at {}\n", path.string());
  return 0;
}

int run_config_show(const std::optional<std::string>& config_file) {
  const std::optional<AccelerateConfig> config = find_config(config_file);
  if (!config) {
    fmt::print(stderr,
               "accel-launch: no config file at {}; write one with `accel-launch config default`\n",
               default_config_path().string());
    return 1;
  }
  fmt::print("# {}\n{}", config->path.string(), config->text);
  if (!config->text.empty() && config->text.back() != '\n') fmt::print("\n");
  for (const auto& warning : config->warnings)
    fmt::print(stderr, "accel-launch: warning: {}\n", warning);
  return 0;
}

}  // namespace accel::launch
