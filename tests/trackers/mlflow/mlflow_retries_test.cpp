// MlflowClient's retry behaviour against a scripted HTTP server (flaky_server.py): 503/429 are
// retried with backoff and Retry-After honoured, 4xx are not retried, and exhausted retries become
// accel::TrackerUnavailable.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <string>

#include "accel/tracking/trackers/mlflow/mlflow_client.hpp"
#include "net/http_client.hpp"
#include "python.hpp"

using namespace accel;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// flaky_server.py in a child process; the port is its first line of output.
class FlakyServer {
 public:
  FlakyServer(const std::string& plan, int retry_after_s) {
    const std::string python = test::python_interpreter().string();
    const std::string script = test::test_script("trackers/mlflow/flaky_server.py").string();
    const std::string after = std::to_string(retry_after_s);
    int out[2];
    REQUIRE(::pipe(out) == 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      ::close(out[0]);
      ::execl(python.c_str(), python.c_str(), script.c_str(), plan.c_str(), after.c_str(), "60",
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(out[1]);
    FILE* in = ::fdopen(out[0], "r");
    char line[64] = {};
    REQUIRE(std::fgets(line, sizeof line, in) != nullptr);
    std::fclose(in);
    port_ = std::stoi(line);
  }
  ~FlakyServer() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  std::string uri() const { return "http://127.0.0.1:" + std::to_string(port_); }
  json requests() {
    HttpClient http;
    return json::parse(http.send("GET", uri() + "/__log").body);
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

MlflowConfig config_for(const std::string& uri, int attempts) {
  MlflowConfig config;
  config.tracking_uri = uri;
  config.experiment_name = "x";
  config.retry.max_attempts = attempts;
  config.retry.initial_backoff = 50ms;
  config.retry.jitter = 0;
  return config;
}

}  // namespace

TEST_CASE("503 then 429 with Retry-After: retried, waiting as told, then success") {
  FlakyServer server("503,429", 1);
  MlflowClient client(config_for(server.uri(), 4));
  const auto begin = std::chrono::steady_clock::now();
  json answer = client.call("GET", "experiments/get-by-name", {{"experiment_name", "x"}});
  const auto took = std::chrono::steady_clock::now() - begin;
  CHECK(answer["experiment"]["experiment_id"] == "7");
  const json log = server.requests();
  REQUIRE(log.size() == 3);
  // Retry-After: 1 s was honoured before each retry (the computed backoff was 50 and 100 ms).
  CHECK(log[1][2].get<double>() - log[0][2].get<double>() >= 0.95);
  CHECK(log[2][2].get<double>() - log[1][2].get<double>() >= 0.95);
  CHECK(took >= 1900ms);
  CHECK(client.requests_sent() == 3);
}

TEST_CASE("a transient failure that outlasts the retries is TrackerUnavailable") {
  FlakyServer server("503,503,503,503,503,503", 0);
  MlflowClient client(config_for(server.uri(), 3));
  CHECK_THROWS_AS(client.call("POST", "runs/log-batch", {{"run_id", "r"}}), TrackerUnavailable);
  CHECK(server.requests().size() == 3);
  CHECK_THROWS_WITH(client.call("POST", "runs/log-batch", {{"run_id", "r"}}),
                    Catch::Contains("after 3 attempts") && Catch::Contains("503"));
}

TEST_CASE("a 400 is not retried and carries the server's message") {
  FlakyServer server("400", 0);
  MlflowClient client(config_for(server.uri(), 4));
  try {
    client.call("POST", "runs/log-batch", {{"run_id", "r"}});
    FAIL("a 400 must throw");
  } catch (const MlflowRequestError& e) {
    CHECK(e.status() == 400);
    CHECK(e.error_code() == "INVALID_PARAMETER_VALUE");
    CHECK(e.server_message() == "bad value for x");
  }
  CHECK(server.requests().size() == 1);
}

TEST_CASE("nothing listening: connection refused is retried, then TrackerUnavailable") {
  int port;
  {
    FlakyServer gone("", 0);
    port = std::stoi(gone.uri().substr(gone.uri().rfind(':') + 1));
  }
  MlflowClient client(config_for("http://127.0.0.1:" + std::to_string(port), 2));
  CHECK_THROWS_AS(client.call("GET", "experiments/get-by-name", {{"experiment_name", "x"}}),
                  TrackerUnavailable);
  CHECK(client.requests_sent() == 2);
  CHECK_FALSE(client.reachable());
}
