#pragma once
// accel::detail::JournalSpool: one tracker's journal file while its run goes on (the format is in
// accel/tracking/journal.hpp).
//
// Two kinds of records reach it:
//   - overflow records (append_overflow): records the channel's queue had no room for. They exist
//     only here, and the channel's worker reads them back (read_overflow) to deliver them, in
//     order. The training thread appends them: it encodes the record into a buffer under a lock
//     that no one holds for longer than a swap or a copy, and the spool's own writer thread writes
//     the buffer to the file. It waits only while more than kBufferCap bytes are waiting (a disk
//     slower than the training loop), so memory stays bounded.
//   - mirror records (append_mirror): copies of records that are still in memory (queued, or held
//     by the tracker) written so that they survive the process (flush() or a signal while the
//     backend is down, the end of the run). Never read back by the worker.
// acknowledge(n) says the backend has everything up to sequence n; when that covers every record
// in the file the file is emptied, so a healthy run's journal stays empty.
//
// A write that fails (disk full) is undone back to the last whole record; overflow log records lost
// that way are counted (lost_logs) and warned about once, naming the file and the reason.
//
// Thread-safety: every member may be called from any thread. Lock order: file_mutex_, then
// buffer_mutex_; the training thread only ever takes buffer_mutex_.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "hub/hub_record.hpp"
#include "journal/journal.hpp"

namespace accel::detail {

class JournalSpool {
 public:
  // Bytes of encoded records that may wait for the writer thread.
  static constexpr std::size_t kBufferCap = std::size_t{4} << 20;

  // Opens (creates) the journal and starts the writer thread. identity is written first (see
  // set_identity). Throws accel::TrackerError naming the path when it cannot be opened.
  JournalSpool(std::filesystem::path path, nlohmann::json identity);
  // Writes what is buffered and stops the writer thread.
  ~JournalSpool();
  JournalSpool(const JournalSpool&) = delete;
  JournalSpool& operator=(const JournalSpool&) = delete;

  void append_overflow(const HubRecord& record);
  // Writes the records now; true when they reached the file (not fsynced: see sync()).
  bool append_mirror(const std::vector<HubRecord>& records);
  // Appends an identity record when identity differs from the last one written.
  void set_identity(const nlohmann::json& identity);
  // Every record up to sequence `upto` is at the backend. Empties the file when that covers all
  // its records; otherwise appends an acknowledged record (at most once a second unless forced).
  void acknowledge(uint64_t upto, bool force = false);
  // Writes the buffer and fsyncs. False (with one warning) when that failed.
  bool sync();
  // The overflow record with this sequence number; nullopt when it was lost (a failed write). The
  // caller reads in increasing sequence order.
  std::optional<HubRecord> read_overflow(uint64_t sequence);
  // The smallest overflow sequence number >= sequence still in the file; 0 when none.
  uint64_t next_overflow(uint64_t sequence);

  uint64_t lost_logs() const;
  // True when the file holds no record that is not acknowledged.
  bool settled() const;
  const std::filesystem::path& path() const { return path_; }

 private:
  // A stretch of overflow records with consecutive sequence numbers stored back to back.
  struct Run {
    uint64_t first = 0, last = 0;
    uint64_t begin = 0, end = 0;  // byte offsets in the file
  };

  void writer_main();
  // Caller holds file_mutex_: moves the buffer to the file.
  void write_buffered();
  // Caller holds buffer_mutex_.
  void append_identity_locked();
  void append_frame_locked(const JournalRecordView& view, bool overflow);
  void note_failure(const std::string& message);

  const std::filesystem::path path_;
  std::mutex file_mutex_;
  JournalWriter writer_;  // under file_mutex_
  std::optional<JournalReader> reader_;
  uint64_t reader_sequence_ = 0;  // the record reader_ is positioned at

  mutable std::mutex buffer_mutex_;
  std::condition_variable writer_cv_;
  std::condition_variable space_cv_;
  std::vector<uint8_t> buffer_;
  uint64_t buffer_overflow_logs_ = 0;
  uint64_t logical_end_ = 0;   // file bytes + buffered bytes
  bool new_run_ = true;        // the next overflow record starts a new Run
  bool writer_woken_ = false;  // the writer was told about the current buffer
  std::vector<Run> runs_;
  uint64_t max_sequence_ = 0;
  uint64_t acknowledged_ = 0;
  std::chrono::steady_clock::time_point last_mark_{};
  nlohmann::json identity_;
  bool identity_written_ = false;
  uint64_t lost_logs_ = 0;
  bool warned_ = false;
  bool stop_ = false;
  std::thread writer_thread_;
};

}  // namespace accel::detail
