#pragma once
// Facts about the machine accel-launch runs on, read from /proc and /sys (no GPU library needed).
// Every function is cheap except mpi_version(), which runs `mpirun --version`.
#include <string>
#include <vector>

namespace accel::launch {

// GPUs a CUDA program would see here: the NVIDIA driver's GPU list, narrowed by
// CUDA_VISIBLE_DEVICES when that is set. 0 when there is no NVIDIA driver.
int visible_gpu_count();

// Names of the NVIDIA GPUs the driver lists (all of them, regardless of CUDA_VISIBLE_DEVICES).
std::vector<std::string> gpu_names();

// NVIDIA driver version line, or "" without a driver.
std::string nvidia_driver_version();

int physical_core_count();
int logical_core_count();
std::string cpu_model();
double total_memory_gib();
std::string host_name();
std::string operating_system();  // "Linux 6.1.0 x86_64"

// First line of `<mpirun> --version`, or "" when it cannot be run.
std::string mpi_version(const std::string& mpirun);

}  // namespace accel::launch
