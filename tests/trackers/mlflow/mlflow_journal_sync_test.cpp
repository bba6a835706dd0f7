// `accel-launch sync` against a real MLflow server: what a run could not deliver (the server was
// down the whole time, or went away just before end_training) is kept in the journal, and sync
// delivers it into the same run, once, in order, and ends the run FINISHED; a second sync sends
// nothing.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <thread>

#include "accel/tracking/hub.hpp"
#include "accel/tracking/trackers/mlflow/mlflow_client.hpp"
#include "accel/tracking/warnings.hpp"
#include "journal/journal.hpp"
#include "mlflow_test_server.hpp"
#include "shell.hpp"

using namespace accel;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

struct CommandResult {
  int status = -1;
  std::string output;
};

CommandResult run_sync(const std::filesystem::path& path) {
  const std::string command =
      std::string(ACCEL_LAUNCH) + " sync --timeout 60 '" + path.string() + "' 2>&1";
  const test::ShellResult result = test::run_shell(command);
  return {result.exit_code(), result.output};
}

std::string run_id_in(const std::string& output) {
  const std::string key = "\"run_id\":\"";
  const auto at = output.find(key);
  REQUIRE(at != std::string::npos);
  const auto begin = at + key.size();
  return output.substr(begin, output.find('"', begin) - begin);
}

// Every metric of the run has exactly the steps 0..n-1, once each, with the logged values.
void check_history(const json& run, const std::vector<std::string>& keys, int64_t n) {
  for (const auto& key : keys) {
    INFO("metric " << key);
    const auto& history = run.at("metrics").at(key);
    REQUIRE(history.size() == static_cast<std::size_t>(n));
    std::vector<int> seen(static_cast<std::size_t>(n), 0);
    for (const auto& point : history) {
      const int64_t step = point[0].get<int64_t>();
      REQUIRE(step >= 0);
      REQUIRE(step < n);
      ++seen[static_cast<std::size_t>(step)];
      CHECK(point[1].get<double>() == (key == "i" ? double(step) : double(step) * 0.5));
    }
    CHECK(std::count(seen.begin(), seen.end(), 1) == n);
  }
}

class QuietWarnings {
 public:
  QuietWarnings()
      : previous_(set_warning_handler([this](std::string_view m) {
          std::lock_guard lock(mutex_);
          text_ += std::string(m) + "\n";
        })) {}
  ~QuietWarnings() { set_warning_handler(previous_); }
  std::string text() {
    std::lock_guard lock(mutex_);
    return text_;
  }

 private:
  std::mutex mutex_;
  std::string text_;
  WarningHandler previous_;
};

TrackerHubOptions options_in(const std::filesystem::path& project) {
  TrackerHubOptions options;
  options.project_dir = project;
  options.handle_signals = false;
  options.retry_initial_delay = 20ms;
  options.retry_max_delay = 200ms;
  return options;
}

const json kMlflowKwargs = {{"mlflow",
                             {{"run_name", "journal-sync"},
                              {"flush_interval_ms", 200},
                              {"max_probe_interval_ms", 300},
                              {"retry", {{"max_attempts", 2}, {"initial_backoff_ms", 50}}}}}};

}  // namespace

TEST_CASE(
    "server down all along, 200 calls into a 20 kB queue: sync gives a FINISHED run with "
    "200 steps once, and a second sync sends nothing") {
  test::TempDir dir;
  test::MlflowServer server(dir.path() / "store");  // its port is chosen; it is not started yet
  ::setenv("MLFLOW_TRACKING_URI", server.uri().c_str(), 1);
  QuietWarnings warnings;
  const auto project = dir.path() / "project";
  TrackerHubOptions options = options_in(project);
  options.queue_bytes = 20'000;
  options.end_training_timeout = 2s;
  EndTrainingReport report;
  {
    TrackerHub hub(options);
    hub.init_trackers("journal-sync", {{"lr", 0.1}, {"model", {{"depth", 3}}}}, {"mlflow"},
                      kMlflowKwargs);
    for (int64_t i = 0; i < 200; ++i) hub.log({{"loss", double(i) * 0.5}, {"i", i}}, i);
    report = hub.end_training();
  }
  INFO("warnings:\n" << warnings.text());
  const auto& t = report.trackers.at(0);
  CHECK(t.logged == 200);
  CHECK(t.delivered == 0);
  CHECK(t.journaled == 200);
  CHECK(t.lost == 0);
  REQUIRE_FALSE(t.journal.empty());
  const JournalContents kept = read_journal_contents(t.journal);
  CHECK(kept.pending_logs == 200);
  CHECK(kept.pending.front().kind == RecordKind::config);
  CHECK(kept.pending.back().kind == RecordKind::finish);

  server.start();
  const CommandResult first = run_sync(project);
  INFO("sync output:\n" << first.output);
  CHECK(first.status == 0);
  CHECK(first.output.find("delivered 202 records (200 log records)") != std::string::npos);
  CHECK(first.output.find("run ended finished") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(t.journal));
  const std::string run_id = run_id_in(first.output);
  const json run = test::read_run(server.uri(), run_id);
  CHECK(run["info"]["status"] == "FINISHED");
  CHECK(run["info"]["run_name"] == "journal-sync");
  CHECK(run["params"]["lr"] == "0.1");
  CHECK(run["params"]["model/depth"] == "3");
  check_history(run, {"loss", "i"}, 200);

  const CommandResult second = run_sync(project);
  INFO("second sync output:\n" << second.output);
  CHECK(second.status == 0);
  CHECK(second.output.find("no journals to deliver") != std::string::npos);
  check_history(test::read_run(server.uri(), run_id), {"loss", "i"}, 200);
  server.stop();
}

TEST_CASE(
    "server killed 1 s before end_training: what it had not stored is journaled, and sync "
    "puts every step on the server once") {
  test::TempDir dir;
  test::MlflowServer server(dir.path() / "store");
  ::setenv("MLFLOW_TRACKING_URI", server.uri().c_str(), 1);
  server.start();
  QuietWarnings warnings;
  const auto project = dir.path() / "project";
  TrackerHubOptions options = options_in(project);
  options.end_training_timeout = 3s;
  EndTrainingReport report;
  std::string run_id;
  {
    TrackerHub hub(options);
    hub.init_trackers("journal-sync", {{"lr", 0.1}}, {"mlflow"}, kMlflowKwargs);
    for (int64_t i = 0; i < 2000; ++i) {
      hub.log({{"loss", double(i) * 0.5}, {"i", i}}, i);
      if (i % 100 == 0) std::this_thread::sleep_for(20ms);
      // The run must exist before the server goes away (on a loaded machine the tracker's
      // start-up can take longer than the whole loop): the first half is on the server.
      if (i == 999) REQUIRE(hub.flush());
    }
    REQUIRE_FALSE(hub.get_tracker<MlflowClient>("mlflow")->run_id().empty());
    server.kill_hard();
    std::this_thread::sleep_for(1s);
    report = hub.end_training();
    run_id = hub.get_tracker<MlflowClient>("mlflow")->run_id();
  }
  INFO("warnings:\n" << warnings.text());
  const auto& t = report.trackers.at(0);
  CHECK(t.logged == 2000);
  CHECK(t.delivered + t.journaled == 2000);
  CHECK(t.journaled > 0);
  CHECK(t.lost == 0);
  REQUIRE_FALSE(t.journal.empty());

  server.start();  // the same store: the run is still RUNNING
  CHECK(test::read_run(server.uri(), run_id)["info"]["status"] == "RUNNING");
  const CommandResult sync = run_sync(t.journal);
  INFO("sync output:\n" << sync.output);
  CHECK(sync.status == 0);
  CHECK(run_id_in(sync.output) == run_id);  // into the same run
  const json run = test::read_run(server.uri(), run_id);
  CHECK(run["info"]["status"] == "FINISHED");
  check_history(run, {"loss", "i"}, 2000);
  server.stop();
}
