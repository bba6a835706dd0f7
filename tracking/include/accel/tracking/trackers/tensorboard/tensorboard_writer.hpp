#pragma once
// accel::TensorBoardWriter: writes one TensorBoard events file
// (events.out.tfevents.<secs>.<host>.<pid>.<n>) in a run directory: scalars, text, PNG images,
// histograms and the HParams plugin's summaries, in the encodings torch.utils.tensorboard and
// TensorBoard's own writers use, with no Python involved.
//
// What TensorBoard shows for each call:
//   add_scalar     Scalars tab. float32 `simple_value` like SummaryWriter; with double_precision a
//                  DT_DOUBLE tensor of plugin "scalars" (SummaryWriter new_style +
//                  double_precision).
//   add_scalars    one series per entry, tag "<main_tag>/<name>", in this same run (torch's
//                  add_scalars makes one extra run per entry instead), plus a Custom Scalars layout
//                  with one chart per main_tag overlaying its series.
//   add_text       Text tab (plugin "text", DT_STRING tensor); the tag is kept as given.
//   add_image      Images tab (Summary.Image holding PNG bytes).
//   add_histogram  Histograms and Distributions tabs (HistogramProto; samples: 30 equal-width
//                  buckets).
//   add_hparams*   HParams tab (plugin "hparams": experiment, session_start_info,
//   session_end_info).
// Tags are cleaned the way SummaryWriter cleans them (see clean_tag): characters other than
// letters, digits, '_', '-', '/', '.' (and non-ASCII UTF-8 letters) become '_', and leading '/'
// are dropped.
//
// Durability: records are buffered and handed to the OS every flush_secs by a background thread,
// when the buffer is full, at flush() and at close(); close() also fsyncs once. A process killed at
// any point leaves a file that TensorBoard reads up to the last flush. No fsync happens per record.
// bytes_written() and the written callback (set_written_callback) tell how much has reached the OS.
//
// Errors: bad input throws accel::InvalidValue (naming the tag and the problem) and writes nothing
// for that call. An I/O failure (disk full, ...) is thrown once as accel::TrackerError, from the
// call that hits it or, when the background flush hit it, from the next call; its message names
// the file and the OS reason ("No space left on device"). The file keeps every whole record written
// before the failure and nothing after it; later calls are dropped, and error() says why.
//
// Thread-safety: every member function may be called from any thread (one internal mutex).
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "accel/tracking/general_tracker.hpp"
#include "accel/tracking/values.hpp"

namespace accel {

struct TensorBoardWriterOptions {
  // Seconds between automatic flushes to the OS (SummaryWriter's flush_secs). Must be > 0.
  double flush_secs = 120;
  // Appended to the events file name (SummaryWriter's filename_suffix).
  std::string filename_suffix;
  // Scalars as DT_DOUBLE tensors instead of float32 simple_value (keeps all 53 bits of a double).
  bool double_precision = false;
  // In-memory buffer; a full buffer is handed to the OS at once.
  std::size_t buffer_bytes = 256 * 1024;
};

class TfeventsRecordWriter;  // the TFRecord framing of an events file (internal)

class TensorBoardWriter {
 public:
  static constexpr int kHistogramBuckets = 30;  // TensorBoard's default bucket count for samples

  // Creates log_dir (with parents) and a new events file in it, and writes the file_version event.
  // Throws accel::TrackerError (path + OS reason + fix) when that fails, accel::InvalidValue for
  // bad options.
  explicit TensorBoardWriter(std::filesystem::path log_dir, TensorBoardWriterOptions options = {});
  ~TensorBoardWriter();  // close(), errors swallowed
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // wall_time: seconds since the epoch; now when absent. NaN and infinities are written as they
  // are.
  void add_scalar(std::string_view tag, double value, int64_t step,
                  std::optional<double> wall_time = std::nullopt);
  void add_scalars(std::string_view main_tag, const ScalarGroup& group, int64_t step,
                   std::optional<double> wall_time = std::nullopt);
  void add_text(std::string_view tag, std::string_view text, int64_t step,
                std::optional<double> wall_time = std::nullopt);
  void add_image(std::string_view tag, const Image& image, int64_t step,
                 std::optional<double> wall_time = std::nullopt);
  // Samples: 30 equal-width buckets between min and max; non-finite samples are rejected
  // (InvalidValue). Pre-binned histograms are written as given (bucket_limits = right edges).
  void add_histogram(std::string_view tag, const Histogram& histogram, int64_t step,
                     std::optional<double> wall_time = std::nullopt);

  // HParams tab. hparams: a JSON object, nested objects flattened to "a/b"; numbers, booleans and
  // strings keep their type, arrays are shown as their JSON text, nulls are skipped.
  // add_hparams = add_hparams_experiment + add_hparams_session_start (torch's add_hparams, but in
  // this run instead of a sub-run, and without a session end: call add_hparams_session_end when
  // done).
  void add_hparams(const nlohmann::json& hparams, std::span<const std::string> metric_tags = {});
  // The experiment: which hparams and which scalar tags (metrics) the HParams tab lists.
  // TensorBoard uses the first experiment it finds in a log directory for all of its runs; without
  // any, it infers one from every run's session_start_info and scalar tags.
  void add_hparams_experiment(const nlohmann::json& hparams,
                              std::span<const std::string> metric_tags);
  void add_hparams_session_start(const nlohmann::json& hparams);
  // finished → STATUS_SUCCESS; failed and killed → STATUS_FAILURE.
  void add_hparams_session_end(RunStatus status);

  // Hands buffered records to the OS (no fsync).
  void flush();
  // Stops the flush thread, flushes, fsyncs once and closes the file. Idempotent; later adds throw
  // accel::UsageError.
  void close();

  const std::filesystem::path& log_dir() const { return log_dir_; }
  const std::filesystem::path& file_path() const { return file_path_; }
  // Bytes appended to the events file so far (written or buffered).
  uint64_t bytes_appended() const;
  // Bytes of whole records handed to the OS so far: the file's size (after a failed write, the
  // whole records written before it).
  uint64_t bytes_written() const;
  // Calls callback(bytes_written()) each time that grows: when records are handed to the OS by
  // flush(), the background flush, a full buffer or close(), and after a failed write that kept
  // some. It runs on the thread that wrote, with the writer's lock held, so it must be quick, must
  // not throw and must not call this writer. Replaces the callback set before; {} removes it.
  void set_written_callback(std::function<void(uint64_t)> callback);
  // Why writing stopped, or nullopt while healthy.
  std::optional<std::string> error() const;

  // SummaryWriter's tag cleaning (see above). Throws accel::InvalidValue when nothing is left.
  static std::string clean_tag(std::string_view tag);

 private:
  class Encoder;
  template <class Append>
  void locked_append(Append&& append);
  void flush_periodically(std::stop_token stop);
  void notify_written_locked();
  void write_hparams_summary(std::string_view tag, const std::string& plugin_content);

  std::filesystem::path log_dir_;
  std::filesystem::path file_path_;
  TensorBoardWriterOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable_any flush_wakeup_;
  std::unique_ptr<TfeventsRecordWriter> records_;  // guarded by mutex_
  std::mutex layout_mutex_;                        // orders add_scalars' layout updates
  std::vector<std::pair<std::string, std::vector<std::string>>>
      scalar_groups_;                               // guarded by layout_mutex_
  bool failure_reported_ = false;                   // guarded by mutex_
  std::function<void(uint64_t)> written_callback_;  // guarded by mutex_
  uint64_t notified_written_ = 0;                   // guarded by mutex_
  bool closed_ = false;                             // guarded by mutex_
  std::jthread flusher_;                            // last member: stopped first on destruction
};

}  // namespace accel
