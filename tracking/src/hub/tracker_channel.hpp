#pragma once
// accel::detail::TrackerChannel: one tracker, its worker thread, its byte-bounded queue and its
// journal (JournalSpool).
//
// The ledger: every record push() accepts gets a sequence number and is, at every moment, in
// exactly one of these places (docs/reliability.md):
//   queue      in memory, not yet handed to the tracker (at most queue_bytes, with held)
//   in flight  the record whose call is running, or accepted by a tracker that holds_records() and
//              not yet acknowledged (held_)
//   backend    acknowledged: every record with sequence <= acknowledged_sequence()
//   journal    on disk: overflow records (the queue had no room), and mirror copies of memory
//              records written by persist() (flush or a signal while the backend is down, the end)
// Order: records reach the tracker in sequence order. Overflow records are always newer than every
// memory record: once the queue overflows every new record goes to the journal until the worker has
// replayed it to the end.
//
// Delivery outcomes per record: accepted; TrackerUnavailable -> kept and retried with exponential
// backoff; any other exception -> the tracker is disabled ("broken"): it is told finish(failed)
// once (so that its run does not stay RUNNING), the error is reported once and, in strict mode,
// handed to the hub's ErrorSlot; later records go to the journal.
//
// Thread-safety: push/persist/request_flush/wait_*/abandon/report come from hub threads; the worker
// thread is the only caller of the tracker's methods. State is guarded by mutex_, which no one
// holds across I/O or a tracker call; the journal has locks of its own.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "accel/tracking/general_tracker.hpp"
#include "accel/tracking/hub.hpp"
#include "hub/hub_record.hpp"
#include "journal/journal.hpp"
#include "journal/journal_spool.hpp"

namespace accel::detail {

// The first error of a broken tracker in strict mode, for the training thread to rethrow.
struct ErrorSlot {
  std::atomic<bool> pending{false};
  std::mutex mutex;
  std::string tracker;
  std::string message;
  std::exception_ptr error;
};

struct ChannelSettings {
  std::size_t queue_bytes = 64U << 20;
  std::filesystem::path journal_path;
  // Who the journal belongs to (tracker, project, logging dir, init_kwargs without secrets, hub run
  // id); the channel adds the tracker's resume_info() as "resume".
  nlohmann::json identity = nlohmann::json::object();
  std::chrono::milliseconds retry_initial_delay{100};
  std::chrono::milliseconds retry_max_delay{5000};
  bool strict = false;
  std::shared_ptr<ErrorSlot> errors;
};

// Records a tracker accepted and its backend has not stored yet, oldest first, and the mapping
// from the tracker's acknowledged() count to sequence numbers. Not thread-safe.
class HeldRecords {
 public:
  // The tracker accepted record (its call returned normally). Kept when the tracker holds records.
  void accepted(HubRecord record, bool holds);
  // The tracker's acknowledged() count: drops the records it covers. Returns how many log records
  // that acknowledged.
  uint64_t acknowledge(uint64_t tracker_count);
  uint64_t acknowledge_all();
  // Every record with a sequence up to this one is at the backend.
  uint64_t acknowledged_sequence() const { return acknowledged_sequence_; }
  std::size_t bytes() const { return bytes_; }
  bool empty() const { return held_.empty(); }
  const std::deque<std::pair<uint64_t, HubRecord>>& records() const { return held_; }

 private:
  std::deque<std::pair<uint64_t, HubRecord>> held_;  // (accepted count, record)
  uint64_t accepted_ = 0;
  uint64_t acknowledged_sequence_ = 0;
  std::size_t bytes_ = 0;
};

class TrackerChannel : public std::enable_shared_from_this<TrackerChannel> {
 public:
  using Clock = std::chrono::steady_clock;

  TrackerChannel(std::shared_ptr<GeneralTracker> tracker, ChannelSettings settings);
  ~TrackerChannel();
  TrackerChannel(const TrackerChannel&) = delete;
  TrackerChannel& operator=(const TrackerChannel&) = delete;

  // Starts the worker thread (which keeps this channel alive until it returns).
  void start_worker();
  GeneralTracker& tracker() { return *tracker_; }
  const std::string& name() const { return name_; }
  const std::filesystem::path& journal_path() const { return settings_.journal_path; }

  // Training thread: numbers the record and queues it, or hands it to the journal when the queue is
  // full or the journal is in use. Never waits for the tracker, never writes a file.
  void push(HubRecord record);
  // True while the backend is known to be unreachable (its last call threw TrackerUnavailable).
  bool backend_down() const;
  // Writes every record still in memory (queued, in flight) to the journal and fsyncs it, so that
  // they survive this process; they stay queued for delivery. Any hub thread.
  void persist();
  // Asks the worker to deliver everything pushed so far and call tracker.flush(); fsyncs the
  // journal.
  void request_flush();
  // Waits until the flush asked for has happened (true), the tracker broke, or deadline (false).
  bool wait_flushed(Clock::time_point deadline);
  // Waits until the worker has delivered the finish record (or the tracker broke) and exited.
  bool wait_exited(Clock::time_point deadline);
  // Gives up on the worker: it stops at its next chance; what is left is persisted to the journal.
  void abandon();
  // Joins the worker if it exited, otherwise detaches it (it still owns this channel).
  void release_worker();
  // After wait_exited or abandon: the ledger's counts, checked against the journal file.
  TrackerDelivery report();

 private:
  enum class Outcome { accepted, unavailable, broken };

  void worker_main();
  Outcome deliver(const HubRecord& record);
  // The finish record: flush(), then finish(status) — also when flush() threw TrackerUnavailable.
  void finish_tracker(RunStatus status);
  void check_steps(const Values& values, int64_t step);
  void mark_broken(std::string message, std::exception_ptr error);
  // The worker's steps; called with the lock held, may unlock while delivering.
  void deliver_next(std::unique_lock<std::mutex>& lock);
  void replay_next(std::unique_lock<std::mutex>& lock);
  void flush_tracker(std::unique_lock<std::mutex>& lock);
  bool deliver_current(std::unique_lock<std::mutex>& lock);
  void backoff(std::unique_lock<std::mutex>& lock);
  void collect_acknowledgements();
  // Tells the journal what the backend has (outside the lock).
  void report_acknowledgements(std::unique_lock<std::mutex>& lock);
  void accepted(HubRecord record);
  void acknowledged_all();
  // True when the broken tracker's finish(failed) returned normally.
  bool close_broken_run();
  bool has_work() const;
  bool replay_pending() const;
  // Caller holds mutex_ (released while the file is opened). The journal, opened on first use;
  // nullptr when it cannot be opened.
  std::shared_ptr<JournalSpool> spool_locked(std::unique_lock<std::mutex>& lock);
  nlohmann::json identity() const;

  std::shared_ptr<GeneralTracker> tracker_;
  std::string name_;
  ChannelSettings settings_;
  const bool holds_records_;

  mutable std::mutex mutex_;
  std::condition_variable work_cv_;  // worker waits for work
  std::condition_variable done_cv_;  // hub threads wait for progress
  std::mutex persist_mutex_;         // one persist() at a time
  std::mutex spool_open_mutex_;      // one opener of the journal at a time (taken before mutex_)

  // The ledger.
  uint64_t next_sequence_ = 1;
  RecordQueue queue_;
  std::optional<HubRecord> current_;  // the record whose tracker call is running
  HeldRecords held_;
  std::shared_ptr<JournalSpool> spool_;
  bool spool_failed_ = false;
  bool journal_mode_ = false;   // new records go to the journal
  uint64_t overflow_last_ = 0;  // the newest overflow record
  uint64_t replay_next_ = 0;    // the next overflow record the worker delivers; 0: none
  uint64_t durable_upto_ = 0;   // memory records up to this sequence are mirrored in the journal
  uint64_t logs_pushed_ = 0;
  uint64_t logs_acknowledged_ = 0;
  uint64_t logs_lost_ = 0;  // could not even be journaled

  uint64_t spool_acknowledged_ = 0;       // what the journal was last told
  Clock::time_point identity_checked_{};  // the journal's identity was last refreshed then
  bool backend_down_ = false;             // the last call threw TrackerUnavailable
  bool in_outage_ = false;  // from the first unavailable call until the journal is replayed
  std::chrono::milliseconds retry_delay_{};
  std::string outage_reason_;
  uint64_t outage_replayed_ = 0;
  bool warned_spill_ = false;

  bool flush_pending_ = false;
  uint64_t flush_generation_ = 0;
  uint64_t flushed_generation_ = 0;

  bool worker_sleeping_ = false;
  int idle_polls_ = 0;
  bool started_ = false;   // tracker.start() succeeded (worker only)
  bool finished_ = false;  // finish record delivered
  bool broken_ = false;
  bool closed_ = false;  // finish record pushed
  bool abandoned_ = false;
  bool exited_ = false;
  std::string error_;
  std::thread worker_;

  // Worker-only state.
  std::unordered_map<std::string, int64_t> last_step_;
  std::unordered_set<std::string> warned_backwards_;
};

}  // namespace accel::detail
