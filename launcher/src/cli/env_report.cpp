#include "cli/env_report.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "cli/config_file.hpp"
#include "plan/executable_lookup.hpp"
#include "plan/launch_error.hpp"
#include "plan/launch_plan.hpp"
#include "plan/machine_info.hpp"

#ifndef ACCEL_VERSION
#define ACCEL_VERSION "unknown"
#endif

namespace accel::launch {
namespace {

// What the LibTorch-linked sanity program reports about LibTorch, CUDA and NCCL.
std::string torch_versions() {
  const auto sanity = find_sanity_program();
  if (!sanity) {
    return "- LibTorch / CUDA / NCCL: unknown (accel-sanity-check was not built; configure accel "
           "with -DACCEL_BUILD_DISTRIBUTED=ON)\n";
  }
  const std::string command = fmt::format("'{}' --versions 2>&1", sanity->string());
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  std::string out;
  char buffer[512];
  while (pipe && std::fgets(buffer, sizeof(buffer), pipe.get()) != nullptr)
    out += fmt::format("- {}", buffer);
  if (out.empty())
    return fmt::format("- LibTorch / CUDA / NCCL: {} --versions printed nothing\n",
                       sanity->string());
  return out;
}

}  // namespace

std::string environment_report(const std::optional<std::string>& config_file) {
  std::string text = "\nCopy-and-paste the text below in your bug report\n\n";
  text += fmt::format("- accel version: {}\n", ACCEL_VERSION);
  text += fmt::format("- accel-launch location: {}\n", self_executable().string());
  text += fmt::format("- Platform: {}\n", operating_system());
  text += fmt::format("- CPU: {} ({} physical cores, {} logical)\n", cpu_model(),
                      physical_core_count(), logical_core_count());
  text += fmt::format("- System RAM: {:.2f} GB\n", total_memory_gib());
  const auto gpus = gpu_names();
  if (gpus.empty()) {
    text += "- GPUs: none visible (no NVIDIA driver)\n";
  } else {
    text += fmt::format("- GPUs: {} ({}); {} visible to CUDA programs\n", gpus.size(),
                        fmt::join(gpus, ", "), visible_gpu_count());
    text += fmt::format("- NVIDIA driver: {}\n", nvidia_driver_version());
  }
  try {
    const auto mpirun = find_mpirun();
    text += fmt::format("- MPI: {} ({})\n", mpi_version(mpirun.string()), mpirun.string());
  } catch (const LaunchError& e) {
    text += fmt::format("- MPI: {}\n", e.what());
  }
  text += torch_versions();
  const char* slurm_job = std::getenv("SLURM_JOB_ID");
  text += fmt::format("- Slurm: {}\n", slurm_job ? fmt::format("inside allocation {}", slurm_job)
                                                 : std::string("not inside an allocation"));

  std::optional<AccelerateConfig> config;
  try {
    config = find_config(config_file);
  } catch (const LaunchError& e) {
    text += fmt::format("- config file: cannot be used: {}\n", e.what());
    return text;
  }
  if (!config) {
    text += fmt::format("- config file: none (looked for {})\n", default_config_path().string());
  } else {
    text += fmt::format("- config file: {}\n", config->path.string());
    for (const auto& warning : config->warnings) text += fmt::format("\t- warning: {}\n", warning);
  }
  try {
    LaunchFlags flags;
    flags.config_file = config_file;
    const LaunchPlan plan = resolve_launch_plan(flags, config, current_host_facts());
    text += "- resolved launch settings:\n";
    for (const auto& source : plan.sources) {
      text += fmt::format("\t- {}: {} ({})\n", source.name, source.value, source.origin);
    }
  } catch (const LaunchError& e) {
    text += fmt::format("- resolved launch settings: invalid: {}\n", e.what());
  }
  return text;
}

int run_env(const std::optional<std::string>& config_file) {
  fmt::print("{}", environment_report(config_file));
  return 0;
}

}  // namespace accel::launch
