// What a user sees in the browser: a real `tensorboard` server (from .venv, on 127.0.0.1, stopped
// by PID; see query_server.py) serves our runs through its HTTP data API — scalars, text,
// histograms, images and the HParams tab (experiment + session groups with config next to metrics).
#include <catch2/catch.hpp>
#include <cmath>
#include <set>

#include "accel/tracking/trackers/tensorboard/tensorboard_tracker.hpp"
#include "tensorboard_test_support.hpp"

using accel::Histogram;
using accel::Image;
using accel::RunStatus;
using accel::ScalarGroup;
using accel::TensorBoardTracker;
using accel::TrackerInit;
using accel::test::TempDir;
using nlohmann::json;

namespace {

void write_run(const std::filesystem::path& logdir, const std::string& run, double lr,
               RunStatus status) {
  TensorBoardTracker tracker(accel::test::tracker_init(run, logdir));
  tracker.start();
  tracker.store_init_configuration(
      {{"lr", lr}, {"model", {{"hidden", 64}}}, {"optimizer", "adamw"}});
  for (int64_t step = 0; step < 20; ++step) {
    tracker.log(
        {{"train/loss", lr * 1000 / (step + 1)}, {"loss", ScalarGroup{{{"val", 0.5 + step}}}}},
        step);
  }
  tracker.log({{"summary", "**done**"},
               {"weights", Histogram::from_samples({1, 2, 3, 4})},
               {"digit", Image{2, 2, 1, {0, 64, 128, 255}}}},
              20);
  tracker.finish(status);
}

json query(const std::filesystem::path& logdir, const std::string& load_fast) {
  const json all_statuses = {"STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE",
                             "STATUS_RUNNING"};
  json queries = {
      {"runs", {"/data/runs", json::object()}},
      {"scalar_tags", {"/data/plugin/scalars/tags", json::object()}},
      {"loss", {"/data/plugin/scalars/scalars", {{"run", "run_a"}, {"tag", "train/loss"}}}},
      {"val", {"/data/plugin/scalars/scalars", {{"run", "run_b"}, {"tag", "loss/val"}}}},
      {"text", {"/data/plugin/text/text", {{"run", "run_a"}, {"tag", "summary"}}}},
      {"histograms",
       {"/data/plugin/histograms/histograms", {{"run", "run_a"}, {"tag", "weights"}}}},
      {"image_tags", {"/data/plugin/images/tags", json::object()}},
      {"layout", {"/data/plugin/custom_scalars/layout", json::object()}},
      {"experiment", {"/data/plugin/hparams/experiment", {{"request", {{"experimentName", ""}}}}}},
      {"session_groups",
       {"/data/plugin/hparams/session_groups",
        {{"request",
          {{"experimentName", ""},
           {"allowedStatuses", all_statuses},
           {"startIndex", 0},
           {"sliceSize", 100},
           {"colParams", json::array({{{"hparam", "lr"}, {"order", "ORDER_ASC"}}})}}}}}}};
  return json::parse(accel::test::run_python_script(
      accel::test::test_script("trackers/tensorboard/query_server.py"),
      {logdir.string(), load_fast, queries.dump()}));
}

}  // namespace

TEST_CASE("a real tensorboard server shows what we logged, HParams tab included") {
  TempDir dir;
  write_run(dir.path(), "run_a", 0.001, RunStatus::finished);
  write_run(dir.path(), "run_b", 0.01, RunStatus::failed);

  for (std::string load_fast : {"false", "true"}) {  // Python loader, and the Rust data server
    DYNAMIC_SECTION("load_fast=" << load_fast) {
      json seen = query(dir.path(), load_fast);
      CHECK(seen["runs"] == json::array({"run_a", "run_b"}));  // no stray runs from ScalarGroup
      CHECK(seen["scalar_tags"]["run_a"].contains("train/loss"));
      CHECK(seen["scalar_tags"]["run_a"].contains("loss/val"));
      CHECK(seen["scalar_tags"]["run_a"].size() == 2);

      auto loss = seen["loss"];  // [[wall_time, step, value], ...]
      REQUIRE(loss.size() == 20);
      for (int i = 0; i < 20; ++i) {
        CHECK(loss[i][1] == i);
        CHECK(loss[i][2].get<double>() == static_cast<float>(1.0 / (i + 1)));
      }
      CHECK(seen["val"][3][2] == 3.5);
      CHECK_THAT(seen["text"][0]["text"].get<std::string>(),
                 Catch::Contains("<strong>done</strong>"));
      CHECK(seen["text"][0]["step"] == 20);
      REQUIRE(seen["histograms"].size() == 1);
      CHECK(seen["histograms"][0][1] == 20);
      CHECK(seen["image_tags"]["run_a"].contains("digit"));
      // Custom Scalars tab: one chart per ScalarGroup key, its series overlaid (merged over both
      // runs).
      auto charts = seen["layout"]["category"][0]["chart"];
      REQUIRE(charts.size() == 1);
      CHECK(charts[0]["title"] == "loss");
      CHECK(charts[0]["multiline"]["tag"] == json::array({"^loss/val$"}));

      auto experiment = seen["experiment"];
      std::set<std::string> hparams, metrics;
      for (const auto& h : experiment["hparamInfos"]) hparams.insert(h["name"]);
      for (const auto& m : experiment["metricInfos"]) metrics.insert(m["name"]["tag"]);
      CHECK(hparams == std::set<std::string>{"lr", "model/hidden", "optimizer"});
      CHECK(metrics == std::set<std::string>{"train/loss", "loss/val"});

      auto groups = seen["session_groups"]["sessionGroups"];
      REQUIRE(groups.size() == 2);
      CHECK(groups[0]["hparams"]["lr"] == 0.001);
      CHECK(groups[0]["hparams"]["optimizer"] == "adamw");
      CHECK(groups[0]["sessions"][0]["status"] == "STATUS_SUCCESS");
      CHECK(groups[1]["hparams"]["lr"] == 0.01);
      CHECK(groups[1]["sessions"][0]["status"] == "STATUS_FAILURE");
      bool found_loss = false;
      for (const auto& mv : groups[0]["metricValues"]) {
        if (mv["name"]["tag"] == "train/loss") {
          found_loss = true;
          CHECK(mv["value"].get<double>() == Approx(0.05));  // last value, step 19
          CHECK(mv["trainingStep"] == 19);
        }
      }
      CHECK(found_loss);
    }
  }
}
