#pragma once
// What the comet_ml tests share: recording_comet_server.py started and stopped by PID
// (RecordingServer), the real `comet upload` of the pinned wheel into it (comet_upload), what it
// received (RecordingServer::summary, upload_summary.py's shape), check_archive.py, and the sample
// run every comparison logs (log_sample_run).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <limits>
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

// What the comparisons log (7 calls: config, 4 logs, the finish; log_html and log_text beside).
inline void log_sample_run(CometTracker& tracker) {
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
  tracker.flush();
  tracker.finish(RunStatus::finished);
}

}  // namespace accel::test
