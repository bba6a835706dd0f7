#include "journal/journal.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "accel/tracking/errors.hpp"
#include "common/crc32c.hpp"

namespace accel {
namespace {

constexpr std::size_t kHeaderSize = kJournalFrameHeader;
constexpr std::size_t kMaxPayload = 1U << 30;  // a length above this is damage, not data
constexpr std::size_t kFlushThreshold = 64 * 1024;

using json = nlohmann::json;

uint32_t get_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

// Value → JSON with an unambiguous shape per kind: numbers are scalars (integer vs float kept by
// CBOR), a string is {"s": ...}, the others are tagged objects.
json encode_value(const Value& value) {
  struct Visitor {
    json operator()(int64_t v) const { return v; }
    json operator()(double v) const { return v; }
    json operator()(const std::string& v) const { return json{{"s", v}}; }
    json operator()(const Image& v) const {
      return json{{"image", {v.height, v.width, v.channels}}, {"pixels", json::binary(v.pixels)}};
    }
    json operator()(const Histogram& v) const {
      return json{{"histogram",
                   {{"samples", v.samples},
                    {"bucket_limits", v.bucket_limits},
                    {"bucket_counts", v.bucket_counts},
                    {"min", v.min},
                    {"max", v.max},
                    {"sum", v.sum},
                    {"sum_squares", v.sum_squares}}}};
    }
    json operator()(const Table& v) const {
      return json{{"table", {{"columns", v.columns}, {"rows", v.rows}}}};
    }
    json operator()(const ScalarGroup& v) const {
      json series = json::array();
      for (const auto& [name, x] : v.series) series.push_back(json{name, x});
      return json{{"group", series}};
    }
  };
  return std::visit(Visitor{}, value.storage());
}

Value decode_value(const json& j) {
  if (j.is_number_float()) return Value(j.get<double>());
  if (j.is_number_integer()) return Value(static_cast<long long>(j.get<int64_t>()));
  if (!j.is_object() || j.size() == 0) throw TrackerError("journal: value of unknown shape");
  if (auto it = j.find("s"); it != j.end()) return Value(it->get<std::string>());
  if (auto it = j.find("image"); it != j.end()) {
    Image image;
    image.height = (*it)[0].get<int64_t>();
    image.width = (*it)[1].get<int64_t>();
    image.channels = (*it)[2].get<int64_t>();
    image.pixels = j.at("pixels").get_binary();
    return Value(std::move(image));
  }
  if (auto it = j.find("histogram"); it != j.end()) {
    Histogram h;
    h.samples = it->at("samples").get<std::vector<double>>();
    h.bucket_limits = it->at("bucket_limits").get<std::vector<double>>();
    h.bucket_counts = it->at("bucket_counts").get<std::vector<double>>();
    h.min = it->at("min").get<double>();
    h.max = it->at("max").get<double>();
    h.sum = it->at("sum").get<double>();
    h.sum_squares = it->at("sum_squares").get<double>();
    return Value(std::move(h));
  }
  if (auto it = j.find("table"); it != j.end()) {
    Table t;
    t.columns = it->at("columns").get<std::vector<std::string>>();
    for (const auto& row : it->at("rows")) t.rows.push_back(row.get<std::vector<json>>());
    return Value(std::move(t));
  }
  if (auto it = j.find("group"); it != j.end()) {
    ScalarGroup g;
    for (const auto& pair : *it)
      g.series.emplace_back(pair[0].get<std::string>(), pair[1].get<double>());
    return Value(std::move(g));
  }
  throw TrackerError("journal: value of unknown kind");
}

std::string errno_text() {
  return std::strerror(errno);
}

// ---- CBOR writer for the hot path (RFC 8949 §3): heads, integers, float64, text. What it writes
// decodes with nlohmann::json::from_cbor like nlohmann's own encoding.
void put_head(std::vector<uint8_t>& out, uint8_t major, uint64_t value) {
  const uint8_t m = static_cast<uint8_t>(major << 5);
  if (value < 24) {
    out.push_back(static_cast<uint8_t>(m | value));
    return;
  }
  int bytes = value <= 0xFF ? 1 : value <= 0xFFFF ? 2 : value <= 0xFFFFFFFFULL ? 4 : 8;
  out.push_back(static_cast<uint8_t>(m | (bytes == 1   ? 24
                                          : bytes == 2 ? 25
                                          : bytes == 4 ? 26
                                                       : 27)));
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

void put_int(std::vector<uint8_t>& out, int64_t v) {
  if (v >= 0) {
    put_head(out, 0, static_cast<uint64_t>(v));
  } else {
    put_head(out, 1, static_cast<uint64_t>(-(v + 1)));
  }
}

void put_double(std::vector<uint8_t>& out, double v) {
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof bits);
  out.push_back(0xFB);
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<uint8_t>(bits >> (8 * i)));
}

void put_text(std::vector<uint8_t>& out, std::string_view text) {
  put_head(out, 3, text.size());
  out.insert(out.end(), text.begin(), text.end());
}

void put_json(std::vector<uint8_t>& out, const json& value) {
  json::to_cbor(value, out);
}

void put_value(std::vector<uint8_t>& out, const Value& value) {
  if (const auto* i = value.get_if<int64_t>()) return put_int(out, *i);
  if (const auto* d = value.get_if<double>()) return put_double(out, *d);
  if (const auto* s = value.get_if<std::string>()) {
    put_head(out, 5, 1);
    put_text(out, "s");
    return put_text(out, *s);
  }
  put_json(out, encode_value(value));
}

}  // namespace

JournalRecordView view_of(const JournalRecord& record) {
  JournalRecordView view;
  view.kind = record.kind;
  view.sequence = record.sequence;
  view.time = record.time;
  view.step = record.step;
  view.values = &record.values;
  view.json = record.kind == RecordKind::identity ? &record.identity : &record.config;
  view.status = record.status;
  view.acknowledged = record.acknowledged;
  return view;
}

std::size_t append_journal_record(std::vector<uint8_t>& out, const JournalRecordView& record) {
  const std::size_t frame = out.size();
  out.resize(frame + kJournalFrameHeader);
  const std::size_t payload = out.size();
  const bool has_step = record.kind == RecordKind::log && record.step.has_value();
  put_head(out, 5, has_step ? 4 : 3);
  // "kind" first: readers that only need the kind look at the payload's 7th byte.
  put_text(out, "kind");
  put_head(out, 0, static_cast<uint64_t>(record.kind));
  put_text(out, "time_ns");
  put_int(
      out,
      std::chrono::duration_cast<std::chrono::nanoseconds>(record.time.time_since_epoch()).count());
  switch (record.kind) {
    case RecordKind::config:
      put_text(out, "config");
      put_json(out, record.json ? *record.json : json::object());
      break;
    case RecordKind::log:
      if (has_step) {
        put_text(out, "step");
        put_int(out, *record.step);
      }
      put_text(out, "values");
      put_head(out, 4, record.values ? record.values->size() : 0);
      if (record.values) {
        for (const auto& [key, value] : *record.values) {
          put_head(out, 4, 2);
          put_text(out, key);
          put_value(out, value);
        }
      }
      break;
    case RecordKind::finish:
      put_text(out, "status");
      put_head(out, 0, static_cast<uint64_t>(record.status));
      break;
    case RecordKind::identity:
      put_text(out, "identity");
      put_json(out, record.json ? *record.json : json());
      break;
    case RecordKind::acknowledged:
      put_text(out, "acknowledged");
      put_head(out, 0, record.acknowledged);
      break;
  }
  const std::size_t length = out.size() - payload;
  uint8_t* header = out.data() + frame;
  for (int i = 0; i < 8; ++i) header[8 + i] = static_cast<uint8_t>(record.sequence >> (8 * i));
  const uint32_t checksum = crc32c_extend(crc32c(header + 8, 8), out.data() + payload, length);
  for (int i = 0; i < 4; ++i) {
    header[i] = static_cast<uint8_t>(length >> (8 * i));
    header[4 + i] = static_cast<uint8_t>(checksum >> (8 * i));
  }
  return out.size() - frame;
}

std::vector<uint8_t> encode_journal_record(const JournalRecord& record) {
  std::vector<uint8_t> frame;
  append_journal_record(frame, view_of(record));
  return {frame.begin() + kJournalFrameHeader, frame.end()};
}

JournalRecord decode_journal_record(std::span<const uint8_t> payload) {
  try {
    json j = json::from_cbor(payload.begin(), payload.end());
    JournalRecord record;
    int kind = j.at("kind").get<int>();
    if (kind < 1 || kind > 5)
      throw TrackerError(fmt::format("journal: unknown record kind {}", kind));
    record.kind = static_cast<RecordKind>(kind);
    record.time = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(j.at("time_ns").get<int64_t>())));
    switch (record.kind) {
      case RecordKind::config:
        record.config = j.at("config");
        break;
      case RecordKind::log:
        if (auto it = j.find("step"); it != j.end()) record.step = it->get<int64_t>();
        for (const auto& entry : j.at("values")) {
          record.values.set(entry.at(0).get<std::string>(), decode_value(entry.at(1)));
        }
        break;
      case RecordKind::finish:
        record.status = static_cast<RunStatus>(j.at("status").get<int>());
        break;
      case RecordKind::identity:
        record.identity = j.at("identity");
        break;
      case RecordKind::acknowledged:
        record.acknowledged = j.at("acknowledged").get<uint64_t>();
        break;
    }
    return record;
  } catch (const json::exception& e) {
    throw TrackerError(fmt::format("journal: malformed record ({})", e.what()));
  }
}

JournalWriter::JournalWriter(std::filesystem::path path) : path_(std::move(path)) {
  if (path_.has_parent_path()) {
    const auto parent = path_.parent_path();
    std::error_code ec;
    const bool created = std::filesystem::create_directories(parent, ec);
    if (ec) {
      throw TrackerError(
          fmt::format("cannot create the journal directory '{}': {}; set another "
                      "journal directory",
                      parent.string(), ec.message()));
    }
    if (created) ::chmod(parent.c_str(), 0700);
  }
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    throw TrackerError(
        fmt::format("cannot open journal '{}': {}; check that the directory is "
                    "writable or set another journal directory",
                    path_.string(), errno_text()));
  }
  ::fchmod(fd_, 0600);
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd_);
    fd_ = -1;
    throw TrackerError(fmt::format(
        "journal '{}' is in use by another writer (a running training process, or another "
        "`accel-launch sync`); wait for it to end",
        path_.string()));
  }
  struct stat st {};
  if (::fstat(fd_, &st) == 0) file_size_ = static_cast<uint64_t>(st.st_size);
  if (file_size_ == 0) {
    buffer_.assign(kJournalMagic.begin(), kJournalMagic.end());
    return;
  }
  char magic[kJournalMagic.size()] = {};
  if (::pread(fd_, magic, sizeof magic, 0) != static_cast<ssize_t>(sizeof magic) ||
      std::string_view(magic, sizeof magic) != kJournalMagic) {
    ::close(fd_);
    fd_ = -1;
    throw TrackerError(fmt::format(
        "'{}' is not an accel journal (it does not start with {}); move it away or choose "
        "another journal directory",
        path_.string(), kJournalMagic));
  }
}

JournalWriter::~JournalWriter() {
  try {
    flush();
  } catch (const Error&) {
    // Nothing more can be done in a destructor; the records that reached the file stay readable.
  }
  if (fd_ >= 0) ::close(fd_);
}

void JournalWriter::append(const JournalRecord& record) {
  append_journal_record(buffer_, view_of(record));
  if (buffer_.size() >= kFlushThreshold) flush();
}

void JournalWriter::append_frames(std::span<const uint8_t> frames) {
  buffer_.insert(buffer_.end(), frames.begin(), frames.end());
  if (buffer_.size() >= kFlushThreshold) flush();
}

void JournalWriter::flush() {
  std::vector<uint8_t> buffered;
  buffered.swap(buffer_);
  write_now(buffered);
}

void JournalWriter::write_now(std::span<const uint8_t> frames) {
  if (!buffer_.empty()) flush();
  std::size_t written = 0;
  while (written < frames.size()) {
    ssize_t n = ::write(fd_, frames.data() + written, frames.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string reason = n < 0 ? errno_text() : "the disk accepted no more bytes";
      // Undo the part of this write that reached the file: the journal ends in a whole record.
      if (written > 0 && ::ftruncate(fd_, static_cast<off_t>(file_size_)) != 0) {
        file_size_ += written;  // could not cut; the reader stops at the torn record
      }
      // A new file's magic must still come first.
      if (file_size_ < kJournalMagic.size()) {
        buffer_.assign(kJournalMagic.begin(), kJournalMagic.end());
      }
      throw TrackerError(fmt::format("cannot write journal '{}': {}", path_.string(), reason));
    }
    written += static_cast<std::size_t>(n);
  }
  file_size_ += written;
}

void JournalWriter::sync() {
  flush();
  if (::fsync(fd_) != 0) {
    throw TrackerError(fmt::format("cannot fsync journal '{}': {}", path_.string(), errno_text()));
  }
}

void JournalWriter::clear() {
  buffer_.clear();
  if (::ftruncate(fd_, static_cast<off_t>(kJournalMagic.size())) != 0) {
    throw TrackerError(
        fmt::format("cannot truncate journal '{}': {}", path_.string(), errno_text()));
  }
  file_size_ = std::min<uint64_t>(file_size_, kJournalMagic.size());
  if (file_size_ < kJournalMagic.size()) buffer_.assign(kJournalMagic.begin(), kJournalMagic.end());
}

JournalReader::JournalReader(const std::filesystem::path& path, uint64_t offset)
    : offset_(std::max<uint64_t>(offset, kJournalMagic.size())) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) return;
  char magic[kJournalMagic.size()] = {};
  const ssize_t got = ::pread(fd_, magic, sizeof magic, 0);
  if (got == 0) return;  // empty file: reads as empty
  if (got != static_cast<ssize_t>(sizeof magic) ||
      std::string_view(magic, sizeof magic) != kJournalMagic) {
    damaged_ = true;
    offset_ = 0;
  }
}

JournalReader::~JournalReader() {
  if (fd_ >= 0) ::close(fd_);
}

// Makes buffer_ hold [offset_, offset_ + need) when the file has that many bytes there.
bool JournalReader::fill(std::size_t need) {
  constexpr std::size_t kReadAhead = 256 * 1024;
  if (offset_ >= buffer_offset_ && offset_ + need <= buffer_offset_ + buffer_.size()) return true;
  if (need > kReadAhead) {
    // A length field that was torn may claim up to 1 GiB: believe it only if the file is that long.
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || offset_ + need > static_cast<uint64_t>(st.st_size)) return false;
  }
  buffer_.resize(std::max(need, kReadAhead));
  buffer_offset_ = offset_;
  std::size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = ::pread(fd_, buffer_.data() + done, buffer_.size() - done,
                        static_cast<off_t>(buffer_offset_ + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  buffer_.resize(done);
  return done >= need;
}

std::optional<JournalReader::Frame> JournalReader::next_frame() {
  if (fd_ < 0 || damaged_) return std::nullopt;
  if (!fill(kHeaderSize)) {
    if (offset_ < buffer_offset_ + buffer_.size()) damaged_ = true;  // a torn header
    return std::nullopt;                                             // else the clean end
  }
  const uint8_t* header = buffer_.data() + (offset_ - buffer_offset_);
  const uint32_t length = get_u32(header);
  const uint32_t checksum = get_u32(header + 4);
  uint64_t sequence = 0;
  for (int i = 0; i < 8; ++i) sequence |= static_cast<uint64_t>(header[8 + i]) << (8 * i);
  if (length > kMaxPayload || !fill(kHeaderSize + length)) {
    damaged_ = true;
    return std::nullopt;
  }
  const uint8_t* frame = buffer_.data() + (offset_ - buffer_offset_);
  if (crc32c_extend(crc32c(frame + 8, 8), frame + kHeaderSize, length) != checksum) {
    damaged_ = true;
    return std::nullopt;
  }
  Frame out;
  out.sequence = sequence;
  out.payload = {frame + kHeaderSize, length};
  // Our encoder writes "kind" first: map head, text(4) "kind", kind (< 24, one byte).
  static constexpr uint8_t kKindKey[] = {0x64, 'k', 'i', 'n', 'd'};
  if (length >= 7 &&
      std::equal(std::begin(kKindKey), std::end(kKindKey), frame + kHeaderSize + 1) &&
      frame[kHeaderSize + 6] >= 1 && frame[kHeaderSize + 6] <= 5) {
    out.kind = static_cast<RecordKind>(frame[kHeaderSize + 6]);
  } else {
    try {
      out.kind = decode_journal_record(out.payload).kind;
    } catch (const TrackerError&) {
      damaged_ = true;
      return std::nullopt;
    }
  }
  offset_ += kHeaderSize + length;
  return out;
}

std::optional<JournalRecord> JournalReader::next() {
  const uint64_t at = offset_;
  auto frame = next_frame();
  if (!frame) return std::nullopt;
  try {
    JournalRecord record = decode_journal_record(frame->payload);
    record.sequence = frame->sequence;
    return record;
  } catch (const TrackerError&) {
    offset_ = at;
    damaged_ = true;
    return std::nullopt;
  }
}

std::vector<JournalRecord> read_journal(const std::filesystem::path& path) {
  std::vector<JournalRecord> records;
  JournalReader reader(path);
  while (auto record = reader.next()) records.push_back(std::move(*record));
  return records;
}

JournalContents read_journal_contents(const std::filesystem::path& path, bool keep_records) {
  JournalContents contents;
  std::vector<JournalRecord> records;
  // keep_records == false: two bits per sequence number instead of the records.
  std::vector<bool> seen, is_log;
  JournalReader reader(path);
  while (auto frame = reader.next_frame()) {
    if (frame->kind == RecordKind::identity || frame->kind == RecordKind::acknowledged) {
      JournalRecord record;
      try {
        record = decode_journal_record(frame->payload);
      } catch (const TrackerError&) {
        contents.damaged = true;
        break;
      }
      if (record.kind == RecordKind::identity) contents.identity = std::move(record.identity);
      if (record.kind == RecordKind::acknowledged) {
        contents.acknowledged = std::max(contents.acknowledged, record.acknowledged);
      }
    } else if (keep_records) {
      try {
        records.push_back(decode_journal_record(frame->payload));
      } catch (const TrackerError&) {
        contents.damaged = true;
        break;
      }
      records.back().sequence = frame->sequence;
    } else {
      if (frame->sequence >= seen.size()) {
        const std::size_t size = std::max<std::size_t>(frame->sequence + 1, 2 * seen.size());
        seen.resize(size);
        is_log.resize(size);
      }
      seen[frame->sequence] = true;
      is_log[frame->sequence] = frame->kind == RecordKind::log;
    }
  }
  contents.damaged = contents.damaged || reader.stopped_at_damage();
  contents.damaged_at = reader.offset();
  std::stable_sort(records.begin(), records.end(),
                   [](const auto& a, const auto& b) { return a.sequence < b.sequence; });
  for (auto& record : records) {
    if (record.sequence <= contents.acknowledged) continue;
    if (!contents.pending.empty() && contents.pending.back().sequence == record.sequence) continue;
    if (record.kind == RecordKind::log) ++contents.pending_logs;
    contents.pending.push_back(std::move(record));
  }
  contents.pending_records = contents.pending.size();
  for (std::size_t sequence = contents.acknowledged + 1; sequence < seen.size(); ++sequence) {
    if (!seen[sequence]) continue;
    ++contents.pending_records;
    if (is_log[sequence]) ++contents.pending_logs;
  }
  return contents;
}

}  // namespace accel
