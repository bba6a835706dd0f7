#pragma once
// accel::JsonlTracker ("jsonl"): one JSON object per log call, easy to read from any language.
//
//   <logging_dir>/<project>/version_<N>/metrics.jsonl  {"step": 3, "time": 1764100000.25,
//                                                       "values": {...}}
//   <logging_dir>/<project>/version_<N>/config.json    the configuration, nested as given
//   <logging_dir>/<project>/version_<N>/media/         PNG files of logged images
//
// Started with csv by one init_trackers, both write into the same version_<N> directory.
// "step" is null when the call had none; "time" is the wall time of the log call in seconds since
// the Unix epoch. Values keep their key (any UTF-8; invalid UTF-8 bytes become U+FFFD) and are
// encoded as:
//   int, float        a JSON number; NaN, +Inf, -Inf (not JSON) become the strings "NaN",
//                     "Infinity", "-Infinity" (the spelling Python's json module reads back as
//                     floats)
//   string            a JSON string
//   ScalarGroup       {"<series>": number, ...}
//   Image             {"type": "image", "height", "width", "channels", "file": "media/<file>.png"}
//   Histogram         {"type": "histogram", "count", "min", "max", "sum", "sum_squares",
//                      "bucket_limits", "bucket_counts"} (pre-binned) or "samples" (raw)
//   Table             {"type": "table", "columns": [...], "rows": [[...], ...]}
// The same non-finite rule applies inside config.json. Every line is handed to the OS (write(2)
// through a POSIX file descriptor) before log returns.
//
// Delivery (see GeneralTracker): holds_records() is true; acknowledged() counts the accepted calls
// (store_init_configuration, log, finish), each of which has reached the OS when it returns. When a
// write fails (disk full), the file is cut back to the end of its last whole line, the call throws
// accel::TrackerUnavailable ("jsonl: cannot write '<path>': No space left on device") and has
// written nothing of its line; the hub retries it. config.json and media files are written whole
// (through a temporary file and rename); a failure names the file and the OS reason
// (accel::TrackerError for config.json, accel::TrackerUnavailable for a media file).
//
// resume_info() is {"directory": "<the version directory>"} once started. Started with
// TrackerInit::resume = that (as `accel-launch sync` does), the tracker continues in that directory
// instead of creating a new version: it appends to metrics.jsonl (dropping a torn last line a
// killed process may have left) and numbers new media files after the lines already there.
// Thread-safety: as GeneralTracker (one worker thread); resume_info() and acknowledged() from any
// thread.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>

#include "accel/tracking/trackers/file_tracker.hpp"

namespace accel {
namespace detail {
class RecordFile;
}

class JsonlTracker final : public FileTracker<JsonlTracker> {
 public:
  static constexpr const char* kName = "jsonl";
  // Reads init_kwargs (run_dir): throws accel::InvalidValue for a bad one.
  explicit JsonlTracker(TrackerInit init);
  ~JsonlTracker() override;

  // Opens metrics.jsonl in a new version_<N>, or appends to TrackerInit::resume's.
  void start() override;
  // Replaces config.json.
  void store_init_configuration(const nlohmann::json& config) override;
  // One line of metrics.jsonl; the PNG files of its images are written first.
  void log(const Values& values, std::optional<int64_t> step) override;
  // Nothing to do: every line has reached the OS when its call returned.
  void flush() override;
  // Closes metrics.jsonl.
  void finish(RunStatus status) override;

 private:
  void accepted();

  TrackerInit init_;
  std::unique_ptr<detail::RecordFile> out_;
  uint64_t accepted_ = 0;  // calls accepted so far (see GeneralTracker::acknowledge)
  int64_t line_ = 0;       // lines in metrics.jsonl: names the media files
};

}  // namespace accel
