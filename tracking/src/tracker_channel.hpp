#pragma once
// accel::detail::TrackerChannel: one tracker, its worker thread, its byte-bounded queue and its
// journal.
//
// Order: records reach the tracker in the order push() received them. Records waiting in the queue
// are always older than records in the journal: once the queue overflows (or the backend is
// unreachable) every new record goes to the journal until the worker has replayed it to the end.
//
// Delivery outcomes per record: delivered; TrackerUnavailable → kept (journal) and retried with
// exponential backoff; any other exception → the tracker is disabled ("broken"), the error is
// reported once and, in strict mode, handed to the hub's ErrorSlot.
//
// Thread-safety: push/request_flush/wait_*/abandon/report come from hub threads; the worker thread
// is the only caller of the tracker. All shared state is guarded by mutex_.
#include <atomic>
#include <chrono>
#include <condition_variable>
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
#include "accel/tracking/journal.hpp"
#include "hub_record.hpp"

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
  std::chrono::milliseconds retry_initial_delay{100};
  std::chrono::milliseconds retry_max_delay{5000};
  bool strict = false;
  std::shared_ptr<ErrorSlot> errors;
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

  // Training thread: queue the record, or append it to the journal when the queue is full or the
  // journal is in use. Never waits for the tracker.
  void push(HubRecord record);
  // Asks the worker to deliver everything pushed so far and call tracker.flush(); fsyncs the
  // journal.
  void request_flush();
  // Waits until the flush asked for has happened (true), the tracker broke, or deadline (false).
  bool wait_flushed(Clock::time_point deadline);
  // Waits until the worker has delivered the finish record (or the tracker broke) and exited.
  bool wait_exited(Clock::time_point deadline);
  // Gives up on the worker: it stops at its next chance; what is left stays in the journal.
  void abandon();
  // Joins the worker if it exited, otherwise detaches it (it still owns this channel).
  void release_worker();
  TrackerDelivery report();

 private:
  enum class Outcome { delivered, unavailable, broken };

  void worker_main();
  Outcome deliver(const HubRecord& record);
  void check_steps(const Values& values, int64_t step);
  void mark_broken(std::string message, std::exception_ptr error);
  // Called with the lock held; may unlock while delivering.
  void deliver_batch(std::unique_lock<std::mutex>& lock);
  void replay_journal(std::unique_lock<std::mutex>& lock);
  void handle_unavailable(std::unique_lock<std::mutex>& lock, std::vector<HubRecord>& rest);
  void backoff(std::unique_lock<std::mutex>& lock);
  void record_completed(const HubRecord& record, bool delivered);
  bool has_work() const;
  JournalWriter& journal();
  bool journal_has_unread() const;
  void spill(const HubRecord& record);
  // fsyncs the journal, if any; a failure is warned about, not thrown. Caller holds mutex_.
  void sync_journal();

  std::shared_ptr<GeneralTracker> tracker_;
  std::string name_;
  ChannelSettings settings_;

  mutable std::mutex mutex_;
  std::condition_variable work_cv_;  // worker waits for work
  std::condition_variable done_cv_;  // hub threads wait for progress
  RecordQueue queue_;
  std::size_t in_flight_bytes_ = 0;
  std::optional<JournalWriter> journal_;
  uint64_t journal_read_offset_ = 0;
  bool journal_mode_ = false;  // new records go to the journal
  bool in_outage_ = false;     // the backend said it is unavailable; retrying
  std::chrono::milliseconds retry_delay_{};
  std::string outage_reason_;
  uint64_t outage_replayed_ = 0;
  bool warned_spill_ = false;
  bool warned_journal_error_ = false;

  uint64_t pushed_ = 0;     // records accepted
  uint64_t completed_ = 0;  // records delivered or given up (broken tracker)
  uint64_t flush_target_ = 0;
  uint64_t flushed_upto_ = 0;
  bool flush_pending_ = false;
  bool flush_sync_journal_ = false;
  uint64_t logs_pushed_ = 0;
  uint64_t logs_delivered_ = 0;
  uint64_t logs_lost_ = 0;  // could not even be journaled (disk error) or arrived after the end

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
