#pragma once
// accel's tracker journal: an append-only file of the records one tracker has not delivered yet
// (values spilled from a full queue, kept while the backend was unreachable, or left when the run
// ended), and what `accel-launch sync` needs to deliver them later. Modelled on leveldb's log
// format, without fragmentation:
//
//   file     := magic record*
//   magic    := "ACCELJ02"
//   record   := length:uint32le  checksum:uint32le  sequence:uint64le  payload[length]
//   checksum = CRC-32C (accel::crc32c) of the 8 sequence bytes followed by the payload
//   payload  = CBOR (RFC 8949) of one JournalRecord, see encode_journal_record
//
// Sequence numbers: every config, log and finish record has the number the hub gave it (1, 2, ...
// in the order of the training loop's calls). Records may appear in the file out of that order
// (records kept in memory are written when the run ends, after newer ones that overflowed to disk),
// so readers that deliver sort by sequence. identity and acknowledged records have sequence 0:
// identity says which tracker and run the journal belongs to (the last one counts); acknowledged
// says that every record up to `acknowledged` is at the backend (the largest one counts).
//
// Invariant: a reader returns every record up to the first one that is incomplete or fails its
// checksum, so a crash or torn write loses at most the record being written, never an earlier one.
// The file is created with mode 0600 (it may hold user data); JournalWriter::sync() fsyncs it.
//
// Thread-safety: a JournalWriter is used under its owner's lock; a JournalReader by one thread. A
// reader may read the part of the file a writer has already flushed while the writer appends.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "accel/tracking/general_tracker.hpp"
#include "accel/tracking/values.hpp"

namespace accel {

// What the hub sends a tracker: its configuration, one log call, or the end of the run; and the
// journal's own bookkeeping (identity, acknowledged).
enum class RecordKind : uint8_t { config = 1, log = 2, finish = 3, identity = 4, acknowledged = 5 };

struct JournalRecord {
  RecordKind kind = RecordKind::log;
  uint64_t sequence = 0;                         // config, log, finish
  nlohmann::json identity;                       // identity
  uint64_t acknowledged = 0;                     // acknowledged
  std::optional<int64_t> step;                   // log
  Values values;                                 // log
  nlohmann::json config;                         // config
  RunStatus status = RunStatus::finished;        // finish
  std::chrono::system_clock::time_point time{};  // wall time of the call that produced it

  friend bool operator==(const JournalRecord&, const JournalRecord&) = default;
};

// CBOR payload of a record; covers every Value kind (scalars keep int vs float, NaN/Inf survive).
std::vector<uint8_t> encode_journal_record(const JournalRecord& record);
// Throws accel::TrackerError when the payload is not a record this version wrote.
JournalRecord decode_journal_record(std::span<const uint8_t> payload);

// The magic bytes every journal file starts with.
inline constexpr std::string_view kJournalMagic = "ACCELJ02";
inline constexpr std::size_t kJournalFrameHeader = 16;  // length + checksum + sequence

// A record to write, by reference (no copy of its values): what JournalRecord holds.
struct JournalRecordView {
  RecordKind kind = RecordKind::log;
  uint64_t sequence = 0;
  std::chrono::system_clock::time_point time{};
  std::optional<int64_t> step;
  const Values* values = nullptr;        // log
  const nlohmann::json* json = nullptr;  // config, identity
  RunStatus status = RunStatus::finished;
  uint64_t acknowledged = 0;
};
JournalRecordView view_of(const JournalRecord& record);

// Appends one framed record (header + payload), encoded without intermediate buffers for
// scalar-only records (the hot path: a full queue spills every log call). Returns its frame size.
std::size_t append_journal_record(std::vector<uint8_t>& out, const JournalRecordView& record);

// Appends framed records to a journal file. Records are buffered in memory and written to the file
// by flush() (or when the buffer passes 64 KiB); sync() also fsyncs. A write that fails (disk full)
// is undone: the file is cut back to its last whole record and the error names the file and the
// reason ("No space left on device").
class JournalWriter {
 public:
  // Opens (creating with mode 0600) path for appending; its parent directories are created (0700).
  // A new file gets the magic bytes; an existing one must start with them. Throws
  // accel::TrackerError naming the path when the file cannot be opened or is not a journal.
  // The writer holds an exclusive flock on the file while it lives: a second writer (another
  // process delivering the same journal) gets accel::TrackerError saying the journal is in use.
  explicit JournalWriter(std::filesystem::path path);
  ~JournalWriter();
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;

  void append(const JournalRecord& record);
  // Appends bytes that already hold whole frames (append_journal_frame).
  void append_frames(std::span<const uint8_t> frames);
  // Writes buffered records to the file (no fsync). Throws accel::TrackerError on a write error,
  // after cutting the file back to where it was before this flush and dropping the buffer.
  void flush();
  // Writes whole frames to the file now (after what is buffered), without copying them; a failure
  // is undone as in flush().
  void write_now(std::span<const uint8_t> frames);
  // flush() + fsync.
  void sync();
  // Empties the file but for its magic (after every record was delivered).
  void clear();
  // Bytes in the file once buffered records are flushed.
  uint64_t size() const { return file_size_ + buffer_.size(); }
  // Bytes written to the file.
  uint64_t file_size() const { return file_size_; }
  const std::filesystem::path& path() const { return path_; }
  int fd() const { return fd_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  uint64_t file_size_ = 0;
  std::vector<uint8_t> buffer_;
};

// Reads framed records from a journal file, starting at a byte offset (0: just after the magic).
class JournalReader {
 public:
  // A missing file reads as empty; a file without the magic reads as damaged at offset 0.
  explicit JournalReader(const std::filesystem::path& path, uint64_t offset = 0);
  ~JournalReader();
  JournalReader(const JournalReader&) = delete;
  JournalReader& operator=(const JournalReader&) = delete;

  // The next good record, or nullopt at the end of the file or at the first torn or corrupt record.
  std::optional<JournalRecord> next();
  // The next good record's frame, not decoded (payload valid until the next call).
  struct Frame {
    uint64_t sequence = 0;
    RecordKind kind = RecordKind::log;
    std::span<const uint8_t> payload;
  };
  std::optional<Frame> next_frame();
  // Byte offset just after the last record next() returned.
  uint64_t offset() const { return offset_; }
  // True when next() stopped at a torn or corrupt record rather than at the clean end of the file.
  bool stopped_at_damage() const { return damaged_; }

 private:
  bool fill(std::size_t need);

  int fd_ = -1;
  uint64_t offset_ = 0;
  bool damaged_ = false;
  // Read-ahead: buffer_ holds the file's bytes from buffer_offset_.
  std::vector<uint8_t> buffer_;
  uint64_t buffer_offset_ = 0;
};

// Every good record of a journal file, in file order (convenience for tools and tests).
std::vector<JournalRecord> read_journal(const std::filesystem::path& path);

// What a journal holds for delivery: the records not yet acknowledged, in sequence order (each
// sequence once), and the last identity. Reads the file once.
struct JournalContents {
  nlohmann::json identity;             // null when the journal has none
  uint64_t acknowledged = 0;           // largest acknowledged mark
  std::vector<JournalRecord> pending;  // sequence > acknowledged, sorted, no duplicates
  uint64_t pending_records = 0;        // records not acknowledged (also when not kept)
  uint64_t pending_logs = 0;           // of those, kind == log
  bool damaged = false;                // the file ends in a torn or corrupt record
  uint64_t damaged_at = 0;             // byte offset of that record
};
// keep_records = false: counts only (pending stays empty; for reports of large journals).
JournalContents read_journal_contents(const std::filesystem::path& path, bool keep_records = true);

}  // namespace accel
