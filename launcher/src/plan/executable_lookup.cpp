#include "plan/executable_lookup.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

#include "plan/launch_error.hpp"

#ifndef ACCEL_MPIEXEC
#define ACCEL_MPIEXEC "mpirun"
#endif

namespace accel::launch {
namespace {

namespace fs = std::filesystem;

bool is_executable_file(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec) && access(path.c_str(), X_OK) == 0;
}

}  // namespace

std::optional<fs::path> find_on_path(const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos) return std::nullopt;
  const char* path_env = std::getenv("PATH");
  std::istringstream dirs(path_env ? path_env : "/usr/local/bin:/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    fs::path candidate = fs::path(dir.empty() ? "." : dir) / name;
    if (is_executable_file(candidate)) return fs::absolute(candidate);
  }
  return std::nullopt;
}

fs::path self_executable() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw LaunchError("cannot find accel-launch's own path through /proc/self/exe");
  return self;
}

fs::path resolve_program(const std::string& program) {
  if (program.empty())
    throw UsageError("no program to launch; usage: accel-launch [flags] <program> [args]");
  std::error_code ec;
  if (program.find('/') == std::string::npos) {
    if (auto found = find_on_path(program)) return *found;
    if (fs::exists(program, ec)) {
      throw MissingExecutable(
          fmt::format("program '{}' is not on PATH; to run the file in this folder, write ./{}",
                      program, program));
    }
    throw MissingExecutable(fmt::format(
        "program '{}' was not found: it is not on PATH and no such file exists; check the name or "
        "give its path",
        program));
  }
  fs::path path = fs::absolute(program);
  if (!fs::exists(path, ec)) {
    throw MissingExecutable(fmt::format("program '{}' does not exist; check the path", program));
  }
  if (fs::is_directory(path, ec)) {
    throw MissingExecutable(
        fmt::format("program '{}' is a directory, not an executable file", program),
        kExitNotExecutable);
  }
  if (access(path.c_str(), X_OK) != 0) {
    throw MissingExecutable(
        fmt::format("program '{}' is not executable; make it so with: chmod +x {}", program,
                    program),
        kExitNotExecutable);
  }
  return path;
}

fs::path find_mpirun() {
  if (const char* forced = std::getenv("ACCEL_MPIRUN"); forced && *forced) {
    fs::path path = forced;
    if (path.is_relative() && path.string().find('/') == std::string::npos) {
      if (auto found = find_on_path(forced)) return *found;
    } else if (is_executable_file(path)) {
      return path;
    }
    throw MissingExecutable(fmt::format(
        "ACCEL_MPIRUN is set to '{}', which is not an executable file; point it at mpirun or unset "
        "it",
        forced));
  }
  if (is_executable_file(ACCEL_MPIEXEC)) return ACCEL_MPIEXEC;
  if (auto found = find_on_path("mpirun")) return *found;
  if (auto found = find_on_path("mpiexec")) return *found;
  throw MissingExecutable(
      "mpirun was not found; accel-launch starts every job through Open MPI's mpirun. Install it "
      "with: apt-get install openmpi-bin (or set ACCEL_MPIRUN to its path)");
}

fs::path find_srun() {
  if (auto found = find_on_path("srun")) return *found;
  throw MissingExecutable(
      "srun was not found on PATH although a Slurm launch was requested; load Slurm's environment "
      "or pass --no_slurm to launch with mpirun");
}

std::optional<fs::path> find_sanity_program() {
  const fs::path dir = self_executable().parent_path();
  for (const fs::path& candidate :
       {dir / "accel-sanity-check", dir / ".." / "libexec" / "accel" / "accel-sanity-check",
        dir / "sanity_check" / "accel-sanity-check"}) {
    if (is_executable_file(candidate)) return fs::weakly_canonical(candidate);
  }
  return std::nullopt;
}

}  // namespace accel::launch
