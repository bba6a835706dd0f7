#include "accel/tracking/csv_tracker.hpp"

#include <fmt/format.h>

#include <cmath>
#include <iterator>
#include <sstream>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/key_rules.hpp"
#include "accel/tracking/warnings.hpp"

namespace accel {
namespace {

using json = nlohmann::json;

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

void write_file_atomically(const std::filesystem::path& path, const std::string& content) {
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    out.flush();
    if (!out) throw TrackerError(fmt::format("cannot write '{}'", tmp.string()));
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace

std::string to_yaml(const json& value) {
  if (!is_nested(value)) return yaml_scalar(value) + "\n";
  std::string out;
  emit_yaml(value, 0, out);
  return out;
}

CsvTracker::CsvTracker(TrackerInit init) : init_(std::move(init)) {
  if (init_.logging_dir.empty()) {
    throw InvalidValue(
        "the csv tracker writes files and needs a logging directory; set project_dir "
        "or logging_dir");
  }
  if (auto it = init_.init_kwargs.find("flush_every"); it != init_.init_kwargs.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1) {
      throw InvalidValue(
          fmt::format("csv: init_kwargs flush_every = {} must be an integer >= 1", dump(*it)));
    }
    flush_every_ = it->get<int64_t>();
  }
}

TrackerRegistration CsvTracker::registration() {
  return {.name = "csv",
          .factory = [](const TrackerInit& init) { return std::make_unique<CsvTracker>(init); },
          .unavailable_reason = {},
          .requires_logging_directory = true};
}

void CsvTracker::start() {
  log_dir_ =
      create_version_directory(child_directory(init_.logging_dir, init_.run_name), init_.run_id);
  metrics_path_ = log_dir_ / "metrics.csv";
}

void CsvTracker::store_init_configuration(const json& config) {
  write_file_atomically(log_dir_ / "hparams.yaml", to_yaml(config));
}

void CsvTracker::log(const Values& values, std::optional<int64_t> step) {
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
  if (cells.empty()) return;

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
  write_line(line);
}

void CsvTracker::add_columns(const std::vector<std::string>& keys) {
  for (const auto& key : keys) {
    column_index_.emplace(key, columns_.size());
    columns_.push_back(key);
  }
  std::string header = "step";
  for (const auto& column : columns_) header += "," + csv_field(column);
  header += '\n';

  if (!out_.is_open()) {
    out_.open(metrics_path_, std::ios::binary | std::ios::trunc);
    if (!out_)
      throw TrackerError(fmt::format("cannot open '{}' for writing", metrics_path_.string()));
    out_ << header;
    header_bytes_ = header.size();
    return;
  }
  // Lightning's approach: rewrite the file with the wider header; earlier rows get empty cells.
  out_.close();
  std::ifstream in(metrics_path_, std::ios::binary);
  std::string old((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
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
  write_file_atomically(metrics_path_, rewritten);
  header_bytes_ = header.size();
  out_.open(metrics_path_, std::ios::binary | std::ios::app);
  if (!out_) throw TrackerError(fmt::format("cannot reopen '{}'", metrics_path_.string()));
}

void CsvTracker::write_line(const std::string& line) {
  out_ << line;
  if (++rows_since_flush_ >= flush_every_) flush();
  if (!out_) throw TrackerError(fmt::format("cannot write '{}'", metrics_path_.string()));
}

void CsvTracker::flush() {
  if (out_.is_open()) out_.flush();
  rows_since_flush_ = 0;
}

void CsvTracker::finish(RunStatus) {
  if (out_.is_open()) {
    out_.flush();
    out_.close();
  }
}

}  // namespace accel
