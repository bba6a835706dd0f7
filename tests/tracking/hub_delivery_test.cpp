// TrackerHub delivery: log() never waits for a slow or hung tracker; a full queue spills to the
// journal and is replayed in order exactly once; an unavailable backend gets every value once, in
// order, when it comes back; a throwing tracker is isolated (or fatal in strict mode); end_training
// reports what it could not deliver. Timed assertions use bounds far above the expected values.
#include <sys/stat.h>

#include "accel/tracking/hub.hpp"
#include "journal/journal.hpp"
#include "tracking_test_support.hpp"

using namespace accel;
using namespace std::chrono_literals;
using test::RecordingTracker;
using test::TempDir;
using test::WarningCapture;
using Clock = std::chrono::steady_clock;

namespace {

TrackerHubOptions options_in(const TempDir& dir) {
  TrackerHubOptions o = test::hub_options_in(dir);
  o.retry_initial_delay = 5ms;
  o.retry_max_delay = 40ms;
  return o;
}

void check_in_order_once(const RecordingTracker& tracker, int64_t n) {
  auto logs = tracker.logs();
  REQUIRE(static_cast<int64_t>(logs.size()) == n);
  for (int64_t i = 0; i < n; ++i) {
    INFO("log " << i);
    REQUIRE(logs[i].step.has_value());
    CHECK(*logs[i].step == i);
    CHECK(logs[i].values.find("i")->as_double() == double(i));
  }
}

// A strict hub whose only tracker, "broken", threw "disk on fire" at its first log (already made).
struct StrictHubWithBrokenTracker {
  explicit StrictHubWithBrokenTracker(const TempDir& dir) : hub(strict_options(dir)) {
    broken->throw_after_logs = 0;
    hub.init_trackers("proj", {}, {broken});
    hub.log({{"i", 0}}, 0);
  }
  static TrackerHubOptions strict_options(const TempDir& dir) {
    TrackerHubOptions o = options_in(dir);
    o.strict = true;
    return o;
  }
  std::shared_ptr<RecordingTracker> broken = std::make_shared<RecordingTracker>("broken");
  TrackerHub hub;
};

std::size_t csv_rows(const std::filesystem::path& csv) {
  auto text = test::read_file(csv);
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace

TEST_CASE("a slow (10 ms) and a hung tracker slow neither log() nor the other trackers") {
  TempDir dir;
  WarningCapture warnings;
  auto slow = std::make_shared<RecordingTracker>("slow");
  slow->delay = 10ms;
  auto hung = std::make_shared<RecordingTracker>("hung");
  hung->hang = true;
  TrackerHubOptions o = options_in(dir);
  o.flush_timeout = 300ms;
  o.end_training_timeout = 3s;
  TrackerHub hub(o);
  hub.init_trackers("proj", {}, {"csv", slow, hung});

  const int64_t n = 100;
  auto longest = Clock::duration::zero();
  const auto begin = Clock::now();
  for (int64_t i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    hub.log({{"i", i}, {"loss", 1.0 / double(i + 1)}}, i);
    longest = std::max(longest, Clock::now() - t0);
  }
  const auto total = Clock::now() - begin;
  // Blocking on the slow tracker alone would take n * 10 ms = 1 s; the hung one forever.
  CHECK(total < 250ms);
  CHECK(longest < 50ms);

  // The csv tracker has every row although the hung tracker has not received a single one.
  auto csv = dir.path() / "proj" / "version_0" / "metrics.csv";
  const auto deadline = Clock::now() + 10s;
  while ((!std::filesystem::exists(csv) || csv_rows(csv) < n + 1) && Clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  CHECK(csv_rows(csv) == n + 1);
  CHECK(hung->logs().empty());
  CHECK_FALSE(hub.flush());  // the hung tracker cannot catch up within flush_timeout

  auto report = hub.end_training();
  std::map<std::string, TrackerDelivery> by_name;
  for (auto& t : report.trackers) by_name[t.name] = t;
  CHECK(by_name["csv"].delivered == n);
  CHECK(by_name["slow"].delivered == n);  // 1 s of work fits in end_training_timeout
  CHECK_FALSE(by_name["slow"].timed_out);
  CHECK(by_name["hung"].timed_out);
  CHECK(by_name["hung"].delivered == 0);
  CHECK(by_name["hung"].undelivered == n);
  CHECK_FALSE(report.complete());
  CHECK(warnings.count({"end_training", "'hung'", "100 of 100"}) == 1);
  check_in_order_once(*slow, n);
  hung->hang = false;  // let its detached worker finish
}

TEST_CASE("a full queue spills to the journal and is replayed in order exactly once") {
  TempDir dir;
  WarningCapture warnings;
  auto tracker = std::make_shared<RecordingTracker>("stuck");
  tracker->hang = true;
  TrackerHubOptions o = options_in(dir);
  o.queue_bytes = 8 * 1024;
  o.flush_timeout = 200ms;
  TrackerHub hub(o);
  hub.init_trackers("proj", {}, {tracker});
  const int64_t n = 2000;
  for (int64_t i = 0; i < n; ++i) hub.log({{"i", i}, {"text", std::string(100, 'x')}}, i);
  CHECK(warnings.count({"'stuck' is behind", "journal"}) == 1);

  // The spilled records are on disk, private, and readable up to the last one.
  std::filesystem::path journal;
  for (const auto& e : std::filesystem::directory_iterator(dir.path() / ".accel_journal"))
    journal = e.path();
  REQUIRE(!journal.empty());
  struct stat st {};
  REQUIRE(::stat(journal.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  hub.flush();  // times out for the hung tracker but fsyncs its journal
  auto on_disk = read_journal(journal);
  CHECK(on_disk.size() > 1000);
  CHECK(*on_disk.back().step == n - 1);

  tracker->hang = false;
  auto report = hub.end_training();
  CHECK(report.complete());
  check_in_order_once(*tracker, n);
  CHECK_FALSE(std::filesystem::exists(journal));  // delivered: the journal is removed
}

TEST_CASE("a backend that is unavailable for a while gets every value once, in order") {
  TempDir dir;
  WarningCapture warnings;
  auto tracker = std::make_shared<RecordingTracker>("flaky");
  tracker->unavailable_calls = 6;
  auto steady = std::make_shared<RecordingTracker>("steady");
  TrackerHub hub(options_in(dir));
  hub.init_trackers("proj", {}, {tracker, steady});
  const int64_t n = 300;
  for (int64_t i = 0; i < n; ++i) {
    hub.log({{"i", i}}, i);
    if (i % 50 == 0) std::this_thread::sleep_for(2ms);
  }
  // While the backend is known to be down flush() does not wait for it (it makes the journal
  // durable and says false); once it is back, flush() waits for it again.
  const auto deadline = Clock::now() + 10s;
  while (!hub.flush() && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
  check_in_order_once(*tracker, n);
  check_in_order_once(*steady, n);
  CHECK(tracker->unavailable_calls == 0);
  CHECK(warnings.count({"'flaky'", "unavailable", "127.0.0.1:1 refused"}) >= 1);
  CHECK(warnings.count({"'flaky'", "backend is back"}) >= 1);
  auto report = hub.end_training();
  CHECK(report.complete());
}

TEST_CASE("records a backend never accepted stay in the journal and are reported") {
  TempDir dir;
  WarningCapture warnings;
  auto tracker = std::make_shared<RecordingTracker>("down");
  tracker->unavailable_calls = 1'000'000;
  TrackerHubOptions o = options_in(dir);
  o.end_training_timeout = 500ms;
  TrackerHub hub(o);
  hub.init_trackers("proj", {{"lr", 1}}, {tracker});
  for (int64_t i = 0; i < 20; ++i) hub.log({{"i", i}}, i);
  const auto t0 = Clock::now();
  auto report = hub.end_training();
  CHECK(Clock::now() - t0 < 5s);
  REQUIRE(report.trackers.size() == 1);
  const auto& t = report.trackers[0];
  CHECK(t.logged == 20);
  CHECK(t.delivered == 0);
  CHECK(t.undelivered == 20);
  CHECK(t.error.find("unavailable") != std::string::npos);
  REQUIRE(!t.journal.empty());
  auto records = read_journal(t.journal);
  std::vector<int64_t> steps;
  for (const auto& r : records) {
    if (r.kind == RecordKind::log) steps.push_back(*r.step);
  }
  REQUIRE(steps.size() == 20);
  for (int64_t i = 0; i < 20; ++i) CHECK(steps[i] == i);
  CHECK(warnings.count({"end_training", "'down'", "20 of 20", "kept in"}) == 1);
}

TEST_CASE("a throwing tracker is disabled with one warning; the others go on") {
  TempDir dir;
  WarningCapture warnings;
  auto broken = std::make_shared<RecordingTracker>("broken");
  broken->throw_after_logs = 3;
  auto fine = std::make_shared<RecordingTracker>("fine");
  TrackerHub hub(options_in(dir));
  hub.init_trackers("proj", {}, {broken, fine});
  for (int64_t i = 0; i < 10; ++i) hub.log({{"i", i}}, i);
  CHECK_FALSE(hub.flush());  // not everything reached "broken"
  for (int64_t i = 10; i < 20; ++i) hub.log({{"i", i}}, i);
  auto report = hub.end_training();
  check_in_order_once(*fine, 20);
  CHECK(broken->logs().size() == 3);
  CHECK(warnings.count({"'broken' failed and is disabled", "disk on fire"}) == 1);
  std::map<std::string, TrackerDelivery> by_name;
  for (auto& t : report.trackers) by_name[t.name] = t;
  CHECK(by_name["broken"].delivered == 3);
  CHECK(by_name["broken"].undelivered == 17);
  CHECK(by_name["broken"].error == "disk on fire");
  CHECK(by_name["fine"].undelivered == 0);
  CHECK(by_name["fine"].error.empty());
}

TEST_CASE("strict mode rethrows a tracker's error on the training thread") {
  TempDir dir;
  WarningCapture warnings;
  StrictHubWithBrokenTracker strict(dir);
  auto& hub = strict.hub;
  CHECK_THAT(test::thrown<TrackerError>([&] { hub.flush(); }),
             Catch::Contains("'broken'") && Catch::Contains("disk on fire"));
  // The nested original is reachable.
  try {
    hub.log({{"i", 1}}, 1);
    hub.flush();
  } catch (const TrackerError&) {
    FAIL("the error is thrown once");
  }
  auto report = hub.end_training();
  CHECK(report.trackers[0].error == "disk on fire");
}

TEST_CASE("strict mode: the original exception is nested in the TrackerError") {
  TempDir dir;
  WarningCapture warnings;
  StrictHubWithBrokenTracker strict(dir);
  std::string nested;
  try {
    strict.hub.end_training();
  } catch (const TrackerError& e) {
    try {
      std::rethrow_if_nested(e);
    } catch (const std::runtime_error& inner) {
      nested = inner.what();
    }
  }
  CHECK(nested == "disk on fire");
}

TEST_CASE("end_training waits for a slow tracker and finishes it with the status") {
  TempDir dir;
  auto slow = std::make_shared<RecordingTracker>("slow");
  slow->delay = 10ms;
  TrackerHub hub(options_in(dir));
  hub.init_trackers("proj", {}, {slow});
  for (int64_t i = 0; i < 30; ++i) hub.log({{"i", i}}, i);
  auto report = hub.end_training(RunStatus::killed);
  CHECK(report.complete());
  check_in_order_once(*slow, 30);
  CHECK(slow->calls().back().what == "finish");
  CHECK(slow->calls().back().status == RunStatus::killed);
}

TEST_CASE("record_time gives trackers the time of the log call, not of delivery") {
  TempDir dir;
  struct TimeTracker : RecordingTracker {
    TimeTracker() : RecordingTracker("time") {}
    std::vector<std::chrono::system_clock::time_point> times;
    void log(const Values& v, std::optional<int64_t> s) override {
      times.push_back(record_time());
      RecordingTracker::log(v, s);
    }
  };
  auto tracker = std::make_shared<TimeTracker>();
  tracker->hang = true;
  TrackerHub hub(options_in(dir));
  hub.init_trackers("proj", {}, {tracker});
  const auto before = std::chrono::system_clock::now();
  hub.log({{"i", 0}}, 0);
  const auto after = std::chrono::system_clock::now();
  std::this_thread::sleep_for(100ms);
  tracker->hang = false;
  hub.end_training();
  REQUIRE(tracker->times.size() == 1);
  CHECK(tracker->times[0] >= before);
  CHECK(tracker->times[0] <= after);
}

TEST_CASE("an unwritable journal loses only the overflow, with one warning, and delivery goes on") {
  TempDir dir;
  WarningCapture warnings;
  auto tracker = std::make_shared<RecordingTracker>("stuck");
  tracker->hang = true;
  TrackerHubOptions o = options_in(dir);
  o.queue_bytes = 4 * 1024;
  o.journal_dir = dir.path() / "not-a-directory";
  std::ofstream(o.journal_dir) << "a file where the journal directory should be";
  TrackerHub hub(o);
  hub.init_trackers("proj", {}, {tracker});
  for (int64_t i = 0; i < 200; ++i) hub.log({{"i", i}, {"text", std::string(100, 'x')}}, i);
  CHECK(warnings.count({"'stuck'", "cannot be kept", "lost"}) == 1);
  tracker->hang = false;
  CHECK(hub.flush());
  const auto before = tracker->logs().size();
  CHECK(before < 200);
  for (int64_t i = 200; i < 210; ++i) hub.log({{"i", i}}, i);
  auto report = hub.end_training();
  CHECK(tracker->logs().size() == before + 10);  // the queue is used again once it has room
  CHECK(report.trackers[0].undelivered == 200 - before);
  CHECK(warnings.count({"'stuck'", "cannot be kept"}) == 1);
}
