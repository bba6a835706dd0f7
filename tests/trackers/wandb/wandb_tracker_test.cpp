// The wandb tracker's offline runs, read back with wandb's own reader of the pinned wheel
// (`wandb leet inspect`, wandb 0.31.0 in .venv) and with read_wandb.py (strict framing + wandb's
// compiled Record class).
#include "accel/tracking/trackers/wandb/wandb_tracker.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <thread>

#include "accel/tracking/hub.hpp"
#include "accel/tracking/warnings.hpp"
#include "trackers/wandb/wandb_media.hpp"
#include "trackers/wandb/wandb_settings.hpp"
#include "wandb_test_support.hpp"

using accel::Histogram;
using accel::Image;
using accel::InvalidValue;
using accel::RunStatus;
using accel::ScalarGroup;
using accel::Table;
using accel::Values;
using accel::WandbTracker;
using accel::test::leet_records;
using accel::test::leet_summary;
using accel::test::ScopedEnv;
using accel::test::TempDir;
using accel::test::tracker_init;
using nlohmann::json;

namespace {

// A clean W&B environment for the scope: offline, no key, no WANDB_DIR.
struct OfflineEnv {
  ScopedEnv mode{"WANDB_MODE", "offline"};
  ScopedEnv key{"WANDB_API_KEY", nullptr};
  ScopedEnv dir{"WANDB_DIR", nullptr};
  ScopedEnv id{"WANDB_RUN_ID", nullptr};
  ScopedEnv netrc{"NETRC", "/nonexistent/netrc"};
};

std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// wandb-core's own reader (what `wandb leet inspect` runs), called directly: fast enough to read
// hundreds of cut files. Returns the records it printed and whether it called the file incomplete.
accel::test::LeetRecords core_records(const std::filesystem::path& file) {
  const std::string core =
      std::string(ACCEL_SOURCE_DIR) + "/.venv/lib/python3.11/site-packages/wandb/bin/wandb-core";
  const auto result = accel::test::run_shell(
      accel::test::shell_quote(core) + " leet inspect --no-observability --json --run-file " +
      accel::test::shell_quote(file.string()) + " " +
      accel::test::shell_quote(file.parent_path().string()) + " 2>&1");
  REQUIRE(result.exit_code() == 0);
  accel::test::LeetRecords out;
  std::istringstream lines(result.output);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("{")) {
      out.records.push_back(json::parse(line));
    } else if (line.find("incomplete") != std::string::npos) {
      out.incomplete = true;
    }
  }
  return out;
}

Image checker(int64_t h, int64_t w) {
  std::vector<uint8_t> px(static_cast<std::size_t>(h * w * 3));
  for (std::size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 13);
  return Image::from_uint8(px, h, w, 3);
}

}  // namespace

TEST_CASE("an offline run is read by wandb leet: every row, summary value and config key") {
  OfflineEnv env;
  TempDir logs("accel-wandb");
  TempDir home("accel-wandb-home");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  {
    WandbTracker tracker(
        tracker_init("digits", logs.path(), {{"name", "first try"}, {"tags", {"a", "b"}}}));
    tracker.start();
    tracker.store_init_configuration({{"lr", 0.001},
                                      {"model", {{"hidden", 128}, {"act", "relu"}}},
                                      {"api_key", "0123456789abcdef0123456789abcdef01234567"}});
    tracker.log({{"train/loss", 0.5}, {"count", 3}}, 0);
    tracker.log({{"train/loss", 0.25}, {"note", "hello"}, {"nan", nan}}, 1);
    tracker.log({{"loss", ScalarGroup{{{"train", 1.5}, {"val", 2.5}}}},
                 {"sample", checker(4, 5)},
                 {"h", Histogram::from_samples({1, 2, 3, 4})},
                 {"tbl", Table{{"a", "b"}, {{1, "x"}, {2, "y"}}}}},
                2);
    tracker.finish(RunStatus::finished);
  }
  // The layout wandb sync and leet expect.
  const auto wandb_dir = logs.path() / "wandb";
  const auto latest = std::filesystem::read_symlink(wandb_dir / "latest-run");
  REQUIRE(latest.is_relative());
  const std::string run_name = latest.string();
  REQUIRE(run_name.starts_with("offline-run-"));
  const std::string id = run_name.substr(run_name.size() - 8);
  CHECK(
      std::all_of(id.begin(), id.end(), [](char c) { return std::isdigit(c) || std::islower(c); }));
  const auto run_dir = wandb_dir / latest;
  REQUIRE(std::filesystem::is_regular_file(run_dir / ("run-" + id + ".wandb")));
  REQUIRE(std::filesystem::is_directory(run_dir / "files"));

  const auto records = leet_records(wandb_dir / "latest-run", home.path());
  CHECK_FALSE(records.incomplete);
  REQUIRE(records.records.front()["type"] == "header");
  REQUIRE(records.records.at(1)["type"] == "run");
  const json run = records.records.at(1)["run"];
  CHECK(run["run_id"] == id);
  CHECK(run["project"] == "digits");
  CHECK(run["display_name"] == "first try");
  CHECK(run["tags"] == json({"a", "b"}));

  const auto history = records.of_type("history");
  REQUIRE(history.size() == 3);
  const json row0 = history[0]["history"]["item"];
  CHECK(row0["_step"] == 0);
  CHECK(row0["trainer/global_step"] == 0);
  CHECK(row0["train/loss"] == 0.5);
  CHECK(row0["count"] == 3);
  CHECK(row0.contains("_runtime"));
  CHECK(row0.contains("_timestamp"));
  const json row1 = history[1]["history"]["item"];
  CHECK(row1["_step"] == 1);
  CHECK(row1["train/loss"] == 0.25);
  CHECK(row1["note"] == "hello");
  CHECK(row1["nan"] == "NaN");  // leet prints W&B's bare NaN token as "NaN", like the SDK's rows
  const json row2 = history[2]["history"]["item"];
  CHECK(row2["trainer/global_step"] == 2);
  CHECK(row2["loss.train"] == 1.5);
  CHECK(row2["loss.val"] == 2.5);
  CHECK(row2["sample._type"] == "image-file");
  CHECK(row2["sample.width"] == 5);
  CHECK(row2["sample.height"] == 4);
  CHECK(row2["h._type"] == "histogram");
  CHECK(row2["h.values"].size() == 64);
  CHECK(row2["h.bins"].size() == 65);
  CHECK(row2["tbl._type"] == "table-file");
  CHECK(row2["tbl.ncols"] == 2);
  CHECK(row2["tbl.nrows"] == 2);

  // Media: the files exist under files/, are announced in a files record, and hash as recorded.
  const auto image_path = run_dir / "files" / row2["sample.path"].get<std::string>();
  const std::string png = read_all(image_path);
  REQUIRE(png.substr(1, 3) == "PNG");
  CHECK(row2["sample.sha256"] == accel::wandb::sha256_hex(png));
  CHECK(row2["sample.size"] == png.size());
  const std::string table = read_all(run_dir / "files" / row2["tbl.path"].get<std::string>());
  CHECK(json::parse(table) == json::parse(R"({"columns":["a","b"],"data":[[1,"x"],[2,"y"]]})"));
  std::set<std::string> announced;
  for (const auto& r : records.of_type("files")) {
    for (const auto& f : r["files"]["files"]) announced.insert(f["path"].get<std::string>());
  }
  CHECK(announced.count(row2["sample.path"].get<std::string>()) == 1);
  CHECK(announced.count(row2["tbl.path"].get<std::string>()) == 1);

  // The run's state as wandb derives it.
  const json state = leet_summary(wandb_dir / "latest-run", home.path());
  CHECK(state["run_id"] == id);
  CHECK(state["project"] == "digits");
  CHECK(state["exit_code"] == 0);
  CHECK(state["state"] == "finished");
  CHECK(state["config"]["lr"] == 0.001);
  CHECK(state["config"]["model"] == json({{"hidden", 128}, {"act", "relu"}}));
  CHECK(state["config"]["api_key"] == "<redacted>");
  const json summary = state["summary"];
  CHECK(summary["train/loss"] == 0.25);  // the last value of each key
  CHECK(summary["count"] == 3);
  CHECK(summary["note"] == "hello");
  CHECK(summary["loss"] == json({{"train", 1.5}, {"val", 2.5}}));
  CHECK(summary["sample"]["_type"] == "image-file");
  CHECK(summary["h"]["_type"] == "histogram");
  CHECK(summary["tbl"]["_type"] == "table-file");
  CHECK(summary["trainer/global_step"] == 2);
  CHECK(summary["_step"] == 2);

  // The strict reader agrees, and the API key is nowhere in the file.
  const auto strict = accel::test::strict_records(run_dir / ("run-" + id + ".wandb"));
  CHECK(strict["records"].size() == records.records.size());
  CHECK(read_all(run_dir / ("run-" + id + ".wandb")).find("0123456789abcdef") == std::string::npos);
}

TEST_CASE("the histogram bins its samples as wandb.Histogram does (numpy, 64 bins)") {
  const auto value = accel::wandb::histogram_value(
      Histogram::from_samples({0.0, 0.1, 0.5, 0.99, 1.0, 3.0, -2.0}), "h");
  // numpy.histogram([0, .1, .5, .99, 1, 3, -2], bins=64): edges -2 + i * 5/64.
  REQUIRE(value["bins"].size() == 65);
  CHECK(value["bins"][0] == -2.0);
  CHECK(value["bins"][64] == 3.0);
  const auto& counts = value["values"];
  CHECK(counts[0] == 1);   // -2
  CHECK(counts[25] == 1);  // 0
  CHECK(counts[26] == 1);  // 0.1
  CHECK(counts[32] == 1);  // 0.5
  CHECK(counts[38] == 2);  // 0.99 and 1.0
  CHECK(counts[63] == 1);  // 3 (the last bin is closed)
  const auto one = accel::wandb::histogram_value(Histogram::from_samples({5, 5}), "h");
  CHECK(one["bins"][0] == 4.5);  // numpy widens an empty range by 0.5 on each side
  CHECK(one["values"][32] == 2);
}

TEST_CASE("a file cut at every byte of its last record is read up to the record before") {
  OfflineEnv env;
  TempDir logs("accel-wandb");
  std::filesystem::path file;
  {
    // A run killed while logging: no finish, the last record is a summary of row 2.
    WandbTracker tracker(tracker_init("cut", logs.path()));
    tracker.start();
    for (int i = 0; i < 3; ++i) tracker.log({{"loss", 1.0 / (i + 1)}}, i);
    file = tracker.log_file();
  }
  const std::string bytes = read_all(file);
  const auto strict = accel::test::strict_records(file);
  const auto& chunks = strict["chunks"];
  const std::size_t last_start = chunks.back()[0].get<std::size_t>();
  const std::size_t whole = strict["records"].size();
  REQUIRE(core_records(file).records.size() == whole);
  TempDir cut_dir("accel-wandb-cut");
  const auto cut = cut_dir / "run-cut.wandb";
  for (std::size_t size = last_start; size < bytes.size(); ++size) {
    std::ofstream(cut, std::ios::binary | std::ios::trunc)
        .write(bytes.data(), static_cast<std::streamsize>(size));
    const auto read = core_records(cut);
    INFO("cut at byte " << size << " of " << bytes.size());
    REQUIRE(read.records.size() == whole - 1);
    CHECK(read.records.back()["type"] == "history");
    CHECK(read.incomplete == (size > last_start));
  }
}

TEST_CASE("a record larger than a block is split and wandb reads it back whole") {
  OfflineEnv env;
  TempDir logs("accel-wandb");
  TempDir home("accel-wandb-home");
  std::filesystem::path file;
  std::string big(100000, 'w');
  {
    WandbTracker tracker(tracker_init("big", logs.path()));
    tracker.start();
    tracker.log({{"text", big}}, 0);
    tracker.finish(RunStatus::finished);
    file = tracker.log_file();
  }
  const auto strict = accel::test::strict_records(file);
  std::vector<int> types;
  for (const auto& c : strict["chunks"]) types.push_back(c[1].get<int>());
  CHECK(std::count(types.begin(), types.end(), 2) == 2);  // history and summary both split
  CHECK(std::count(types.begin(), types.end(), 3) >= 2);
  const auto records = leet_records(file, home.path());
  const auto history = records.of_type("history");
  REQUIRE(history.size() == 1);
  CHECK(history[0]["history"]["item"]["text"] == big);
}

TEST_CASE("step_metric mode keeps rows whose steps go backwards and plots them by the step") {
  OfflineEnv env;
  TempDir logs("accel-wandb");
  TempDir home("accel-wandb-home");
  std::filesystem::path file;
  {
    WandbTracker tracker(tracker_init("steps", logs.path()));
    tracker.start();
    tracker.log({{"train/loss", 1.0}}, 5);
    tracker.log({{"val/acc", 0.5}}, 3);  // an epoch-level value logged with a smaller step
    tracker.log({{"train/loss", 0.5}}, std::nullopt);
    tracker.finish(RunStatus::finished);
    file = tracker.log_file();
  }
  const auto records = leet_records(file, home.path());
  const auto metrics = records.of_type("metric");
  REQUIRE(metrics.size() == 2);
  CHECK(metrics[0]["metric"]["name"] == "trainer/global_step");
  CHECK(metrics[1]["metric"]["glob_name"] == "*");
  CHECK(metrics[1]["metric"]["step_metric"] == "trainer/global_step");
  CHECK(metrics[1]["metric"]["options"]["step_sync"] == true);
  const auto history = records.of_type("history");
  REQUIRE(history.size() == 3);
  CHECK(history[0]["history"]["item"]["_step"] == 0);
  CHECK(history[0]["history"]["item"]["trainer/global_step"] == 5);
  CHECK(history[1]["history"]["item"]["_step"] == 1);
  CHECK(history[1]["history"]["item"]["trainer/global_step"] == 3);
  CHECK(history[1]["history"]["item"]["val/acc"] == 0.5);
  CHECK(history[2]["history"]["item"]["trainer/global_step"] == 3);  // step_sync: the last step
  CHECK(history[2]["history"]["item"]["train/loss"] == 0.5);
}

TEST_CASE("pass_through mode follows W&B's step rule and warns once per dropped key") {
  OfflineEnv env;
  TempDir logs("accel-wandb");
  TempDir home("accel-wandb-home");
  std::vector<std::string> warnings;
  auto previous =
      accel::set_warning_handler([&](std::string_view message) { warnings.emplace_back(message); });
  std::filesystem::path file;
  {
    WandbTracker tracker(tracker_init("pass", logs.path(), {{"step_mode", "pass_through"}}));
    REQUIRE(tracker.holds_records());
    tracker.start();
    // The research document's measured sequence (wandb 0.31.0).
    tracker.log({{"a", 1}}, 5);
    CHECK(tracker.acknowledged() == 0);  // row 5 waits for a larger step
    tracker.log({{"a", 2}}, 3);          // dropped, with W&B's warning
    tracker.log({{"a", 7}}, 4);          // dropped again: no second warning for "a"
    tracker.log({{"a", 3}}, std::nullopt);
    CHECK(tracker.acknowledged() == 4);  // row 5 written
    tracker.log({{"b", 4}}, 6);
    tracker.log({{"c", 5}}, 6);
    tracker.log({{"d", 6}}, std::nullopt);
    CHECK(tracker.acknowledged() == 7);
    tracker.log({{"e", 1}}, 9);
    CHECK(tracker.acknowledged() == 7);
    tracker.finish(RunStatus::finished);
    CHECK(tracker.acknowledged() == 9);
    file = tracker.log_file();
  }
  accel::set_warning_handler(std::move(previous));
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("Tried to log to step 3 that is less than the current step 5") !=
        std::string::npos);
  const auto records = leet_records(file, home.path());
  CHECK(records.of_type("metric").empty());
  const auto history = records.of_type("history");
  REQUIRE(history.size() == 3);
  CHECK(history[0]["history"]["item"]["_step"] == 5);
  CHECK(history[0]["history"]["item"]["a"] == 3);
  CHECK(history[1]["history"]["item"]["_step"] == 6);
  CHECK(history[1]["history"]["item"]["b"] == 4);
  CHECK(history[1]["history"]["item"]["c"] == 5);
  CHECK(history[1]["history"]["item"]["d"] == 6);
  CHECK(history[2]["history"]["item"]["_step"] == 9);  // written by finish
  const auto console = records.of_type("output_raw");
  REQUIRE(console.size() == 1);
  CHECK(console[0]["output_raw"]["line"].get<std::string>().starts_with(
      "wandb: WARNING Tried to log to step 3"));
  const json state = leet_summary(file, home.path());
  CHECK(state["summary"]["a"] == 3);
  CHECK(state["summary"]["e"] == 1);
}

TEST_CASE("finish writes the exit code of the run's status") {
  OfflineEnv env;
  TempDir logs("accel-wandb");
  TempDir home("accel-wandb-home");
  for (auto [status, code] : {std::pair{RunStatus::failed, 1}, std::pair{RunStatus::killed, 143}}) {
    WandbTracker tracker(tracker_init("exit", logs.path()));
    tracker.start();
    tracker.log({{"x", 1}}, 0);
    tracker.finish(status);
    CHECK(leet_summary(tracker.log_file(), home.path())["exit_code"] == code);
  }
}

TEST_CASE("the run directory is init_kwargs dir, else WANDB_DIR, else the logging directory") {
  OfflineEnv env;
  TempDir logs("accel-wandb");
  TempDir wandb_dir("accel-wandb-dir");
  TempDir given("accel-wandb-given");
  {
    WandbTracker tracker(tracker_init("p", logs.path()));
    CHECK(tracker.run_dir().parent_path() == logs.path() / "wandb");
  }
  ScopedEnv dir("WANDB_DIR", wandb_dir.str().c_str());
  {
    WandbTracker tracker(tracker_init("p", logs.path()));
    CHECK(tracker.run_dir().parent_path() == wandb_dir.path() / "wandb");
  }
  {
    WandbTracker tracker(tracker_init("p", logs.path(), {{"dir", given.str()}, {"id", "myrun01"}}));
    CHECK(tracker.run_dir().parent_path() == given.path() / "wandb");
    CHECK(tracker.run_id() == "myrun01");
    CHECK(tracker.log_file().filename() == "run-myrun01.wandb");
  }
}

TEST_CASE("disabled mode writes nothing; online mode needs a key and says what to do without") {
  TempDir logs("accel-wandb");
  ScopedEnv dir("WANDB_DIR", nullptr);
  ScopedEnv netrc("NETRC", "/nonexistent/netrc");
  SECTION("disabled") {
    ScopedEnv mode("WANDB_MODE", "disabled");
    WandbTracker tracker(tracker_init("p", logs.path()));
    tracker.start();
    tracker.store_init_configuration({{"lr", 1}});
    tracker.log({{"x", 1}}, 0);
    tracker.finish(RunStatus::finished);
    CHECK(tracker.mode() == "disabled");
    CHECK(std::filesystem::is_empty(logs.path()));
  }
  SECTION("online from WANDB_MODE without a key") {
    ScopedEnv mode("WANDB_MODE", "online");
    ScopedEnv key("WANDB_API_KEY", nullptr);
    ScopedEnv base("WANDB_BASE_URL", nullptr);
    const auto message = accel::test::thrown<InvalidValue>(
        [&] { WandbTracker tracker(tracker_init("p", logs.path())); });
    CHECK(message.find("needs a W&B API key") != std::string::npos);
    CHECK(message.find("https://api.wandb.ai") != std::string::npos);
    CHECK(message.find("WANDB_MODE=offline") != std::string::npos);
  }
  SECTION("online because an API key is found; its run directory is run-<ts>-<id>") {
    ScopedEnv mode("WANDB_MODE", nullptr);
    ScopedEnv key("WANDB_API_KEY", "secretsecretsecretsecretsecretsecret1234");
    WandbTracker tracker(tracker_init("p", logs.path()));  // no request before start()
    CHECK(tracker.mode() == "online");
    CHECK(tracker.run_dir().filename().string().starts_with("run-"));
    CHECK(accel::wandb::api_key_found());
  }
  SECTION("init_kwargs mode wins over WANDB_MODE, as in the SDK") {
    ScopedEnv mode("WANDB_MODE", "online");
    WandbTracker tracker(tracker_init("p", logs.path(), {{"mode", "disabled"}}));
    CHECK(tracker.mode() == "disabled");
  }
  SECTION("unknown options and modes are named") {
    ScopedEnv mode("WANDB_MODE", "offline");
    CHECK_THROWS_WITH(WandbTracker(tracker_init("p", logs.path(), {{"colour", "red"}})),
                      Catch::Contains("colour") && Catch::Contains("step_mode"));
    CHECK_THROWS_WITH(WandbTracker(tracker_init("p", logs.path(), {{"resume", 3}})),
                      Catch::Contains("resume") && Catch::Contains("\"must\""));
    CHECK_THROWS_WITH(WandbTracker(tracker_init("p", logs.path(), {{"resume", "must"}})),
                      Catch::Contains("needs the id") && Catch::Contains("WANDB_RUN_ID"));
    CHECK_THROWS_WITH(WandbTracker(tracker_init("p", logs.path(), {{"mode", "sideways"}})),
                      Catch::Contains("sideways"));
    CHECK_THROWS_WITH(WandbTracker(tracker_init("p", logs.path(), {{"step_mode", "x"}})),
                      Catch::Contains("pass_through"));
  }
}

TEST_CASE("a netrc password for the W&B host counts as an API key") {
  TempDir home("accel-wandb-home");
  ScopedEnv key("WANDB_API_KEY", nullptr);
  ScopedEnv base("WANDB_BASE_URL", "https://wandb.example.com:8443/path");
  const auto netrc = home / ".netrc";
  ScopedEnv netrc_env("NETRC", netrc.string().c_str());
  std::ofstream(netrc) << "machine other.host login u password p\n";
  CHECK_FALSE(accel::wandb::api_key_found());
  std::ofstream(netrc, std::ios::app) << "machine wandb.example.com\n  login user\n  password k\n";
  CHECK(accel::wandb::api_key_found());
  CHECK(accel::wandb::read_api_key() == "k");
  CHECK(accel::wandb::base_url() == "https://wandb.example.com:8443/path");
}

TEST_CASE("log_with wandb through the hub writes a finished offline run") {
  OfflineEnv env;
  TempDir logs("accel-wandb");
  TempDir home("accel-wandb-home");
  accel::TrackerHubOptions options;
  options.logging_dir = logs.path();
  options.handle_signals = false;
  {
    accel::TrackerHub hub(options);
    hub.init_trackers("hubproj", {{"epochs", 3}}, {"wandb"});
    for (int step = 0; step < 5; ++step) hub.log({{"loss", 1.0 / (step + 1)}}, step);
    hub.end_training();
  }
  const json state = leet_summary(logs.path() / "wandb" / "latest-run", home.path());
  CHECK(state["project"] == "hubproj");
  CHECK(state["config"]["epochs"] == 3);
  CHECK(state["summary"]["loss"] == 0.2);
  CHECK(state["summary"]["_step"] == 4);
  CHECK(state["exit_code"] == 0);
}

TEST_CASE("resume \"auto\" continues the id of the last run of a directory that did not finish") {
  TempDir logs;
  ScopedEnv mode("WANDB_MODE", "offline");
  ScopedEnv id("WANDB_RUN_ID", nullptr);
  ScopedEnv resume("WANDB_RESUME", nullptr);
  const auto saved = logs.path() / "wandb" / "wandb-resume.json";
  std::string first_id;
  {
    WandbTracker first(tracker_init("p", logs.path(), {{"resume", "auto"}}));
    first.start();
    first_id = first.run_id();
    REQUIRE(std::filesystem::exists(saved));
    CHECK(nlohmann::json::parse(accel::test::read_file(saved))["run_id"] == first_id);
    first.finish(RunStatus::failed);  // did not finish well: the id stays
  }
  // Run directories are named by the start second: the next run starts in another one.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  {
    ScopedEnv by_env("WANDB_RESUME", "auto");
    WandbTracker second(tracker_init("p", logs.path()));
    CHECK(second.run_id() == first_id);
    second.start();
    second.finish(RunStatus::finished);  // exit code 0: the id is forgotten
  }
  CHECK(!std::filesystem::exists(saved));
  WandbTracker third(tracker_init("p", logs.path(), {{"resume", true}}));
  CHECK(third.run_id() != first_id);
}

TEST_CASE(
    "define_metric and set_summary through the handle reach the .wandb file, from any thread") {
  TempDir logs;
  TempDir home;
  ScopedEnv mode("WANDB_MODE", "offline");
  ScopedEnv id("WANDB_RUN_ID", nullptr);
  ScopedEnv resume("WANDB_RESUME", nullptr);
  std::filesystem::path log_file;
  {
    WandbTracker tracker(tracker_init("handle", logs.path()));
    tracker.start();
    std::thread user([&] {  // the training thread, while the worker owns the writer
      tracker.define_metric("val/*", "epoch", true, /*hidden=*/true);
      tracker.set_summary("best", nlohmann::json{{"acc", 0.95}});
    });
    user.join();
    tracker.log(Values{{"val/acc", 0.5}, {"epoch", int64_t{1}}}, 0);
    CHECK_THROWS_AS(tracker.define_metric(""), InvalidValue);
    tracker.finish(RunStatus::finished);
    CHECK_THROWS_AS(tracker.set_summary("late", 1), accel::UsageError);
    log_file = tracker.log_file();
  }
  const auto records = leet_records(log_file, home.path());
  bool defined = false;
  for (const auto& record : records.of_type("metric")) {
    const auto& metric = record["metric"];
    if (metric.value("glob_name", "") == "val/*") {
      defined = metric.value("step_metric", "") == "epoch" &&
                metric["options"].value("hidden", false) &&
                metric["options"].value("step_sync", false);
    }
  }
  INFO(records.output.substr(0, 3000));
  CHECK(defined);
  const json state = leet_summary(log_file, home.path());
  CHECK(state["summary"]["best"]["acc"] == 0.95);
  CHECK(state["summary"]["val/acc"] == 0.5);
}
