#include "trackers/wandb/wandb_media.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <system_error>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/key_rules.hpp"
#include "common/png_encoder.hpp"
#include "common/record_file.hpp"
#include "trackers/wandb/value_json.hpp"

namespace accel::wandb {
namespace {

constexpr int kHistogramBins = 64;        // wandb.Histogram's default num_bins
constexpr std::size_t kMaxBuckets = 512;  // wandb.Histogram rejects more

// A file-name-safe form of a key ("train/img" → "train_img").
std::string file_stem(std::string_view key) {
  return sanitize_key(
      key, [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_' || c == '.'; });
}

nlohmann::json sample_histogram(const std::vector<double>& samples, std::string_view key) {
  double lo = 0, hi = 1;  // numpy's range for no samples
  if (!samples.empty()) {
    auto [min, max] = std::minmax_element(samples.begin(), samples.end());
    lo = *min;
    hi = *max;
    if (!std::isfinite(lo) || !std::isfinite(hi)) {
      throw InvalidValue(fmt::format(
          "wandb: histogram '{}' has NaN or infinite samples, which W&B cannot bin; remove them "
          "or log pre-binned counts",
          key));
    }
    if (lo == hi) {  // numpy widens an empty range by 0.5 on each side
      lo -= 0.5;
      hi += 0.5;
    }
  }
  // numpy.linspace(lo, hi, 65) and numpy.histogram's bin search.
  std::vector<double> edges(kHistogramBins + 1);
  const double width = (hi - lo) / kHistogramBins;
  for (int i = 0; i < kHistogramBins; ++i) edges[i] = lo + i * width;
  edges[kHistogramBins] = hi;
  std::vector<int64_t> counts(kHistogramBins, 0);
  for (double x : samples) {
    auto bin = static_cast<int>((x - lo) / (hi - lo) * kHistogramBins);
    bin = std::clamp(bin, 0, kHistogramBins - 1);
    if (x < edges[bin] && bin > 0) --bin;
    if (x >= edges[bin + 1] && bin + 1 < kHistogramBins) ++bin;
    ++counts[bin];
  }
  return {{"_type", "histogram"}, {"values", counts}, {"bins", edges}};
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr) != 1) {
    throw TrackerError("wandb: OpenSSL could not compute a SHA-256 digest");
  }
  std::string hex;
  for (unsigned int i = 0; i < size; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

nlohmann::json histogram_value(const Histogram& histogram, std::string_view key) {
  if (!histogram.is_binned()) return sample_histogram(histogram.samples, key);
  const auto& limits = histogram.bucket_limits;
  if (limits.size() > kMaxBuckets) {
    throw InvalidValue(fmt::format(
        "wandb: histogram '{}' has {} buckets; W&B keeps at most {}: merge buckets or log the "
        "samples (W&B bins them into 64)",
        key, limits.size(), kMaxBuckets));
  }
  // accel's buckets are right edges (TensorBoard's convention); W&B wants every edge. The first
  // bucket gets the width of the second (or 1 when there is only one).
  const double first_width = limits.size() > 1 ? limits[1] - limits[0] : 1.0;
  std::vector<double> edges{limits.front() - first_width};
  edges.insert(edges.end(), limits.begin(), limits.end());
  return {{"_type", "histogram"}, {"values", histogram.bucket_counts}, {"bins", edges}};
}

MediaValue MediaFiles::image(std::string_view key, const Image& image, int64_t row) {
  const std::string png = encode_png(image, "wandb");
  const std::string sha = sha256_hex(png);
  std::string path = write("media/images", key, row, ".png", png, sha);
  nlohmann::json value = {{"_type", "image-file"}, {"path", path},    {"sha256", sha},
                          {"size", png.size()},    {"format", "png"}, {"width", image.width},
                          {"height", image.height}};
  return {std::move(value), std::move(path)};
}

MediaValue MediaFiles::table(std::string_view key, const Table& table, int64_t row) {
  nlohmann::json data = nlohmann::json::array();
  for (const auto& cells : table.rows) data.push_back(cells);
  const std::string text = value_json({{"columns", table.columns}, {"data", std::move(data)}});
  const std::string sha = sha256_hex(text);
  std::string path = write("media/table", key, row, ".table.json", text, sha);
  nlohmann::json value = {{"_type", "table-file"},
                          {"path", path},
                          {"sha256", sha},
                          {"size", text.size()},
                          {"ncols", table.columns.size()},
                          {"nrows", table.rows.size()}};
  return {std::move(value), std::move(path)};
}

std::string MediaFiles::write(std::string_view folder, std::string_view key, int64_t row,
                              std::string_view extension, const std::string& bytes,
                              std::string_view sha) {
  const std::string relative =
      fmt::format("{}/{}_{}_{}{}", folder, file_stem(key), row, sha.substr(0, 20), extension);
  const auto path = files_dir_ / relative;
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (auto error = detail::write_file_atomically(path, bytes)) {
    throw TrackerUnavailable("wandb: " + *error);
  }
  return relative;
}

}  // namespace accel::wandb
