#pragma once
// accel::JsonlTracker ("jsonl"): one JSON object per log call, easy to read from any language.
//
//   <logging_dir>/<project>/version_<N>/metrics.jsonl   {"step": 3, "time": 1764100000.25,
//   "values": {...}} <logging_dir>/<project>/version_<N>/config.json     the configuration, nested
//   as given <logging_dir>/<project>/version_<N>/media/          PNG files of logged images
//
// Started with csv by one init_trackers, both write into the same version_<N> directory.
// "step" is null when the call had none; "time" is the wall time of the log call in seconds since
// the Unix epoch. Values keep their key (any UTF-8; invalid UTF-8 bytes become U+FFFD) and are
// encoded as:
//   int, float        a JSON number; NaN, +Inf, -Inf (not JSON) become the strings "NaN",
//   "Infinity",
//                     "-Infinity" (the spelling Python's json module reads back as floats)
//   string            a JSON string
//   ScalarGroup       {"<series>": number, ...}
//   Image             {"type": "image", "height", "width", "channels", "file": "media/<file>.png"}
//   Histogram         {"type": "histogram", "count", "min", "max", "sum", "sum_squares",
//                      "bucket_limits", "bucket_counts"} (pre-binned) or "samples" (raw)
//   Table             {"type": "table", "columns": [...], "rows": [[...], ...]}
// The same non-finite rule applies inside config.json. Every line is flushed to the OS when
// written. Thread-safety: as GeneralTracker (one worker thread).
#include <filesystem>
#include <fstream>

#include "accel/tracking/general_tracker.hpp"
#include "accel/tracking/registry.hpp"

namespace accel {

class JsonlTracker final : public GeneralTracker {
 public:
  // Throws accel::InvalidValue when init.logging_dir is empty.
  explicit JsonlTracker(TrackerInit init);
  static TrackerRegistration registration();

  std::string name() const override { return "jsonl"; }
  bool requires_logging_directory() const override { return true; }
  void start() override;
  void store_init_configuration(const nlohmann::json& config) override;
  void log(const Values& values, std::optional<int64_t> step) override;
  void flush() override;
  void finish(RunStatus status) override;
  // The run directory (std::filesystem::path), once started.
  std::any tracker() override { return log_dir_; }

  const std::filesystem::path& log_dir() const { return log_dir_; }

 private:
  TrackerInit init_;
  std::filesystem::path log_dir_;
  std::ofstream out_;
  int64_t line_ = 0;
};

}  // namespace accel
