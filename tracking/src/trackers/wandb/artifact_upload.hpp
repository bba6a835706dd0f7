#pragma once
// accel::wandb::ArtifactUploads: the online mode's artifacts, sent to the W&B server in the order
// they were logged with the GraphQL sequence wandb-core 0.31.0 uses (core/pkg/artifacts/saver.go;
// shared/research/wandb-formats.md §6):
//
//   CreateArtifact         {input: type, collection name, aliases, digest "MANIFEST_MD5",
//                           clientID, sequenceClientID, entity, project, run, metadata,
//                           enableDigestDeduplication} → id and state. COMMITTED: the server
//                           already has this content (or this client id), nothing more is sent.
//   CreateArtifactManifest (no digest, no upload; baseArtifactID = the collection's latest
//                           version, as CreateArtifact named it) → the manifest's id
//   CreateArtifactFiles    {input: artifactFiles [{artifactID, artifactManifestID, name, md5}],
//                           storageLayout "V2"} → one upload URL per file (none: already stored)
//   PUT <url>              each file's bytes, without credentials, with the uploadHeaders given
//   CreateArtifactManifest (digest = base64 MD5 of wandb_manifest.json, includeUpload) → its URL
//   PUT <url>              wandb_manifest.json
//   CommitArtifact         {artifactID}
//
// Retries: each request is repeated by WandbApi under its RetryPolicy; when the server stays away
// upload_all throws TrackerUnavailable and the next call continues at the step that failed, with
// the ids the server already gave: an artifact is created once and never again once committed.
// Thread-safety: none (the tracker's worker thread owns it).
#include <cstdint>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "trackers/wandb/artifact_manifest.hpp"
#include "trackers/wandb/wandb_api.hpp"

namespace accel::wandb {

class ArtifactUploads {
 public:
  // Queues a sealed artifact.
  void add(Artifact artifact);
  // Artifacts queued so far, and how many of the first ones the server has committed.
  uint64_t added() const { return added_; }
  uint64_t committed() const { return committed_; }
  bool all_committed() const { return queue_.empty(); }

  // Sends every queued artifact of run. Throws TrackerUnavailable while the server is away (call
  // again later) and TrackerError for an answer that cannot be used (a rejected request, an
  // artifact in a state other than PENDING or COMMITTED, a missing id).
  void upload_all(detail::WandbApi& api, const detail::WandbRunPath& run);

 private:
  struct Upload {
    Artifact artifact;
    std::string id;                           // from CreateArtifact; empty: not created yet
    nlohmann::json base_id = nullptr;         // the collection's latest version before it, or null
    std::string manifest_id;                  // from the first CreateArtifactManifest
    bool urls_known = false;                  // CreateArtifactFiles answered
    std::map<std::string, std::string> urls;  // entry path → upload URL (none: stored already)
    std::map<std::string, std::vector<std::string>> headers;  // entry path → its uploadHeaders
    std::set<std::string> uploaded;
    bool manifest_uploaded = false;
  };

  // Runs the sequence from the step the last attempt reached up to CommitArtifact (or up to a
  // COMMITTED answer of CreateArtifact); throws as upload_all.
  void upload(Upload& upload, detail::WandbApi& api, const detail::WandbRunPath& run);
  void create(Upload& upload, detail::WandbApi& api, const detail::WandbRunPath& run);
  void request_urls(Upload& upload, detail::WandbApi& api);
  void upload_manifest(Upload& upload, detail::WandbApi& api, const detail::WandbRunPath& run);

  std::deque<Upload> queue_;
  uint64_t added_ = 0;
  uint64_t committed_ = 0;
};

}  // namespace accel::wandb
