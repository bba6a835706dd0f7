// TensorBoardTracker ("tensorboard") as TrackerHub drives it, checked with TensorBoard's own
// reader: run directory, every Value kind, HParams in the same run, hparams.yaml, status, bad
// input. Delivery: acknowledgements (flush, background flush), resuming a run in a new events file,
// and a full disk (a small tmpfs, see tests/support/small_disk.hpp).
#include "accel/tracking/trackers/tensorboard/tensorboard_tracker.hpp"

#include <any>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <thread>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/hub.hpp"
#include "accel/tracking/registry.hpp"
#include "small_disk.hpp"
#include "tensorboard_test_support.hpp"

using namespace accel;
using accel::test::read_events;
using accel::test::TempDir;
using nlohmann::json;

TEST_CASE("a whole run: scalars, groups, text, table, image, histogram and a working HParams tab") {
  TempDir dir;
  const json config = {
      {"lr", 0.001}, {"epochs", 3}, {"model", {{"hidden", 128}, {"act", "gelu"}}}, {"amp", false}};
  TensorBoardTracker tracker(accel::test::tracker_init("digits", dir.path(), {{"flush_secs", 5}}));
  CHECK(tracker.run_dir() == dir.path() / "digits");
  tracker.start();
  tracker.store_init_configuration(config);
  for (int64_t step = 0; step < 5; ++step) {
    tracker.log({{"train/loss", 1.0 / (step + 1)}, {"lr", 0.001}}, step);
  }
  tracker.log({{"loss", ScalarGroup{{{"train", 0.25}, {"val", 0.5}}}}}, 5);
  tracker.log({{"note", "epoch done"},
               {"preds", Table{{"id", "label"}, {{1, "cat"}, {2, "a|b"}}}},
               {"sample", Image{1, 2, 3, {255, 0, 0, 0, 255, 0}}},
               {"weights", Histogram::from_samples({1, 2, 2, 3})}},
              6);
  tracker.log({{"val/accuracy", 0.9}}, std::nullopt);  // no step: 7 log calls came before → step 7
  tracker.finish(RunStatus::finished);

  json seen = read_events(dir.path() / "digits");
  CHECK(seen["files"].size() == 1);
  CHECK(seen["reencode_mismatches"] == 0);
  CHECK(seen["scalars"]["train/loss"].size() == 5);
  CHECK(seen["scalars"]["train/loss"][4] == json::parse("[4, 0.20000000298023224]"));
  CHECK(seen["scalars"]["loss/train"] == json::parse("[[5, 0.25]]"));
  CHECK(seen["scalars"]["loss/val"] == json::parse("[[5, 0.5]]"));
  CHECK(seen["scalars"]["val/accuracy"][0][0] == 7);
  CHECK(seen["texts"]["note"] == json::parse(R"([[6, "epoch done"]])"));
  CHECK(seen["texts"]["preds"][0][1] == "| id | label |\n|---|---|\n| 1 | cat |\n| 2 | a\\|b |");
  CHECK(seen["images"]["sample"][0]["pixels"] == "ff000000ff00");
  CHECK(seen["histograms"]["weights"][0]["num"] == 4);

  auto hp = seen["hparams"];
  auto start = hp["_hparams_/session_start_info"]["session_start_info"];
  CHECK(start["hparams"] == json({{"lr", 0.001},
                                  {"epochs", 3.0},
                                  {"model/hidden", 128.0},
                                  {"model/act", "gelu"},
                                  {"amp", false}}));
  auto experiment = hp["_hparams_/experiment"]["experiment"];
  std::vector<std::string> metrics;
  for (const auto& m : experiment["metric_infos"]) metrics.push_back(m["name"]["tag"]);
  CHECK(metrics ==
        std::vector<std::string>{"train/loss", "lr", "loss/train", "loss/val", "val/accuracy"});
  CHECK(experiment["hparam_infos"].size() == 5);
  CHECK(hp["_hparams_/session_end_info"]["session_end_info"]["status"] == "STATUS_SUCCESS");
  CHECK(seen["hparams_yaml"] == config);
}

TEST_CASE("tensorboard is a registered built-in that needs a logging directory") {
  auto registration = accel::find_tracker("tensorboard");
  REQUIRE(registration.has_value());
  CHECK(registration->requires_logging_directory);
  CHECK_FALSE(registration->unavailable_reason);
  TempDir dir;
  auto tracker = registration->factory(accel::test::tracker_init("proj", dir.path()));
  CHECK(tracker->name() == "tensorboard");
  tracker->start();
  auto* writer = std::any_cast<TensorBoardWriter*>(tracker->tracker());
  REQUIRE(writer != nullptr);
  writer->add_scalar("direct", 2.0, 3);  // the unwrapped writer is usable directly
  tracker->finish(RunStatus::killed);
  auto seen = read_events(dir.path() / "proj");
  CHECK(seen["scalars"]["direct"] == json::parse("[[3, 2.0]]"));
  CHECK(seen["hparams"].empty());  // no configuration stored, no HParams summaries
}

TEST_CASE(
    "failed and killed runs end with STATUS_FAILURE; hparams_experiment=false leaves it to "
    "TensorBoard") {
  TempDir dir;
  TensorBoardTracker tracker(
      accel::test::tracker_init("r", dir.path(), {{"hparams_experiment", false}}));
  tracker.start();
  tracker.store_init_configuration({{"seed", 1}});
  tracker.log({{"loss", 1.0}}, 0);
  tracker.finish(RunStatus::killed);
  auto hp = read_events(dir.path() / "r")["hparams"];
  CHECK_FALSE(hp.contains("_hparams_/experiment"));
  CHECK(hp["_hparams_/session_end_info"]["session_end_info"]["status"] == "STATUS_FAILURE");
}

TEST_CASE(
    "keys that clean to the same tag are rejected; the other values of the call are written") {
  TempDir dir;
  TensorBoardTracker tracker(accel::test::tracker_init("r", dir.path()));
  tracker.start();
  tracker.log({{"a b", 1.0}}, 0);
  try {
    tracker.log({{"ok", 2.0}, {"a_b", 3.0}, {"bad image", Image{0, 0, 3, {}}}}, 1);
    FAIL("expected accel::InvalidValue");
  } catch (const accel::InvalidValue& e) {
    CHECK_THAT(e.what(), Catch::Contains("'a b' and 'a_b'") && Catch::Contains("0x0x3"));
  }
  tracker.log({{"NaN", std::nan("")}, {"inf", 1e300 * 1e300}}, 2);
  tracker.finish(RunStatus::finished);
  auto scalars = read_events(dir.path() / "r")["scalars"];
  CHECK(scalars["a_b"] == json::parse("[[0, 1.0]]"));
  CHECK(scalars["ok"] == json::parse("[[1, 2.0]]"));
  CHECK(scalars["NaN"] == json::parse(R"([[2, "nan"]])"));
  CHECK(scalars["inf"] == json::parse(R"([[2, "inf"]])"));
}

TEST_CASE(
    "an unwritable logging directory fails at construction and in start() with a clear message") {
  TempDir dir;
  auto file = dir.path() / "file";
  std::ofstream(file) << "x";
  try {
    TensorBoardTracker tracker(accel::test::tracker_init("run", file));
    FAIL("expected accel::TrackerError");
  } catch (const accel::TrackerError& e) {
    CHECK_THAT(e.what(), Catch::Contains((file / "run").string()) && Catch::Contains("writable"));
  }
  // The directory disappears (replaced by a file) between construction and start().
  auto logdir = dir.path() / "logs";
  TensorBoardTracker tracker(accel::test::tracker_init("run", logdir));
  std::filesystem::remove_all(logdir);
  std::ofstream(logdir) << "x";
  try {
    tracker.start();
    FAIL("expected accel::TrackerError");
  } catch (const accel::TrackerError& e) {
    CHECK_THAT(e.what(),
               Catch::Contains((logdir / "run").string()) && Catch::Contains("logging_dir"));
  }
}

TEST_CASE(
    "through TrackerHub: log_with tensorboard, get_tracker unwraps to the writer, end_training") {
  TempDir dir;
  {
    accel::TrackerHubOptions options;
    options.project_dir = dir.path();
    options.handle_signals = false;
    accel::TrackerHub hub(options);
    hub.init_trackers("proj", {{"lr", 0.1}, {"opt", {{"name", "sgd"}}}}, {"tensorboard"},
                      {{"tensorboard", {{"flush_secs", 1}}}});
    for (int64_t step = 0; step < 10; ++step) hub.log({{"loss", 1.0 - step * 0.1}}, step);
    hub.log({{"loss", ScalarGroup{{{"val", 0.7}}}}}, 10);
    auto* writer = hub.get_tracker<TensorBoardWriter>("tensorboard");
    REQUIRE(writer != nullptr);
    writer->add_text("direct", "from the unwrapped writer", 11);
    auto report = hub.end_training();
    CHECK(report.complete());
  }
  auto seen = read_events(dir.path() / "proj");
  CHECK(seen["scalars"]["loss"].size() == 10);
  CHECK(seen["scalars"]["loss/val"] == json::parse("[[10, 0.699999988079071]]"));
  CHECK(seen["texts"]["direct"][0][1] == "from the unwrapped writer");
  CHECK(seen["hparams"]["_hparams_/session_start_info"]["session_start_info"]["hparams"] ==
        json({{"lr", 0.1}, {"opt/name", "sgd"}}));
  CHECK(seen["hparams"]["_hparams_/session_end_info"]["session_end_info"]["status"] ==
        "STATUS_SUCCESS");
  CHECK(seen["hparams_yaml"] == json({{"lr", 0.1}, {"opt", {{"name", "sgd"}}}}));
}

TEST_CASE("through TrackerHub: an unwritable logging directory fails init_trackers") {
  TempDir dir;
  auto file = dir.path() / "file";
  std::ofstream(file) << "x";
  accel::TrackerHubOptions options;
  options.project_dir = file;
  options.handle_signals = false;
  accel::TrackerHub hub(options);
  try {
    hub.init_trackers("proj", json::object(), {"tensorboard"});
    FAIL("expected init_trackers to throw");
  } catch (const accel::Error& e) {
    CHECK_THAT(e.what(), Catch::Contains((file / "proj").string()));
  }
}

TEST_CASE("bad init_kwargs and a missing logging directory are rejected at construction") {
  TempDir dir;
  auto rejects = [&](json kwargs, const std::string& text) {
    try {
      TensorBoardTracker tracker(accel::test::tracker_init("r", dir.path(), kwargs));
      FAIL("expected accel::InvalidValue for " << kwargs.dump());
    } catch (const accel::InvalidValue& e) {
      CHECK_THAT(e.what(), Catch::Contains(text));
    }
  };
  rejects({{"flush_secs", -1}}, "flush_secs");
  rejects({{"flush_secs", "often"}}, "flush_secs");
  rejects({{"log_dir", "/tmp"}}, "known options");
  rejects({{"filename_suffix", "a/b"}}, "filename_suffix");
  CHECK_THROWS_AS(TensorBoardTracker(accel::test::tracker_init("r", "")), accel::InvalidValue);
}

namespace {

std::string absolute_name(const std::filesystem::path& dir) {
  return std::filesystem::absolute(dir).lexically_normal().string();
}

// Waits up to 10 s for acknowledged() to reach `count`.
bool acknowledged_soon(const TensorBoardTracker& tracker, uint64_t count) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (tracker.acknowledged() < count && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return tracker.acknowledged() == count;
}

}  // namespace

TEST_CASE("tensorboard holds records: acknowledged() counts the calls its writer has written") {
  TempDir dir;
  TensorBoardTracker tracker(accel::test::tracker_init("r", dir.path(), {{"flush_secs", 1000}}));
  CHECK(tracker.holds_records());
  CHECK(tracker.resume_info().is_null());
  tracker.start();
  CHECK(tracker.resume_info() == json({{"directory", absolute_name(dir.path() / "r")}}));
  tracker.store_init_configuration({{"lr", 0.1}});  // 1: written at once (the HParams tab)
  CHECK(tracker.acknowledged() == 1);
  for (int64_t step = 0; step < 3; ++step) tracker.log({{"loss", 1.0}}, step);  // 2-4: buffered
  CHECK(tracker.acknowledged() == 1);
  tracker.flush();
  CHECK(tracker.acknowledged() == 4);
  tracker.log({}, 3);  // 5: no events, and nothing waits before it
  CHECK(tracker.acknowledged() == 5);
  tracker.log({{"loss", 2.0}}, 4);  // 6: buffered
  CHECK(tracker.acknowledged() == 5);
  tracker.finish(RunStatus::finished);  // 7
  CHECK(tracker.acknowledged() == 7);
  CHECK(read_events(dir.path() / "r")["scalars"]["loss"].size() == 4);
}

TEST_CASE("tensorboard acknowledges what the writer's background flush has written") {
  TempDir dir;
  TensorBoardTracker tracker(accel::test::tracker_init("r", dir.path(), {{"flush_secs", 0.05}}));
  tracker.start();
  tracker.log({{"loss", 1.0}}, 0);
  tracker.log({{"loss", 2.0}}, 1);
  CHECK(acknowledged_soon(tracker, 2));  // no flush() call: the writer's own flush did it
  tracker.finish(RunStatus::finished);
  CHECK(tracker.acknowledged() == 3);
}

TEST_CASE("tensorboard resumes a run: a new events file in the same run directory") {
  TempDir dir;
  json resume;
  {
    TensorBoardTracker first(accel::test::tracker_init("r", dir.path()));
    first.start();
    for (int64_t step = 0; step < 3; ++step) first.log({{"loss", double(step)}}, step);
    first.finish(RunStatus::failed);
    resume = first.resume_info();
  }
  // As `accel-launch sync` does: the journal's resume info, whatever the other fields say.
  auto init = accel::test::tracker_init("elsewhere", dir.path() / "other");
  init.resume = resume;
  TensorBoardTracker second(init);
  CHECK(second.run_dir() == absolute_name(dir.path() / "r"));
  second.start();
  CHECK(second.resume_info() == resume);
  for (int64_t step = 3; step < 5; ++step) second.log({{"loss", double(step)}}, step);
  second.finish(RunStatus::finished);
  CHECK_FALSE(std::filesystem::exists(dir.path() / "other" / "elsewhere"));
  auto seen = read_events(dir.path() / "r");
  CHECK(seen["files"].size() == 2);
  CHECK(seen["scalars"]["loss"] ==
        json::parse("[[0, 0.0], [1, 1.0], [2, 2.0], [3, 3.0], [4, 4.0]]"));
}

TEST_CASE("tensorboard on a full disk: whole records, the OS reason, acknowledged() = the file",
          "[.disk_full]") {
  accel::test::run_on_small_disk("[.tensorboard_disk_full_child]");
}

namespace {

// Logs one scalar per call until a call throws; returns the calls accepted and the error. With
// pause_every, sleeps now and then so that the writer's background flush runs.
std::pair<int64_t, std::string> log_until_full(TensorBoardTracker& tracker, int64_t pause_every) {
  int64_t logs = 0;
  std::string error;
  for (; logs < 1'000'000; ++logs) {
    if (pause_every > 0 && logs % pause_every == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    try {
      tracker.log({{"loss", double(logs)}}, logs);
    } catch (const accel::TrackerError& e) {
      error = e.what();
      break;
    }
  }
  return {logs, error};
}

// The scalars TensorBoard reads in run (a gap-free prefix of the steps logged): how many. The
// events file must hold whole records only, every CRC valid.
uint64_t scalars_in(const std::filesystem::path& run, const std::filesystem::path& file) {
  accel::test::parse_records_strictly(file);
  auto loss = read_events(run)["scalars"]["loss"];
  for (std::size_t i = 0; i < loss.size(); ++i) CHECK(loss[i][0] == i);
  return static_cast<uint64_t>(loss.size());
}

void empty_directory(const std::filesystem::path& dir) {
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::filesystem::remove_all(entry.path());
  }
}

}  // namespace

TEST_CASE("tensorboard disk-full child: runs on a 64 KiB tmpfs", "[.tensorboard_disk_full_child]") {
  const auto disk = accel::test::small_disk_dir();
  empty_directory(disk);  // what an earlier section left
  const auto full = Catch::Contains("No space left on device");
  SECTION("the writer's full buffer cannot be written") {
    TensorBoardTracker tracker(accel::test::tracker_init("r", disk, {{"flush_secs", 1000}}));
    tracker.start();
    tracker.store_init_configuration({{"lr", 0.1}});  // call 1
    const auto file = tracker.writer()->file_path();
    auto [logs, error] = log_until_full(tracker, 0);
    CHECK_THAT(error, Catch::Contains(file.string()) && full);
    const uint64_t in_file = scalars_in(disk / "r", file);
    CHECK(in_file > 100);
    CHECK(in_file < static_cast<uint64_t>(logs));  // the rest was buffered and is lost
    CHECK(tracker.acknowledged() == 1 + in_file);
    // Every later call says so, instead of accepting what cannot be written.
    CHECK_THROWS_AS(tracker.log({{"loss", 0.0}}, logs), accel::TrackerError);
    CHECK_THROWS_AS(tracker.flush(), accel::TrackerError);
    CHECK_THROWS_AS(tracker.finish(RunStatus::finished), accel::TrackerError);
    CHECK(tracker.acknowledged() == 1 + in_file);
  }

  SECTION("the background flush fills the disk") {
    TensorBoardTracker tracker(accel::test::tracker_init("r", disk, {{"flush_secs", 0.01}}));
    tracker.start();
    const auto file = tracker.writer()->file_path();
    auto [logs, error] = log_until_full(tracker, 100);
    CHECK_THAT(error, Catch::Contains(file.string()) && full);
    const uint64_t in_file = scalars_in(disk / "r", file);
    CHECK(in_file > 100);
    CHECK(tracker.acknowledged() == in_file);
  }
}

// Through the hub, the events that reached the file before the failure count as delivered (the
// tracker broke, but what it acknowledged before is still read), and only the others are journaled.
TEST_CASE("tensorboard on a full disk through the hub: delivered = what the file holds",
          "[.disk_full]") {
  accel::test::run_on_small_disk("[.tensorboard_hub_disk_full_child]");
}

TEST_CASE("tensorboard hub disk-full child: runs on a 64 KiB tmpfs",
          "[.tensorboard_hub_disk_full_child]") {
  const auto disk = accel::test::small_disk_dir();
  const auto full = Catch::Contains("No space left on device");
  TempDir journal;  // not on the small disk
  accel::TrackerHubOptions options;
  options.project_dir = disk;
  options.journal_dir = journal.path();
  options.handle_signals = false;
  accel::TrackerHub hub(options);
  hub.init_trackers("hub", json::object(), {"tensorboard"});
  const uint64_t logs = 20000;  // about 700 KiB of events
  for (uint64_t step = 0; step < logs; ++step) {
    hub.log({{"loss", double(step)}}, static_cast<int64_t>(step));
  }
  auto report = hub.end_training();
  REQUIRE(report.trackers.size() == 1);
  const auto& delivery = report.trackers[0];
  CHECK_THAT(delivery.error, full);
  CHECK(delivery.logged == logs);
  const uint64_t in_file = scalars_in(disk / "hub", accel::test::only_events_file(disk / "hub"));
  CHECK(in_file > 100);
  CHECK(delivery.delivered == in_file);
  CHECK(delivery.delivered + delivery.journaled + delivery.lost == delivery.logged);
}
