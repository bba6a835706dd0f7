#include "accel/checkpoint.hpp"

#include <ATen/Context.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <ftw.h>
#include <torch/cuda.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <mutex>

#include "training/checkpoint/remove_tree.hpp"

namespace accel::checkpoint {
namespace fs = std::filesystem;

namespace {

void fsync_path(const fs::path& path, bool directory) {
  int fd = ::open(path.c_str(), (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw CheckpointError(fmt::format("cannot open {} to sync it to disk", path.string()));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0)
    throw CheckpointError(fmt::format("fsync of {} failed: is the disk full?", path.string()));
}

int remove_entry(const char* path, const struct stat*, int, struct FTW*) {
  return ::remove(path);
}

}  // namespace

void remove_tree(const fs::path& path) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0) return;  // nothing there
  if (::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
    throw CheckpointError(fmt::format("cannot delete {}: check its permissions", path.string()));
  }
}

fs::path temp_dir_for(const fs::path& final_dir) {
  auto clean = final_dir.lexically_normal();
  if (!clean.has_filename()) clean = clean.parent_path();
  return clean.parent_path() / ("." + clean.filename().string() + ".tmp");
}

void write_archive(const fs::path& path,
                   const std::function<void(torch::serialize::OutputArchive&)>& fill) {
  try {
    torch::serialize::OutputArchive archive;
    fill(archive);
    archive.save_to(path.string());
  } catch (const c10::Error& e) {
    throw CheckpointError(fmt::format("writing checkpoint file {} failed: {}", path.string(),
                                      e.what_without_backtrace()));
  }
  fsync_path(path, false);
}

void read_archive(const fs::path& path,
                  const std::function<void(torch::serialize::InputArchive&)>& read,
                  std::optional<torch::Device> device) {
  if (!fs::exists(path)) {
    throw CheckpointError(
        fmt::format("checkpoint file {} is missing: the checkpoint was written by a program with a "
                    "different set of "
                    "prepared objects or processes; load it with the same setup",
                    path.string()));
  }
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path.string(), device);
    read(archive);
  } catch (const c10::Error& e) {
    throw CheckpointError(
        fmt::format("reading checkpoint file {} failed (corrupt, or saved from a different "
                    "model/optimizer): {}",
                    path.string(), e.what_without_backtrace()));
  }
}

void save_rng_states(const fs::path& path, int64_t step) {
  write_archive(path, [&](torch::serialize::OutputArchive& archive) {
    auto cpu = at::detail::getDefaultCPUGenerator();
    {
      std::lock_guard<std::mutex> lock(cpu.mutex());
      archive.write("cpu", cpu.get_state());
    }
    const int64_t devices =
        torch::cuda::is_available() ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
    archive.write("cuda_devices", torch::tensor(devices, torch::kInt64));
    for (int64_t i = 0; i < devices; ++i) {
      auto gen = at::globalContext().defaultGenerator(
          c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(i)));
      std::lock_guard<std::mutex> lock(gen.mutex());
      archive.write(fmt::format("cuda_{}", i), gen.get_state());
    }
    archive.write("step", torch::tensor(step, torch::kInt64));
  });
}

int64_t load_rng_states(const fs::path& path) {
  int64_t step = 0;
  read_archive(path, [&](torch::serialize::InputArchive& archive) {
    torch::Tensor cpu_state, devices, step_tensor;
    archive.read("cpu", cpu_state);
    archive.read("cuda_devices", devices);
    archive.read("step", step_tensor);
    auto cpu = at::detail::getDefaultCPUGenerator();
    {
      std::lock_guard<std::mutex> lock(cpu.mutex());
      cpu.set_state(cpu_state);
    }
    const int64_t here =
        torch::cuda::is_available() ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
    for (int64_t i = 0; i < std::min(devices.item<int64_t>(), here); ++i) {
      torch::Tensor state;
      archive.read(fmt::format("cuda_{}", i), state);
      auto gen = at::globalContext().defaultGenerator(
          c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(i)));
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(state);
    }
    step = step_tensor.item<int64_t>();
  });
  return step;
}

void commit(const fs::path& temp_dir, const fs::path& final_dir, const nlohmann::json& metadata) {
  if (fs::exists(final_dir)) {
    throw CheckpointError(
        fmt::format("checkpoint directory {} already exists; choose another directory or remove it "
                    "(with automatic "
                    "naming, set ProjectConfiguration.iteration past the existing checkpoints)",
                    final_dir.string()));
  }
  auto marker = metadata;
  marker["complete"] = true;
  const auto marker_path = temp_dir / kMarkerName;
  {
    std::ofstream out(marker_path, std::ios::trunc);
    out << marker.dump(2) << '\n';
    out.close();
    if (!out) throw CheckpointError(fmt::format("cannot write {}", marker_path.string()));
  }
  fsync_path(marker_path, false);
  fsync_path(temp_dir, true);
  std::error_code ec;
  fs::rename(temp_dir, final_dir, ec);
  if (ec) {
    throw CheckpointError(fmt::format("cannot move the finished checkpoint {} to {}: {}",
                                      temp_dir.string(), final_dir.string(), ec.message()));
  }
  fsync_path(final_dir.parent_path().empty() ? fs::path(".") : final_dir.parent_path(), true);
}

nlohmann::json require_complete(const fs::path& dir) {
  if (!fs::is_directory(dir)) {
    throw CheckpointError(fmt::format("checkpoint directory {} does not exist", dir.string()));
  }
  const auto marker_path = dir / kMarkerName;
  if (!fs::exists(marker_path)) {
    throw CheckpointError(fmt::format(
        "{} is not a complete accel checkpoint: its completion marker {} is missing (the save was "
        "interrupted, or the directory was not written by save_state). Load an earlier checkpoint.",
        dir.string(), kMarkerName));
  }
  nlohmann::json marker;
  try {
    std::ifstream in(marker_path);
    marker = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(
        fmt::format("completion marker {} is unreadable ({}): the checkpoint is damaged",
                    marker_path.string(), e.what()));
  }
  if (!marker.value("complete", false)) {
    throw CheckpointError(
        fmt::format("{} says the checkpoint is not complete", marker_path.string()));
  }
  return marker;
}

std::optional<int64_t> automatic_index(const fs::path& dir) {
  auto name = dir.filename().string();
  if (name.empty()) name = dir.parent_path().filename().string();
  const std::string prefix = kAutomaticPrefix;
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0)
    return std::nullopt;
  int64_t index = 0;
  const char* first = name.data() + prefix.size();
  const char* last = name.data() + name.size();
  auto [ptr, ec] = std::from_chars(first, last, index);
  if (ec != std::errc() || ptr != last || index < 0) return std::nullopt;
  return index;
}

std::vector<std::pair<int64_t, fs::path>> automatic_checkpoints(const fs::path& root) {
  std::vector<std::pair<int64_t, fs::path>> found;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return found;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (!entry.is_directory()) continue;
    if (auto index = automatic_index(entry.path())) found.emplace_back(*index, entry.path());
  }
  std::sort(found.begin(), found.end());
  return found;
}

std::vector<fs::path> prune(const fs::path& root, int64_t keep) {
  std::vector<fs::path> deleted;
  auto found = automatic_checkpoints(root);
  const int64_t excess = static_cast<int64_t>(found.size()) - std::max<int64_t>(keep, 0);
  for (int64_t i = 0; i < excess; ++i) {
    remove_tree(found[static_cast<std::size_t>(i)].second);
    deleted.push_back(found[static_cast<std::size_t>(i)].second);
  }
  return deleted;
}

}  // namespace accel::checkpoint
