#include "trackers/wandb/online_run.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <iostream>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/warnings.hpp"
#include "trackers/wandb/value_json.hpp"

namespace accel::wandb {
namespace {

// A row's items as one nested JSON object: ["loss", "train"] = v → {"loss": {"train": v}}.
void set_path(nlohmann::json& object, const KeyPath& path, const nlohmann::json& value) {
  nlohmann::json* at = &object;
  for (std::size_t i = 0; i + 1 < path.size(); ++i) {
    nlohmann::json& inner = (*at)[path[i]];
    if (!inner.is_object()) inner = nlohmann::json::object();
    at = &inner;
  }
  (*at)[path.back()] = value;
}

// "2026-12-01T21:28:12.582369": UTC, microseconds, no zone (how output.log lines start).
std::string console_time(Clock::time_point when) {
  const auto micros = std::chrono::time_point_cast<std::chrono::microseconds>(when);
  const auto seconds = std::chrono::time_point_cast<std::chrono::seconds>(micros);
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:06d}", seconds, (micros - seconds).count());
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TrackerError(fmt::format("wandb: cannot read the run file '{}'", path.string()));
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.flush()) {
    throw TrackerError(fmt::format("wandb: cannot write the run file '{}'", path.string()));
  }
}

}  // namespace

OnlineRun::OnlineRun(OnlineRunInfo info, std::string api_key, RetryPolicy retry)
    : info_(std::move(info)),
      api_(std::make_unique<detail::WandbApi>(
          detail::WandbServer{info_.base_url, std::move(api_key)}, HttpOptions{}, retry)),
      outage_(retry.initial_backoff, kMaxProbeInterval) {
  if (!info_.step_metric.empty()) {  // Lightning's two definitions (StepMode::step_metric)
    define_metric({.name = info_.step_metric, .step_metric = ""});
    define_metric({.name = "*", .step_metric = info_.step_metric});
  }
}

OnlineRun::~OnlineRun() = default;

std::string OnlineRun::run_url() const {
  std::lock_guard lock(url_mutex_);
  if (!url_.empty()) return url_;
  return url_of({info_.entity, info_.project, info_.run_id});
}

std::string OnlineRun::url_of(const detail::WandbRunPath& path) const {
  const std::string app =
      info_.base_url == "https://api.wandb.ai" ? "https://wandb.ai" : info_.base_url;
  return fmt::format("{}/{}/{}/runs/{}", app, path.entity, path.project, path.name);
}

detail::WandbRunUpsert OnlineRun::upsert() const {
  auto text = [](const std::string& s) {
    return s.empty() ? std::nullopt : std::optional<std::string>(s);
  };
  detail::WandbRunUpsert run;
  run.name = info_.run_id;
  run.project = info_.project;
  run.entity = run_path_ ? std::optional<std::string>(run_path_->entity) : text(info_.entity);
  run.display_name = text(info_.display_name);
  run.notes = text(info_.notes);
  run.group = text(info_.group);
  run.job_type = text(info_.job_type);
  if (!info_.tags.empty()) run.tags = info_.tags;
  run.host = text(info_.host);
  return run;
}

void OnlineRun::went_away(const TrackerUnavailable& e) {
  if (outage_.went_away()) {
    warn(fmt::format(
        "wandb: {}. Training goes on: the run is written to its .wandb file (`wandb sync` can "
        "upload it) and what the server has not taken is sent again when it answers",
        e.what()));
  }
}

void OnlineRun::ensure_run() {
  if (outage_.waiting()) {
    throw TrackerUnavailable(
        fmt::format("W&B server {} is away; the run waits to be sent", info_.base_url));
  }
  try {
    if (!run_path_) {
      detail::WandbRunUpsert run = upsert();
      if (!run.entity) run.entity = api_->viewer_entity();
      run_path_ = api_->upsert_run(run);
      std::lock_guard lock(url_mutex_);
      url_ = url_of(*run_path_);
    }
    if (config_sent_ < config_version_) send_config();
  } catch (const TrackerUnavailable& e) {
    went_away(e);
    throw;
  }
  if (outage_.answered()) {
    warn(fmt::format("wandb: W&B server {} answers again; sending what waited", info_.base_url));
  }
  if (!url_printed_) {
    url_printed_ = true;
    std::cerr << fmt::format(
                     "[accel] wandb run{}: {}\n",
                     info_.display_name.empty() ? "" : fmt::format(" '{}'", info_.display_name),
                     run_url())
              << std::flush;
  }
}

ResumePoint OnlineRun::resume(Resume mode) {
  if (mode == Resume::none) return {};
  std::optional<detail::WandbResumeState> state;
  detail::WandbRunPath path{info_.entity, info_.project, info_.run_id};
  try {
    if (path.entity.empty()) path.entity = api_->viewer_entity();
    state = api_->resume_status(path);
  } catch (const TrackerUnavailable& e) {
    went_away(e);
    throw;
  }
  const std::string where =
      fmt::format("{}/{}/{} on {}", path.entity, path.project, path.name, info_.base_url);
  if (!state) {
    if (mode == Resume::must) {
      throw TrackerError(fmt::format(
          "wandb: resume = \"must\" but the server has no run {}; check the id (init_kwargs "
          "\"id\" / WANDB_RUN_ID) and the project, or use resume = \"allow\"",
          where));
    }
    return {};
  }
  if (mode == Resume::never) {
    throw TrackerError(fmt::format(
        "wandb: resume = \"never\" but the server already has a run {}; choose a new id, or use "
        "resume = \"allow\" to continue it",
        where));
  }
  stream_.start_at(kHistoryFile, state->history_line_count);
  stream_.start_at(kEventsFile, state->events_line_count);
  stream_.start_at(kConsoleFile, state->log_line_count);
  if (state->summary.is_object()) summary_ = state->summary;
  if (state->config.is_object()) {
    // The server's config is wrapped ({"key": {"value": v}}); UpsertBucket replaces it whole, so
    // its keys are kept under what this run sets.
    for (const auto& [key, item] : state->config.items()) {
      if (key == "_wandb" || !item.is_object() || !item.contains("value")) continue;
      if (!config_.contains(key)) config_[key] = item["value"];
    }
  }
  return {.resumed = true,
          .starting_step = state->last_step ? *state->last_step + 1 : 0,
          .last_row = state->last_row};
}

void OnlineRun::begin() {
  try {
    ensure_run();
  } catch (const TrackerUnavailable&) {
    // Warned once by went_away; the next send tries again.
  }
}

void OnlineRun::set_config(const nlohmann::json& config) {
  for (const auto& [key, value] : config.items()) config_[key] = value;
  ++config_version_;
}

nlohmann::json OnlineRun::wrapped_config() const {
  nlohmann::json wrapped = nlohmann::json::object();
  for (const auto& [key, value] : config_.items()) wrapped[key] = {{"value", value}};
  wrapped["_wandb"] = {{"value", wandb_bookkeeping()}};
  return wrapped;
}

nlohmann::json OnlineRun::wandb_bookkeeping() const {
  // "t" (client telemetry) marks the run as written by a client: W&B resumes only runs that have
  // it. "m": the metric definitions (see define_metric).
  return {{"t", {{"13", "linux-x86_64"}}}, {"m", metrics_}};
}

int OnlineRun::metric_index(const std::string& name) {
  for (std::size_t i = 0; i < metrics_.size(); ++i) {
    if (metrics_[i].value("1", std::string()) == name) return static_cast<int>(i) + 1;
  }
  metrics_.push_back({{"1", name}, {"6", nlohmann::json::array()}, {"7", nlohmann::json::array()}});
  return static_cast<int>(metrics_.size());
}

void OnlineRun::define_metric(const MetricDefinition& metric) {
  // As wandb-core puts them in the config (`_wandb.m`, what the UI reads for x-axes; measured
  // against the SDK): MetricRecord fields by number, message fields as the numbers set true —
  // {1: name | 2: glob, 5: 1-based index of the step metric in m, 6: [1 step_sync, 3 defined
  // (names only), 2 hidden] in that order, 7: summary}. A step metric not defined yet gets an
  // entry of its own before the definition that names it.
  nlohmann::json entry = nlohmann::json::object();
  nlohmann::json options = nlohmann::json::array();
  if (metric.is_glob()) {
    entry["2"] = metric.name;
  } else {
    entry["1"] = metric.name;
  }
  if (!metric.step_metric.empty() && metric.step_sync) options.push_back(1);
  if (!metric.is_glob()) options.push_back(3);
  if (metric.hidden) options.push_back(2);
  entry["6"] = options;
  entry["7"] = nlohmann::json::array();
  if (!metric.step_metric.empty()) entry["5"] = metric_index(metric.step_metric);
  // A name defined again replaces its entry (it keeps its place, so indexes stay valid).
  std::size_t at = metrics_.size();
  const char* field = metric.is_glob() ? "2" : "1";
  for (std::size_t i = 0; i < metrics_.size(); ++i) {
    if (metrics_[i].value(field, std::string()) == metric.name) at = i;
  }
  if (at == metrics_.size()) {
    metrics_.push_back(entry);
  } else {
    metrics_[at] = entry;
  }
  ++config_version_;
}

void OnlineRun::set_summary(const KeyPath& key, const nlohmann::json& value) {
  set_path(summary_, key, value);
  stream_.set_summary(value_json(summary_));
}

void OnlineRun::send_config() {
  const uint64_t version = config_version_;
  detail::WandbRunUpsert run = upsert();
  run.config = wrapped_config();
  api_->upsert_run(run);
  config_sent_ = version;
}

void OnlineRun::add_media(std::string file) {
  media_.push_back(std::move(file));
}

void OnlineRun::add_artifact(Artifact artifact) {
  artifacts_.add(std::move(artifact));
}

void OnlineRun::row_written(const Row& row) {
  nlohmann::json line = nlohmann::json::object();
  for (const auto& item : row.items()) {
    set_path(line, item.key, item.value);
    set_path(summary_, item.key, item.value);
  }
  stream_.add_line(kHistoryFile, value_json(line));
  stream_.set_summary(value_json(summary_));
}

void OnlineRun::console_line(const std::string& text, bool is_stderr, Clock::time_point when) {
  stream_.add_line(kConsoleFile,
                   fmt::format("{}{} {}", is_stderr ? "ERROR " : "", console_time(when), text));
}

void OnlineRun::accepted_call(uint64_t call) {
  undelivered_.push_back({call, stream_.mark(), config_version_, artifacts_.added()});
  update_delivered();
}

void OnlineRun::update_delivered() {
  while (!undelivered_.empty() && config_sent_ >= undelivered_.front().config_version &&
         artifacts_.committed() >= undelivered_.front().artifacts &&
         stream_.delivered(undelivered_.front().mark)) {
    delivered_calls_ = undelivered_.front().call;
    undelivered_.pop_front();
  }
}

void OnlineRun::send_request(const FileStream::Request& request) {
  api_->send_file_stream(*run_path_, request.body);
  stream_.accepted(request);
  last_send_ = SteadyClock::now();
}

void OnlineRun::send_all() {
  ensure_run();
  try {
    while (stream_.has_pending()) send_request(stream_.next(kMaxRequestLines));
    artifacts_.upload_all(*api_, *run_path_);
  } catch (const TrackerUnavailable& e) {
    went_away(e);
    update_delivered();
    throw;
  }
  last_send_ = SteadyClock::now();
  update_delivered();
}

void OnlineRun::send_if_due() {
  const bool due = stream_.has_pending() && SteadyClock::now() - last_send_ >= kSendInterval;
  const bool full = stream_.pending_lines() >= kSendLines;
  const bool run_waits =
      !run_created() || config_sent_ < config_version_ || !artifacts_.all_committed();
  if (!due && !full && !run_waits) return;
  if (outage_.waiting()) return;
  try {
    send_all();
  } catch (const TrackerUnavailable&) {
    // Kept: sent again after the pause went_away chose.
  }
}

void OnlineRun::check_room() {
  if (stream_.pending_bytes() < info_.max_waiting_bytes) return;
  send_if_due();
  if (stream_.pending_bytes() < info_.max_waiting_bytes) return;
  throw TrackerUnavailable(fmt::format(
      "W&B server {} is away and {} MiB of rows wait for it (the limit, max_waiting_mib); the "
      "hub keeps the next calls",
      info_.base_url, stream_.pending_bytes() >> 20));
}

void OnlineRun::upload_run_files() {
  if (uploads_done_) return;
  write_file(info_.files_dir / "wandb-summary.json", value_json(summary_));
  // JSON is YAML: W&B's config.yaml holds the same {"key": {"value": v}} items as UpsertBucket.
  write_file(info_.files_dir / "config.yaml",
             wrapped_config().dump(4, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  std::vector<std::string> files = media_;
  files.push_back("config.yaml");
  files.push_back(kSummaryFile);
  const auto urls = api_->create_run_files(*run_path_, files);
  for (const auto& file : files) {
    api_->upload(urls.at(file), read_file(info_.files_dir / file), fmt::format("'{}'", file));
  }
  for (const auto& file : files) stream_.add_uploaded(file);
  uploads_done_ = true;
}

void OnlineRun::finish(int exit_code, double runtime_seconds) {
  if (!uploads_done_) {
    set_path(summary_, {"_wandb", "runtime"}, static_cast<int64_t>(runtime_seconds + 0.5));
    stream_.set_summary(value_json(summary_));
  }
  send_all();
  try {
    upload_run_files();
    send_request(stream_.next(kMaxRequestLines, exit_code));
  } catch (const TrackerUnavailable& e) {
    went_away(e);
    throw;
  }
  update_delivered();
}

}  // namespace accel::wandb
