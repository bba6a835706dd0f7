#include "trackers/wandb/artifact_upload.hpp"

#include <fmt/format.h>

#include "accel/tracking/errors.hpp"

namespace accel::wandb {
namespace {

// The operations as wandb-core 0.31.0 sends them (read from its binary).
constexpr const char* kCreateArtifactMutation =
    R"(mutation CreateArtifact ($input: CreateArtifactInput!) {
	createArtifact(input: $input) {
		... CreatedArtifact
	}
}
fragment CreatedArtifact on CreateArtifactPayload {
	artifact {
		id
		state
		artifactSequence {
			latestArtifact {
				id
			}
		}
	}
}
)";

constexpr const char* kCreateArtifactManifestMutation =
    R"(mutation CreateArtifactManifest ($artifactID: ID!, $baseArtifactID: ID, $name: String!, $digest: String!, $entityName: String!, $projectName: String!, $runName: String!, $manifestType: ArtifactManifestType!, $includeUpload: Boolean!) {
	createArtifactManifest(input: {artifactID:$artifactID,baseArtifactID:$baseArtifactID,name:$name,digest:$digest,entityName:$entityName,projectName:$projectName,runName:$runName,type:$manifestType}) {
		artifactManifest {
			id
			file {
				id
				uploadUrl @include(if: $includeUpload)
				uploadHeaders @include(if: $includeUpload)
			}
		}
	}
})";

constexpr const char* kCreateArtifactFilesMutation =
    R"(mutation CreateArtifactFiles ($input: CreateArtifactFilesInput!) {
	createArtifactFiles(input: $input) {
		files {
			edges {
				node {
					storagePath
					uploadUrl
					uploadHeaders
					uploadMultipartUrls {
						uploadID
						uploadUrlParts {
							partNumber
							uploadUrl
						}
					}
					artifact {
						id
					}
				}
			}
		}
	}
})";

constexpr const char* kCommitArtifactMutation = R"(mutation CommitArtifact ($artifactID: ID!) {
	commitArtifact(input: {artifactID:$artifactID}) {
		artifact {
			id
			digest
		}
	}
})";

constexpr const char* kManifestName = "wandb_manifest.json";

// data[first][second]... or null.
nlohmann::json field(const nlohmann::json& data, std::initializer_list<const char*> path) {
  const nlohmann::json* at = &data;
  for (const char* name : path) {
    if (!at->is_object() || !at->contains(name)) return nullptr;
    at = &(*at)[name];
  }
  return *at;
}

std::string string_field(const nlohmann::json& data, std::initializer_list<const char*> path,
                         const std::string& what) {
  const auto value = field(data, path);
  if (!value.is_string()) {
    throw TrackerError(
        fmt::format("wandb: the W&B server's answer to {} has no {}", what, *(path.end() - 1)));
  }
  return value.get<std::string>();
}

// uploadHeaders: a list of "Name:value" strings, or null.
std::vector<std::string> upload_headers(const nlohmann::json& field) {
  std::vector<std::string> headers;
  if (!field.is_array()) return headers;
  for (const auto& header : field) {
    if (header.is_string()) headers.push_back(header.get<std::string>());
  }
  return headers;
}

}  // namespace

void ArtifactUploads::add(Artifact artifact) {
  Upload upload;
  upload.artifact = std::move(artifact);
  queue_.push_back(std::move(upload));
  ++added_;
}

void ArtifactUploads::upload_all(detail::WandbApi& api, const detail::WandbRunPath& run) {
  while (!queue_.empty()) {
    upload(queue_.front(), api, run);
    queue_.pop_front();
    ++committed_;
  }
}

void ArtifactUploads::upload(Upload& upload, detail::WandbApi& api,
                             const detail::WandbRunPath& run) {
  if (upload.id.empty()) {
    create(upload, api, run);
    if (upload.id.empty()) return;  // the server had it committed already
  }
  if (upload.manifest_id.empty()) {
    const auto data = api.graphql("CreateArtifactManifest", kCreateArtifactManifestMutation,
                                  {{"artifactID", upload.id},
                                   {"baseArtifactID", upload.base_id},
                                   {"name", kManifestName},
                                   {"digest", ""},
                                   {"entityName", run.entity},
                                   {"projectName", run.project},
                                   {"runName", run.name},
                                   {"manifestType", "FULL"},
                                   {"includeUpload", false}});
    upload.manifest_id = string_field(data, {"createArtifactManifest", "artifactManifest", "id"},
                                      "CreateArtifactManifest");
  }
  if (!upload.urls_known) request_urls(upload, api);
  for (const auto& entry : upload.artifact.entries) {
    const auto url = upload.urls.find(entry.path);
    if (url == upload.urls.end() || upload.uploaded.contains(entry.path)) continue;
    api.upload_file(url->second, entry.local_path,
                    fmt::format("'{}' of artifact '{}'", entry.path, upload.artifact.name),
                    upload.headers[entry.path]);
    upload.uploaded.insert(entry.path);
  }
  if (!upload.manifest_uploaded) upload_manifest(upload, api, run);
  api.graphql("CommitArtifact", kCommitArtifactMutation, {{"artifactID", upload.id}});
}

void ArtifactUploads::create(Upload& upload, detail::WandbApi& api,
                             const detail::WandbRunPath& run) {
  const Artifact& artifact = upload.artifact;
  nlohmann::json aliases = nlohmann::json::array();
  for (const auto& alias : artifact.aliases) {
    aliases.push_back({{"artifactCollectionName", artifact.name}, {"alias", alias}});
  }
  const nlohmann::json input = {
      {"entityName", run.entity},
      {"projectName", run.project},
      {"artifactTypeName", artifact.type},
      {"artifactCollectionName", artifact.name},
      {"runName", run.name},
      {"digest", artifact.digest},
      {"digestAlgorithm", "MANIFEST_MD5"},
      {"description", artifact.description.empty() ? nlohmann::json(nullptr)
                                                   : nlohmann::json(artifact.description)},
      {"aliases", std::move(aliases)},
      {"metadata", artifact.metadata.is_object() ? nlohmann::json(artifact.metadata.dump())
                                                 : nlohmann::json(nullptr)},
      {"ttlDurationSeconds", nullptr},
      {"historyStep", nullptr},
      {"enableDigestDeduplication", true},
      {"distributedID", nullptr},
      {"clientID", artifact.client_id},
      {"sequenceClientID", artifact.sequence_client_id},
      {"storageRegion", nullptr}};
  const auto data = api.graphql("CreateArtifact", kCreateArtifactMutation, {{"input", input}});
  const std::string what = fmt::format("CreateArtifact of '{}'", artifact.name);
  const std::string id = string_field(data, {"createArtifact", "artifact", "id"}, what);
  const std::string state = string_field(data, {"createArtifact", "artifact", "state"}, what);
  if (state == "COMMITTED") return;  // the same content (or this client id) is stored already
  // DELETED is what old servers answer for a new version (wandb-core accepts it too).
  if (state != "PENDING" && state != "DELETED") {
    throw TrackerError(
        fmt::format("wandb: the W&B server answered {} with state '{}'", what, state));
  }
  upload.id = id;
  const auto latest =
      field(data, {"createArtifact", "artifact", "artifactSequence", "latestArtifact", "id"});
  upload.base_id = latest.is_string() ? latest : nlohmann::json(nullptr);
}

void ArtifactUploads::request_urls(Upload& upload, detail::WandbApi& api) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& entry : upload.artifact.entries) {
    files.push_back({{"artifactID", upload.id},
                     {"artifactManifestID", upload.manifest_id},
                     {"name", entry.path},
                     {"md5", entry.digest}});
  }
  const std::string what = fmt::format("CreateArtifactFiles of '{}'", upload.artifact.name);
  const auto data = api.graphql("CreateArtifactFiles", kCreateArtifactFilesMutation,
                                {{"input", {{"artifactFiles", files}, {"storageLayout", "V2"}}}});
  const auto edges = field(data, {"createArtifactFiles", "files", "edges"});
  if (!edges.is_array() || edges.size() != upload.artifact.entries.size()) {
    throw TrackerError(
        fmt::format("wandb: the W&B server answered {} with {} upload URLs for {} files", what,
                    edges.is_array() ? edges.size() : 0, upload.artifact.entries.size()));
  }
  for (std::size_t i = 0; i < edges.size(); ++i) {
    const std::string& path = upload.artifact.entries[i].path;
    const auto url = field(edges[i], {"node", "uploadUrl"});
    if (url.is_string()) upload.urls[path] = url.get<std::string>();
    upload.headers[path] = upload_headers(field(edges[i], {"node", "uploadHeaders"}));
  }
  upload.urls_known = true;
}

void ArtifactUploads::upload_manifest(Upload& upload, detail::WandbApi& api,
                                      const detail::WandbRunPath& run) {
  const std::string manifest = manifest_json(upload.artifact, upload.id);
  const auto data = api.graphql("CreateArtifactManifest", kCreateArtifactManifestMutation,
                                {{"artifactID", upload.id},
                                 {"baseArtifactID", upload.base_id},
                                 {"name", kManifestName},
                                 {"digest", md5_base64(manifest)},
                                 {"entityName", run.entity},
                                 {"projectName", run.project},
                                 {"runName", run.name},
                                 {"manifestType", "FULL"},
                                 {"includeUpload", true}});
  const std::string url =
      string_field(data, {"createArtifactManifest", "artifactManifest", "file", "uploadUrl"},
                   fmt::format("CreateArtifactManifest of '{}'", upload.artifact.name));
  api.upload(url, manifest, fmt::format("the manifest of artifact '{}'", upload.artifact.name),
             upload_headers(field(
                 data, {"createArtifactManifest", "artifactManifest", "file", "uploadHeaders"})));
  upload.manifest_uploaded = true;
}

}  // namespace accel::wandb
