#include "trackers/tensorboard/tfevents_record_writer.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "accel/tracking/errors.hpp"

namespace accel {
namespace {

void store_le32(std::byte* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<std::byte>(v >> (8 * i));
}
void store_le64(std::byte* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<std::byte>(v >> (8 * i));
}

std::string os_reason(int error_number) {
  return std::system_category().message(error_number);
}

}  // namespace

TfeventsRecordWriter::TfeventsRecordWriter(std::filesystem::path path, std::size_t buffer_bytes)
    : path_(std::move(path)), buffer_(std::max<std::size_t>(buffer_bytes, 4096)) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    int e = errno;
    throw TrackerError(
        fmt::format("cannot create TensorBoard event file '{}': {}; make sure the logging "
                    "directory is writable (or choose another logging_dir)",
                    path_.string(), os_reason(e)));
  }
}

TfeventsRecordWriter::~TfeventsRecordWriter() {
  try {
    close();
  } catch (const std::exception&) {
    // Destructors do not throw; close() reports errors to callers that want them.
  }
  if (fd_ >= 0) ::close(fd_);
}

std::byte* TfeventsRecordWriter::reserve(std::size_t record_bytes) {
  throw_if_failed();
  if (used_ + record_bytes > buffer_.size()) {
    flush();
    if (record_bytes > buffer_.size()) buffer_.resize(record_bytes);  // one large record (an image)
  }
  std::byte* record = buffer_.data() + used_;
  used_ += record_bytes;
  return record;
}

void TfeventsRecordWriter::seal(std::byte* record, std::size_t size) {
  store_le64(record, size);
  // Runs of records have the same length (one scalar tag after another): reuse the length's CRC.
  if (size != last_length_) {
    last_length_ = size;
    last_length_crc_ = mask_crc32c(crc32c(record, 8));
  }
  store_le32(record + 8, last_length_crc_);
  store_le32(record + kHeaderBytes + size, mask_crc32c(crc32c(record + kHeaderBytes, size)));
}

void TfeventsRecordWriter::append(std::span<const std::byte> data) {
  append_in_place(data.size(), [&](std::byte* out) {
    if (!data.empty()) std::memcpy(out, data.data(), data.size());
  });
}

void TfeventsRecordWriter::flush() {
  throw_if_failed();
  if (used_ == 0) return;
  write_out(buffer_.data(), used_);
  used_ = 0;
}

void TfeventsRecordWriter::write_out(const std::byte* data, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd_, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = n < 0 ? errno : ENOSPC;
      // Keep the whole records that reached the OS (data holds whole records back to back) and cut
      // the part of the next one off, so that the file stays readable.
      std::size_t kept = 0;
      while (kept + kHeaderBytes <= done) {
        uint64_t length = 0;
        for (int i = 0; i < 8; ++i) length |= static_cast<uint64_t>(data[kept + i]) << (8 * i);
        const std::size_t record = kHeaderBytes + static_cast<std::size_t>(length) + kFooterBytes;
        if (kept + record > done) break;
        kept += record;
      }
      if (done > kept && ::ftruncate(fd_, static_cast<off_t>(written_ + kept)) == 0) {
        ::lseek(fd_, static_cast<off_t>(written_ + kept), SEEK_SET);
      }
      written_ += kept;
      used_ = 0;
      fail("writing", e);
    }
    done += static_cast<std::size_t>(n);
  }
  written_ += size;
}

void TfeventsRecordWriter::sync() {
  flush();
  if (::fsync(fd_) != 0 && errno != EINVAL && errno != EROFS) fail("syncing", errno);
}

void TfeventsRecordWriter::close() {
  if (fd_ < 0) return;
  if (!failed()) sync();
  ::close(fd_);
  fd_ = -1;
}

void TfeventsRecordWriter::throw_if_failed() const {
  if (failed()) throw TrackerError(failure_);
  if (fd_ < 0) {
    throw UsageError(fmt::format("TensorBoard event file '{}' is already closed", path_.string()));
  }
}

void TfeventsRecordWriter::fail(const std::string& what, int error_number) {
  failure_ = fmt::format(
      "{} TensorBoard event file '{}' failed: {}{}; the file keeps every record "
      "written before this error and nothing after it",
      what, path_.string(), os_reason(error_number),
      error_number == ENOSPC ? " (the disk is full: free space and start a new run)" : "");
  throw TrackerError(failure_);
}

}  // namespace accel
