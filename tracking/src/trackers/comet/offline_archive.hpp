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
// A staging directory left by a killed run is turned into its archive with
// `cd .<key>.staging && zip -0 ../<key>.zip *` (docs/comet.md).
//
// Errors: the constructor throws accel::TrackerError when the directories cannot be created; a
// write the disk refuses throws accel::TrackerUnavailable (messages not written stay buffered);
// finish() throws accel::TrackerError naming the archive when libzip fails.
// Thread-safety: none (CometTracker serialises its calls).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "trackers/comet/message_sink.hpp"

namespace accel::detail {
class RecordFile;
}

namespace accel::comet {

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

  const std::filesystem::path& archive_path() const { return archive_path_; }
  const std::filesystem::path& staging_directory() const { return staging_; }

 private:
  std::filesystem::path archive_path_;
  std::filesystem::path staging_;
  std::unique_ptr<detail::RecordFile> messages_;
  uint64_t next_message_id_ = 1;
  uint64_t next_file_ = 1;
};

}  // namespace accel::comet
