#include "trackers/comet/comet_api.hpp"

#include <fmt/format.h>
#include <zlib.h>

#include "accel/tracking/errors.hpp"
#include "net/http_client.hpp"
#include "net/request_retry.hpp"

namespace accel::comet {
namespace {

constexpr const char* kJson = "application/json;charset=utf-8";
constexpr const char* kFixTheKey =
    "set COMET_API_KEY (or init_kwargs {{\"comet_ml\": {{\"api_key\": ...}}}}, or api_key under "
    "[comet] in ~/.comet.config) to a valid API key of that server, or COMET_START_ONLINE=false to "
    "write an offline archive instead";
constexpr int kApiKeyNotRegistered = 90212;  // comet_ml.exceptions.API_KEY_NOT_REGISTERED

std::string root_of(const std::string& url) {
  const auto host = url.find("://") + 3;
  const auto path = url.find('/', host);
  return (path == std::string::npos ? url : url.substr(0, path)) + "/";
}

std::string dump(const nlohmann::json& body) {
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// A query value as the uploader's requests sends it: True/False, decimal numbers, text as is.
std::string query_text(const nlohmann::json& value) {
  if (value.is_boolean()) return value.get<bool>() ? "True" : "False";
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

nlohmann::json parse_object(const std::string& text) {
  auto parsed = nlohmann::json::parse(text, nullptr, false);
  return parsed.is_object() ? parsed : nlohmann::json::object();
}

}  // namespace

std::string gzip_compress(const std::string& bytes) {
  z_stream stream{};
  // windowBits 15 + 16: a gzip header and trailer instead of zlib's.
  if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    throw TrackerError("comet_ml: zlib could not start a gzip stream (out of memory?)");
  }
  std::string out(deflateBound(&stream, static_cast<uLong>(bytes.size())), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  stream.avail_in = static_cast<uInt>(bytes.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  const int status = deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  if (status != Z_STREAM_END) throw TrackerError("comet_ml: zlib could not gzip a batch body");
  return out;
}

CometApi::CometApi(std::string clientlib_url, std::string api_key, std::string experiment_key,
                   HttpOptions http, RetryPolicy retry)
    : clientlib_url_(std::move(clientlib_url)),
      root_url_(root_of(clientlib_url_)),
      api_key_(std::move(api_key)),
      experiment_key_(std::move(experiment_key)),
      retry_(retry),
      http_(std::make_unique<HttpClient>(http)),
      random_(std::random_device{}()) {
  http_->set_authorization(api_key_);
}

CometApi::~CometApi() = default;

std::string CometApi::redacted(std::string text) const {
  if (api_key_.empty()) return text;
  for (auto at = text.find(api_key_); at != std::string::npos; at = text.find(api_key_, at)) {
    text.replace(at, api_key_.size(), "<redacted>");
  }
  return text;
}

std::string CometApi::send(const char* method, const std::string& url, const std::string& body,
                           const std::string& content_type, std::vector<std::string> headers,
                           const std::string& what) {
  headers.push_back("X-COMET-DEBUG-EXPERIMENT-KEY: " + experiment_key_);
  detail::RetriedRequest request;
  request.attempt = [&] {
    ++requests_sent_;
    return http_->send(method, url, body, content_type, headers);
  };
  request.transient_status = [](long status) { return RetryPolicy::is_transient_status(status); };
  request.wait_before_retry = [this](int retry, std::optional<std::chrono::milliseconds> after) {
    return retry_.backoff(retry, after, random_);
  };
  request.max_attempts = retry_.max_attempts;

  detail::RetryOutcome outcome;
  try {
    outcome = detail::send_with_retries(request);
  } catch (const HttpTransportError& e) {
    throw TrackerError(redacted(fmt::format("comet_ml: cannot reach the Comet server {} for {}: {}",
                                            clientlib_url_, what, e.what())));
  }
  if (!outcome.response) {
    throw TrackerUnavailable(redacted(fmt::format(
        "comet_ml: the Comet server {} did not accept {} after {} attempt{}: {}", clientlib_url_,
        what, outcome.attempts, outcome.attempts == 1 ? "" : "s", outcome.last_problem)));
  }
  const HttpResponse& response = *outcome.response;
  const bool key_refused =
      response.status == 401 || response.status == 403 ||
      (response.status == 400 &&
       parse_object(response.body).value("sdk_error_code", 0) == kApiKeyNotRegistered);
  if (key_refused) {
    throw TrackerError(fmt::format(
        fmt::runtime("comet_ml: the Comet server {} refused the API key for {} (HTTP {}): " +
                     std::string(kFixTheKey)),
        clientlib_url_, what, response.status));
  }
  if (response.status < 200 || response.status >= 300) {
    throw TrackerError(
        redacted(fmt::format("comet_ml: the Comet server {} rejected {} (HTTP {}): {}",
                             clientlib_url_, what, response.status, response.body.substr(0, 300))));
  }
  return response.body;
}

nlohmann::json CometApi::clientlib_json(const char* endpoint, nlohmann::json body) {
  body["apiKey"] = api_key_;
  return parse_object(send("POST", clientlib_url_ + endpoint, dump(body), kJson, {}, endpoint));
}

std::optional<std::string> CometApi::server_version() {
  try {
    const auto answer = parse_object(send("GET", clientlib_url_ + "isAlive/ver", "", kJson, {},
                                          "the version check isAlive/ver"));
    const auto version = answer.value("version", nlohmann::json());
    return version.is_string() ? std::optional(version.get<std::string>()) : std::nullopt;
  } catch (const TrackerError&) {
    return std::nullopt;  // answered, but not as the SDK expects: add/run says what is wrong
  }
}

CometRun CometApi::add_run(const nlohmann::json& project_name, const nlohmann::json& workspace,
                           int64_t local_timestamp) {
  const auto answer = clientlib_json("logger/add/run", {{"experimentKey", experiment_key_},
                                                        {"offline", false},
                                                        {"projectName", project_name},
                                                        {"teamName", workspace},
                                                        {"libVersion", kProtocolVersion},
                                                        {"local_timestamp", local_timestamp},
                                                        {"getOrCreateEnabled", false}});
  return run_of(answer, "logger/add/run");
}

CometRun CometApi::get_run(int64_t local_timestamp) {
  const auto answer = clientlib_json("logger/get/run", {{"previousExperiment", experiment_key_},
                                                        {"libVersion", kProtocolVersion},
                                                        {"local_timestamp", local_timestamp}});
  return run_of(answer, "logger/get/run");
}

CometRun CometApi::run_of(const nlohmann::json& answer, const char* endpoint) const {
  const auto run_id = answer.value("runId", nlohmann::json());
  if (!run_id.is_string()) {
    throw TrackerError(fmt::format("comet_ml: the Comet server {} answered {} without a runId",
                                   clientlib_url_, endpoint));
  }
  const auto focus = answer.value("focusUrl", nlohmann::json());
  return {run_id.get<std::string>(), answer.value("project_id", nlohmann::json()),
          focus.is_string() ? focus.get<std::string>() : std::string()};
}

std::chrono::milliseconds CometApi::status_update(const CometRun& run, bool is_alive,
                                                  int64_t local_timestamp) {
  const auto answer = clientlib_json("status-report/update", {{"runId", run.run_id},
                                                              {"experimentKey", experiment_key_},
                                                              {"projectId", run.project_id},
                                                              {"is_alive", is_alive},
                                                              {"local_timestamp", local_timestamp},
                                                              {"offline", false}});
  const auto beat = answer.value("is_alive_beat_duration_millis", nlohmann::json());
  if (!beat.is_number() || beat.get<double>() <= 0) {
    throw TrackerError(
        fmt::format("comet_ml: the Comet server {} answered status-report/update without "
                    "is_alive_beat_duration_millis",
                    clientlib_url_));
  }
  return std::chrono::milliseconds(static_cast<int64_t>(beat.get<double>()));
}

void CometApi::add_tags(const std::vector<std::string>& tags) {
  clientlib_json("tags/add-tags-to-experiment",
                 {{"experimentKey", experiment_key_}, {"addedTags", tags}});
}

void CometApi::send_batch(const char* kind, const nlohmann::json& values) {
  const std::string endpoint = fmt::format("batch/logger/experiment/{}", kind);
  const nlohmann::json body = {{"experimentKey", experiment_key_}, {"values", values}};
  send("POST", clientlib_url_ + endpoint, gzip_compress(dump(body)), kJson,
       {"Content-Encoding: gzip"}, fmt::format("a batch of {} {} values", values.size(), kind));
}

void CometApi::rest_write(const char* what, nlohmann::json body) {
  body["experimentKey"] = experiment_key_;
  send("POST", root_url_ + "api/rest/v2/write/experiment/" + what, dump(body), kJson, {}, what);
}

std::string CometApi::upload_endpoint(const std::string& upload_type) {
  if (upload_type == "visualization" || upload_type == "shap" || upload_type == "prophet") {
    return "visualizations/upload";
  }
  return "asset/upload";
}

void CometApi::upload(const std::string& endpoint, const nlohmann::json& additional_params,
                      const std::string& content, const CometRun& run) {
  nlohmann::json params =
      additional_params.is_object() ? additional_params : nlohmann::json::object();
  params["runId"] = run.run_id;
  std::string query;
  const auto add = [&](const std::string& key, const nlohmann::json& value) {
    if (value.is_null()) return;
    query += (query.empty() ? "?" : "&") + HttpClient::escape(key) + "=" +
             HttpClient::escape(query_text(value));
  };
  for (const auto& [key, value] : params.items()) {
    if (key != "runId") add(key, value);
  }
  add("experimentId", experiment_key_);
  add("projectId", run.project_id);
  add("runId", run.run_id);
  std::uniform_int_distribution<int> digit(0, 15);
  std::string boundary = "accel-";
  for (int i = 0; i < 24; ++i) boundary += "0123456789abcdef"[digit(random_)];
  std::string body = "--" + boundary +
                     "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"file\"\r\n\r\n";
  body += content;
  body += "\r\n--" + boundary + "--\r\n";
  send("POST", clientlib_url_ + endpoint + query, body, "multipart/form-data; boundary=" + boundary,
       {},
       fmt::format("the upload {}", params.value("fileName", params.value("figName", endpoint))));
}

}  // namespace accel::comet
