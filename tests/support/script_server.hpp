#pragma once
// A test server written in Python (the recording W&B and Comet servers): `.venv/bin/python
// <script> <args...>` started as a child process, waited for until it has written its port into
// `port_file` (the script writes the file whole, by rename, once it listens), and stopped with
// SIGTERM by its PID (and waited for) when the object goes or stop() is called.
#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace accel::test {

class ScriptServer {
 public:
  // Fails the test (REQUIRE) when the script cannot start or writes no port within 20 s.
  ScriptServer(const std::filesystem::path& script, const std::filesystem::path& port_file,
               const std::vector<std::string>& args);
  ~ScriptServer();
  ScriptServer(const ScriptServer&) = delete;
  ScriptServer& operator=(const ScriptServer&) = delete;

  void stop();
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace accel::test
