#include "trackers/wandb/artifact_staging.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <system_error>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/key_rules.hpp"
#include "common/record_file.hpp"
#include "trackers/wandb/table_json.hpp"

namespace accel::wandb {
namespace {

namespace fs = std::filesystem;

// The entry name of a file below a directory: its relative path with '/' separators.
std::string entry_path(const fs::path& file, const fs::path& base) {
  return file.lexically_relative(base).generic_string();
}

fs::path absolute_path(const fs::path& path) {
  std::error_code ec;
  const auto absolute = fs::absolute(path, ec);
  return (ec ? path : absolute).lexically_normal();
}

void copy_entry(const fs::path& from, const fs::path& to, bool link) {
  std::error_code ec;
  fs::create_directories(to.parent_path(), ec);
  if (!ec && link) {
    fs::create_hard_link(from, to, ec);
    if (!ec) return;
    ec.clear();  // another file system, or links refused: copy
  }
  if (!ec) fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) {
    throw TrackerError(fmt::format("wandb: cannot copy the artifact file '{}' to '{}': {}",
                                   from.string(), to.string(), ec.message()));
  }
}

}  // namespace

fs::path ArtifactStaging::new_directory(const Artifact& artifact) const {
  return root_ / fmt::format("{}-{}", artifact.name, artifact.client_id.substr(0, 8));
}

Artifact ArtifactStaging::table(std::string_view key, const Table& table,
                                const std::string& run_id) const {
  Artifact artifact;
  artifact.name = sanitize_artifact_name(fmt::format("run-{}-{}", run_id, key));
  artifact.type = "run_table";
  artifact.aliases = {"latest"};
  artifact.client_id = new_client_id();
  artifact.sequence_client_id = new_client_id();
  const std::string text = sdk_table_json(table);
  ArtifactEntry entry;
  entry.path = std::string(key) + ".table.json";
  // The copy's own name is made safe (a key may be any text, "/x" and ".." included).
  const std::string local_name = sanitize_key(
      key, [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_' || c == '.'; });
  entry.local_path = absolute_path(new_directory(artifact) / (local_name + ".table.json"));
  std::error_code ec;
  fs::create_directories(entry.local_path.parent_path(), ec);
  if (auto error = detail::write_file_atomically(entry.local_path, text)) {
    throw TrackerUnavailable("wandb: " + *error);
  }
  entry.digest = md5_base64(text);
  entry.size = static_cast<int64_t>(text.size());
  artifact.entries.push_back(std::move(entry));
  seal(artifact);
  return artifact;
}

Artifact ArtifactStaging::stage(const ArtifactRequest& request) const {
  validate_user_artifact(request.name, request.type, request.aliases);
  if (!request.metadata.is_null() && !request.metadata.is_object()) {
    throw InvalidValue(
        fmt::format("wandb: the metadata of artifact '{}' must be a JSON object, not {}",
                    request.name, request.metadata.dump().substr(0, 100)));
  }
  std::error_code ec;
  const auto status = fs::status(request.path, ec);
  if (ec || !(fs::is_regular_file(status) || fs::is_directory(status))) {
    throw InvalidValue(fmt::format(
        "wandb: log_artifact('{}'): the path '{}' is not a file or directory that can be read; "
        "give the file or the directory (its files, recursively) to log",
        request.name, request.path.string()));
  }
  Artifact artifact;
  artifact.name = request.name;
  artifact.type = request.type;
  artifact.aliases = request.aliases;
  if (std::find(artifact.aliases.begin(), artifact.aliases.end(), "latest") ==
      artifact.aliases.end()) {
    artifact.aliases.insert(artifact.aliases.begin(), "latest");
  }
  artifact.description = request.description;
  artifact.metadata = request.metadata;
  artifact.client_id = new_client_id();
  artifact.sequence_client_id = new_client_id();
  const auto directory = absolute_path(new_directory(artifact));
  std::vector<std::pair<fs::path, std::string>> files;  // source, entry path
  if (fs::is_regular_file(status)) {
    files.emplace_back(request.path, request.path.filename().string());
  } else {
    for (fs::recursive_directory_iterator it(request.path, ec), end; !ec && it != end;
         it.increment(ec)) {
      if (it->is_regular_file())
        files.emplace_back(it->path(), entry_path(it->path(), request.path));
    }
    if (ec) {
      throw TrackerError(fmt::format("wandb: cannot list the artifact directory '{}': {}",
                                     request.path.string(), ec.message()));
    }
  }
  if (files.empty()) {
    throw InvalidValue(fmt::format(
        "wandb: log_artifact('{}'): the directory '{}' holds no files; give a directory with the "
        "files to log",
        request.name, request.path.string()));
  }
  for (const auto& [source, path] : files) {
    ArtifactEntry entry;
    entry.path = path;
    entry.local_path = directory / path;
    copy_entry(source, entry.local_path, request.link_files);
    artifact.entries.push_back(std::move(entry));
  }
  return artifact;
}

void seal_staged(Artifact& artifact) {
  for (auto& entry : artifact.entries) {
    entry.digest = file_md5_base64(entry.local_path);
    std::error_code ec;
    const auto size = fs::file_size(entry.local_path, ec);
    if (ec) {
      throw TrackerUnavailable(fmt::format("wandb: cannot read the artifact file '{}': {}",
                                           entry.local_path.string(), ec.message()));
    }
    entry.size = static_cast<int64_t>(size);
  }
  seal(artifact);
}

}  // namespace accel::wandb
