// JsonlTracker: one JSON object per log call, every value kind, NaN/Inf spelled as documented,
// config.json, PNG media; read back with Python's json module and Pillow.
#include "accel/tracking/jsonl_tracker.hpp"

#include <cmath>
#include <limits>

#include "accel/tracking/hub.hpp"
#include "tracking_test_support.hpp"

using namespace accel;
using test::ScratchDir;

TEST_CASE("jsonl writes one object per log call with step, time and every value kind") {
  ScratchDir dir;
  TrackerHubOptions o;
  o.project_dir = dir.path();
  o.handle_signals = false;
  TrackerHub hub(o);
  hub.init_trackers("proj", {{"lr", 0.1}, {"nested", {{"a", std::nan("")}}}}, {"jsonl"});
  std::vector<uint8_t> px = {0, 64, 128, 255, 10, 20, 30, 40, 50, 60, 70, 80};
  const double inf = std::numeric_limits<double>::infinity();
  const auto before = std::chrono::system_clock::now();
  hub.log({{"loss", 0.25},
           {"count", 3},
           {"nan", std::nan("")},
           {"inf", inf},
           {"ninf", -inf},
           {"text", "ünïcødé ✓"},
           {"image/sample", Image::from_uint8(px, 2, 2, 3)},
           {"hist", Histogram::from_bins({0, 1, 2}, {1, 2, 3})},
           {"raw", Histogram::from_samples({1, 2, 3})},
           {"table", Table{{"a", "b"}, {{1, "x"}, {2, "y"}}}},
           {"group", ScalarGroup{{{"train", 0.5}, {"val", 0.75}}}},
           {"键", 1}},
          7);
  hub.log({{"loss", 0.5}});
  hub.end_training();
  const auto run = dir.path() / "proj" / "version_0";

  auto out = test::run_python(R"PY(
import json, math, os, sys
from PIL import Image
run = sys.argv[1]
lines = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl"), encoding="utf-8")]
assert len(lines) == 2, lines
a, b = lines
v = a["values"]
assert a["step"] == 7 and b["step"] is None
assert v["loss"] == 0.25 and v["count"] == 3 and isinstance(v["count"], int)
assert float(v["nan"]) != float(v["nan"]) and float(v["inf"]) == math.inf and float(v["ninf"]) == -math.inf
assert v["text"] == "ünïcødé ✓" and v["键"] == 1
img = v["image/sample"]
assert img["type"] == "image" and (img["height"], img["width"], img["channels"]) == (2, 2, 3)
pixels = list(Image.open(os.path.join(run, img["file"])).convert("RGB").tobytes())
assert pixels == [0, 64, 128, 255, 10, 20, 30, 40, 50, 60, 70, 80], pixels
h = v["hist"]
assert h["type"] == "histogram" and h["bucket_limits"] == [0, 1, 2] and h["bucket_counts"] == [1, 2, 3] and h["count"] == 6
assert v["raw"]["samples"] == [1, 2, 3] and v["raw"]["min"] == 1 and v["raw"]["max"] == 3
assert v["table"] == {"type": "table", "columns": ["a", "b"], "rows": [[1, "x"], [2, "y"]]}
assert v["group"] == {"train": 0.5, "val": 0.75}
config = json.load(open(os.path.join(run, "config.json"), encoding="utf-8"))
assert config == {"lr": 0.1, "nested": {"a": "NaN"}}, config
print(a["time"])
)PY",
                              run);
  INFO("python said: " << out);
  const double time = std::stod(out);
  const double before_s = std::chrono::duration<double>(before.time_since_epoch()).count();
  CHECK(time >= before_s - 1e-3);
  CHECK(time < before_s + 60);
}

TEST_CASE("jsonl needs a logging directory") {
  CHECK_THROWS_AS(JsonlTracker(TrackerInit{"run", "", nlohmann::json::object(), ""}), InvalidValue);
}
