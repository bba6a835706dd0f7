#pragma once
// accel::wandb::TransactionLog: writes a W&B transaction log (run-<id>.wandb), the file that
// `wandb sync` uploads and `wandb leet inspect` reads. Format (wandb-core 0.31.0,
// core/pkg/leveldb + core/internal/transactionlog; measured in shared/research/wandb-formats.md):
//
//   offset 0: ":W&B" | 0xBEE1 as uint16 little-endian | version byte 0        (7 bytes)
//   then chunks: crc32 (4, LE) | length (2, LE) | type (1) | payload[length]
//     type 1 FULL, 2 FIRST, 3 MIDDLE, 4 LAST; crc32 = plain IEEE CRC-32 (zlib's crc32) of the
//     type byte followed by the payload (NOT LevelDB's masked CRC-32C).
//   The file is cut into 32768-byte blocks counted from file offset 0 (block 0 holds the header).
//   A chunk never crosses a block boundary: when fewer than 7 bytes are left in a block they are
//   zero-filled and the next chunk starts the next block; a record larger than the space left is
//   split FIRST, MIDDLE..., LAST. One record = one serialized wandb_internal.Record.
//
// Invariant: the file only ever holds the header and whole records. Each append() hands its
// record to the OS before it returns (write(2), no user-space buffering), so a process killed
// at any point leaves a file that wandb reads up to the last appended record; sync() adds an
// fsync. A write that fails (disk full) is cut back to the end of the previous record and thrown
// (see detail::RecordFile). Thread-safety: none (the tracker's worker thread owns it).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace accel::detail {
class RecordFile;
}

namespace accel::wandb {

inline constexpr std::size_t kBlockBytes = 32768;
inline constexpr std::size_t kChunkHeaderBytes = 7;  // crc32 + length + type
inline constexpr std::string_view kFileHeader{":W&B\xE1\xBE\x00", 7};

enum class ChunkType : uint8_t { full = 1, first = 2, middle = 3, last = 4 };

// crc32 of the type byte followed by payload (IEEE, as zlib.crc32 computes it).
uint32_t chunk_crc(ChunkType type, std::string_view payload);

// The bytes that append one record (payload) to a log whose size is `offset` (the file header
// included): zero padding when the current block has fewer than 7 bytes left, then the FULL chunk
// or the FIRST/MIDDLE.../LAST chunks. Pure function; the unit tests check the framing with it.
std::string frame_record(uint64_t offset, std::string_view payload);

class TransactionLog {
 public:
  // Creates path (it must not exist yet) and writes the 7-byte file header. Throws
  // accel::TrackerError naming the path and the OS reason (accel::TrackerUnavailable when the disk
  // is full).
  explicit TransactionLog(const std::filesystem::path& path);
  ~TransactionLog();
  TransactionLog(const TransactionLog&) = delete;
  TransactionLog& operator=(const TransactionLog&) = delete;

  // Frames one serialized Record and writes it to the OS. Throws like the constructor; the file
  // then still ends after the previous record.
  void append(std::string_view record);
  // The same for several records in one write: all of them reach the file, or none.
  void append(std::span<const std::string> records);
  // fsync(2) of what was appended. Throws accel::TrackerError.
  void sync();

  const std::filesystem::path& path() const;
  uint64_t size() const;  // bytes in the file: header plus whole framed records

 private:
  std::unique_ptr<detail::RecordFile> file_;
};

}  // namespace accel::wandb
