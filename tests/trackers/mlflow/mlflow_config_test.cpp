// MlflowConfig: resolution from the environment and init_kwargs, rejection of unusable URIs, and
// credentials kept out of every message.
#include "accel/tracking/trackers/mlflow/mlflow_config.hpp"

#include <catch2/catch.hpp>
#include <cstdlib>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/trackers/mlflow/mlflow_tracker.hpp"

using namespace accel;

namespace {

// Sets environment variables for one test and restores them afterwards.
class ScopedEnv {
 public:
  ScopedEnv(std::initializer_list<std::pair<const char*, const char*>> values) {
    for (const char* name :
         {"MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID",
          "MLFLOW_TAGS", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
          "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_INSECURE_TLS",
          "MLFLOW_TRACKING_SERVER_CERT_PATH", "MLFLOW_HTTP_REQUEST_TIMEOUT"}) {
      const char* old = std::getenv(name);
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      ::unsetenv(name);
    }
    for (auto [name, value] : values) ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    for (auto& [name, value] : saved_) {
      if (value)
        ::setenv(name.c_str(), value->c_str(), 1);
      else
        ::unsetenv(name.c_str());
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TrackerInit init(std::string project, nlohmann::json kwargs = nlohmann::json::object()) {
  TrackerInit out;
  out.run_name = std::move(project);
  out.init_kwargs = std::move(kwargs);
  return out;
}

}  // namespace

TEST_CASE("environment like the Python client, init_kwargs override") {
  ScopedEnv env({{"MLFLOW_TRACKING_URI", "http://127.0.0.1:5000/"},
                 {"MLFLOW_EXPERIMENT_NAME", "from-env"},
                 {"MLFLOW_TAGS", R"({"team": "vision", "n": 3})"},
                 {"MLFLOW_TRACKING_TOKEN", "tok-123"}});
  auto config = MlflowConfig::resolve(init("project"));
  CHECK(config.tracking_uri == "http://127.0.0.1:5000");
  CHECK(config.experiment_name == "from-env");
  CHECK(config.tags.at("team") == "vision");
  CHECK(config.tags.at("n") == "3");
  CHECK(config.authorization() == "Bearer tok-123");
  CHECK(config.http.verify_tls);

  auto overridden = MlflowConfig::resolve(init("project", {{"experiment_name", "from-kwargs"},
                                                           {"run_name", "baseline"},
                                                           {"tags", {{"team", "audio"}}},
                                                           {"flush_interval_ms", 50}}));
  CHECK(overridden.experiment_name == "from-kwargs");
  CHECK(overridden.run_name == "baseline");
  CHECK(overridden.tags.at("team") == "audio");
  CHECK(overridden.flush_interval == std::chrono::milliseconds(50));
}

TEST_CASE("the experiment defaults to the project name") {
  ScopedEnv env({{"MLFLOW_TRACKING_URI", "https://mlflow.example.org/prefix"}});
  auto config = MlflowConfig::resolve(init("digits"));
  CHECK(config.experiment_name == "digits");
  CHECK(config.tracking_uri == "https://mlflow.example.org/prefix");
  CHECK(config.authorization().empty());
}

TEST_CASE("basic auth wins over a token, as in mlflow") {
  ScopedEnv env({{"MLFLOW_TRACKING_URI", "http://h:1"},
                 {"MLFLOW_TRACKING_USERNAME", "alice"},
                 {"MLFLOW_TRACKING_PASSWORD", "s3cr3t"},
                 {"MLFLOW_TRACKING_TOKEN", "tok"}});
  CHECK(MlflowConfig::resolve(init("p")).authorization() == "Basic YWxpY2U6czNjcjN0");
}

TEST_CASE("unusable URIs are rejected with what to do") {
  {
    ScopedEnv env({});
    CHECK_THROWS_WITH(MlflowConfig::resolve(init("p")), Catch::Contains("MLFLOW_TRACKING_URI"));
    CHECK(MlflowConfig::unavailable_reason()->find("not set") != std::string::npos);
  }
  for (const char* uri :
       {"file:///tmp/mlruns", "/tmp/mlruns", "mlruns", "sqlite:///x.db", "databricks"}) {
    ScopedEnv env({{"MLFLOW_TRACKING_URI", uri}});
    CHECK_THROWS_AS(MlflowConfig::resolve(init("p")), InvalidValue);
    CHECK_THROWS_WITH(MlflowConfig::resolve(init("p")), Catch::Contains("http"));
    CHECK(MlflowConfig::unavailable_reason().has_value());
    // The tracker refuses at construction, before anything is sent.
    CHECK_THROWS_AS(MlflowTracker(init("p")), InvalidValue);
  }
  {
    ScopedEnv env({{"MLFLOW_TRACKING_URI", "file:///tmp/mlruns"}});
    CHECK_THROWS_WITH(MlflowConfig::resolve(init("p")), Catch::Contains("mlflow server"));
  }
  {
    ScopedEnv env({{"MLFLOW_TRACKING_URI", "http://127.0.0.1:5000"}});
    CHECK_FALSE(MlflowConfig::unavailable_reason().has_value());
  }
}

TEST_CASE("credentials never appear in messages") {
  ScopedEnv env({{"MLFLOW_TRACKING_URI", "http://bob:hunter2-pw@127.0.0.1:5000"}});
  try {
    MlflowConfig::resolve(init("p"));
    FAIL("a URI with credentials must be refused");
  } catch (const InvalidValue& e) {
    const std::string message = e.what();
    CHECK(message.find("hunter2-pw") == std::string::npos);
    CHECK(message.find("MLFLOW_TRACKING_PASSWORD") != std::string::npos);
  }
  CHECK(MlflowConfig::unavailable_reason()->find("hunter2-pw") == std::string::npos);
}

TEST_CASE("bad options are named") {
  ScopedEnv env({{"MLFLOW_TRACKING_URI", "http://h:1"}, {"MLFLOW_TAGS", "{not json"}});
  CHECK_THROWS_WITH(MlflowConfig::resolve(init("p")), Catch::Contains("MLFLOW_TAGS"));
  ::unsetenv("MLFLOW_TAGS");
  CHECK_THROWS_WITH(MlflowConfig::resolve(init("p", {{"passwrd", "x"}})),
                    Catch::Contains("passwrd"));
  CHECK_THROWS_WITH(MlflowConfig::resolve(init("p", {{"max_batch_metrics", 5000}})),
                    Catch::Contains("1000"));
  CHECK_THROWS_WITH(MlflowConfig::resolve(init("p", {{"tags", "x"}})), Catch::Contains("tags"));
  CHECK_THROWS_WITH(MlflowConfig::resolve(init("p", {{"experiment_name", std::string(600, 'e')}})),
                    Catch::Contains("500"));
  CHECK_THROWS_WITH(MlflowConfig::resolve(init("p", {{"tags", {{"bad//tag", "x"}}}})),
                    Catch::Contains("bad//tag") && Catch::Contains("bad/tag"));
  ::setenv("MLFLOW_TRACKING_USERNAME", "alice", 1);
  CHECK_THROWS_WITH(MlflowConfig::resolve(init("p")), Catch::Contains("MLFLOW_TRACKING_PASSWORD"));
}

TEST_CASE("TLS: verification on by default, insecure only when asked") {
  ScopedEnv env({{"MLFLOW_TRACKING_URI", "https://h"}, {"MLFLOW_TRACKING_INSECURE_TLS", "true"}});
  CHECK_FALSE(MlflowConfig::resolve(init("p")).http.verify_tls);
  ::setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", "/etc/ssl/ca.pem", 1);
  CHECK_THROWS_WITH(MlflowConfig::resolve(init("p")), Catch::Contains("mutually exclusive"));
  ::unsetenv("MLFLOW_TRACKING_INSECURE_TLS");
  auto config = MlflowConfig::resolve(init("p"));
  CHECK(config.http.verify_tls);
  CHECK(config.http.ca_bundle_path == "/etc/ssl/ca.pem");
}
