// TrackerHub: lifecycle, log_with resolution ("all", names, objects, registry), main-process
// gating, get_tracker, input validation, steps going backwards, run-name sanitising.
#include "accel/tracking/hub.hpp"
#include "accel/tracking/registry.hpp"
#include "accel/tracking/trackers/csv_tracker.hpp"
#include "tracking_test_support.hpp"

using namespace accel;
using test::RecordingTracker;
using test::TempDir;
using test::WarningCapture;

TEST_CASE("log before init_trackers and after end_training is a UsageError") {
  TempDir dir;
  TrackerHub hub(test::hub_options_in(dir));
  CHECK_THAT(test::thrown<UsageError>([&] {
               hub.log({{"loss", 1.0}}, 0);
             }),
             Catch::Contains("before init_trackers"));
  hub.init_trackers("proj", {}, {std::make_shared<RecordingTracker>()});
  hub.log({{"loss", 1.0}}, 0);
  auto report = hub.end_training();
  CHECK(report.complete());
  CHECK_THAT(test::thrown<UsageError>([&] {
               hub.log({{"loss", 1.0}}, 1);
             }),
             Catch::Contains("after end_training"));
  CHECK_THROWS_AS(hub.end_training(), UsageError);
  CHECK_THROWS_AS(hub.init_trackers("again"), UsageError);
}

TEST_CASE("a custom tracker gets start, config, every log in order, flush and finish") {
  TempDir dir;
  auto tracker = std::make_shared<RecordingTracker>();
  {
    TrackerHub hub(test::hub_options_in(dir));
    hub.init_trackers("proj", {{"lr", 0.1}}, {tracker});
    for (int64_t i = 0; i < 100; ++i) hub.log({{"i", i}, {"half", 0.5 * double(i)}}, i);
    hub.log({{"nostep", 1}});
    auto report = hub.end_training(RunStatus::failed);
    REQUIRE(report.trackers.size() == 1);
    CHECK(report.trackers[0].name == "recording");
    CHECK(report.trackers[0].logged == 101);
    CHECK(report.trackers[0].delivered == 101);
    CHECK(report.trackers[0].undelivered == 0);
  }
  auto calls = tracker->calls();
  REQUIRE(calls.size() >= 104);
  CHECK(calls[0].what == "start");
  CHECK(calls[1].what == "config");
  CHECK(calls[1].config == nlohmann::json{{"lr", 0.1}});
  auto logs = tracker->logs();
  REQUIRE(logs.size() == 101);
  for (int64_t i = 0; i < 100; ++i) {
    CHECK(*logs[i].step == i);
    CHECK(logs[i].values == Values{{"i", i}, {"half", 0.5 * double(i)}});
  }
  CHECK_FALSE(logs[100].step.has_value());
  CHECK(calls.back().what == "finish");
  CHECK(calls.back().status == RunStatus::failed);
}

TEST_CASE("unknown tracker names list the registered ones") {
  TempDir dir;
  TrackerHub hub(test::hub_options_in(dir));
  CHECK_THAT(test::thrown<InvalidValue>([&] {
               hub.init_trackers("proj", {}, {"csv", "nope"});
             }),
             Catch::Contains("unknown tracker 'nope'") && Catch::Contains("csv") &&
                 Catch::Contains("jsonl"));
  // Nothing was started: the hub can still be initialised properly.
  hub.init_trackers("proj", {}, {"jsonl"});
  CHECK(hub.trackers().size() == 1);
}

TEST_CASE("\"all\" starts every available tracker and reports the skipped ones once") {
  TempDir dir;
  register_tracker({.name = "test_unavailable",
                    .factory =
                        [](const TrackerInit&) {
                          return std::make_unique<RecordingTracker>("test_unavailable");
                        },
                    .unavailable_reason =
                        [] { return std::optional<std::string>("TEST_SERVER_URI is not set"); }});
  WarningCapture warnings;
  TrackerHub hub(test::hub_options_in(dir));
  hub.init_trackers("proj", {}, {"all"});
  std::vector<std::string> names;
  for (auto* t : hub.trackers()) names.push_back(t->name());
  CHECK(std::find(names.begin(), names.end(), "csv") != names.end());
  CHECK(std::find(names.begin(), names.end(), "jsonl") != names.end());
  CHECK(std::find(names.begin(), names.end(), "test_unavailable") == names.end());
  CHECK(warnings.count({"all", "test_unavailable", "TEST_SERVER_URI is not set"}) == 1);
  hub.end_training();
  // Named explicitly, an unavailable tracker is an error with the reason.
  TrackerHub other(test::hub_options_in(dir));
  CHECK_THROWS_WITH(other.init_trackers("proj", {}, {"test_unavailable"}),
                    Catch::Contains("TEST_SERVER_URI is not set"));
}

TEST_CASE("\"all\" without a logging directory skips file trackers; naming one is an error") {
  TrackerHubOptions o;
  o.handle_signals = false;
  o.journal_dir = std::filesystem::temp_directory_path() / "accel_hub_test_journal";
  {
    WarningCapture warnings;
    TrackerHub hub(o);
    hub.init_trackers("proj", {}, {"all"});
    for (auto* t : hub.trackers()) CHECK_FALSE(t->requires_logging_directory());
    CHECK(warnings.count({"csv (needs a logging directory"}) == 1);
  }
  TrackerHub hub(o);
  CHECK_THAT(test::thrown<InvalidValue>([&] { hub.init_trackers("proj", {}, {"csv"}); }),
             Catch::Contains("logging directory"));
}

TEST_CASE("a registered custom class is found by name and gets its init_kwargs") {
  TempDir dir;
  auto seen = std::make_shared<nlohmann::json>();
  auto made = std::make_shared<std::shared_ptr<RecordingTracker>>();
  register_tracker({.name = "test_custom",
                    .factory =
                        [seen, made](const TrackerInit& init) {
                          *seen = {{"run", init.run_name},
                                   {"dir", init.logging_dir.string()},
                                   {"kw", init.init_kwargs}};
                          auto t = std::make_unique<RecordingTracker>("test_custom");
                          return t;
                        },
                    .unavailable_reason = {}});
  auto names = registered_tracker_names();
  CHECK(std::find(names.begin(), names.end(), "test_custom") != names.end());
  CHECK(std::is_sorted(names.begin(), names.end()));
  TrackerHub hub(test::hub_options_in(dir));
  hub.init_trackers("proj", {}, {"test_custom"},
                    {{"test_custom", {{"entity", "me"}}}, {"csv", {{"unused", 1}}}});
  CHECK((*seen)["run"] == "proj");
  CHECK((*seen)["dir"] == dir.path().string());
  CHECK((*seen)["kw"] == nlohmann::json{{"entity", "me"}});
  CHECK(hub.get_tracker("test_custom").name() == "test_custom");
  CHECK(hub.get_tracker<RecordingTracker>("test_custom") == &hub.get_tracker("test_custom"));
  CHECK_THAT(test::thrown<InvalidValue>([&] { hub.get_tracker<int>("test_custom"); }),
             Catch::Contains("'test_custom'") && Catch::Contains("RecordingTracker*") &&
                 Catch::Contains("not int*"));
}

TEST_CASE("bad init_kwargs and duplicate names are rejected") {
  TempDir dir;
  {
    TrackerHub hub(test::hub_options_in(dir));
    CHECK_THROWS_AS(hub.init_trackers("proj", {}, {"csv"}, nlohmann::json::array()), InvalidValue);
  }
  {
    TrackerHub hub(test::hub_options_in(dir));
    CHECK_THROWS_AS(hub.init_trackers("proj", {}, {"csv"}, {{"csv", 3}}), InvalidValue);
  }
  {
    TrackerHub hub(test::hub_options_in(dir));
    CHECK_THROWS_AS(hub.init_trackers("proj", {}, {"csv"}, {{"csv", {{"flush_every", 0}}}}),
                    InvalidValue);
  }
  {
    TrackerHub hub(test::hub_options_in(dir));
    CHECK_THROWS_WITH(hub.init_trackers("proj", {},
                                        {std::make_shared<RecordingTracker>("x"),
                                         std::make_shared<RecordingTracker>("x")}),
                      Catch::Contains("two trackers are named 'x'"));
  }
  {
    TrackerHub hub(test::hub_options_in(dir));
    CHECK_THROWS_AS(hub.init_trackers("  ", {}, {"csv"}), InvalidValue);
  }
  {
    TrackerHub hub(test::hub_options_in(dir));
    hub.init_trackers("proj", {}, {"csv", "csv"});  // listed twice: started once
    CHECK(hub.trackers().size() == 1);
  }
}

TEST_CASE("non-main ranks start only trackers that opt out of main-process gating") {
  TempDir dir;
  auto main_only = std::make_shared<RecordingTracker>("main_only");
  auto everywhere = std::make_shared<RecordingTracker>("everywhere", /*main_only=*/false);
  TrackerHubOptions o = test::hub_options_in(dir);
  o.is_main_process = false;
  o.rank = 1;
  o.world_size = 2;
  TrackerHub hub(o);
  hub.init_trackers("proj", {}, {"csv", "jsonl", main_only, everywhere});
  REQUIRE(hub.trackers().size() == 1);
  CHECK(hub.trackers()[0]->name() == "everywhere");
  hub.log({{"x", 1}}, 0);
  // get_tracker never throws here; unknown names give a harmless no-op tracker.
  CHECK_NOTHROW(hub.get_tracker("csv").log({{"x", 1}}, 0));
  CHECK(hub.get_tracker("csv").name() == "csv");
  CHECK_NOTHROW(hub.get_tracker("not-a-tracker"));
  CHECK_FALSE(hub.get_tracker("csv").tracker().has_value());
  CHECK(hub.get_tracker<CsvTracker>("csv") == nullptr);
  CHECK(&hub.get_tracker("everywhere") == everywhere.get());
  hub.end_training();
  CHECK(main_only->calls().empty());
  CHECK(everywhere->logs().size() == 1);
  // Nothing was written by the gated built-ins.
  CHECK_FALSE(std::filesystem::exists(dir.path() / "proj"));
}

TEST_CASE("get_tracker on the main process: unknown names are an error") {
  TempDir dir;
  TrackerHub hub(test::hub_options_in(dir));
  CHECK_THROWS_AS(hub.get_tracker("csv"), UsageError);
  hub.init_trackers("proj", {}, {"csv"});
  CHECK_THAT(test::thrown<InvalidValue>([&] { hub.get_tracker("jsonl"); }),
             Catch::Contains("'jsonl'") && Catch::Contains("[csv]"));
  hub.flush();
  auto handle = hub.get_tracker("csv").tracker();
  REQUIRE(std::any_cast<std::filesystem::path>(&handle) != nullptr);
  CHECK(std::any_cast<std::filesystem::path>(handle) == dir.path() / "proj" / "version_0");
  CHECK_THAT(test::thrown<InvalidValue>([&] { hub.get_tracker<CsvTracker>("csv"); }),
             Catch::Contains("std::filesystem") && Catch::Contains("held by value") &&
                 Catch::Contains("get_tracker(\"csv\").tracker()"));
}

TEST_CASE("every bad value is rejected before anything is logged") {
  TempDir dir;
  auto tracker = std::make_shared<RecordingTracker>();
  TrackerHub hub(test::hub_options_in(dir));
  hub.init_trackers("proj", {}, {tracker});
  CHECK_THROWS_AS(hub.log({{"", 1.0}}, 0), InvalidValue);
  CHECK_THROWS_AS(hub.log({{"ok", 1.0}, {" \t", 1.0}}, 0), InvalidValue);
  Image bad_image;
  bad_image.height = 2;
  bad_image.width = 2;
  bad_image.channels = 3;
  bad_image.pixels.resize(5);
  CHECK_THROWS_WITH(hub.log({{"img", bad_image}}, 0),
                    Catch::Contains("img") && Catch::Contains("2x2x3"));
  Histogram bad_hist;
  bad_hist.bucket_limits = {1, 2};
  bad_hist.bucket_counts = {1};
  CHECK_THROWS_AS(hub.log({{"h", bad_hist}}, 0), InvalidValue);
  CHECK_THROWS_AS(hub.log({{"h", Histogram{}}}, 0), InvalidValue);
  CHECK_THROWS_AS(hub.log({{"t", Table{{"a", "b"}, {{1}}}}}, 0), InvalidValue);
  CHECK_THROWS_AS(hub.log({{"g", ScalarGroup{{{"", 1.0}}}}}, 0), InvalidValue);
  hub.log(Values{}, 0);  // empty: nothing to log, not an error
  hub.log({{"损失/训练", 0.5}, {"text", "ünïcødé ✓"}}, 1);
  auto report = hub.end_training();
  auto logs = tracker->logs();
  REQUIRE(logs.size() == 1);
  CHECK(logs[0].values.find("损失/训练")->as_double() == 0.5);
  CHECK(report.trackers[0].logged == 1);
}

TEST_CASE("a step that goes backwards is logged, with one warning per tracker and key") {
  TempDir dir;
  WarningCapture warnings;
  auto a = std::make_shared<RecordingTracker>("a");
  auto b = std::make_shared<RecordingTracker>("b");
  TrackerHub hub(test::hub_options_in(dir));
  hub.init_trackers("proj", {}, {a, b});
  hub.log({{"loss", 1.0}, {"acc", 0.1}}, 10);
  hub.log({{"loss", 2.0}}, 5);
  hub.log({{"loss", 3.0}}, 4);
  hub.log({{"val", 3.0}}, 0);  // another key on its own scale: no warning
  hub.end_training();
  CHECK(a->logs().size() == 4);
  CHECK(b->logs().size() == 4);
  CHECK(warnings.count({"'a'", "step 5", "'loss'", "backwards"}) == 1);
  CHECK(warnings.count({"'b'", "'loss'", "backwards"}) == 1);
  CHECK(warnings.count({"backwards"}) == 2);
}

TEST_CASE("run names with .. / or control characters stay inside the logging dir") {
  TempDir dir;
  auto logs = dir.path() / "logs";
  TrackerHubOptions o = test::hub_options_in(dir);
  o.project_dir = logs;
  TrackerHub hub(o);
  hub.init_trackers("../../escape\n/..", {}, {"csv", "jsonl"});
  hub.log({{"x", 1}}, 0);
  hub.end_training();
  std::size_t files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.path())) {
    if (!e.is_regular_file()) continue;
    ++files;
    auto rel = e.path().lexically_relative(logs);
    INFO(e.path());
    CHECK(!rel.empty());
    CHECK(*rel.begin() != "..");
    CHECK(rel.string().find('\n') == std::string::npos);
  }
  CHECK(files >= 3);
}

TEST_CASE("logging_dir overrides project_dir and journals go under it") {
  TempDir dir;
  TrackerHubOptions o = test::hub_options_in(dir);
  o.logging_dir = dir.path() / "elsewhere";
  TrackerHub hub(o);
  CHECK(hub.logging_dir() == dir.path() / "elsewhere");
  hub.init_trackers("proj", {}, {"jsonl"});
  hub.end_training();
  CHECK(std::filesystem::exists(dir.path() / "elsewhere" / "proj" / "version_0" / "metrics.jsonl"));
}

TEST_CASE("options are validated") {
  TrackerHubOptions o;
  o.queue_bytes = 0;
  CHECK_THROWS_AS(TrackerHub(o), InvalidValue);
}

TEST_CASE("csv and jsonl of one run share its version directory; the next run gets the next one") {
  TempDir dir;
  for (int run = 0; run < 2; ++run) {
    TrackerHub hub(test::hub_options_in(dir));
    hub.init_trackers("proj", {}, {"csv", "jsonl"});
    hub.log({{"x", run}}, 0);
    hub.end_training();
  }
  for (const char* version : {"version_0", "version_1"}) {
    CHECK(std::filesystem::exists(dir.path() / "proj" / version / "metrics.csv"));
    CHECK(std::filesystem::exists(dir.path() / "proj" / version / "metrics.jsonl"));
  }
  CHECK_FALSE(std::filesystem::exists(dir.path() / "proj" / "version_2"));
}
