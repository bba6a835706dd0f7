#include "accel/tracking/trackers/comet/comet_tracker.hpp"

#include <fmt/format.h>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/warnings.hpp"
#include "common/png_encoder.hpp"
#include "common/secrets.hpp"
#include "trackers/comet/comet_limits.hpp"
#include "trackers/comet/comet_messages.hpp"
#include "trackers/comet/comet_settings.hpp"
#include "trackers/comet/offline_archive.hpp"
#include "trackers/comet/online_experiment.hpp"

namespace accel {
namespace {

int64_t epoch_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

nlohmann::json optional_text(const std::optional<std::string>& text) {
  return text ? nlohmann::json(*text) : nlohmann::json(nullptr);
}

// A table as CSV (RFC 4180 quoting), the way log_table writes a list of rows.
std::string table_csv(const Table& table) {
  const auto cell = [](const nlohmann::json& value) {
    std::string text = value.is_string() ? value.get<std::string>() : value.dump();
    if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
    std::string quoted = "\"";
    for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    return quoted + "\"";
  };
  std::string csv;
  for (std::size_t i = 0; i < table.columns.size(); ++i) {
    csv += (i ? "," : "") + cell(table.columns[i]);
  }
  csv += "\n";
  for (const auto& row : table.rows) {
    for (std::size_t i = 0; i < row.size(); ++i) csv += (i ? "," : "") + cell(row[i]);
    csv += "\n";
  }
  return csv;
}

}  // namespace

CometTracker::CometTracker(TrackerInit init)
    : init_(std::move(init)),
      settings_(std::make_unique<comet::Settings>(comet::resolve_settings(init_))),
      experiment_key_(settings_->experiment_key),
      start_ms_(epoch_ms(std::chrono::system_clock::now())),
      limits_(std::make_unique<comet::LengthLimits>()) {
  if (settings_->online) {
    auto key = comet::find_api_key(init_.init_kwargs);  // resolve_settings made sure there is one
    online_ = std::make_unique<comet::OnlineExperiment>(
        comet::OnlineExperimentInfo{.clientlib_url = settings_->clientlib_url,
                                    .experiment_key = experiment_key_,
                                    .project_name = optional_text(settings_->project_name),
                                    .workspace = optional_text(settings_->workspace),
                                    .tags = settings_->tags,
                                    .existing = settings_->resumed},
        std::move(key).value_or(""));
    sink_ = online_.get();
    return;
  }
  archive_path_ = settings_->offline_directory / (experiment_key_ + ".zip");
  for (const auto& recovered :
       comet::OfflineArchive::recover_leftovers(settings_->offline_directory, experiment_key_)) {
    warn(fmt::format(
        "comet_ml: a killed run left '{}'; it is now the archive '{}' (every message up to that "
        "run's last flush): send it with `comet upload {}`",
        recovered.staging_directory.string(), recovered.archive.string(),
        recovered.archive.string()));
  }
  // Created here, on the training thread inside init_trackers: an unwritable directory fails
  // init_trackers instead of disabling the tracker later.
  archive_ = std::make_unique<comet::OfflineArchive>(settings_->offline_directory, experiment_key_);
  sink_ = archive_.get();
}

CometTracker::~CometTracker() = default;

TrackerRegistration CometTracker::registration() {
  return {.name = "comet_ml",
          .factory = [](const TrackerInit& init) { return std::make_unique<CometTracker>(init); },
          .unavailable_reason = nullptr,  // decided by the options: unavailable_with_options
          .requires_logging_directory = false,
          .unavailable_with_options =
              [](const nlohmann::json& options) { return comet::unavailable_reason(options); },
          .aliases = {"comet"}};
}

std::string CometTracker::mode() const {
  return online_ ? "online" : "offline";
}

bool CometTracker::holds_records() const {
  return online_ != nullptr;
}

nlohmann::json CometTracker::resume_info() const {
  return online_ ? nlohmann::json{{"experiment_key", experiment_key_}} : nlohmann::json(nullptr);
}

void CometTracker::check_reachable() {
  if (!online_) return;
  online_->send_if_due();
  if (online_->away() || !online_->begun()) {
    throw TrackerUnavailable(
        fmt::format("comet_ml: the Comet server {} is away; the call waits to be sent",
                    online_->clientlib_url()));
  }
}

void CometTracker::end_call() {
  ++calls_;
  if (!online_) {
    archive_->flush();
    return;
  }
  online_->end_call(calls_);
  online_->send_if_due();
  acknowledge(online_->delivered_calls());
}

void CometTracker::require_started(const char* call) const {
  if (finished_) throw UsageError(fmt::format("comet_ml tracker: {} after finish()", call));
}

void CometTracker::write_experiment(std::optional<RunStatus> status) {
  const bool failed = status && *status != RunStatus::finished;
  const nlohmann::json experiment = {
      {"offline_id", experiment_key_},
      {"project_name", optional_text(settings_->project_name)},
      {"start_time", start_ms_},
      {"stop_time", status ? epoch_ms(record_time()) : start_ms_},
      {"tags", settings_->tags},
      {"workspace", optional_text(settings_->workspace)},
      {"resume_strategy", "create"},
      {"customer_error_reported", failed},
      {"customer_error_message",
       failed ? nlohmann::json(fmt::format("accel: the run ended {}", to_string(*status)))
              : nlohmann::json(nullptr)},
      {"user_provided_experiment_key", settings_->user_provided_experiment_key},
      {"comet_start_sourced", false}};
  archive_->write_experiment(experiment);
}

void CometTracker::start() {
  std::lock_guard lock(mutex_);
  if (online_) {
    online_->begin();  // TrackerUnavailable: the hub calls start() again later
    if (!settings_->experiment_name.empty() && !settings_->resumed) {
      online_->add_message("log_other", other_payload("Name", settings_->experiment_name));
    }
    return;
  }
  write_experiment(std::nullopt);
  // What every OfflineExperiment logs first, then set_name's other.
  archive_->add_message("log_other", comet::log_other_payload("offline_experiment", true));
  if (!settings_->experiment_name.empty()) {
    archive_->add_message("log_other", other_payload("Name", settings_->experiment_name));
  }
  archive_->flush();
}

void CometTracker::store_init_configuration(const nlohmann::json& config) {
  std::lock_guard lock(mutex_);
  require_started("store_init_configuration");
  check_reachable();
  const auto flat = comet::flatten_parameters(without_secrets(config));
  if (flat.nested) {
    sink_->add_message("log_other", comet::log_other_payload("hasNestedParams", true));
  }
  const comet::Position at{step_, epoch_, epoch_ms(record_time())};
  for (const auto& [name, value] : flat.entries) {
    sink_->add_message("parameter_msg",
                       comet::parameter_payload(limits_->parameter_name(name),
                                                limits_->parameter_value(value), at));
  }
  end_call();
}

nlohmann::json CometTracker::other_payload(std::string_view key, nlohmann::json value) {
  return comet::log_other_payload(limits_->other_key(key), limits_->other_value(std::move(value)));
}

void CometTracker::log_entry(const std::string& key, const Value& value) {
  const comet::Position at{step_, epoch_, now_ms_};
  if (value.is_scalar()) {
    const nlohmann::json number = value.is_integer() ? nlohmann::json(*value.get_if<int64_t>())
                                                     : comet::metric_value(value.as_double());
    sink_->add_message("metric_msg", comet::metric_payload(limits_->metric_name(key), number, at));
  } else if (const auto* text = value.get_if<std::string>()) {
    sink_->add_message("log_other", other_payload(key, *text));
  } else if (const auto* group = value.get_if<ScalarGroup>()) {
    for (const auto& [series, number] : group->series) {
      sink_->add_message("metric_msg",
                         comet::metric_payload(limits_->metric_name(key + "/" + series),
                                               comet::metric_value(number), at));
    }
  } else if (const auto* image = value.get_if<Image>()) {
    const std::string file = sink_->add_file(encode_png(*image, key), ".png");
    sink_->add_message("file_upload",
                       comet::file_upload_payload(file, "visualization",
                                                  comet::image_params(key, figures_++, at), at));
  } else if (const auto* histogram = value.get_if<Histogram>()) {
    const std::string body = comet::histogram_json(*histogram, key).dump();
    const std::string file = sink_->add_file(body, ".json");
    sink_->add_message("file_upload",
                       comet::file_upload_payload(file, "histogram3d",
                                                  comet::asset_params(key, "histogram3d", at), at));
  } else if (const auto* table = value.get_if<Table>()) {
    const std::string file = sink_->add_file(table_csv(*table), ".csv");
    auto params = comet::asset_params(key + ".csv", "", at);
    params["extension"] = "csv";
    sink_->add_message("file_upload", comet::file_upload_payload(file, "asset", params, at));
  }
}

void CometTracker::log(const Values& values, std::optional<int64_t> step) {
  std::lock_guard lock(mutex_);
  require_started("log");
  check_reachable();
  if (step) step_ = step;
  now_ms_ = epoch_ms(record_time());
  for (const auto& [key, value] : values) {
    if (key == "epoch" && value.is_scalar()) epoch_ = static_cast<int64_t>(value.as_double());
  }
  std::vector<std::string> problems;
  for (const auto& [key, value] : values) {
    if (key == "epoch" && value.is_scalar()) continue;
    try {
      log_entry(key, value);
    } catch (const InvalidValue& e) {
      problems.emplace_back(e.what());
    }
  }
  end_call();
  if (!problems.empty()) {
    std::string message = fmt::format("comet_ml: skipped {} value(s): ", problems.size());
    for (std::size_t i = 0; i < problems.size(); ++i) message += (i ? "; " : "") + problems[i];
    throw InvalidValue(message);
  }
}

void CometTracker::log_html(std::string_view html, bool clear) {
  std::lock_guard lock(mutex_);
  require_started("log_html");
  sink_->add_message(comet::html_type(clear), comet::html_payload(html, clear));
  if (archive_) archive_->flush();
}

void CometTracker::log_text(std::string_view text, std::optional<int64_t> step) {
  std::lock_guard lock(mutex_);
  require_started("log_text");
  if (step) step_ = step;  // sticky, as the SDK's log_text(step=...) sets the current step
  const comet::Position at{step_, epoch_, epoch_ms(std::chrono::system_clock::now())};
  const std::string file = sink_->add_file(text, ".txt");
  sink_->add_message(
      "file_upload",
      comet::file_upload_payload(
          file, "text-sample",
          comet::asset_params("auto-generated-in-the-backend", "text-sample", at), at));
  if (archive_) archive_->flush();
}

void CometTracker::flush() {
  std::lock_guard lock(mutex_);
  if (finished_) return;
  if (!online_) {
    archive_->flush();
    return;
  }
  online_->send_all();  // TrackerUnavailable while the server is away: the hub keeps the calls
  acknowledge(calls_);
}

void CometTracker::finish(RunStatus status) {
  std::lock_guard lock(mutex_);
  if (finished_) return;
  if (online_) {
    const bool failed = status != RunStatus::finished;
    online_->finish(failed ? fmt::format("accel: the run ended {}", to_string(status)) : "");
    finished_ = true;
    acknowledge(calls_ + 1);  // the finish call too
    return;
  }
  write_experiment(status);
  archive_->finish();
  finished_ = true;
}

}  // namespace accel
