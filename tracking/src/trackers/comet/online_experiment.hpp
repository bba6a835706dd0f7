#pragma once
// accel::comet::OnlineExperiment: the online mode's side of a Comet experiment — the MessageSink
// that sends each message as comet_ml 3.58.8 sends it (shared/research/comet-formats.md §2.2, §3),
// over CometApi:
//
//   begin      GET isAlive/ver (a failure only warns, as the SDK), POST logger/add/run (the runId;
//              logger/get/run for an existing experiment, as ExistingExperiment),
//              the tags (tags/add-tags-to-experiment), the first heartbeat (status-report/update,
//              is_alive: true); the experiment's page is printed once when the server names it
//   metrics    metric_msg → {metricName, metricValue, step, epoch, context, timestamp} values,
//              gzip batches of at most kBatchValues to batch/logger/experiment/metric, sent once
//              kBatchInterval passed since the last batch or kBatchValues wait
//   parameters parameter_msg → {parameterName, parameterValue, step, source, context, timestamp},
//              batched the same way to batch/logger/experiment/parameter
//   requests   log_other → write/experiment/log-other; html/htmlOverride → write/experiment/html;
//              file_upload → a multipart upload (visualizations/upload for images, asset/upload for
//              histogram3d, text-sample and assets) with the uploader's query string; sent in order
//   heartbeat  status-report/update every is_alive_beat_duration_millis the server answered
//   finish     what waits; a failed run's error (write/experiment/update-status, as the upload of a
//              failed run's archive reports it); the last heartbeat with is_alive: false
//
// Nothing is sent from another thread: the sends happen inside begin, send_if_due, send_all and
// finish, which the tracker calls from its worker thread; between calls heartbeats and batches wait
// for the next call.
//
// Delivery: every message belongs to the call it was added in (end_call(n) closes call n);
// delivered_calls() is the longest prefix of calls whose every message the server accepted. A
// message is sent until the server accepts it, once (a request that fails is sent again whole).
// While the server is away (TrackerUnavailable from CometApi), nothing is lost: sends stop and are
// tried again after a growing pause (from the RetryPolicy's first wait up to kMaxProbeInterval);
// away() says so, and send_all and finish throw TrackerUnavailable. A refused key (401/403) or a
// rejected request throws TrackerError from any call. The API key lives in the CometApi only.
// Thread-safety: none (CometTracker serialises its calls).
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/retry_policy.hpp"
#include "net/outage_pacing.hpp"
#include "trackers/comet/comet_api.hpp"
#include "trackers/comet/message_sink.hpp"

namespace accel::comet {

struct OnlineExperimentInfo {
  std::string clientlib_url;  // COMET_URL_OVERRIDE's base, with a trailing '/'
  std::string experiment_key;
  nlohmann::json project_name;  // a string or null
  nlohmann::json workspace;     // a string or null
  std::vector<std::string> tags;
  bool existing = false;  // continue the experiment (logger/get/run) instead of creating it
};

class OnlineExperiment final : public MessageSink {
 public:
  static constexpr std::size_t kBatchValues = 1000;         // COMET_MESSAGE_BATCH_METRIC_MAX_SIZE
  static constexpr std::chrono::seconds kBatchInterval{2};  // ..._METRIC_INTERVAL
  static constexpr std::chrono::seconds kMaxProbeInterval{10};

  OnlineExperiment(OnlineExperimentInfo info, std::string api_key, RetryPolicy retry = {});
  ~OnlineExperiment() override;

  // Creates the experiment (see above). Throws TrackerUnavailable while the server is away (call it
  // again later) and TrackerError for a refused key.
  void begin();
  bool begun() const { return run_.has_value(); }

  void add_message(std::string_view type, nlohmann::json payload) override;
  std::string add_file(std::string_view content, std::string_view suffix) override;

  // The messages added since the last end_call belong to call `call` (1, 2, ...).
  void end_call(uint64_t call);
  // The longest prefix of ended calls the server has.
  uint64_t delivered_calls() const;
  // True while the server is known to be away and the next attempt is not due.
  bool away() const;

  // begin() if it has not succeeded, then what is due (requests, batches, the heartbeat); keeps
  // everything while the server is away.
  void send_if_due();
  // Sends everything waiting; throws TrackerUnavailable while the server is away.
  void send_all();
  // The end (see above); error_message is the failed run's error, empty for a finished run. Throws
  // TrackerUnavailable while the server is away (call it again: what was done is not repeated).
  void finish(const std::string& error_message);

  const std::string& clientlib_url() const { return info_.clientlib_url; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Value {
    uint64_t call;
    nlohmann::json value;
  };
  struct Request {
    uint64_t call;
    std::string upload_endpoint;  // empty: a REST write
    std::string what;             // the REST write (log-other, html)
    nlohmann::json body;          // the REST body, or the upload's additional_params
    std::string content;          // the upload's file
  };

  void send_requests();
  void send_batches(std::deque<Value>& values, const char* kind, bool all);
  void heartbeat();
  void went_away(const TrackerUnavailable& e);
  void back_again();
  void throw_if_away() const;
  int64_t now_ms() const;

  OnlineExperimentInfo info_;
  std::unique_ptr<CometApi> api_;
  std::optional<CometRun> run_;

  std::map<std::string, std::string> files_;  // add_file's content until its file_upload comes
  uint64_t next_file_ = 1;
  uint64_t calls_ended_ = 0;
  std::deque<Value> metrics_;
  std::deque<Value> parameters_;
  std::deque<Request> requests_;
  Clock::time_point last_batch_ = Clock::now();

  std::chrono::milliseconds beat_interval_{0};
  Clock::time_point next_beat_{};
  bool error_sent_ = false;
  bool ended_ = false;

  detail::OutagePacing outage_;
};

}  // namespace accel::comet
