// examples/custom_tracker: runs the example and checks what its user-written tracker and the
// built-in csv and jsonl trackers wrote beside it.
#include <cstdlib>

#include "tracking_test_support.hpp"

using namespace accel;

TEST_CASE("the custom tracker example writes csv, jsonl and its own best_values.json") {
  test::TempDir dir;
  const std::string command =
      std::string(CUSTOM_TRACKER_EXE) + " '" + dir.path().string() + "' > /dev/null";
  REQUIRE(std::system(command.c_str()) == 0);

  auto best = nlohmann::json::parse(test::read_file(dir.path() / "best_values.json"));
  CHECK(best["status"] == "finished");
  CHECK(best["config"]["optimizer"]["name"] == "adamw");
  CHECK(best["best"]["train/loss"]["step"].get<int64_t>() > 200);
  CHECK(best["best"]["train/loss"]["value"].get<double>() < 0.3);
  CHECK(best["best"]["val/loss"]["step"] == 299);

  auto run = dir.path() / "custom_tracker" / "version_0";
  auto csv = test::read_file(run / "metrics.csv");
  CHECK(csv.rfind("step,train/loss,train/lr", 0) == 0);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 1 + 300 + 3);
  auto jsonl = test::read_file(run / "metrics.jsonl");
  CHECK(std::count(jsonl.begin(), jsonl.end(), '\n') == 303);

  auto registered =
      nlohmann::json::parse(test::read_file(dir.path() / "registered" / "best_values.json"));
  CHECK(registered["best"].contains("loss"));
}
