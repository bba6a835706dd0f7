#pragma once
// Internal: how the file-based trackers (csv, jsonl, tensorboard) write their files.
//
// RecordFile is the data file of a tracker (csv's metrics.csv, jsonl's metrics.jsonl): whole
// records (a row, a line) collected in a small buffer and handed to the OS through a POSIX file
// descriptor, so that a write that fails (disk full) can be undone and its errno reported. Every
// buffered record carries the number of the tracker call it belongs to (see
// GeneralTracker::acknowledge), so that the tracker knows which of its records have reached the OS.
// Thread-safety: none (the tracker's worker thread owns it).
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "accel/tracking/general_tracker.hpp"

namespace accel::detail {

// The text of an errno value ("No space left on device"), as strerror gives it.
std::string os_reason(int error_number);

// Writes content to a temporary file beside path (path + ".<pid>.<n>.tmp", unique per call, so that
// concurrent writers of one path do not collide) and renames that over path, so that readers see
// the old file or the new one, never a part of it. Returns why it failed ("cannot write
// '<path>.<pid>.<n>.tmp': No space left on device"; the temporary file is then removed), or nullopt
// when it succeeded. Thread-safe.
std::optional<std::string> write_file_atomically(const std::filesystem::path& path,
                                                 std::string_view content);

// TrackerInit::resume's "directory" (what resume_info() returned in the process that wrote a
// journal); nullopt when resume has none. Throws accel::InvalidValue when it is not a string.
std::optional<std::filesystem::path> resume_directory(const nlohmann::json& resume,
                                                      std::string_view tracker);

// Where a file tracker writes: the directory to continue (TrackerInit::resume's, else
// init_kwargs["run_dir"], the Accelerator's run directory; created when missing; continued = true),
// else a new <logging_dir>/<run_name>/version_N. Throws accel::TrackerError naming the directory
// when it cannot be created.
struct RunDirectory {
  std::filesystem::path path;
  bool continued = false;
};
RunDirectory run_directory_for(const TrackerInit& init, std::string_view tracker);

// {"directory": "<dir, made absolute>"}: what the file trackers return from resume_info().
nlohmann::json directory_resume_info(const std::filesystem::path& dir);

class RecordFile {
 public:
  // tracker: the name that starts error messages ("csv").
  explicit RecordFile(std::string tracker) : tracker_(std::move(tracker)) {}
  ~RecordFile();  // closes the file; what is still buffered is not written
  RecordFile(const RecordFile&) = delete;
  RecordFile& operator=(const RecordFile&) = delete;

  // Opens path for reading and appending (created when missing; emptied first when truncate).
  // Closes the file that was open before. Throws accel::TrackerUnavailable when the disk is full
  // (ENOSPC, EDQUOT), accel::TrackerError otherwise; the message names the path and the OS reason.
  void open(const std::filesystem::path& path, bool truncate);
  bool is_open() const { return fd_ >= 0; }
  void close();

  // Buffers one whole record. number: the tracker call it belongs to (counted from 1), or 0 for
  // bytes that belong to no call of their own (csv's header line).
  void add(std::string_view bytes, uint64_t number);
  // Removes the buffered records of calls numbered `number` or later (the call that failed).
  void drop_from(uint64_t number);
  // Hands everything buffered to the OS (write(2); no fsync). When a write fails, the file is cut
  // back to the end of the last whole record written (ftruncate), the records not written stay
  // buffered, and accel::TrackerUnavailable is thrown: "<tracker>: cannot write '<path>': <OS
  // reason>".
  void write_buffered();

  bool has_buffered() const { return !buffer_.empty(); }
  std::size_t buffered_bytes() const { return buffer_.size(); }
  // fsync(2): what the OS has accepted reaches the disk. Throws accel::TrackerError naming the path.
  void sync();

  // True after a write failed, until write_buffered() succeeds.
  bool write_failed() const { return write_failed_; }
  // The number of the oldest buffered record that belongs to a call; 0 when there is none.
  uint64_t first_buffered_number() const;

  const std::filesystem::path& path() const { return path_; }
  // Bytes the file holds (what the OS has accepted).
  uint64_t size() const { return size_; }
  // Reads `count` bytes at `offset` of the file (fewer at its end). Throws accel::TrackerError.
  std::string read(uint64_t offset, std::size_t count) const;
  // Cuts the file to `size` bytes (a torn record left by a process that died while writing).
  // Throws accel::TrackerError.
  void truncate(uint64_t size);
  // The size of the file without a torn last record: just after its last '\n' at or after `from`,
  // or `from` when there is none. Records are '\n'-terminated lines without line breaks inside.
  uint64_t end_of_last_line(uint64_t from) const;

 private:
  struct Record {
    std::size_t end;  // offset just after the record in buffer_
    uint64_t number;
  };

  std::string tracker_;
  std::filesystem::path path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  std::string buffer_;
  std::deque<Record> records_;
  bool write_failed_ = false;
  bool torn_tail_ = false;  // a failed write could not be cut back: bytes past size_ to remove
};

}  // namespace accel::detail
