#include "trackers/comet/offline_archive.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "accel/tracking/errors.hpp"
#include "common/record_file.hpp"

namespace accel::comet {
namespace {

constexpr const char* kExperimentFile = "experiment.json";
constexpr const char* kMessagesFile = "messages.json";
constexpr const char* kStagingSuffix = ".staging";

// mkdir -p with mode 0700 for what it creates (the SDK's mode for the offline directory).
void create_private_directory(const std::filesystem::path& dir) {
  std::error_code error;
  std::filesystem::path built;
  for (const auto& part : dir) {
    built /= part;
    if (std::filesystem::is_directory(built, error)) continue;
    if (::mkdir(built.c_str(), 0700) != 0 && errno != EEXIST) {
      throw TrackerError(fmt::format("comet_ml: cannot create the offline directory '{}': {}",
                                     built.string(), detail::os_reason(errno)));
    }
  }
}

// Closes (discards) a zip archive that was not written.
struct ZipGuard {
  zip_t* archive = nullptr;
  ~ZipGuard() {
    if (archive) zip_discard(archive);
  }
};

// Zips the members of staging (but .tmp files a killed write left) into archive, stored and flat
// (written to archive.partial and renamed: whole or absent), then removes staging.
void zip_staging_directory(const std::filesystem::path& staging,
                           const std::filesystem::path& archive) {
  std::vector<std::string> members;
  for (const auto& entry : std::filesystem::directory_iterator(staging)) {
    const std::string name = entry.path().filename().string();
    // A .tmp file is a write_file_atomically that a killed process left unfinished.
    if (entry.is_regular_file() && !name.ends_with(".tmp")) members.push_back(name);
  }
  std::sort(members.begin(), members.end());
  const std::filesystem::path partial = archive.string() + ".partial";
  const auto fail = [&](std::string_view what, zip_error_t* error) {
    return TrackerError(fmt::format("comet_ml: cannot write the archive '{}': {}: {}",
                                    archive.string(), what, zip_error_strerror(error)));
  };
  int code = 0;
  ZipGuard zip{zip_open(partial.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code)};
  if (!zip.archive) {
    zip_error_t error;
    zip_error_init_with_code(&error, code);
    auto e = fail("zip_open", &error);
    zip_error_fini(&error);
    throw e;
  }
  for (const auto& name : members) {
    const std::string path = (staging / name).string();
    zip_source_t* source = zip_source_file(zip.archive, path.c_str(), 0, -1);  // -1: to the end
    if (!source) throw fail("zip_source_file " + name, zip_get_error(zip.archive));
    const zip_int64_t index = zip_file_add(zip.archive, name.c_str(), source, ZIP_FL_ENC_UTF_8);
    if (index < 0) {
      zip_source_free(source);
      throw fail("zip_file_add " + name, zip_get_error(zip.archive));
    }
    if (zip_set_file_compression(zip.archive, static_cast<zip_uint64_t>(index), ZIP_CM_STORE, 0) !=
        0) {
      throw fail("zip_set_file_compression " + name, zip_get_error(zip.archive));
    }
  }
  if (zip_close(zip.archive) != 0) throw fail("zip_close", zip_get_error(zip.archive));
  zip.archive = nullptr;
  std::error_code error;
  std::filesystem::rename(partial, archive, error);
  if (error) {
    throw TrackerError(fmt::format("comet_ml: cannot rename '{}' to '{}': {}", partial.string(),
                                   archive.string(), error.message()));
  }
  for (const auto& name : members) ::unlink((staging / name).c_str());
  ::rmdir(staging.c_str());
}

}  // namespace

// An exclusive flock(2) on a directory, held while the object lives (and by nobody once the process
// that took it is gone, killed or not).
class DirectoryLock {
 public:
  explicit DirectoryLock(const std::filesystem::path& directory);
  ~DirectoryLock();
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;
  bool held() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

DirectoryLock::DirectoryLock(const std::filesystem::path& directory)
    : fd_(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {
  if (fd_ >= 0 && ::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

DirectoryLock::~DirectoryLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

OfflineArchive::OfflineArchive(const std::filesystem::path& offline_directory,
                               const std::string& experiment_key)
    : archive_path_(offline_directory / (experiment_key + ".zip")),
      staging_(offline_directory / ("." + experiment_key + kStagingSuffix)),
      messages_(std::make_unique<detail::RecordFile>("comet_ml")) {
  create_private_directory(staging_);
  lock_ = std::make_unique<DirectoryLock>(staging_);
  if (!lock_->held()) {
    throw TrackerError(fmt::format(
        "comet_ml: another process is writing the offline experiment '{}' in '{}'; give this run "
        "its own experiment_key (or none: a new key is made)",
        experiment_key, offline_directory.string()));
  }
  messages_->open(staging_ / kMessagesFile, /*truncate=*/true);
}

OfflineArchive::~OfflineArchive() = default;

void OfflineArchive::add_message(std::string_view type, nlohmann::json payload) {
  payload["message_id"] = next_message_id_++;
  const nlohmann::json line = {{"payload", std::move(payload)}, {"type", type}};
  messages_->add(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", 0);
}

std::string OfflineArchive::add_file(std::string_view content, std::string_view suffix) {
  std::string name = fmt::format("file-{}{}", next_file_++, suffix);
  if (auto failed = detail::write_file_atomically(staging_ / name, content)) {
    throw TrackerUnavailable("comet_ml: " + *failed);
  }
  return name;
}

void OfflineArchive::write_experiment(const nlohmann::json& experiment) {
  if (auto failed = detail::write_file_atomically(staging_ / kExperimentFile, experiment.dump())) {
    throw TrackerUnavailable("comet_ml: " + *failed);
  }
}

void OfflineArchive::flush() {
  messages_->write_buffered();
}

void OfflineArchive::finish() {
  flush();
  messages_->close();
  zip_staging_directory(staging_, archive_path_);
  lock_.reset();
}

std::vector<RecoveredArchive> OfflineArchive::recover_leftovers(
    const std::filesystem::path& offline_directory, const std::string& current_key) {
  std::vector<RecoveredArchive> recovered;
  std::error_code error;
  if (!std::filesystem::is_directory(offline_directory, error)) return recovered;
  for (const auto& entry : std::filesystem::directory_iterator(offline_directory, error)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || !name.starts_with(".") || !name.ends_with(kStagingSuffix)) {
      continue;
    }
    const std::string key =
        name.substr(1, name.size() - 1 - std::string_view(kStagingSuffix).size());
    DirectoryLock lock(entry.path());
    if (!lock.held()) continue;  // a live run is writing it
    if (!std::filesystem::is_regular_file(entry.path() / kExperimentFile) ||
        !std::filesystem::is_regular_file(entry.path() / kMessagesFile)) {
      continue;  // not (yet) a run's staging directory
    }
    std::filesystem::path archive = offline_directory / (key + ".zip");
    if (key == current_key || std::filesystem::exists(archive)) {
      archive = offline_directory / (key + "-recovered.zip");
    }
    zip_staging_directory(entry.path(), archive);
    recovered.push_back({entry.path(), archive});
  }
  return recovered;
}

}  // namespace accel::comet
