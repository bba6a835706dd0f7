#pragma once
// accel::wandb::ArtifactStaging: the files of a run's artifacts, copied into the run directory
// (<run dir>/artifacts/<name>-<8 characters of the client id>/<entry path>; a table's copy is
// named by its key made safe for a file name) so that the
// ArtifactRecord's absolute local_path names a file that stays as it was logged, and `wandb sync`
// finds it later (the SDK points it into ~/.local/share/wandb/artifacts/staging instead, which a
// sync from another directory or machine does not have).
//
//   table(key, table, run_id)   the run_table artifact of a logged Table, as the SDK makes it:
//                               name "run-<run id>-<key>" (sanitize_artifact_name), one entry
//                               "<key>.table.json" = the SDK's table JSON (table_json.hpp),
//                               alias "latest"; sealed.
//   stage(request)              log_artifact's copy of a file (entry = its file name) or of a
//                               directory (entries = the paths of its files below it); the
//                               digests are computed later by seal_staged (they read every byte).
// Thread-safety: stage() may run on any thread (it touches only its own new directory);
// table() and seal_staged() run on the tracker's worker thread.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "accel/tracking/values.hpp"
#include "trackers/wandb/artifact_manifest.hpp"

namespace accel::wandb {

// What log_artifact was given.
struct ArtifactRequest {
  std::filesystem::path path;  // a file or a directory
  std::string name;
  std::string type;
  std::vector<std::string> aliases;  // "latest" is added when missing, as the SDK does
  std::string description;
  nlohmann::json metadata = nullptr;
  // Hard-link the files instead of copying them (a copy where linking fails): for files that are
  // never rewritten in place — save_state's checkpoints are written once and replaced by rename —
  // so that logging a large checkpoint costs no copy.
  bool link_files = false;
};

class ArtifactStaging {
 public:
  explicit ArtifactStaging(std::filesystem::path run_dir) : root_(run_dir / "artifacts") {}

  // Writes the table's artifact file. Throws accel::TrackerUnavailable when the file cannot be
  // written (the message names the path and the OS reason).
  Artifact table(std::string_view key, const Table& table, const std::string& run_id) const;

  // Validates the request (accel::InvalidValue naming the bad value: a name, type or alias W&B
  // refuses, a path that does not exist or holds no file) and copies its files. Throws
  // accel::TrackerError when a copy fails (naming the file and the reason). The entries have no
  // digests yet.
  Artifact stage(const ArtifactRequest& request) const;

  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path new_directory(const Artifact& artifact) const;

  std::filesystem::path root_;
};

// Fills in the digests of a staged artifact's entries from their copies and seals it. Throws
// accel::TrackerUnavailable when a copy cannot be read.
void seal_staged(Artifact& artifact);

}  // namespace accel::wandb
