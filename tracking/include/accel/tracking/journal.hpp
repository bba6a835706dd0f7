#pragma once
// accel's tracker journal: an append-only file of the records one tracker has not delivered yet
// (values spilled from a full queue, or kept while the backend was unreachable). Modelled on
// leveldb's log format, without fragmentation:
//
//   file    := record*
//   record  := length:uint32le  checksum:uint32le  payload[length]
//   checksum = CRC-32C of payload (accel::crc32c)
//   payload = CBOR (RFC 8949) of one JournalRecord, see encode_journal_record
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

// What the hub sends a tracker: its configuration, one log call, or the end of the run.
enum class RecordKind : uint8_t { config = 1, log = 2, finish = 3 };

struct JournalRecord {
  RecordKind kind = RecordKind::log;
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

// Appends framed records to a journal file. Records are buffered in memory and written to the file
// by flush() (or when the buffer passes 64 KiB); sync() also fsyncs.
class JournalWriter {
 public:
  // Opens (creating with mode 0600) path for appending; its parent directories are created.
  // Throws accel::TrackerError naming the path when the file cannot be opened.
  explicit JournalWriter(std::filesystem::path path);
  ~JournalWriter();
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;

  void append(const JournalRecord& record);
  void append_payload(std::span<const uint8_t> payload);
  // Writes buffered records to the file (no fsync). Throws accel::TrackerError on a write error.
  void flush();
  // flush() + fsync.
  void sync();
  // Empties the file (after every record was delivered).
  void clear();
  // Bytes in the file once buffered records are flushed.
  uint64_t size() const { return file_size_ + buffer_.size(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  uint64_t file_size_ = 0;
  std::vector<uint8_t> buffer_;
};

// Reads framed records from a journal file, starting at a byte offset.
class JournalReader {
 public:
  // A missing file reads as empty.
  explicit JournalReader(const std::filesystem::path& path, uint64_t offset = 0);
  ~JournalReader();
  JournalReader(const JournalReader&) = delete;
  JournalReader& operator=(const JournalReader&) = delete;

  // The next good record, or nullopt at the end of the file or at the first torn or corrupt record.
  std::optional<JournalRecord> next();
  // Byte offset just after the last record next() returned.
  uint64_t offset() const { return offset_; }
  // True when next() stopped at a torn or corrupt record rather than at the clean end of the file.
  bool stopped_at_damage() const { return damaged_; }

 private:
  int fd_ = -1;
  uint64_t offset_ = 0;
  bool damaged_ = false;
};

// Every good record of a journal file (convenience for tools and tests).
std::vector<JournalRecord> read_journal(const std::filesystem::path& path);

}  // namespace accel
