#pragma once
// accel::wandb::Artifact: one version of a W&B artifact (a logged table, a model checkpoint, any
// files given to log_artifact) as wandb 0.31.0 describes it (shared/research/wandb-formats.md §6),
// and the three forms it takes:
//
//   the ArtifactRecord of the .wandb file   {run_id, project, type, name, digest, aliases,
//                                            finalize: true, client_id, sequence_client_id,
//                                            digest_algorithm: "MANIFEST_MD5", metadata,
//                                            manifest{version 1, "wandb-storage-policy-v1",
//                                            storageLayout "V2", contents[{path, digest, size,
//                                            local_path}]}} — what `wandb sync` uploads
//   wandb_manifest.json                     the manifest as wandb-core uploads it (the online mode)
//   the names a history value refers to    wandb-client-artifact://<client_id>/<entry>
//
// Digests, as W&B computes them: an entry's digest is base64(MD5(file bytes)); the artifact's is
// hex MD5 of "wandb-artifact-manifest-v1\n" followed by "<path>:<digest>\n" for every entry in
// path order. The client ids are 128 random characters [a-z0-9]: the server knows a version by
// its client id, so asking to create it again gives the same version.
// Thread-safety: plain data and pure functions (new_client_id uses a thread-local generator).
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace accel::wandb {

struct ArtifactEntry {
  std::string path;    // the name inside the artifact, '/'-separated ("tbl.table.json")
  std::string digest;  // base64(MD5(bytes))
  int64_t size = 0;
  std::filesystem::path local_path;  // absolute: the copy inside the run directory sync uploads
};

struct Artifact {
  std::string name;  // the collection ("run-<id>-tbl", "model-<id>")
  std::string type;  // "run_table", "model", "dataset", ...
  std::vector<std::string> aliases;
  std::string description;
  nlohmann::json metadata = nullptr;   // an object, or null
  std::vector<ArtifactEntry> entries;  // sorted by path, digests filled in
  std::string client_id;
  std::string sequence_client_id;
  std::string digest;  // the manifest digest (32 hex digits)
};

// base64(MD5(bytes)), as W&B's entry digests and upload checksums.
std::string md5_base64(std::string_view bytes);
// The same of a file's contents, read in pieces. Throws accel::TrackerUnavailable naming the file
// when it cannot be read.
std::string file_md5_base64(const std::filesystem::path& path);

// The artifact digest of entries (any order; they are sorted by path for it).
std::string manifest_digest(const std::vector<ArtifactEntry>& entries);

// 128 random characters [a-z0-9], as the SDK's client ids.
std::string new_client_id();

// The SDK's sanitize_artifact_name for names it builds itself (run-<id>-<key>): a name of only
// [A-Za-z0-9_.-] is kept; otherwise the other characters are removed and "-" + 6 characters
// (urlsafe base64 of the big-endian CRC-32 of the name) are appended: "run-x-eval/acc" →
// "run-x-evalacc-<crc>".
std::string sanitize_artifact_name(std::string_view name);

// Checks what a user gives log_artifact as the SDK does: a name of 1-128 characters without '/',
// a type of 1-128 characters without '/' or ':' and not reserved for W&B's own artifacts (types
// "wandb-...", "job", "run_table" with a "run-..." name, "code" with a "source-..." name), aliases
// of 1-128 characters without '/' or ':'. Throws accel::InvalidValue naming the value and the rule.
void validate_user_artifact(const std::string& name, const std::string& type,
                            const std::vector<std::string>& aliases);

// Sorts the entries by path, checks that no path repeats (accel::InvalidValue naming it) and sets
// the artifact digest. Entries' digests must be filled in.
void seal(Artifact& artifact);

// The serialized wandb_internal.ArtifactRecord of a sealed artifact logged by run run_id of
// project (entity empty: the server's default, as the SDK writes it offline).
std::string artifact_record(const Artifact& artifact, const std::string& run_id,
                            const std::string& project, const std::string& entity);

// wandb_manifest.json as wandb-core uploads it: {"version":1,"storagePolicy":...,
// "storagePolicyConfig":{"storageLayout":"V2"},"contents":{path:{"digest","size",
// "birthArtifactID","skip_cache"}}}. Local paths are left out (they name this machine's files).
std::string manifest_json(const Artifact& artifact, const std::string& server_artifact_id);

// wandb-client-artifact://<client_id>/<entry> and ...://<sequence_client_id>:latest/<entry>:
// how a history value (a table-file's artifact_path, _latest_artifact_path) names an entry.
std::string client_artifact_path(const Artifact& artifact, std::string_view entry);
std::string latest_client_artifact_path(const Artifact& artifact, std::string_view entry);

}  // namespace accel::wandb
