// TensorBoardTracker ("tensorboard") as TrackerHub drives it, checked with TensorBoard's own
// reader: run directory, every Value kind, HParams in the same run, hparams.yaml, status, bad
// input.
#include "accel/tracking/tensorboard_tracker.hpp"

#include <any>
#include <catch2/catch.hpp>
#include <fstream>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/hub.hpp"
#include "accel/tracking/registry.hpp"
#include "tensorboard_test_support.hpp"

using accel::Histogram;
using accel::Image;
using accel::RunStatus;
using accel::ScalarGroup;
using accel::Table;
using accel::TensorBoardTracker;
using accel::TensorBoardWriter;
using accel::TrackerInit;
using accel::Values;
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
    auto* writer = hub.get_tracker_handle_as<TensorBoardWriter>("tensorboard");
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
