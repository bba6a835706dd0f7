#pragma once
// `accel-launch config default` and `accel-launch config show`.
#include <optional>
#include <string>

namespace accel::launch {

// Writes a basic config for this machine (refuses to overwrite without `force`). Returns 0.
int run_config_default(const std::optional<std::string>& config_file,
                       const std::string& mixed_precision, bool force);

// Prints the config file a launch would read and the warnings it raises. Returns 0, or 1 when
// there is no config file.
int run_config_show(const std::optional<std::string>& config_file);

}  // namespace accel::launch
