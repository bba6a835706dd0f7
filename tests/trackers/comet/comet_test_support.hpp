#pragma once
// What the comet_ml tests share: recording_comet_server.py started and stopped by PID
// (RecordingServer), the real `comet upload` of the pinned wheel into it (comet_upload), what it
// received (RecordingServer::summary, upload_summary.py's shape), check_archive.py, and the sample
// run every comparison logs (log_sample_run).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "accel/tracking/trackers/comet/comet_tracker.hpp"
#include "net/http_client.hpp"
#include "python.hpp"
#include "script_server.hpp"
#include "shell.hpp"
#include "temp_dir.hpp"

namespace accel::test {

struct RecordingServerOptions {
  int port = 0;              // 0: a free port
  std::string api_key = "";  // non-empty: other keys are answered 401
  int beat_ms = 10000;       // is_alive_beat_duration_millis
};

// recording_comet_server.py, stopped (SIGTERM, by its PID) when the object goes or on stop().
// Its log (<dir>/requests.jsonl) is appended to, so a server restarted on the same port keeps what
// the one before received.
class RecordingServer {
 public:
  struct Options {
    int port = 0;              // 0: a free port
    std::string api_key = "";  // non-empty: other keys are answered 401
    int beat_ms = 10000;       // is_alive_beat_duration_millis
  };
  explicit RecordingServer(const std::filesystem::path& dir) : RecordingServer(dir, Options()) {}
  RecordingServer(const std::filesystem::path& dir, const Options& options)
      : log_(dir / "requests.jsonl"),
        server_(test_script("trackers/comet/recording_comet_server.py"), dir / "port",
                arguments(dir, options)) {}

  int port() const { return server_.port(); }
  std::string url() const { return server_.url(); }
  std::string clientlib() const { return url() + "/clientlib/"; }
  const std::filesystem::path& log() const { return log_; }
  void stop() { server_.stop(); }

  // What it received so far (upload_summary.py's shape).
  nlohmann::json summary() const {
    HttpClient http;
    const auto response = http.send("GET", url() + "/_summary");
    REQUIRE(response.status == 200);
    return nlohmann::json::parse(response.body);
  }

 private:
  static std::vector<std::string> arguments(const std::filesystem::path& dir,
                                            const Options& options) {
    std::vector<std::string> args = {(dir / "port").string(),
                                     (dir / "requests.jsonl").string(),
                                     "--port",
                                     std::to_string(options.port),
                                     "--beat-ms",
                                     std::to_string(options.beat_ms)};
    if (!options.api_key.empty()) {
      args.push_back("--api-key");
      args.push_back(options.api_key);
    }
    return args;
  }

  std::filesystem::path log_;
  ScriptServer server_;
};

// check_archive.py of an archive: what it holds and the uploader's validation errors.
inline nlohmann::json check_archive(const std::filesystem::path& archive,
                                    bool deflated_ok = false) {
  std::vector<std::string> args;
  if (deflated_ok) args.push_back("--deflated-ok");
  args.push_back(archive.string());
  return nlohmann::json::parse(
      run_python_script(test_script("trackers/comet/check_archive.py"), args));
}

// `comet upload <archive>` of the pinned wheel against the server, in a sandbox: its own HOME (no
// ~/.comet.config), a dummy key, loopback only, no Sentry, no overrides of workspace/project.
inline ShellResult comet_upload(const std::filesystem::path& archive, const RecordingServer& server,
                                const TempDir& dir) {
  const std::string command =
      "cd " + shell_quote(dir.str()) +
      " && env -u COMET_WORKSPACE -u COMET_PROJECT_NAME -u COMET_CONFIG HOME=" +
      shell_quote(dir.str()) +
      " COMET_API_KEY=dummy COMET_ERROR_TRACKING_ENABLE=false COMET_DISABLE_ANNOUNCEMENT=true" +
      " COMET_URL_OVERRIDE=" + server.clientlib() + " " +
      shell_quote(std::string(ACCEL_SOURCE_DIR) + "/.venv/bin/comet") + " upload " +
      shell_quote(archive.string()) + " 2>&1";
  return run_shell(command);
}

inline nlohmann::json sorted(nlohmann::json list) {
  std::sort(list.begin(), list.end());
  return list;
}

inline Image gradient(int64_t h, int64_t w) {
  std::vector<uint8_t> px(static_cast<std::size_t>(h * w * 3));
  for (std::size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 7);
  return Image::from_uint8(px, h, w, 3);
}

// An upload as the comparisons see it: without the ids that differ between two runs.
inline nlohmann::json comparable_upload(nlohmann::json upload) {
  for (const char* id : {"assetId", "imageId", "experimentId", "runId", "projectId"}) {
    upload["query"].erase(id);
  }
  return upload;
}

// A summary's uploads by upload_type (uploads run on threads: their order is not fixed).
inline std::map<std::string, nlohmann::json> uploads_by_type(const nlohmann::json& summary) {
  std::map<std::string, nlohmann::json> out;
  for (const auto& u : summary["uploads"]) {
    out[u["upload_type"].get<std::string>()] = comparable_upload(u);
  }
  return out;
}

// What the comparisons log (7 calls: config, 4 logs, the finish; log_html and log_text beside);
// before_flush, when given, logs more just before the flush.
inline void log_sample_run(CometTracker& tracker,
                           const std::function<void(CometTracker&)>& before_flush = nullptr) {
  tracker.start();
  tracker.store_init_configuration({{"lr", 0.001},
                                    {"api_key", "ck-SECRET-123"},
                                    {"opt", {{"name", "adam"}, {"betas", {0.9, 0.999}}}},
                                    {"epochs", 3}});
  tracker.log({{"loss", 0.5}, {"correct", 17}}, 1);
  tracker.log({{"loss", std::numeric_limits<double>::quiet_NaN()}, {"note", "hello"}}, 2);
  tracker.log(
      {{"epoch", 1},
       {"loss", ScalarGroup{{{"train", 0.25}, {"val", std::numeric_limits<double>::infinity()}}}},
       {"picture", gradient(4, 5)},
       {"weights", Histogram::from_samples({1, 2, 3, 3, 4})}},
      3);
  tracker.log({{"later", 7}}, std::nullopt);  // sticky: step 3, epoch 1
  tracker.log_html("<b>bold</b>");
  tracker.log_text("some text", 4);
  if (before_flush) before_flush(tracker);
  tracker.flush();
  tracker.finish(RunStatus::finished);
}

// Keys and values longer than comet_ml's limits (100 characters for names and keys, 1000 for
// values, counted in code points): two metric names, two parameters (a string and a list whose
// compact JSON is longer than 1000) and two others (an object: key -> value), each name distinct in
// its first 88 characters.
inline nlohmann::json long_entries() {
  std::string accents;
  for (int i = 0; i < 10; ++i) accents += "\u00e9";  // é: 2 bytes, 1 code point
  std::string umlauts;
  for (int i = 0; i < 200; ++i) umlauts += "\u00fc";
  nlohmann::json list = nlohmann::json::array();
  for (int i = 0; i < 300; ++i) list.push_back(i);
  return {{"metrics", {std::string(95, 'm') + accents, std::string(150, 'n')}},
          {"parameters",
           {{std::string(120, 'p'), std::string(900, 'v') + umlauts}, {"long_list", list}}},
          {"others",
           {{std::string(130, 'o'), std::string(1200, 'w')}, {"short", std::string(1001, 'x')}}}};
}

// Logs long_entries() (at step 3, as log_sample_run's sticky step): the parameters as a second
// store_init_configuration, the metrics and others in one log call.
inline void log_long_entries(CometTracker& tracker) {
  const nlohmann::json long_ones = long_entries();
  tracker.store_init_configuration(long_ones["parameters"]);
  Values values;
  for (const auto& name : long_ones["metrics"]) values.set(name.get<std::string>(), 1.5);
  for (const auto& [key, value] : long_ones["others"].items()) {
    values.set(key, value.get<std::string>());
  }
  tracker.log(values, 3);
}

}  // namespace accel::test
