#include "trackers/wandb/transaction_log.hpp"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <system_error>

#include "accel/tracking/errors.hpp"
#include "common/record_file.hpp"

namespace accel::wandb {
namespace {

void put_le(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

void put_chunk(std::string& out, ChunkType type, std::string_view payload) {
  put_le(out, chunk_crc(type, payload), 4);
  put_le(out, payload.size(), 2);
  out.push_back(static_cast<char>(type));
  out.append(payload);
}

}  // namespace

uint32_t chunk_crc(ChunkType type, std::string_view payload) {
  const auto type_byte = static_cast<Bytef>(type);
  uLong crc = ::crc32(0L, Z_NULL, 0);
  crc = ::crc32(crc, &type_byte, 1);
  // zlib takes uInt lengths; a chunk payload is at most one block, far below that.
  crc = ::crc32(crc, reinterpret_cast<const Bytef*>(payload.data()),
                static_cast<uInt>(payload.size()));
  return static_cast<uint32_t>(crc);
}

std::string frame_record(uint64_t offset, std::string_view payload) {
  std::string out;
  bool first = true;
  do {
    std::size_t left = kBlockBytes - static_cast<std::size_t>((offset + out.size()) % kBlockBytes);
    if (left < kChunkHeaderBytes) {
      out.append(left, '\0');  // too small for a chunk header: the next chunk starts a new block
      left = kBlockBytes;
    }
    const std::size_t room = left - kChunkHeaderBytes;
    const std::size_t take = std::min(room, payload.size());
    const bool last = take == payload.size();
    const ChunkType type = first && last ? ChunkType::full
                           : first       ? ChunkType::first
                           : last        ? ChunkType::last
                                         : ChunkType::middle;
    put_chunk(out, type, payload.substr(0, take));
    payload.remove_prefix(take);
    first = false;
  } while (!payload.empty());
  return out;
}

TransactionLog::TransactionLog(const std::filesystem::path& path)
    : file_(std::make_unique<detail::RecordFile>("wandb")) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    throw TrackerError(
        fmt::format("wandb: the transaction log '{}' exists already; a new run needs a new file",
                    path.string()));
  }
  file_->open(path, /*truncate=*/true);
  file_->add(kFileHeader, 0);
  file_->write_buffered();
}

TransactionLog::~TransactionLog() = default;

void TransactionLog::append(std::string_view record) {
  const std::string one(record);
  append(std::span<const std::string>(&one, 1));
}

void TransactionLog::append(std::span<const std::string> records) {
  std::string bytes;
  for (const auto& record : records) bytes += frame_record(file_->size() + bytes.size(), record);
  file_->add(bytes, 1);
  try {
    file_->write_buffered();
  } catch (...) {
    file_->drop_from(1);  // the caller keeps the record; the file ends after the previous one
    throw;
  }
}

void TransactionLog::sync() {
  file_->sync();
}

const std::filesystem::path& TransactionLog::path() const {
  return file_->path();
}

uint64_t TransactionLog::size() const {
  return file_->size();
}

}  // namespace accel::wandb
