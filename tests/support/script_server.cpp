#include "script_server.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <thread>

#include "python.hpp"

namespace accel::test {

namespace {

int read_port(const std::filesystem::path& port_file) {
  std::ifstream in(port_file);
  int port = 0;
  in >> port;
  return in ? port : 0;
}

}  // namespace

ScriptServer::ScriptServer(const std::filesystem::path& script,
                           const std::filesystem::path& port_file,
                           const std::vector<std::string>& args) {
  std::filesystem::remove(port_file);
  const std::string python = python_interpreter().string();
  std::vector<std::string> argv_text = {python, script.string()};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& arg : argv_text) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_ = ::fork();
  REQUIRE(pid_ >= 0);
  if (pid_ == 0) {
    ::execv(python.c_str(), argv.data());
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((port_ = read_port(port_file)) == 0) {
    int status = 0;
    INFO("server script: " << script);
    REQUIRE(::waitpid(pid_, &status, WNOHANG) == 0);  // it must not have exited
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

ScriptServer::~ScriptServer() {
  stop();
}

void ScriptServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

}  // namespace accel::test
