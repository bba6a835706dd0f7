#include "accel/tracking/trackers/csv_tracker.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <system_error>
#include <utility>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/key_rules.hpp"
#include "accel/tracking/warnings.hpp"
#include "common/init_kwargs.hpp"
#include "common/record_file.hpp"

namespace accel {
namespace {

using json = nlohmann::json;

// Rows waiting in the tracker's buffer are handed to the OS once they take this many bytes, also
// before flush_every rows have come.
constexpr std::size_t kBufferBytes = 64 * 1024;

// RFC 4180: quote a field that holds a comma, a quote or a line break; double inner quotes.
std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string format_scalar(const Value& value) {
  if (const auto* i = value.get_if<int64_t>()) return fmt::format("{}", *i);
  double d = value.as_double();
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  return fmt::format("{}", d);
}

std::string dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string yaml_scalar(const json& value) {
  if (value.is_number_float()) {
    double d = value.get<double>();
    if (std::isnan(d)) return ".nan";
    if (std::isinf(d)) return d > 0 ? ".inf" : "-.inf";
  }
  if (value.is_binary()) return dump(fmt::format("<binary {} bytes>", value.get_binary().size()));
  if (value.is_object()) return "{}";
  if (value.is_array()) return "[]";
  return dump(value);
}

bool is_nested(const json& value) {
  return (value.is_object() || value.is_array()) && !value.empty();
}

void emit_yaml(const json& value, int indent, std::string& out) {
  const std::string pad(static_cast<std::size_t>(indent), ' ');
  if (value.is_object()) {
    for (const auto& [key, child] : value.items()) {
      out += pad + dump(json(key)) + ":";
      if (is_nested(child)) {
        out += "\n";
        emit_yaml(child, indent + 2, out);
      } else {
        out += " " + yaml_scalar(child) + "\n";
      }
    }
    return;
  }
  for (const auto& child : value) {
    out += pad + "-";
    if (is_nested(child)) {
      out += "\n";
      emit_yaml(child, indent + 2, out);
    } else {
      out += " " + yaml_scalar(child) + "\n";
    }
  }
}

// The first record of a CSV text (RFC 4180: quoted fields may hold commas, quotes and line breaks):
// its fields and the offset just after its line break; nullopt when the text holds no whole record.
std::optional<std::pair<std::vector<std::string>, std::size_t>> first_csv_record(
    std::string_view text) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c != '"') {
        fields.back() += c;
      } else if (i + 1 < text.size() && text[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else if (c == '\n') {
      if (!fields.back().empty() && fields.back().back() == '\r') fields.back().pop_back();
      return std::make_pair(std::move(fields), i + 1);
    } else {
      fields.back() += c;
    }
  }
  return std::nullopt;
}

}  // namespace

std::string to_yaml(const json& value) {
  if (!is_nested(value)) return yaml_scalar(value) + "\n";
  std::string out;
  emit_yaml(value, 0, out);
  return out;
}

CsvTracker::CsvTracker(TrackerInit init)
    : FileTracker(init), init_(std::move(init)), out_(std::make_unique<detail::RecordFile>("csv")) {
  flush_every_ =
      detail::integer_option(init_.init_kwargs, "flush_every", 1, flush_every_, [](const json& v) {
        return fmt::format(
            "csv: init_kwargs flush_every = {} must be an "
            "integer >= 1",
            dump(v));
      });
  (void)run_directory_option(init_.init_kwargs, "csv");  // a bad run_dir fails init_trackers
}

CsvTracker::~CsvTracker() = default;

void CsvTracker::start() {
  const auto run = detail::run_directory_for(init_, "csv");
  set_log_dir(run.path);
  metrics_path_ = log_dir() / "metrics.csv";
  std::error_code ec;
  if (run.continued && std::filesystem::exists(metrics_path_, ec)) {
    out_->open(metrics_path_, /*truncate=*/false);
    restore_columns();
  }
  publish_run_directory();
}

void CsvTracker::restore_columns() {
  const uint64_t size = out_->size();
  std::optional<std::pair<std::vector<std::string>, std::size_t>> header;
  for (uint64_t want = 64 * 1024;; want *= 2) {
    header = first_csv_record(out_->read(0, static_cast<std::size_t>(std::min(want, size))));
    if (header || want >= size) break;
  }
  if (!header || header->first.size() < 2) {
    // Empty, or a header torn by a process killed while writing it: the next row writes it anew.
    out_->truncate(0);
    return;
  }
  auto& [fields, end] = *header;
  if (fields.front() != "step") {
    throw TrackerError(fmt::format(
        "csv: cannot continue '{}': its first line is not a metrics.csv header (\"step,...\")",
        metrics_path_.string()));
  }
  for (std::size_t i = 1; i < fields.size(); ++i) {
    column_index_.emplace(fields[i], columns_.size());
    columns_.push_back(std::move(fields[i]));
  }
  header_bytes_ = end;
  // A row torn by a killed process is dropped; rows hold no line breaks (only the header can).
  const uint64_t whole = out_->end_of_last_line(end);
  if (whole < out_->size()) out_->truncate(whole);
}

void CsvTracker::store_init_configuration(const json& config) {
  retry_failed_write();
  if (auto error = detail::write_file_atomically(log_dir() / "hparams.yaml", to_yaml(config))) {
    throw TrackerError("csv: " + *error);
  }
  ++accepted_;
  update_acknowledged();
}

void CsvTracker::log(const Values& values, std::optional<int64_t> step) {
  retry_failed_write();
  std::vector<std::pair<std::string, std::string>> cells;
  cells.reserve(values.size());
  for (const auto& [key, value] : values) {
    if (value.is_scalar()) {
      cells.emplace_back(key, format_scalar(value));
    } else if (const auto* group = value.get_if<ScalarGroup>()) {
      for (const auto& [series, x] : group->series)
        cells.emplace_back(key + "/" + series, format_scalar(Value(x)));
    } else if (warned_keys_.insert(key).second) {
      warn(
          fmt::format("csv: key '{}' holds a {}; the csv tracker writes scalars only, so it is "
                      "skipped (log it to jsonl or tensorboard to keep it)",
                      key, value.kind()));
    }
  }
  if (cells.empty()) {
    ++accepted_;
    update_acknowledged();
    return;
  }

  std::vector<std::string> new_keys;
  for (const auto& [key, text] : cells) {
    if (!column_index_.contains(key)) {
      bool listed = false;
      for (const auto& k : new_keys) listed = listed || k == key;
      if (!listed) new_keys.push_back(key);
    }
  }
  if (!new_keys.empty()) add_columns(new_keys);

  std::vector<const std::string*> row(columns_.size(), nullptr);
  for (const auto& [key, text] : cells) row[column_index_.at(key)] = &text;
  std::string line = step ? fmt::format("{}", *step) : std::string();
  for (const auto* cell : row) {
    line += ',';
    if (cell) line += *cell;
  }
  line += '\n';

  const uint64_t number = accepted_ + 1;
  out_->add(line, number);
  if (rows_since_flush_ + 1 >= flush_every_ || out_->buffered_bytes() >= kBufferBytes) {
    try {
      write_out();
    } catch (const TrackerUnavailable&) {
      out_->drop_from(number);  // this call throws, so it has accepted nothing
      throw;
    }
  } else {
    ++rows_since_flush_;
  }
  accepted_ = number;
  update_acknowledged();
}

void CsvTracker::add_columns(const std::vector<std::string>& keys) {
  std::vector<std::string> columns = columns_;
  columns.insert(columns.end(), keys.begin(), keys.end());
  std::string header = "step";
  for (const auto& column : columns) header += "," + csv_field(column);
  header += '\n';

  if (columns_.empty()) {
    // The file's first line. It belongs to no call of its own: when writing it fails it stays
    // buffered (the columns are known from now on) and goes out before the next row.
    if (!out_->is_open()) out_->open(metrics_path_, /*truncate=*/true);
    out_->add(header, 0);
  } else {
    // Lightning's approach: rewrite the file with the wider header; earlier rows get empty cells.
    write_out();  // the buffered rows first, so that the rewritten file holds them
    const std::string old = out_->read(0, static_cast<std::size_t>(out_->size()));
    std::string rewritten = header;
    rewritten.reserve(old.size() + header.size() + old.size() / 8);
    const std::string padding(keys.size(), ',');
    std::size_t pos = std::min(header_bytes_, old.size());
    while (pos < old.size()) {
      std::size_t end = old.find('\n', pos);
      if (end == std::string::npos) end = old.size();
      rewritten.append(old, pos, end - pos);
      rewritten += padding;
      rewritten += '\n';
      pos = end + 1;
    }
    if (auto error = detail::write_file_atomically(metrics_path_, rewritten)) {
      throw TrackerUnavailable("csv: " + *error);
    }
    out_->open(metrics_path_, /*truncate=*/false);
  }
  for (std::size_t i = 0; i < keys.size(); ++i) column_index_.emplace(keys[i], columns_.size() + i);
  columns_ = std::move(columns);
  header_bytes_ = header.size();
}

void CsvTracker::write_out() {
  try {
    out_->write_buffered();
  } catch (const TrackerUnavailable&) {
    update_acknowledged();  // the whole rows written before the failure
    throw;
  }
  rows_since_flush_ = 0;
  update_acknowledged();
}

void CsvTracker::retry_failed_write() {
  if (out_->write_failed()) write_out();  // throws TrackerUnavailable again while the disk is full
}

void CsvTracker::update_acknowledged() {
  const uint64_t first_buffered = out_->first_buffered_number();
  acknowledge(first_buffered == 0 ? accepted_ : first_buffered - 1);
}

void CsvTracker::flush() {
  write_out();
}

void CsvTracker::finish(RunStatus) {
  write_out();
  out_->close();
  ++accepted_;
  update_acknowledged();
}

}  // namespace accel
