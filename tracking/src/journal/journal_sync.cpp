#include "accel/tracking/journal_sync.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <thread>

#include "accel/tracking/errors.hpp"
#include "hub/hub_record.hpp"
#include "hub/tracker_channel.hpp"
#include "journal/journal.hpp"

namespace accel {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
constexpr auto kMarkInterval = std::chrono::seconds(1);

// Runs call until it does not throw TrackerUnavailable, backing off, or until the deadline (then
// rethrows the last TrackerUnavailable).
template <class F>
void with_retries(F&& call, const SyncOptions& options, Clock::time_point deadline) {
  auto delay = options.retry_initial_delay;
  while (true) {
    try {
      call();
      return;
    } catch (const TrackerUnavailable&) {
      if (Clock::now() + delay > deadline) throw;
      std::this_thread::sleep_for(delay);
      delay = std::min(delay * 2, options.retry_max_delay);
    }
  }
}

std::unique_ptr<GeneralTracker> make_tracker(const json& identity, const SyncOptions& options) {
  const std::string name = identity.value("tracker", "");
  TrackerInit init;
  init.run_name = identity.value("project", "");
  init.logging_dir = identity.value("logging_dir", "");
  init.init_kwargs = identity.value("init_kwargs", json::object());
  init.run_id = identity.value("hub_run_id", "");
  init.resume = identity.value("resume", json());
  TrackerFactory factory = options.factory;
  if (!factory) {
    auto registration = find_tracker(name);
    if (!registration) {
      throw TrackerError(fmt::format(
          "the journal is for tracker '{}', which is not a built-in tracker; deliver it from a "
          "program that knows the class: accel::sync_journal(path, {{.factory = ...}})",
          name));
    }
    factory = registration->factory;
  }
  auto tracker = factory(init);
  if (!tracker)
    throw TrackerError(fmt::format("the factory of tracker '{}' returned nothing", name));
  return tracker;
}

void deliver(GeneralTracker& tracker, const JournalRecord& record) {
  detail::RecordTimeScope scope(record.time);
  switch (record.kind) {
    case RecordKind::config:
      tracker.store_init_configuration(record.config);
      break;
    case RecordKind::log:
      tracker.log(record.values, record.step);
      break;
    case RecordKind::finish:
      tracker.flush();
      tracker.finish(record.status);
      break;
    case RecordKind::identity:
    case RecordKind::acknowledged:
      break;
  }
}

// One sync_journal call's delivery of a journal's pending records to the tracker its identity
// names. Acknowledged records are marked in the journal (at most once a second while delivering,
// and at the end when something remains), so that an interrupted sync does not deliver them again.
class JournalDelivery {
 public:
  JournalDelivery(JournalWriter& writer, const JournalContents& contents,
                  const SyncOptions& options, SyncResult& result)
      : writer_(writer),
        contents_(contents),
        options_(options),
        result_(result),
        deadline_(Clock::now() + options.timeout) {}

  // Delivers the pending records and counts what was delivered and what remains into the result;
  // an error stops the delivery and is reported in result.error.
  void run() {
    try {
      start_tracker();
      deliver_pending();
    } catch (const std::exception& e) {
      result_.error = e.what();
      if (tracker_ && tracker_->holds_records()) held_.acknowledge(tracker_->acknowledged());
    }
    count_records();
    result_.complete = result_.remaining == 0 && result_.error.empty();
    if (!result_.complete) mark(true);
  }

 private:
  void start_tracker() {
    with_retries([&] { tracker_ = make_tracker(contents_.identity, options_); }, options_,
                 deadline_);
    with_retries([&] { tracker_->start(); }, options_, deadline_);
    holds_ = tracker_->holds_records();
    remember_run();
  }

  // The run may only exist now (the server was down the whole time): remember it, so that an
  // interrupted sync continues into the same run.
  void remember_run() {
    json identity = contents_.identity;
    identity["resume"] = tracker_->resume_info();
    if (identity != contents_.identity) {
      JournalRecord record;
      record.kind = RecordKind::identity;
      record.time = std::chrono::system_clock::now();
      record.identity = identity;
      writer_.append(record);
      writer_.sync();
    }
    result_.run = identity["resume"].dump();
  }

  void deliver_pending() {
    bool finished = false;
    for (const JournalRecord& record : contents_.pending) {
      with_retries([&] { deliver(*tracker_, record); }, options_, deadline_);
      if (record.kind == RecordKind::finish) {
        finished = true;
        result_.ended = record.status;
      }
      detail::HubRecord accepted;
      accepted.kind = record.kind;
      accepted.sequence = record.sequence;
      held_.accepted(std::move(accepted), holds_);
      if (finished) {
        held_.acknowledge_all();
      } else if (holds_) {
        held_.acknowledge(tracker_->acknowledged());
      }
      mark(false);
    }
    if (!finished) end_failed();
  }

  // The process died before end_training: the run ends failed, as it really did.
  void end_failed() {
    with_retries(
        [&] {
          tracker_->flush();
          tracker_->finish(RunStatus::failed);
        },
        options_, deadline_);
    result_.ended = RunStatus::failed;
    held_.acknowledge_all();
  }

  void count_records() {
    const uint64_t done = held_.acknowledged_sequence();
    for (const auto& record : contents_.pending) {
      if (record.sequence > done) {
        ++result_.remaining;
      } else {
        ++result_.records;
        if (record.kind == RecordKind::log) ++result_.logs;
      }
    }
  }

  // Appends how far the tracker has acknowledged (when further than the journal says); unless
  // force, at most once per kMarkInterval.
  void mark(bool force) {
    static thread_local Clock::time_point last{};
    if (!force && Clock::now() - last < kMarkInterval) return;
    last = Clock::now();
    JournalRecord ack;
    ack.kind = RecordKind::acknowledged;
    ack.time = std::chrono::system_clock::now();
    ack.acknowledged = held_.acknowledged_sequence();
    if (ack.acknowledged > contents_.acknowledged) writer_.append(ack);
    writer_.sync();
  }

  JournalWriter& writer_;
  const JournalContents& contents_;
  const SyncOptions& options_;
  SyncResult& result_;
  const Clock::time_point deadline_;
  std::unique_ptr<GeneralTracker> tracker_;
  bool holds_ = false;  // tracker_->holds_records()
  detail::HeldRecords held_;
};

// A delivered journal is removed, and its folder too when that is empty now.
void remove_journal(const std::filesystem::path& journal) {
  std::error_code ec;
  std::filesystem::remove(journal, ec);
  std::filesystem::remove(journal.parent_path(), ec);  // only when empty
}

}  // namespace

std::vector<std::filesystem::path> find_journals(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw InvalidValue(
        fmt::format("sync: '{}' does not exist; give a journal file, or the project "
                    "or logging directory of a run",
                    path.string()));
  }
  if (!std::filesystem::is_directory(path, ec)) return {path};
  std::vector<std::filesystem::path> out;
  for (auto it = std::filesystem::recursive_directory_iterator(
           path, std::filesystem::directory_options::skip_permission_denied, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it->is_regular_file(ec) && it->path().extension() == ".journal") out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

SyncResult sync_journal(const std::filesystem::path& journal, const SyncOptions& options) {
  SyncResult result;
  result.journal = journal;
  JournalWriter writer(journal);  // the lock: a running training process or sync has it
  JournalContents contents = read_journal_contents(journal);
  result.tracker = contents.identity.value("tracker", "");
  if (contents.pending.empty()) {
    result.complete = true;
  } else {
    if (contents.identity.is_null()) {
      throw TrackerError(fmt::format(
          "journal '{}' does not say which tracker it belongs to (no identity record); it cannot "
          "be delivered",
          journal.string()));
    }
    JournalDelivery(writer, contents, options, result).run();
  }
  if (result.complete) remove_journal(journal);
  return result;
}

std::string describe(const SyncResult& r) {
  if (r.complete && r.records == 0) {
    return fmt::format("{}: nothing left to deliver (already synced)", r.journal.string());
  }
  std::string text =
      fmt::format("{}: {} delivered {} records ({} log records) to {}", r.journal.string(),
                  r.tracker, r.records, r.logs, r.run.empty() ? std::string("its run") : r.run);
  if (r.ended) text += fmt::format("; run ended {}", to_string(*r.ended));
  if (r.complete) {
    text += "; journal removed";
  } else {
    text += fmt::format("; {} records remain in the journal ({}); run sync again", r.remaining,
                        r.error);
  }
  return text;
}

}  // namespace accel
