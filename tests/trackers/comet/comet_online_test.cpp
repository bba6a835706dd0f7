// The comet_ml tracker's online mode against recording_comet_server.py (127.0.0.1, started and
// stopped by PID here; checked against the pinned comet_ml SDK by comet_recording_server_test):
// the server receives the handshake, heartbeats and what was logged; an online run and the real
// `comet upload` of the same content's offline archive leave the same state; a server stopped
// and restarted mid-run still gets every value exactly once and in order while log() never
// stalls; a refused key gives one clear error, without the key, and training goes on.
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <thread>

#include "accel/tracking/hub.hpp"
#include "accel/tracking/trackers/comet/comet_tracker.hpp"
#include "comet_test_support.hpp"
#include "common/utf8.hpp"
#include "scoped_env.hpp"
#include "tracking_test_support.hpp"

using accel::CometTracker;
using accel::InvalidValue;
using accel::RunStatus;
using accel::TrackerError;
using accel::TrackerInit;
using accel::test::RecordingServer;
using accel::test::ScopedEnv;
using accel::test::sorted;
using accel::test::TempDir;
using accel::test::uploads_by_type;
using nlohmann::json;

namespace {

const std::string kApiKey = "ck" + std::string(30, '7');

// An online Comet environment for the scope: the key, the server, a HOME without config files.
struct OnlineEnv {
  OnlineEnv(const std::string& clientlib, const char* key)
      : url{"COMET_URL_OVERRIDE", clientlib.c_str()}, api_key{"COMET_API_KEY", key} {}
  TempDir home{"accel-comet-home"};
  ScopedEnv home_env{"HOME", home.str().c_str()};
  ScopedEnv config{"COMET_CONFIG", nullptr};
  ScopedEnv online{"COMET_START_ONLINE", nullptr};
  ScopedEnv url;
  ScopedEnv api_key;
  ScopedEnv dir{"COMET_OFFLINE_DIRECTORY", nullptr};
  ScopedEnv experiment{"COMET_EXPERIMENT_KEY", nullptr};
  ScopedEnv workspace{"COMET_WORKSPACE", nullptr};
  ScopedEnv project{"COMET_PROJECT_NAME", nullptr};
};

TrackerInit init_in(const TempDir& dir, json kwargs = json::object()) {
  return {.run_name = "accel-proj", .logging_dir = dir.path(), .init_kwargs = std::move(kwargs)};
}

// A free port on 127.0.0.1 (a recording server's, closed again).
int free_port(const TempDir& dir) {
  std::filesystem::create_directories(dir / "probe");
  RecordingServer probe(dir / "probe");
  return probe.port();
}

// Every file under dir holds no `secret`.
void check_no_file_holds(const std::filesystem::path& dir, const std::string& secret) {
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    INFO(entry.path());
    CHECK(accel::test::read_file(entry.path()).find(secret) == std::string::npos);
  }
}

}  // namespace

TEST_CASE(
    "an online run gives the server the handshake, heartbeats, gzip batches and everything that "
    "was logged",
    "[comet]") {
  TempDir dir("accel-comet");
  RecordingServer server(dir.path(), {.api_key = kApiKey, .beat_ms = 200});
  OnlineEnv env(server.clientlib(), kApiKey.c_str());
  CometTracker tracker(
      init_in(dir, {{"experiment_name", "live"}, {"tags", {"t1"}}, {"workspace", "ws"}}));
  CHECK(tracker.mode() == "online");
  CHECK(tracker.holds_records());
  tracker.start();
  tracker.store_init_configuration({{"lr", 0.001}, {"opt", {{"name", "adam"}}}});
  tracker.log({{"loss", 0.5}, {"note", "hello"}}, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a heartbeat is due
  tracker.log({{"epoch", 2}, {"loss", 0.25}, {"picture", accel::test::gradient(2, 3)}}, 2);
  tracker.log({{"scores", accel::Table{{"name", "score"}, {{"a, b", 1}, {"c", 2.5}}}}}, 3);
  tracker.flush();
  CHECK(tracker.acknowledged() == 4);  // config and three logs
  tracker.finish(RunStatus::finished);
  CHECK(tracker.acknowledged() == 5);

  const json got = server.summary();
  INFO(got.dump(1));
  CHECK(got["refused"] == 0);
  CHECK(got["errors"] == json::array());
  const auto& paths = got["paths"];
  REQUIRE(paths.size() >= 4);
  CHECK(paths[0] == "GET /clientlib/isAlive/ver");
  CHECK(paths[1] == "POST /clientlib/logger/add/run");
  CHECK(paths[2] == "POST /clientlib/tags/add-tags-to-experiment");
  CHECK(paths[3] == "POST /clientlib/status-report/update");
  CHECK(got["experiment"] == json({{"experimentKey", tracker.experiment_key()},
                                   {"projectName", "accel-proj"},
                                   {"teamName", "ws"},
                                   {"tags", {"t1"}}}));
  // The first heartbeat, at least one more (every 200 ms the server asked for), the last one.
  const auto& status = got["status"];
  REQUIRE(status.size() >= 3);
  CHECK(status.front() == true);
  CHECK(status[status.size() - 2] == true);
  CHECK(status.back() == false);
  CHECK(got["metric_batch_gzip"] == true);
  CHECK(got["metrics"] == json::parse(R"([["loss", 0.5, 1, null], ["loss", 0.25, 2, 2]])"));
  CHECK(sorted(got["parameters"]) ==
        json::parse(R"([["lr", 0.001, null, "manual"], ["opt|name", "adam", null, "manual"]])"));
  CHECK(got["others"] ==
        json::parse(R"([["Name", "live"], ["hasNestedParams", true], ["note", "hello"]])"));
  REQUIRE(got["uploads"].size() == 2);
  const json& image = got["uploads"][0];
  CHECK(image["path"] == "/clientlib/visualizations/upload");
  CHECK(image["query"]["figName"] == "picture");
  CHECK(image["query"]["step"] == "2");
  CHECK(image["query"]["overwrite"] == "False");
  CHECK(image["query"]["experimentId"] == tracker.experiment_key());
  CHECK(image["query"]["runId"] == "run-0001");
  CHECK(image["content"]["pixels"] == json(accel::test::gradient(2, 3).pixels));
  const json& table = got["uploads"][1];
  CHECK(table["path"] == "/clientlib/asset/upload");
  CHECK(table["query"]["fileName"] == "scores.csv");
  CHECK(table["query"]["extension"] == "csv");
  CHECK(table["query"]["step"] == "3");
  CHECK(table["query"]["epoch"] == "2");
  CHECK(table["content"] == "name,score\n\"a, b\",1\nc,2.5\n");
  // The key went in the Authorization header (the server accepted it) and is recorded nowhere.
  CHECK(accel::test::read_file(server.log()).find(kApiKey) == std::string::npos);
}

TEST_CASE(
    "an online run and comet upload of the same content's offline archive leave the server the "
    "same state",
    "[comet]") {
  TempDir dir("accel-comet");
  const json tags = {"t1"};
  json online;
  {
    std::filesystem::create_directories(dir / "online");
    RecordingServer server(dir / "online", {.api_key = kApiKey});
    OnlineEnv env(server.clientlib(), kApiKey.c_str());
    CometTracker tracker(
        init_in(dir, {{"experiment_name", "same"}, {"tags", tags}, {"workspace", "ws"}}));
    accel::test::log_sample_run(tracker);
    online = server.summary();
  }
  json uploaded;
  {
    std::filesystem::create_directories(dir / "upload");
    RecordingServer server(dir / "upload");
    OnlineEnv env(server.clientlib(), nullptr);
    ScopedEnv offline("COMET_START_ONLINE", "false");
    CometTracker tracker(init_in(
        dir,
        {{"experiment_name", "same"}, {"tags", tags}, {"workspace", "ws"}, {"online", false}}));
    accel::test::log_sample_run(tracker);
    const auto upload = accel::test::comet_upload(tracker.archive_path(), server, dir);
    INFO(upload.output);
    REQUIRE(upload.exit_code() == 0);
    CHECK(upload.output.find("COMET WARNING") == std::string::npos);
    CHECK(upload.output.find("COMET ERROR") == std::string::npos);
    uploaded = server.summary();
  }
  INFO("online: " << online.dump(1));
  INFO("uploaded: " << uploaded.dump(1));
  CHECK(online["errors"] == json::array());
  CHECK(uploaded["errors"] == json::array());
  online["experiment"].erase("experimentKey");
  uploaded["experiment"].erase("experimentKey");
  CHECK(online["experiment"] == uploaded["experiment"]);
  CHECK(sorted(online["metrics"]) == sorted(uploaded["metrics"]));
  CHECK(sorted(online["parameters"]) == sorted(uploaded["parameters"]));
  // The upload's others also hold the "offline_experiment" every archive carries.
  json others = json::array();
  for (const auto& other : uploaded["others"]) {
    if (other[0] != "offline_experiment") others.push_back(other);
  }
  CHECK(online["others"] == others);
  CHECK(online["html"] == uploaded["html"]);
  CHECK(online["uploads"].size() == 3);
  CHECK(uploads_by_type(online) == uploads_by_type(uploaded));
}

TEST_CASE(
    "through the hub, a server stopped and restarted mid-run gets every value exactly once and in "
    "order, and log() never stalls",
    "[comet]") {
  TempDir dir("accel-comet");
  const int port = free_port(dir);
  auto server =
      std::make_unique<RecordingServer>(dir.path(), RecordingServer::Options{.port = port});
  OnlineEnv env(server->clientlib(), kApiKey.c_str());
  accel::TrackerHubOptions options = accel::test::hub_options_in(dir);
  options.journal_dir = dir / "journal";
  options.end_training_timeout = std::chrono::seconds(60);
  accel::test::WarningCapture warnings;
  accel::EndTrainingReport report;
  std::chrono::steady_clock::duration slowest{};
  {
    accel::TrackerHub hub(options);
    hub.init_trackers("outage", {{"lr", 0.1}}, {"comet"});  // the alias of comet_ml
    REQUIRE(hub.get_tracker<CometTracker>("comet_ml"));
    const auto timed_log = [&](int64_t step) {
      const auto begin = std::chrono::steady_clock::now();
      hub.log({{"x", step}}, step);
      slowest = std::max(slowest, std::chrono::steady_clock::now() - begin);
    };
    for (int64_t s = 0; s < 200; ++s) timed_log(s);
    REQUIRE(hub.flush());
    server->stop();
    for (int64_t s = 200; s < 400; ++s) {
      timed_log(s);
      // 6 s without a server: a batch comes due after 2 s and fails its retries (about 2 s) well
      // before the server is back.
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
    }
    server = std::make_unique<RecordingServer>(dir.path(), RecordingServer::Options{.port = port});
    for (int64_t s = 400; s < 600; ++s) timed_log(s);
    report = hub.end_training();
  }
  CHECK(slowest < std::chrono::milliseconds(100));
  REQUIRE(report.trackers.size() == 1);
  const auto& delivery = report.trackers[0];
  INFO("error: " << delivery.error);
  CHECK(delivery.logged == 600);
  CHECK(delivery.delivered == 600);
  CHECK(delivery.journaled == 0);
  CHECK(warnings.count({"comet_ml", "did not accept"}) >= 1);  // the outage was noticed

  const json got = server->summary();
  std::vector<int64_t> steps;
  for (const auto& metric : got["metrics"]) {
    CHECK(metric[0] == "x");
    CHECK(metric[1] == metric[2]);
    steps.push_back(metric[2].get<int64_t>());
  }
  REQUIRE(steps.size() == 600);
  for (int64_t s = 0; s < 600; ++s) CHECK(steps[static_cast<std::size_t>(s)] == s);
  CHECK(got["parameters"] == json::parse(R"([["lr", 0.1, null, "manual"]])"));
  CHECK(got["status"].back() == false);
}

TEST_CASE("a key the server refuses gives one clear error naming the server, never the key",
          "[comet]") {
  TempDir dir("accel-comet");
  RecordingServer server(dir.path(), {.api_key = kApiKey});
  const std::string bad_key = "bad" + std::string(29, 'z');
  OnlineEnv env(server.clientlib(), bad_key.c_str());
  {
    CometTracker tracker(init_in(dir));
    const std::string message = accel::test::thrown<TrackerError>([&] { tracker.start(); });
    CHECK(message.find(server.clientlib()) != std::string::npos);
    CHECK(message.find("refused the API key") != std::string::npos);
    CHECK(message.find("HTTP 401") != std::string::npos);
    CHECK(message.find("COMET_API_KEY") != std::string::npos);
    CHECK(message.find(bad_key) == std::string::npos);
  }
  // Through the hub: reported once, training goes on, the key is in no message and no file.
  accel::test::WarningCapture warnings;
  accel::TrackerHubOptions options = accel::test::hub_options_in(dir);
  options.journal_dir = dir / "journal";
  {
    accel::TrackerHub hub(options);
    hub.init_trackers("refused", {{"epochs", 3}}, {"comet_ml"});
    for (int step = 0; step < 20; ++step) hub.log({{"loss", 1.0 / (step + 1)}}, step);
    hub.end_training();
  }
  CHECK(warnings.count({"failed and is disabled", "refused the API key", server.clientlib().c_str(),
                        "COMET_API_KEY"}) == 1);
  for (const auto& message : warnings.messages()) CHECK(message.find(bad_key) == std::string::npos);
  check_no_file_holds(dir.path(), bad_key);
  CHECK(server.summary()["metrics"] == json::array());
}

TEST_CASE(
    "the API key is read from $COMET_CONFIG, else ~/.comet.config, as the SDK reads them; without "
    "one online fails with the fix; a COMET_URL_OVERRIDE that is no http(s) URL is named",
    "[comet]") {
  TempDir dir("accel-comet");
  RecordingServer server(dir.path(), {.api_key = kApiKey});
  OnlineEnv env(server.clientlib(), nullptr);
  CHECK_THAT(accel::test::thrown<InvalidValue>([&] { CometTracker tracker(init_in(dir)); }),
             Catch::Matchers::Contains("needs an API key and none was found"));
  {
    std::ofstream config(env.home.path() / ".comet.config");
    config << "[comet]\napi_key = " << kApiKey << "   # the key comet login wrote\n";
  }
  CometTracker tracker(init_in(dir));
  tracker.start();
  tracker.log({{"loss", 0.5}}, 1);
  tracker.flush();
  tracker.finish(RunStatus::finished);
  const json got = server.summary();
  CHECK(got["refused"] == 0);
  CHECK(got["metrics"] == json::parse(R"([["loss", 0.5, 1, null]])"));
  {
    // $COMET_CONFIG (here a directory holding .comet.config) comes before ~/.comet.config.
    const auto config_dir = dir / "config";
    std::filesystem::create_directories(config_dir);
    std::ofstream(config_dir / ".comet.config")
        << "[comet]\napi_key = wrong-key-from-comet-config\n";
    ScopedEnv config("COMET_CONFIG", config_dir.c_str());
    CometTracker refused(init_in(dir));
    CHECK_THROWS_AS(refused.start(), TrackerError);
    CHECK(server.summary()["refused"].get<int>() > 0);
  }
  ScopedEnv url("COMET_URL_OVERRIDE", "ftp://127.0.0.1/clientlib/");
  CHECK_THAT(accel::test::thrown<InvalidValue>([&] { CometTracker bad_url(init_in(dir)); }),
             Catch::Matchers::Contains("COMET_URL_OVERRIDE = \"ftp://127.0.0.1/clientlib/\""));
}

TEST_CASE(
    "a tracker made from the resume info of a journal continues the same experiment "
    "(logger/get/run)",
    "[comet]") {
  TempDir dir("accel-comet");
  RecordingServer server(dir.path(), {.api_key = kApiKey});
  OnlineEnv env(server.clientlib(), kApiKey.c_str());
  std::string key;
  {
    CometTracker first(init_in(dir));
    key = first.experiment_key();
    CHECK(first.resume_info() == json({{"experiment_key", key}}));
  }
  TrackerInit init = init_in(dir);
  init.resume = {{"experiment_key", key}};
  CometTracker tracker(init);
  CHECK(tracker.experiment_key() == key);
  tracker.start();
  tracker.log({{"late", 1}}, 9);
  tracker.flush();
  tracker.finish(RunStatus::finished);
  const json got = server.summary();
  const auto& paths = got["paths"];
  CHECK(std::count(paths.begin(), paths.end(), "POST /clientlib/logger/get/run") == 1);
  CHECK(std::count(paths.begin(), paths.end(), "POST /clientlib/logger/add/run") == 0);
  CHECK(got["metrics"] == json::parse(R"([["late", 1, 9, null]])"));
}

TEST_CASE(
    "side by side: the comet_ml SDK logging the same content online to the same kind of server "
    "leaves the same state as accel's online run, but for the SDK's bookkeeping",
    "[comet]") {
  TempDir dir("accel-comet");
  json accel_state;
  {
    std::filesystem::create_directories(dir / "accel");
    RecordingServer server(dir / "accel", {.api_key = kApiKey});
    OnlineEnv env(server.clientlib(), kApiKey.c_str());
    CometTracker tracker(
        init_in(dir, {{"experiment_name", "same"}, {"tags", {"t1"}}, {"workspace", "ws"}}));
    accel::test::log_sample_run(tracker);
    accel_state = server.summary();
  }
  json sdk_state;
  {
    std::filesystem::create_directories(dir / "sdk");
    RecordingServer server(dir / "sdk", {.api_key = kApiKey});
    // As comet-formats.md §5: loopback only, no Sentry, no announcement, no auto-logging, a HOME
    // without config files, no workspace/project overrides.
    const std::string command =
        "cd " + accel::test::shell_quote(dir.str()) +
        " && env -u COMET_WORKSPACE -u COMET_PROJECT_NAME -u COMET_CONFIG -u COMET_START_ONLINE " +
        "HOME=" + accel::test::shell_quote(dir.str()) + " COMET_API_KEY=" + kApiKey +
        " COMET_ERROR_TRACKING_ENABLE=false COMET_DISABLE_ANNOUNCEMENT=true" +
        " COMET_DISABLE_AUTO_LOGGING=1 COMET_URL_OVERRIDE=" + server.clientlib() + " " +
        accel::test::shell_quote(accel::test::python_interpreter().string()) + " " +
        accel::test::shell_quote(
            accel::test::test_script("trackers/comet/sdk_online_run.py").string()) +
        " 2>&1";
    const auto run = accel::test::run_shell(command);
    INFO(run.output);
    REQUIRE(run.exit_code() == 0);
    CHECK(run.output.find("COMET WARNING") == std::string::npos);
    CHECK(run.output.find("COMET ERROR") == std::string::npos);
    sdk_state = server.summary();
  }
  INFO("accel: " << accel_state.dump(1));
  INFO("sdk: " << sdk_state.dump(1));
  // The SDK's bookkeeping (comet-formats.md §5.3): the "process duration" metric and the
  // auto-logged curr_step / curr_epoch parameters.
  json sdk_metrics = json::array();
  for (const auto& m : sdk_state["metrics"]) {
    if (m[0] != "process duration") sdk_metrics.push_back(m);
  }
  json sdk_parameters = json::array();
  for (const auto& p : sdk_state["parameters"]) {
    if (p[3] != "auto-logged") sdk_parameters.push_back(p);
  }
  CHECK(sdk_state["refused"] == 0);
  CHECK(sdk_state["errors"] == accel_state["errors"]);
  accel_state["experiment"].erase("experimentKey");
  sdk_state["experiment"].erase("experimentKey");
  CHECK(accel_state["experiment"] == sdk_state["experiment"]);
  CHECK(sorted(accel_state["metrics"]) == sorted(sdk_metrics));
  CHECK(sorted(accel_state["parameters"]) == sorted(sdk_parameters));
  CHECK(accel_state["others"] == sdk_state["others"]);
  CHECK(accel_state["html"] == sdk_state["html"]);
  CHECK(uploads_by_type(accel_state) == uploads_by_type(sdk_state));
  CHECK(accel_state["status"].back() == false);
  CHECK(sdk_state["status"].back() == false);
}

TEST_CASE(
    "through the hub, a server that never answers stalls no log call and the hub journals every "
    "call, without the key",
    "[comet]") {
  TempDir dir("accel-comet");
  const int port = free_port(dir);
  OnlineEnv env("http://127.0.0.1:" + std::to_string(port) + "/clientlib/", kApiKey.c_str());
  accel::TrackerHubOptions options = accel::test::hub_options_in(dir);
  options.journal_dir = dir / "journal";
  options.end_training_timeout = std::chrono::seconds(3);
  accel::EndTrainingReport report;
  {
    accel::TrackerHub hub(options);
    hub.init_trackers("away", {{"epochs", 3}}, {"comet_ml"});
    const auto begin = std::chrono::steady_clock::now();
    for (int step = 0; step < 300; ++step) hub.log({{"loss", 1.0 / (step + 1)}}, step);
    CHECK(std::chrono::steady_clock::now() - begin < std::chrono::seconds(1));
    report = hub.end_training();
  }
  REQUIRE(report.trackers.size() == 1);
  const auto& delivery = report.trackers[0];
  INFO("error: " << delivery.error);
  CHECK(delivery.logged == 300);
  CHECK(delivery.delivered == 0);
  CHECK(delivery.journaled == 300);
  CHECK_FALSE(delivery.sync_command.empty());
  check_no_file_holds(dir.path(), kApiKey);
}

TEST_CASE("an online run that failed is reported as the experiment error the upload reports",
          "[comet]") {
  TempDir dir("accel-comet");
  RecordingServer server(dir.path(), {.api_key = kApiKey});
  OnlineEnv env(server.clientlib(), kApiKey.c_str());
  CometTracker tracker(init_in(dir));
  tracker.start();
  tracker.log({{"loss", 0.5}}, 1);
  tracker.finish(RunStatus::failed);
  const json got = server.summary();
  CHECK(got["errors"] == json::parse(R"(["accel: the run ended failed"])"));
  CHECK(got["metrics"] == json::parse(R"([["loss", 0.5, 1, null]])"));
  CHECK(got["status"].back() == false);
}

TEST_CASE(
    "online, keys and values longer than comet_ml's limits reach the server cut as the SDK cuts "
    "them, with one warning per kind",
    "[comet]") {
  TempDir dir("accel-comet");
  RecordingServer server(dir.path(), {.api_key = kApiKey});
  OnlineEnv env(server.clientlib(), kApiKey.c_str());
  accel::test::WarningCapture warnings;
  CometTracker tracker(init_in(dir));
  tracker.start();
  accel::test::log_long_entries(tracker);
  accel::test::log_long_entries(tracker);
  tracker.finish(RunStatus::finished);
  const json got = server.summary();
  INFO(got.dump(1));
  CHECK(got["errors"] == json::array());
  // The SDK's cut: the first limit - 12 code points, then " [truncated]".
  const auto cut = [](const std::string& text, std::size_t limit) {
    return std::string(accel::utf8_prefix(text, limit - 12)) + " [truncated]";
  };
  const json long_ones = accel::test::long_entries();
  const json metric = {cut(long_ones["metrics"][0], 100), 1.5, 3, nullptr};
  const json other_metric = {cut(long_ones["metrics"][1], 100), 1.5, 3, nullptr};
  CHECK(sorted(got["metrics"]) ==
        sorted(json::array({metric, other_metric, metric, other_metric})));
  json names = json::array();
  for (const auto& p : got["parameters"]) {
    CHECK(accel::utf8_code_points(p[1].get<std::string>()) == 1000);
    names.push_back(p[0]);
  }
  CHECK(sorted(names) == sorted(json::array({"long_list", cut(std::string(120, 'p'), 100),
                                             "long_list", cut(std::string(120, 'p'), 100)})));
  const json other = {cut(std::string(130, 'o'), 100), cut(std::string(1200, 'w'), 1000)};
  const json short_other = {"short", cut(std::string(1001, 'x'), 1000)};
  CHECK(got["others"] == json::array({other, short_other, other, short_other}));
  CHECK(warnings.count({"comet_ml:", "longer than"}) == 5);
  CHECK(warnings.count({"comet_ml:", "a metric name longer than 100"}) == 1);
}
