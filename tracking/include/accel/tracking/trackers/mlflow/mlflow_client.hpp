#pragma once
// accel::MlflowClient: a small typed client of MLflow's tracking REST API (/api/2.0/mlflow/...) and
// of the server's artifact proxy (/api/2.0/mlflow-artifacts/...), bound to one run. It is what
// get_tracker<accel::MlflowClient>("mlflow") returns, so a training program can call it directly:
//   if (auto* mlflow = acc.get_tracker<accel::MlflowClient>("mlflow")) {  // nullptr off rank 0
//     mlflow->log_param("seed", "42");
//   }
//
// Every request is retried on connection errors, 408, 429 and 5xx under config.retry (exponential
// backoff with jitter, Retry-After honoured). Failures are reported as:
//   accel::TrackerUnavailable  the server did not answer usefully after the retries (transient);
//   accel::MlflowRequestError  the server rejected the request (4xx; carries MLflow's error_code
//                              and message, e.g. INVALID_PARAMETER_VALUE); a TrackerError;
//   accel::TrackerError        credentials rejected (401/403), TLS verification failed, ...;
//   accel::InvalidValue        a key or path that MLflow would reject, caught before sending.
// No message ever contains the password or token.
// Thread-safety: every public member function may be called from any thread (one internal mutex
// serialises requests on the single keep-alive connection).
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/general_tracker.hpp"
#include "accel/tracking/trackers/mlflow/mlflow_config.hpp"
#include "accel/tracking/trackers/mlflow/mlflow_entities.hpp"

namespace accel {

class HttpClient;  // one libcurl connection (internal)

// The server answered with a 4xx that retrying will not fix.
class MlflowRequestError : public TrackerError {
 public:
  MlflowRequestError(std::string message, long status, std::string error_code,
                     std::string server_message)
      : TrackerError(std::move(message)),
        status_(status),
        error_code_(std::move(error_code)),
        server_message_(std::move(server_message)) {}
  long status() const { return status_; }
  const std::string& error_code() const { return error_code_; }  // "INVALID_PARAMETER_VALUE", ...
  const std::string& server_message() const { return server_message_; }

 private:
  long status_;
  std::string error_code_;
  std::string server_message_;
};

class MlflowClient {
 public:
  // Stores the configuration; sends nothing.
  explicit MlflowClient(MlflowConfig config);
  ~MlflowClient();
  MlflowClient(const MlflowClient&) = delete;
  MlflowClient& operator=(const MlflowClient&) = delete;

  // Resolves the experiment (get by name, else create; a concurrent creation is tolerated) and
  // creates the run with the usual system tags (mlflow.user, mlflow.source.name/type,
  // mlflow.runName), or resumes config.run_id (set back to RUNNING). Call once before logging.
  void start_run();
  bool has_run() const;

  std::string run_id() const;
  std::string experiment_id() const;
  std::string artifact_uri() const;  // e.g. "mlflow-artifacts:/1/<run>/artifacts"
  // True when artifacts go through the server's proxy (artifact_uri is mlflow-artifacts:).
  bool artifacts_proxied() const;

  // One metric now (timestamp: now unless given; step: 0 unless given, as in mlflow).
  void log_metric(std::string_view key, double value, std::optional<int64_t> step = std::nullopt,
                  std::optional<int64_t> timestamp_ms = std::nullopt);
  // One param. Logging the same key again with a different value is rejected by MLflow
  // (MlflowRequestError, INVALID_PARAMETER_VALUE).
  void log_param(std::string_view key, std::string_view value);
  void set_tag(std::string_view key, std::string_view value);
  // Entities of any number, sent as log-batch requests split to the server's limits, in order.
  // When a request fails, the ones before it have been stored and the exception says how many.
  void log_batch(std::span<const MlflowMetric> metrics, std::span<const MlflowParam> params = {},
                 std::span<const MlflowTag> tags = {});

  // Uploads a local file as <artifact_dir>/<file name> of the run (mlflow.log_artifact).
  void log_artifact(const std::filesystem::path& local_file, std::string_view artifact_dir = "");
  // Uploads bytes as the run artifact at artifact_file ("text/notes.txt"), replacing any file
  // there. Throws accel::TrackerError when the server does not proxy artifacts.
  void log_artifact_bytes(std::string_view artifact_file, std::string_view bytes,
                          std::string_view content_type = "application/octet-stream");

  // Ends the run: status FINISHED / FAILED / KILLED and end time now.
  void end_run(RunStatus status);

  // One attempt, no retries: does the server answer GET /health with 200? Never throws.
  bool reachable();
  // When credentials are configured: one attempt, short timeout; throws accel::TrackerError when
  // the server rejects them (401/403). Returns quietly otherwise, also when the server cannot be
  // reached.
  void check_credentials();

  // GET runs/get for this run (the raw JSON "run" object).
  nlohmann::json get_run();

  // Requests sent so far, retries included.
  uint64_t requests_sent() const;
  const MlflowConfig& config() const { return config_; }

  // One REST call with retries: method, endpoint under /api/2.0/mlflow/ ("runs/log-batch"), JSON
  // body (POST) or query parameters (GET). Returns the parsed response.
  nlohmann::json call(std::string_view method, std::string_view endpoint,
                      const nlohmann::json& body = nlohmann::json::object());
  // Same for a body already serialised (the metric hot path).
  nlohmann::json call_raw(std::string_view method, std::string_view endpoint,
                          std::string_view body);

 private:
  nlohmann::json send_with_retries(std::string_view method, const std::string& url,
                                   std::string_view body, std::string_view content_type,
                                   std::string_view what);
  std::string resolve_experiment_id();
  std::string credentials_hint() const;
  void require_run() const;

  // A connection for one request: an idle one of the pool, or a new one (so that concurrent
  // requests, a backlog's batches, do not wait for each other). Returned by release_http.
  HttpClient* acquire_http();
  void release_http(HttpClient* client);

  MlflowConfig config_;
  mutable std::mutex http_mutex_;  // guards the pool and random_ (never held during a request)
  std::vector<std::unique_ptr<HttpClient>> http_clients_;
  std::vector<HttpClient*> idle_http_;
  std::atomic<uint64_t> requests_sent_{0};
  std::mt19937_64 random_;
  mutable std::mutex run_mutex_;  // guards the run identity below
  std::string run_id_, experiment_id_, artifact_uri_;
};

}  // namespace accel
