#pragma once
// What the wandb online and artifact tests share: the recording W&B server
// (recording_wandb_server.py on 127.0.0.1, checked against the pinned SDK by
// wandb_recording_server_test), an online W&B environment pointed at it, and finish() as the hub
// delivers it while the server may be away.
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/trackers/wandb/wandb_tracker.hpp"
#include "net/http_client.hpp"
#include "python.hpp"
#include "scoped_env.hpp"
#include "script_server.hpp"
#include "tracking_test_support.hpp"

namespace accel::test {

inline const std::string kApiKey(40, 'k');

// recording_wandb_server.py (state kept in <dir>/state.json, so a restart on the same port keeps
// what it received), stopped when the scope ends.
class RecordingServer {
 public:
  explicit RecordingServer(const std::filesystem::path& dir, int port = 0)
      : server_(test_script("trackers/wandb/recording_wandb_server.py"), dir / "port",
                {"--port", std::to_string(port), "--port-file", (dir / "port").string(),
                 "--state-file", (dir / "state.json").string()}) {}

  void stop() { server_.stop(); }
  int port() const { return server_.port(); }
  std::string url() const { return server_.url(); }

  nlohmann::json state() const {
    HttpClient http;
    const auto response = http.send("GET", url() + "/_state");
    REQUIRE(response.status == 200);
    // Python writes non-finite numbers as bare tokens (": Infinity"), which nlohmann::json does
    // not read: they become strings here (inside the stored lines, which are JSON strings
    // themselves, they have no space after the colon and stay as they are).
    std::string body = response.body;
    for (const std::string token : {"-Infinity", "Infinity", "NaN"}) {
      const std::string bare = ": " + token;
      for (auto at = body.find(bare); at != std::string::npos; at = body.find(bare, at + 3)) {
        body.replace(at, bare.size(), ": \"" + token + "\"");
      }
    }
    return nlohmann::json::parse(body);
  }
  // The next `count` requests under path_prefix are answered with `status`.
  void fail(int status, int count, const std::string& path_prefix) const {
    fail({{"status", status}, {"count", count}, {"path_prefix", path_prefix}});
  }
  // Any fault recording_wandb_server.py's /_fail takes ("operation", "after": see there).
  void fail(const nlohmann::json& fault) const {
    HttpClient http;
    REQUIRE(http.send("POST", url() + "/_fail", fault.dump()).status == 200);
  }

 private:
  ScriptServer server_;
};

// An online W&B environment for the scope, pointed at base_url.
struct OnlineEnv {
  explicit OnlineEnv(const std::string& base_url, const std::string& key = kApiKey)
      : base{"WANDB_BASE_URL", base_url.c_str()}, api_key{"WANDB_API_KEY", key.c_str()} {}
  ScopedEnv mode{"WANDB_MODE", "online"};
  ScopedEnv base;
  ScopedEnv api_key;
  ScopedEnv dir{"WANDB_DIR", nullptr};
  ScopedEnv id{"WANDB_RUN_ID", nullptr};
  ScopedEnv entity{"WANDB_ENTITY", nullptr};
  ScopedEnv netrc{"NETRC", "/nonexistent/netrc"};
};

// finish() as the hub delivers it: flush + finish, repeated while the server is away.
// A port on 127.0.0.1 where nothing listens: a recording server started under dir/probe and
// stopped again (what a server that is away looks like).
inline int unused_port(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir / "probe");
  RecordingServer probe(dir / "probe");
  return probe.port();
}

inline void finish_when_back(WandbTracker& tracker, RunStatus status) {
  for (int attempt = 0;; ++attempt) {
    try {
      tracker.flush();
      tracker.finish(status);
      return;
    } catch (const TrackerUnavailable&) {
      REQUIRE(attempt < 100);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
}

}  // namespace accel::test
