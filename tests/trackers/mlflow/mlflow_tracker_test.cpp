// MlflowTracker and MlflowClient against a real `mlflow server` (one per test file), read back with
// the mlflow Python client.
#include "accel/tracking/trackers/mlflow/mlflow_tracker.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <iostream>
#include <limits>
#include <mutex>
#include <sstream>
#include <thread>

#include "accel/tracking/warnings.hpp"
#include "mlflow_test_server.hpp"

using namespace accel;
using nlohmann::json;

namespace {

test::MlflowServer& server() {
  static test::TempDir dir;
  static test::MlflowServer instance(dir.path());
  instance.start();
  return instance;
}

TrackerInit init(const std::string& experiment, json kwargs = json::object()) {
  kwargs["tracking_uri"] = server().uri();
  TrackerInit out;
  out.run_name = experiment;
  out.init_kwargs = std::move(kwargs);
  return out;
}

// Collects accel's warnings while alive.
class CaptureWarnings {
 public:
  CaptureWarnings()
      : old_(set_warning_handler([this](std::string_view message) {
          std::lock_guard lock(mutex_);
          text_ += std::string(message) + "\n";
        })) {}
  ~CaptureWarnings() { set_warning_handler(old_); }
  std::string text() const {
    std::lock_guard lock(mutex_);
    return text_;
  }

 private:
  mutable std::mutex mutex_;
  std::string text_;
  WarningHandler old_;
};

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE(
    "a full run: nested config with a 10 kB value, 5000 steps x 5 metrics, strings, an image") {
  MlflowTracker tracker(init("full-run", {{"run_name", "full"}}));
  CaptureWarnings captured;
  tracker.start();
  const json config = {{"lr", 0.001},
                       {"model", {{"hidden", 128}, {"act", "relu"}}},
                       {"notes", std::string(10000, 'n')},
                       {"layers", {64, 32}}};
  tracker.store_init_configuration(config);

  for (int64_t step = 0; step < 5000; ++step) {
    Values values;
    for (int k = 0; k < 5; ++k) values.set("train/m" + std::to_string(k), 0.001 * double(step) + k);
    tracker.log(values, step);
  }
  const double inf = std::numeric_limits<double>::infinity();
  tracker.log({{"special", std::nan("")}}, 0);
  tracker.log({{"special", inf}}, 1);
  tracker.log({{"special", -inf}}, 2);
  tracker.log({{"sample", "the quick brown fox"}, {"epoch_note", std::string("done")}}, 7);
  std::vector<uint8_t> pixels(8 * 6 * 3);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i);
  tracker.log({{"samples/digit", Image::from_uint8(pixels, 8, 6, 3)}}, 3);
  Table table{{"x", "label"}, {{1, "a"}, {2, "b"}}};
  tracker.log({{"preds", table}}, 4);
  tracker.finish(RunStatus::finished);

  auto* client = std::any_cast<MlflowClient*>(tracker.tracker());
  // 25,003 points in ≤ 1000-point batches: a handful of requests, not one per log call.
  CHECK(client->requests_sent() < 45);
  // The 10 kB value is cut, with exactly one warning that names it.
  CHECK(count(captured.text(), "cut to 6000") == 1);
  CHECK(captured.text().find("'notes'") != std::string::npos);

  const json run = test::read_run(server().uri(), client->run_id());
  CHECK(run["info"]["status"] == "FINISHED");
  CHECK(run["info"]["run_name"] == "full");
  CHECK(run["info"]["experiment_name"] == "full-run");
  CHECK(run["info"]["end_time"].get<int64_t>() >= run["info"]["start_time"].get<int64_t>());
  CHECK(run["params"]["lr"] == "0.001");
  CHECK(run["params"]["model/hidden"] == "128");
  CHECK(run["params"]["model/act"] == "relu");
  CHECK(run["params"]["layers"] == "[64,32]");
  CHECK(run["params"]["notes"] == std::string(6000, 'n'));
  CHECK(run["tags"]["mlflow.runName"] == "full");
  CHECK(run["tags"]["mlflow.source.type"] == "LOCAL");
  CHECK(run["tags"].contains("mlflow.user"));
  CHECK(run["tags"]["mlflow.source.name"].get<std::string>().find("mlflow_tracker_test") !=
        std::string::npos);

  for (int k = 0; k < 5; ++k) {
    const auto& history = run["metrics"]["train/m" + std::to_string(k)];
    REQUIRE(history.size() == 5000);
    for (int64_t step = 0; step < 5000; ++step) {
      const auto& point = history[static_cast<std::size_t>(step)];
      CHECK(point[0].get<int64_t>() == step);
      if (point[1].get<double>() != 0.001 * double(step) + k)
        FAIL("value differs at step " << step);
    }
  }
  const auto& special = run["metrics"]["special"];
  REQUIRE(special.size() == 3);
  CHECK(special[0][1] == "NaN");
  CHECK(special[1][1].get<double>() ==
        std::numeric_limits<double>::max());  // how MLflow stores +Inf
  CHECK(special[2][1].get<double>() == -std::numeric_limits<double>::max());

  const auto& artifacts = run["artifacts"];
  CHECK(artifacts["text/sample/step_7.txt"]["text"] == "the quick brown fox");
  CHECK(artifacts["text/epoch_note/step_7.txt"]["text"] == "done");
  // The image is a PNG that Pillow decodes back to the same pixels.
  REQUIRE(artifacts.contains("images/samples/digit/step_3.png"));
  const auto& image = artifacts["images/samples/digit/step_3.png"];
  CHECK(image["png_shape"] == json::array({8, 6, 3}));
  CHECK(image["png_mode"] == "RGB");
  int64_t sum = 0;
  for (auto p : pixels) sum += p;
  CHECK(image["png_sum"].get<int64_t>() == sum);
  const json logged_table =
      json::parse(artifacts["tables/preds/step_4.json"]["text"].get<std::string>());
  CHECK(logged_table["columns"] == json::array({"x", "label"}));
  CHECK(logged_table["data"] == json::array({json::array({1, "a"}), json::array({2, "b"})}));
}

TEST_CASE("tracker() unwraps to a client a program can call directly; resume, status") {
  MlflowTracker tracker(init("direct"));
  tracker.start();
  auto* client = std::any_cast<MlflowClient*>(tracker.tracker());
  REQUIRE(client != nullptr);
  CHECK(!client->run_id().empty());
  CHECK(!client->experiment_id().empty());
  // Called from another thread while the worker logs: the client is thread-safe.
  std::thread user([&] {
    client->log_param("seed", "42");
    client->set_tag("stage", "direct");
    for (int i = 0; i < 20; ++i) client->log_metric("direct_metric", i * 2.0, i);
    client->log_artifact_bytes("notes/hello.txt", "hello", "text/plain");
  });
  for (int64_t step = 0; step < 200; ++step) tracker.log({{"loss", 1.0 / double(step + 1)}}, step);
  user.join();
  test::TempDir dir;
  { std::ofstream(dir.path() / "report.md") << "# report\n"; }
  client->log_artifact(dir.path() / "report.md", "docs");
  tracker.finish(RunStatus::killed);
  const std::string first_run = client->run_id();

  // Resume the same run (MLFLOW_RUN_ID) from a second tracker, then end it FAILED.
  MlflowTracker resumed(
      init("ignored-when-resuming", {{"run_id", first_run}, {"tags", {{"resumed", "yes"}}}}));
  resumed.start();
  CHECK(resumed.client().run_id() == first_run);
  for (int64_t step = 200; step < 210; ++step)
    resumed.log({{"loss", 1.0 / double(step + 1)}}, step);
  resumed.finish(RunStatus::failed);

  const json run = test::read_run(server().uri(), first_run);
  CHECK(run["info"]["status"] == "FAILED");
  CHECK(run["info"]["experiment_name"] == "direct");
  CHECK(run["params"]["seed"] == "42");
  CHECK(run["tags"]["stage"] == "direct");
  CHECK(run["tags"]["resumed"] == "yes");
  CHECK(run["metrics"]["direct_metric"].size() == 20);
  CHECK(run["metrics"]["loss"].size() == 210);
  CHECK(run["metrics"]["loss"][209][0] == 209);
  CHECK(run["artifacts"]["notes/hello.txt"]["text"] == "hello");
  CHECK(run["artifacts"]["docs/report.md"]["text"] == "# report\n");
}

TEST_CASE("status KILLED is stored") {
  MlflowTracker tracker(init("statuses"));
  tracker.start();
  tracker.log({{"x", 1}}, 0);
  tracker.finish(RunStatus::killed);
  const json run = test::read_run(server().uri(), tracker.client().run_id());
  CHECK(run["info"]["status"] == "KILLED");
  CHECK(run["metrics"]["x"].size() == 1);
}

TEST_CASE("bad input: keys, long values, a changed param, direct-client misuse") {
  MlflowTracker tracker(init("bad-input"));
  CaptureWarnings captured;
  tracker.start();
  tracker.store_init_configuration(
      {{"batch size", 32}, {"opt", {{"name", "adam"}}}, {"opt/name", "sgd"}, {"w@rd", 1}});
  tracker.log({{"loss@train", 0.5}, {"acc//val/", 0.9}, {"../escape", 1.0}, {"loss#train", 0.25}},
              1);
  tracker.log({{"loss@train", 0.4}}, 2);
  // The same param with a different value: MLflow refuses; reported once, logging goes on.
  tracker.store_init_configuration({{"batch size", 64}});
  tracker.store_init_configuration({{"batch size", 128}});
  tracker.log({{"after", 1.0}}, 3);
  tracker.flush();

  auto& client = tracker.client();
  CHECK_THROWS_AS(client.log_metric("bad//key", 1.0), InvalidValue);
  CHECK_THROWS_WITH(client.log_metric("bad//key", 1.0), Catch::Contains("bad/key"));
  try {
    client.log_param("batch size", "256");
    FAIL("changing a param must be refused");
  } catch (const MlflowRequestError& e) {
    CHECK(e.status() == 400);
    CHECK(e.error_code() == "INVALID_PARAMETER_VALUE");
    CHECK(std::string(e.what()).find("batch size") != std::string::npos);
  }
  CHECK_THROWS_AS(client.log_artifact_bytes("../outside.txt", "x"), InvalidValue);
  CHECK_THROWS_AS(client.log_artifact("/no/such/file.txt"), InvalidValue);
  tracker.finish(RunStatus::finished);

  const std::string text = captured.text();
  CHECK(text.find("'loss@train' is logged to MLflow as 'loss_train'") != std::string::npos);
  CHECK(count(text, "'loss@train' is logged") == 1);  // once per key, not per call
  CHECK(text.find("as 'loss_train_2'") != std::string::npos);
  CHECK(count(text, "was not stored") == 1);  // the changed param: reported once
  CHECK(text.find("INVALID_PARAMETER_VALUE") != std::string::npos);

  const json run = test::read_run(server().uri(), client.run_id());
  CHECK(run["params"]["batch size"] == "32");
  CHECK(run["params"]["opt/name"] == "adam");  // nlohmann orders keys: "opt" before "opt/name"
  CHECK(run["params"]["opt/name_2"] == "sgd");
  CHECK(text.find("occurs twice after flattening") != std::string::npos);
  CHECK(run["params"]["w_rd"] == "1");
  CHECK(run["metrics"]["loss_train"].size() == 2);
  CHECK(run["metrics"]["loss_train_2"].size() == 1);
  CHECK(run["metrics"]["acc/val"].size() == 1);
  CHECK(run["metrics"]["__/escape"].size() == 1);
  CHECK(run["metrics"]["after"].size() == 1);
  CHECK(run["info"]["status"] == "FINISHED");
}

TEST_CASE("unreachable URI at start: clear warning, records refused fast for journaling") {
  const int port = test::free_port();  // nothing listens there
  TrackerInit nowhere;
  nowhere.run_name = "nowhere";
  nowhere.init_kwargs = {{"tracking_uri", "http://127.0.0.1:" + std::to_string(port)},
                         {"retry", {{"max_attempts", 2}, {"initial_backoff_ms", 10}}}};
  MlflowTracker tracker(nowhere);
  CaptureWarnings captured;
  CHECK_NOTHROW(tracker.start());
  CHECK(captured.text().find("127.0.0.1:" + std::to_string(port)) != std::string::npos);
  CHECK(captured.text().find("Training goes on") != std::string::npos);
  for (int i = 0; i < 50; ++i) {
    const auto begin = std::chrono::steady_clock::now();
    CHECK_THROWS_AS(tracker.log({{"x", 1.0}}, i), TrackerUnavailable);
    CHECK(std::chrono::steady_clock::now() - begin < std::chrono::milliseconds(500));
  }
  CHECK(tracker.pending_metrics() == 0);  // nothing was accepted: the journal holds it all
  CHECK_THROWS_AS(tracker.finish(RunStatus::finished), TrackerUnavailable);
}

TEST_CASE("two trackers racing to create the same experiment end up in it") {
  std::string id_a, id_b;
  MlflowTracker a(init("race-experiment")), b(init("race-experiment"));
  std::thread ta([&] { a.start(); });
  std::thread tb([&] { b.start(); });
  ta.join();
  tb.join();
  CHECK(a.client().experiment_id() == b.client().experiment_id());
  CHECK(a.client().run_id() != b.client().run_id());
  a.finish(RunStatus::finished);
  b.finish(RunStatus::finished);
}
