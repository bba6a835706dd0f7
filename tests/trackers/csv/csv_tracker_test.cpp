// CsvTracker: Lightning's layout, a header that widens by rewriting the file, scalars only,
// NaN/Inf, unicode and quoting; checked with Python's csv module, pandas and PyYAML (real readers).
// Delivery: acknowledgements, resuming a run, and a full disk (a small tmpfs, see
// tests/support/small_disk.hpp).
#include "accel/tracking/trackers/csv_tracker.hpp"

#include <cmath>
#include <limits>

#include "accel/tracking/hub.hpp"
#include "accel/tracking/journal_sync.hpp"
#include "small_disk.hpp"
#include "tracking_test_support.hpp"

using namespace accel;
using test::TempDir;
using test::WarningCapture;

namespace {

TrackerInit csv_init(const std::filesystem::path& logging_dir,
                     nlohmann::json init_kwargs = nlohmann::json::object()) {
  TrackerInit init;
  init.run_name = "proj";
  init.logging_dir = logging_dir;
  init.init_kwargs = std::move(init_kwargs);
  return init;
}

std::string absolute_name(const std::filesystem::path& dir) {
  return std::filesystem::absolute(dir).lexically_normal().string();
}

// Every row whole, with "step,a,b" cells step == a == b, the steps 0, 1, 2, ... without a gap, and
// the file ending in a line break; prints {"rows": n}.
const char* kCheckRows = R"PY(
import csv, json, sys
path = sys.argv[1]
data = open(path, "rb").read()
assert data.endswith(b"\n"), "the file ends with a partial row: %r" % data[-60:]
with open(path, newline="", encoding="utf-8") as f:
    rows = list(csv.reader(f))
assert rows[0] == ["step", "a", "b"], rows[0]
for i, row in enumerate(rows[1:]):
    assert row == [str(i)] * 3, (i, row)
print(json.dumps({"rows": len(rows) - 1}))
)PY";

uint64_t whole_rows(const std::filesystem::path& path) {
  return nlohmann::json::parse(test::run_python_code(kCheckRows, {path}))["rows"].get<uint64_t>();
}

Values row(int64_t step) {
  return {{"a", step}, {"b", step}};
}

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
  return nlohmann::json::parse(test::run_python_code(kReadCsv, {path}));
}

}  // namespace

TEST_CASE("csv writes Lightning's layout: version_N/metrics.csv and hparams.yaml") {
  TempDir dir;
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

  auto yaml = test::run_python_code(R"PY(
import json, sys, yaml
print(json.dumps(yaml.safe_load(open(sys.argv[1], encoding="utf-8"))))
)PY",
                                    {v0 / "hparams.yaml"});
  CHECK(nlohmann::json::parse(yaml) ==
        nlohmann::json({{"lr", 0.001}, {"model", {{"hidden", 128}, {"act", "relu"}}}}));
}

TEST_CASE("keys that appear later widen the header; the file stays one valid CSV") {
  TempDir dir;
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
  TempDir dir;
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
  TempDir dir;
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
  auto out = test::run_python_code(R"PY(
import csv, json, math, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8")))
r = rows[0]
assert math.isnan(float(r["nan"])) and float(r["inf"]) == math.inf and float(r["ninf"]) == -math.inf
assert r["a,b \"q\""] == "1" and r["损失\n第二行"] == "2" and int(r["big"]) == 2**62 and r["step"] == ""
print("ok")
)PY",
                                   {dir.path() / "proj" / "version_0" / "metrics.csv"});
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
  TempDir dir;
  auto path = dir.path() / "h.yaml";
  std::ofstream(path) << to_yaml(config);
  auto out = test::run_python_code(R"PY(
import json, math, sys, yaml
d = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
assert math.isnan(d.pop("nan"))
print(json.dumps(d, ensure_ascii=False))
)PY",
                                   {path});
  config.erase("nan");
  CHECK(nlohmann::json::parse(out) == config);
  CHECK(to_yaml(nlohmann::json::object()) == "{}\n");
}

TEST_CASE("csv needs a logging directory") {
  CHECK_THROWS_AS(CsvTracker(TrackerInit{"run", "", nlohmann::json::object(), ""}), InvalidValue);
}

TEST_CASE("csv holds records: acknowledged() counts the calls whose rows reached the OS") {
  TempDir dir;
  WarningCapture warnings;
  CsvTracker tracker(csv_init(dir.path(), {{"flush_every", 3}}));
  CHECK(tracker.holds_records());
  CHECK(tracker.resume_info().is_null());
  tracker.start();
  const auto version = dir.path() / "proj" / "version_0";
  CHECK(tracker.resume_info() == nlohmann::json({{"directory", absolute_name(version)}}));
  tracker.store_init_configuration({{"lr", 0.1}});  // 1: hparams.yaml is written
  CHECK(tracker.acknowledged() == 1);
  tracker.log({{"loss", 0.5}}, 0);  // 2 and 3 wait in the buffer (flush_every = 3)
  tracker.log({{"loss", 0.4}}, 1);
  CHECK(tracker.acknowledged() == 1);
  CHECK(test::read_file(version / "metrics.csv").empty());
  tracker.log({{"loss", 0.3}}, 2);  // 4: the third row, all three go out
  CHECK(tracker.acknowledged() == 4);
  CHECK(test::read_file(version / "metrics.csv") == "step,loss\n0,0.5\n1,0.4\n2,0.3\n");
  tracker.log({{"note", "no scalar"}}, 3);  // 5: no row, and nothing waits before it
  CHECK(tracker.acknowledged() == 5);
  tracker.log({{"loss", 0.2}}, 4);          // 6: waits
  tracker.log({{"note", "no scalar"}}, 5);  // 7: no row, but row 6 waits before it
  CHECK(tracker.acknowledged() == 5);
  tracker.flush();
  CHECK(tracker.acknowledged() == 7);
  tracker.finish(RunStatus::finished);  // 8
  CHECK(tracker.acknowledged() == 8);
  CHECK(test::read_file(version / "metrics.csv") == "step,loss\n0,0.5\n1,0.4\n2,0.3\n4,0.2\n");
}

TEST_CASE("through the hub, csv's buffered rows count as delivered once written") {
  TempDir dir;
  TrackerHub hub(test::hub_options_in(dir));
  hub.init_trackers("proj", {}, {"csv"}, {{"csv", {{"flush_every", 4}}}});
  for (int64_t step = 0; step < 10; ++step) hub.log(row(step), step);
  auto report = hub.end_training();
  CHECK(report.complete());
  REQUIRE(report.trackers.size() == 1);
  CHECK(report.trackers[0].logged == 10);
  CHECK(report.trackers[0].delivered == 10);
  CHECK(whole_rows(dir.path() / "proj" / "version_0" / "metrics.csv") == 10);
}

TEST_CASE("csv resumes a run in its directory: columns from the header, whole rows appended") {
  TempDir dir;
  nlohmann::json resume;
  {
    CsvTracker first(csv_init(dir.path()));
    first.start();
    first.log({{"a,b", 1}, {"c", 2}}, 0);
    first.log({{"a,b", 3}}, 1);
    first.finish(RunStatus::failed);
    resume = first.resume_info();
  }
  const auto version = dir.path() / "proj" / "version_0";
  const auto path = version / "metrics.csv";
  std::ofstream(path, std::ios::binary | std::ios::app) << "2,5";  // torn by a killed process

  auto init = csv_init(dir.path());
  init.resume = resume;
  CsvTracker second(init);
  second.start();
  CHECK(second.log_dir() == absolute_name(version));
  CHECK(second.resume_info() == resume);
  second.log({{"c", 4}, {"a,b", 5}}, 2);
  second.log({{"d", 6}}, 3);  // a new column: the file is rewritten with the wider header
  second.finish(RunStatus::finished);
  CHECK_FALSE(std::filesystem::exists(dir.path() / "proj" / "version_1"));
  CHECK(test::read_file(path) == "step,\"a,b\",c,d\n0,1,2,\n1,3,,\n2,5,4,\n3,,,6\n");
  auto parsed = read_csv(path);
  CHECK(parsed["header"] == nlohmann::json({"step", "a,b", "c", "d"}));
  CHECK(parsed["rows"].size() == 4);
}

TEST_CASE("csv resumes into a directory without metrics.csv yet") {
  TempDir dir;
  auto init = csv_init(dir.path() / "other");
  init.resume = {{"directory", (dir.path() / "run").string()}};
  CsvTracker tracker(init);
  tracker.start();
  tracker.log(row(0), 0);
  tracker.finish(RunStatus::finished);
  CHECK(test::read_file(dir.path() / "run" / "metrics.csv") == "step,a,b\n0,0,0\n");
  CHECK_FALSE(std::filesystem::exists(dir.path() / "other"));
}

TEST_CASE("csv on a full disk: whole rows, the OS reason, acknowledged() = rows in the file",
          "[.disk_full]") {
  test::run_on_small_disk("[.csv_disk_full_child]");
}

TEST_CASE("csv disk-full child: runs on a 64 KiB tmpfs", "[.csv_disk_full_child]") {
  const auto disk = test::small_disk_dir();
  for (const auto& entry : std::filesystem::directory_iterator(disk)) {
    std::filesystem::remove_all(entry.path());  // what an earlier section left
  }
  WarningCapture warnings;
  const auto full = Catch::Contains("No space left on device");

  SECTION("every row goes out: the refused row is cut off, and a rewrite fails cleanly too") {
    CsvTracker tracker(csv_init(disk));
    tracker.start();
    const auto path = tracker.log_dir() / "metrics.csv";
    const auto refusal =
        test::log_until_refused([&](int64_t step) { tracker.log(row(step), step); });
    const auto accepted = static_cast<uint64_t>(refusal.accepted);
    const std::string& error = refusal.message;
    CHECK_THAT(error, Catch::Contains("csv: cannot write '" + path.string() + "'") && full);
    CHECK(accepted > 100);
    CHECK(whole_rows(path) == accepted);
    CHECK(tracker.acknowledged() == accepted);

    // Still full: a retry throws again and leaves the file as it was.
    const auto size = std::filesystem::file_size(path);
    CHECK_THROWS_AS(tracker.log(row(static_cast<int64_t>(accepted)), 0), TrackerUnavailable);
    // A new column needs the file rewritten: that fails too, naming the file being written.
    auto message = test::thrown<TrackerUnavailable>([&] { tracker.log({{"new", 1}}, 0); });
    CHECK_THAT(message, Catch::Contains(path.string()) && full);
    CHECK(std::filesystem::file_size(path) == size);
    CHECK(whole_rows(path) == accepted);
    CHECK(tracker.acknowledged() == accepted);
  }

  SECTION("buffered rows (flush_every = 8) stay buffered and go out once there is space") {
    test::write_ballast(disk / "ballast", 16 * 1024);
    CsvTracker tracker(csv_init(disk, {{"flush_every", 8}}));
    tracker.start();
    tracker.store_init_configuration({{"lr", 0.1}});  // call 1
    const auto path = tracker.log_dir() / "metrics.csv";
    const auto refusal =
        test::log_until_refused([&](int64_t step) { tracker.log(row(step), step); });
    const int64_t logs = refusal.accepted;  // the call with step `logs` was refused
    CHECK_THAT(refusal.message, Catch::Contains(path.string()) && full);
    const uint64_t in_file = whole_rows(path);
    CHECK(in_file <= static_cast<uint64_t>(logs));
    CHECK(tracker.acknowledged() == 1 + in_file);
    CHECK_THROWS_AS(tracker.flush(), TrackerUnavailable);
    CHECK(tracker.acknowledged() == 1 + in_file);

    std::filesystem::remove(disk / "ballast");
    tracker.flush();  // writes the rows still buffered
    CHECK(tracker.acknowledged() == 1 + static_cast<uint64_t>(logs));
    tracker.log(row(logs), logs);  // the refused call again, as the hub retries it
    tracker.finish(RunStatus::finished);
    CHECK(tracker.acknowledged() == 1 + static_cast<uint64_t>(logs) + 2);
    CHECK(whole_rows(path) == static_cast<uint64_t>(logs) + 1);
  }

  SECTION("through the hub, then sync: delivered is what the file holds, sync adds the rest") {
    test::write_ballast(disk / "ballast", 32 * 1024);
    TempDir journal;  // not on the small disk
    TrackerHubOptions options;
    options.project_dir = disk;
    options.journal_dir = journal.path();
    options.handle_signals = false;
    options.retry_initial_delay = std::chrono::milliseconds(10);
    options.retry_max_delay = std::chrono::milliseconds(50);
    options.end_training_timeout = std::chrono::milliseconds(1000);
    const int64_t logs = 3000;  // about 45 KiB of rows; 32 KiB are left
    const auto path = disk / "hub" / "version_0" / "metrics.csv";
    {
      TrackerHub hub(options);
      hub.init_trackers("hub", {}, {"csv"});
      for (int64_t step = 0; step < logs; ++step) hub.log(row(step), step);
      auto report = hub.end_training();
      REQUIRE(report.trackers.size() == 1);
      const auto& delivery = report.trackers[0];
      INFO("error: " << delivery.error);
      CHECK_FALSE(report.complete());
      CHECK(delivery.logged == static_cast<uint64_t>(logs));
      const uint64_t in_file = whole_rows(path);
      CHECK(in_file > 100);
      CHECK(delivery.delivered == in_file);
      CHECK(delivery.delivered + delivery.journaled + delivery.lost == delivery.logged);
      CHECK(delivery.journaled == delivery.undelivered);
    }

    // `accel-launch sync` once there is space again: the rest goes into the same file.
    std::filesystem::remove(disk / "ballast");
    auto journals = find_journals(journal.path());
    REQUIRE(journals.size() == 1);
    auto result = sync_journal(journals[0]);
    INFO(describe(result));
    CHECK(result.complete);
    CHECK(result.run == nlohmann::json({{"directory", absolute_name(path.parent_path())}}).dump());
    CHECK(whole_rows(path) == static_cast<uint64_t>(logs));  // each step once, in order
    CHECK_FALSE(std::filesystem::exists(disk / "hub" / "version_1"));
  }
}

TEST_CASE(
    "csv writes into init_kwargs run_dir (the Accelerator's run directory) and continues it") {
  TempDir dir;
  const auto run = dir.path() / "proj" / "mine";
  for (int round = 0; round < 2; ++round) {
    CsvTracker tracker(csv_init(dir.path(), {{"run_dir", run.string()}}));
    tracker.start();
    CHECK(tracker.log_dir() == run);
    tracker.log(row(round), round);
    tracker.finish(RunStatus::finished);
  }
  CHECK(test::read_file(run / "metrics.csv") == "step,a,b\n0,0,0\n1,1,1\n");
  CHECK_FALSE(std::filesystem::exists(dir.path() / "proj" / "version_0"));
  CHECK_THROWS_AS(CsvTracker(csv_init(dir.path(), {{"run_dir", 3}})), InvalidValue);
}
