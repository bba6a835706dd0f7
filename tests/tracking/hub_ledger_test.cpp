// TrackerHub's ledger: every record log() accepted ends up delivered (acknowledged by the backend),
// or in the journal, and the end report counts from the file itself. Memory stays within the queue
// bound plus a documented constant under a backend that never answers. Bounds in this file are far
// above what is expected, so a slow machine does not fail them.
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "accel/tracking/hub.hpp"
#include "accel/tracking/registry.hpp"
#include "journal/journal.hpp"
#include "tracking_test_support.hpp"

using namespace accel;
using namespace std::chrono_literals;
using test::DeadTracker;
using test::RecordingTracker;
using test::TempDir;
using test::WarningCapture;

namespace {

// A backend that holds records in a batch of its own (like MLflow's) and acknowledges the first
// `acknowledge_upto` of them; flush and finish fail while `down`.
class HoldingTracker final : public GeneralTracker {
 public:
  std::string name() const override { return "holding"; }
  bool requires_logging_directory() const override { return false; }
  bool holds_records() const override { return true; }
  void store_init_configuration(const nlohmann::json&) override { ++accepted_; }
  void log(const Values&, std::optional<int64_t>) override {
    ++accepted_;
    acknowledge(std::min<uint64_t>(accepted_, acknowledge_upto));
  }
  void flush() override {
    if (down) throw TrackerUnavailable("holding: server went away");
  }
  void finish(RunStatus status) override {
    // What a tracker with a local file of its own does first (a W&B run's exit record).
    ++finish_calls;
    local_end = status;
    if (down && !finish_delivers) throw TrackerUnavailable("holding: server went away");
  }
  nlohmann::json resume_info() const override { return {{"run_id", "r-1"}}; }
  std::atomic<bool> down{false};
  uint64_t acknowledge_upto = 0;
  // finish() delivers what the tracker holds even while flush() fails (another way out).
  bool finish_delivers = false;
  std::atomic<int> finish_calls{0};
  std::optional<RunStatus> local_end;

 private:
  uint64_t accepted_ = 0;
};

std::size_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

void check_steps_in_order(const JournalContents& contents, int64_t first, int64_t count) {
  int64_t expected = first;
  for (const auto& record : contents.pending) {
    if (record.kind != RecordKind::log) continue;
    REQUIRE(record.step.has_value());
    REQUIRE(*record.step == expected);
    ++expected;
  }
  CHECK(expected == first + count);
}

}  // namespace

TEST_CASE("a full queue and a dead backend: every record and the config end up in the journal") {
  TempDir dir;
  WarningCapture warnings;
  auto tracker = std::make_shared<DeadTracker>();
  TrackerHubOptions options = test::hub_options_in(dir);
  options.queue_bytes = 20'000;
  options.end_training_timeout = 300ms;
  options.retry_initial_delay = 5ms;
  TrackerHub hub(options);
  hub.init_trackers("proj", {{"lr", 0.5}}, {tracker});
  for (int64_t i = 0; i < 200; ++i) hub.log({{"loss", 1.0 / double(i + 1)}, {"i", i}}, i);
  auto report = hub.end_training();
  REQUIRE(report.trackers.size() == 1);
  const auto& t = report.trackers[0];
  CHECK(t.logged == 200);
  CHECK(t.delivered == 0);
  CHECK(t.journaled == 200);
  CHECK(t.lost == 0);
  REQUIRE_FALSE(t.journal.empty());
  CHECK(t.sync_command == "accel-launch sync " + t.journal.string());
  CHECK(warnings.count({"200 are kept in the journal", "accel-launch sync"}) == 1);

  const JournalContents contents = read_journal_contents(t.journal);
  CHECK(contents.pending_logs == 200);
  REQUIRE(contents.pending.size() == 202);  // config + 200 logs + finish
  CHECK(contents.pending.front().kind == RecordKind::config);
  CHECK(contents.pending.front().config == nlohmann::json{{"lr", 0.5}});
  CHECK(contents.pending.back().kind == RecordKind::finish);
  CHECK(contents.pending.back().status == RunStatus::finished);
  check_steps_in_order(contents, 0, 200);
  CHECK(contents.identity.at("tracker") == "dead");
  CHECK(contents.identity.at("project") == "proj");
}

TEST_CASE("records a holding tracker never got acknowledged are in the journal at the end") {
  TempDir dir;
  WarningCapture warnings;
  auto tracker = std::make_shared<HoldingTracker>();
  tracker->acknowledge_upto = 51;  // the config and the first 50 log records
  TrackerHubOptions options = test::hub_options_in(dir);
  options.end_training_timeout = 300ms;
  TrackerHub hub(options);
  hub.init_trackers("proj", {{"a", 1}}, {tracker});
  for (int64_t i = 0; i < 80; ++i) hub.log({{"x", i}}, i);
  tracker->down = true;
  auto report = hub.end_training();
  const auto& t = report.trackers.at(0);
  CHECK(t.logged == 80);
  CHECK(t.delivered == 50);
  CHECK(t.journaled == 30);
  CHECK(t.lost == 0);
  const JournalContents contents = read_journal_contents(t.journal);
  CHECK(contents.pending_logs == 30);
  check_steps_in_order(contents, 50, 30);
  CHECK(contents.pending.back().kind == RecordKind::finish);
  CHECK(contents.identity.at("resume") == nlohmann::json{{"run_id", "r-1"}});
  // flush() failed, yet finish() ran: the tracker could write the end of its local files.
  CHECK(tracker->finish_calls >= 1);
  CHECK(tracker->local_end == RunStatus::finished);
}

TEST_CASE("a finish that delivers while flush() fails ends the run once, with nothing journaled") {
  TempDir dir;
  WarningCapture warnings;
  auto tracker = std::make_shared<HoldingTracker>();
  tracker->finish_delivers = true;
  TrackerHubOptions options = test::hub_options_in(dir);
  options.end_training_timeout = 2s;
  TrackerHub hub(options);
  hub.init_trackers("proj", {{"a", 1}}, {tracker});
  for (int64_t i = 0; i < 20; ++i) hub.log({{"x", i}}, i);
  tracker->down = true;
  auto report = hub.end_training(RunStatus::failed);
  const auto& t = report.trackers.at(0);
  CHECK(t.delivered == 20);
  CHECK(t.journaled == 0);
  CHECK(t.lost == 0);
  CHECK(tracker->finish_calls == 1);
  CHECK(tracker->local_end == RunStatus::failed);
}

TEST_CASE(
    "flush() does not wait for a backend that is known to be down, and makes the journal "
    "durable") {
  TempDir dir;
  WarningCapture warnings;
  auto tracker = std::make_shared<RecordingTracker>("dead");
  tracker->unavailable_calls = 1'000'000'000;
  TrackerHubOptions options = test::hub_options_in(dir);
  options.flush_timeout = 10s;
  options.end_training_timeout = 200ms;
  TrackerHub hub(options);
  hub.init_trackers("proj", {}, {tracker});
  hub.log({{"x", 1}}, 0);
  // Wait until the worker has met the outage.
  for (int i = 0; i < 500 && warnings.count({"'dead'", "unavailable"}) == 0; ++i)
    std::this_thread::sleep_for(5ms);
  for (int64_t i = 1; i < 100; ++i) hub.log({{"x", i}}, i);
  const auto begin = std::chrono::steady_clock::now();
  CHECK_FALSE(hub.flush());
  CHECK(std::chrono::steady_clock::now() - begin < 2s);
  // Durable now: the records in memory are in the file (mirror copies), before end_training.
  const auto journal = dir.path() / ".accel_journal";
  auto journals = std::vector<std::filesystem::path>(std::filesystem::directory_iterator(journal),
                                                     std::filesystem::directory_iterator());
  REQUIRE(journals.size() == 1);
  CHECK(read_journal_contents(journals[0]).pending_logs == 100);
  hub.end_training();
}

TEST_CASE("1,000,000 log calls against a dead backend stay within the queue bound in memory") {
  TempDir dir;
  WarningCapture warnings;
  auto tracker = std::make_shared<DeadTracker>();
  TrackerHubOptions options = test::hub_options_in(dir);
  options.queue_bytes = 16U << 20;
  options.end_training_timeout = 200ms;
  // The documented constant (docs/reliability.md): the journal's write buffer (4 MiB) plus threads,
  // allocator slack and the reading of the journal at the end.
  const std::size_t constant = 32U << 20;
  const std::size_t baseline = rss_bytes();
  std::atomic<bool> stop{false};
  std::atomic<std::size_t> peak{0};
  std::thread sampler([&] {
    while (!stop) {
      peak = std::max(peak.load(), rss_bytes());
      std::this_thread::sleep_for(5ms);
    }
  });
  int64_t n = 1'000'000;
  {
    TrackerHub hub(options);
    hub.init_trackers("proj", {}, {tracker});
    for (int64_t i = 0; i < n; ++i) {
      Values values;
      for (int k = 0; k < 10; ++k) values.set("train/metric_" + std::to_string(k), double(i + k));
      hub.log(std::move(values), i);
    }
    auto report = hub.end_training();
    CHECK(report.trackers.at(0).journaled == static_cast<uint64_t>(n));
    CHECK(report.trackers.at(0).lost == 0);
  }
  stop = true;
  sampler.join();
  INFO("baseline RSS " << baseline / 1024 << " KiB, peak " << peak / 1024 << " KiB");
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  WARN("the memory bound (queue_bytes + " << constant / (1 << 20)
                                          << " MiB) is not checked under a sanitizer (its shadow "
                                             "memory counts as RSS)");
#else
  CHECK(peak - baseline <= options.queue_bytes + constant);
#endif
}

TEST_CASE(
    "a backlog replayed from the journal while new records keep overflowing arrives once, "
    "in order") {
  // The replay takes well over a second, so acknowledged marks are written into the journal between
  // the overflow records (a regression: a mark inside a run of overflow records stopped the
  // replay).
  TempDir dir;
  WarningCapture warnings;
  auto tracker = std::make_shared<RecordingTracker>("slow");
  tracker->unavailable_calls = 3;
  tracker->delay = std::chrono::microseconds(150);
  TrackerHubOptions options = test::hub_options_in(dir);
  options.queue_bytes = 8 * 1024;
  options.retry_initial_delay = 100ms;
  options.end_training_timeout = 60s;
  TrackerHub hub(options);
  hub.init_trackers("proj", {}, {tracker});
  const int64_t n = 12'000;
  for (int64_t i = 0; i < n; ++i) {
    hub.log({{"i", i}}, i);
    if (i % 100 == 0) std::this_thread::sleep_for(1ms);
  }
  auto report = hub.end_training();
  const auto& t = report.trackers.at(0);
  INFO("delivered " << t.delivered << " journaled " << t.journaled << " lost " << t.lost
                    << " error '" << t.error << "'");
  CHECK(report.complete());
  CHECK(t.delivered == static_cast<uint64_t>(n));
  const auto logs = tracker->logs();
  for (std::size_t i = 0; i < logs.size(); ++i) {
    if (*logs[i].step != static_cast<int64_t>(i)) {
      FAIL("log " << i << " has step " << *logs[i].step);
    }
  }
  REQUIRE(logs.size() == static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (*logs[static_cast<std::size_t>(i)].step != i)
      FAIL("log " << i << " has step " << *logs[i].step);
  }
  CHECK(warnings.count({"'slow' is behind"}) == 1);
}

TEST_CASE(
    "a new run names the journals its predecessor left, and with sync_leftover_journals "
    "delivers them into their tracker") {
  TempDir dir;
  WarningCapture warnings;
  // What the registered "leftover" tracker received, across the two hubs.
  static std::mutex mutex;
  static std::vector<int64_t> delivered_steps;
  static std::atomic<bool> down{true};
  class LeftoverTracker final : public GeneralTracker {
   public:
    std::string name() const override { return "leftover"; }
    bool requires_logging_directory() const override { return false; }
    void store_init_configuration(const nlohmann::json&) override { check(); }
    void log(const Values&, std::optional<int64_t> step) override {
      check();
      std::lock_guard lock(mutex);
      delivered_steps.push_back(*step);
    }
    void finish(RunStatus) override { check(); }

   private:
    static void check() {
      if (down) throw TrackerUnavailable("leftover: server away");
    }
  };
  register_tracker(
      {.name = "leftover",
       .factory = [](const TrackerInit&) { return std::make_unique<LeftoverTracker>(); },
       .unavailable_reason = {},
       .requires_logging_directory = false});
  TrackerHubOptions options = test::hub_options_in(dir);
  options.end_training_timeout = 200ms;
  options.retry_initial_delay = 5ms;
  {
    TrackerHub first(options);
    first.init_trackers("proj", {}, {"leftover"});
    for (int64_t i = 0; i < 30; ++i) first.log({{"x", i}}, i);
    CHECK(first.end_training().trackers.at(0).journaled == 30);
  }
  {
    TrackerHub second(options);  // says so, delivers nothing
    second.init_trackers("proj", {}, {std::make_shared<RecordingTracker>("other")});
    CHECK(warnings.count({"found 1 journal", "accel-launch sync"}) == 1);
    second.end_training();
  }
  down = false;
  options.sync_leftover_journals = true;
  options.end_training_timeout = 10s;
  {
    TrackerHub third(options);
    third.init_trackers("proj", {}, {std::make_shared<RecordingTracker>("other")});
    third.end_training();  // waits for the background delivery
  }
  std::lock_guard lock(mutex);
  REQUIRE(delivered_steps.size() == 30);
  for (int64_t i = 0; i < 30; ++i) CHECK(delivered_steps[static_cast<std::size_t>(i)] == i);
  CHECK(warnings.count({"leftover journal", "delivered 32 records (30 log records)"}) == 1);
  const auto journals = dir.path() / ".accel_journal";  // the delivered journal was removed
  CHECK((!std::filesystem::exists(journals) || std::filesystem::is_empty(journals)));
}
