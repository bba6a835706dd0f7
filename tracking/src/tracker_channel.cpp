#include "tracker_channel.hpp"

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

struct RecordTimeScope {
  explicit RecordTimeScope(std::chrono::system_clock::time_point time) {
    current_record_time = time;
  }
  ~RecordTimeScope() { current_record_time.reset(); }
  RecordTimeScope(const RecordTimeScope&) = delete;
  RecordTimeScope& operator=(const RecordTimeScope&) = delete;
};

}  // namespace

TrackerChannel::TrackerChannel(std::shared_ptr<GeneralTracker> tracker, ChannelSettings settings)
    : tracker_(std::move(tracker)),
      name_(tracker_->name()),
      settings_(std::move(settings)),
      retry_delay_(settings_.retry_initial_delay) {}

TrackerChannel::~TrackerChannel() {
  if (worker_.joinable())
    worker_.detach();  // only reachable when the worker itself held the last ref
}

void TrackerChannel::start_worker() {
  worker_ = std::thread([self = shared_from_this()] { self->worker_main(); });
}

// ---- training-thread side
// -------------------------------------------------------------------------

JournalWriter& TrackerChannel::journal() {
  if (!journal_) journal_.emplace(settings_.journal_path);
  return *journal_;
}

bool TrackerChannel::journal_has_unread() const {
  return journal_ && journal_->size() > journal_read_offset_;
}

void TrackerChannel::spill(const HubRecord& record) {
  try {
    journal().append(record.to_journal_record());
  } catch (const std::exception& e) {
    if (record.kind == RecordKind::log) ++logs_lost_;
    ++completed_;
    if (!warned_journal_error_) {
      warned_journal_error_ = true;
      warn(
          fmt::format("tracker '{}': records that cannot be queued or delivered now cannot be kept "
                      "in its journal either, and are lost: {}",
                      name_, e.what()));
    }
  }
}

void TrackerChannel::push(HubRecord record) {
  std::unique_lock lock(mutex_);
  if (record.kind == RecordKind::finish) closed_ = true;
  if (broken_ || abandoned_) {
    if (record.kind == RecordKind::log) {
      ++logs_pushed_;
      ++logs_lost_;
    }
    return;
  }
  ++pushed_;
  if (record.kind == RecordKind::log) ++logs_pushed_;
  if (journal_mode_ || queue_.bytes() + in_flight_bytes_ + record.bytes > settings_.queue_bytes) {
    if (!journal_mode_ && !warned_spill_) {
      warned_spill_ = true;
      warn(fmt::format(
          "tracker '{}' is behind: its queue holds {} bytes (queue_bytes = {}); new "
          "records are kept in the journal '{}' and delivered in order when it catches up",
          name_, queue_.bytes() + in_flight_bytes_, settings_.queue_bytes,
          settings_.journal_path.string()));
    }
    journal_mode_ = true;
    spill(record);
  } else {
    queue_.push_back(std::move(record));
  }
  if (worker_sleeping_) work_cv_.notify_one();
}

void TrackerChannel::sync_journal() {
  if (!journal_) return;
  try {
    journal_->sync();
  } catch (const Error& e) {
    warn(fmt::format("tracker '{}': {}", name_, e.what()));
  }
}

void TrackerChannel::request_flush() {
  std::unique_lock lock(mutex_);
  flush_target_ = pushed_;
  flush_pending_ = true;
  sync_journal();
  work_cv_.notify_all();
}

bool TrackerChannel::wait_flushed(Clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  return done_cv_.wait_until(lock, deadline, [&] {
    return broken_ || exited_ || (!flush_pending_ && flushed_upto_ >= flush_target_);
  }) && !broken_;
}

bool TrackerChannel::wait_exited(Clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  work_cv_.notify_all();
  return done_cv_.wait_until(lock, deadline, [&] { return exited_; });
}

void TrackerChannel::abandon() {
  std::unique_lock lock(mutex_);
  if (exited_) return;
  abandoned_ = true;
  // Keep what is still queued on disk when that preserves order (nothing newer in the journal yet).
  if (!queue_.empty() && !journal_has_unread()) {
    std::vector<HubRecord> rest;
    queue_.drain_into(rest);
    for (const auto& record : rest) spill(record);
  }
  sync_journal();
  work_cv_.notify_all();
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
  std::lock_guard lock(mutex_);
  TrackerDelivery out;
  out.name = name_;
  out.logged = logs_pushed_;
  out.delivered = logs_delivered_;
  out.undelivered = logs_pushed_ - logs_delivered_;
  out.timed_out = !exited_;
  if (broken_) {
    out.error = error_;
  } else if (in_outage_) {
    out.error = fmt::format("backend unavailable: {}", outage_reason_);
  } else if (!exited_) {
    out.error = "did not finish within the end_training timeout";
  }
  if (journal_) {
    if (journal_has_unread()) {
      out.journal = journal_->path();
    } else {
      std::error_code ec;
      journal_.reset();
      std::filesystem::remove(settings_.journal_path, ec);
      std::filesystem::remove(settings_.journal_path.parent_path(), ec);  // only if empty
    }
  }
  return out;
}

// ---- worker side
// ----------------------------------------------------------------------------------

bool TrackerChannel::has_work() const {
  return !queue_.empty() || journal_has_unread() || flush_pending_ || abandoned_ ||
         (closed_ && finished_);
}

void TrackerChannel::worker_main() {
  std::unique_lock lock(mutex_);
  while (!abandoned_ && !finished_ && !broken_) {
    if (!queue_.empty()) {
      idle_polls_ = 0;
      deliver_batch(lock);
      continue;
    }
    if (journal_has_unread()) {
      idle_polls_ = 0;
      replay_journal(lock);
      continue;
    }
    journal_mode_ = false;  // nothing unread (also when the journal could not be written at all)
    if (flush_pending_) {
      uint64_t target = completed_;
      lock.unlock();
      std::optional<std::pair<std::string, std::exception_ptr>> failure;
      try {
        if (started_) tracker_->flush();
      } catch (const TrackerUnavailable&) {
        // Nothing was lost: the records were delivered; the backend will be flushed at finish.
      } catch (const std::exception& e) {
        failure.emplace(e.what(), std::current_exception());
      } catch (...) {
        failure.emplace("unknown exception", std::current_exception());
      }
      lock.lock();
      if (failure) mark_broken(failure->first, failure->second);
      flushed_upto_ = target;
      if (flushed_upto_ >= flush_target_) flush_pending_ = false;
      done_cv_.notify_all();
      continue;
    }
    if (idle_polls_ < kPollsBeforeSleep) {
      ++idle_polls_;
      work_cv_.wait_for(lock, kPollInterval);
    } else {
      worker_sleeping_ = true;
      work_cv_.wait(lock, [&] { return has_work(); });
      worker_sleeping_ = false;
      idle_polls_ = 0;
    }
  }
  if (broken_) {
    // Nothing more reaches this tracker; queued records count as undelivered.
    std::vector<HubRecord> rest;
    queue_.drain_into(rest);
    completed_ += rest.size();
  }
  exited_ = true;
  done_cv_.notify_all();
}

void TrackerChannel::deliver_batch(std::unique_lock<std::mutex>& lock) {
  std::vector<HubRecord> batch;
  batch.reserve(queue_.size());
  std::size_t bytes = queue_.bytes();
  queue_.drain_into(batch);
  in_flight_bytes_ += bytes;
  lock.unlock();

  std::size_t i = 0;
  Outcome outcome = Outcome::delivered;
  for (; i < batch.size(); ++i) {
    outcome = deliver(batch[i]);
    if (outcome == Outcome::unavailable) break;
    lock.lock();
    in_flight_bytes_ -= batch[i].bytes;
    record_completed(batch[i], outcome == Outcome::delivered);
    bool stop = outcome == Outcome::broken || abandoned_;
    lock.unlock();
    if (stop) {
      ++i;
      break;
    }
  }
  lock.lock();
  std::vector<HubRecord> rest(
      std::make_move_iterator(batch.begin() + static_cast<std::ptrdiff_t>(i)),
      std::make_move_iterator(batch.end()));
  for (const auto& record : rest) in_flight_bytes_ -= record.bytes;
  if (outcome == Outcome::unavailable) {
    handle_unavailable(lock, rest);
  } else {
    // Broken or abandoned: put the rest back so the report counts it.
    for (auto it = rest.rbegin(); it != rest.rend(); ++it) queue_.push_front(std::move(*it));
  }
}

void TrackerChannel::handle_unavailable(std::unique_lock<std::mutex>& lock,
                                        std::vector<HubRecord>& rest) {
  if (!in_outage_) {
    in_outage_ = true;
    outage_replayed_ = 0;
    warn(
        fmt::format("tracker '{}': backend unavailable ({}); records are kept in the journal '{}' "
                    "and retried",
                    name_, outage_reason_, settings_.journal_path.string()));
  }
  if (!journal_has_unread()) {
    // Everything in memory is older than anything new: move it all to the journal, in order, then
    // keep new records there too until the replay has caught up.
    queue_.drain_into(rest);
    for (const auto& record : rest) spill(record);
    journal_mode_ = true;
    try {
      journal().sync();
    } catch (const Error& e) {
      warn(fmt::format("tracker '{}': {}", name_, e.what()));
    }
  } else {
    // The journal already holds newer records: these older ones wait in memory, in front.
    for (auto it = rest.rbegin(); it != rest.rend(); ++it) queue_.push_front(std::move(*it));
  }
  backoff(lock);
}

void TrackerChannel::backoff(std::unique_lock<std::mutex>& lock) {
  auto delay = closed_ ? std::min(retry_delay_, std::chrono::milliseconds(kClosingRetryDelay))
                       : retry_delay_;
  work_cv_.wait_for(lock, delay, [&] { return abandoned_; });
  retry_delay_ = std::min(retry_delay_ * 2, settings_.retry_max_delay);
}

void TrackerChannel::replay_journal(std::unique_lock<std::mutex>& lock) {
  try {
    journal_->flush();
  } catch (const Error& e) {
    warn(fmt::format("tracker '{}': {}", name_, e.what()));
  }
  const uint64_t end = journal_->size();
  JournalReader reader(journal_->path(), journal_read_offset_);
  lock.unlock();
  while (reader.offset() < end) {
    auto journaled = reader.next();
    if (!journaled) {
      lock.lock();
      mark_broken(fmt::format("its journal '{}' is damaged at byte {}", journal_->path().string(),
                              reader.offset()),
                  nullptr);
      return;
    }
    HubRecord record = HubRecord::from_journal_record(std::move(*journaled));
    Outcome outcome;
    while ((outcome = deliver(record)) == Outcome::unavailable) {
      lock.lock();
      backoff(lock);
      if (abandoned_) return;
      lock.unlock();
    }
    lock.lock();
    journal_read_offset_ = reader.offset();
    record_completed(record, outcome == Outcome::delivered);
    if (in_outage_) ++outage_replayed_;
    if (outcome == Outcome::broken || abandoned_) return;
    lock.unlock();
  }
  lock.lock();
  if (journal_->size() == journal_read_offset_) {
    try {
      journal_->clear();
    } catch (const Error& e) {
      warn(fmt::format("tracker '{}': {}", name_, e.what()));
    }
    journal_read_offset_ = 0;
    journal_mode_ = false;
    if (in_outage_) {
      in_outage_ = false;
      warn(fmt::format("tracker '{}': backend is back; {} journaled records delivered in order",
                       name_, outage_replayed_));
    }
  }
}

void TrackerChannel::record_completed(const HubRecord& record, bool delivered) {
  ++completed_;
  if (delivered) {
    retry_delay_ = settings_.retry_initial_delay;
    if (record.kind == RecordKind::log) ++logs_delivered_;
    if (record.kind == RecordKind::finish) finished_ = true;
  }
  done_cv_.notify_all();
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
        tracker_->flush();
        tracker_->finish(record.status);
        break;
    }
    return Outcome::delivered;
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
  warn(
      fmt::format("tracker '{}' failed and is disabled: {}. The other trackers go on; set "
                  "strict = true to make this fatal",
                  name_, message));
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
