#include "accel/tracking/trackers/wandb/wandb_tracker.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include "accel/tracking/errors.hpp"
#include "common/secrets.hpp"
#include "trackers/wandb/offline_run_dir.hpp"
#include "trackers/wandb/run_writer.hpp"
#include "trackers/wandb/transaction_log.hpp"
#include "trackers/wandb/wandb_media.hpp"
#include "trackers/wandb/wandb_settings.hpp"

namespace accel {
namespace {

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "";
  return name;
}

int exit_code(RunStatus status) {
  switch (status) {
    case RunStatus::finished:
      return 0;
    case RunStatus::failed:
      return 1;
    case RunStatus::killed:
      return 143;  // 128 + SIGTERM: what a shell reports for a process ended by the signal
  }
  return 1;
}

}  // namespace

WandbTracker::WandbTracker(TrackerInit init)
    : init_(std::move(init)),
      settings_(std::make_unique<wandb::Settings>(wandb::resolve_settings(init_))) {
  if (settings_->mode == wandb::Mode::disabled) return;
  run_id_ = settings_->run_id.value_or(wandb::new_run_id());
  start_ = std::chrono::system_clock::now();
  // Created here, on the training thread inside init_trackers: an unwritable directory fails
  // init_trackers instead of disabling the tracker later.
  const auto dir = wandb::create_offline_run_dir(settings_->directory, start_, run_id_);
  run_dir_ = dir.run_dir;
  log_file_ = dir.log_file;
  media_ = std::make_unique<wandb::MediaFiles>(dir.files_dir);
}

WandbTracker::~WandbTracker() = default;

TrackerRegistration WandbTracker::registration() {
  return {.name = "wandb",
          .factory = [](const TrackerInit& init) { return std::make_unique<WandbTracker>(init); },
          .unavailable_reason = [] { return wandb::unavailable_reason(); },
          .requires_logging_directory = false};
}

std::string WandbTracker::mode() const {
  return settings_->mode == wandb::Mode::disabled ? "disabled" : "offline";
}

bool WandbTracker::holds_records() const {
  return settings_->mode != wandb::Mode::disabled &&
         settings_->step_mode == wandb::StepMode::pass_through;
}

void WandbTracker::start() {
  if (!enabled() || log_) return;
  auto log = std::make_unique<wandb::TransactionLog>(log_file_);
  wandb::RunInfo info{.run_id = run_id_,
                      .project = init_.run_name,
                      .entity = settings_->entity,
                      .name = settings_->name,
                      .notes = settings_->notes,
                      .group = settings_->group,
                      .job_type = settings_->job_type,
                      .host = host_name(),
                      .tags = settings_->tags,
                      .start = start_,
                      .step_mode = settings_->step_mode,
                      .step_metric = settings_->step_metric};
  auto writer = std::make_unique<wandb::RunWriter>(*log, std::move(info));
  writer->start();
  log_ = std::move(log);
  writer_ = std::move(writer);
}

void WandbTracker::accepted() {
  ++calls_;
  if (!holds_records()) return;
  const uint64_t waiting = writer_->pending_since();
  acknowledge(waiting == 0 ? calls_ : waiting - 1);
}

void WandbTracker::store_init_configuration(const nlohmann::json& config) {
  if (!enabled()) return;
  if (!writer_) throw UsageError("wandb tracker: store_init_configuration before start()");
  const nlohmann::json object = config.is_object() ? config : nlohmann::json{{"config", config}};
  writer_->config(without_secrets(object));
  accepted();
}

void WandbTracker::log(const Values& values, std::optional<int64_t> step) {
  if (!enabled()) return;
  if (!writer_) throw UsageError("wandb tracker: log before start()");
  wandb::Row row;
  std::vector<std::string> files;
  std::vector<std::string> problems;
  const int64_t row_step = writer_->next_row_step();
  for (const auto& [key, value] : values) {
    try {
      if (const auto* i = value.get_if<int64_t>()) {
        row.set({key}, *i);
      } else if (const auto* d = value.get_if<double>()) {
        row.set({key}, *d);
      } else if (const auto* text = value.get_if<std::string>()) {
        row.set({key}, *text);
      } else if (const auto* group = value.get_if<ScalarGroup>()) {
        for (const auto& [series, number] : group->series) row.set({key, series}, number);
      } else if (const auto* image = value.get_if<Image>()) {
        auto media = media_->image(key, *image, row_step);
        row.set({key}, media.value);
        files.push_back(std::move(media.file));
      } else if (const auto* histogram = value.get_if<Histogram>()) {
        row.set({key}, wandb::histogram_value(*histogram, key));
      } else if (const auto* table = value.get_if<Table>()) {
        auto media = media_->table(key, *table, row_step);
        row.set({key}, media.value);
        files.push_back(std::move(media.file));
      }
    } catch (const InvalidValue& e) {
      problems.emplace_back(e.what());
    }
  }
  writer_->log(row, files, step, record_time(), calls_ + 1);
  accepted();
  if (!problems.empty()) {
    std::string message = fmt::format("wandb: skipped {} value(s): ", problems.size());
    for (std::size_t i = 0; i < problems.size(); ++i) message += (i ? "; " : "") + problems[i];
    throw InvalidValue(message);
  }
}

void WandbTracker::flush() {
  if (!writer_ || finished_) return;
  writer_->commit_pending();
  if (holds_records()) acknowledge(calls_);
}

void WandbTracker::finish(RunStatus status) {
  if (finished_ || !writer_) return;
  writer_->finish(exit_code(status), record_time());
  finished_ = true;
  ++calls_;
  if (holds_records()) acknowledge(calls_);
}

}  // namespace accel
