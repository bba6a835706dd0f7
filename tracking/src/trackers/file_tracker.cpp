#include "accel/tracking/trackers/file_tracker.hpp"

#include <fmt/format.h>

#include "accel/tracking/errors.hpp"
#include "common/record_file.hpp"

namespace accel::detail {

void require_logging_directory(std::string_view tracker, const TrackerInit& init) {
  if (init.logging_dir.empty()) {
    throw InvalidValue(
        fmt::format("the {} tracker writes files and needs a logging directory; set project_dir or "
                    "logging_dir",
                    tracker));
  }
}

void PublishedRunDirectory::publish(const std::filesystem::path& dir) {
  std::lock_guard lock(mutex_);
  resume_info_ = directory_resume_info(dir);
}

nlohmann::json PublishedRunDirectory::resume_info() const {
  std::lock_guard lock(mutex_);
  return resume_info_;
}

}  // namespace accel::detail
