#include "accel/tracking/jsonl_tracker.hpp"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <fstream>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/key_rules.hpp"
#include "accel/tracking/png_encoder.hpp"

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
  const std::string png = encode_png(image, "jsonl");
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(png.data(), static_cast<std::streamsize>(png.size()));
  if (!file.flush()) {
    throw TrackerError(fmt::format("jsonl: cannot write image '{}'", path.string()));
  }
}

}  // namespace

JsonlTracker::JsonlTracker(TrackerInit init) : init_(std::move(init)) {
  if (init_.logging_dir.empty()) {
    throw InvalidValue(
        "the jsonl tracker writes files and needs a logging directory; set "
        "project_dir or logging_dir");
  }
}

TrackerRegistration JsonlTracker::registration() {
  return {.name = "jsonl",
          .factory = [](const TrackerInit& init) { return std::make_unique<JsonlTracker>(init); },
          .unavailable_reason = {},
          .requires_logging_directory = true};
}

void JsonlTracker::start() {
  log_dir_ =
      create_version_directory(child_directory(init_.logging_dir, init_.run_name), init_.run_id);
  out_.open(log_dir_ / "metrics.jsonl", std::ios::binary | std::ios::app);
  if (!out_)
    throw TrackerError(
        fmt::format("jsonl: cannot open '{}'", (log_dir_ / "metrics.jsonl").string()));
}

void JsonlTracker::store_init_configuration(const json& config) {
  auto path = log_dir_ / "config.json";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << json_safe_config(config).dump(2, ' ', false, json::error_handler_t::replace) << '\n';
  if (!out) throw TrackerError(fmt::format("jsonl: cannot write '{}'", path.string()));
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
        std::filesystem::create_directories(self.log_dir_ / "media");
        auto relative = std::filesystem::path("media") /
                        fmt::format("{}-{}-{}.png", self.line_, index, file_stem(key));
        write_png(self.log_dir_ / relative, image);
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
  out_ << line.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
  out_.flush();
  ++line_;
  if (!out_)
    throw TrackerError(
        fmt::format("jsonl: cannot write '{}'", (log_dir_ / "metrics.jsonl").string()));
}

void JsonlTracker::flush() {
  if (out_.is_open()) out_.flush();
}

void JsonlTracker::finish(RunStatus) {
  if (out_.is_open()) out_.close();
}

}  // namespace accel
