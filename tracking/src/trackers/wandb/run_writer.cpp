#include "trackers/wandb/run_writer.hpp"

#include <fmt/format.h>

#include <cmath>

#include "accel/tracking/warnings.hpp"
#include "trackers/wandb/value_json.hpp"
#include "wandb_internal.pb.h"

namespace accel::wandb {
namespace {

// What wandb 0.31.0 writes in its header; min_consumer is the oldest reader the file asks for.
constexpr const char* kProducer = "accel " ACCEL_VERSION " (wandb 0.31.0 record format)";
constexpr const char* kMinConsumer = "0.70.0";

double seconds_since_epoch(Clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

void set_timestamp(google::protobuf::Timestamp& out, Clock::time_point t) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch());
  out.set_seconds(ns.count() / 1'000'000'000);
  out.set_nanos(static_cast<int32_t>(ns.count() % 1'000'000'000));
}

template <class Item>
void fill_item(Item& item, const Row::Item& from) {
  for (const auto& part : from.key) item.add_nested_key(part);
  item.set_value_json(value_json(from.value));
}

}  // namespace

void Row::set(const KeyPath& path, const nlohmann::json& value) {
  if (value.is_object() && !value.empty()) {
    for (const auto& [name, member] : value.items()) {
      KeyPath inner = path;
      inner.push_back(name);
      set(inner, member);
    }
    return;
  }
  set_leaf(path, value);
}

void Row::set_leaf(const KeyPath& path, const nlohmann::json& value) {
  for (auto& item : items_) {
    if (item.key == path) {
      item.value = value;
      return;
    }
  }
  items_.push_back({path, value});
}

void Row::merge(const Row& other) {
  for (const auto& item : other.items_) set_leaf(item.key, item.value);
}

std::set<std::string> Row::top_level_keys() const {
  std::set<std::string> keys;
  for (const auto& item : items_) keys.insert(item.key.front());
  return keys;
}

double RunWriter::runtime(Clock::time_point when) const {
  return std::max(0.0, std::chrono::duration<double>(when - info_.start).count());
}

int64_t RunWriter::next_row_step() const {
  return info_.step_mode == StepMode::step_metric ? state_.rows : state_.current_step;
}

void RunWriter::start() {
  std::vector<std::string> out;
  State state = state_;
  auto record = [&](auto&& fill) {
    wandb_internal::Record r;
    r.set_num(++state.records);
    fill(r);
    out.push_back(r.SerializeAsString());
  };
  record([&](wandb_internal::Record& r) {
    auto* version = r.mutable_header()->mutable_version_info();
    version->set_producer(kProducer);
    version->set_min_consumer(kMinConsumer);
  });
  record([&](wandb_internal::Record& r) {
    auto* run = r.mutable_run();
    run->set_run_id(info_.run_id);
    run->set_project(info_.project);
    if (!info_.entity.empty()) run->set_entity(info_.entity);
    if (!info_.name.empty()) run->set_display_name(info_.name);
    if (!info_.notes.empty()) run->set_notes(info_.notes);
    if (!info_.group.empty()) run->set_run_group(info_.group);
    if (!info_.job_type.empty()) run->set_job_type(info_.job_type);
    for (const auto& tag : info_.tags) run->add_tags(tag);
    run->set_host(info_.host);
    set_timestamp(*run->mutable_start_time(), info_.start);
    if (info_.resumed) {
      run->set_resumed(true);
      run->set_starting_step(info_.starting_step);
    }
  });
  state.rows = info_.starting_step;
  state.current_step = info_.starting_step;
  state.last_user_step = info_.last_step_value;
  if (info_.step_mode == StepMode::step_metric) {
    record([&](wandb_internal::Record& r) {  // define_metric(step_metric)
      auto* metric = r.mutable_metric();
      metric->set_name(info_.step_metric);
      metric->mutable_options()->set_defined(true);
    });
    record([&](wandb_internal::Record& r) {  // define_metric("*", step_metric=..., step_sync=True)
      auto* metric = r.mutable_metric();
      metric->set_glob_name("*");
      metric->set_step_metric(info_.step_metric);
      metric->mutable_options()->set_defined(true);
      metric->mutable_options()->set_step_sync(true);
    });
  }
  log_.append(out);
  state_ = std::move(state);
}

void RunWriter::define_metric(const MetricDefinition& definition) {
  wandb_internal::Record r;
  State state = state_;
  r.set_num(++state.records);
  auto* metric = r.mutable_metric();
  if (definition.is_glob()) {
    metric->set_glob_name(definition.name);
  } else {
    metric->set_name(definition.name);
  }
  if (!definition.step_metric.empty()) {
    metric->set_step_metric(definition.step_metric);
    metric->mutable_options()->set_step_sync(definition.step_sync);
  }
  metric->mutable_options()->set_hidden(definition.hidden);
  metric->mutable_options()->set_defined(true);
  log_.append(r.SerializeAsString());
  state_ = std::move(state);
}

void RunWriter::set_summary(const KeyPath& key, const nlohmann::json& value) {
  wandb_internal::Record r;
  State state = state_;
  r.set_num(++state.records);
  fill_item(*r.mutable_summary()->add_update(), {key, value});
  log_.append(r.SerializeAsString());
  state_ = std::move(state);
}

void RunWriter::config(const nlohmann::json& config) {
  wandb_internal::Record r;
  State state = state_;
  r.set_num(++state.records);
  auto* update = r.mutable_config();
  for (const auto& [key, value] : config.items()) {
    auto* item = update->add_update();
    item->set_key(key);
    item->set_value_json(value_json(value));
  }
  log_.append(r.SerializeAsString());
  state_ = std::move(state);
}

void RunWriter::write_row(State& state, Row row, int64_t step, Clock::time_point when,
                          std::vector<std::string>& out) const {
  row.set({"_step"}, step);
  row.set({"_runtime"}, runtime(when));
  row.set({"_timestamp"}, seconds_since_epoch(when));
  wandb_internal::Record history;
  history.set_num(++state.records);
  for (const auto& item : row.items()) fill_item(*history.mutable_history()->add_item(), item);
  history.mutable_history()->mutable_step()->set_num(step);
  out.push_back(history.SerializeAsString());
  wandb_internal::Record summary;
  summary.set_num(++state.records);
  for (const auto& item : row.items()) fill_item(*summary.mutable_summary()->add_update(), item);
  out.push_back(summary.SerializeAsString());
  ++state.rows;
  state.new_rows.push_back(std::move(row));
}

void RunWriter::commit(State state) {
  std::vector<Row> rows = std::move(state.new_rows);
  std::vector<std::string> console = std::move(state.new_console);
  state.new_rows.clear();
  state.new_console.clear();
  state_ = std::move(state);
  if (observer_ == nullptr) return;
  for (const auto& line : console) observer_->console_line(line, true, state_.console_time);
  for (const auto& row : rows) observer_->row_written(row);
}

void RunWriter::drop(State& state, const Row& values, int64_t step, Clock::time_point when,
                     std::vector<std::string>& out) const {
  for (const auto& key : values.top_level_keys()) {
    if (!state.warned_keys.insert(key).second) continue;
    const std::string message = fmt::format(
        "Tried to log to step {} that is less than the current step {}. Steps must be "
        "monotonically increasing, so this data will be ignored. See "
        "https://wandb.me/define-metric to log data out of order. (wandb tracker, key '{}'; "
        "init_kwargs[\"wandb\"][\"step_mode\"] = \"step_metric\" keeps such rows; this warning "
        "is given once per key)",
        step, state.current_step, key);
    warn("wandb: " + message);
    wandb_internal::Record r;
    r.set_num(++state.records);
    auto* line = r.mutable_output_raw();
    line->set_output_type(wandb_internal::OutputRawRecord::STDERR);
    set_timestamp(*line->mutable_timestamp(), when);
    line->set_line("wandb: WARNING " + message + "\n");
    out.push_back(r.SerializeAsString());
    state.new_console.push_back("wandb: WARNING " + message);
    state.console_time = when;
  }
}

void RunWriter::log(const Row& values, const std::vector<std::string>& files,
                    std::optional<int64_t> step, Clock::time_point when, uint64_t call,
                    const std::vector<std::string>& artifacts) {
  State state = state_;
  std::vector<std::string> out;
  for (const auto& artifact : artifacts) {
    wandb_internal::Record r;
    r.set_num(++state.records);
    r.mutable_artifact()->ParseFromString(artifact);
    out.push_back(r.SerializeAsString());
  }
  if (!files.empty()) {
    wandb_internal::Record r;
    r.set_num(++state.records);
    for (const auto& file : files) r.mutable_files()->add_files()->set_path(file);
    out.push_back(r.SerializeAsString());
  }
  if (info_.step_mode == StepMode::step_metric) {
    if (step) state.last_user_step = step;
    if (values.empty() && out.empty()) return;  // every value of the call was invalid
    Row row;
    if (state.last_user_step) row.set({info_.step_metric}, *state.last_user_step);
    row.merge(values);
    if (!values.empty()) write_row(state, std::move(row), state.rows, when, out);
  } else {
    auto merge_pending = [&] {
      if (state.pending.empty()) state.pending_since = call;
      state.pending.merge(values);
      state.pending_time = when;
    };
    auto write_pending = [&] {
      if (!state.pending.empty()) {
        write_row(state, std::move(state.pending), state.current_step, state.pending_time, out);
      }
      state.pending = Row{};
      state.pending_since = 0;
    };
    if (!step) {
      merge_pending();
      write_pending();
      ++state.current_step;
    } else if (*step > state.current_step) {
      write_pending();
      state.current_step = *step;
      merge_pending();
    } else if (*step == state.current_step) {
      merge_pending();
    } else {
      drop(state, values, *step, when, out);
    }
  }
  if (!out.empty()) log_.append(out);
  commit(std::move(state));
}

void RunWriter::artifact(const std::string& record) {
  State state = state_;
  wandb_internal::Record r;
  r.set_num(++state.records);
  r.mutable_artifact()->ParseFromString(record);
  log_.append(r.SerializeAsString());
  commit(std::move(state));
}

void RunWriter::commit_pending() {
  if (state_.pending.empty()) return;
  State state = state_;
  std::vector<std::string> out;
  write_row(state, std::move(state.pending), state.current_step, state.pending_time, out);
  state.pending = Row{};
  state.pending_since = 0;
  ++state.current_step;
  log_.append(out);
  commit(std::move(state));
}

void RunWriter::finish(int exit_code, Clock::time_point when) {
  State state = state_;
  std::vector<std::string> out;
  if (!state.pending.empty()) {
    write_row(state, std::move(state.pending), state.current_step, state.pending_time, out);
    state.pending = Row{};
    state.pending_since = 0;
  }
  const auto seconds = static_cast<int32_t>(std::lround(runtime(when)));
  wandb_internal::Record summary;
  summary.set_num(++state.records);
  fill_item(*summary.mutable_summary()->add_update(), {{"_wandb", "runtime"}, seconds});
  out.push_back(summary.SerializeAsString());
  wandb_internal::Record exit;
  exit.set_num(++state.records);
  exit.mutable_exit()->set_exit_code(exit_code);
  exit.mutable_exit()->set_runtime(seconds);
  out.push_back(exit.SerializeAsString());
  log_.append(out);
  log_.sync();
  commit(std::move(state));
}

}  // namespace accel::wandb
