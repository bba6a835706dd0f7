// CsvTracker: Lightning's layout, a header that widens by rewriting the file, scalars only,
// NaN/Inf, unicode and quoting; checked with Python's csv module, pandas and PyYAML (real readers).
#include "accel/tracking/csv_tracker.hpp"

#include <cmath>
#include <limits>

#include "accel/tracking/hub.hpp"
#include "tracking_test_support.hpp"

using namespace accel;
using test::ScratchDir;
using test::WarningCapture;

namespace {


// Python prints the rows as JSON: header + list of dicts (csv.DictReader), plus a pandas check.
const char* kReadCsv = R"PY(
import csv, json, math, sys
import pandas as pd
path = sys.argv[1]
with open(path, newline="", encoding="utf-8") as f:
    reader = csv.DictReader(f)
    rows = list(reader)
    header = reader.fieldnames
frame = pd.read_csv(path)
assert list(frame.columns) == header, (list(frame.columns), header)
assert len(frame) == len(rows)
print(json.dumps({"header": header, "rows": rows}))
)PY";

nlohmann::json read_csv(const std::filesystem::path& path) {
  return nlohmann::json::parse(test::run_python(kReadCsv, path));
}

}  // namespace

TEST_CASE("csv writes Lightning's layout: version_N/metrics.csv and hparams.yaml") {
  ScratchDir dir;
  for (int run = 0; run < 2; ++run) {
    TrackerHub hub(test::hub_options_in(dir));
    hub.init_trackers("digits", {{"lr", 0.001}, {"model", {{"hidden", 128}, {"act", "relu"}}}},
                      {"csv"});
    for (int64_t step = 0; step < 3; ++step)
      hub.log({{"loss", 1.0 / double(step + 1)}, {"epoch", step / 2}}, step);
    CHECK(hub.end_training().complete());
  }
  auto v0 = dir.path() / "digits" / "version_0";
  CHECK(std::filesystem::exists(v0 / "metrics.csv"));
  CHECK(std::filesystem::exists(dir.path() / "digits" / "version_1" / "metrics.csv"));
  CHECK(test::read_file(v0 / "metrics.csv") ==
        "step,loss,epoch\n0,1,0\n1,0.5,0\n2,0.3333333333333333,1\n");
  auto parsed = read_csv(v0 / "metrics.csv");
  CHECK(parsed["header"] == nlohmann::json({"step", "loss", "epoch"}));
  CHECK(parsed["rows"][2]["loss"] == "0.3333333333333333");

  auto yaml = test::run_python(R"PY(
import json, sys, yaml
print(json.dumps(yaml.safe_load(open(sys.argv[1], encoding="utf-8"))))
)PY",
                               v0 / "hparams.yaml");
  CHECK(nlohmann::json::parse(yaml) ==
        nlohmann::json({{"lr", 0.001}, {"model", {{"hidden", 128}, {"act", "relu"}}}}));
}

TEST_CASE("keys that appear later widen the header; the file stays one valid CSV") {
  ScratchDir dir;
  TrackerHub hub(test::hub_options_in(dir));
  hub.init_trackers("proj", {}, {"csv"});
  hub.log({{"train/loss", 0.5}}, 0);
  hub.log({{"train/loss", 0.4}}, 1);
  hub.log({{"val/acc", 0.9}}, 1);
  hub.flush();
  auto path = dir.path() / "proj" / "version_0" / "metrics.csv";
  CHECK(test::read_file(path) == "step,train/loss,val/acc\n0,0.5,\n1,0.4,\n1,,0.9\n");
  hub.log({{"lr", 0.01}, {"train/loss", 0.3}}, 2);
  hub.end_training();
  auto parsed = read_csv(path);
  CHECK(parsed["header"] == nlohmann::json({"step", "train/loss", "val/acc", "lr"}));
  REQUIRE(parsed["rows"].size() == 4);
  CHECK(parsed["rows"][0] ==
        nlohmann::json({{"step", "0"}, {"train/loss", "0.5"}, {"val/acc", ""}, {"lr", ""}}));
  CHECK(parsed["rows"][3] ==
        nlohmann::json({{"step", "2"}, {"train/loss", "0.3"}, {"val/acc", ""}, {"lr", "0.01"}}));
}

TEST_CASE("csv skips non-scalars with one warning per key and expands scalar groups") {
  ScratchDir dir;
  WarningCapture warnings;
  TrackerHub hub(test::hub_options_in(dir));
  hub.init_trackers("proj", {}, {"csv"});
  std::vector<uint8_t> px(4, 255);
  for (int64_t step = 0; step < 3; ++step) {
    hub.log({{"loss", 0.1},
             {"note", "text"},
             {"img", Image::from_uint8(px, 2, 2, 1)},
             {"hist", Histogram::from_samples({1, 2})},
             {"loss_by", ScalarGroup{{{"train", 0.3}, {"val", 0.4}}}}},
            step);
  }
  hub.log({{"only_text", "x"}}, 3);  // nothing scalar: no row
  hub.end_training();
  auto parsed = read_csv(dir.path() / "proj" / "version_0" / "metrics.csv");
  CHECK(parsed["header"] == nlohmann::json({"step", "loss", "loss_by/train", "loss_by/val"}));
  CHECK(parsed["rows"].size() == 3);
  CHECK(warnings.count({"csv", "'note'", "string", "skipped"}) == 1);
  CHECK(warnings.count({"csv", "'img'", "image"}) == 1);
  CHECK(warnings.count({"csv", "'hist'", "histogram"}) == 1);
  CHECK(warnings.count({"csv", "'only_text'"}) == 1);
}

TEST_CASE("csv writes NaN and infinities as Python does, and quotes awkward unicode keys") {
  ScratchDir dir;
  TrackerHub hub(test::hub_options_in(dir));
  hub.init_trackers("proj", {}, {"csv"});
  const double inf = std::numeric_limits<double>::infinity();
  hub.log({{"nan", std::nan("")},
           {"inf", inf},
           {"ninf", -inf},
           {"a,b \"q\"", 1},
           {"损失\n第二行", 2},
           {"big", int64_t{1} << 62}});
  hub.end_training();
  auto out = test::run_python(R"PY(
import csv, json, math, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8")))
r = rows[0]
assert math.isnan(float(r["nan"])) and float(r["inf"]) == math.inf and float(r["ninf"]) == -math.inf
assert r["a,b \"q\""] == "1" and r["损失\n第二行"] == "2" and int(r["big"]) == 2**62 and r["step"] == ""
print("ok")
)PY",
                              dir.path() / "proj" / "version_0" / "metrics.csv");
  CHECK(out == "ok\n");
}

TEST_CASE("hparams.yaml holds nested, unicode and non-JSON config values") {
  nlohmann::json config = {{"name", "实验 \"1\""},
                           {"lr", 1e-3},
                           {"nan", std::nan("")},
                           {"layers", {64, {{"k", 3}}, nlohmann::json::array()}},
                           {"empty", nlohmann::json::object()},
                           {"flag", true},
                           {"none", nullptr}};
  ScratchDir dir;
  auto path = dir.path() / "h.yaml";
  std::ofstream(path) << to_yaml(config);
  auto out = test::run_python(R"PY(
import json, math, sys, yaml
d = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
assert math.isnan(d.pop("nan"))
print(json.dumps(d, ensure_ascii=False))
)PY",
                              path);
  config.erase("nan");
  CHECK(nlohmann::json::parse(out) == config);
  CHECK(to_yaml(nlohmann::json::object()) == "{}\n");
}

TEST_CASE("csv needs a logging directory") {
  CHECK_THROWS_AS(CsvTracker(TrackerInit{"run", "", nlohmann::json::object(), ""}), InvalidValue);
}
