#include "accel/tracking/journal_sync.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <thread>

#include "accel/tracking/errors.hpp"
#include "journal/journal.hpp"
#include "hub/hub_record.hpp"
#include "hub/tracker_channel.hpp"

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
    const auto deadline = Clock::now() + options.timeout;
    std::unique_ptr<GeneralTracker> tracker;
    detail::HeldRecords held;
    auto mark = [&](bool force) {
      static thread_local Clock::time_point last{};
      if (!force && Clock::now() - last < kMarkInterval) return;
      last = Clock::now();
      JournalRecord ack;
      ack.kind = RecordKind::acknowledged;
      ack.time = std::chrono::system_clock::now();
      ack.acknowledged = held.acknowledged_sequence();
      if (ack.acknowledged > contents.acknowledged) writer.append(ack);
      writer.sync();
    };
    uint64_t accepted_logs = 0;
    std::size_t next = 0;
    bool finished = false;
    try {
      with_retries([&] { tracker = make_tracker(contents.identity, options); }, options, deadline);
      with_retries([&] { tracker->start(); }, options, deadline);
      const bool holds = tracker->holds_records();
      // The run may only exist now (the server was down the whole time): remember it, so that an
      // interrupted sync continues into the same run.
      json identity = contents.identity;
      identity["resume"] = tracker->resume_info();
      if (identity != contents.identity) {
        JournalRecord record;
        record.kind = RecordKind::identity;
        record.time = std::chrono::system_clock::now();
        record.identity = identity;
        writer.append(record);
        writer.sync();
      }
      result.run = identity["resume"].dump();
      for (; next < contents.pending.size(); ++next) {
        const JournalRecord& record = contents.pending[next];
        with_retries([&] { deliver(*tracker, record); }, options, deadline);
        if (record.kind == RecordKind::log) ++accepted_logs;
        if (record.kind == RecordKind::finish) {
          finished = true;
          result.ended = record.status;
        }
        detail::HubRecord accepted;
        accepted.kind = record.kind;
        accepted.sequence = record.sequence;
        held.accepted(std::move(accepted), holds);
        if (finished) {
          held.acknowledge_all();
        } else if (holds) {
          held.acknowledge(tracker->acknowledged());
        }
        mark(false);
      }
      if (!finished) {
        // The process died before end_training: the run ends failed, as it really did.
        with_retries(
            [&] {
              tracker->flush();
              tracker->finish(RunStatus::failed);
            },
            options, deadline);
        result.ended = RunStatus::failed;
        held.acknowledge_all();
      }
    } catch (const std::exception& e) {
      result.error = e.what();
      if (tracker && tracker->holds_records()) held.acknowledge(tracker->acknowledged());
    }
    const uint64_t done = held.acknowledged_sequence();
    for (const auto& record : contents.pending) {
      if (record.sequence > done) {
        ++result.remaining;
      } else {
        ++result.records;
        if (record.kind == RecordKind::log) ++result.logs;
      }
    }
    (void)accepted_logs;
    result.complete = result.remaining == 0 && result.error.empty();
    if (!result.complete) mark(true);
  }
  if (result.complete) {
    std::error_code ec;
    std::filesystem::remove(journal, ec);
    std::filesystem::remove(journal.parent_path(), ec);  // only when empty
  }
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
