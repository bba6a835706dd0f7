#pragma once
// accel::Values: what a training loop logs in one call — an ordered list of key → Value.
//
// A Value is one of: an integer or floating scalar, a string, an Image, a Histogram, a Table, or a
// ScalarGroup (several named series under one key, like Accelerate's TensorBoard `add_scalars`).
// Values are plain data: copying them is how TrackerHub hands them to tracker worker threads, so
// they never reference memory owned by the caller. Thread-safety: none needed (value types).
#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace accel {

// An image in height × width × channels order, 8 bits per channel. channels is 1 (grey), 3 (RGB) or
// 4 (RGBA). Construct from float data in [0, 1] with from_float (values are clamped and rounded).
struct Image {
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 0;
  std::vector<uint8_t> pixels;  // size == height * width * channels

  // Throws accel::InvalidValue naming the shape when sizes disagree or channels is not 1, 3 or 4.
  static Image from_uint8(std::span<const uint8_t> hwc, int64_t height, int64_t width,
                          int64_t channels);
  static Image from_float(std::span<const float> hwc, int64_t height, int64_t width,
                          int64_t channels);
  // Throws accel::InvalidValue (with the shape) unless the image is well formed and non-empty.
  void validate(std::string_view key) const;
};

// A histogram either of raw samples (trackers bin them) or pre-binned: bucket_limits[i] is the
// right edge of bucket i and bucket_counts[i] its count (TensorBoard's HistogramProto convention).
struct Histogram {
  std::vector<double> samples;
  std::vector<double> bucket_limits;
  std::vector<double> bucket_counts;
  double min = 0, max = 0, sum = 0, sum_squares = 0;  // filled by from_bins; computed for samples

  static Histogram from_samples(std::vector<double> samples);
  static Histogram from_bins(std::vector<double> bucket_limits, std::vector<double> bucket_counts);
  bool is_binned() const { return !bucket_limits.empty(); }
  std::size_t count() const;  // number of samples (sum of counts when binned)
};

// A small table: column names and rows of JSON cells (numbers, strings, booleans, null).
struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<nlohmann::json>> rows;
};

// Several named scalar series logged under one key ("loss" → {"train": 0.3, "val": 0.4}).
struct ScalarGroup {
  std::vector<std::pair<std::string, double>> series;
};

class Value {
 public:
  using Storage = std::variant<int64_t, double, std::string, Image, Histogram, Table, ScalarGroup>;

  Value(int v) : storage_(static_cast<int64_t>(v)) {}
  Value(long v) : storage_(static_cast<int64_t>(v)) {}
  Value(long long v) : storage_(static_cast<int64_t>(v)) {}
  Value(unsigned v) : storage_(static_cast<int64_t>(v)) {}
  Value(double v) : storage_(v) {}
  Value(float v) : storage_(static_cast<double>(v)) {}
  Value(bool v) : storage_(static_cast<int64_t>(v)) {}
  Value(const char* v) : storage_(std::string(v)) {}
  Value(std::string v) : storage_(std::move(v)) {}
  Value(std::string_view v) : storage_(std::string(v)) {}
  Value(Image v) : storage_(std::move(v)) {}
  Value(Histogram v) : storage_(std::move(v)) {}
  Value(Table v) : storage_(std::move(v)) {}
  Value(ScalarGroup v) : storage_(std::move(v)) {}

  bool is_scalar() const { return storage_.index() <= 1; }  // int64_t or double
  bool is_integer() const { return std::holds_alternative<int64_t>(storage_); }
  // The scalar as double. Precondition: is_scalar().
  double as_double() const;
  template <class T>
  const T* get_if() const {
    return std::get_if<T>(&storage_);
  }
  const Storage& storage() const { return storage_; }
  // A short name of the kind, for messages: "int", "float", "string", "image", "histogram", ...
  std::string_view kind() const;
  // Approximate heap + inline size, used to bound tracker queues by bytes.
  std::size_t approximate_bytes() const;

  friend bool operator==(const Value&, const Value&);

 private:
  Storage storage_;
};

bool operator==(const Image&, const Image&);
bool operator==(const Histogram&, const Histogram&);
bool operator==(const Table&, const Table&);
bool operator==(const ScalarGroup&, const ScalarGroup&);

// Ordered key → Value. Insertion order is kept (it is the order trackers write columns/tags).
// Setting an existing key replaces its value in place.
class Values {
 public:
  using Entry = std::pair<std::string, Value>;

  Values() = default;
  Values(std::initializer_list<Entry> entries);

  void set(std::string key, Value value);
  const Value* find(std::string_view key) const;
  bool contains(std::string_view key) const { return find(key) != nullptr; }
  std::size_t size() const { return entries_.size(); }
  // Entries the storage has room for (what it costs in memory).
  std::size_t capacity() const { return entries_.capacity(); }
  bool empty() const { return entries_.empty(); }
  auto begin() const { return entries_.begin(); }
  auto end() const { return entries_.end(); }
  std::size_t approximate_bytes() const;

  friend bool operator==(const Values&, const Values&) = default;

 private:
  std::vector<Entry> entries_;
};

}  // namespace accel
