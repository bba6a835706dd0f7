#pragma once
// What TrackerHub hands a tracker's worker: one record, sharing its payload with the other
// trackers, and RecordQueue, the byte-bounded FIFO between the training thread and one worker.
#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "accel/tracking/values.hpp"
#include "journal/journal.hpp"

namespace accel::detail {

// One record. values/config are immutable and shared by every tracker's queue (one copy per log
// call).
struct HubRecord {
  RecordKind kind = RecordKind::log;
  uint64_t sequence = 0;  // the channel's number for it: 1, 2, ... in push order
  std::optional<int64_t> step;
  std::shared_ptr<const Values> values;          // kind == log
  std::shared_ptr<const nlohmann::json> config;  // kind == config
  RunStatus status = RunStatus::finished;        // kind == finish
  std::chrono::system_clock::time_point time{};
  std::size_t bytes = 0;   // what the record counts against the queue's byte bound
  bool journaled = false;  // read back from the journal (so on disk already)

  // The record as the journal writes it (referring to values/config, not copying them).
  JournalRecordView journal_view() const;
  static HubRecord from_journal_record(JournalRecord record);
  // What holding this record in a queue costs in memory, conservatively: the record, its share of
  // the queue's ring, and for the first holder the payload with its allocations.
  static std::size_t memory_bytes(const Values& values);
  static std::size_t memory_bytes(const nlohmann::json& config);
};

// While it lives, record_time() on this thread returns time (the call that made the record).
struct RecordTimeScope {
  explicit RecordTimeScope(std::chrono::system_clock::time_point time);
  ~RecordTimeScope();
  RecordTimeScope(const RecordTimeScope&) = delete;
  RecordTimeScope& operator=(const RecordTimeScope&) = delete;
};

// A FIFO ring buffer that also counts the bytes of the records it holds. Grows by doubling, so a
// steady stream of push_back/pop_front allocates nothing. Not thread-safe (used under a lock).
class RecordQueue {
 public:
  bool empty() const { return records_.empty(); }
  std::size_t size() const { return records_.size(); }
  std::size_t bytes() const { return bytes_; }

  void push_back(HubRecord record);
  void push_front(HubRecord record);
  HubRecord pop_front();
  const HubRecord& front() const { return records_.front(); }  // not empty
  // Moves every record, oldest first, to the end of out.
  void drain_into(std::vector<HubRecord>& out);
  // Calls f(const HubRecord&) for every record, oldest first.
  template <class F>
  void for_each(F&& f) const {
    for (const auto& record : records_) f(record);
  }

 private:
  // A deque, not a growing ring: growth allocates one block and never moves the records, so a
  // push on the training thread never copies the queue (a doubling ring copied 16,384 records,
  // 2.7 ms, in one log() call).
  std::deque<HubRecord> records_;
  std::size_t bytes_ = 0;
};

}  // namespace accel::detail
