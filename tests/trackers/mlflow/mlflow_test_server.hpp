#pragma once
// Test support: a real `mlflow server` on 127.0.0.1 (sqlite store + served artifacts in a temporary
// directory), started from .venv, waited for on /health, and stopped by PID (its own process
// group), plus helpers to read a run back with the mlflow Python client (read_run.py).
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "python.hpp"
#include "temp_dir.hpp"

namespace accel::test {

int free_port();

class MlflowServer {
 public:
  struct Options {
    std::filesystem::path store_dir;                 // mlflow.db + artifacts/ live here
    int port = 0;                                    // 0: pick a free one
    bool basic_auth = false;                         // --app-name basic-auth
    std::map<std::string, std::string> environment;  // added to the server's environment
  };
  explicit MlflowServer(Options options);
  explicit MlflowServer(std::filesystem::path store_dir)
      : MlflowServer(options_in(std::move(store_dir))) {}
  static Options options_in(std::filesystem::path store_dir) {
    Options options;
    options.store_dir = std::move(store_dir);
    return options;
  }
  ~MlflowServer();  // stops the server if it runs
  MlflowServer(const MlflowServer&) = delete;
  MlflowServer& operator=(const MlflowServer&) = delete;

  void start(
      std::chrono::seconds timeout = std::chrono::seconds(90));  // returns once /health is 200
  void kill_hard();  // SIGKILL to the whole process group, as a crash would
  void stop();       // SIGTERM, then SIGKILL after 10 s
  bool running() const { return pid_ > 0; }
  std::string uri() const;
  int port() const { return options_.port; }
  std::string log_tail() const;

 private:
  void wait_exit(std::chrono::milliseconds timeout);
  Options options_;
  pid_t pid_ = -1;
};

// read_run.py for several runs in one Python start-up: {run_id: run, ...}, where a run is
// {"info": {...}, "params": {...}, "tags": {...}, "metrics": {key: [[step, value, timestamp],
// ...]},
//  "artifacts": {path: {"size": n, "text": "..."?, "npy_shape": [...]?, "png_shape": [...]?}}}
nlohmann::json read_runs(const std::string& uri, const std::vector<std::string>& run_ids);
inline nlohmann::json read_run(const std::string& uri, const std::string& run_id) {
  return read_runs(uri, {run_id}).at(run_id);
}

}  // namespace accel::test
