#pragma once
// accel::CsvTracker ("csv"): Lightning's CSVLogger layout.
//
//   <logging_dir>/<project>/version_<N>/metrics.csv   header "step,<key>,...", then one row per
//                                                      log call
//   <logging_dir>/<project>/version_<N>/hparams.yaml  the configuration, nested as given
//
// N is one more than the highest existing version_<i> (0 for the first run); trackers started by
// the same init_trackers (csv and jsonl) share that directory. <project> is the run name made safe
// as one directory name (see sanitize_path_component). Columns are "step" followed by the keys in
// the order they first appeared; a row leaves the cells of keys it does not have empty. When a key
// appears for the first time after rows were written, the file is rewritten with the wider header
// (through a temporary file and rename), so metrics.csv is always a valid CSV with one header line.
// Only scalars are written: a string, image, histogram or table is skipped with one warning per
// key; a ScalarGroup becomes one column per series ("<key>/<series>"). Floats use the shortest text
// that reads back to the same double; NaN and infinities are written "nan", "inf", "-inf" (as
// Python's csv module writes them). A row without step has an empty step cell. Keys are written as
// given (UTF-8), quoted per RFC 4180 when they contain a comma, quote or line break.
//
// init_kwargs: {"flush_every": N} hands the rows to the OS every N rows (default 1: every row
// reaches the OS when log returns); rows also go out when 64 KiB are waiting, and at flush() and
// finish().
//
// Delivery (see GeneralTracker): holds_records() is true. The file is written through a POSIX file
// descriptor with the tracker's own buffer; acknowledged() counts the accepted calls
// (store_init_configuration, log, finish) whose rows the OS has accepted. When a write fails (disk
// full), the file is cut back to the end of its last whole row, the rows of earlier calls that were
// not written stay buffered, the failing call's own row is dropped, and the call throws
// accel::TrackerUnavailable ("csv: cannot write '<path>': No space left on device"); the next call
// writes the buffered rows first. hparams.yaml (and a metrics.csv rewritten for a wider header) is
// replaced atomically; a failure names the file and the OS reason (accel::TrackerError for
// hparams.yaml, accel::TrackerUnavailable for metrics.csv).
//
// resume_info() is {"directory": "<the version directory>"} once started. Started with
// TrackerInit::resume = that (as `accel-launch sync` does), the tracker continues in that directory
// instead of creating a new version: it reads the columns from the header of the existing
// metrics.csv (dropping a torn last row a killed process may have left) and appends to it.
// Thread-safety: as GeneralTracker (one worker thread); resume_info() and acknowledged() from any
// thread.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "accel/tracking/trackers/file_tracker.hpp"

namespace accel {
namespace detail {
class RecordFile;
}

class CsvTracker final : public FileTracker<CsvTracker> {
 public:
  static constexpr const char* kName = "csv";
  // Reads init_kwargs (flush_every, run_dir): throws accel::InvalidValue for a bad one.
  explicit CsvTracker(TrackerInit init);
  ~CsvTracker() override;

  // Creates version_<N>, or continues TrackerInit::resume's directory and its metrics.csv.
  void start() override;
  // Replaces hparams.yaml.
  void store_init_configuration(const nlohmann::json& config) override;
  // One row of metrics.csv (rewritten first when a new key widens the header).
  void log(const Values& values, std::optional<int64_t> step) override;
  // Hands the buffered rows to the OS.
  void flush() override;
  // Hands the buffered rows to the OS and closes metrics.csv.
  void finish(RunStatus status) override;

 private:
  void add_columns(const std::vector<std::string>& keys);
  void restore_columns();
  void write_out();
  void retry_failed_write();
  void update_acknowledged();

  TrackerInit init_;
  std::filesystem::path metrics_path_;
  std::unique_ptr<detail::RecordFile> out_;
  uint64_t accepted_ = 0;             // calls accepted so far (see GeneralTracker::acknowledge)
  std::vector<std::string> columns_;  // without "step"
  std::unordered_map<std::string, std::size_t> column_index_;
  std::unordered_set<std::string> warned_keys_;
  std::size_t header_bytes_ = 0;
  int64_t flush_every_ = 1;
  int64_t rows_since_flush_ = 0;
};

// Writes a JSON value as block-style YAML (what Lightning's hparams.yaml looks like). Strings are
// double-quoted; NaN/Inf become .nan/.inf. Exposed for tests.
std::string to_yaml(const nlohmann::json& value);

}  // namespace accel
