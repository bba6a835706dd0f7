#include "trackers/comet/online_experiment.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iostream>

#include "accel/tracking/warnings.hpp"

namespace accel::comet {
namespace {

nlohmann::json field(const nlohmann::json& object, const char* name) {
  auto it = object.find(name);
  return it == object.end() ? nlohmann::json(nullptr) : *it;
}

// The uploader's "Temporary fix to ensure integers" for an upload's step and epoch.
nlohmann::json upload_params(nlohmann::json params) {
  if (!params.is_object()) params = nlohmann::json::object();
  for (const char* name : {"step", "epoch"}) {
    if (params.contains(name) && params[name].is_number()) {
      params[name] = static_cast<int64_t>(params[name].get<double>());
    }
  }
  return params;
}

}  // namespace

OnlineExperiment::OnlineExperiment(OnlineExperimentInfo info, std::string api_key,
                                   RetryPolicy retry)
    : info_(std::move(info)),
      api_(std::make_unique<CometApi>(info_.clientlib_url, std::move(api_key), info_.experiment_key,
                                      HttpOptions{}, retry)),
      outage_(retry.initial_backoff, kMaxProbeInterval) {}

OnlineExperiment::~OnlineExperiment() = default;

int64_t OnlineExperiment::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void OnlineExperiment::went_away(const TrackerUnavailable& e) {
  if (outage_.went_away()) {
    warn(fmt::format(
        "{}. Training goes on: what the server has not taken is kept and sent again, in order, "
        "when it answers",
        e.what()));
  }
}

void OnlineExperiment::back_again() {
  if (!outage_.answered()) return;
  warn(fmt::format("comet_ml: the Comet server {} answers again; sending what waited",
                   info_.clientlib_url));
}

bool OnlineExperiment::away() const {
  return outage_.waiting();
}

void OnlineExperiment::throw_if_away() const {
  if (away()) {
    throw TrackerUnavailable(
        fmt::format("comet_ml: the Comet server {} is away; what waits is sent when it answers",
                    info_.clientlib_url));
  }
}

void OnlineExperiment::begin() {
  if (run_) return;
  throw_if_away();
  try {
    if (!api_->server_version()) {
      warn(
          fmt::format("comet_ml: the Comet server {} did not answer the version check "
                      "isAlive/ver as comet_ml expects; going on",
                      info_.clientlib_url));
    }
    CometRun run = info_.existing ? api_->get_run(now_ms())
                                  : api_->add_run(info_.project_name, info_.workspace, now_ms());
    if (!info_.tags.empty() && !info_.existing) api_->add_tags(info_.tags);
    beat_interval_ = api_->status_update(run, /*is_alive=*/true, now_ms());
    next_beat_ = Clock::now() + beat_interval_;
    run_ = std::move(run);
  } catch (const TrackerUnavailable& e) {
    went_away(e);
    throw;
  }
  back_again();
  if (!run_->focus_url.empty()) {
    std::cerr << fmt::format("[accel] comet_ml experiment: {}{}\n", run_->focus_url,
                             info_.experiment_key)
              << std::flush;
  }
}

std::string OnlineExperiment::add_file(std::string_view content, std::string_view suffix) {
  std::string name = fmt::format("file-{}{}", next_file_++, suffix);
  files_[name] = std::string(content);
  return name;
}

void OnlineExperiment::add_message(std::string_view type, nlohmann::json payload) {
  const uint64_t call = calls_ended_ + 1;
  const nlohmann::json context = field(payload, "context");
  const nlohmann::json timestamp = field(payload, "local_timestamp");
  if (type == "metric_msg") {
    nlohmann::json value = payload["metric"];
    value["context"] = context;
    value["timestamp"] = timestamp;
    metrics_.push_back({call, std::move(value)});
  } else if (type == "parameter_msg") {
    const nlohmann::json& param = payload.contains("param") ? payload["param"] : payload["params"];
    parameters_.push_back({call,
                           {{"parameterName", param["paramName"]},
                            {"parameterValue", param["paramValue"]},
                            {"step", field(param, "step")},
                            {"source", field(param, "source")},
                            {"context", context},
                            {"timestamp", timestamp}}});
  } else if (type == "log_other") {
    requests_.push_back(
        {call, "", "log-other", {{"key", payload["key"]}, {"value", payload["value"]}}, ""});
  } else if (type == "html" || type == "htmlOverride") {
    // The SDK's timestamp_milliseconds quirk: local_timestamp() (ms) times 1000.
    requests_.push_back({call,
                         "",
                         "html",
                         {{"html", payload[std::string(type)]},
                          {"override", type == "htmlOverride"},
                          {"timestamp", now_ms() * 1000}},
                         ""});
  } else if (type == "file_upload") {
    const std::string file = payload["file_path"];
    auto staged = files_.find(file);
    if (staged == files_.end()) {
      throw TrackerError(
          fmt::format("comet_ml: file_upload names '{}', which add_file never gave", file));
    }
    requests_.push_back({call, CometApi::upload_endpoint(payload["upload_type"]), "",
                         upload_params(payload["additional_params"]), std::move(staged->second)});
    files_.erase(staged);
  } else {
    throw TrackerError(fmt::format("comet_ml: no online request for the message type '{}'", type));
  }
}

void OnlineExperiment::end_call(uint64_t call) {
  calls_ended_ = std::max(calls_ended_, call);
}

uint64_t OnlineExperiment::delivered_calls() const {
  uint64_t first_waiting = calls_ended_ + 1;
  for (const auto* values : {&metrics_, &parameters_}) {
    if (!values->empty()) first_waiting = std::min(first_waiting, values->front().call);
  }
  if (!requests_.empty()) first_waiting = std::min(first_waiting, requests_.front().call);
  return first_waiting - 1;
}

void OnlineExperiment::send_requests() {
  while (!requests_.empty()) {
    const Request& request = requests_.front();
    if (request.upload_endpoint.empty()) {
      api_->rest_write(request.what.c_str(), request.body);
    } else {
      api_->upload(request.upload_endpoint, request.body, request.content, *run_);
    }
    requests_.pop_front();
  }
}

void OnlineExperiment::send_batches(std::deque<Value>& values, const char* kind, bool all) {
  while (values.size() >= kBatchValues || (all && !values.empty())) {
    const std::size_t count = std::min(values.size(), kBatchValues);
    nlohmann::json batch = nlohmann::json::array();
    for (std::size_t i = 0; i < count; ++i) batch.push_back(values[i].value);
    api_->send_batch(kind, batch);
    values.erase(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(count));
    last_batch_ = Clock::now();
  }
}

void OnlineExperiment::heartbeat() {
  beat_interval_ = api_->status_update(*run_, /*is_alive=*/true, now_ms());
  next_beat_ = Clock::now() + beat_interval_;
}

void OnlineExperiment::send_if_due() {
  if (away()) return;
  try {
    if (!run_) begin();
    const auto now = Clock::now();
    const bool batch_due = now - last_batch_ >= kBatchInterval;
    send_requests();
    send_batches(metrics_, "metric", batch_due);
    send_batches(parameters_, "parameter", batch_due);
    if (now >= next_beat_) heartbeat();
  } catch (const TrackerUnavailable& e) {
    if (run_) went_away(e);  // begin() already did
    return;
  }
  back_again();
}

void OnlineExperiment::send_all() {
  throw_if_away();
  try {
    if (!run_) begin();
    send_requests();
    send_batches(metrics_, "metric", true);
    send_batches(parameters_, "parameter", true);
  } catch (const TrackerUnavailable& e) {
    if (run_) went_away(e);  // begin() already did
    throw;
  }
  back_again();
}

void OnlineExperiment::finish(const std::string& error_message) {
  if (ended_) return;
  send_all();
  try {
    if (!error_message.empty() && !error_sent_) {
      api_->rest_write("update-status",
                       {{"isAlive", true}, {"error", error_message}, {"hasCrashed", false}});
      error_sent_ = true;
    }
    api_->status_update(*run_, /*is_alive=*/false, now_ms());
  } catch (const TrackerUnavailable& e) {
    went_away(e);
    throw;
  }
  ended_ = true;
}

}  // namespace accel::comet
