#include "cli/sync_command.hpp"

#include <fmt/format.h>

#include <chrono>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/journal_sync.hpp"
#include "plan/launch_error.hpp"

namespace accel::launch {

int run_sync(const std::vector<std::string>& paths, double timeout_seconds) {
  if (!(timeout_seconds > 0)) {
    throw UsageError(
        fmt::format("sync: --timeout {} must be a positive number of seconds", timeout_seconds));
  }
  SyncOptions options;
  options.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));
  int status = 0;
  std::size_t journals = 0;
  for (const auto& path : paths) {
    std::vector<std::filesystem::path> found;
    try {
      found = find_journals(path);
    } catch (const accel::Error& e) {
      throw UsageError(e.what());
    }
    if (found.empty()) fmt::print("{}: no journals to deliver\n", path);
    for (const auto& journal : found) {
      ++journals;
      try {
        const SyncResult result = sync_journal(journal, options);
        fmt::print("{}\n", describe(result));
        if (!result.complete) status = 1;
      } catch (const accel::Error& e) {
        fmt::print(stderr, "accel-launch sync: {}: {}\n", journal.string(), e.what());
        status = 1;
      }
    }
  }
  if (journals > 1) fmt::print("{} journals processed\n", journals);
  return status;
}

}  // namespace accel::launch
