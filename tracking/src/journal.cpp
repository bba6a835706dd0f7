#include "accel/tracking/journal.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "accel/tracking/crc32c.hpp"
#include "accel/tracking/errors.hpp"

namespace accel {
namespace {

constexpr std::size_t kHeaderSize = 8;         // length + checksum
constexpr std::size_t kMaxPayload = 1U << 30;  // a length above this is damage, not data
constexpr std::size_t kFlushThreshold = 64 * 1024;

using json = nlohmann::json;

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

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

}  // namespace

std::vector<uint8_t> encode_journal_record(const JournalRecord& record) {
  json j;
  j["kind"] = static_cast<int>(record.kind);
  j["time_ns"] =
      std::chrono::duration_cast<std::chrono::nanoseconds>(record.time.time_since_epoch()).count();
  switch (record.kind) {
    case RecordKind::config:
      j["config"] = record.config;
      break;
    case RecordKind::log: {
      if (record.step) j["step"] = *record.step;
      json entries = json::array();
      for (const auto& [key, value] : record.values)
        entries.push_back(json{key, encode_value(value)});
      j["values"] = std::move(entries);
      break;
    }
    case RecordKind::finish:
      j["status"] = static_cast<int>(record.status);
      break;
  }
  return json::to_cbor(j);
}

JournalRecord decode_journal_record(std::span<const uint8_t> payload) {
  try {
    json j = json::from_cbor(payload.begin(), payload.end());
    JournalRecord record;
    int kind = j.at("kind").get<int>();
    if (kind < 1 || kind > 3)
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
    }
    return record;
  } catch (const json::exception& e) {
    throw TrackerError(fmt::format("journal: malformed record ({})", e.what()));
  }
}

JournalWriter::JournalWriter(std::filesystem::path path) : path_(std::move(path)) {
  if (path_.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(path_.parent_path(), ec);
    if (ec) {
      throw TrackerError(
          fmt::format("cannot create the journal directory '{}': {}; set another "
                      "journal directory",
                      path_.parent_path().string(), ec.message()));
    }
  }
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    throw TrackerError(
        fmt::format("cannot open journal '{}': {}; check that the directory is "
                    "writable or set another journal directory",
                    path_.string(), errno_text()));
  }
  ::fchmod(fd_, 0600);
  struct stat st {};
  if (::fstat(fd_, &st) == 0) file_size_ = static_cast<uint64_t>(st.st_size);
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
  append_payload(encode_journal_record(record));
}

void JournalWriter::append_payload(std::span<const uint8_t> payload) {
  put_u32(buffer_, static_cast<uint32_t>(payload.size()));
  put_u32(buffer_, crc32c(payload.data(), payload.size()));
  buffer_.insert(buffer_.end(), payload.begin(), payload.end());
  if (buffer_.size() >= kFlushThreshold) flush();
}

void JournalWriter::flush() {
  std::size_t written = 0;
  while (written < buffer_.size()) {
    ssize_t n = ::write(fd_, buffer_.data() + written, buffer_.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(written));
      file_size_ += written;
      throw TrackerError(
          fmt::format("cannot write journal '{}': {}", path_.string(), errno_text()));
    }
    written += static_cast<std::size_t>(n);
  }
  file_size_ += written;
  buffer_.clear();
}

void JournalWriter::sync() {
  flush();
  if (::fsync(fd_) != 0) {
    throw TrackerError(fmt::format("cannot fsync journal '{}': {}", path_.string(), errno_text()));
  }
}

void JournalWriter::clear() {
  buffer_.clear();
  if (::ftruncate(fd_, 0) != 0) {
    throw TrackerError(
        fmt::format("cannot truncate journal '{}': {}", path_.string(), errno_text()));
  }
  file_size_ = 0;
}

JournalReader::JournalReader(const std::filesystem::path& path, uint64_t offset) : offset_(offset) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
}

JournalReader::~JournalReader() {
  if (fd_ >= 0) ::close(fd_);
}

std::optional<JournalRecord> JournalReader::next() {
  if (fd_ < 0 || damaged_) return std::nullopt;
  auto read_at = [&](uint8_t* out, std::size_t size, uint64_t at) {
    std::size_t done = 0;
    while (done < size) {
      ssize_t n = ::pread(fd_, out + done, size - done, static_cast<off_t>(at + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    return done;
  };
  uint8_t header[kHeaderSize];
  std::size_t got = read_at(header, kHeaderSize, offset_);
  if (got == 0) return std::nullopt;  // clean end
  if (got < kHeaderSize) {
    damaged_ = true;
    return std::nullopt;
  }
  uint32_t length = get_u32(header);
  uint32_t checksum = get_u32(header + 4);
  if (length > kMaxPayload) {
    damaged_ = true;
    return std::nullopt;
  }
  std::vector<uint8_t> payload(length);
  if (read_at(payload.data(), length, offset_ + kHeaderSize) < length ||
      crc32c(payload.data(), payload.size()) != checksum) {
    damaged_ = true;
    return std::nullopt;
  }
  try {
    JournalRecord record = decode_journal_record(payload);
    offset_ += kHeaderSize + length;
    return record;
  } catch (const TrackerError&) {
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

}  // namespace accel
