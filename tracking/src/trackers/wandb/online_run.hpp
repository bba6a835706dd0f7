#pragma once
// accel::wandb::OnlineRun: the online mode's side of a W&B run — what wandb-core 0.31.0 sends to
// the server for a run (shared/research/wandb-formats.md §4), over WandbApi:
//
//   begin      Viewer (the key's entity, unless one was given), UpsertBucket (id, project, display
//              name, notes, tags, group, job type, host), then the run's URL printed once
//   resume     (a run with a resume mode) RunResumeStatus first: a run the server has continues
//              at its next _step and file_stream offsets, with its summary and config
//   config     UpsertBucket with config {"key": {"value": v}} (wrapped on the wire only), and
//              "_wandb" {"m": the metric definitions, "t": the client marker} as wandb-core sends
//   rows       every history row, summary change and console line the RunWriter wrote (it is this
//              class's RunObserver) waits in a FileStream and goes out in a file_stream request
//              every kSendInterval or once kSendLines lines wait
//   artifacts  with the next request, in the order logged (ArtifactUploads, artifact_upload.hpp)
//   finish     what waits, CreateRunFiles + PUTs of the media files, config.yaml and
//              wandb-summary.json (written into files/), then the last file_stream request with
//              "uploaded", "complete": true and "exitcode"
//
// Delivery: calls are numbered as GeneralTracker counts them; accepted_call(n) says call n's
// records are written, delivered_calls() is the longest prefix of calls the server has (a call
// that logged an artifact counts once the server committed it).
// While the server is away (TrackerUnavailable from WandbApi), send_if_due() keeps everything and
// tries again after a growing pause (from the RetryPolicy's first wait up to kMaxProbeInterval);
// send_all() and finish() throw TrackerUnavailable, so the hub keeps what is not delivered.
// A refused key (401/403) or a rejected request throws TrackerError from any call.
// The API key lives in the WandbApi only; it is in no message.
// Thread-safety: none (the tracker's worker thread owns it).
#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/retry_policy.hpp"
#include "net/outage_pacing.hpp"
#include "trackers/wandb/artifact_upload.hpp"
#include "trackers/wandb/file_stream.hpp"
#include "trackers/wandb/run_writer.hpp"
#include "trackers/wandb/wandb_api.hpp"

namespace accel::wandb {

struct OnlineRunInfo {
  std::string base_url;  // WANDB_BASE_URL, no trailing slash
  std::string run_id, project, entity, display_name, notes, group, job_type, host;
  std::vector<std::string> tags;
  std::string step_metric;  // StepMode::step_metric: the x-axis metric; empty in pass_through
  // Bytes of lines that may wait for an away server; beyond, the tracker refuses new calls with
  // TrackerUnavailable (the hub's queue and journal keep them, within their own bounds).
  std::size_t max_waiting_bytes = std::size_t{64} << 20;
  std::filesystem::path files_dir;  // the run directory's files/ (media, config.yaml, summary)
};

// Where a resumed run continues (see OnlineRun::resume).
struct ResumePoint {
  bool resumed = false;       // the server had the run
  int64_t starting_step = 0;  // the _step of its next row
  nlohmann::json last_row;    // its last history row (null when none)
};

class OnlineRun final : public RunObserver {
 public:
  static constexpr std::chrono::seconds kSendInterval{5};
  static constexpr std::size_t kSendLines = 1000;
  // Lines in one request at most: a history row of tens of metrics is a few hundred bytes, so a
  // request stays well under the ~10 MiB W&B accepts, and a backlog drains in few round trips.
  static constexpr std::size_t kMaxRequestLines = 10000;
  static constexpr std::chrono::seconds kMaxProbeInterval{30};

  OnlineRun(OnlineRunInfo info, std::string api_key, RetryPolicy retry = {});
  ~OnlineRun() override;

  // For a run with a resume mode, before begin(): asks the server (RunResumeStatus) whether the
  // run exists and applies the mode (wandb_settings.hpp). A run it has continues: the
  // file_stream offsets, the summary and the config go on from the server's, and the returned
  // point says where its rows go on. Throws TrackerUnavailable while the server is away (call it
  // again), TrackerError when the mode refuses ("must": no such run; "never": it exists).
  ResumePoint resume(Resume mode);
  // Creates the run on the server. An unreachable server is warned about once and tried again by
  // the next send; throws TrackerError for a refused key.
  void begin();
  // The run's config (raw values, the .wandb file's), sent with the next request.
  void set_config(const nlohmann::json& config);
  // define_metric: one more entry of the config's `_wandb.m` (sent with the next request).
  void define_metric(const MetricDefinition& metric);
  // run.summary[key] = value (sent with the next request).
  void set_summary(const KeyPath& key, const nlohmann::json& value);
  // A media file the run wrote (relative to files/), uploaded at finish.
  void add_media(std::string file);
  // A sealed artifact the run logged (its ArtifactRecord is in the .wandb file), sent with the
  // next request; the next accepted_call waits for it.
  void add_artifact(Artifact artifact);

  void row_written(const Row& row) override;
  void console_line(const std::string& text, bool is_stderr, Clock::time_point when) override;

  // Call `call`'s records are in the FileStream (or need nothing sent).
  void accepted_call(uint64_t call);
  // The longest prefix of accepted calls the server has.
  uint64_t delivered_calls() const { return delivered_calls_; }

  // Sends when kSendInterval passed or kSendLines wait; keeps everything while the server is away.
  void send_if_due();
  // Throws TrackerUnavailable when max_waiting_bytes of lines wait (after trying to send them):
  // called before a call is accepted, so memory stays bounded while the server is away.
  void check_room();
  // Sends everything waiting; throws TrackerUnavailable while the server is away.
  void send_all();
  // The end of the run (see above); throws TrackerUnavailable while the server is away (call it
  // again: what was done is not repeated).
  void finish(int exit_code, double runtime_seconds);

  // <W&B app>/<entity>/<project>/runs/<id>; the app of https://api.wandb.ai is https://wandb.ai.
  // The entity is the server's once the run is created. May be called from any thread.
  std::string run_url() const;
  bool run_created() const { return run_path_.has_value(); }

 private:
  void ensure_run();
  void send_config();
  // {"key": {"value": v}, ...}: the config as UpsertBucket and config.yaml carry it.
  nlohmann::json wrapped_config() const;
  // The config's "_wandb" item: metric definitions and the client marker.
  nlohmann::json wandb_bookkeeping() const;
  // The 1-based position of metric `name` in metrics_, appended (undefined) when absent.
  int metric_index(const std::string& name);
  void send_request(const FileStream::Request& request);
  void went_away(const TrackerUnavailable& e);
  void update_delivered();
  void upload_run_files();
  detail::WandbRunUpsert upsert() const;
  std::string url_of(const detail::WandbRunPath& path) const;

  OnlineRunInfo info_;
  std::unique_ptr<detail::WandbApi> api_;
  std::optional<detail::WandbRunPath> run_path_;
  mutable std::mutex url_mutex_;
  std::string url_;  // run_url(), set once the run is created (read from any thread)
  FileStream stream_;
  nlohmann::json summary_ = nlohmann::json::object();
  nlohmann::json config_ = nlohmann::json::object();
  nlohmann::json metrics_ = nlohmann::json::array();  // `_wandb.m`
  uint64_t config_version_ = 0, config_sent_ = 0;
  std::vector<std::string> media_;
  ArtifactUploads artifacts_;
  bool uploads_done_ = false;
  bool url_printed_ = false;

  struct CallMark {
    uint64_t call;
    FileStream::Mark mark;
    uint64_t config_version;
    uint64_t artifacts;  // artifacts added before the call was accepted
  };
  std::deque<CallMark> undelivered_;
  uint64_t delivered_calls_ = 0;

  using SteadyClock = std::chrono::steady_clock;
  SteadyClock::time_point last_send_ = SteadyClock::now();
  detail::OutagePacing outage_;
};

}  // namespace accel::wandb
