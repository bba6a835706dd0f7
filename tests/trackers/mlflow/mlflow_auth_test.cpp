// MLflow server with basic auth (`mlflow server --app-name basic-auth`): our credentials are
// accepted, wrong or missing ones fail init_trackers with a clear message that never contains the
// password.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>

#include "accel/tracking/hub.hpp"
#include "accel/tracking/trackers/mlflow/mlflow_tracker.hpp"
#include "accel/tracking/warnings.hpp"
#include "mlflow_test_server.hpp"
#include "net/http_client.hpp"

using namespace accel;
using nlohmann::json;

namespace {

std::string random_password(const char* prefix) {
  std::random_device random;
  return std::string(prefix) + "-" + std::to_string(random()) + "-Xy9!";
}

const std::string& admin_password() {
  static const std::string password = random_password("admin");
  return password;
}
const std::string& alice_password() {
  static const std::string password = random_password("alice");
  return password;
}

// The server (one for this file) and a user "alice" created through the admin account.
test::MlflowServer& server() {
  static test::TempDir dir;
  static test::MlflowServer instance([] {
    std::ofstream(dir.path() / "basic_auth.ini")
        << "[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///"
        << (dir.path() / "auth.db").string()
        << "\nadmin_username = admin\nauthorization_function = "
           "mlflow.server.auth:authenticate_request_basic_auth\n";
    test::MlflowServer::Options options;
    options.store_dir = dir.path() / "store";
    options.basic_auth = true;
    options.environment = {{"MLFLOW_AUTH_CONFIG_PATH", (dir.path() / "basic_auth.ini").string()},
                           {"MLFLOW_AUTH_ADMIN_PASSWORD", admin_password()},
                           {"MLFLOW_FLASK_SERVER_SECRET_KEY", random_password("secret")}};
    return options;
  }());
  static bool ready = [] {
    instance.start();
    MlflowConfig admin;
    admin.username = "admin";
    admin.password = admin_password();
    HttpClient http;
    http.set_authorization(admin.authorization());
    const auto response =
        http.send("POST", instance.uri() + "/api/2.0/mlflow/users/create",
                  json{{"username", "alice"}, {"password", alice_password()}}.dump());
    if (response.status != 200)
      throw std::runtime_error("cannot create user alice: " + response.body);
    return true;
  }();
  (void)ready;
  return instance;
}

class ScopedCredentials {
 public:
  ScopedCredentials(const char* user, const std::string* password) {
    ::setenv("MLFLOW_TRACKING_URI", server().uri().c_str(), 1);
    if (user)
      ::setenv("MLFLOW_TRACKING_USERNAME", user, 1);
    else
      ::unsetenv("MLFLOW_TRACKING_USERNAME");
    if (password)
      ::setenv("MLFLOW_TRACKING_PASSWORD", password->c_str(), 1);
    else
      ::unsetenv("MLFLOW_TRACKING_PASSWORD");
    ::unsetenv("MLFLOW_TRACKING_TOKEN");
  }
  ~ScopedCredentials() {
    ::unsetenv("MLFLOW_TRACKING_USERNAME");
    ::unsetenv("MLFLOW_TRACKING_PASSWORD");
  }
};

TrackerHubOptions hub_options(const std::filesystem::path& dir) {
  TrackerHubOptions options;
  options.project_dir = dir;
  options.handle_signals = false;
  return options;
}

}  // namespace

TEST_CASE("a basic-auth server accepts our credentials end to end") {
  ScopedCredentials credentials("alice", &alice_password());
  std::mutex mutex;
  std::string warnings;
  auto previous = set_warning_handler([&](std::string_view m) {
    std::lock_guard lock(mutex);
    warnings += std::string(m) + "\n";
  });
  test::TempDir dir;
  std::string run_id;
  {
    TrackerHub hub(hub_options(dir.path()));
    hub.init_trackers("auth-experiment", {{"lr", 0.5}}, {"mlflow"});
    for (int64_t step = 0; step < 1500; ++step) hub.log({{"loss", 1.0 / double(step + 1)}}, step);
    hub.log({{"note", "authenticated"}}, 1);
    const auto report = hub.end_training();
    CHECK(report.complete());
    run_id = hub.get_tracker<MlflowClient>("mlflow")->run_id();
  }
  set_warning_handler(previous);
  INFO(warnings);
  CHECK(warnings.find(alice_password()) == std::string::npos);

  const json run = test::read_run(server().uri(), run_id);  // read as alice (environment)
  CHECK(run["info"]["status"] == "FINISHED");
  CHECK(run["params"]["lr"] == "0.5");
  CHECK(run["metrics"]["loss"].size() == 1500);
  CHECK(run["artifacts"]["text/note/step_1.txt"]["text"] == "authenticated");
}

TEST_CASE("wrong credentials fail init_trackers clearly, without the password") {
  const std::string wrong = "not-" + alice_password();
  ScopedCredentials credentials("alice", &wrong);
  test::TempDir dir;
  TrackerHub hub(hub_options(dir.path()));
  try {
    hub.init_trackers("auth-experiment", {}, {"mlflow"});
    FAIL("init_trackers must refuse wrong credentials");
  } catch (const TrackerError& e) {
    const std::string message = e.what();
    CHECK(message.find("rejected the credentials") != std::string::npos);
    CHECK(message.find("401") != std::string::npos);
    CHECK(message.find("MLFLOW_TRACKING_PASSWORD") != std::string::npos);
    CHECK(message.find(wrong) == std::string::npos);
    CHECK(message.find(alice_password()) == std::string::npos);
  }
}

TEST_CASE(
    "no credentials for a server that needs them: the tracker is disabled, saying what to set") {
  ScopedCredentials credentials(nullptr, nullptr);
  test::TempDir dir;
  auto previous = set_warning_handler([](std::string_view) {});
  TrackerHub hub(hub_options(dir.path()));
  hub.init_trackers("auth-experiment", {}, {"mlflow"});
  hub.log({{"loss", 1.0}}, 0);
  const auto report = hub.end_training();
  set_warning_handler(previous);
  REQUIRE(report.trackers.size() == 1);
  CHECK_FALSE(report.complete());
  CHECK_THAT(report.trackers[0].error, Catch::Contains("requires authentication") &&
                                           Catch::Contains("MLFLOW_TRACKING_USERNAME") &&
                                           Catch::Contains("401"));
}

TEST_CASE("a tracker built directly reports rejected credentials from start()") {
  const std::string wrong = "bad-" + alice_password();
  ScopedCredentials credentials("alice", &wrong);
  TrackerInit init;
  init.run_name = "auth-experiment";
  MlflowTracker tracker(init);
  try {
    tracker.start();
    FAIL("start must refuse wrong credentials");
  } catch (const TrackerError& e) {
    CHECK(std::string(e.what()).find(wrong) == std::string::npos);
    CHECK(std::string(e.what()).find("401") != std::string::npos);
  }
}
