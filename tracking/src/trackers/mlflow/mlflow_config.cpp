#include "accel/tracking/trackers/mlflow/mlflow_config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "accel/tracking/errors.hpp"
#include "common/ascii_case.hpp"
#include "common/environment.hpp"
#include "common/init_kwargs.hpp"
#include "net/basic_authorization.hpp"
#include "trackers/mlflow/mlflow_keys.hpp"

namespace accel {

namespace {

using detail::ascii_lower;
using detail::environment_value;

bool env_true(const char* name) {
  const std::string v = ascii_lower(environment_value(name).value_or(""));
  return v == "true" || v == "1" || v == "yes";
}

std::string string_option(const nlohmann::json& kwargs, const char* name, std::string fallback) {
  if (!kwargs.contains(name)) return fallback;
  const auto& v = kwargs.at(name);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer() && std::string_view(name).ends_with("_id")) return v.dump();
  throw InvalidValue(fmt::format("mlflow option '{}' is {}; it must be a string", name, v.dump()));
}

int64_t positive_integer_option(const nlohmann::json& kwargs, const char* name, int64_t fallback) {
  return detail::integer_option(kwargs, name, 1, fallback, [&](const nlohmann::json& v) {
    return fmt::format("mlflow option '{}' is {}; it must be a positive integer", name, v.dump());
  });
}

nlohmann::json string_tags(const nlohmann::json& tags, std::string_view origin) {
  if (!tags.is_object()) {
    throw InvalidValue(
        fmt::format("{} is {}; it must be a JSON object of tag name → value, e.g. "
                    "{{\"team\": \"vision\"}}",
                    origin, tags.dump()));
  }
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, value] : tags.items()) {
    out[key] = value.is_string() ? value.get<std::string>() : value.dump();
  }
  return out;
}

constexpr const char* kKnownOptions[] = {"tracking_uri",
                                         "experiment_name",
                                         "experiment_id",
                                         "run_id",
                                         "run_name",
                                         "description",
                                         "tags",
                                         "retry",
                                         "timeout_s",
                                         "max_batch_metrics",
                                         "flush_interval_ms",
                                         "max_probe_interval_ms",
                                         "insecure_tls"};

}  // namespace

std::string MlflowConfig::normalize_tracking_uri(std::string_view uri) {
  const std::string scheme_end = "://";
  const auto colon = uri.find(':');
  const std::string scheme =
      colon == std::string_view::npos ? "" : ascii_lower(uri.substr(0, colon));
  if (scheme != "http" && scheme != "https") {
    if (scheme == "databricks" || scheme.starts_with("databricks")) {
      throw InvalidValue(fmt::format(
          "MLflow tracking URI '{}' names Databricks; accel's mlflow tracker speaks to an MLflow "
          "tracking server over http(s). Set MLFLOW_TRACKING_URI to the server's https:// URL",
          uri));
    }
    throw InvalidValue(fmt::format(
        "MLflow tracking URI '{}' is not an http(s) URL. accel's mlflow tracker talks to an MLflow "
        "tracking server; for a local store start one with `mlflow server --backend-store-uri "
        "sqlite:///mlflow.db --host 127.0.0.1 --port 5000` and set "
        "MLFLOW_TRACKING_URI=http://127.0.0.1:5000",
        uri.size() > 200 ? std::string(uri.substr(0, 200)) + "..." : std::string(uri)));
  }
  if (uri.substr(colon, 3) != scheme_end || uri.size() <= colon + 3) {
    throw InvalidValue(
        fmt::format("MLflow tracking URI '{}' has no host; use "
                    "http://host:port, e.g. http://127.0.0.1:5000",
                    uri));
  }
  const auto authority_begin = colon + 3;
  const auto authority_end = uri.find_first_of("/?#", authority_begin);
  const std::string_view authority = uri.substr(authority_begin, authority_end - authority_begin);
  if (authority.find('@') != std::string_view::npos) {
    // Do not echo the URI: it holds a password.
    throw InvalidValue(
        "MLflow tracking URI contains credentials (user:password@host); remove them from the URI "
        "and set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) "
        "instead");
  }
  if (authority.empty()) {
    throw InvalidValue(
        fmt::format("MLflow tracking URI '{}' has no host; use "
                    "http://host:port, e.g. http://127.0.0.1:5000",
                    uri));
  }
  if (uri.find_first_of("?#", authority_begin) != std::string_view::npos) {
    throw InvalidValue(
        fmt::format("MLflow tracking URI '{}' has a query or fragment; use "
                    "http(s)://host[:port][/path-prefix]",
                    uri));
  }
  std::string out = scheme + std::string(uri.substr(colon));
  while (out.ends_with('/')) out.pop_back();
  return out;
}

std::optional<std::string> MlflowConfig::unavailable_reason() {
  auto uri = environment_value("MLFLOW_TRACKING_URI");
  if (!uri) return "MLFLOW_TRACKING_URI is not set (set it to the http(s) URL of an MLflow server)";
  try {
    normalize_tracking_uri(*uri);
  } catch (const InvalidValue& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

namespace {

// init_kwargs["mlflow"] is an object of known options.
void check_options(const nlohmann::json& kwargs) {
  if (!kwargs.is_object()) {
    throw InvalidValue(fmt::format(
        "init_kwargs for mlflow is {}; pass an object such as {{\"run_name\": \"baseline\"}}",
        kwargs.dump()));
  }
  if (auto unknown = detail::first_unknown_option(kwargs, kKnownOptions)) {
    throw InvalidValue(
        fmt::format("unknown mlflow option '{}'; known options: {}. Credentials are read from "
                    "MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN only",
                    *unknown, detail::option_list(kKnownOptions)));
  }
}

std::string resolve_tracking_uri(const nlohmann::json& kwargs) {
  const std::string uri =
      string_option(kwargs, "tracking_uri", environment_value("MLFLOW_TRACKING_URI").value_or(""));
  if (uri.empty()) {
    throw InvalidValue(
        "the mlflow tracker needs a tracking server: set MLFLOW_TRACKING_URI (or init_kwargs "
        "{\"mlflow\": {\"tracking_uri\": ...}}) to its http(s) URL; start one with `mlflow server "
        "--host 127.0.0.1 --port 5000`");
  }
  return MlflowConfig::normalize_tracking_uri(uri);
}

// The experiment (default: the project name) and the run: experiment_name/_id, run_id, run_name,
// description.
void resolve_experiment_and_run(const nlohmann::json& kwargs, const std::string& project,
                                MlflowConfig& config) {
  config.experiment_id = string_option(kwargs, "experiment_id",
                                       environment_value("MLFLOW_EXPERIMENT_ID").value_or(""));
  config.experiment_name = string_option(
      kwargs, "experiment_name", environment_value("MLFLOW_EXPERIMENT_NAME").value_or(project));
  if (config.experiment_id.empty() && config.experiment_name.empty())
    config.experiment_name = "Default";
  if (config.experiment_name.size() > 500) {
    throw InvalidValue(
        fmt::format("MLflow experiment name '{}...' has {} characters; MLflow allows at most 500",
                    config.experiment_name.substr(0, 50), config.experiment_name.size()));
  }
  config.run_id = string_option(kwargs, "run_id", environment_value("MLFLOW_RUN_ID").value_or(""));
  config.run_name = string_option(kwargs, "run_name", "");
  config.description = string_option(kwargs, "description", "");
}

// MLFLOW_TAGS, then the "tags" option over it; every tag name a valid MLflow key.
nlohmann::json resolve_tags(const nlohmann::json& kwargs) {
  nlohmann::json tags = nlohmann::json::object();
  if (auto text = environment_value("MLFLOW_TAGS")) {
    nlohmann::json parsed = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) {
      throw InvalidValue(
          fmt::format("MLFLOW_TAGS is not valid JSON ('{}'); set it to a JSON object such as "
                      "'{{\"team\": \"vision\"}}'",
                      text->substr(0, 200)));
    }
    tags = string_tags(parsed, "MLFLOW_TAGS");
  }
  if (kwargs.contains("tags")) tags.update(string_tags(kwargs.at("tags"), "mlflow option 'tags'"));
  for (const auto& [key, value] : tags.items()) {
    if (!is_valid_mlflow_key(key)) {
      throw InvalidValue(fmt::format(
          "run tag '{}' is not a valid MLflow key; use alphanumerics, '_', '-', '.', ' ', ':' "
          "and '/' (at most 250), e.g. '{}'",
          key, sanitize_mlflow_key(key)));
    }
  }
  return tags;
}

// Credentials come from the environment only (see mlflow_config.hpp).
void resolve_credentials(MlflowConfig& config) {
  config.username = environment_value("MLFLOW_TRACKING_USERNAME").value_or("");
  config.password = environment_value("MLFLOW_TRACKING_PASSWORD").value_or("");
  config.token = environment_value("MLFLOW_TRACKING_TOKEN").value_or("");
  if (config.username.empty() != config.password.empty() && config.token.empty()) {
    throw InvalidValue(fmt::format(
        "{} is set but {} is not; set both for HTTP Basic auth",
        config.username.empty() ? "MLFLOW_TRACKING_PASSWORD" : "MLFLOW_TRACKING_USERNAME",
        config.username.empty() ? "MLFLOW_TRACKING_USERNAME" : "MLFLOW_TRACKING_PASSWORD"));
  }
}

// TLS verification and certificates, timeouts, user agent.
HttpOptions resolve_http(const nlohmann::json& kwargs) {
  HttpOptions http;
  http.verify_tls = !env_true("MLFLOW_TRACKING_INSECURE_TLS");
  if (kwargs.contains("insecure_tls")) {
    if (!kwargs.at("insecure_tls").is_boolean()) {
      throw InvalidValue(fmt::format("mlflow option 'insecure_tls' is {}; use true or false",
                                     kwargs.at("insecure_tls").dump()));
    }
    http.verify_tls = !kwargs.at("insecure_tls").get<bool>();
  }
  http.ca_bundle_path = environment_value("MLFLOW_TRACKING_SERVER_CERT_PATH").value_or("");
  http.client_cert_path = environment_value("MLFLOW_TRACKING_CLIENT_CERT_PATH").value_or("");
  if (!http.verify_tls && !http.ca_bundle_path.empty()) {
    throw InvalidValue(
        "MLFLOW_TRACKING_INSECURE_TLS and MLFLOW_TRACKING_SERVER_CERT_PATH are both set; they are "
        "mutually exclusive (mlflow refuses this too). Unset one");
  }
  int64_t timeout_s = 120;
  if (auto t = environment_value("MLFLOW_HTTP_REQUEST_TIMEOUT")) {
    try {
      timeout_s = std::stoll(*t);
    } catch (const std::exception&) {
      throw InvalidValue(fmt::format("MLFLOW_HTTP_REQUEST_TIMEOUT is '{}'; use whole seconds", *t));
    }
  }
  timeout_s = positive_integer_option(kwargs, "timeout_s", timeout_s);
  http.request_timeout = std::chrono::seconds(timeout_s);
  http.connect_timeout =
      std::min<std::chrono::milliseconds>(std::chrono::seconds(10), http.request_timeout);
  http.user_agent = "accel-mlflow/0.1";
  return http;
}

// Metric batching and the probe interval while the server is down.
void resolve_batching(const nlohmann::json& kwargs, MlflowConfig& config) {
  config.max_batch_metrics =
      static_cast<std::size_t>(positive_integer_option(kwargs, "max_batch_metrics", 1000));
  if (config.max_batch_metrics > 1000) {
    throw InvalidValue(fmt::format(
        "mlflow option 'max_batch_metrics' is {}; MLflow accepts at most 1000 metrics per request",
        config.max_batch_metrics));
  }
  config.flush_interval =
      std::chrono::milliseconds(positive_integer_option(kwargs, "flush_interval_ms", 1000));
  config.max_probe_interval =
      std::chrono::milliseconds(positive_integer_option(kwargs, "max_probe_interval_ms", 5000));
}

}  // namespace

MlflowConfig MlflowConfig::resolve(const TrackerInit& init) {
  const nlohmann::json& kwargs = init.init_kwargs;
  check_options(kwargs);
  MlflowConfig config;
  config.tracking_uri = resolve_tracking_uri(kwargs);
  resolve_experiment_and_run(kwargs, init.run_name, config);
  config.tags = resolve_tags(kwargs);
  resolve_credentials(config);
  config.http = resolve_http(kwargs);
  if (kwargs.contains("retry")) config.retry = RetryPolicy::from_json(kwargs.at("retry"));
  resolve_batching(kwargs, config);
  return config;
}

std::string MlflowConfig::authorization() const {
  if (!username.empty() && !password.empty())
    return detail::basic_authorization(username, password);
  if (!token.empty()) return "Bearer " + token;
  return {};
}

}  // namespace accel
