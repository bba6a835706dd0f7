// JsonlTracker: one JSON object per log call, every value kind, NaN/Inf spelled as documented,
// config.json, PNG media; read back with Python's json module and Pillow. Delivery:
// acknowledgements, resuming a run, and a full disk (a small tmpfs, see tests/support/small_disk.hpp).
#include "accel/tracking/trackers/jsonl_tracker.hpp"

#include <cmath>
#include <limits>

#include "accel/tracking/hub.hpp"
#include "small_disk.hpp"
#include "tracking_test_support.hpp"

using namespace accel;
using test::TempDir;

namespace {

TrackerInit jsonl_init(const std::filesystem::path& logging_dir) {
  TrackerInit init;
  init.run_name = "proj";
  init.logging_dir = logging_dir;
  return init;
}

// Every line a JSON object (json.loads), steps 0, 1, 2, ... without a gap, values {"i": step}, and
// the file ending in a line break; prints {"lines": n}.
const char* kCheckLines = R"PY(
import json, sys
data = open(sys.argv[1], "rb").read()
assert data == b"" or data.endswith(b"\n"), "the file ends with a partial line: %r" % data[-60:]
lines = [json.loads(line) for line in data.decode("utf-8").splitlines()]
for i, line in enumerate(lines):
    assert line["step"] == i and line["values"] == {"i": i}, (i, line)
print(json.dumps({"lines": len(lines)}))
)PY";

uint64_t whole_lines(const std::filesystem::path& path) {
  return nlohmann::json::parse(test::run_python_code(kCheckLines, {path}))["lines"].get<uint64_t>();
}

}  // namespace

TEST_CASE("jsonl writes one object per log call with step, time and every value kind") {
  TempDir dir;
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

  auto out = test::run_python_code(R"PY(
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
                                   {run});
  INFO("python said: " << out);
  const double time = std::stod(out);
  const double before_s = std::chrono::duration<double>(before.time_since_epoch()).count();
  CHECK(time >= before_s - 1e-3);
  CHECK(time < before_s + 60);
}

TEST_CASE("jsonl needs a logging directory") {
  CHECK_THROWS_AS(JsonlTracker(TrackerInit{"run", "", nlohmann::json::object(), ""}), InvalidValue);
}

TEST_CASE("jsonl holds records: every accepted call is acknowledged when it returns") {
  TempDir dir;
  JsonlTracker tracker(jsonl_init(dir.path()));
  CHECK(tracker.holds_records());
  CHECK(tracker.resume_info().is_null());
  tracker.start();
  const auto version = dir.path() / "proj" / "version_0";
  CHECK(tracker.resume_info() ==
        nlohmann::json({{"directory", std::filesystem::absolute(version).lexically_normal()}}));
  tracker.store_init_configuration({{"lr", 0.1}});
  CHECK(tracker.acknowledged() == 1);
  tracker.log({{"i", 0}}, 0);
  tracker.log({{"i", 1}}, 1);
  CHECK(tracker.acknowledged() == 3);
  CHECK(whole_lines(version / "metrics.jsonl") == 2);
  tracker.flush();
  CHECK(tracker.acknowledged() == 3);
  tracker.finish(RunStatus::finished);
  CHECK(tracker.acknowledged() == 4);
}

TEST_CASE("jsonl resumes a run in its directory: appends whole lines, numbers media after them") {
  TempDir dir;
  const std::vector<uint8_t> px(4, 200);
  nlohmann::json resume;
  {
    JsonlTracker first(jsonl_init(dir.path()));
    first.start();
    first.log({{"i", 0}, {"img", Image::from_uint8(px, 2, 2, 1)}}, 0);
    first.log({{"i", 1}}, 1);
    first.finish(RunStatus::failed);
    resume = first.resume_info();
  }
  const auto version = dir.path() / "proj" / "version_0";
  std::ofstream(version / "metrics.jsonl", std::ios::binary | std::ios::app)
      << R"({"step": 2, "ti)";  // torn by a killed process

  auto init = jsonl_init(dir.path());
  init.resume = resume;
  JsonlTracker second(init);
  second.start();
  CHECK(second.resume_info() == resume);
  second.log({{"i", 2}, {"img", Image::from_uint8(px, 2, 2, 1)}}, 2);
  second.finish(RunStatus::finished);
  CHECK_FALSE(std::filesystem::exists(dir.path() / "proj" / "version_1"));
  auto out = test::run_python_code(R"PY(
import json, os, sys
run = sys.argv[1]
lines = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl"), encoding="utf-8")]
assert [l["step"] for l in lines] == [0, 1, 2], lines
files = [lines[0]["values"]["img"]["file"], lines[2]["values"]["img"]["file"]]
assert files[0] != files[1], files
assert all(os.path.exists(os.path.join(run, f)) for f in files), files
print("ok")
)PY",
                                   {version});
  CHECK(out == "ok\n");
}

TEST_CASE("jsonl on a full disk: whole lines, the OS reason, acknowledged() = lines in the file",
          "[.disk_full]") {
  test::run_on_small_disk("[.jsonl_disk_full_child]");
}

TEST_CASE("jsonl disk-full child: runs on a 64 KiB tmpfs", "[.jsonl_disk_full_child]") {
  const auto disk = test::small_disk_dir();
  test::write_ballast(disk / "ballast", 16 * 1024);
  JsonlTracker tracker(jsonl_init(disk));
  tracker.start();
  tracker.store_init_configuration({{"lr", 0.1}});  // call 1
  const auto path = tracker.log_dir() / "metrics.jsonl";
  const auto refusal = test::log_until_refused([&](int64_t step) {
    tracker.log({{"i", step}}, step);
  });
  const int64_t logs = refusal.accepted;  // the call with step `logs` was refused
  CHECK_THAT(refusal.message, Catch::Contains("jsonl: cannot write '" + path.string() + "'") &&
                                  Catch::Contains("No space left on device"));
  CHECK(logs > 100);
  CHECK(whole_lines(path) == static_cast<uint64_t>(logs));
  CHECK(tracker.acknowledged() == 1 + static_cast<uint64_t>(logs));

  // Still full: the retry throws again and leaves the file as it was.
  const auto size = std::filesystem::file_size(path);
  CHECK_THROWS_AS(tracker.log({{"i", logs}}, logs), TrackerUnavailable);
  CHECK(std::filesystem::file_size(path) == size);
  // An image goes to its own file first: that fails too, naming it.
  const std::vector<uint8_t> px(64 * 64 * 3, 7);
  auto message = test::thrown<TrackerUnavailable>([&] {
    tracker.log({{"img", Image::from_uint8(px, 64, 64, 3)}}, logs);
  });
  CHECK_THAT(message, Catch::Contains("media") && Catch::Contains("No space left on device"));

  std::filesystem::remove(disk / "ballast");
  tracker.log({{"i", logs}}, logs);  // the refused call again, as the hub retries it
  tracker.finish(RunStatus::finished);
  CHECK(whole_lines(path) == static_cast<uint64_t>(logs) + 1);
  CHECK(tracker.acknowledged() == 1 + static_cast<uint64_t>(logs) + 2);
}
