#include "accel/tracking/trackers/jsonl_tracker.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <system_error>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/key_rules.hpp"
#include "common/png_encoder.hpp"
#include "common/record_file.hpp"

namespace accel {
namespace {

using json = nlohmann::json;

json number(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  return d;
}

json numbers(const std::vector<double>& xs) {
  json out = json::array();
  for (double x : xs) out.push_back(number(x));
  return out;
}

// A file-name-safe form of a key for media files.
std::string file_stem(std::string_view key) {
  return sanitize_key(
      key, [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_' || c == '.'; });
}

void write_png(const std::filesystem::path& path, const Image& image) {
  if (auto error = detail::write_file_atomically(path, encode_png(image, "jsonl"))) {
    throw TrackerUnavailable("jsonl: " + *error);
  }
}

}  // namespace

JsonlTracker::JsonlTracker(TrackerInit init)
    : FileTracker(init),
      init_(std::move(init)),
      out_(std::make_unique<detail::RecordFile>("jsonl")) {
  (void)run_directory_option(init_.init_kwargs, "jsonl");  // a bad run_dir fails init_trackers
}

JsonlTracker::~JsonlTracker() = default;

void JsonlTracker::start() {
  const auto run = detail::run_directory_for(init_, "jsonl");
  set_log_dir(run.path);
  out_->open(log_dir() / "metrics.jsonl", /*truncate=*/false);
  if (run.continued && out_->size() > 0) {
    // A line torn by a killed process is dropped (JSON text holds no raw line break), and new
    // media files are numbered after the lines already there.
    const uint64_t whole = out_->end_of_last_line(0);
    if (whole < out_->size()) out_->truncate(whole);
    constexpr std::size_t kChunk = 1 << 20;
    for (uint64_t at = 0; at < whole; at += kChunk) {
      const std::string chunk = out_->read(at, kChunk);
      line_ += std::count(chunk.begin(), chunk.end(), '\n');
    }
  }
  publish_run_directory();
}

void JsonlTracker::accepted() {
  ++accepted_;
  acknowledge(accepted_);  // every line of an accepted call is written when the call returns
}

void JsonlTracker::store_init_configuration(const json& config) {
  const auto text = json_safe_config(config).dump(2, ' ', false, json::error_handler_t::replace);
  if (auto error = detail::write_file_atomically(log_dir() / "config.json", text + "\n")) {
    throw TrackerError("jsonl: " + *error);
  }
  accepted();
}

void JsonlTracker::log(const Values& values, std::optional<int64_t> step) {
  json encoded = json::object();
  std::size_t index = 0;
  for (const auto& [key, value] : values) {
    struct Visitor {
      JsonlTracker& self;
      const std::string& key;
      std::size_t index;
      json operator()(int64_t v) const { return v; }
      json operator()(double v) const { return number(v); }
      json operator()(const std::string& v) const { return v; }
      json operator()(const ScalarGroup& g) const {
        json out = json::object();
        for (const auto& [series, x] : g.series) out[series] = number(x);
        return out;
      }
      json operator()(const Image& image) const {
        std::filesystem::create_directories(self.log_dir() / "media");
        auto relative = std::filesystem::path("media") /
                        fmt::format("{}-{}-{}.png", self.line_, index, file_stem(key));
        write_png(self.log_dir() / relative, image);
        return json{{"type", "image"},
                    {"height", image.height},
                    {"width", image.width},
                    {"channels", image.channels},
                    {"file", relative.generic_string()}};
      }
      json operator()(const Histogram& h) const {
        json out = {{"type", "histogram"},  {"count", h.count()},
                    {"min", number(h.min)}, {"max", number(h.max)},
                    {"sum", number(h.sum)}, {"sum_squares", number(h.sum_squares)}};
        if (h.is_binned()) {
          out["bucket_limits"] = numbers(h.bucket_limits);
          out["bucket_counts"] = numbers(h.bucket_counts);
        } else {
          out["samples"] = numbers(h.samples);
        }
        return out;
      }
      json operator()(const Table& t) const {
        json rows = json::array();
        for (const auto& row : t.rows) rows.push_back(json_safe_config(json(row)));
        return json{{"type", "table"}, {"columns", t.columns}, {"rows", rows}};
      }
    };
    encoded[key] = std::visit(Visitor{*this, key, index++}, value.storage());
  }
  json line = json::object();
  line["step"] = step ? json(*step) : json(nullptr);
  line["time"] = std::chrono::duration<double>(record_time().time_since_epoch()).count();
  line["values"] = std::move(encoded);
  // The line is written before log returns: when that fails, RecordFile has cut the file back to
  // its last whole line, and the call throws having written nothing of its own.
  out_->add(line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n", accepted_ + 1);
  try {
    out_->write_buffered();
  } catch (const TrackerUnavailable&) {
    out_->drop_from(accepted_ + 1);
    throw;
  }
  ++line_;
  accepted();
}

void JsonlTracker::flush() {
  // Nothing is buffered: every accepted line is written when its call returns.
}

void JsonlTracker::finish(RunStatus) {
  out_->close();
  accepted();
}

}  // namespace accel
