#pragma once
// Finding the programs accel-launch starts: the user's program, mpirun, srun, itself (as the
// per-rank shim) and the sanity-check program of `accel-launch test`. Failures throw
// MissingExecutable with what to install or pass instead.
#include <filesystem>
#include <optional>
#include <string>

namespace accel::launch {

// `name` looked up in $PATH (names containing '/' are not looked up).
std::optional<std::filesystem::path> find_on_path(const std::string& name);

// Absolute path of the running accel-launch binary.
std::filesystem::path self_executable();

// The program to launch, made absolute: a path (checked to be an executable file) or a name found
// on $PATH. Throws MissingExecutable (exit 127 not found, 126 not executable).
std::filesystem::path resolve_program(const std::string& program);

// mpirun: $ACCEL_MPIRUN when set, else the mpirun accel was built with, else `mpirun` on $PATH.
std::filesystem::path find_mpirun();

// srun on $PATH, for launches inside a Slurm allocation.
std::filesystem::path find_srun();

// accel-sanity-check next to accel-launch, in ../libexec/accel, or in sanity_check/ below it.
std::optional<std::filesystem::path> find_sanity_program();

}  // namespace accel::launch
