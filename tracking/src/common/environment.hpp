#pragma once
// Internal: reading one variable of the process environment, as the trackers' settings do (MLFLOW_*,
// WANDB_*): a variable that is unset or set to the empty string counts as absent.
// Thread-safety: reads the environment (std::getenv); do not call while another thread sets it.
#include <optional>
#include <string>

namespace accel::detail {

std::optional<std::string> environment_value(const char* name);

}  // namespace accel::detail
