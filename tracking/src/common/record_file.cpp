#include "common/record_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <system_error>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/key_rules.hpp"
#include "common/init_kwargs.hpp"

namespace accel::detail {
namespace {

// Writes all of data at offset; returns 0, or the errno of the write that failed (with the bytes
// written before it in `done`).
int write_all(int fd, const char* data, std::size_t size, uint64_t offset, std::size_t& done) {
  done = 0;
  while (done < size) {
    ssize_t n = ::pwrite(fd, data + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : ENOSPC;  // 0 bytes written: the file system is full
    done += static_cast<std::size_t>(n);
  }
  return 0;
}

bool disk_full(int error_number) {
  return error_number == ENOSPC || error_number == EDQUOT;
}

}  // namespace

std::string os_reason(int error_number) {
  return std::system_category().message(error_number);
}

std::optional<std::string> write_file_atomically(const std::filesystem::path& path,
                                                 std::string_view content) {
  // A name of its own per call: two trackers of one run may write the same file (hparams.yaml) into
  // the run's directory at the same time, each from its own worker thread.
  static std::atomic<uint64_t> calls{0};
  auto tmp = path;
  tmp += fmt::format(".{}.{}.tmp", ::getpid(), calls.fetch_add(1));
  auto failed = [&](int error_number) {
    ::unlink(tmp.c_str());
    return fmt::format("cannot write '{}': {}", tmp.string(), os_reason(error_number));
  };
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fmt::format("cannot write '{}': {}", tmp.string(), os_reason(errno));
  std::size_t done = 0;
  if (int e = write_all(fd, content.data(), content.size(), 0, done); e != 0) {
    ::close(fd);
    return failed(e);
  }
  if (::close(fd) != 0) return failed(errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    return fmt::format("cannot rename '{}' to '{}': {}", tmp.string(), path.string(), os_reason(e));
  }
  return std::nullopt;
}

std::optional<std::filesystem::path> resume_directory(const nlohmann::json& resume,
                                                      std::string_view tracker) {
  auto dir = non_empty_string_option(resume, "directory", [&](const nlohmann::json& v) {
    return fmt::format(
        "{}: resume[\"directory\"] = {} is not a directory name; it should be what resume_info() "
        "returned, e.g. {{\"directory\": \"/runs/proj/version_0\"}}",
        tracker, v.dump());
  });
  if (!dir) return std::nullopt;
  return std::filesystem::path(*dir);
}

RunDirectory run_directory_for(const TrackerInit& init, std::string_view tracker) {
  auto dir = resume_directory(init.resume, tracker);
  if (!dir) dir = run_directory_option(init.init_kwargs, tracker);
  if (!dir) {
    return {create_version_directory(child_directory(init.logging_dir, init.run_name), init.run_id),
            false};
  }
  // `accel-launch sync` delivering a journal, or the Accelerator's run directory: continue the run
  // in its directory.
  std::error_code ec;
  std::filesystem::create_directories(*dir, ec);
  if (ec) {
    throw TrackerError(fmt::format("{}: cannot continue the run in '{}': {}", tracker,
                                   dir->string(), ec.message()));
  }
  return {*dir, true};
}

nlohmann::json directory_resume_info(const std::filesystem::path& dir) {
  std::error_code ec;
  auto absolute = std::filesystem::absolute(dir, ec);
  return {{"directory", (ec ? dir : absolute).lexically_normal().string()}};
}

RecordFile::~RecordFile() {
  close();
}

void RecordFile::open(const std::filesystem::path& path, bool truncate) {
  close();
  path_ = path;
  const int flags = O_RDWR | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0);
  int fd = ::open(path_.c_str(), flags, 0644);
  if (fd < 0) {
    const int e = errno;
    const std::string message =
        fmt::format("{}: cannot open '{}' for writing: {}", tracker_, path_.string(), os_reason(e));
    if (disk_full(e)) throw TrackerUnavailable(message);
    throw TrackerError(message);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw TrackerError(fmt::format("{}: cannot read the size of '{}': {}", tracker_, path_.string(),
                                   os_reason(e)));
  }
  fd_ = fd;
  size_ = static_cast<uint64_t>(st.st_size);
  torn_tail_ = false;
}

void RecordFile::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void RecordFile::add(std::string_view bytes, uint64_t number) {
  buffer_.append(bytes);
  records_.push_back({buffer_.size(), number});
}

void RecordFile::drop_from(uint64_t number) {
  while (!records_.empty() && records_.back().number >= number) {
    records_.pop_back();
    buffer_.resize(records_.empty() ? 0 : records_.back().end);
  }
}

uint64_t RecordFile::first_buffered_number() const {
  for (const auto& record : records_) {
    if (record.number != 0) return record.number;
  }
  return 0;
}

void RecordFile::write_buffered() {
  if (buffer_.empty()) {
    write_failed_ = false;
    return;
  }
  if (fd_ < 0) {
    throw TrackerError(fmt::format("{}: '{}' is not open", tracker_, path_.string()));
  }
  std::size_t done = 0;
  const int error = write_all(fd_, buffer_.data(), buffer_.size(), size_, done);
  if (error == 0) {
    size_ += buffer_.size();
    buffer_.clear();
    records_.clear();
    write_failed_ = false;
    if (torn_tail_ && ::ftruncate(fd_, static_cast<off_t>(size_)) == 0) torn_tail_ = false;
    return;
  }
  // Keep the whole records that reached the OS; cut off the part of the first one that did not.
  std::size_t kept = 0;
  while (!records_.empty() && records_.front().end <= done) {
    kept = records_.front().end;
    records_.pop_front();
  }
  for (auto& record : records_) record.end -= kept;
  buffer_.erase(0, kept);
  size_ += kept;
  write_failed_ = true;
  std::string message =
      fmt::format("{}: cannot write '{}': {}", tracker_, path_.string(), os_reason(error));
  if (done > kept || torn_tail_) {
    if (::ftruncate(fd_, static_cast<off_t>(size_)) == 0) {
      torn_tail_ = false;
    } else {
      torn_tail_ = true;  // the next write overwrites the torn bytes, and cuts the rest then
      message += fmt::format(" (and cutting it back to its last whole record failed: {})",
                             os_reason(errno));
    }
  }
  throw TrackerUnavailable(message);
}

void RecordFile::sync() {
  if (fd_ >= 0 && ::fsync(fd_) != 0) {
    throw TrackerError(
        fmt::format("{}: cannot fsync '{}': {}", tracker_, path_.string(), os_reason(errno)));
  }
}

std::string RecordFile::read(uint64_t offset, std::size_t count) const {
  std::string out(count, '\0');
  std::size_t done = 0;
  while (done < count) {
    ssize_t n = ::pread(fd_, out.data() + done, count - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      throw TrackerError(
          fmt::format("{}: cannot read '{}': {}", tracker_, path_.string(), os_reason(errno)));
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  out.resize(done);
  return out;
}

void RecordFile::truncate(uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
    throw TrackerError(fmt::format("{}: cannot cut '{}' back to {} bytes: {}", tracker_,
                                   path_.string(), size, os_reason(errno)));
  }
  size_ = size;
}

uint64_t RecordFile::end_of_last_line(uint64_t from) const {
  constexpr std::size_t kChunk = 64 * 1024;
  uint64_t end = size_;
  while (end > from) {
    const uint64_t begin = std::max<uint64_t>(from, end > kChunk ? end - kChunk : 0);
    const std::string chunk = read(begin, static_cast<std::size_t>(end - begin));
    const auto pos = chunk.rfind('\n');
    if (pos != std::string::npos) return begin + pos + 1;
    end = begin;
  }
  return from;
}

}  // namespace accel::detail
