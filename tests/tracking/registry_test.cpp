// Registry: built-ins are listed, users register their own classes by name, bad registrations fail.
#include "accel/tracking/registry.hpp"

#include "accel/tracking/errors.hpp"
#include "accel/tracking/hub.hpp"
#include "tracking_test_support.hpp"

using namespace accel;

TEST_CASE("csv and jsonl are built in") {
  auto names = registered_tracker_names();
  CHECK(std::find(names.begin(), names.end(), "csv") != names.end());
  CHECK(std::find(names.begin(), names.end(), "jsonl") != names.end());
  auto csv = find_tracker("csv");
  REQUIRE(csv);
  CHECK(csv->requires_logging_directory);
  CHECK(csv->main_process_only);
  auto tracker = csv->factory(TrackerInit{"run", "/tmp/unused", nlohmann::json::object(), ""});
  CHECK(tracker->name() == "csv");
  CHECK_FALSE(find_tracker("no_such_tracker"));
}

TEST_CASE("a user class is registered under a name and can replace it") {
  register_tracker({.name = "registry_test_tracker",
                    .factory =
                        [](const TrackerInit& init) {
                          return std::make_unique<test::RecordingTracker>(init.run_name);
                        },
                    .unavailable_reason = {}});
  auto found = find_tracker("registry_test_tracker");
  REQUIRE(found);
  CHECK(found->factory(TrackerInit{"first", {}, {}, ""})->name() == "first");
  register_tracker(
      {.name = "registry_test_tracker",
       .factory =
           [](const TrackerInit&) { return std::make_unique<test::RecordingTracker>("second"); },
       .unavailable_reason = [] { return std::optional<std::string>("no server"); }});
  found = find_tracker("registry_test_tracker");
  CHECK(found->factory(TrackerInit{})->name() == "second");
  CHECK(found->unavailable_reason() == "no server");
}

TEST_CASE("registrations without a name or factory are rejected") {
  CHECK_THROWS_AS(
      register_tracker(
          {.name = "",
           .factory = [](const TrackerInit&) { return std::make_unique<test::RecordingTracker>(); },
           .unavailable_reason = {}}),
      InvalidValue);
  CHECK_THROWS_AS(register_tracker({.name = "nofactory", .factory = {}, .unavailable_reason = {}}),
                  InvalidValue);
}

TEST_CASE(
    "an alias finds its tracker; names and \"all\" list it once, and alias plus name start one "
    "tracker") {
  register_tracker({.name = "registry_alias_tracker",
                    .factory =
                        [](const TrackerInit&) {
                          return std::make_unique<test::RecordingTracker>("registry_alias_tracker");
                        },
                    .unavailable_reason = {},
                    .aliases = {"registry_alias"}});
  auto found = find_tracker("registry_alias");
  REQUIRE(found);
  CHECK(found->name == "registry_alias_tracker");
  const auto names = registered_tracker_names();
  CHECK(std::count(names.begin(), names.end(), "registry_alias_tracker") == 1);
  CHECK(std::count(names.begin(), names.end(), "registry_alias") == 0);

  test::TempDir dir;
  TrackerHub hub(test::hub_options_in(dir));
  hub.init_trackers("alias", {}, {"registry_alias", "registry_alias_tracker"});
  std::size_t started = 0;
  for (auto* tracker : hub.trackers()) started += tracker->name() == "registry_alias_tracker";
  CHECK(started == 1);
  hub.end_training();
}
