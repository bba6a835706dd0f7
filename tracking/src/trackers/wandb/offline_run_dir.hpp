#pragma once
// accel::wandb: the offline run directory, laid out as the wandb SDK (0.31.0) lays it out, so
// that `wandb sync` and `wandb leet` find it:
//
//   <directory>/wandb/
//     latest-run -> offline-run-<YYYYmmdd_HHMMSS>-<id>      relative symlink, replaced atomically
//     offline-run-<YYYYmmdd_HHMMSS>-<id>/                    local time of the run's start
//       run-<id>.wandb                                       the transaction log
//       files/                                               media (files/media/images/...)
//     run-<YYYYmmdd_HHMMSS>-<id>/                            the same for an online run (the SDK
//                                                            writes its transaction log there)
//
// Thread-safety: pure functions (new_run_id uses a thread-local generator).
#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

namespace accel::wandb {

// A new run id: 8 characters [a-z0-9], as the SDK makes them.
std::string new_run_id();

struct OfflineRunDir {
  std::filesystem::path wandb_dir;  // <directory>/wandb
  std::filesystem::path run_dir;    // .../offline-run-<ts>-<id>
  std::filesystem::path log_file;   // .../run-<id>.wandb (not created here)
  std::filesystem::path files_dir;  // .../files
};

// <prefix>-<YYYYmmdd_HHMMSS>-<id> for a run started at `start` (local time): prefix
// "offline-run" for an offline run, "run" for an online one.
std::string offline_run_name(std::chrono::system_clock::time_point start, std::string_view id,
                             std::string_view prefix = "offline-run");

// Creates <directory>/wandb/<prefix>-<ts>-<id>/files and points latest-run at it. Throws
// accel::TrackerError naming the directory and the OS reason when it cannot.
OfflineRunDir create_offline_run_dir(const std::filesystem::path& directory,
                                     std::chrono::system_clock::time_point start,
                                     std::string_view id, std::string_view prefix = "offline-run");

}  // namespace accel::wandb
