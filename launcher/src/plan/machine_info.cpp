#include "plan/machine_info.hpp"

#include <fmt/format.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

namespace accel::launch {
namespace {

namespace fs = std::filesystem;
constexpr const char* kNvidiaGpuDir = "/proc/driver/nvidia/gpus";

std::string trim(std::string s) {
  const auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  const auto end = s.find_last_not_of(" \t\r\n");
  return s.substr(begin, end - begin + 1);
}

// The value after "key:" on the first line of `path` that starts with `key`.
std::string field_of(const fs::path& path, const std::string& key) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(key)) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return trim(line.substr(colon + 1));
    }
  }
  return "";
}

int driver_gpu_count() {
  std::error_code ec;
  if (!fs::is_directory(kNvidiaGpuDir, ec)) return 0;
  int count = 0;
  for (const auto& entry : fs::directory_iterator(kNvidiaGpuDir, ec)) {
    (void)entry;
    ++count;
  }
  return count;
}

}  // namespace

int visible_gpu_count() {
  const int present = driver_gpu_count();
  const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
  if (present == 0 || visible == nullptr) return present;
  std::string list = trim(visible);
  if (list.empty() || list == "-1") return 0;
  int listed = 1;
  for (char c : list) listed += (c == ',');
  return std::min(listed, present);
}

std::vector<std::string> gpu_names() {
  std::vector<std::string> names;
  std::error_code ec;
  if (!fs::is_directory(kNvidiaGpuDir, ec)) return names;
  std::set<fs::path> dirs;
  for (const auto& entry : fs::directory_iterator(kNvidiaGpuDir, ec)) dirs.insert(entry.path());
  for (const auto& dir : dirs) {
    std::string model = field_of(dir / "information", "Model");
    names.push_back(model.empty() ? dir.filename().string() : model);
  }
  return names;
}

std::string nvidia_driver_version() {
  std::ifstream in("/proc/driver/nvidia/version");
  std::string line;
  std::getline(in, line);
  return trim(line);
}

int physical_core_count() {
  std::ifstream in("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string package;
  for (std::string line; std::getline(in, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = trim(line.substr(0, colon));
    if (key == "physical id") package = trim(line.substr(colon + 1));
    if (key == "core id") cores.emplace(package, trim(line.substr(colon + 1)));
  }
  return cores.empty() ? logical_core_count() : static_cast<int>(cores.size());
}

int logical_core_count() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

std::string cpu_model() {
  std::string model = field_of("/proc/cpuinfo", "model name");
  return model.empty() ? "unknown" : model;
}

double total_memory_gib() {
  std::istringstream kib(field_of("/proc/meminfo", "MemTotal"));
  double value = 0;
  kib >> value;
  return value / (1024.0 * 1024.0);
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

std::string operating_system() {
  utsname info{};
  if (uname(&info) != 0) return "unknown";
  return fmt::format("{} {} {}", info.sysname, info.release, info.machine);
}

std::string mpi_version(const std::string& mpirun) {
  const std::string command = fmt::format("'{}' --version 2>/dev/null", mpirun);
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return "";
  char line[512] = {};
  if (std::fgets(line, sizeof(line), pipe.get()) == nullptr) return "";
  return trim(line);
}

}  // namespace accel::launch
