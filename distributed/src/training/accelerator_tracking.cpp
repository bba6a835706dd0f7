// Accelerator: experiment tracking (init_trackers, log, the Lightning-style log, end_training).
#include "training/accelerator_tracking.hpp"

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <fmt/format.h>

#include <iostream>
#include <sstream>

#include "accel/checkpoint.hpp"
#include "accel/process_group.hpp"

namespace accel {

namespace {

constexpr std::size_t kMaxDeferredMetrics = 4096;

std::string shape_of(const torch::Tensor& tensor) {
  std::ostringstream out;
  out << tensor.sizes();
  return out.str();
}

void require_scalar_tensor(std::string_view key, const torch::Tensor& tensor) {
  if (!tensor.defined()) throw InvalidValue(fmt::format("log: '{}' is an undefined tensor", key));
  if (tensor.numel() != 1) {
    throw InvalidValue(
        fmt::format("log: '{}' is a tensor of shape {}: log one number (a 0-d tensor, e.g. "
                    "loss.detach()), or wrap "
                    "the tensor with accel::image() or accel::histogram()",
                    key, shape_of(tensor)));
  }
  if (tensor.is_complex()) throw InvalidValue(fmt::format("log: '{}' is a complex tensor", key));
}

Value cpu_scalar(const torch::Tensor& tensor) {
  if (tensor.is_floating_point()) return Value(tensor.item<double>());
  return Value(tensor.item<int64_t>());
}

}  // namespace

Accelerator::Tracking& Accelerator::tracking() {
  if (!tracking_) {
    tracking_ = std::make_unique<Tracking>(log_every_n_steps_);
    tracking_->collectives = std::make_unique<ProcessGroupCollectives>(cpu_group_);
  }
  return *tracking_;
}

Accelerator::~Accelerator() {
  if (!tracking_ || !tracking_->hub || tracking_->ended) return;
  try {
    flush();
  } catch (const std::exception& e) {
    std::cerr << "accel: values pending at shutdown could not be logged: " << e.what() << std::endl;
  }
  // The hub's destructor finishes the run (failed when an exception is unwinding).
}

void Accelerator::init_trackers(const std::string& project_name, const nlohmann::json& config,
                                const nlohmann::json& init_kwargs) {
  auto& t = tracking();
  if (t.hub) throw UsageError("init_trackers was already called: call it once per Accelerator");
  // The run's directory (collective; fails on every process when it cannot be written), then
  // every file-based tracker writes into it and MLflow names its run after it (docs/runs.md).
  ensure_run(project_name);
  nlohmann::json kwargs = init_kwargs.is_null() ? nlohmann::json::object() : init_kwargs;
  if (kwargs.is_object()) {
    for (const char* name : {"csv", "jsonl", "tensorboard"}) {
      auto& entry = kwargs[name];
      if (entry.is_null()) entry = nlohmann::json::object();
      if (entry.is_object() && !entry.contains("run_dir")) entry["run_dir"] = tracker_dir_.string();
    }
    auto& mlflow = kwargs["mlflow"];
    if (mlflow.is_null()) mlflow = nlohmann::json::object();
    if (mlflow.is_object() && !mlflow.contains("run_name")) mlflow["run_name"] = run_label_;
  }
  TrackerHubOptions options;
  options.is_main_process = is_main_process();
  options.rank = rank_;
  options.world_size = world_size_;
  options.project_dir = project_.project_dir;
  options.logging_dir = project_.logging_dir;
  options.collectives = t.collectives.get();
  auto hub = std::make_unique<TrackerHub>(options);
  hub->init_trackers(project_name, config, log_with_, kwargs);
  t.hub = std::move(hub);
}

// ---- plain log -------------------------------------------------------------------------------------

namespace {

bool drain(std::deque<Accelerator::Tracking::PendingRecord>& pending, TrackerHub& hub, bool wait) {
  while (!pending.empty()) {
    auto& record = pending.front();
    if (record.ready) {
      if (!wait && !record.ready->query()) return false;
      record.ready->synchronize();
    }
    Values values;
    const double* host = record.host.defined() ? record.host.data_ptr<double>() : nullptr;
    for (auto& [key, entry] : record.entries) {
      if (auto* value = std::get_if<Value>(&entry)) {
        values.set(key, std::move(*value));
      } else {
        const auto slot = std::get<std::size_t>(entry);
        if (record.slot_is_integer[slot]) {
          values.set(key, static_cast<int64_t>(host[slot]));
        } else {
          values.set(key, host[slot]);
        }
      }
    }
    const auto step = record.step;
    pending.pop_front();
    hub.log(std::move(values), step);
  }
  return true;
}

}  // namespace

void Accelerator::log(const LogValues& values, std::optional<int64_t> step) {
  auto& t = tracking();
  if (!t.hub || t.ended) {
    throw UsageError(t.ended ? "log() after end_training(): nothing more can be logged"
                             : "log() before init_trackers(): start the trackers first");
  }
  Tracking::PendingRecord record;
  record.step = step;
  std::vector<torch::Tensor> device_values;
  record.entries.reserve(values.size());
  for (const auto& [key, value] : values) {
    if (const auto* plain = value.value()) {
      record.entries.emplace_back(key, *plain);
      continue;
    }
    const auto& tensor = *value.tensor();
    require_scalar_tensor(key, tensor);
    if (tensor.device().is_cpu()) {
      record.entries.emplace_back(key, cpu_scalar(tensor));
    } else {
      record.entries.emplace_back(key, device_values.size());
      record.slot_is_integer.push_back(!tensor.is_floating_point());
      device_values.push_back(tensor.detach().reshape({}));
    }
  }
  if (!device_values.empty()) {
    // One kernel and one asynchronous copy for all device values of the call; no host sync.
    auto stacked = torch::stack(device_values).to(torch::kFloat64);
    record.host = torch::empty({stacked.size(0)},
                               torch::TensorOptions().dtype(torch::kFloat64).pinned_memory(true));
    record.host.copy_(stacked, /*non_blocking=*/true);
    const auto device = stacked.device();
    record.ready.emplace(device.type());
    record.ready->record(c10::impl::getDeviceGuardImpl(device.type())->getStream(device));
  }
  t.pending.push_back(std::move(record));
  drain(t.pending, *t.hub, /*wait=*/false);
}

void Accelerator::log_values(const Values& values, std::optional<int64_t> step) {
  auto& t = tracking();
  if (!t.hub || t.ended) {
    throw UsageError(t.ended ? "log() after end_training(): nothing more can be logged"
                             : "log() before init_trackers(): start the trackers first");
  }
  if (t.pending.empty()) {
    t.hub->log(values, step);
    return;
  }
  Tracking::PendingRecord record;
  record.step = step;
  for (const auto& [key, value] : values) record.entries.emplace_back(key, value);
  t.pending.push_back(std::move(record));
  drain(t.pending, *t.hub, /*wait=*/false);
}

void Accelerator::flush() {
  if (!tracking_) return;
  auto& t = *tracking_;
  if (t.hub) {
    drain(t.pending, *t.hub, /*wait=*/true);
    t.hub->flush();
  }
}

// ---- Lightning-style log -----------------------------------------------------------------------------

namespace {

void resolve_deferred(Accelerator::Tracking& t) {
  if (t.deferred.empty()) return;
  std::vector<torch::Tensor> on_device;
  for (const auto& metric : t.deferred) {
    if (const auto* tensor = std::get_if<torch::Tensor>(&metric.value))
      on_device.push_back(*tensor);
  }
  std::vector<double> host;
  if (!on_device.empty()) {
    auto values = torch::stack(on_device).to(torch::kFloat64).cpu();
    host.assign(values.data_ptr<double>(), values.data_ptr<double>() + values.numel());
  }
  std::size_t next = 0;
  auto deferred = std::move(t.deferred);
  t.deferred.clear();
  for (const auto& metric : deferred) {
    const double value = std::holds_alternative<double>(metric.value)
                             ? std::get<double>(metric.value)
                             : host[next++];
    t.aggregator.log(metric.name, value, metric.options, metric.phase);
  }
}

}  // namespace

void Accelerator::log(std::string_view name, const LogValue& value, const LogOptions& options,
                      Phase phase) {
  auto& t = tracking();
  if (t.ended) throw UsageError("log() after end_training(): nothing more can be logged");
  // Step values of the previous optimizer step are due once the step counter has moved on.
  const int64_t step = global_step();
  if (step != t.last_step_seen) {
    const int64_t finished = t.last_step_seen;
    t.last_step_seen = step;
    if (t.aggregator.should_log_step(finished)) {
      resolve_deferred(t);
      auto values = t.aggregator.step_values(finished, t.collectives.get());
      if (!values.empty() && t.hub) log_values(values, finished);
    }
  }
  double number = 0.0;
  if (const auto* plain = value.value()) {
    if (!plain->is_scalar()) {
      throw InvalidValue(fmt::format(
          "log: '{}' is a {}; log(name, value, options) takes numbers only", name, plain->kind()));
    }
    number = plain->as_double();
  } else {
    const auto& tensor = *value.tensor();
    require_scalar_tensor(name, tensor);
    if (!tensor.device().is_cpu() || !t.deferred.empty()) {
      if (tensor.device().is_cpu()) {
        t.deferred.push_back({std::string(name), tensor.item<double>(), options, phase});
      } else {
        t.deferred.push_back({std::string(name), tensor.detach().reshape({}), options, phase});
      }
      if (t.deferred.size() >= kMaxDeferredMetrics) resolve_deferred(t);
      return;
    }
    number = tensor.item<double>();
  }
  if (!t.deferred.empty()) {
    t.deferred.push_back({std::string(name), number, options, phase});
    return;
  }
  t.aggregator.log(name, number, options, phase);
}

void Accelerator::epoch_end() {
  auto& t = tracking();
  resolve_deferred(t);
  const int64_t step = global_step();
  if (step != t.last_step_seen) {
    const int64_t finished = t.last_step_seen;
    t.last_step_seen = step;
    if (t.aggregator.should_log_step(finished)) {
      auto values = t.aggregator.step_values(finished, t.collectives.get());
      if (!values.empty() && t.hub && !t.ended) log_values(values, finished);
    }
  }
  auto values = t.aggregator.epoch_end(t.collectives.get());
  if (!values.empty() && t.hub && !t.ended) log_values(values, std::max<int64_t>(0, step - 1));
}

Values Accelerator::callback_metrics() const {
  return tracking_ ? tracking_->aggregator.callback_metrics() : Values{};
}

Values Accelerator::prog_bar_values() const {
  return tracking_ ? tracking_->aggregator.prog_bar_values() : Values{};
}

void Accelerator::checkpoint_saved(const std::filesystem::path& dir, bool best) {
  if (!tracking_ || !tracking_->hub || tracking_->ended) return;
  tracking_->hub->checkpoint_saved(dir, best);
}

void Accelerator::mark_best_checkpoint(const std::filesystem::path& dir) {
  checkpoint::require_complete(dir);  // CheckpointError naming what is wrong with dir
  checkpoint_saved(dir, true);
}

GeneralTracker& Accelerator::get_tracker(std::string_view name) {
  if (!tracking_ || !tracking_->hub) throw UsageError("get_tracker() before init_trackers()");
  return tracking_->hub->get_tracker(name);
}

EndTrainingReport Accelerator::end_training(RunStatus status) {
  auto& t = tracking();
  if (t.ended) throw UsageError("end_training() was already called");
  EndTrainingReport report;
  if (t.hub) {
    drain(t.pending, *t.hub, /*wait=*/true);
    report = t.hub->end_training(status);
  }
  t.ended = true;
  return report;
}

}  // namespace accel
