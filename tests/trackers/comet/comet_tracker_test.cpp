// The comet_ml tracker's offline archives, checked with the pinned comet_ml wheel (3.58.8, in
// .venv): check_archive.py applies the uploader's own validators (OfflineSender's JSON schemas)
// to experiment.json and every messages.json line and prints what the archive holds; the real
// `comet upload` sends the archive to recording_comet_server.py (127.0.0.1, started and stopped
// by PID here), and what that server received (upload_summary.py) must equal what was logged.
#include "accel/tracking/trackers/comet/comet_tracker.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <thread>

#include "accel/tracking/hub.hpp"
#include "comet_test_support.hpp"
#include "common/utf8.hpp"
#include "scoped_env.hpp"
#include "tracking_test_support.hpp"

using accel::CometTracker;
using accel::Histogram;
using accel::Image;
using accel::InvalidValue;
using accel::RunStatus;
using accel::ScalarGroup;
using accel::Table;
using accel::TrackerInit;
using accel::Values;
using accel::test::check_archive;
using accel::test::comet_upload;
using accel::test::gradient;
using accel::test::log_sample_run;
using accel::test::RecordingServer;
using accel::test::ScopedEnv;
using accel::test::sorted;
using accel::test::TempDir;
using nlohmann::json;

namespace {

// A clean Comet environment for the scope: offline, no key (neither in the environment nor in a
// config file: HOME has none), no directory, no overrides.
struct OfflineEnv {
  TempDir home{"accel-comet-home"};
  ScopedEnv home_env{"HOME", home.str().c_str()};
  ScopedEnv config{"COMET_CONFIG", nullptr};
  ScopedEnv online{"COMET_START_ONLINE", "false"};
  ScopedEnv key{"COMET_API_KEY", nullptr};
  ScopedEnv dir{"COMET_OFFLINE_DIRECTORY", nullptr};
  ScopedEnv experiment{"COMET_EXPERIMENT_KEY", nullptr};
  ScopedEnv workspace{"COMET_WORKSPACE", nullptr};
  ScopedEnv project{"COMET_PROJECT_NAME", nullptr};
};

TrackerInit init_in(const TempDir& dir, json kwargs = json::object()) {
  return {.run_name = "accel-proj", .logging_dir = dir.path(), .init_kwargs = std::move(kwargs)};
}

// `comet upload` of archive into a fresh recording server under dir/<name>: it must print no
// COMET WARNING/ERROR; returns what the server received (upload_summary.py).
json upload_summary_of(const std::filesystem::path& archive, const TempDir& dir,
                       const std::string& name) {
  std::filesystem::create_directories(dir / name);
  RecordingServer server(dir / name);
  const auto upload = comet_upload(archive, server, dir);
  INFO(upload.output);
  REQUIRE(upload.exit_code() == 0);
  CHECK(upload.output.find("COMET WARNING") == std::string::npos);
  CHECK(upload.output.find("COMET ERROR") == std::string::npos);
  CHECK(upload.output.find("Number of uploaded experiments: 1") != std::string::npos);
  return server.summary();
}

// The SDK's cut (convert_to_string_truncated): the first limit - 12 code points, " [truncated]".
std::string cut_as_sdk(const std::string& text, std::size_t limit) {
  return std::string(accel::utf8_prefix(text, limit - 12)) + " [truncated]";
}

std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("an offline archive passes comet_ml's own validation and holds what was logged",
          "[comet]") {
  OfflineEnv env;
  TempDir dir("accel-comet");
  CometTracker tracker(
      init_in(dir, {{"experiment_name", "first"}, {"tags", {"a", "b"}}, {"workspace", "ws"}}));
  log_sample_run(tracker);

  REQUIRE(tracker.archive_path() == dir.path() / (tracker.experiment_key() + ".zip"));
  REQUIRE(std::filesystem::is_regular_file(tracker.archive_path()));
  CHECK_FALSE(std::filesystem::exists(dir.path() / ("." + tracker.experiment_key() + ".staging")));
  CHECK(tracker.experiment_key().size() == 32);

  const json out = check_archive(tracker.archive_path());
  INFO(out.dump(1));
  REQUIRE(out["errors"] == json::array());

  const json& experiment = out["experiment"];
  CHECK(experiment["offline_id"] == tracker.experiment_key());
  CHECK(experiment["project_name"] == "accel-proj");
  CHECK(experiment["workspace"] == "ws");
  CHECK(experiment["tags"] == json({"a", "b"}));
  CHECK(experiment["resume_strategy"] == "create");
  CHECK(experiment["stop_time"].get<int64_t>() >= experiment["start_time"].get<int64_t>());

  CHECK(out["metrics"] == json::parse(R"([
    ["loss", 0.5, 1, null], ["correct", 17, 1, null], ["loss", "NaN", 2, null],
    ["loss/train", 0.25, 3, 1], ["loss/val", "Infinity", 3, 1], ["later", 7, 3, 1]])"));
  CHECK(out["parameters"] == json::parse(R"([
    ["api_key", "<redacted>", null, "manual"], ["epochs", 3, null, "manual"],
    ["lr", 0.001, null, "manual"], ["opt|betas", [0.9, 0.999], null, "manual"],
    ["opt|name", "adam", null, "manual"]])"));
  CHECK(out["others"] == json::parse(R"([["offline_experiment", true], ["Name", "first"],
    ["hasNestedParams", true], ["note", "hello"]])"));
  CHECK(out["html"] == json::parse(R"([["html", "<b>bold</b>"]])"));

  REQUIRE(out["uploads"].size() == 3);
  const json& image = out["uploads"][0];
  CHECK(image["upload_type"] == "visualization");
  CHECK(image["additional_params"]["figName"] == "picture");
  CHECK(image["additional_params"]["step"] == 3);
  CHECK(image["content"]["format"] == "PNG");
  CHECK(image["content"]["size"] == json({5, 4}));
  CHECK(image["content"]["pixels"] == json(gradient(4, 5).pixels));
  const json& histogram = out["uploads"][1];
  CHECK(histogram["upload_type"] == "histogram3d");
  CHECK(histogram["additional_params"]["fileName"] == "weights");
  CHECK(histogram["additional_params"]["epoch"] == 1);
  // What comet_ml.data_structure.Histogram gives for [1, 2, 3, 3, 4] (comet-formats.md §1.7).
  CHECK(histogram["content"] == json::parse(R"({"version":2,
    "index_values":[[1065,1],[1073,1],[1077,2],[1080,1]],"values":null,"offset":0,
    "start":1e-12,"stop":1e+20,"step":1.1})"));
  const json& text = out["uploads"][2];
  CHECK(text["upload_type"] == "text-sample");
  CHECK(text["additional_params"]["step"] == 4);
  CHECK(text["content"] == "some text");
}

TEST_CASE("the API key is written nowhere: not in the archive, not in its members", "[comet]") {
  OfflineEnv env;
  ScopedEnv key("COMET_API_KEY", "ck-SECRET-123");
  TempDir dir("accel-comet");
  CometTracker tracker(init_in(dir, {{"api_key", "ck-SECRET-123"}}));
  log_sample_run(tracker);
  const std::string bytes = read_all(tracker.archive_path());
  REQUIRE(bytes.size() > 100);
  CHECK(bytes.find("ck-SECRET-123") == std::string::npos);
  CHECK(bytes.find("SECRET") == std::string::npos);
}

TEST_CASE(
    "the archive goes to offline_directory, else COMET_OFFLINE_DIRECTORY, else the logging "
    "directory",
    "[comet]") {
  OfflineEnv env;
  TempDir dir("accel-comet");
  {
    CometTracker tracker(init_in(dir, {{"offline_directory", (dir / "given").string()}}));
    tracker.start();
    tracker.finish(RunStatus::finished);
    CHECK(tracker.archive_path().parent_path() == dir / "given");
    CHECK(std::filesystem::is_regular_file(tracker.archive_path()));
  }
  {
    ScopedEnv from_env("COMET_OFFLINE_DIRECTORY", (dir / "env").c_str());
    CometTracker tracker(init_in(dir));
    CHECK(tracker.archive_path().parent_path() == dir / "env");
  }
  CometTracker tracker(init_in(dir, {{"experiment_key", std::string(40, 'a')}}));
  CHECK(tracker.archive_path() == dir / (std::string(40, 'a') + ".zip"));
}

TEST_CASE(
    "a killed run leaves a staging directory that, zipped as docs/comet.md says, is a valid "
    "archive of every flushed message",
    "[comet]") {
  OfflineEnv env;
  TempDir dir("accel-comet");
  auto tracker = std::make_unique<CometTracker>(init_in(dir));
  tracker->start();
  tracker->store_init_configuration({{"lr", 0.1}});
  tracker->log({{"loss", 0.5}, {"picture", gradient(2, 3)}}, 1);
  const std::string key = tracker->experiment_key();
  const auto staging = dir / ("." + key + ".staging");
  REQUIRE(std::filesystem::is_regular_file(staging / "experiment.json"));
  REQUIRE(std::filesystem::is_regular_file(staging / "messages.json"));
  // The process dies here: finish() never runs (the destructor does not finish the archive either,
  // so destroying the tracker leaves what a killed process leaves).
  tracker.reset();
  const auto zipped =
      accel::test::run_shell("cd " + accel::test::shell_quote(staging.string()) + " && " +
                             accel::test::shell_quote(accel::test::python_interpreter().string()) +
                             " -m zipfile -c ../" + key + ".zip * 2>&1");
  REQUIRE(zipped.exit_code() == 0);
  const json out = check_archive(dir / (key + ".zip"), /*deflated_ok=*/true);  // python -m zipfile
  INFO(out.dump(1));
  CHECK(out["errors"] == json::array());
  CHECK(out["metrics"] == json::parse(R"([["loss", 0.5, 1, null]])"));
  CHECK(out["parameters"] == json::parse(R"([["lr", 0.1, null, "manual"]])"));
  REQUIRE(out["uploads"].size() == 1);
  CHECK(out["uploads"][0]["content"]["pixels"] == json(gradient(2, 3).pixels));
}

TEST_CASE("a failed run is marked in experiment.json as an error the upload reports", "[comet]") {
  OfflineEnv env;
  TempDir dir("accel-comet");
  CometTracker tracker(init_in(dir));
  tracker.start();
  tracker.log({{"loss", 0.5}}, 1);
  tracker.finish(RunStatus::failed);
  const json out = check_archive(tracker.archive_path());
  CHECK(out["errors"] == json::array());
  CHECK(out["experiment"]["customer_error_reported"] == true);
  CHECK(out["experiment"]["customer_error_message"] == "accel: the run ended failed");
}

TEST_CASE(
    "online mode without an API key fails init with a clear error saying where the key goes and "
    "how to choose offline",
    "[comet]") {
  OfflineEnv env;
  TempDir dir("accel-comet");
  ScopedEnv online("COMET_START_ONLINE", nullptr);
  using accel::test::thrown;
  const std::string message = thrown<InvalidValue>([&] { CometTracker tracker(init_in(dir)); });
  CHECK_THAT(message, Catch::Matchers::Contains("needs an API key and none was found"));
  CHECK_THAT(message, Catch::Matchers::Contains("COMET_API_KEY"));
  CHECK_THAT(message, Catch::Matchers::Contains("~/.comet.config"));
  CHECK_THAT(message, Catch::Matchers::Contains("COMET_START_ONLINE=false"));
  CHECK_THAT(message, Catch::Matchers::Contains("\"online\": false"));
  CHECK_THROWS_AS(CometTracker(init_in(dir, {{"online", true}})), InvalidValue);
  CHECK_NOTHROW(CometTracker(init_in(dir, {{"online", false}})));
  CHECK_THAT(thrown<InvalidValue>([&] {
               CometTracker tracker(init_in(dir, {{"online", false}, {"mode", "offline"}}));
             }),
             Catch::Matchers::Contains("[\"mode\"] is not supported"));
  CHECK_THAT(thrown<InvalidValue>([&] {
               CometTracker tracker(init_in(dir, {{"online", false}, {"experiment_key", "abc"}}));
             }),
             Catch::Matchers::Contains("32 to 50"));
}

TEST_CASE("log_with comet_ml through the hub writes the archive under the logging directory",
          "[comet]") {
  OfflineEnv env;
  TempDir dir("accel-comet");
  {
    accel::TrackerHub hub(accel::test::hub_options_in(dir));
    hub.init_trackers("hubproj", {{"epochs", 3}}, {"comet_ml"});
    hub.log({{"loss", 0.5}}, 1);
    hub.end_training();
  }
  std::vector<std::filesystem::path> archives;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.path())) {
    if (entry.path().extension() == ".zip") archives.push_back(entry.path());
  }
  REQUIRE(archives.size() == 1);
  const json out = check_archive(archives[0]);
  INFO(out.dump(1));
  CHECK(out["errors"] == json::array());
  CHECK(out["experiment"]["project_name"] == "hubproj");
  CHECK(out["metrics"] == json::parse(R"([["loss", 0.5, 1, null]])"));
  CHECK(out["parameters"] == json::parse(R"([["epochs", 3, null, "manual"]])"));
}

TEST_CASE(
    "comet upload sends the archive to a recording server without an error, and the server "
    "holds what was logged",
    "[comet]") {
  OfflineEnv env;
  TempDir dir("accel-comet");
  CometTracker tracker(
      init_in(dir, {{"experiment_name", "uploaded"}, {"tags", {"t1"}}, {"workspace", "ws"}}));
  log_sample_run(tracker);
  const json archive = check_archive(tracker.archive_path());
  REQUIRE(archive["errors"] == json::array());

  json sent;
  {
    RecordingServer server(dir.path());
    const auto upload = comet_upload(tracker.archive_path(), server, dir);
    INFO(upload.output);
    REQUIRE(upload.exit_code() == 0);
    CHECK(upload.output.find("COMET WARNING") == std::string::npos);
    CHECK(upload.output.find("COMET ERROR") == std::string::npos);
    CHECK(upload.output.find("Number of uploaded experiments: 1") != std::string::npos);
    sent = json::parse(accel::test::run_python_script(
        accel::test::test_script("trackers/comet/upload_summary.py"), {server.log().string()}));
  }
  INFO(sent.dump(1));
  CHECK(sent["errors"] == json::array());
  CHECK(sent["experiment"]["experimentKey"] == tracker.experiment_key());
  CHECK(sent["experiment"]["projectName"] == "accel-proj");
  CHECK(sent["experiment"]["teamName"] == "ws");
  CHECK(sent["experiment"]["tags"] == json({"t1"}));
  CHECK(sorted(sent["metrics"]) == sorted(archive["metrics"]));
  CHECK(sorted(sent["parameters"]) == sorted(archive["parameters"]));
  CHECK(sent["others"] == archive["others"]);
  CHECK(sent["html"] == archive["html"]);
  // Uploads run on threads: compare them by type, with the file content the server received.
  std::map<std::string, json> received;
  for (const auto& u : sent["uploads"]) received[u["upload_type"].get<std::string>()] = u;
  REQUIRE(received.size() == 3);
  for (const auto& u : archive["uploads"]) {
    const std::string type = u["upload_type"];
    REQUIRE(received.count(type) == 1);
    CHECK(received[type]["content"] == u["content"]);
    CHECK(received[type]["query"]["step"] ==
          std::to_string(u["additional_params"]["step"].get<int>()));
  }
  CHECK(received["visualization"]["path"] == "/clientlib/visualizations/upload");
  CHECK(received["visualization"]["query"]["figName"] == "picture");
  CHECK(received["histogram3d"]["query"]["fileName"] == "weights");
}

TEST_CASE(
    "init_kwargs online false chooses offline through the hub; online without a key is named as "
    "the reason when comet_ml is named or skipped by all",
    "[comet]") {
  OfflineEnv env;
  ScopedEnv online("COMET_START_ONLINE", nullptr);
  TempDir dir("accel-comet");
  {
    accel::TrackerHub hub(accel::test::hub_options_in(dir));
    hub.init_trackers("kwproj", {}, {"comet_ml"},
                      {{"comet_ml", {{"online", false}, {"offline_directory", dir.str()}}}});
    CometTracker* tracker = hub.get_tracker<CometTracker>("comet_ml");
    REQUIRE(tracker);
    hub.log({{"loss", 0.25}}, 2);
    const auto archive = tracker->archive_path();
    hub.end_training();
    CHECK(check_archive(archive)["metrics"] == json::parse(R"([["loss", 0.25, 2, null]])"));
  }
  accel::TrackerHub named(accel::test::hub_options_in(dir));
  CHECK_THAT(
      accel::test::thrown<InvalidValue>([&] { named.init_trackers("kwproj", {}, {"comet_ml"}); }),
      Catch::Matchers::Contains("needs an API key"));
  accel::test::WarningCapture warnings;
  accel::TrackerHub all(accel::test::hub_options_in(dir));
  all.init_trackers("kwproj", {}, {"all"});
  CHECK(warnings.count({"comet_ml", "needs an API key"}) == 1);
  all.end_training();
}

TEST_CASE(
    "keys and values longer than comet_ml's limits reach the server cut exactly as the SDK cuts "
    "them, with one warning per kind",
    "[comet]") {
  OfflineEnv env;
  TempDir dir("accel-comet");
  accel::test::WarningCapture warnings;
  CometTracker tracker(init_in(dir));
  tracker.start();
  accel::test::log_long_entries(tracker);
  accel::test::log_long_entries(tracker);  // the same kinds again: no more warnings
  tracker.finish(RunStatus::finished);
  const json archive = check_archive(tracker.archive_path());
  INFO(archive.dump(1));
  REQUIRE(archive["errors"] == json::array());

  const json sent = upload_summary_of(tracker.archive_path(), dir, "server");
  INFO(sent.dump(1));
  CHECK(sent["errors"] == json::array());
  const json long_ones = accel::test::long_entries();
  const std::string metric0 = long_ones["metrics"][0], metric1 = long_ones["metrics"][1];
  CHECK(accel::utf8_code_points(metric0) == 105);
  const json expected_metrics = {{cut_as_sdk(metric0, 100), 1.5, 3, nullptr},
                                 {cut_as_sdk(metric1, 100), 1.5, 3, nullptr}};
  CHECK(sorted(sent["metrics"]) == sorted(json::array({expected_metrics[0], expected_metrics[1],
                                                       expected_metrics[0], expected_metrics[1]})));
  CHECK(accel::utf8_code_points(cut_as_sdk(metric0, 100)) == 100);
  const std::string long_value = long_ones["parameters"][std::string(120, 'p')];
  std::string list_text = long_ones["parameters"]["long_list"].dump();
  CHECK(sorted(sent["parameters"]) ==
        sorted(json::array(
            {{cut_as_sdk(std::string(120, 'p'), 100), cut_as_sdk(long_value, 1000), 3, "manual"},
             {"long_list", cut_as_sdk(list_text, 1000), 3, "manual"}})));
  CHECK(sent["others"] ==
        json::array(
            {{"offline_experiment", true},
             {cut_as_sdk(std::string(130, 'o'), 100), cut_as_sdk(std::string(1200, 'w'), 1000)},
             {"short", cut_as_sdk(std::string(1001, 'x'), 1000)},
             {cut_as_sdk(std::string(130, 'o'), 100), cut_as_sdk(std::string(1200, 'w'), 1000)},
             {"short", cut_as_sdk(std::string(1001, 'x'), 1000)}}));
  for (const char* kind : {"a metric name longer than 100", "a parameter name longer than 100",
                           "an other's key longer than 100", "a parameter value longer than 1000",
                           "an other's value longer than 1000"}) {
    INFO(kind);
    CHECK(warnings.count({"comet_ml:", kind, "use a shorter one"}) == 1);
  }
  CHECK(warnings.count({"comet_ml:", "longer than"}) == 5);
}

TEST_CASE(
    "side by side: the comet_ml SDK's OfflineExperiment logging the same content and accel's "
    "offline run upload to the same server state, but for the SDK's bookkeeping",
    "[comet]") {
  OfflineEnv env;
  TempDir dir("accel-comet");
  CometTracker tracker(
      init_in(dir, {{"experiment_name", "same"}, {"tags", {"t1"}}, {"workspace", "ws"}}));
  accel::test::log_sample_run(tracker, accel::test::log_long_entries);
  json accel_state = upload_summary_of(tracker.archive_path(), dir, "accel-server");

  // As comet-formats.md §5: loopback only, no Sentry, no announcement, no auto-logging, a HOME
  // without config files, no workspace/project overrides.
  const auto sdk_dir = dir / "sdk-runs";
  const auto entries = dir / "long_entries.json";
  {
    std::ofstream out(entries);
    out << accel::test::long_entries().dump();
  }
  const std::string command =
      "cd " + accel::test::shell_quote(dir.str()) +
      " && env -u COMET_WORKSPACE -u COMET_PROJECT_NAME -u COMET_CONFIG -u COMET_START_ONLINE " +
      "-u COMET_API_KEY HOME=" + accel::test::shell_quote(dir.str()) +
      " COMET_ERROR_TRACKING_ENABLE=false COMET_DISABLE_ANNOUNCEMENT=true" +
      " COMET_DISABLE_AUTO_LOGGING=1 COMET_URL_OVERRIDE=http://127.0.0.1:9/clientlib/ " +
      accel::test::shell_quote(accel::test::python_interpreter().string()) + " " +
      accel::test::shell_quote(
          accel::test::test_script("trackers/comet/sdk_offline_run.py").string()) +
      " " + accel::test::shell_quote(sdk_dir.string()) + " " +
      accel::test::shell_quote(entries.string()) + " 2>&1";
  const auto run = accel::test::run_shell(command);
  INFO(run.output);
  REQUIRE(run.exit_code() == 0);
  CHECK(run.output.find("COMET ERROR") == std::string::npos);
  std::vector<std::filesystem::path> archives;
  for (const auto& entry : std::filesystem::directory_iterator(sdk_dir)) {
    if (entry.path().extension() == ".zip") archives.push_back(entry.path());
  }
  REQUIRE(archives.size() == 1);
  json sdk_state = upload_summary_of(archives[0], dir, "sdk-server");

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
  CHECK(accel_state["errors"] == json::array());
  CHECK(sdk_state["errors"] == json::array());
  accel_state["experiment"].erase("experimentKey");
  sdk_state["experiment"].erase("experimentKey");
  CHECK(accel_state["experiment"] == sdk_state["experiment"]);
  CHECK(sorted(accel_state["metrics"]) == sorted(sdk_metrics));
  CHECK(sorted(accel_state["parameters"]) == sorted(sdk_parameters));
  CHECK(accel_state["others"] == sdk_state["others"]);
  CHECK(accel_state["html"] == sdk_state["html"]);
  CHECK(accel::test::uploads_by_type(accel_state) == accel::test::uploads_by_type(sdk_state));
  CHECK(accel_state["status"].back() == false);
  CHECK(sdk_state["status"].back() == false);
}

TEST_CASE(
    "a run killed with SIGKILL mid-run becomes, at the next start in its offline directory, an "
    "archive that comet upload accepts with every message up to its last flush",
    "[comet]") {
  OfflineEnv env;
  TempDir dir("accel-comet");
  const std::string killed_key(32, 'c');
  const auto ready = dir / "ready";
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {  // the training process: logs, flushes, then waits to be killed
    CometTracker tracker(init_in(dir, {{"experiment_key", killed_key}, {"tags", {"k"}}}));
    tracker.start();
    tracker.store_init_configuration({{"lr", 0.1}});
    for (int step = 1; step <= 50; ++step) tracker.log({{"loss", 1.0 / step}}, step);
    tracker.log({{"picture", gradient(2, 3)}, {"note", "before the kill"}}, 50);
    tracker.flush();
    { std::ofstream(ready) << "1"; }
    ::pause();
    ::_exit(0);
  }
  for (int i = 0; i < 600 && !std::filesystem::exists(ready); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(std::filesystem::exists(ready));
  REQUIRE(::kill(child, SIGKILL) == 0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  const auto killed_archive = dir / (killed_key + ".zip");
  CHECK_FALSE(std::filesystem::exists(killed_archive));
  REQUIRE(std::filesystem::is_directory(dir / ("." + killed_key + ".staging")));

  // The next run in the same offline directory (another experiment) turns it into its archive.
  accel::test::WarningCapture warnings;
  CometTracker next(init_in(dir));
  CHECK(warnings.count({"comet_ml: a killed run left", killed_archive.string(), "comet upload"}) ==
        1);
  REQUIRE(std::filesystem::is_regular_file(killed_archive));
  CHECK_FALSE(std::filesystem::exists(dir / ("." + killed_key + ".staging")));

  const json sent = upload_summary_of(killed_archive, dir, "server");
  INFO(sent.dump(1));
  CHECK(sent["errors"] == json::array());
  CHECK(sent["experiment"]["experimentKey"] == killed_key);
  CHECK(sent["experiment"]["tags"] == json({"k"}));
  json expected = json::array();
  for (int step = 1; step <= 50; ++step) expected.push_back({"loss", 1.0 / step, step, nullptr});
  CHECK(sorted(sent["metrics"]) == sorted(expected));
  CHECK(sent["parameters"] == json::parse(R"([["lr", 0.1, null, "manual"]])"));
  CHECK(sent["others"] ==
        json::parse(R"([["offline_experiment", true], ["note", "before the kill"]])"));
  REQUIRE(sent["uploads"].size() == 1);
  CHECK(sent["uploads"][0]["content"]["pixels"] == json(gradient(2, 3).pixels));

  // A live run's staging directory is left alone (it is locked).
  CometTracker other(init_in(dir));
  CHECK(std::filesystem::is_directory(dir / ("." + next.experiment_key() + ".staging")));
  CHECK(std::filesystem::is_regular_file(killed_archive));
}
