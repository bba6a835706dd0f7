#pragma once
// accel::wandb: accel's rich values as W&B history values, with the files W&B keeps beside them
// under the run's files/ directory (what `wandb sync` uploads and the W&B UI shows):
//
//   Image     → files/media/images/<key>_<row>_<sha256[:20]>.png and
//               {"_type":"image-file","path":...,"sha256":...,"size":...,"format":"png",
//                "width":w,"height":h}
//   Table     → files/media/table/<key>_<row>_<sha256[:20]>.table.json ({"columns":[...],
//               "data":[[...]...]}) and {"_type":"table-file","path":...,"sha256":...,
//               "size":...,"ncols":n,"nrows":m}
//   Histogram → {"_type":"histogram","values":[64 counts],"bins":[65 edges]} (numpy.histogram's
//               64 equal bins over [min, max], as wandb.Histogram bins samples; pre-binned
//               histograms keep their buckets, at most 512 as W&B allows)
// Thread-safety: none needed (MediaFiles is used by one worker thread).
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "accel/tracking/values.hpp"

namespace accel::wandb {

struct MediaValue {
  nlohmann::json value;  // the history value
  std::string file;      // the file it refers to, relative to files/ ("media/images/...")
};

// SHA-256 of data as 64 lowercase hex digits.
std::string sha256_hex(std::string_view data);

// The W&B histogram value of a Histogram. Throws accel::InvalidValue naming key for more than 512
// pre-binned buckets.
nlohmann::json histogram_value(const Histogram& histogram, std::string_view key);

class MediaFiles {
 public:
  explicit MediaFiles(std::filesystem::path files_dir) : files_dir_(std::move(files_dir)) {}

  // Write the media file of an image / table logged under key in W&B row `row`. Throw
  // accel::InvalidValue for a malformed image, accel::TrackerUnavailable when the file cannot be
  // written (disk full; the message names the path and the OS reason).
  MediaValue image(std::string_view key, const Image& image, int64_t row);
  MediaValue table(std::string_view key, const Table& table, int64_t row);

 private:
  std::string write(std::string_view folder, std::string_view key, int64_t row,
                    std::string_view extension, const std::string& bytes, std::string_view sha);

  std::filesystem::path files_dir_;
};

}  // namespace accel::wandb
