#include "accel/tracking/values.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/general_tracker.hpp"

namespace accel {

std::string_view to_string(RunStatus status) {
  switch (status) {
    case RunStatus::finished:
      return "finished";
    case RunStatus::failed:
      return "failed";
    case RunStatus::killed:
      return "killed";
  }
  return "unknown";
}

namespace {

void check_shape(int64_t height, int64_t width, int64_t channels, std::size_t size,
                 std::string_view what) {
  if (height <= 0 || width <= 0) {
    throw InvalidValue(
        fmt::format("{}: image of shape {}x{}x{} (HxWxC) is empty; an image needs "
                    "height and width >= 1",
                    what, height, width, channels));
  }
  if (channels != 1 && channels != 3 && channels != 4) {
    throw InvalidValue(
        fmt::format("{}: image of shape {}x{}x{} (HxWxC) has {} channels; use 1 "
                    "(grey), 3 (RGB) or 4 (RGBA), in height x width x channels order",
                    what, height, width, channels, channels));
  }
  if (static_cast<std::size_t>(height * width * channels) != size) {
    throw InvalidValue(
        fmt::format("{}: image of shape {}x{}x{} (HxWxC) needs {} values but {} were "
                    "given",
                    what, height, width, channels, height * width * channels, size));
  }
}

}  // namespace

Image Image::from_uint8(std::span<const uint8_t> hwc, int64_t height, int64_t width,
                        int64_t channels) {
  check_shape(height, width, channels, hwc.size(), "Image::from_uint8");
  return Image{height, width, channels, std::vector<uint8_t>(hwc.begin(), hwc.end())};
}

Image Image::from_float(std::span<const float> hwc, int64_t height, int64_t width,
                        int64_t channels) {
  check_shape(height, width, channels, hwc.size(), "Image::from_float");
  Image image{height, width, channels, std::vector<uint8_t>(hwc.size())};
  std::transform(hwc.begin(), hwc.end(), image.pixels.begin(), [](float v) {
    if (!std::isfinite(v)) v = 0.0F;
    return static_cast<uint8_t>(std::lround(std::clamp(v, 0.0F, 1.0F) * 255.0F));
  });
  return image;
}

void Image::validate(std::string_view key) const {
  check_shape(height, width, channels, pixels.size(), fmt::format("key '{}'", key));
}

Histogram Histogram::from_samples(std::vector<double> samples) {
  Histogram h;
  h.samples = std::move(samples);
  if (!h.samples.empty()) {
    auto [lo, hi] = std::minmax_element(h.samples.begin(), h.samples.end());
    h.min = *lo;
    h.max = *hi;
  }
  for (double v : h.samples) {
    h.sum += v;
    h.sum_squares += v * v;
  }
  return h;
}

Histogram Histogram::from_bins(std::vector<double> bucket_limits,
                               std::vector<double> bucket_counts) {
  if (bucket_limits.size() != bucket_counts.size() || bucket_limits.empty()) {
    throw InvalidValue(
        fmt::format("Histogram::from_bins: {} bucket limits and {} counts; give one "
                    "right edge per count (at least one bucket)",
                    bucket_limits.size(), bucket_counts.size()));
  }
  if (!std::is_sorted(bucket_limits.begin(), bucket_limits.end())) {
    throw InvalidValue("Histogram::from_bins: bucket limits must be in increasing order");
  }
  Histogram h;
  double lower = bucket_limits.front();
  for (std::size_t i = 0; i < bucket_limits.size(); ++i) {
    double center = i == 0 ? bucket_limits[0] : 0.5 * (lower + bucket_limits[i]);
    h.sum += center * bucket_counts[i];
    h.sum_squares += center * center * bucket_counts[i];
    lower = bucket_limits[i];
  }
  h.min = bucket_limits.front();
  h.max = bucket_limits.back();
  h.bucket_limits = std::move(bucket_limits);
  h.bucket_counts = std::move(bucket_counts);
  return h;
}

std::size_t Histogram::count() const {
  if (!is_binned()) return samples.size();
  double total = 0;
  for (double c : bucket_counts) total += c;
  return static_cast<std::size_t>(std::llround(total));
}

double Value::as_double() const {
  if (const auto* i = std::get_if<int64_t>(&storage_)) return static_cast<double>(*i);
  return std::get<double>(storage_);
}

std::string_view Value::kind() const {
  static constexpr std::string_view kNames[] = {"int",       "float", "string",      "image",
                                                "histogram", "table", "scalar group"};
  return kNames[storage_.index()];
}

std::size_t Value::approximate_bytes() const {
  struct Visitor {
    std::size_t operator()(int64_t) const { return 0; }
    std::size_t operator()(double) const { return 0; }
    std::size_t operator()(const std::string& s) const { return s.size(); }
    std::size_t operator()(const Image& i) const { return i.pixels.size(); }
    std::size_t operator()(const Histogram& h) const {
      return 8 * (h.samples.size() + h.bucket_limits.size() + h.bucket_counts.size());
    }
    std::size_t operator()(const Table& t) const {
      std::size_t n = 0;
      for (const auto& c : t.columns) n += c.size() + 32;
      for (const auto& row : t.rows) n += row.size() * 48;
      return n;
    }
    std::size_t operator()(const ScalarGroup& g) const {
      std::size_t n = 0;
      for (const auto& [k, v] : g.series) n += k.size() + 40;
      return n;
    }
  };
  return sizeof(Value) + std::visit(Visitor{}, storage_);
}

bool operator==(const Value& a, const Value& b) {
  return a.storage_ == b.storage_;
}
bool operator==(const Image& a, const Image& b) {
  return a.height == b.height && a.width == b.width && a.channels == b.channels &&
         a.pixels == b.pixels;
}
bool operator==(const Histogram& a, const Histogram& b) {
  return a.samples == b.samples && a.bucket_limits == b.bucket_limits &&
         a.bucket_counts == b.bucket_counts;
}
bool operator==(const Table& a, const Table& b) {
  return a.columns == b.columns && a.rows == b.rows;
}
bool operator==(const ScalarGroup& a, const ScalarGroup& b) {
  return a.series == b.series;
}

Values::Values(std::initializer_list<Entry> entries) {
  entries_.reserve(entries.size());
  for (const auto& [key, value] : entries) set(key, value);
}

void Values::set(std::string key, Value value) {
  for (auto& entry : entries_) {
    if (entry.first == key) {
      entry.second = std::move(value);
      return;
    }
  }
  entries_.emplace_back(std::move(key), std::move(value));
}

const Value* Values::find(std::string_view key) const {
  for (const auto& entry : entries_) {
    if (entry.first == key) return &entry.second;
  }
  return nullptr;
}

std::size_t Values::approximate_bytes() const {
  std::size_t n = sizeof(Values);
  for (const auto& [key, value] : entries_) n += key.size() + value.approximate_bytes();
  return n;
}

}  // namespace accel
