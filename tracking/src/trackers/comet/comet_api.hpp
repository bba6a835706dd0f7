#pragma once
// Internal: the Comet server API the comet_ml tracker's online mode speaks, as comet_ml 3.58.8's
// Experiment and `comet upload` do (shared/research/comet-formats.md §2.2, §3). URLs derive from
// the clientlib base (COMET_URL_OVERRIDE, default https://www.comet.com/clientlib/): clientlib
// endpoints are <base><endpoint>, REST v2 writes are <root>/api/rest/v2/write/experiment/<what>
// (root = scheme://host:port of the base). Every request carries `Authorization: <key>`; the
// clientlib JSON bodies also carry "apiKey", as the SDK sends them. JSON bodies go as
// application/json;charset=utf-8, batch bodies gzip-compressed (Content-Encoding: gzip), uploads
// as multipart/form-data with the part "file".
//
// Errors: a refused connection, a timeout, HTTP 408, 429, 500, 502, 503 and 504 (the SDK repeats
// 500-504; RetryPolicy::is_transient_status) are repeated under the RetryPolicy and then
// throw TrackerUnavailable (the caller keeps what it sends); 401/403 (and add/run's "API key not
// registered") throw TrackerError naming the server and how to fix the key; any other failure
// throws TrackerError with the server's answer. No message ever holds the key (a server that
// echoes it is redacted).
// Thread-safety: NOT thread-safe (one connection); the tracker's worker thread owns it.
#include <chrono>
#include <cstdint>
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

namespace comet {

// What add/run answered.
struct CometRun {
  std::string run_id;
  nlohmann::json project_id;  // a string, or null when the server sent none
  std::string focus_url;      // the experiment's page is focus_url + experiment key ("" if none)
};

class CometApi {
 public:
  // The comet_ml version whose protocol this speaks (sent as add/run's libVersion: the server
  // refuses SDK versions it considers obsolete).
  static constexpr const char* kProtocolVersion = "3.58.8";

  CometApi(std::string clientlib_url, std::string api_key, std::string experiment_key,
           HttpOptions http = {}, RetryPolicy retry = {});
  ~CometApi();
  CometApi(const CometApi&) = delete;
  CometApi& operator=(const CometApi&) = delete;

  // GET isAlive/ver: the server's version; nullopt when it answers with an error (the SDK only
  // warns). Throws TrackerUnavailable when it does not answer at all.
  std::optional<std::string> server_version();
  // POST logger/add/run (offline: false): creates the experiment.
  CometRun add_run(const nlohmann::json& project_name, const nlohmann::json& workspace,
                   int64_t local_timestamp);
  // POST logger/get/run (previousExperiment = the experiment key): continues an experiment that
  // exists (what `accel-launch sync` of a journal does).
  CometRun get_run(int64_t local_timestamp);
  // POST status-report/update: the heartbeat; returns is_alive_beat_duration_millis.
  std::chrono::milliseconds status_update(const CometRun& run, bool is_alive,
                                          int64_t local_timestamp);
  // POST tags/add-tags-to-experiment.
  void add_tags(const std::vector<std::string>& tags);
  // A gzip JSON batch {"experimentKey", "values": values} to batch/logger/experiment/<kind>
  // ("metric" or "parameter").
  void send_batch(const char* kind, const nlohmann::json& values);
  // POST <root>/api/rest/v2/write/experiment/<what> (log-other, html, update-status) with body plus
  // "experimentKey".
  void rest_write(const char* what, nlohmann::json body);
  // A multipart upload of content (part "file") to the clientlib endpoint, with the query string the
  // uploader builds from additional_params (nulls dropped, bools as True/False) plus experimentId,
  // projectId and runId.
  void upload(const std::string& endpoint, const nlohmann::json& additional_params,
              const std::string& content, const CometRun& run);

  // The clientlib endpoint of a file_upload's upload_type (visualization → visualizations/upload,
  // else asset/upload), as comet_ml's UPLOAD_TYPE_URL_MAP.
  static std::string upload_endpoint(const std::string& upload_type);

  const std::string& clientlib_url() const { return clientlib_url_; }
  uint64_t requests_sent() const { return requests_sent_; }

 private:
  std::string send(const char* method, const std::string& url, const std::string& body,
                   const std::string& content_type, std::vector<std::string> headers,
                   const std::string& what);
  nlohmann::json clientlib_json(const char* endpoint, nlohmann::json body);
  std::string redacted(std::string text) const;
  CometRun run_of(const nlohmann::json& answer, const char* endpoint) const;

  std::string clientlib_url_;
  std::string root_url_;  // scheme://host:port/
  std::string api_key_;
  std::string experiment_key_;
  RetryPolicy retry_;
  std::unique_ptr<HttpClient> http_;
  std::mt19937_64 random_;
  uint64_t requests_sent_ = 0;
};

// gzip (RFC 1952) of bytes, as Python's gzip.compress; what the batch endpoints take.
std::string gzip_compress(const std::string& bytes);

}  // namespace comet
}  // namespace accel
