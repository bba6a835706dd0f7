#include "hub/tracker_channel.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/warnings.hpp"

namespace accel {
namespace {
thread_local std::optional<std::chrono::system_clock::time_point> current_record_time;
}  // namespace

std::chrono::system_clock::time_point record_time() {
  return current_record_time ? *current_record_time : std::chrono::system_clock::now();
}

namespace detail {
namespace {

// While records keep coming the worker polls every kPollInterval, so log() never pays for a
// wake-up; after kPollsBeforeSleep empty polls it sleeps until push() wakes it.
constexpr auto kPollInterval = std::chrono::milliseconds(2);
constexpr int kPollsBeforeSleep = 50;
// While end_training waits, retries of an unavailable backend are at least this frequent.
constexpr auto kClosingRetryDelay = std::chrono::milliseconds(200);

}  // namespace

RecordTimeScope::RecordTimeScope(std::chrono::system_clock::time_point time) {
  current_record_time = time;
}
RecordTimeScope::~RecordTimeScope() {
  current_record_time.reset();
}

// ---- HeldRecords -------------------------------------------------------------------------------

void HeldRecords::accepted(HubRecord record, bool holds) {
  ++accepted_;
  if (!holds) {
    if (held_.empty()) acknowledged_sequence_ = record.sequence;
    return;
  }
  bytes_ += record.bytes;
  held_.emplace_back(accepted_, std::move(record));
}

uint64_t HeldRecords::acknowledge(uint64_t tracker_count) {
  uint64_t logs = 0;
  while (!held_.empty() && held_.front().first <= tracker_count) {
    const HubRecord& record = held_.front().second;
    if (record.kind == RecordKind::log) ++logs;
    acknowledged_sequence_ = record.sequence;
    bytes_ -= record.bytes;
    held_.pop_front();
  }
  return logs;
}

uint64_t HeldRecords::acknowledge_all() {
  return acknowledge(accepted_);
}

// ---- TrackerChannel
// ------------------------------------------------------------------------------

TrackerChannel::TrackerChannel(std::shared_ptr<GeneralTracker> tracker, ChannelSettings settings)
    : tracker_(std::move(tracker)),
      name_(tracker_->name()),
      settings_(std::move(settings)),
      holds_records_(tracker_->holds_records()),
      retry_delay_(settings_.retry_initial_delay) {}

TrackerChannel::~TrackerChannel() {
  if (worker_.joinable())
    worker_.detach();  // only reachable when the worker itself held the last ref
}

void TrackerChannel::start_worker() {
  worker_ = std::thread([self = shared_from_this()] { self->worker_main(); });
}

nlohmann::json TrackerChannel::identity() const {
  nlohmann::json out = settings_.identity;
  out["resume"] = tracker_->resume_info();
  return out;
}

std::shared_ptr<JournalSpool> TrackerChannel::spool_locked(std::unique_lock<std::mutex>& lock) {
  if (spool_ || spool_failed_) return spool_;
  // Opening it creates a directory and a file, and starts a thread: not under the lock. One opener
  // at a time (the file's lock would refuse a second).
  lock.unlock();
  std::lock_guard opening(spool_open_mutex_);
  lock.lock();
  if (spool_ || spool_failed_) return spool_;
  lock.unlock();
  std::shared_ptr<JournalSpool> opened;
  std::string error;
  try {
    opened = std::make_shared<JournalSpool>(settings_.journal_path, identity());
  } catch (const std::exception& e) {
    error = e.what();
  }
  lock.lock();
  if (!opened) {
    spool_failed_ = true;
    warn(
        fmt::format("tracker '{}': records that cannot be queued or delivered now cannot be kept "
                    "in a journal either, and are lost: {}",
                    name_, error));
  }
  spool_ = std::move(opened);
  return spool_;
}

// ---- hub-thread side ----------------------------------------------------------------------------

void TrackerChannel::push(HubRecord record) {
  std::unique_lock lock(mutex_);
  if (record.kind == RecordKind::finish) closed_ = true;
  if (abandoned_) {
    if (record.kind == RecordKind::log) {
      ++logs_pushed_;
      ++logs_lost_;
    }
    return;
  }
  record.sequence = next_sequence_++;
  if (record.kind == RecordKind::log) ++logs_pushed_;
  const std::size_t memory = queue_.bytes() + held_.bytes() + (current_ ? current_->bytes : 0);
  if (!journal_mode_ && !broken_ && memory + record.bytes <= settings_.queue_bytes) {
    queue_.push_back(std::move(record));
    if (worker_sleeping_) work_cv_.notify_one();
    return;
  }
  auto spool = spool_locked(lock);
  if (!spool) {
    if (record.kind == RecordKind::log) ++logs_lost_;
    return;
  }
  if (!journal_mode_ && !broken_ && !warned_spill_) {
    warned_spill_ = true;
    warn(fmt::format(
        "tracker '{}' is behind: its queue holds {} bytes (queue_bytes = {}); new records are kept "
        "in the journal '{}' and delivered in order when it catches up",
        name_, memory, settings_.queue_bytes, settings_.journal_path.string()));
  }
  if (!journal_mode_) replay_next_ = record.sequence;
  journal_mode_ = true;
  overflow_last_ = record.sequence;
  // The spool only copies the record into its buffer; its own thread writes the file.
  spool->append_overflow(record);
  if (worker_sleeping_) work_cv_.notify_one();
}

bool TrackerChannel::backend_down() const {
  std::lock_guard lock(mutex_);
  return backend_down_ && !exited_;
}

void TrackerChannel::persist() {
  std::lock_guard persisting(persist_mutex_);
  std::vector<HubRecord> memory;
  std::shared_ptr<JournalSpool> spool;
  {
    std::unique_lock lock(mutex_);
    spool = spool_locked(lock);
    if (!spool || finished_) return;
    // Records read back from the journal are on disk already.
    auto keep = [&](const HubRecord& record) {
      if (!record.journaled && record.sequence > durable_upto_) memory.push_back(record);
    };
    for (const auto& [count, record] : held_.records()) keep(record);
    if (current_) keep(*current_);
    queue_.for_each(keep);
  }
  std::sort(memory.begin(), memory.end(),
            [](const HubRecord& a, const HubRecord& b) { return a.sequence < b.sequence; });
  spool->set_identity(identity());
  const bool written = spool->append_mirror(memory);
  const bool synced = spool->sync();
  std::lock_guard lock(mutex_);
  if (written && synced && !memory.empty()) {
    durable_upto_ = std::max(durable_upto_, memory.back().sequence);
  }
}

void TrackerChannel::request_flush() {
  std::shared_ptr<JournalSpool> spool;
  {
    std::unique_lock lock(mutex_);
    flush_pending_ = true;
    ++flush_generation_;
    spool = spool_;
    work_cv_.notify_all();
  }
  if (spool) spool->sync();
}

bool TrackerChannel::wait_flushed(Clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  const uint64_t generation = flush_generation_;
  return done_cv_.wait_until(lock, deadline, [&] {
    return broken_ || exited_ || flushed_generation_ >= generation;
  }) && !broken_;
}

bool TrackerChannel::wait_exited(Clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  work_cv_.notify_all();
  return done_cv_.wait_until(lock, deadline, [&] { return exited_; });
}

void TrackerChannel::abandon() {
  {
    std::lock_guard lock(mutex_);
    if (exited_) return;
    abandoned_ = true;
    work_cv_.notify_all();
  }
  persist();
}

void TrackerChannel::release_worker() {
  bool exited;
  {
    std::lock_guard lock(mutex_);
    exited = exited_;
  }
  if (!worker_.joinable()) return;
  if (exited) {
    worker_.join();
  } else {
    worker_.detach();  // a hung tracker: its thread keeps this channel (and the tracker) alive
  }
}

TrackerDelivery TrackerChannel::report() {
  std::shared_ptr<JournalSpool> spool;
  bool exited;
  bool finished;
  uint64_t acknowledged;
  TrackerDelivery out;
  {
    std::lock_guard lock(mutex_);
    out.name = name_;
    out.logged = logs_pushed_;
    out.delivered = logs_acknowledged_;
    out.undelivered = logs_pushed_ - logs_acknowledged_;
    out.timed_out = !exited_;
    exited = exited_;
    finished = finished_;
    acknowledged = held_.acknowledged_sequence();
    if (broken_) {
      out.error = error_;
    } else if (backend_down_) {
      out.error = fmt::format("backend unavailable: {}", outage_reason_);
    } else if (!exited_) {
      out.error = "did not finish within the end_training timeout";
    }
  }
  if (!finished) persist();
  {
    std::lock_guard lock(mutex_);
    spool = spool_;
  }
  if (!spool) {
    out.lost = out.undelivered;
    return out;
  }
  spool->acknowledge(acknowledged, /*force=*/true);
  spool->sync();
  if (spool->settled() && exited) {
    {
      std::lock_guard lock(mutex_);
      spool_.reset();
    }
    spool.reset();
    std::error_code ec;
    std::filesystem::remove(settings_.journal_path, ec);
    std::filesystem::remove(settings_.journal_path.parent_path(), ec);  // only if empty
    out.lost = out.undelivered;
    return out;
  }
  // Count what the file really holds, as `accel-launch sync` will read it.
  const JournalContents contents =
      read_journal_contents(settings_.journal_path, /*keep_records=*/false);
  out.journaled = std::min(contents.pending_logs, out.undelivered);
  out.lost = out.undelivered - out.journaled;
  if (contents.pending_records > 0) {
    out.journal = settings_.journal_path;
    out.sync_command = fmt::format("accel-launch sync {}", settings_.journal_path.string());
  }
  return out;
}

// ---- worker side --------------------------------------------------------------------------------

bool TrackerChannel::replay_pending() const {
  return replay_next_ != 0 && replay_next_ <= overflow_last_;
}

bool TrackerChannel::has_work() const {
  return !queue_.empty() || replay_pending() || flush_pending_ || abandoned_ ||
         (closed_ && finished_);
}

void TrackerChannel::worker_main() {
  std::unique_lock lock(mutex_);
  while (!abandoned_ && !finished_ && !broken_) {
    report_acknowledgements(lock);
    if (!queue_.empty()) {
      idle_polls_ = 0;
      deliver_next(lock);
      continue;
    }
    if (replay_pending()) {
      idle_polls_ = 0;
      replay_next(lock);
      continue;
    }
    if (journal_mode_) {
      // Everything overflowed has been delivered: new records may use the queue again.
      journal_mode_ = false;
      replay_next_ = 0;
    }
    if (in_outage_ && !backend_down_) {
      in_outage_ = false;
      warn(
          fmt::format("tracker '{}': backend is back; the records kept meanwhile ({} of them from "
                      "the journal) were delivered in order",
                      name_, outage_replayed_));
    }
    if (flush_pending_) {
      flush_tracker(lock);
      continue;
    }
    if (holds_records_ && !held_.empty()) collect_acknowledgements();
    if (idle_polls_ < kPollsBeforeSleep) {
      ++idle_polls_;
      work_cv_.wait_for(lock, kPollInterval);
    } else if (holds_records_ && !held_.empty()) {
      // The tracker still holds records: look for its acknowledgements now and then.
      work_cv_.wait_for(lock, kPollInterval * 25);
    } else {
      worker_sleeping_ = true;
      work_cv_.wait(lock, [&] { return has_work(); });
      worker_sleeping_ = false;
      idle_polls_ = 0;
    }
  }
  // A tracker that broke may still have stored part of what it held (a file cut at a full disk).
  if (holds_records_ && !held_.empty()) collect_acknowledgements();
  if (!abandoned_) report_acknowledgements(lock);
  if (broken_ && !abandoned_) {
    lock.unlock();
    const bool closed = close_broken_run();
    lock.lock();
    // finish() may have stored what the tracker still held.
    if (closed) {
      acknowledged_all();
    } else if (holds_records_) {
      collect_acknowledgements();
    }
    report_acknowledgements(lock);
  }
  exited_ = true;
  done_cv_.notify_all();
}

// Called with the lock held; takes the queue's oldest record and delivers it.
void TrackerChannel::deliver_next(std::unique_lock<std::mutex>& lock) {
  current_ = queue_.pop_front();
  if (!deliver_current(lock)) {
    // Unavailable: it goes back in front, older than everything else.
    queue_.push_front(std::move(*current_));
    current_.reset();
    backoff(lock);
  }
}

void TrackerChannel::replay_next(std::unique_lock<std::mutex>& lock) {
  const uint64_t sequence = replay_next_;
  const uint64_t last = overflow_last_;  // what the spool has been given so far
  auto spool = spool_;
  lock.unlock();
  std::optional<HubRecord> record = spool->read_overflow(sequence);
  if (record) record->journaled = true;
  const uint64_t next_available = record ? sequence : spool->next_overflow(sequence);
  lock.lock();
  if (!record) {
    // Lost to a failed write (counted by the spool) or unreadable: go on with the next record that
    // survived, never past what the spool had been given before we looked.
    replay_next_ = next_available == 0 || next_available == sequence
                       ? std::min(sequence + 1, last + 1)
                       : next_available;
    if (next_available == 0) replay_next_ = last + 1;
    return;
  }
  current_ = std::move(*record);
  if (deliver_current(lock)) {
    if (replay_next_ == sequence) ++replay_next_;
    if (in_outage_) ++outage_replayed_;
  } else {
    current_.reset();
    backoff(lock);
  }
}

// Delivers current_ (lock released during the call). True when it was accepted or the tracker broke
// (current_ is then consumed); false when the backend is unavailable (current_ kept).
bool TrackerChannel::deliver_current(std::unique_lock<std::mutex>& lock) {
  lock.unlock();
  const Outcome outcome = deliver(*current_);
  lock.lock();
  if (outcome == Outcome::unavailable) {
    backend_down_ = true;
    if (!in_outage_) {
      in_outage_ = true;
      outage_replayed_ = 0;
      warn(fmt::format(
          "tracker '{}': backend unavailable ({}); records are kept (in memory up to queue_bytes, "
          "then in the journal '{}') and retried",
          name_, outage_reason_, settings_.journal_path.string()));
    }
    return false;
  }
  HubRecord record = std::move(*current_);
  current_.reset();
  if (outcome == Outcome::broken) {
    // Not accepted: keep it for the journal, in front of what is queued.
    queue_.push_front(std::move(record));
    return true;
  }
  retry_delay_ = settings_.retry_initial_delay;
  backend_down_ = false;
  const bool finish = record.kind == RecordKind::finish;
  accepted(std::move(record));
  if (finish) {
    acknowledged_all();
    finished_ = true;
  } else if (holds_records_) {
    collect_acknowledgements();
  }
  done_cv_.notify_all();
  return true;
}

void TrackerChannel::accepted(HubRecord record) {
  const bool log = record.kind == RecordKind::log;
  held_.accepted(std::move(record), holds_records_);
  if (!holds_records_ && log) ++logs_acknowledged_;
}

void TrackerChannel::collect_acknowledgements() {
  logs_acknowledged_ += held_.acknowledge(tracker_->acknowledged());
}

void TrackerChannel::acknowledged_all() {
  logs_acknowledged_ += held_.acknowledge_all();
}

void TrackerChannel::report_acknowledgements(std::unique_lock<std::mutex>& lock) {
  if (!spool_) return;
  const uint64_t upto = held_.acknowledged_sequence();
  // The journal may have been opened before the tracker started (its run did not exist yet):
  // once it has, the journal learns where the run is.
  const auto now = Clock::now();
  const bool refresh_identity = started_ && now - identity_checked_ >= std::chrono::seconds(1);
  if (upto <= spool_acknowledged_ && !refresh_identity) return;
  spool_acknowledged_ = std::max(spool_acknowledged_, upto);
  if (refresh_identity) identity_checked_ = now;
  auto spool = spool_;
  lock.unlock();  // the journal may touch the disk: never with the lock that push() needs
  if (refresh_identity) spool->set_identity(identity());
  spool->acknowledge(upto);
  lock.lock();
}

void TrackerChannel::flush_tracker(std::unique_lock<std::mutex>& lock) {
  const uint64_t generation = flush_generation_;
  lock.unlock();
  std::optional<std::pair<std::string, std::exception_ptr>> failure;
  bool flushed = false;
  try {
    if (started_) tracker_->flush();
    flushed = true;
  } catch (const TrackerUnavailable&) {
    // Nothing was lost: the tracker keeps what it holds; the backend is flushed at finish.
  } catch (const std::exception& e) {
    failure.emplace(e.what(), std::current_exception());
  } catch (...) {
    failure.emplace("unknown exception", std::current_exception());
  }
  lock.lock();
  if (failure) mark_broken(failure->first, failure->second);
  if (flushed) acknowledged_all();
  flushed_generation_ = generation;
  if (flushed_generation_ >= flush_generation_) flush_pending_ = false;
  done_cv_.notify_all();
}

bool TrackerChannel::close_broken_run() {
  // Best effort, so that the backend's run does not stay RUNNING (the MLflow client marks a run
  // that failed FAILED): the records it did not get are in the journal, with the real final
  // status, for `accel-launch sync`.
  try {
    if (!started_) return false;
    tracker_->finish(RunStatus::failed);
    return true;
  } catch (...) {
    return false;  // the tracker is broken; this was only an attempt
  }
}

void TrackerChannel::backoff(std::unique_lock<std::mutex>& lock) {
  auto delay = closed_ ? std::min(retry_delay_, std::chrono::milliseconds(kClosingRetryDelay))
                       : retry_delay_;
  work_cv_.wait_for(lock, delay, [&] { return abandoned_; });
  retry_delay_ = std::min(retry_delay_ * 2, settings_.retry_max_delay);
}

void TrackerChannel::finish_tracker(RunStatus status) {
  try {
    tracker_->flush();
  } catch (const TrackerUnavailable&) {
    // The backend is away: finish() still runs, so that a tracker with local state of its own
    // (a W&B run's .wandb file) writes its end. While it cannot deliver what it holds it throws
    // TrackerUnavailable in turn and the record is retried (flush and finish again); when it
    // returns normally it has delivered everything (the delivery contract).
    tracker_->finish(status);
    return;
  }
  tracker_->finish(status);
}

TrackerChannel::Outcome TrackerChannel::deliver(const HubRecord& record) {
  RecordTimeScope time_scope(record.time);
  try {
    if (!started_) {
      tracker_->start();
      started_ = true;
    }
    switch (record.kind) {
      case RecordKind::config:
        tracker_->store_init_configuration(*record.config);
        break;
      case RecordKind::log:
        if (record.step) check_steps(*record.values, *record.step);
        tracker_->log(*record.values, record.step);
        break;
      case RecordKind::finish:
        finish_tracker(record.status);
        break;
      case RecordKind::identity:
      case RecordKind::acknowledged:
        break;
    }
    return Outcome::accepted;
  } catch (const TrackerUnavailable& e) {
    std::lock_guard lock(mutex_);
    outage_reason_ = e.what();
    return Outcome::unavailable;
  } catch (const std::exception& e) {
    std::lock_guard lock(mutex_);
    mark_broken(e.what(), std::current_exception());
  } catch (...) {
    std::lock_guard lock(mutex_);
    mark_broken("unknown exception", std::current_exception());
  }
  return Outcome::broken;
}

void TrackerChannel::check_steps(const Values& values, int64_t step) {
  for (const auto& [key, value] : values) {
    auto [it, inserted] = last_step_.try_emplace(key, step);
    if (inserted) continue;
    if (step < it->second) {
      if (warned_backwards_.insert(key).second) {
        warn(
            fmt::format("tracker '{}': step {} for key '{}' is lower than an earlier step {}; the "
                        "value is still logged (steps should not go backwards)",
                        name_, step, key, it->second));
      }
    } else {
      it->second = step;
    }
  }
}

// Called with mutex_ held.
void TrackerChannel::mark_broken(std::string message, std::exception_ptr error) {
  if (broken_) return;
  broken_ = true;
  error_ = message;
  warn(fmt::format(
      "tracker '{}' failed and is disabled: {}. The other trackers go on; what it has not "
      "delivered is kept in its journal '{}'; set strict = true to make this fatal",
      name_, message, settings_.journal_path.string()));
  if (settings_.strict && settings_.errors) {
    std::lock_guard slot_lock(settings_.errors->mutex);
    if (!settings_.errors->error && !settings_.errors->pending) {
      settings_.errors->tracker = name_;
      settings_.errors->message = message;
      settings_.errors->error = error;
      settings_.errors->pending = true;
    }
  }
  work_cv_.notify_all();
  done_cv_.notify_all();
}

}  // namespace detail
}  // namespace accel
