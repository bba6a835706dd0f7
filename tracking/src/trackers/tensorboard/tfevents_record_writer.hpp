#pragma once
// accel::TfeventsRecordWriter: appends TFRecord-framed records to one new file — the container
// format of TensorBoard's events.out.tfevents.* files.
//
// Record layout (all integers little-endian):
//   uint64 length | uint32 masked_crc32c(length bytes) | byte data[length] | uint32
//   masked_crc32c(data)
// with mask_crc32c() from crc32c.hpp. Invariant: the file only ever holds whole records. Records
// are buffered in memory and handed to the OS in whole-record chunks (flush()); a write that fails
// part-way (disk full, file size limit) keeps the whole records it wrote and is cut back to the end
// of the last of them, so readers never see a torn record. After such a failure the writer is
// "failed": every later append/flush throws accel::TrackerError.
//
// Durability: flush() = write(2) to the OS (survives the process being killed); sync() adds one
// fsync. Thread-safety: none. The owner (TensorBoardWriter) serialises access with its own mutex.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "common/crc32c.hpp"

namespace accel {

class TfeventsRecordWriter {
 public:
  static constexpr std::size_t kHeaderBytes = 12;  // length + its masked CRC
  static constexpr std::size_t kFooterBytes = 4;   // masked CRC of the data

  // Creates `path` (it must not exist yet). Throws accel::TrackerError naming the path and the OS
  // reason.
  explicit TfeventsRecordWriter(std::filesystem::path path, std::size_t buffer_bytes = 256 * 1024);
  // Flushes what is buffered (errors are swallowed here; call close() to see them) and closes the
  // file.
  ~TfeventsRecordWriter();
  TfeventsRecordWriter(const TfeventsRecordWriter&) = delete;
  TfeventsRecordWriter& operator=(const TfeventsRecordWriter&) = delete;

  // Appends one record holding `data`.
  void append(std::span<const std::byte> data);
  // Appends one record of exactly `size` bytes written in place by `fill(std::byte* out)`: the hot
  // path (no intermediate copy of the payload).
  template <class Fill>
  void append_in_place(std::size_t size, Fill&& fill);

  // Hands the buffered records to the OS. Throws accel::TrackerError on an I/O error (once failed,
  // always).
  void flush();
  // flush() then fsync(2).
  void sync();
  // sync() and close the file. Idempotent.
  void close();

  const std::filesystem::path& path() const { return path_; }
  // Bytes of whole records the OS has accepted: the file's size, also after a failed write (which
  // keeps the whole records it wrote).
  uint64_t bytes_written() const { return written_; }
  // Bytes appended so far, written or still buffered.
  uint64_t bytes_appended() const { return written_ + used_; }
  bool failed() const { return !failure_.empty(); }
  // Why the writer failed; empty when it has not.
  const std::string& failure() const { return failure_; }

 private:
  std::byte* reserve(std::size_t record_bytes);
  void seal(std::byte* record, std::size_t size);
  void write_out(const std::byte* data, std::size_t size);
  void throw_if_failed() const;
  [[noreturn]] void fail(const std::string& what, int error_number);

  std::filesystem::path path_;
  int fd_ = -1;
  std::vector<std::byte> buffer_;
  std::size_t used_ = 0;
  uint64_t written_ = 0;
  std::size_t last_length_ = SIZE_MAX;  // the last record length and its masked CRC
  uint32_t last_length_crc_ = 0;
  std::string failure_;
};

template <class Fill>
void TfeventsRecordWriter::append_in_place(std::size_t size, Fill&& fill) {
  std::byte* record = reserve(kHeaderBytes + size + kFooterBytes);
  fill(record + kHeaderBytes);
  seal(record, size);
}

}  // namespace accel
