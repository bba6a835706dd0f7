// The wandb tracker's online mode against the recording W&B server (recording_wandb_server.py, on
// 127.0.0.1; checked against the pinned wandb SDK by wandb_recording_server_test): what the server
// received is what was logged, a server that answers 503 for a while still gets every row once and
// in order, a refused key gives one clear error without the key, and the .wandb file written beside
// an online run whose server never answered is uploaded whole by `wandb sync`.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <set>
#include <thread>

#include "accel/tracking/hub.hpp"
#include "accel/tracking/journal_sync.hpp"
#include "accel/tracking/trackers/wandb/wandb_tracker.hpp"
#include "net/http_client.hpp"
#include "python.hpp"
#include "recording_server.hpp"
#include "script_server.hpp"
#include "shell.hpp"
#include "tracking_test_support.hpp"
#include "wandb_test_support.hpp"

using accel::Image;
using accel::RunStatus;
using accel::TrackerError;
using accel::TrackerUnavailable;
using accel::Values;
using accel::WandbTracker;
using accel::test::finish_when_back;
using accel::test::kApiKey;
using accel::test::OnlineEnv;
using accel::test::RecordingServer;
using accel::test::ScopedEnv;
using accel::test::shell_quote;
using accel::test::TempDir;
using accel::test::tracker_init;
using nlohmann::json;

namespace {

const json& run_of(const json& state, const WandbTracker& tracker, const std::string& project) {
  const std::string key = "recorder/" + project + "/" + tracker.run_id();
  INFO("runs: " << state["runs"].dump().substr(0, 2000));
  REQUIRE(state["runs"].contains(key));
  return state["runs"][key];
}

// The history lines the server holds, by offset (every offset from 0 must be there).
std::vector<std::string> history_lines(const json& run) {
  const auto& lines = run["files"]["wandb-history.jsonl"]["lines"];
  std::vector<std::string> out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string offset = std::to_string(i);
    REQUIRE(lines.contains(offset));
    out.push_back(lines[offset].get<std::string>());
  }
  return out;
}

// The same, parsed (lines without NaN/Infinity tokens, which nlohmann::json does not read).
std::vector<json> history_rows(const json& run) {
  std::vector<json> rows;
  for (const auto& line : history_lines(run)) rows.push_back(json::parse(line));
  return rows;
}

}  // namespace

TEST_CASE("an online run reaches the server with its rows, summary, config and exit code 0") {
  TempDir dir;
  RecordingServer server(dir.path());
  OnlineEnv env(server.url());
  WandbTracker tracker(
      tracker_init("proj", dir.path() / "logs", {{"name", "nice run"}, {"tags", {"a", "b"}}}));
  CHECK(tracker.mode() == "online");
  CHECK(tracker.run_dir().filename().string().starts_with("run-"));
  tracker.start();
  CHECK(tracker.run_url() == server.url() + "/recorder/proj/runs/" + tracker.run_id());
  tracker.store_init_configuration({{"lr", 0.001}, {"model", {{"hidden", 128}, {"act", "relu"}}}});
  for (int s = 0; s < 5; ++s) {
    tracker.log(Values{{"loss", 1.0 / (s + 1)}, {"epoch", int64_t{s / 2}}}, s * 10);
  }
  tracker.log(Values{{"weird", std::numeric_limits<double>::infinity()},
                     {"img", Image::from_uint8(std::vector<uint8_t>(4 * 4 * 3, 200), 4, 4, 3)}},
              50);
  tracker.flush();
  tracker.finish(RunStatus::finished);
  CHECK(tracker.acknowledged() == 8);  // config, 6 logs, finish

  const json state = server.state();
  const json& run = run_of(state, tracker, "proj");
  json config = run["config"];
  const json bookkeeping = config["_wandb"]["value"];
  config.erase("_wandb");
  CHECK(config == json({{"lr", {{"value", 0.001}}},
                        {"model", {{"value", {{"hidden", 128}, {"act", "relu"}}}}}}));
  // The metric definitions (the UI's x-axis) and the client marker W&B resumes by.
  CHECK(bookkeeping["m"].size() == 2);
  CHECK(bookkeeping.contains("t"));
  CHECK(run["display_name"] == "nice run");
  CHECK(run["tags"] == json({"a", "b"}));
  const auto lines = history_lines(run);
  REQUIRE(lines.size() == 6);
  std::vector<json> rows;
  for (int s = 0; s < 5; ++s) rows.push_back(json::parse(lines[s]));
  for (int s = 0; s < 5; ++s) {
    CHECK(rows[s]["_step"] == s);
    CHECK(rows[s]["loss"].get<double>() == 1.0 / (s + 1));
    CHECK(rows[s]["epoch"] == s / 2);
    CHECK(rows[s]["trainer/global_step"] == s * 10);
    CHECK(rows[s].contains("_runtime"));
    CHECK(rows[s].contains("_timestamp"));
  }
  CHECK(lines[5].find("\"weird\":Infinity") != std::string::npos);  // W&B's token, not null
  CHECK(run["summary"]["weird"] == "Infinity");
  CHECK(run["summary"]["loss"].get<double>() == 0.2);
  CHECK(run["summary"]["trainer/global_step"] == 50);
  CHECK(run["summary"]["_wandb"].contains("runtime"));
  CHECK(run["complete"] == true);
  CHECK(run["exitcode"] == 0);
  std::string image_path;
  for (const auto& name : run["uploaded"]) {
    if (name.get<std::string>().starts_with("media/images/img_5_")) image_path = name;
  }
  CHECK(!image_path.empty());
  CHECK(lines[5].find("\"path\":\"" + image_path + "\"") != std::string::npos);
  for (const std::string& file :
       std::vector<std::string>{"config.yaml", "wandb-summary.json", image_path}) {
    CHECK(std::find(run["uploaded"].begin(), run["uploaded"].end(), file) != run["uploaded"].end());
    CHECK(state["uploads"].contains("recorder/proj/" + tracker.run_id() + "/" + file));
  }
  // The .wandb transaction log is beside it, and the key is nowhere.
  CHECK(std::filesystem::file_size(tracker.log_file()) > 0);
  CHECK(accel::test::read_file(tracker.log_file()).find(kApiKey) == std::string::npos);
  CHECK(state.dump().find(kApiKey) == std::string::npos);
}

TEST_CASE("a server answering 503 for a while still gets every row exactly once and in order") {
  TempDir dir;
  RecordingServer server(dir.path());
  OnlineEnv env(server.url());
  WandbTracker tracker(tracker_init("outage", dir.path()));
  tracker.start();
  tracker.store_init_configuration({{"lr", 0.1}});
  // A request goes out once OnlineRun::kSendLines (1,000) rows wait: 3,500 rows are several.
  constexpr int kRows = 3500;
  for (int s = 0; s < kRows; ++s) {
    // More failures than one request's retries: a request fails whole and is sent again later.
    if (s == 1500) server.fail(503, 6, "/files");
    tracker.log(Values{{"x", int64_t{s}}}, s);
  }
  finish_when_back(tracker, RunStatus::finished);

  const json state = server.state();
  const json& run = run_of(state, tracker, "outage");
  const auto rows = history_rows(run);
  REQUIRE(rows.size() == kRows);
  for (int s = 0; s < kRows; ++s) CHECK(rows[s]["x"] == s);
  // Offsets arrived in order; an offset came again only as part of a whole resent request.
  const auto& received = run["files"]["wandb-history.jsonl"]["received"];
  int64_t next = 0;
  for (const auto& offset : received) {
    CHECK(offset.get<int64_t>() <= next);
    next = std::max(next, offset.get<int64_t>() + 1);
  }
  CHECK(next == kRows);
  CHECK(run["complete"] == true);
  CHECK(run["exitcode"] == 0);
  CHECK(run["file_stream_requests"].get<int>() >= 4);
}

TEST_CASE("a key the server refuses gives one clear error naming the server, never the key") {
  TempDir dir;
  RecordingServer server(dir.path());
  const std::string bad_key = "bad" + std::string(37, 'z');
  OnlineEnv env(server.url(), bad_key);
  WandbTracker tracker(tracker_init("proj", dir.path()));
  const std::string message = accel::test::thrown<TrackerError>([&] { tracker.start(); });
  CHECK(message.find(server.url()) != std::string::npos);
  CHECK(message.find("WANDB_API_KEY") != std::string::npos);
  CHECK(message.find("401") != std::string::npos);
  CHECK(message.find(bad_key) == std::string::npos);
  CHECK(accel::test::read_file(tracker.log_file()).find(bad_key) == std::string::npos);
}

TEST_CASE("through the hub a refused key is reported once, training goes on, the key is nowhere") {
  TempDir dir;
  RecordingServer server(dir.path());
  const std::string bad_key = "bad" + std::string(37, 'y');
  OnlineEnv env(server.url(), bad_key);
  accel::test::WarningCapture warnings;
  accel::TrackerHubOptions options;
  options.logging_dir = dir.path() / "logs";
  options.journal_dir = dir.path() / "journal";
  options.handle_signals = false;
  {
    accel::TrackerHub hub(options);
    hub.init_trackers("refused", {{"epochs", 3}}, {"wandb"});
    for (int step = 0; step < 20; ++step) hub.log({{"loss", 1.0 / (step + 1)}}, step);
    hub.end_training();
  }
  // One report when it happens (the end_training summary repeats it with the journal).
  CHECK(warnings.count({"failed and is disabled", "refused the API key", server.url().c_str(),
                        "WANDB_API_KEY"}) == 1);
  for (const auto& message : warnings.messages()) CHECK(message.find(bad_key) == std::string::npos);
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.path())) {
    if (!entry.is_regular_file()) continue;
    INFO(entry.path());
    CHECK(accel::test::read_file(entry.path()).find(bad_key) == std::string::npos);
  }
}

TEST_CASE("an online run whose server never answered is uploaded whole by wandb sync") {
  TempDir dir;
  const int port = accel::test::unused_port(dir.path());
  const std::string away = "http://127.0.0.1:" + std::to_string(port);
  std::filesystem::path run_dir;
  std::string run_id;
  {
    OnlineEnv env(away);
    WandbTracker tracker(tracker_init("synced", dir.path()));
    tracker.start();  // warns: the server is away
    tracker.store_init_configuration({{"lr", 0.5}});
    for (int s = 0; s < 5; ++s) tracker.log(Values{{"loss", 10.0 - s}}, s);
    CHECK_THROWS_AS(tracker.finish(RunStatus::finished), TrackerUnavailable);
    CHECK(tracker.acknowledged() == 0);
    run_dir = tracker.run_dir();
    run_id = tracker.run_id();
  }
  REQUIRE(run_dir.filename().string().starts_with("run-"));

  RecordingServer server(dir.path());
  const auto home = dir.path() / "home";
  std::filesystem::create_directories(home);
  // From inside the temporary directory: wandb sync writes its debug logs under ./wandb.
  const std::string command = "cd " + shell_quote(dir.path().string()) + " && " +
                              accel::test::wandb_env(home) + "WANDB_BASE_URL=" + server.url() +
                              " WANDB_API_KEY=" + kApiKey + " " + accel::test::venv_bin("wandb") +
                              " sync --no-skip-online " + shell_quote(run_dir.string()) + " 2>&1";
  const auto result = accel::test::run_shell(command);
  INFO(result.output);
  REQUIRE(result.exit_code() == 0);
  const json state = server.state();
  const std::string key = "recorder/synced/" + run_id;
  REQUIRE(state["runs"].contains(key));
  const json& run = state["runs"][key];
  const auto rows = history_rows(run);
  REQUIRE(rows.size() == 5);
  for (int s = 0; s < 5; ++s) CHECK(rows[s]["loss"].get<double>() == 10.0 - s);
  CHECK(run["config"]["lr"]["value"] == 0.5);
  CHECK(run["complete"] == true);
  CHECK(run["exitcode"] == 0);
}

TEST_CASE("log_with wandb through the hub streams an online run that ends complete") {
  TempDir dir;
  RecordingServer server(dir.path());
  OnlineEnv env(server.url());
  accel::TrackerHubOptions options;
  options.logging_dir = dir.path() / "logs";
  options.handle_signals = false;
  std::string run_id;
  {
    accel::TrackerHub hub(options);
    hub.init_trackers("hubproj", {{"epochs", 3}}, {"wandb"});
    run_id = std::any_cast<WandbTracker*>(hub.get_tracker("wandb").tracker())->run_id();
    for (int step = 0; step < 250; ++step) hub.log({{"loss", 1.0 / (step + 1)}}, step);
    hub.end_training();
  }
  const json state = server.state();
  const std::string key = "recorder/hubproj/" + run_id;
  REQUIRE(state["runs"].contains(key));
  const json& run = state["runs"][key];
  const auto rows = history_rows(run);
  REQUIRE(rows.size() == 250);
  for (int step = 0; step < 250; ++step) CHECK(rows[step]["trainer/global_step"] == step);
  CHECK(run["config"]["epochs"]["value"] == 3);
  CHECK(run["summary"]["_step"] == 249);
  CHECK(run["complete"] == true);
  CHECK(run["exitcode"] == 0);
}

TEST_CASE(
    "through the hub, a server that never answers stalls no log call and the hub journals "
    "what it did not get") {
  TempDir dir;
  const int port = accel::test::unused_port(dir.path());
  OnlineEnv env("http://127.0.0.1:" + std::to_string(port));
  accel::TrackerHubOptions options;
  options.logging_dir = dir.path() / "logs";
  options.journal_dir = dir.path() / "journal";
  options.handle_signals = false;
  options.end_training_timeout = std::chrono::seconds(5);
  accel::EndTrainingReport report;
  std::filesystem::path log_file;
  {
    accel::TrackerHub hub(options);
    hub.init_trackers("away", {{"epochs", 3}}, {"wandb"});
    log_file = std::any_cast<WandbTracker*>(hub.get_tracker("wandb").tracker())->log_file();
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
  // The .wandb file beside the run has every row (`wandb sync --no-skip-online` uploads it).
  const auto records = accel::test::strict_records(log_file);
  INFO(records.dump().substr(0, 500));
  int rows = 0;
  for (const auto& record : records["records"]) rows += record.contains("history") ? 1 : 0;
  CHECK(rows == 300);
  // ... and ends with the exit record, although the server never took the finish.
  REQUIRE(!records["records"].empty());
  CHECK(records["records"].back().contains("exit"));
}

TEST_CASE("rows waiting for an away server stay within max_waiting_mib; the hub keeps the rest") {
  TempDir dir;
  const int port = accel::test::unused_port(dir.path());
  OnlineEnv env("http://127.0.0.1:" + std::to_string(port));
  WandbTracker tracker(tracker_init("capped", dir.path(), {{"max_waiting_mib", 1}}));
  tracker.start();
  const std::string text(1000, 'x');
  int accepted = 0;
  bool refused = false;
  for (int step = 0; step < 3000 && !refused; ++step) {
    try {
      tracker.log(Values{{"note", text}}, step);
      ++accepted;
    } catch (const TrackerUnavailable& e) {
      refused = true;
      CHECK_THAT(e.what(), Catch::Contains("max_waiting_mib"));
    }
  }
  REQUIRE(refused);
  // About 1 MiB of ~1.1 kB history lines waited, and not a row more.
  CHECK(accepted > 700);
  CHECK(accepted < 1100);
  const auto records = accel::test::strict_records(tracker.log_file());
  int rows = 0;
  for (const auto& record : records["records"]) rows += record.contains("history") ? 1 : 0;
  CHECK(rows == accepted);  // a refused call wrote nothing
  CHECK(tracker.acknowledged() == 0);
}

TEST_CASE(
    "a resumed run continues the server's run at its next step, with its summary and config") {
  TempDir dir;
  RecordingServer server(dir.path());
  OnlineEnv env(server.url());
  ScopedEnv id("WANDB_RUN_ID", "resumed-run");
  {
    WandbTracker first(tracker_init("res", dir.path() / "a"));
    first.start();
    first.store_init_configuration({{"lr", 0.1}, {"seed", 7}});
    for (int s = 0; s < 3; ++s) first.log(Values{{"loss", 3.0 - s}, {"first", int64_t{1}}}, s);
    first.flush();
    first.finish(RunStatus::failed);
  }
  WandbTracker second(tracker_init("res", dir.path() / "b", {{"resume", "allow"}}));
  second.start();
  second.store_init_configuration({{"lr", 0.01}});
  second.log(Values{{"loss", 0.5}}, 3);
  second.log(Values{{"loss", 0.25}},
             std::nullopt);  // no step: the last one (3), as step_sync fills it in
  second.flush();
  second.finish(RunStatus::finished);

  const json state = server.state();
  const json& run = run_of(state, second, "res");
  const auto rows = history_rows(run);
  REQUIRE(rows.size() == 5);
  for (int s = 0; s < 5; ++s) CHECK(rows[s]["_step"] == s);
  CHECK(rows[3]["trainer/global_step"] == 3);
  CHECK(rows[4]["trainer/global_step"] == 3);
  CHECK(rows[4]["loss"] == 0.25);
  CHECK(run["summary"]["first"] == 1);  // kept from the first part
  CHECK(run["summary"]["loss"] == 0.25);
  CHECK(run["config"]["seed"]["value"] == 7);
  CHECK(run["config"]["lr"]["value"] == 0.01);
  CHECK(run["complete"] == true);
  CHECK(run["exitcode"] == 0);
  // The second part's .wandb file says it resumed, and where.
  const auto records = accel::test::strict_records(second.log_file());
  json run_record;
  for (const auto& record : records["records"]) {
    if (record.contains("run")) run_record = record["run"];
  }
  INFO("run record: " << run_record.dump());
  CHECK(run_record.value("resumed", false));
  CHECK(run_record.value("starting_step", std::string()) == "3");
}

TEST_CASE("resume \"must\" without the run and \"never\" with it each give one clear error") {
  TempDir dir;
  RecordingServer server(dir.path());
  OnlineEnv env(server.url());
  ScopedEnv id("WANDB_RUN_ID", "only-once");
  WandbTracker must(tracker_init("res", dir.path() / "a", {{"resume", "must"}}));
  CHECK_THROWS_WITH(must.start(), Catch::Contains("resume = \"must\"") &&
                                      Catch::Contains("recorder/res/only-once") &&
                                      !Catch::Contains(kApiKey));
  {
    WandbTracker first(tracker_init("res", dir.path() / "b"));
    first.start();
    first.log(Values{{"x", int64_t{1}}}, int64_t{0});
    first.flush();
    first.finish(RunStatus::finished);
  }
  WandbTracker never(tracker_init("res", dir.path() / "c", {{"resume", "never"}}));
  CHECK_THROWS_WITH(never.start(), Catch::Contains("resume = \"never\"") &&
                                       Catch::Contains("recorder/res/only-once"));
  CHECK_THROWS_WITH(WandbTracker(tracker_init("res", dir.path(), {{"resume", "sometimes"}})),
                    Catch::Contains("\"sometimes\"") && Catch::Contains("\"allow\""));
}

TEST_CASE(
    "a server that goes away mid-run: accel-launch sync delivers the journal into the same run, "
    "every row once and in order") {
  TempDir dir;
  auto server = std::make_unique<RecordingServer>(dir.path());
  const int port = server->port();
  OnlineEnv env(server->url());
  accel::TrackerHubOptions options;
  options.logging_dir = dir.path() / "logs";
  options.journal_dir = dir.path() / "journal";
  options.handle_signals = false;
  options.end_training_timeout = std::chrono::seconds(3);
  std::string run_id;
  accel::EndTrainingReport report;
  {
    accel::TrackerHub hub(options);
    hub.init_trackers("midrun", {{"epochs", 2}}, {"wandb"});
    run_id = std::any_cast<WandbTracker*>(hub.get_tracker("wandb").tracker())->run_id();
    for (int step = 0; step < 100; ++step) hub.log({{"loss", 1.0 / (step + 1)}}, step);
    REQUIRE(hub.flush());
    server->stop();
    for (int step = 100; step < 200; ++step) hub.log({{"loss", 1.0 / (step + 1)}}, step);
    report = hub.end_training();
  }
  REQUIRE(report.trackers.size() == 1);
  CHECK(report.trackers[0].delivered == 100);
  CHECK(report.trackers[0].journaled == 100);
  const auto journals = accel::find_journals(options.journal_dir);
  REQUIRE(journals.size() == 1);

  // The hub gave up on its worker at the end_training timeout; the worker ends its last attempt
  // and lets go of the journal. (In a training process that then exits, this is immediate.)
  auto sync_command = [&](int timeout_s) {
    return std::string(ACCEL_LAUNCH) + " sync --timeout " + std::to_string(timeout_s) + " " +
           shell_quote(journals[0].string()) + " 2>&1";
  };
  for (int wait = 0; wait < 60; ++wait) {
    const auto probe = accel::test::run_shell(sync_command(1));  // the server is still away
    if (probe.output.find("in use by another writer") == std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  server = std::make_unique<RecordingServer>(dir.path(), port);  // same port, same state file
  // In another process, as a user runs it (the environment gives it the server and the key).
  const auto sync = accel::test::run_shell(sync_command(60));
  INFO("sync output:\n" << sync.output);
  CHECK(sync.exit_code() == 0);
  CHECK(sync.output.find(kApiKey) == std::string::npos);
  CHECK(!std::filesystem::exists(journals[0]));  // everything delivered
  const json state = server->state();
  const std::string key = "recorder/midrun/" + run_id;
  REQUIRE(state["runs"].contains(key));
  const json& run = state["runs"][key];
  const auto rows = history_rows(run);
  REQUIRE(rows.size() == 200);
  for (int step = 0; step < 200; ++step) {
    CHECK(rows[step]["_step"] == step);
    CHECK(rows[step]["trainer/global_step"] == step);
  }
  CHECK(run["config"]["epochs"]["value"] == 2);
  CHECK(run["complete"] == true);
  CHECK(run["exitcode"] == 0);
}

namespace {

// The wandb SDK logging what the parity test logs, the way Lightning's WandbLogger does (the
// user's step as the x-axis metric trainer/global_step, W&B's _step counting rows), online to the
// same server. Prints the run id.
constexpr const char* kSdkParityRun = R"(
import json, sys, wandb
directory, config = sys.argv[1], json.loads(sys.argv[2])
run = wandb.init(project="parity", dir=directory, config=config)
run.define_metric("trainer/global_step")
run.define_metric("*", step_metric="trainer/global_step", step_sync=True)
run.define_metric("train/acc", step_metric="epoch", hidden=True)
for step in range(20):
    run.log({"train/loss": 1.0 / (step + 1), "train/acc": step * 0.05, "epoch": step // 5,
             "trainer/global_step": step * 10})
run.summary["best.acc"] = 0.95
print(run.id)
run.finish()
)";

// What a row, a summary or a config holds for the user: W&B's own bookkeeping keys (_runtime,
// _timestamp, _wandb) left out, _step kept.
json user_part(const json& object) {
  json out = json::object();
  for (const auto& [key, value] : object.items()) {
    if (key == "_runtime" || key == "_timestamp" || key == "_wandb") continue;
    out[key] = value;
  }
  return out;
}

}  // namespace

TEST_CASE("the wandb SDK logging the same data to the same server leaves the same information") {
  TempDir dir;
  RecordingServer server(dir.path());
  OnlineEnv env(server.url());
  ScopedEnv home("HOME", dir.str().c_str());
  ScopedEnv config_dir("WANDB_CONFIG_DIR", (dir / "wandb-config").c_str());
  ScopedEnv silent("WANDB_SILENT", "true");
  const json config = {{"lr", 0.001}, {"model", {{"hidden", 128}, {"act", "relu"}}}};

  std::string accel_id;
  {
    WandbTracker tracker(tracker_init("parity", dir / "accel"));
    tracker.start();
    tracker.store_init_configuration(config);
    tracker.define_metric("train/acc", "epoch", /*step_sync=*/true, /*hidden=*/true);
    for (int step = 0; step < 20; ++step) {
      tracker.log(Values{{"train/loss", 1.0 / (step + 1)},
                         {"train/acc", step * 0.05},
                         {"epoch", int64_t{step / 5}}},
                  step * 10);
    }
    tracker.set_summary("best.acc", 0.95);  // the handle's run.summary["best.acc"] = 0.95
    finish_when_back(tracker, RunStatus::finished);
    accel_id = tracker.run_id();
  }
  std::filesystem::create_directories(dir / "sdk");
  std::string sdk_id =
      accel::test::run_python_code(kSdkParityRun, {(dir / "sdk").string(), config.dump()});
  sdk_id.erase(sdk_id.find_last_not_of(" \n") + 1);

  const json state = server.state();
  INFO("runs: " << state["runs"].dump().substr(0, 3000));
  REQUIRE(state["runs"].contains("recorder/parity/" + accel_id));
  REQUIRE(state["runs"].contains("recorder/parity/" + sdk_id));
  const json& ours = state["runs"]["recorder/parity/" + accel_id];
  const json& theirs = state["runs"]["recorder/parity/" + sdk_id];

  const auto our_rows = history_rows(ours);
  const auto their_rows = history_rows(theirs);
  REQUIRE(our_rows.size() == 20);
  REQUIRE(their_rows.size() == 20);
  for (std::size_t i = 0; i < 20; ++i) {
    INFO("row " << i << ": accel " << our_rows[i].dump() << " sdk " << their_rows[i].dump());
    CHECK(user_part(our_rows[i]) == user_part(their_rows[i]));
  }
  CHECK(user_part(ours["summary"]) == user_part(theirs["summary"]));
  CHECK(user_part(ours["config"]) == user_part(theirs["config"]));
  // The metric definitions the UI draws with (define_metric, as Lightning makes them): the same
  // set (wandb-core's order is its Go map order).
  // wandb-core's order is Go map order, so the step metric's index ("5") is resolved to its name.
  auto metric_set = [](const json& run) {
    const json& all = run["config"]["_wandb"]["value"]["m"];
    std::multiset<std::string> metrics;
    for (json m : all) {
      if (m.contains("5")) m["5"] = all.at(m["5"].get<std::size_t>() - 1).value("1", "?");
      metrics.insert(m.dump());
    }
    return metrics;
  };
  INFO("sdk _wandb: " << theirs["config"]["_wandb"].dump());
  CHECK(metric_set(ours) == metric_set(theirs));
  CHECK(ours["complete"] == true);
  CHECK(theirs["complete"] == true);
  CHECK(ours["exitcode"] == theirs["exitcode"]);
  CHECK(ours["uploaded"].size() > 0);
}
