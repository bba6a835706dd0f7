#include "accel/tracking/trackers/wandb/wandb_tracker.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <fstream>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/warnings.hpp"
#include "common/secrets.hpp"
#include "trackers/wandb/artifact_manifest.hpp"
#include "trackers/wandb/artifact_staging.hpp"
#include "trackers/wandb/offline_run_dir.hpp"
#include "trackers/wandb/online_run.hpp"
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

// The step metric's value in a resumed run's last row, when it is an integer.
std::optional<int64_t> step_value(const nlohmann::json& row, const std::string& step_metric) {
  if (!row.is_object() || !row.contains(step_metric)) return std::nullopt;
  const auto& value = row[step_metric];
  if (!value.is_number_integer()) return std::nullopt;
  return value.get<int64_t>();
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
  const bool online = settings_->mode == wandb::Mode::online;
  const auto dir = wandb::create_offline_run_dir(settings_->directory, start_, run_id_,
                                                 online ? "run" : "offline-run");
  run_dir_ = dir.run_dir;
  log_file_ = dir.log_file;
  media_ = std::make_unique<wandb::MediaFiles>(dir.files_dir);
  staging_ = std::make_unique<wandb::ArtifactStaging>(run_dir_);
  if (online) {
    auto key = wandb::read_api_key();
    if (!key) throw InvalidValue("wandb: online mode without an API key (set WANDB_API_KEY)");
    const std::string step_metric =
        settings_->step_mode == wandb::StepMode::step_metric ? settings_->step_metric : "";
    online_ = std::make_unique<wandb::OnlineRun>(
        wandb::OnlineRunInfo{.base_url = settings_->base_url,
                             .run_id = run_id_,
                             .project = init_.run_name,
                             .entity = settings_->entity,
                             .display_name = settings_->name,
                             .notes = settings_->notes,
                             .group = settings_->group,
                             .job_type = settings_->job_type,
                             .host = host_name(),
                             .tags = settings_->tags,
                             .step_metric = step_metric,
                             .max_waiting_bytes = settings_->max_waiting_bytes,
                             .files_dir = dir.files_dir},
        std::move(*key));
  }
}

WandbTracker::~WandbTracker() = default;

TrackerRegistration WandbTracker::registration() {
  return {.name = "wandb",
          .factory = [](const TrackerInit& init) { return std::make_unique<WandbTracker>(init); },
          .unavailable_reason = [] { return wandb::unavailable_reason(); },
          .requires_logging_directory = false};
}

std::string WandbTracker::mode() const {
  switch (settings_->mode) {
    case wandb::Mode::disabled:
      return "disabled";
    case wandb::Mode::online:
      return "online";
    case wandb::Mode::offline:
      break;
  }
  return "offline";
}

std::string WandbTracker::run_url() const {
  return online_ ? online_->run_url() : std::string();
}

bool WandbTracker::holds_records() const {
  return settings_->mode == wandb::Mode::online ||
         (settings_->mode != wandb::Mode::disabled &&
          settings_->step_mode == wandb::StepMode::pass_through);
}

nlohmann::json WandbTracker::resume_info() const {
  // Offline, every record is in the .wandb file when it is accepted (step_metric mode); a
  // journal sync then writes a new run rather than a second file of this run's id, which
  // `wandb sync` would upload over the first one's rows.
  if (run_id_.empty() || settings_->mode != wandb::Mode::online) return nullptr;
  nlohmann::json info = {{"run_id", run_id_}, {"mode", mode()}};
  if (!settings_->entity.empty()) info["entity"] = settings_->entity;
  return info;
}

void WandbTracker::start() {
  if (!enabled() || log_) return;
  // Asked first: a run that continues on the server decides where the rows go on. While the
  // server is away this throws TrackerUnavailable and the hub calls start() again later.
  wandb::ResumePoint resumed;
  if (online_) resumed = online_->resume(settings_->resume);
  if (settings_->resume == wandb::Resume::automatic) save_auto_resume_id();
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
                      .step_metric = settings_->step_metric,
                      .resumed = resumed.resumed,
                      .starting_step = resumed.starting_step,
                      .last_step_value = step_value(resumed.last_row, settings_->step_metric)};
  auto writer = std::make_unique<wandb::RunWriter>(*log, std::move(info));
  writer->set_observer(online_.get());
  writer->start();
  log_ = std::move(log);
  writer_ = std::move(writer);
  // On the worker thread: an unreachable server is warned about and tried again later; a refused
  // key throws TrackerError (the hub reports it once and training goes on).
  if (online_) online_->begin();
}

void WandbTracker::accepted() {
  ++calls_;
  if (!holds_records()) return;
  const uint64_t waiting = writer_->pending_since();
  const uint64_t written = waiting == 0 ? calls_ : waiting - 1;
  if (!online_) {
    acknowledge(written);
    return;
  }
  while (calls_streamed_ < written) online_->accepted_call(++calls_streamed_);
  acknowledge(online_->delivered_calls());
}

void WandbTracker::send_if_due() {
  if (!online_) return;
  online_->send_if_due();
  acknowledge(online_->delivered_calls());
}

void WandbTracker::store_init_configuration(const nlohmann::json& config) {
  if (!enabled()) return;
  if (!writer_) throw UsageError("wandb tracker: store_init_configuration before start()");
  if (online_) online_->check_room();
  const nlohmann::json object = config.is_object() ? config : nlohmann::json{{"config", config}};
  const nlohmann::json config_values = without_secrets(object);
  writer_->config(config_values);
  if (online_) online_->set_config(config_values);
  accepted();
  send_if_due();
}

void WandbTracker::log(const Values& values, std::optional<int64_t> step) {
  if (!enabled()) return;
  if (!writer_) throw UsageError("wandb tracker: log before start()");
  if (online_) online_->check_room();
  apply_handle_calls();
  write_staged_artifacts();
  wandb::Row row;
  std::vector<std::string> files;
  std::vector<wandb::Artifact> tables;
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
        auto artifact = staging_->table(key, *table, run_id_);
        const std::string& entry = artifact.entries.front().path;
        media.value["artifact_path"] = wandb::client_artifact_path(artifact, entry);
        media.value["_latest_artifact_path"] = wandb::latest_client_artifact_path(artifact, entry);
        media.value["log_mode"] = "IMMUTABLE";
        row.set({key}, media.value);
        files.push_back(std::move(media.file));
        tables.push_back(std::move(artifact));
      }
    } catch (const InvalidValue& e) {
      problems.emplace_back(e.what());
    }
  }
  std::vector<std::string> records;
  for (const auto& artifact : tables) {
    records.push_back(wandb::artifact_record(artifact, run_id_, init_.run_name, settings_->entity));
  }
  writer_->log(row, files, step, record_time(), calls_ + 1, records);
  if (online_) {
    for (const auto& file : files) online_->add_media(file);
    for (auto& artifact : tables) online_->add_artifact(std::move(artifact));
  }
  accepted();
  send_if_due();
  if (!problems.empty()) {
    std::string message = fmt::format("wandb: skipped {} value(s): ", problems.size());
    for (std::size_t i = 0; i < problems.size(); ++i) message += (i ? "; " : "") + problems[i];
    throw InvalidValue(message);
  }
}

void WandbTracker::flush() {
  if (!writer_ || finished_) return;
  apply_handle_calls();
  write_staged_artifacts();
  writer_->commit_pending();
  if (online_) {
    while (calls_streamed_ < calls_) online_->accepted_call(++calls_streamed_);
    online_->send_all();  // TrackerUnavailable while the server is away: the hub keeps the calls
  }
  if (holds_records()) acknowledge(calls_);
}

void WandbTracker::finish(RunStatus status) {
  if (finished_ || !writer_) return;
  const int code = exit_code(status);
  if (!written_exit_) {
    if (status == RunStatus::finished) log_models_at_end();
    {
      std::lock_guard lock(staged_mutex_);
      artifacts_closed_ = true;
    }
    apply_handle_calls();
    write_staged_artifacts();
    // The exit record first: the .wandb file is whole even when the server never answers.
    const auto when = record_time();
    writer_->finish(code, when);
    written_exit_ = true;
    runtime_seconds_ = std::chrono::duration<double>(when - start_).count();
    ++calls_;
  }
  if (online_) {
    while (calls_streamed_ < calls_) online_->accepted_call(++calls_streamed_);
    online_->finish(code, runtime_seconds_);  // TrackerUnavailable: called again, not repeated
  }
  finished_ = true;
  if (holds_records()) acknowledge(calls_);
  // resume = "auto": a run that finished well is not continued by the next one (the SDK's rule).
  if (code == 0 && settings_->resume == wandb::Resume::automatic) {
    std::error_code ignored;
    std::filesystem::remove(wandb::auto_resume_file(settings_->directory), ignored);
  }
}

void WandbTracker::save_auto_resume_id() const {
  const auto file = wandb::auto_resume_file(settings_->directory);
  std::ofstream out(file, std::ios::trunc);
  out << nlohmann::json{{"run_id", run_id_}}.dump() << "\n";
  if (!out.flush()) {
    throw TrackerError(fmt::format(
        "wandb: cannot write '{}' (resume = \"auto\" keeps the run id there)", file.string()));
  }
}

void WandbTracker::log_artifact(const std::filesystem::path& path, const std::string& name,
                                const std::string& type, const std::vector<std::string>& aliases,
                                const std::string& description, const nlohmann::json& metadata) {
  stage_artifact({.path = path,
                  .name = name,
                  .type = type,
                  .aliases = aliases,
                  .description = description,
                  .metadata = metadata});
}

void WandbTracker::stage_artifact(const wandb::ArtifactRequest& request) {
  const std::string& name = request.name;
  if (!staging_) return;  // disabled
  const auto refuse_if_closed = [&] {
    if (artifacts_closed_) {
      throw UsageError(fmt::format(
          "wandb: log_artifact('{}') after the run ended; log artifacts before end_training",
          name));
    }
  };
  {
    std::lock_guard lock(staged_mutex_);
    refuse_if_closed();
  }
  auto artifact = staging_->stage(request);
  std::lock_guard lock(staged_mutex_);
  refuse_if_closed();  // the run may have ended while the files were copied
  staged_.push_back(std::move(artifact));
}

void WandbTracker::log_model(const std::filesystem::path& checkpoint, bool best) {
  stage_model(checkpoint, best, /*link_files=*/false);
}

void WandbTracker::stage_model(const std::filesystem::path& checkpoint, bool best,
                               bool link_files) {
  std::vector<std::string> aliases = {"latest"};
  if (best) aliases.emplace_back("best");
  stage_artifact({.path = checkpoint,
                  .name = "model-" + run_id_,
                  .type = "model",
                  .aliases = std::move(aliases),
                  .description = "",
                  .metadata = {{"original_filename", checkpoint.filename().string()}},
                  .link_files = link_files});
}

void WandbTracker::define_metric(const std::string& name, const std::string& step_metric,
                                 bool step_sync, bool hidden) {
  if (run_id_.empty()) return;  // disabled
  if (name.empty()) {
    throw InvalidValue("wandb: define_metric needs a metric name (or a glob such as \"val/*\")");
  }
  std::lock_guard lock(staged_mutex_);
  if (artifacts_closed_) {
    throw UsageError(fmt::format("wandb: define_metric('{}') after the run ended", name));
  }
  handle_calls_.push_back({.is_metric = true,
                           .name = name,
                           .step_metric = step_metric,
                           .step_sync = step_sync,
                           .hidden = hidden,
                           .key = {},
                           .value = nullptr});
}

void WandbTracker::set_summary(const std::string& key, nlohmann::json value) {
  if (run_id_.empty()) return;  // disabled
  if (key.empty()) {
    throw InvalidValue("wandb: set_summary needs a key (nest with an object value instead)");
  }
  const std::vector<std::string> path = {key};
  std::lock_guard lock(staged_mutex_);
  if (artifacts_closed_) {
    throw UsageError(fmt::format("wandb: set_summary('{}') after the run ended", key));
  }
  handle_calls_.push_back(
      {.is_metric = false, .name = {}, .step_metric = {}, .key = path, .value = std::move(value)});
}

void WandbTracker::apply_handle_calls() {
  std::vector<HandleCall> calls;
  {
    std::lock_guard lock(staged_mutex_);
    calls.swap(handle_calls_);
  }
  std::size_t done = 0;
  try {
    for (; done < calls.size(); ++done) {
      const auto& call = calls[done];
      if (call.is_metric) {
        const wandb::MetricDefinition metric{.name = call.name,
                                             .step_metric = call.step_metric,
                                             .step_sync = call.step_sync,
                                             .hidden = call.hidden};
        writer_->define_metric(metric);
        if (online_) online_->define_metric(metric);
      } else {
        writer_->set_summary(call.key, call.value);
        if (online_) online_->set_summary(call.key, call.value);
      }
    }
  } catch (...) {
    // The file refused a record (disk full): it and the rest wait for the next call.
    std::lock_guard lock(staged_mutex_);
    handle_calls_.insert(handle_calls_.begin(), calls.begin() + static_cast<std::ptrdiff_t>(done),
                         calls.end());
    throw;
  }
}

void WandbTracker::checkpoint_saved(const std::filesystem::path& dir, bool best) {
  switch (settings_->log_model) {
    case wandb::LogModel::off:
      return;
    case wandb::LogModel::every_save:
      stage_model(dir, best, /*link_files=*/true);
      return;
    case wandb::LogModel::at_end: {
      std::lock_guard lock(staged_mutex_);
      latest_checkpoint_ = dir;
      if (best) best_checkpoint_ = dir;
      return;
    }
  }
}

void WandbTracker::log_models_at_end() {
  std::optional<std::filesystem::path> latest, best;
  {
    std::lock_guard lock(staged_mutex_);
    latest.swap(latest_checkpoint_);
    best.swap(best_checkpoint_);
  }
  // Lightning's log_model=True: the checkpoints once, at the end of a run that finished well.
  if (best && std::filesystem::exists(*best)) stage_model(*best, true, /*link_files=*/true);
  if (latest && latest != best && std::filesystem::exists(*latest)) {
    stage_model(*latest, false, /*link_files=*/true);
  }
}

void WandbTracker::write_staged_artifacts() {
  std::vector<wandb::Artifact> staged;
  {
    std::lock_guard lock(staged_mutex_);
    staged.swap(staged_);
  }
  std::size_t done = 0;
  try {
    for (; done < staged.size(); ++done) {
      auto& artifact = staged[done];
      try {
        wandb::seal_staged(artifact);
      } catch (const TrackerUnavailable& e) {
        // Its copy cannot be read (removed from the run directory): waiting would not help.
        warn(fmt::format("wandb: artifact '{}' is not logged: {}", artifact.name, e.what()));
        continue;
      }
      writer_->artifact(
          wandb::artifact_record(artifact, run_id_, init_.run_name, settings_->entity));
      if (online_) online_->add_artifact(std::move(artifact));
    }
  } catch (...) {
    // The .wandb file refused the record: it and what follows wait for the next call, before
    // anything staged since.
    std::lock_guard lock(staged_mutex_);
    staged_.insert(staged_.begin(), std::make_move_iterator(staged.begin() + done),
                   std::make_move_iterator(staged.end()));
    throw;
  }
}

}  // namespace accel
