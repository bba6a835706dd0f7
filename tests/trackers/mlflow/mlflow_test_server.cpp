#include "mlflow_test_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "net/http_client.hpp"
#include "python.hpp"

extern char** environ;

namespace accel::test {

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot bind a free port on 127.0.0.1");
  }
  socklen_t length = sizeof(address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

MlflowServer::MlflowServer(Options options) : options_(std::move(options)) {
  if (options_.port == 0) options_.port = free_port();
}

MlflowServer::~MlflowServer() {
  try {
    stop();
  } catch (...) {
  }
}

std::string MlflowServer::uri() const {
  return "http://127.0.0.1:" + std::to_string(options_.port);
}

std::string MlflowServer::log_tail() const {
  std::ifstream in(options_.store_dir / "server.log");
  std::stringstream text;
  text << in.rdbuf();
  std::string all = text.str();
  return all.size() > 4000 ? all.substr(all.size() - 4000) : all;
}

void MlflowServer::start(std::chrono::seconds timeout) {
  if (pid_ > 0) return;
  const auto& dir = options_.store_dir;
  std::filesystem::create_directories(dir / "artifacts");
  std::vector<std::string> args = {python_interpreter().string(), "-m", "mlflow", "server"};
  if (options_.basic_auth) {
    args.insert(args.end(), {"--app-name", "basic-auth"});
  }
  args.insert(args.end(), {"--backend-store-uri", "sqlite:///" + (dir / "mlflow.db").string(),
                           "--artifacts-destination", (dir / "artifacts").string(), "--host",
                           "127.0.0.1", "--port", std::to_string(options_.port), "--workers", "1"});

  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string entry(*e);
    auto eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  // The server must not read the client's settings.
  for (const char* name :
       {"MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_TRACKING_TOKEN", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_TAGS"}) {
    env.erase(name);
  }
  env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false";
  env["MLFLOW_DISABLE_TELEMETRY"] = "true";
  env["DO_NOT_TRACK"] = "true";
  env["PYTHONUNBUFFERED"] = "1";
  for (const auto& [k, v] : options_.environment) env[k] = v;

  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const std::string log_path = (dir / "server.log").string();
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attributes, 0);  // its own group, so stop() reaches its workers
  const int rc = posix_spawn(&pid_, argv[0], &actions, &attributes, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (rc != 0) {
    pid_ = -1;
    throw std::runtime_error("cannot start mlflow server: " + std::string(strerror(rc)));
  }

  HttpOptions http_options;
  http_options.connect_timeout = std::chrono::milliseconds(1000);
  http_options.request_timeout = std::chrono::milliseconds(2000);
  HttpClient http(http_options);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("mlflow server exited during start-up:\n" + log_tail());
    }
    try {
      if (http.send("GET", uri() + "/health").status == 200) return;
    } catch (const HttpTransportError&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  stop();
  throw std::runtime_error("mlflow server did not answer /health in time:\n" + log_tail());
}

void MlflowServer::wait_exit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      // Workers of the group may outlive the parent for a moment; make sure they are gone.
      ::kill(-pid_, SIGKILL);
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(-pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void MlflowServer::kill_hard() {
  if (pid_ <= 0) return;
  ::kill(-pid_, SIGKILL);
  wait_exit(std::chrono::seconds(10));
}

void MlflowServer::stop() {
  if (pid_ <= 0) return;
  ::kill(-pid_, SIGTERM);
  wait_exit(std::chrono::seconds(10));
}

nlohmann::json read_runs(const std::string& uri, const std::vector<std::string>& run_ids) {
  std::vector<std::string> args = {uri};
  args.insert(args.end(), run_ids.begin(), run_ids.end());
  std::string out = run_python_script(test_script("trackers/mlflow/read_run.py"), args);
  // The JSON document is the last line; mlflow may print warnings before it.
  auto start = out.rfind("\n{");
  return nlohmann::json::parse(start == std::string::npos ? out : out.substr(start + 1));
}

}  // namespace accel::test
