#include "accel/tracking/trackers/tensorboard/tensorboard_writer.hpp"

#include <fmt/format.h>
#include <google/protobuf/io/coded_stream.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <system_error>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/key_rules.hpp"
#include "common/png_encoder.hpp"
#include "common/utf8.hpp"
#include "tensorboard_custom_scalar_layout.pb.h"
#include "tensorboard_event.pb.h"
#include "tensorboard_hparams_plugin_data.pb.h"
#include "trackers/tensorboard/tfevents_record_writer.hpp"

namespace accel {
namespace {

using google::protobuf::io::CodedOutputStream;

constexpr std::string_view kFileVersion = "brain.Event:2";
constexpr std::string_view kWriterName = "accel";
constexpr std::string_view kExperimentTag = "_hparams_/experiment";
constexpr std::string_view kSessionStartTag = "_hparams_/session_start_info";
constexpr std::string_view kSessionEndTag = "_hparams_/session_end_info";
constexpr std::string_view kCustomScalarsTag = "custom_scalars__config__";
constexpr std::string_view kScalarGroupsCategory = "scalar groups";

std::atomic<int> g_file_counter{0};  // the <n> of events.out.tfevents.<secs>.<host>.<pid>.<n>

// Wall time of an event. CLOCK_REALTIME_COARSE (the kernel's tick, a few ms resolution) costs a few
// ns where a precise clock_gettime costs 20-50 ns — a quarter of the time of one scalar event; the
// resolution is far below what TensorBoard's wall-time axis shows.
double now_seconds() {
  timespec ts{};
  if (::clock_gettime(CLOCK_REALTIME_COARSE, &ts) != 0) ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Precise wall time, for the once-per-run timestamps (file name, hparams session times).
double precise_now_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

// ASCII characters SummaryWriter keeps in a tag: [-/\w.] (letters, digits, '_', '-', '/', '.').
constexpr std::array<bool, 256> kTagChars = [] {
  std::array<bool, 256> table{};
  for (int c = 0; c < 256; ++c) {
    table[static_cast<std::size_t>(c)] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                         (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                                         c == '/' || c == '.';
  }
  return table;
}();

bool is_tag_char(char c) {
  return kTagChars[static_cast<unsigned char>(c)];
}

// The fast check of the hot path: plain ASCII tag characters and no leading '/'.
bool is_clean_ascii_tag(std::string_view tag) {
  if (tag.empty() || tag.front() == '/') return false;
  bool clean = true;
  for (char c : tag) clean &= is_tag_char(c);
  return clean;
}

// Nested config → ("a/b", value) leaves (key_rules' flatten_config); nulls are skipped, as torch
// skips None.
std::vector<std::pair<std::string, nlohmann::json>> flatten_hparams(const nlohmann::json& hparams) {
  if (!hparams.is_object()) {
    throw InvalidValue(
        fmt::format("hparams must be a JSON object of name -> value, got a {} ({}); "
                    "wrap it, e.g. {{\"value\": ...}}",
                    hparams.type_name(), hparams.dump().substr(0, 80)));
  }
  std::vector<std::pair<std::string, nlohmann::json>> leaves;
  for (auto& [name, value] : flatten_config(hparams)) {
    if (value.is_null()) continue;
    if (!is_valid_utf8(name)) {
      throw InvalidValue("hparams: a key is not valid UTF-8; TensorBoard needs UTF-8 names");
    }
    if (value.is_string() && !is_valid_utf8(value.get_ref<const std::string&>())) {
      // An invalid string would make TensorBoard's HParams plugin fail for the whole log directory.
      throw InvalidValue(
          fmt::format("hparams: the value of '{}' is not valid UTF-8 text; pass text, "
                      "or encode binary data (e.g. as hex) first",
                      name));
    }
    leaves.emplace_back(std::move(name), std::move(value));
  }
  return leaves;
}

void set_hparam_value(google::protobuf::Value& out, const nlohmann::json& value) {
  if (value.is_boolean()) {
    out.set_bool_value(value.get<bool>());
  } else if (value.is_number()) {
    out.set_number_value(value.get<double>());
  } else if (value.is_string()) {
    out.set_string_value(value.get<std::string>());
  } else {
    out.set_string_value(value.dump());  // arrays: TensorBoard has no list type
  }
}

tensorboard::hparams::DataType hparam_type(const nlohmann::json& value) {
  if (value.is_boolean()) return tensorboard::hparams::DATA_TYPE_BOOL;
  if (value.is_number()) return tensorboard::hparams::DATA_TYPE_FLOAT64;
  return tensorboard::hparams::DATA_TYPE_STRING;
}

// Buckets samples like TensorBoard's summary_v2 histogram: equal widths between min and max. Like
// torch, an empty bucket is put first so that the left edge (min) is kept: HistogramProto stores
// right edges only.
void fill_histogram(tensorboard::HistogramProto& proto, const Histogram& h, std::string_view tag) {
  if (h.is_binned()) {
    proto.set_min(h.min);
    proto.set_max(h.max);
    double num = 0;
    for (double c : h.bucket_counts) num += c;
    proto.set_num(num);
    proto.set_sum(h.sum);
    proto.set_sum_squares(h.sum_squares);
    for (std::size_t i = 0; i < h.bucket_limits.size(); ++i) {
      proto.add_bucket_limit(h.bucket_limits[i]);
      proto.add_bucket(h.bucket_counts[i]);
    }
    return;
  }
  if (h.samples.empty()) {
    throw InvalidValue(fmt::format("histogram '{}' has no samples; log at least one value", tag));
  }
  std::size_t non_finite = 0;
  double lo = h.samples.front(), hi = lo, sum = 0, sum_squares = 0;
  for (double v : h.samples) {
    if (!std::isfinite(v)) {
      ++non_finite;
      continue;
    }
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    sum += v;
    sum_squares += v * v;
  }
  if (non_finite > 0) {
    throw InvalidValue(
        fmt::format("histogram '{}' has {} non-finite samples (NaN or Inf) out of {}; "
                    "TensorBoard cannot bucket them: filter them out first",
                    tag, non_finite, h.samples.size()));
  }
  proto.set_min(lo);
  proto.set_max(hi);
  proto.set_num(static_cast<double>(h.samples.size()));
  proto.set_sum(sum);
  proto.set_sum_squares(sum_squares);
  if (lo == hi) {  // every sample equal: one bucket [lo, hi]
    proto.add_bucket_limit(hi);
    proto.add_bucket(static_cast<double>(h.samples.size()));
    return;
  }
  constexpr int kBuckets = TensorBoardWriter::kHistogramBuckets;
  std::vector<double> counts(kBuckets, 0.0);
  const double width = (hi - lo) / kBuckets;
  for (double v : h.samples) {
    auto i = static_cast<int>((v - lo) / width);
    counts[static_cast<std::size_t>(std::clamp(i, 0, kBuckets - 1))] += 1;
  }
  proto.add_bucket_limit(lo);
  proto.add_bucket(0);
  for (int i = 0; i < kBuckets; ++i) {
    proto.add_bucket_limit(i + 1 == kBuckets ? hi : lo + width * (i + 1));
    proto.add_bucket(counts[static_cast<std::size_t>(i)]);
  }
}

// A regular expression matching exactly this tag (Custom Scalars charts select tags by regex).
std::string exact_tag_regex(std::string_view tag) {
  std::string out = "^";
  for (char c : tag) {
    if (std::string_view(".^$|()[]{}*+?\\").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out + "$";
}

std::filesystem::path make_events_file_name(const std::filesystem::path& dir,
                                            const std::string& suffix) {
  auto secs = static_cast<long long>(precise_now_seconds());
  return dir / fmt::format("events.out.tfevents.{:010d}.{}.{}.{}{}", secs, host_name(), ::getpid(),
                           g_file_counter.fetch_add(1), suffix);
}

}  // namespace

// Serialises Events. The scalar event (the hot path) is encoded by hand with protobuf's
// CodedOutputStream primitives, byte for byte what Event::SerializeToString produces for
// Event{wall_time, step, summary{value{tag, simple_value}}}; everything else goes through the
// generated messages.
class TensorBoardWriter::Encoder {
 public:
  static void append_scalar_event(TfeventsRecordWriter& out, std::string_view tag, float value,
                                  int64_t step, double wall_time) {
    const auto ustep = static_cast<uint64_t>(step);
    const std::size_t value_len = 1 + CodedOutputStream::VarintSize64(tag.size()) + tag.size() + 5;
    const std::size_t summary_len = 1 + CodedOutputStream::VarintSize64(value_len) + value_len;
    const std::size_t event_len = (wall_time != 0 ? 9 : 0) +
                                  (step != 0 ? 1 + CodedOutputStream::VarintSize64(ustep) : 0) + 1 +
                                  CodedOutputStream::VarintSize64(summary_len) + summary_len;
    out.append_in_place(event_len, [&](std::byte* out_bytes) {
      auto* p = reinterpret_cast<uint8_t*>(out_bytes);
      if (wall_time != 0) {
        *p++ = 0x09;  // Event.wall_time (1, fixed64)
        uint64_t bits;
        std::memcpy(&bits, &wall_time, 8);
        p = CodedOutputStream::WriteLittleEndian64ToArray(bits, p);
      }
      if (step != 0) {
        *p++ = 0x10;  // Event.step (2, varint)
        p = CodedOutputStream::WriteVarint64ToArray(ustep, p);
      }
      *p++ = 0x2A;  // Event.summary (5, length-delimited)
      p = CodedOutputStream::WriteVarint64ToArray(summary_len, p);
      *p++ = 0x0A;  // Summary.value (1, length-delimited)
      p = CodedOutputStream::WriteVarint64ToArray(value_len, p);
      *p++ = 0x0A;  // Summary.Value.tag (1, length-delimited)
      p = CodedOutputStream::WriteVarint64ToArray(tag.size(), p);
      std::memcpy(p, tag.data(), tag.size());
      p += tag.size();
      *p++ = 0x15;  // Summary.Value.simple_value (2, fixed32)
      uint32_t bits;
      std::memcpy(&bits, &value, 4);
      CodedOutputStream::WriteLittleEndian32ToArray(bits, p);
    });
  }

  static void append_event(TfeventsRecordWriter& out, const tensorboard::Event& event) {
    const std::size_t size = event.ByteSizeLong();
    out.append_in_place(size, [&](std::byte* p) {
      event.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(p));
    });
  }

  static tensorboard::Summary::Value& new_value(tensorboard::Event& event, std::string_view tag,
                                                int64_t step, double wall_time) {
    event.set_wall_time(wall_time);
    event.set_step(step);
    auto* value = event.mutable_summary()->add_value();
    value->set_tag(std::string(tag));
    return *value;
  }
};

std::string TensorBoardWriter::clean_tag(std::string_view tag) {
  if (is_clean_ascii_tag(tag)) return std::string(tag);
  std::string cleaned;
  cleaned.reserve(tag.size());
  for (std::size_t i = 0; i < tag.size();) {
    std::size_t n = utf8_sequence_length(tag, i);
    if (n > 1) {
      cleaned.append(tag.substr(i, n));  // a non-ASCII character: kept, like Python's \w letters
      i += n;
      continue;
    }
    cleaned.push_back(n == 1 && is_tag_char(tag[i]) ? tag[i] : '_');
    i += 1;
  }
  cleaned.erase(0, cleaned.find_first_not_of('/'));
  if (cleaned.empty()) {
    throw InvalidValue(
        fmt::format("TensorBoard tag '{}' is empty after cleaning; use a name with letters, "
                    "digits, '_', '-', '.' or '/' (e.g. \"train/loss\")",
                    tag));
  }
  return cleaned;
}

TensorBoardWriter::TensorBoardWriter(std::filesystem::path log_dir,
                                     TensorBoardWriterOptions options)
    : log_dir_(std::move(log_dir)), options_(std::move(options)) {
  if (!(options_.flush_secs > 0) || !std::isfinite(options_.flush_secs)) {
    throw InvalidValue(
        fmt::format("TensorBoard flush_secs = {} is not a positive number of seconds; "
                    "use e.g. 120 (the default) or 5",
                    options_.flush_secs));
  }
  if (log_dir_.empty()) {
    throw InvalidValue(
        "TensorBoard writer needs a log directory; set ProjectConfiguration.logging_dir");
  }
  std::error_code ec;
  std::filesystem::create_directories(log_dir_, ec);
  if (ec || !std::filesystem::is_directory(log_dir_)) {
    throw TrackerError(fmt::format(
        "cannot create TensorBoard log directory '{}': {}; choose a writable "
        "logging_dir",
        log_dir_.string(), ec ? ec.message() : std::string("a file of that name exists")));
  }
  file_path_ = make_events_file_name(log_dir_, options_.filename_suffix);
  records_ = std::make_unique<TfeventsRecordWriter>(file_path_, options_.buffer_bytes);

  tensorboard::Event first;
  first.set_wall_time(precise_now_seconds());
  first.set_file_version(std::string(kFileVersion));
  first.mutable_source_metadata()->set_writer(std::string(kWriterName));
  Encoder::append_event(*records_, first);
  records_->flush();  // the file is a valid (empty) run from the start, like SummaryWriter's

  flusher_ = std::jthread([this](std::stop_token stop) { flush_periodically(stop); });
}

TensorBoardWriter::~TensorBoardWriter() {
  try {
    close();
  } catch (const std::exception&) {
    // Reported through error(); destructors do not throw.
  }
}

void TensorBoardWriter::flush_periodically(std::stop_token stop) {
  const auto period = std::chrono::duration<double>(options_.flush_secs);
  std::unique_lock lock(mutex_);
  while (!stop.stop_requested()) {
    flush_wakeup_.wait_for(lock, stop, std::chrono::duration_cast<std::chrono::nanoseconds>(period),
                           [] { return false; });
    if (stop.stop_requested() || closed_) break;
    try {
      if (!records_->failed()) records_->flush();
    } catch (const Error&) {
      // Kept in records_->failure(); thrown to the next caller (see locked_append).
    }
    notify_written_locked();
  }
}

void TensorBoardWriter::notify_written_locked() {
  const uint64_t written = records_->bytes_written();
  if (written == notified_written_) return;
  notified_written_ = written;
  if (written_callback_) written_callback_(written);
}

template <class Append>
void TensorBoardWriter::locked_append(Append&& append) {
  std::lock_guard lock(mutex_);
  if (closed_) {
    throw UsageError(fmt::format("TensorBoard writer for '{}' is closed; log before end_training",
                                 log_dir_.string()));
  }
  if (records_->failed()) {
    if (failure_reported_) return;  // reported once already; dropped (see error())
    failure_reported_ = true;
    throw TrackerError(records_->failure());
  }
  try {
    append(*records_);  // may hand a full buffer to the OS
  } catch (const TrackerError&) {
    failure_reported_ = true;
    notify_written_locked();
    throw;
  }
  notify_written_locked();
}

void TensorBoardWriter::add_scalar(std::string_view tag, double value, int64_t step,
                                   std::optional<double> wall_time) {
  const double when = wall_time ? *wall_time : now_seconds();
  std::string cleaned;
  if (!is_clean_ascii_tag(tag)) {
    cleaned = clean_tag(tag);
    tag = cleaned;
  }
  if (!options_.double_precision) {
    locked_append([&](TfeventsRecordWriter& out) {
      Encoder::append_scalar_event(out, tag, static_cast<float>(value), step, when);
    });
    return;
  }
  tensorboard::Event event;
  auto& v = Encoder::new_value(event, tag, step, when);
  v.mutable_metadata()->mutable_plugin_data()->set_plugin_name("scalars");
  auto* tensor = v.mutable_tensor();
  tensor->set_dtype(tensorboard::DT_DOUBLE);
  tensor->mutable_tensor_shape();
  tensor->add_double_val(value);
  locked_append([&](TfeventsRecordWriter& out) { Encoder::append_event(out, event); });
}

void TensorBoardWriter::add_scalars(std::string_view main_tag, const ScalarGroup& group,
                                    int64_t step, std::optional<double> wall_time) {
  const double when = wall_time ? *wall_time : now_seconds();
  const std::string chart = clean_tag(main_tag);
  std::vector<std::string> tags;
  for (const auto& [name, value] : group.series)
    tags.push_back(clean_tag(fmt::format("{}/{}", main_tag, name)));
  for (std::size_t i = 0; i < tags.size(); ++i)
    add_scalar(tags[i], group.series[i].second, step, when);

  // Keep the Custom Scalars layout in step: one multi-line chart per group, all its series overlaid
  // (what add_scalars' extra runs are usually for). Rewritten only when a group or series is new;
  // TensorBoard uses the run's latest layout.
  std::lock_guard lock(layout_mutex_);
  auto group_it = std::find_if(scalar_groups_.begin(), scalar_groups_.end(),
                               [&](const auto& g) { return g.first == chart; });
  if (group_it == scalar_groups_.end())
    group_it = scalar_groups_.insert(scalar_groups_.end(), {chart, {}});
  bool changed = false;
  for (auto& tag : tags) {
    if (std::find(group_it->second.begin(), group_it->second.end(), tag) ==
        group_it->second.end()) {
      group_it->second.push_back(std::move(tag));
      changed = true;
    }
  }
  if (!changed) return;
  tensorboard::Layout layout;
  auto* category = layout.add_category();
  category->set_title(std::string(kScalarGroupsCategory));
  for (const auto& [title, series] : scalar_groups_) {
    auto* c = category->add_chart();
    c->set_title(title);
    for (const auto& tag : series) c->mutable_multiline()->add_tag(exact_tag_regex(tag));
  }
  tensorboard::Event event;
  auto& v = Encoder::new_value(event, kCustomScalarsTag, step, when);
  v.mutable_metadata()->mutable_plugin_data()->set_plugin_name("custom_scalars");
  auto* tensor = v.mutable_tensor();
  tensor->set_dtype(tensorboard::DT_STRING);
  tensor->mutable_tensor_shape();
  tensor->add_string_val(layout.SerializeAsString());
  locked_append([&](TfeventsRecordWriter& out) { Encoder::append_event(out, event); });
}

void TensorBoardWriter::add_text(std::string_view tag, std::string_view text, int64_t step,
                                 std::optional<double> wall_time) {
  tensorboard::Event event;
  auto& v = Encoder::new_value(event, clean_tag(tag), step, wall_time ? *wall_time : now_seconds());
  v.mutable_metadata()->mutable_plugin_data()->set_plugin_name("text");
  auto* tensor = v.mutable_tensor();
  tensor->set_dtype(tensorboard::DT_STRING);
  tensor->mutable_tensor_shape();  // a scalar string, like tf.summary.text
  tensor->add_string_val(std::string(text));
  locked_append([&](TfeventsRecordWriter& out) { Encoder::append_event(out, event); });
}

void TensorBoardWriter::add_image(std::string_view tag, const Image& image, int64_t step,
                                  std::optional<double> wall_time) {
  const std::string cleaned = clean_tag(tag);
  std::string png = encode_png(image, fmt::format("image '{}'", tag));
  tensorboard::Event event;
  auto& v = Encoder::new_value(event, cleaned, step, wall_time ? *wall_time : now_seconds());
  auto* summary_image = v.mutable_image();
  summary_image->set_height(static_cast<int32_t>(image.height));
  summary_image->set_width(static_cast<int32_t>(image.width));
  summary_image->set_colorspace(static_cast<int32_t>(image.channels));
  summary_image->set_encoded_image_string(std::move(png));
  locked_append([&](TfeventsRecordWriter& out) { Encoder::append_event(out, event); });
}

void TensorBoardWriter::add_histogram(std::string_view tag, const Histogram& histogram,
                                      int64_t step, std::optional<double> wall_time) {
  tensorboard::Event event;
  auto& v = Encoder::new_value(event, clean_tag(tag), step, wall_time ? *wall_time : now_seconds());
  fill_histogram(*v.mutable_histo(), histogram, tag);
  locked_append([&](TfeventsRecordWriter& out) { Encoder::append_event(out, event); });
}

void TensorBoardWriter::write_hparams_summary(std::string_view tag,
                                              const std::string& plugin_content) {
  tensorboard::Event event;
  auto& v = Encoder::new_value(event, tag, 0, now_seconds());
  auto* plugin = v.mutable_metadata()->mutable_plugin_data();
  plugin->set_plugin_name("hparams");
  plugin->set_content(plugin_content);
  // TensorBoard's own hparams summaries carry an empty float tensor (metadata.NULL_TENSOR).
  auto* tensor = v.mutable_tensor();
  tensor->set_dtype(tensorboard::DT_FLOAT);
  tensor->mutable_tensor_shape()->add_dim()->set_size(0);
  locked_append([&](TfeventsRecordWriter& out) { Encoder::append_event(out, event); });
}

void TensorBoardWriter::add_hparams(const nlohmann::json& hparams,
                                    std::span<const std::string> metric_tags) {
  add_hparams_experiment(hparams, metric_tags);
  add_hparams_session_start(hparams);
}

void TensorBoardWriter::add_hparams_experiment(const nlohmann::json& hparams,
                                               std::span<const std::string> metric_tags) {
  tensorboard::hparams::HParamsPluginData data;
  data.set_version(0);
  auto* experiment = data.mutable_experiment();
  experiment->set_time_created_secs(precise_now_seconds());
  for (const auto& [name, value] : flatten_hparams(hparams)) {
    auto* info = experiment->add_hparam_infos();
    info->set_name(name);
    info->set_type(hparam_type(value));
  }
  for (const auto& tag : metric_tags) {
    auto* metric = experiment->add_metric_infos();
    metric->mutable_name()->set_group("");
    metric->mutable_name()->set_tag(clean_tag(tag));
  }
  write_hparams_summary(kExperimentTag, data.SerializeAsString());
}

void TensorBoardWriter::add_hparams_session_start(const nlohmann::json& hparams) {
  tensorboard::hparams::HParamsPluginData data;
  data.set_version(0);
  auto* start = data.mutable_session_start_info();
  start->set_start_time_secs(precise_now_seconds());
  for (const auto& [name, value] : flatten_hparams(hparams)) {
    set_hparam_value((*start->mutable_hparams())[name], value);
  }
  write_hparams_summary(kSessionStartTag, data.SerializeAsString());
}

void TensorBoardWriter::add_hparams_session_end(RunStatus status) {
  tensorboard::hparams::HParamsPluginData data;
  data.set_version(0);
  auto* end = data.mutable_session_end_info();
  end->set_status(status == RunStatus::finished ? tensorboard::hparams::STATUS_SUCCESS
                                                : tensorboard::hparams::STATUS_FAILURE);
  end->set_end_time_secs(precise_now_seconds());
  write_hparams_summary(kSessionEndTag, data.SerializeAsString());
}

void TensorBoardWriter::flush() {
  locked_append([](TfeventsRecordWriter& out) { out.flush(); });
}

void TensorBoardWriter::close() {
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    closed_ = true;
  }
  flusher_.request_stop();
  if (flusher_.joinable()) flusher_.join();
  std::lock_guard lock(mutex_);
  if (records_->failed()) {
    if (failure_reported_) return;
    failure_reported_ = true;
    throw TrackerError(records_->failure());
  }
  try {
    records_->close();
  } catch (const TrackerError&) {
    failure_reported_ = true;
    notify_written_locked();
    throw;
  }
  notify_written_locked();
}

uint64_t TensorBoardWriter::bytes_appended() const {
  std::lock_guard lock(mutex_);
  return records_->bytes_appended();
}

uint64_t TensorBoardWriter::bytes_written() const {
  std::lock_guard lock(mutex_);
  return records_->bytes_written();
}

void TensorBoardWriter::set_written_callback(std::function<void(uint64_t)> callback) {
  std::lock_guard lock(mutex_);
  written_callback_ = std::move(callback);
}

std::optional<std::string> TensorBoardWriter::error() const {
  std::lock_guard lock(mutex_);
  if (!records_->failed()) return std::nullopt;
  return records_->failure();
}

}  // namespace accel
