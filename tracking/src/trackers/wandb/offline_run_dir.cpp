#include "trackers/wandb/offline_run_dir.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <ctime>
#include <random>
#include <system_error>

#include "accel/tracking/errors.hpp"

namespace accel::wandb {

std::string new_run_id() {
  static constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 generator{std::random_device{}()};
  std::uniform_int_distribution<std::size_t> pick(0, kAlphabet.size() - 1);
  std::string id(8, ' ');
  for (char& c : id) c = kAlphabet[pick(generator)];
  return id;
}

std::string offline_run_name(std::chrono::system_clock::time_point start, std::string_view id,
                             std::string_view prefix) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(start);
  std::tm local{};
  ::localtime_r(&seconds, &local);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d_%H%M%S", &local);
  return fmt::format("{}-{}-{}", prefix, stamp, id);
}

OfflineRunDir create_offline_run_dir(const std::filesystem::path& directory,
                                     std::chrono::system_clock::time_point start,
                                     std::string_view id, std::string_view prefix) {
  OfflineRunDir dir;
  dir.wandb_dir = std::filesystem::absolute(directory) / "wandb";
  const std::string name = offline_run_name(start, id, prefix);
  dir.run_dir = dir.wandb_dir / name;
  dir.log_file = dir.run_dir / fmt::format("run-{}.wandb", id);
  dir.files_dir = dir.run_dir / "files";
  std::error_code ec;
  std::filesystem::create_directories(dir.files_dir, ec);
  if (ec || ::access(dir.files_dir.c_str(), W_OK | X_OK) != 0) {
    throw TrackerError(
        fmt::format("wandb: cannot create the offline run directory '{}': {}; set WANDB_DIR (or "
                    "init_kwargs[\"wandb\"][\"dir\"]) to a writable directory",
                    dir.run_dir.string(), ec ? ec.message() : std::string("not writable")));
  }
  // latest-run: a new relative link renamed over the old one, so readers never miss it.
  const auto link = dir.wandb_dir / "latest-run";
  const auto temporary = dir.wandb_dir / fmt::format(".latest-run.{}.{}", ::getpid(), id);
  std::filesystem::remove(temporary, ec);
  std::filesystem::create_directory_symlink(name, temporary, ec);
  if (!ec) std::filesystem::rename(temporary, link, ec);
  if (ec) {
    const std::string reason = ec.message();
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw TrackerError(
        fmt::format("wandb: cannot point '{}' at '{}': {}", link.string(), name, reason));
  }
  return dir;
}

}  // namespace accel::wandb
