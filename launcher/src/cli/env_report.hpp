#pragma once
// `accel-launch env`: the text users paste into bug reports — versions (accel, LibTorch, CUDA,
// NCCL, MPI), CPU, RAM, GPUs, Slurm, the config file and the launch settings it resolves to.
#include <optional>
#include <string>

namespace accel::launch {

std::string environment_report(const std::optional<std::string>& config_file);

// Prints environment_report(). Returns 0.
int run_env(const std::optional<std::string>& config_file);

}  // namespace accel::launch
