#pragma once
// accel::comet::OfflineArchive: the offline experiment archive that comet_ml 3.58.8's
// OfflineExperiment writes and `comet upload` reads (shared/research/comet-formats.md §1):
// <offline_directory>/<experiment key>.zip, a flat zip of stored (uncompressed) members —
// experiment.json (the metadata), messages.json (JSON Lines, one {"type", "payload"} message a
// line, payload.message_id counting 1, 2, ... in write order) and one member per uploaded file,
// named by payload.file_path.
//
// While the run is going, the members live in a staging directory beside the archive,
// <offline_directory>/.<experiment key>.staging/: every message line and file reaches it (write(2))
// by the time flush() returns, so a killed process leaves a staging directory that holds every
// flushed message. finish() zips the staging directory into the archive (libzip, written to a
// temporary name and renamed, so the archive is whole or absent) and removes the staging directory.
// The staging directory is locked (flock) while its run lives. A staging directory nobody holds
// is a killed run's: recover_leftovers, which CometTracker calls before every offline start, zips
// each one in the offline directory into its archive as finish() would (the stop time is the
// start time), so a killed run's archive appears at the next start; by hand,
// `cd .<key>.staging && python -m zipfile -c ../<key>.zip *` does the same (docs/comet.md).
//
// Errors: the constructor throws accel::TrackerError when the directories cannot be created or
// another live process writes the same experiment key; a
// write the disk refuses throws accel::TrackerUnavailable (messages not written stay buffered);
// finish() throws accel::TrackerError naming the archive when libzip fails.
// Thread-safety: none (CometTracker serialises its calls).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "trackers/comet/message_sink.hpp"

namespace accel::detail {
class RecordFile;
}

namespace accel::comet {

class DirectoryLock;

// A killed run's staging directory and the archive recover_leftovers made of it.
struct RecoveredArchive {
  std::filesystem::path staging_directory;
  std::filesystem::path archive;
};

class OfflineArchive final : public MessageSink {
 public:
  OfflineArchive(const std::filesystem::path& offline_directory, const std::string& experiment_key);
  ~OfflineArchive() override;
  OfflineArchive(const OfflineArchive&) = delete;
  OfflineArchive& operator=(const OfflineArchive&) = delete;

  // Buffers one messages.json line {"payload": payload + message_id, "type": type}.
  void add_message(std::string_view type, nlohmann::json payload) override;
  // Stores content as a new member and returns its name (for payload.file_path): "file-<n><suffix>".
  std::string add_file(std::string_view content, std::string_view suffix) override;
  // (Re)writes experiment.json.
  void write_experiment(const nlohmann::json& experiment);
  // Hands the buffered message lines to the OS.
  void flush();
  // Flushes, zips the staging directory into archive_path() and removes it. Called once.
  void finish();

  // Zips every staging directory in offline_directory that no live run holds into
  // <key>.zip (<key>-recovered.zip when that exists or key is current_key, the run about to
  // start) and removes it. Throws accel::TrackerError naming the archive when libzip fails.
  static std::vector<RecoveredArchive> recover_leftovers(
      const std::filesystem::path& offline_directory, const std::string& current_key);

  const std::filesystem::path& archive_path() const { return archive_path_; }
  const std::filesystem::path& staging_directory() const { return staging_; }

 private:
  std::filesystem::path archive_path_;
  std::filesystem::path staging_;
  std::unique_ptr<detail::RecordFile> messages_;
  std::unique_ptr<DirectoryLock> lock_;  // held from construction until finish()
  uint64_t next_message_id_ = 1;
  uint64_t next_file_ = 1;
};

}  // namespace accel::comet
