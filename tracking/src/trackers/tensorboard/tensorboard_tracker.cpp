#include "accel/tracking/trackers/tensorboard/tensorboard_tracker.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/key_rules.hpp"
#include "accel/tracking/trackers/csv_tracker.hpp"  // to_yaml
#include "common/record_file.hpp"

namespace accel {
namespace {

constexpr const char* kKnownKwargs =
    "flush_secs, filename_suffix, double_precision, hparams_experiment, run_dir";

std::string escape_markdown_cell(const nlohmann::json& cell) {
  std::string text = cell.is_string() ? cell.get<std::string>() : cell.dump();
  std::string out;
  for (char c : text) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n') {
      out += "<br>";
    } else {
      out += c;
    }
  }
  return out;
}

// A Table as a markdown table (TensorBoard's Text tab renders markdown tables).
std::string table_to_markdown(const Table& table) {
  std::string out = "|";
  for (const auto& column : table.columns) out += " " + escape_markdown_cell(column) + " |";
  out += "\n|";
  for (std::size_t i = 0; i < table.columns.size(); ++i) out += "---|";
  for (const auto& row : table.rows) {
    out += "\n|";
    for (std::size_t i = 0; i < table.columns.size(); ++i) {
      out += " " + (i < row.size() ? escape_markdown_cell(row[i]) : std::string()) + " |";
    }
  }
  return out;
}

}  // namespace

TensorBoardTracker::TensorBoardTracker(TrackerInit init)
    : FileTracker(init), init_(std::move(init)) {
  const auto& kwargs = init_.init_kwargs;
  if (!kwargs.is_null() && !kwargs.is_object()) {
    throw InvalidValue(
        fmt::format("init_kwargs[\"tensorboard\"] must be an object, got {}", kwargs.dump()));
  }
  if (kwargs.is_object()) {
    for (const auto& [key, value] : kwargs.items()) {
      if (key == "flush_secs" && value.is_number() && value.get<double>() > 0) {
        options_.flush_secs = value.get<double>();
      } else if (key == "filename_suffix" && value.is_string()) {
        options_.filename_suffix = value.get<std::string>();
        if (options_.filename_suffix.find('/') != std::string::npos) {
          throw InvalidValue(
              fmt::format("init_kwargs[\"tensorboard\"][\"filename_suffix\"] = '{}' contains "
                          "'/'; use a plain suffix such as \".rank0\"",
                          options_.filename_suffix));
        }
      } else if (key == "double_precision" && value.is_boolean()) {
        options_.double_precision = value.get<bool>();
      } else if (key == "hparams_experiment" && value.is_boolean()) {
        write_experiment_ = value.get<bool>();
      } else if (key == "run_dir") {
        (void)run_directory_option(kwargs, "tensorboard");
      } else {
        throw InvalidValue(fmt::format(
            "init_kwargs[\"tensorboard\"][\"{}\"] = {} is not supported; known options: {} "
            "(flush_secs a positive number, filename_suffix a string, the others true/false)",
            key, value.dump(), kKnownKwargs));
      }
    }
  }
  if (auto dir = detail::resume_directory(init_.resume, "tensorboard")) {
    run_dir_ = *dir;  // `accel-launch sync` delivering a journal: the run's directory
  } else if (auto given = run_directory_option(kwargs, "tensorboard")) {
    run_dir_ = *given;  // the Accelerator's run directory (Accelerator::run_dir())
  } else {
    run_dir_ = child_directory(init_.logging_dir, init_.run_name);
  }
  set_log_dir(run_dir_);
  // Checked here as well as in start(): TrackerHub constructs trackers inside init_trackers (on the
  // training thread) but starts them on their worker thread, and an unwritable logging directory
  // must fail init_trackers, not disable the tracker later.
  std::error_code ec;
  std::filesystem::create_directories(run_dir_, ec);
  if (ec || !std::filesystem::is_directory(run_dir_) ||
      ::access(run_dir_.c_str(), W_OK | X_OK) != 0) {
    throw TrackerError(fmt::format(
        "tensorboard: cannot write to the run directory '{}': {}; choose a "
        "writable logging_dir",
        run_dir_.string(), ec ? ec.message() : std::string("not a writable directory")));
  }
}

TensorBoardTracker::~TensorBoardTracker() {
  if (writer_) writer_->set_written_callback({});  // the writer's close() must not call back
}

void TensorBoardTracker::start() {
  std::call_once(writer_once_, [this] {
    writer_ = std::make_unique<TensorBoardWriter>(run_dir_, options_);
    writer_->set_written_callback([this](uint64_t bytes) { written(bytes); });
    publish_run_directory();
    started_.store(true, std::memory_order_release);
  });
}

std::any TensorBoardTracker::tracker() {
  // The handle may be asked for (from the training thread) before the worker thread has started us.
  start();
  return writer_.get();
}

TensorBoardWriter& TensorBoardTracker::started_writer(const char* call) {
  if (!writer_) {
    throw UsageError(fmt::format("tensorboard tracker: {} before start()", call));
  }
  return *writer_;
}

void TensorBoardTracker::throw_if_failed(TensorBoardWriter& writer) {
  // The writer throws its failure once (possibly to a direct user of the handle, or into its
  // background flush) and drops later events: every later call of ours says so instead of
  // accepting a record that is not written.
  if (auto error = writer.error()) throw TrackerError(*error);
}

void TensorBoardTracker::accepted(TensorBoardWriter& writer) {
  // Read before the failure check: a failed write drops the buffer, so a size read after it could
  // count this call's dropped events as written.
  const uint64_t end = writer.bytes_appended();
  throw_if_failed(writer);
  ++accepted_;
  {
    std::lock_guard lock(unwritten_mutex_);
    unwritten_.emplace_back(accepted_, end);
  }
  written(writer.bytes_written());  // the writer may have written it already
}

void TensorBoardTracker::written(uint64_t bytes) {
  uint64_t upto = 0;
  {
    std::lock_guard lock(unwritten_mutex_);
    while (!unwritten_.empty() && unwritten_.front().second <= bytes) {
      upto = unwritten_.front().first;
      unwritten_.pop_front();
    }
  }
  if (upto != 0) acknowledge(upto);
}

void TensorBoardTracker::store_init_configuration(const nlohmann::json& config) {
  auto& writer = started_writer("store_init_configuration");
  throw_if_failed(writer);
  const nlohmann::json safe =
      json_safe_config(config.is_object() ? config : nlohmann::json{{"config", config}});
  if (auto error = detail::write_file_atomically(run_dir_ / "hparams.yaml", to_yaml(safe))) {
    throw TrackerError(
        fmt::format("tensorboard: {}; make sure the logging directory is writable", *error));
  }
  writer.add_hparams_session_start(safe);
  writer.flush();  // the HParams tab can show the run from the start
  config_ = safe;
  accepted(writer);
}

const std::string& TensorBoardTracker::tag_for(const std::string& key) {
  if (auto it = tag_of_key_.find(key); it != tag_of_key_.end()) return it->second;
  std::string tag = TensorBoardWriter::clean_tag(key);
  if (auto it = key_of_tag_.find(tag); it != key_of_tag_.end() && it->second != key) {
    throw InvalidValue(
        fmt::format("keys '{}' and '{}' both become TensorBoard tag '{}' (TensorBoard tags "
                    "keep only letters, digits, '_', '-', '.', '/'); rename one of them",
                    it->second, key, tag));
  }
  key_of_tag_.emplace(tag, key);
  return tag_of_key_.emplace(key, std::move(tag)).first->second;
}

void TensorBoardTracker::log(const Values& values, std::optional<int64_t> step) {
  auto& writer = started_writer("log");
  throw_if_failed(writer);
  const int64_t s = step ? *step : log_calls_;
  ++log_calls_;
  // The time of the training-loop call, also when the hub replays this record later from its
  // journal.
  const double when = std::chrono::duration<double>(record_time().time_since_epoch()).count();
  std::vector<std::string> problems;
  auto note_scalar = [&](const std::string& tag) {
    if (scalar_tag_set_.insert(tag).second) scalar_tags_.push_back(tag);
  };
  for (const auto& [key, value] : values) {
    try {
      const std::string& tag = tag_for(key);
      if (value.is_scalar()) {
        writer.add_scalar(tag, value.as_double(), s, when);
        note_scalar(tag);
      } else if (const auto* text = value.get_if<std::string>()) {
        writer.add_text(tag, *text, s, when);
      } else if (const auto* image = value.get_if<Image>()) {
        writer.add_image(tag, *image, s, when);
      } else if (const auto* histogram = value.get_if<Histogram>()) {
        writer.add_histogram(tag, *histogram, s, when);
      } else if (const auto* table = value.get_if<Table>()) {
        writer.add_text(tag, table_to_markdown(*table), s, when);
      } else if (const auto* group = value.get_if<ScalarGroup>()) {
        // Tags "<tag>/<series>" (checked for collisions first) and the Custom Scalars chart.
        std::vector<std::string> series_tags;
        for (const auto& entry : group->series) {
          series_tags.push_back(tag_for(key + "/" + entry.first));
        }
        writer.add_scalars(tag, *group, s, when);
        for (const auto& series_tag : series_tags) note_scalar(series_tag);
      }
    } catch (const InvalidValue& e) {
      problems.emplace_back(e.what());
    }
  }
  if (!problems.empty()) {
    std::string message = "tensorboard: skipped " + std::to_string(problems.size()) + " value(s): ";
    for (std::size_t i = 0; i < problems.size(); ++i) message += (i ? "; " : "") + problems[i];
    throw InvalidValue(message);
  }
  accepted(writer);
}

void TensorBoardTracker::flush() {
  if (writer_) {
    throw_if_failed(*writer_);
    writer_->flush();
    throw_if_failed(*writer_);
  }
  {
    std::lock_guard lock(unwritten_mutex_);
    unwritten_.clear();
  }
  acknowledge(accepted_);  // everything accepted is in the OS now
}

void TensorBoardTracker::finish(RunStatus status) {
  if (writer_) throw_if_failed(*writer_);
  if (finished_) return;
  finished_ = true;
  if (writer_) {
    if (config_) {
      if (write_experiment_) writer_->add_hparams_experiment(*config_, scalar_tags_);
      writer_->add_hparams_session_end(status);
    }
    writer_->close();
    throw_if_failed(*writer_);
  }
  {
    std::lock_guard lock(unwritten_mutex_);
    unwritten_.clear();
  }
  acknowledge(++accepted_);
}

}  // namespace accel
