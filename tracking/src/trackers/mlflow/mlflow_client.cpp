#include "accel/tracking/trackers/mlflow/mlflow_client.hpp"

#include <fmt/format.h>
#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "common/utf8.hpp"
#include "net/http_client.hpp"
#include "net/request_retry.hpp"
#include "trackers/mlflow/mlflow_keys.hpp"
#include "trackers/mlflow/mlflow_log_batch.hpp"
#include "trackers/mlflow/mlflow_params.hpp"

namespace accel {

namespace {

constexpr std::string_view kApi = "/api/2.0/mlflow/";
constexpr std::string_view kArtifactsApi = "/api/2.0/mlflow-artifacts/artifacts/";

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string current_user() {
  if (const char* user = std::getenv("USER"); user && *user) return user;
  if (const passwd* pw = getpwuid(getuid()); pw && pw->pw_name) return pw->pw_name;
  return "unknown";
}

std::string source_name() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("accel") : exe.string();
}

std::string_view status_name(RunStatus status) {
  switch (status) {
    case RunStatus::finished:
      return "FINISHED";
    case RunStatus::failed:
      return "FAILED";
    case RunStatus::killed:
      return "KILLED";
  }
  return "FINISHED";
}

std::string query_string(const nlohmann::json& params) {
  std::string out;
  for (const auto& [key, value] : params.items()) {
    out += out.empty() ? '?' : '&';
    out += HttpClient::escape(key);
    out += '=';
    out += HttpClient::escape(value.is_string() ? value.get<std::string>() : value.dump());
  }
  return out;
}

// A server's error body is {"error_code": "...", "message": "..."}; anything else is shown raw
// (cut).
std::pair<std::string, std::string> parse_error(const std::string& body) {
  auto parsed = nlohmann::json::parse(body, nullptr, false);
  if (parsed.is_object()) {
    return {parsed.value("error_code", std::string()), parsed.value("message", std::string())};
  }
  std::string text = body.size() > 300 ? body.substr(0, 300) + "..." : body;
  return {"", text};
}

void check_key(std::string_view what, std::string_view key) {
  if (!is_valid_mlflow_key(key)) {
    throw InvalidValue(fmt::format(
        "{} key '{}' is not a valid MLflow key: use at most 250 alphanumerics, '_', '-', '.', ' ', "
        "':' and '/' in normal path form (no leading, trailing or double '/'), e.g. '{}'",
        what, key, sanitize_mlflow_key(key)));
  }
}

// Artifact paths are relative, '/'-separated, without '.', '..' or empty segments.
std::string checked_artifact_path(std::string_view path) {
  std::string out;
  std::size_t begin = 0;
  while (begin <= path.size()) {
    const std::size_t end = std::min(path.find('/', begin), path.size());
    const std::string_view segment = path.substr(begin, end - begin);
    begin = end + 1;
    if (segment.empty()) continue;
    if (segment == "." || segment == ".." || segment.find('\\') != std::string_view::npos ||
        segment.find('\0') != std::string_view::npos) {
      throw InvalidValue(
          fmt::format("artifact path '{}' is not a plain relative path; use "
                      "'/'-separated names without '.', '..' or '\\'",
                      path));
    }
    if (!out.empty()) out += '/';
    out += HttpClient::escape(segment);
  }
  if (out.empty()) {
    throw InvalidValue(
        fmt::format("artifact path '{}' is empty; name the file, e.g. "
                    "'notes/summary.txt'",
                    path));
  }
  return out;
}

}  // namespace

std::string MlflowClient::credentials_hint() const {
  return config_.authorization().empty()
             ? "the server requires authentication; set MLFLOW_TRACKING_USERNAME and "
               "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)"
             : "check MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (or "
               "MLFLOW_TRACKING_TOKEN) "
               "and the user's permissions on the experiment";
}

MlflowClient::MlflowClient(MlflowConfig config)
    : config_(std::move(config)), random_(std::random_device{}()) {}

MlflowClient::~MlflowClient() = default;

HttpClient* MlflowClient::acquire_http() {
  {
    std::lock_guard lock(http_mutex_);
    if (!idle_http_.empty()) {
      HttpClient* client = idle_http_.back();
      idle_http_.pop_back();
      return client;
    }
  }
  auto client = std::make_unique<HttpClient>(config_.http);
  client->set_authorization(config_.authorization());
  std::lock_guard lock(http_mutex_);
  http_clients_.push_back(std::move(client));
  return http_clients_.back().get();
}

void MlflowClient::release_http(HttpClient* client) {
  std::lock_guard lock(http_mutex_);
  idle_http_.push_back(client);
}

namespace {
// One request's connection, given back to the pool at the end of the scope.
class HttpLease {
 public:
  HttpLease(HttpClient* client, std::function<void(HttpClient*)> release)
      : client_(client), release_(std::move(release)) {}
  ~HttpLease() { release_(client_); }
  HttpLease(const HttpLease&) = delete;
  HttpLease& operator=(const HttpLease&) = delete;
  HttpClient& operator*() const { return *client_; }

 private:
  HttpClient* client_;
  std::function<void(HttpClient*)> release_;
};
}  // namespace

nlohmann::json MlflowClient::send_with_retries(std::string_view method, const std::string& url,
                                               std::string_view body, std::string_view content_type,
                                               std::string_view what) {
  detail::RetriedRequest request;
  request.attempt = [&] {
    HttpLease http(acquire_http(), [this](HttpClient* c) { release_http(c); });
    ++requests_sent_;
    return (*http).send(method, url, body, content_type);
  };
  request.transient_status = RetryPolicy::is_transient_status;
  request.wait_before_retry = [this](int retry, std::optional<std::chrono::milliseconds> after) {
    std::lock_guard lock(http_mutex_);
    return config_.retry.backoff(retry, after, random_);
  };
  request.max_attempts = config_.retry.max_attempts;

  detail::RetryOutcome outcome;
  try {
    outcome = detail::send_with_retries(request);
  } catch (const HttpTransportError& e) {
    throw TrackerError(fmt::format("cannot reach the MLflow server for {}: {}", what, e.what()));
  }
  if (!outcome.response) {
    throw TrackerUnavailable(fmt::format(
        "MLflow server {} did not accept {} after {} attempt{}: {}", config_.tracking_uri, what,
        outcome.attempts, outcome.attempts == 1 ? "" : "s", outcome.last_problem));
  }
  const HttpResponse& response = *outcome.response;
  if (response.status >= 200 && response.status < 300) {
    if (response.body.empty()) return nlohmann::json::object();
    auto parsed = nlohmann::json::parse(response.body, nullptr, false);
    return parsed.is_discarded() ? nlohmann::json::object() : parsed;
  }
  auto [error_code, message] = parse_error(response.body);
  if (response.status == 401 || response.status == 403) {
    throw TrackerError(fmt::format(
        "MLflow server {} rejected the credentials for {} (HTTP {}{}): {}", config_.tracking_uri,
        what, response.status, message.empty() ? "" : ", " + message, credentials_hint()));
  }
  throw MlflowRequestError(
      fmt::format("MLflow server {} rejected {} (HTTP {}{}): {}", config_.tracking_uri, what,
                  response.status, error_code.empty() ? "" : " " + error_code,
                  message.empty() ? "(no message)" : message),
      response.status, error_code, message);
}

nlohmann::json MlflowClient::call(std::string_view method, std::string_view endpoint,
                                  const nlohmann::json& body) {
  if (method == "GET") {
    const std::string url =
        fmt::format("{}{}{}{}", config_.tracking_uri, kApi, endpoint, query_string(body));
    return send_with_retries(method, url, {}, "application/json", endpoint);
  }
  return call_raw(method, endpoint,
                  body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

nlohmann::json MlflowClient::call_raw(std::string_view method, std::string_view endpoint,
                                      std::string_view body) {
  const std::string url = fmt::format("{}{}{}", config_.tracking_uri, kApi, endpoint);
  return send_with_retries(method, url, body, "application/json", endpoint);
}

std::string MlflowClient::resolve_experiment_id() {
  if (!config_.experiment_id.empty()) {
    auto response = call("GET", "experiments/get", {{"experiment_id", config_.experiment_id}});
    return response.at("experiment").at("experiment_id").get<std::string>();
  }
  const std::string& name = config_.experiment_name;
  auto get_by_name = [&]() -> std::optional<nlohmann::json> {
    try {
      return call("GET", "experiments/get-by-name", {{"experiment_name", name}}).at("experiment");
    } catch (const MlflowRequestError& e) {
      if (e.error_code() == "RESOURCE_DOES_NOT_EXIST") return std::nullopt;
      throw;
    }
  };
  auto experiment = get_by_name();
  if (!experiment) {
    try {
      return call("POST", "experiments/create", {{"name", name}})
          .at("experiment_id")
          .get<std::string>();
    } catch (const MlflowRequestError& e) {
      if (e.error_code() != "RESOURCE_ALREADY_EXISTS") throw;
      experiment = get_by_name();  // created concurrently by another process
      if (!experiment) throw;
    }
  }
  if (experiment->value("lifecycle_stage", "active") == "deleted") {
    throw TrackerError(fmt::format(
        "MLflow experiment '{}' (id {}) is deleted; restore it (mlflow experiments restore "
        "--experiment-id {}) or log to another experiment name",
        name, experiment->value("experiment_id", ""), experiment->value("experiment_id", "")));
  }
  return experiment->at("experiment_id").get<std::string>();
}

void MlflowClient::start_run() {
  nlohmann::json run;
  if (!config_.run_id.empty()) {
    try {
      run = call("GET", "runs/get", {{"run_id", config_.run_id}}).at("run");
    } catch (const MlflowRequestError& e) {
      if (e.error_code() != "RESOURCE_DOES_NOT_EXIST") throw;
      throw TrackerError(
          fmt::format("MLFLOW_RUN_ID / run_id '{}' names no run on the MLflow "
                      "server {}; unset it to start a new run",
                      config_.run_id, config_.tracking_uri));
    }
    const auto& info = run.at("info");
    if (info.value("lifecycle_stage", "active") == "deleted") {
      throw TrackerError(fmt::format(
          "MLflow run '{}' is deleted; restore it or unset MLFLOW_RUN_ID", config_.run_id));
    }
    if (info.value("status", "RUNNING") != "RUNNING") {
      call("POST", "runs/update", {{"run_id", config_.run_id}, {"status", "RUNNING"}});
    }
  } else {
    const std::string experiment_id = resolve_experiment_id();
    nlohmann::json tags = nlohmann::json::array();
    auto add_tag = [&](std::string key, std::string value) {
      bool cut = false;
      tags.push_back({{"key", std::move(key)},
                      {"value", truncate_utf8(value, kMlflowMaxTagValueLength, &cut)}});
    };
    add_tag("mlflow.user", current_user());
    add_tag("mlflow.source.name", source_name());
    add_tag("mlflow.source.type", "LOCAL");
    if (!config_.description.empty()) add_tag("mlflow.note.content", config_.description);
    for (const auto& [key, value] : config_.tags.items()) {
      check_key("tag", key);
      add_tag(key, value.get<std::string>());
    }
    nlohmann::json request = {{"experiment_id", experiment_id},
                              {"user_id", current_user()},
                              {"start_time", now_ms()},
                              {"tags", tags}};
    if (!config_.run_name.empty()) request["run_name"] = config_.run_name;
    run = call("POST", "runs/create", request).at("run");
  }
  const auto& info = run.at("info");
  {
    std::lock_guard lock(run_mutex_);
    run_id_ = info.at("run_id").get<std::string>();
    experiment_id_ = info.at("experiment_id").get<std::string>();
    artifact_uri_ = info.value("artifact_uri", "");
  }
  if (!config_.run_id.empty() && !config_.tags.empty()) {  // resumed run: add the requested tags
    std::vector<MlflowTag> tags;
    for (const auto& [key, value] : config_.tags.items()) {
      check_key("tag", key);
      bool cut = false;
      tags.push_back(
          {key, truncate_utf8(value.get<std::string>(), kMlflowMaxTagValueLength, &cut)});
    }
    log_batch({}, {}, tags);
  }
}

bool MlflowClient::has_run() const {
  std::lock_guard lock(run_mutex_);
  return !experiment_id_.empty();
}

std::string MlflowClient::run_id() const {
  std::lock_guard lock(run_mutex_);
  return run_id_;
}

std::string MlflowClient::experiment_id() const {
  std::lock_guard lock(run_mutex_);
  return experiment_id_;
}

std::string MlflowClient::artifact_uri() const {
  std::lock_guard lock(run_mutex_);
  return artifact_uri_;
}

bool MlflowClient::artifacts_proxied() const {
  return artifact_uri().starts_with("mlflow-artifacts:");
}

void MlflowClient::require_run() const {
  if (run_id().empty()) {
    throw UsageError(
        "the MLflow run is not started yet; call start_run() first (the tracker does "
        "this in init_trackers)");
  }
}

void MlflowClient::log_metric(std::string_view key, double value, std::optional<int64_t> step,
                              std::optional<int64_t> timestamp_ms) {
  require_run();
  check_key("metric", key);
  const MlflowMetric metric{std::string(key), value, timestamp_ms.value_or(now_ms()),
                            step.value_or(0)};
  log_batch(std::span(&metric, 1));
}

void MlflowClient::log_param(std::string_view key, std::string_view value) {
  require_run();
  check_key("param", key);
  bool cut = false;
  const MlflowParam param{std::string(key), truncate_utf8(value, kMlflowMaxParamValueLength, &cut)};
  log_batch({}, std::span(&param, 1));
}

void MlflowClient::set_tag(std::string_view key, std::string_view value) {
  require_run();
  check_key("tag", key);
  bool cut = false;
  const MlflowTag tag{std::string(key), truncate_utf8(value, kMlflowMaxTagValueLength, &cut)};
  log_batch({}, {}, std::span(&tag, 1));
}

void MlflowClient::log_batch(std::span<const MlflowMetric> metrics,
                             std::span<const MlflowParam> params, std::span<const MlflowTag> tags) {
  require_run();
  const auto chunks = split_mlflow_log_batch(run_id(), metrics, params, tags);
  std::size_t sent_metrics = 0;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    try {
      call_raw("POST", "runs/log-batch", chunks[i].body);
    } catch (TrackerUnavailable& e) {
      if (i == 0) throw;
      throw TrackerUnavailable(
          fmt::format("{} ({} of {} log-batch requests, {} metrics, were "
                      "stored before this one)",
                      e.what(), i, chunks.size(), sent_metrics));
    }
    sent_metrics += chunks[i].metrics;
  }
}

void MlflowClient::log_artifact(const std::filesystem::path& local_file,
                                std::string_view artifact_dir) {
  std::ifstream in(local_file, std::ios::binary);
  if (!in) {
    throw InvalidValue(
        fmt::format("cannot read artifact file '{}': check that it exists and is "
                    "readable",
                    local_file.string()));
  }
  std::ostringstream content;
  content << in.rdbuf();
  std::string path = std::string(artifact_dir);
  if (!path.empty() && !path.ends_with('/')) path += '/';
  path += local_file.filename().string();
  log_artifact_bytes(path, content.str());
}

void MlflowClient::log_artifact_bytes(std::string_view artifact_file, std::string_view bytes,
                                      std::string_view content_type) {
  require_run();
  const std::string escaped = checked_artifact_path(artifact_file);
  const std::string uri = artifact_uri();
  if (!uri.starts_with("mlflow-artifacts:")) {
    throw TrackerError(fmt::format(
        "the MLflow server stores this run's artifacts at '{}', which accel cannot write to; start "
        "the server with artifact serving (the default; not --no-serve-artifacts) so artifacts go "
        "through its mlflow-artifacts proxy",
        uri));
  }
  // mlflow-artifacts:/<path> or mlflow-artifacts://host:port/<path>
  std::string_view root =
      std::string_view(uri).substr(std::string_view("mlflow-artifacts:").size());
  if (root.starts_with("//")) {
    const auto slash = root.find('/', 2);
    root = slash == std::string_view::npos ? std::string_view() : root.substr(slash);
  }
  while (root.starts_with('/')) root.remove_prefix(1);
  std::string url = fmt::format("{}{}", config_.tracking_uri, kArtifactsApi);
  std::size_t begin = 0;
  bool first = true;
  while (begin < root.size()) {
    const std::size_t end = std::min(root.find('/', begin), root.size());
    if (end > begin) {
      if (!first) url += '/';
      url += HttpClient::escape(root.substr(begin, end - begin));
      first = false;
    }
    begin = end + 1;
  }
  url += '/';
  url += escaped;
  send_with_retries("PUT", url, bytes, content_type, fmt::format("artifact '{}'", artifact_file));
}

void MlflowClient::end_run(RunStatus status) {
  require_run();
  call("POST", "runs/update",
       {{"run_id", run_id()}, {"status", status_name(status)}, {"end_time", now_ms()}});
}

bool MlflowClient::reachable() {
  HttpLease http(acquire_http(), [this](HttpClient* c) { release_http(c); });
  try {
    ++requests_sent_;
    return (*http).send("GET", config_.tracking_uri + "/health").status == 200;
  } catch (const HttpTransportError&) {
    return false;
  }
}

void MlflowClient::check_credentials() {
  // Without credentials there is nothing to check early; a server that needs some refuses start_run
  // with the same clear TrackerError.
  if (config_.authorization().empty()) return;
  const std::string url =
      fmt::format("{}{}experiments/get-by-name{}", config_.tracking_uri, kApi,
                  query_string({{"experiment_name", config_.experiment_name.empty()
                                                        ? std::string("Default")
                                                        : config_.experiment_name}}));
  HttpOptions quick = config_.http;
  quick.connect_timeout = std::min(quick.connect_timeout, std::chrono::milliseconds(3000));
  quick.request_timeout = std::min(quick.request_timeout, std::chrono::milliseconds(5000));
  HttpClient http(quick);
  http.set_authorization(config_.authorization());
  HttpResponse response;
  try {
    response = http.send("GET", url);
  } catch (const HttpTransportError&) {
    return;  // unreachable: the tracker journals and retries; not a credentials problem
  }
  if (response.status == 401 || response.status == 403) {
    auto [error_code, message] = parse_error(response.body);
    throw TrackerError(fmt::format("MLflow server {} rejected the credentials (HTTP {}{}): {}",
                                   config_.tracking_uri, response.status,
                                   message.empty() ? "" : ", " + message, credentials_hint()));
  }
}

nlohmann::json MlflowClient::get_run() {
  require_run();
  return call("GET", "runs/get", {{"run_id", run_id()}}).at("run");
}

uint64_t MlflowClient::requests_sent() const {
  return requests_sent_.load();
}

}  // namespace accel
