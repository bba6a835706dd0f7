#pragma once
// accel::MlflowConfig: where and how the mlflow tracker talks to an MLflow tracking server,
// resolved the way the mlflow Python client resolves it. Precedence: init_kwargs["mlflow"] >
// environment > defaults. Environment variables read:
//   MLFLOW_TRACKING_URI              http(s)://host[:port][/prefix] (required; file:/paths
//   rejected) MLFLOW_EXPERIMENT_NAME / _ID     experiment (default: the project name given to
//   init_trackers) MLFLOW_RUN_ID                    resume this run instead of creating one
//   MLFLOW_TAGS                      JSON object of extra run tags
//   MLFLOW_TRACKING_USERNAME/PASSWORD  HTTP Basic auth; else MLFLOW_TRACKING_TOKEN: Bearer auth
//   MLFLOW_TRACKING_INSECURE_TLS     "true" turns TLS verification off (default: on)
//   MLFLOW_TRACKING_SERVER_CERT_PATH CA bundle to verify the server with
//   MLFLOW_TRACKING_CLIENT_CERT_PATH client certificate for mutual TLS
//   MLFLOW_HTTP_REQUEST_TIMEOUT      seconds per request (default 120)
// Credentials are taken from the environment only (never from init_kwargs, which end up in dumped
// configurations) and are never printed: to_string() shows whether they are set, not their value.
// Thread-safety: a plain value.
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "accel/tracking/general_tracker.hpp"
#include "accel/tracking/http_options.hpp"
#include "accel/tracking/retry_policy.hpp"

namespace accel {

struct MlflowConfig {
  std::string tracking_uri;     // normalised: no trailing slash
  std::string experiment_name;  // used when experiment_id is empty
  std::string experiment_id;
  std::string run_id;                              // resume this run when set
  std::string run_name;                            // empty: the server picks a name
  std::string description;                         // stored as the mlflow.note.content tag
  nlohmann::json tags = nlohmann::json::object();  // string → string

  std::string username, password, token;  // secrets: never print
  HttpOptions http;
  RetryPolicy retry;

  // Metric batching on the tracker's worker thread: a log-batch request goes out when this many
  // points are pending, or when flush_interval has passed since the last request.
  std::size_t max_batch_metrics = 1000;
  std::chrono::milliseconds flush_interval{1000};
  // While the server is unreachable, the tracker probes it at most this often.
  std::chrono::milliseconds max_probe_interval{5000};

  // Resolves from the environment and init.init_kwargs (the "mlflow" entry of init_kwargs).
  // Throws accel::InvalidValue with the offending setting and the fix (no URI, file: URI, bad
  // JSON in MLFLOW_TAGS, unknown option, ...).
  static MlflowConfig resolve(const TrackerInit& init);

  // Why the mlflow tracker cannot run in this environment ("MLFLOW_TRACKING_URI is not set"), or
  // nullopt when MLFLOW_TRACKING_URI is an http(s) URI. Used by log_with = {"all"}.
  static std::optional<std::string> unavailable_reason();

  // Checks tracking_uri: http(s) scheme, a host, no user:password@. Returns it without a trailing
  // slash. Throws accel::InvalidValue that says what to do (start `mlflow server`, use env vars
  // for credentials). The message never repeats a password.
  static std::string normalize_tracking_uri(std::string_view uri);

  // Authorization header value ("Basic ...", "Bearer ...") or empty.
  std::string authorization() const;
};

}  // namespace accel
