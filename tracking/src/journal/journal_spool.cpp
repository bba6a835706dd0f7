#include "journal/journal_spool.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/warnings.hpp"

namespace accel::detail {
namespace {

// The writer thread writes when this much is buffered, or every kWriteInterval.
constexpr std::size_t kWriteThreshold = 64 * 1024;
constexpr auto kWriteInterval = std::chrono::milliseconds(200);
// acknowledged records are written at most this often (unless forced).
constexpr auto kMarkInterval = std::chrono::seconds(1);

}  // namespace

JournalSpool::JournalSpool(std::filesystem::path path, nlohmann::json identity)
    : path_(std::move(path)), writer_(path_), identity_(std::move(identity)) {
  logical_end_ = writer_.size();
  {
    std::lock_guard lock(buffer_mutex_);
    append_identity_locked();
  }
  writer_thread_ = std::thread([this] { writer_main(); });
}

JournalSpool::~JournalSpool() {
  {
    std::lock_guard lock(buffer_mutex_);
    stop_ = true;
  }
  writer_cv_.notify_all();
  if (writer_thread_.joinable()) writer_thread_.join();
}

void JournalSpool::writer_main() {
  while (true) {
    bool stopping;
    {
      std::unique_lock lock(buffer_mutex_);
      writer_cv_.wait_for(lock, kWriteInterval,
                          [&] { return stop_ || buffer_.size() >= kWriteThreshold; });
      stopping = stop_;
    }
    {
      std::lock_guard file_lock(file_mutex_);
      write_buffered();
    }
    if (stopping) return;
  }
}

void JournalSpool::note_failure(const std::string& message) {
  if (warned_) return;
  warned_ = true;
  warn(fmt::format(
      "{}; records that overflowed to this journal from now on may be lost (they are counted in "
      "the end_training report)",
      message));
}

void JournalSpool::write_buffered() {
  std::vector<uint8_t> chunk;
  uint64_t chunk_logs = 0;
  uint64_t chunk_begin = 0;
  {
    std::lock_guard lock(buffer_mutex_);
    if (buffer_.empty()) return;
    chunk.swap(buffer_);
    buffer_.reserve(chunk.capacity());  // no regrowth on the training thread
    writer_woken_ = false;
    chunk_logs = std::exchange(buffer_overflow_logs_, 0);
    chunk_begin = logical_end_ - chunk.size();
    new_run_ = true;  // a Run never spans two chunks, so a failed chunk drops whole Runs
  }
  space_cv_.notify_all();
  try {
    writer_.write_now(chunk);
  } catch (const Error& e) {
    std::lock_guard lock(buffer_mutex_);
    // Everything from chunk_begin on is gone (the writer cut the file back): this chunk and what
    // was buffered after it, whose offsets assumed the chunk would be there.
    lost_logs_ += chunk_logs + std::exchange(buffer_overflow_logs_, 0);
    buffer_.clear();
    std::erase_if(runs_, [&](const Run& run) { return run.begin >= chunk_begin; });
    logical_end_ = writer_.size();
    identity_written_ = false;  // it may have been in the lost part; writing it again is harmless
    new_run_ = true;
    reader_.reset();
    note_failure(e.what());
  }
}

void JournalSpool::append_frame_locked(const JournalRecordView& view, bool overflow) {
  const std::size_t size = append_journal_record(buffer_, view);
  if (overflow) {
    if (new_run_ || runs_.empty() || runs_.back().last + 1 != view.sequence) {
      runs_.push_back({view.sequence, view.sequence, logical_end_, logical_end_ + size});
      new_run_ = false;
    } else {
      runs_.back().last = view.sequence;
      runs_.back().end = logical_end_ + size;
    }
    if (view.kind == RecordKind::log) ++buffer_overflow_logs_;
  } else {
    new_run_ = true;  // a Run holds overflow records only, back to back
  }
  logical_end_ += size;
  max_sequence_ = std::max(max_sequence_, view.sequence);
}

void JournalSpool::append_identity_locked() {
  if (identity_written_ || identity_.is_null()) return;
  JournalRecordView view;
  view.kind = RecordKind::identity;
  view.time = std::chrono::system_clock::now();
  view.json = &identity_;
  append_frame_locked(view, false);
  identity_written_ = true;
}

void JournalSpool::append_overflow(const HubRecord& record) {
  std::unique_lock lock(buffer_mutex_);
  if (buffer_.size() > kBufferCap) {
    writer_cv_.notify_one();
    space_cv_.wait(lock, [&] { return buffer_.size() <= kBufferCap || stop_; });
  }
  append_identity_locked();
  append_frame_locked(record.journal_view(), true);
  if (buffer_.size() >= kWriteThreshold && !writer_woken_) {
    writer_woken_ = true;  // once per buffer: a wake-up costs the training thread a system call
    writer_cv_.notify_one();
  }
}

bool JournalSpool::append_mirror(const std::vector<HubRecord>& records) {
  // Encoded outside every lock; copied into the buffer so that offsets stay consistent. Records the
  // backend already has are left out.
  uint64_t acknowledged;
  {
    std::lock_guard lock(buffer_mutex_);
    acknowledged = acknowledged_;
  }
  std::vector<uint8_t> frames;
  for (const auto& record : records) {
    if (record.sequence > acknowledged) append_journal_record(frames, record.journal_view());
  }
  std::lock_guard file_lock(file_mutex_);
  write_buffered();
  const std::size_t size = frames.size();
  uint64_t end;
  {
    std::lock_guard lock(buffer_mutex_);
    append_identity_locked();
    if (buffer_.empty()) {
      buffer_.swap(frames);
    } else {
      buffer_.insert(buffer_.end(), frames.begin(), frames.end());
    }
    logical_end_ += size;
    end = logical_end_;
    for (const auto& record : records) max_sequence_ = std::max(max_sequence_, record.sequence);
    new_run_ = true;
  }
  write_buffered();
  return writer_.file_size() >= end;
}

void JournalSpool::set_identity(const nlohmann::json& identity) {
  std::lock_guard lock(buffer_mutex_);
  if (identity == identity_) return;
  identity_ = identity;
  identity_written_ = false;
  append_identity_locked();
}

void JournalSpool::acknowledge(uint64_t upto, bool force) {
  std::lock_guard file_lock(file_mutex_);  // the writer thread cannot write meanwhile
  {
    std::lock_guard lock(buffer_mutex_);
    if (upto <= acknowledged_ && !force) return;
    acknowledged_ = std::max(acknowledged_, upto);
    if (acknowledged_ < max_sequence_) {
      const auto now = std::chrono::steady_clock::now();
      if (!force && now - last_mark_ < kMarkInterval) return;
      last_mark_ = now;
      JournalRecordView view;
      view.kind = RecordKind::acknowledged;
      view.time = std::chrono::system_clock::now();
      view.acknowledged = acknowledged_;
      append_frame_locked(view, false);
      return;
    }
    // Everything in the file is at the backend: start it again, empty. New frames may be buffered
    // while the file is cut (without buffer_mutex_, which the training thread needs); their offsets
    // count from the empty file.
    buffer_.clear();
    buffer_overflow_logs_ = 0;
    runs_.clear();
    logical_end_ = kJournalMagic.size();
    identity_written_ = false;
    new_run_ = true;
  }
  reader_.reset();
  try {
    writer_.clear();
  } catch (const Error& e) {
    // The old (acknowledged) bytes stay: what was buffered meanwhile goes after them.
    std::lock_guard lock(buffer_mutex_);
    const uint64_t shift = writer_.size() - kJournalMagic.size();
    for (auto& run : runs_) {
      run.begin += shift;
      run.end += shift;
    }
    logical_end_ += shift;
    note_failure(e.what());
  }
}

bool JournalSpool::sync() {
  std::lock_guard file_lock(file_mutex_);
  write_buffered();
  try {
    writer_.sync();
    return true;
  } catch (const Error& e) {
    note_failure(e.what());
    return false;
  }
}

uint64_t JournalSpool::next_overflow(uint64_t sequence) {
  std::lock_guard lock(buffer_mutex_);
  auto it = std::lower_bound(runs_.begin(), runs_.end(), sequence,
                             [](const Run& run, uint64_t s) { return run.last < s; });
  if (it == runs_.end()) return 0;
  return std::max(it->first, sequence);
}

std::optional<HubRecord> JournalSpool::read_overflow(uint64_t sequence) {
  std::lock_guard file_lock(file_mutex_);
  Run run;
  {
    std::lock_guard lock(buffer_mutex_);
    auto it = std::lower_bound(runs_.begin(), runs_.end(), sequence,
                               [](const Run& r, uint64_t s) { return r.last < s; });
    if (it == runs_.end() || it->first > sequence) return std::nullopt;
    run = *it;
  }
  if (run.end > writer_.file_size()) write_buffered();
  if (run.end > writer_.file_size()) return std::nullopt;  // the write failed: lost
  if (!reader_ || reader_sequence_ != sequence || sequence == run.first) {
    if (sequence != run.first) {
      // Not where the reader stands: walk the run from its start (not reached when reading in
      // order).
      reader_.emplace(path_, run.begin);
      for (uint64_t s = run.first; s < sequence; ++s) reader_->next();
    } else {
      reader_.emplace(path_, run.begin);
    }
  }
  auto record = reader_->next();
  if (!record || record->sequence != sequence) {
    reader_.reset();
    return std::nullopt;
  }
  reader_sequence_ = sequence + 1;
  return HubRecord::from_journal_record(std::move(*record));
}

uint64_t JournalSpool::lost_logs() const {
  std::lock_guard lock(buffer_mutex_);
  return lost_logs_;
}

bool JournalSpool::settled() const {
  std::lock_guard lock(buffer_mutex_);
  return acknowledged_ >= max_sequence_;
}

}  // namespace accel::detail
