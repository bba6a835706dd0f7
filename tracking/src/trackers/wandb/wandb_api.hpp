#pragma once
// Internal: the W&B server API the wandb tracker's online mode speaks, as wandb-core 0.31.0 does
// (shared/research/wandb-formats.md §3-4): GraphQL at <base_url>/graphql (Viewer, UpsertBucket,
// RunResumeStatus, CreateRunFiles), file_stream at <base_url>/files/<entity>/<project>/<run>/
// file_stream, and uploads to the pre-signed URLs CreateRunFiles hands out (sent without
// credentials). Every request but the uploads carries HTTP Basic "api:<key>"; the key is never
// part of a message.
//
// Errors, as the SDK's retry policy sorts them: a refused connection, a timeout, 429 and 5xx (but
// 501) are repeated under the RetryPolicy and then throw TrackerUnavailable (the hub keeps the
// records in its journal); 401/403 throw TrackerError naming the base URL and how to fix the key;
// any other 4xx or a GraphQL error throws TrackerError with the server's message.
// Thread-safety: NOT thread-safe (one connection); the tracker's worker thread owns it.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "accel/tracking/http_options.hpp"
#include "accel/tracking/retry_policy.hpp"

namespace accel {

class HttpClient;
struct HttpResponse;

namespace detail {

struct WandbServer {
  std::string base_url;  // e.g. https://api.wandb.ai (no trailing slash)
  std::string api_key;
};

// Which run: W&B's entity / project / run name (the run id).
struct WandbRunPath {
  std::string entity;
  std::string project;
  std::string name;
};

// UpsertBucket's variables. Absent fields are sent as null (the server keeps what it has).
struct WandbRunUpsert {
  std::string name;  // the run id
  std::string project;
  std::optional<std::string> entity;  // null: the key's default entity
  std::optional<std::string> display_name;
  std::optional<std::string> notes;
  std::optional<std::string> group;
  std::optional<std::string> job_type;
  std::optional<std::vector<std::string>> tags;
  std::optional<std::string> host;
  std::optional<std::string> program;
  std::optional<nlohmann::json> config;  // {"key": {"value": v}, ...}, sent as a JSON string
};

// What RunResumeStatus says of an existing run, to continue it.
struct WandbResumeState {
  int64_t history_line_count = 0;  // file_stream offsets to continue from
  int64_t events_line_count = 0;
  int64_t log_line_count = 0;
  std::optional<int64_t> last_step;  // `_step` of the last history row
  nlohmann::json last_row;           // that row (an object), null when there is none
  nlohmann::json summary = nlohmann::json::object();
  nlohmann::json config = nlohmann::json::object();
};

class WandbApi {
 public:
  WandbApi(WandbServer server, HttpOptions http, RetryPolicy retry);
  ~WandbApi();
  WandbApi(const WandbApi&) = delete;
  WandbApi& operator=(const WandbApi&) = delete;

  // The key's default entity (Viewer.entity).
  std::string viewer_entity();

  // Creates or updates the run; returns where the server put it (entity filled in).
  WandbRunPath upsert_run(const WandbRunUpsert& run);

  // The run's state when it exists (a run the server knows, with W&B's "t" config key), else
  // nullopt.
  std::optional<WandbResumeState> resume_status(const WandbRunPath& run);

  // Upload URLs for files of the run, by file name (paths relative to the run's files/).
  std::map<std::string, std::string> create_run_files(const WandbRunPath& run,
                                                      const std::vector<std::string>& files);

  // PUTs bytes to a URL create_run_files (or an artifact's CreateArtifactFiles) gave, without
  // credentials, with the upload headers the server gave with it ("Name:value", as W&B lists
  // them; a Content-Type among them is the request's). A 401/403 there throws TrackerError saying
  // the URL was refused (it carries no key).
  void upload(const std::string& url, const std::string& bytes, const std::string& what,
              const std::vector<std::string>& headers = {});
  // The same with a file's contents, streamed from disk (HttpClient::send_file: no limit on the
  // whole transfer, only on a stall).
  void upload_file(const std::string& url, const std::filesystem::path& file,
                   const std::string& what, const std::vector<std::string>& headers = {});

  // POSTs one file_stream request (see FileStreamBatch) for the run; returns the server's answer.
  nlohmann::json send_file_stream(const WandbRunPath& run, const nlohmann::json& request);

  // POSTs one GraphQL operation (query text as wandb-core sends it) and returns its "data"; the
  // other operations' files (artifact_upload.cpp) call it with theirs. Throws as described above,
  // and TrackerError for an answer with "errors".
  nlohmann::json graphql(const char* operation, const char* query, nlohmann::json variables);

  const std::string& base_url() const { return server_.base_url; }
  uint64_t requests_sent() const { return requests_sent_; }

 private:
  std::string send(HttpClient& http, const char* method, const std::string& url,
                   const std::string& body, const std::string& content_type,
                   const std::string& what, const std::vector<std::string>& headers = {});
  // attempt() repeated under the RetryPolicy; the errors as described above.
  std::string retried(HttpClient& http, const std::string& what,
                      const std::function<HttpResponse()>& attempt);

  WandbServer server_;
  RetryPolicy retry_;
  std::unique_ptr<HttpClient> api_http_;     // GraphQL + file_stream, with credentials
  std::unique_ptr<HttpClient> upload_http_;  // pre-signed uploads, without
  std::mt19937_64 random_;
  uint64_t requests_sent_ = 0;
};

// 429 and 5xx but 501, as wandb-core's retry policy repeats them.
bool wandb_transient_status(long status);

}  // namespace detail
}  // namespace accel
