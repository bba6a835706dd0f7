#pragma once
// Running the built accel-launch from tests: a child process with its own environment, stdout
// and stderr captured to files, a time limit (killed by PID when exceeded) and an optional action
// while it runs (send it a signal once the ranks have started).
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "temp_dir.hpp"

extern char** environ;

namespace accel::launch::testing {

namespace fs = std::filesystem;

using accel::test::TempDir;  // a fresh folder under /tmp, removed with the object

inline std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

inline void write_file(const fs::path& path, const std::string& text) {
  std::ofstream(path) << text;
}

// KEY=VALUE lines of a probe's rank<N>.env file.
inline std::map<std::string, std::string> read_env_file(const fs::path& path) {
  std::map<std::string, std::string> values;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) values[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return values;
}

struct LaunchResult {
  int exit_status = -1;  // exit code, or 128 + signal
  std::string out;
  std::string err;
  double seconds = 0;
  double seconds_after_action = 0;  // from the end of `while_running` to the exit
  bool timed_out = false;
};

struct LaunchOptions {
  std::map<std::string, std::optional<std::string>> env = {};  // nullopt removes a variable
  double timeout_seconds = 60;
  // Runs once after the start with the child's PID; returns when its work is done.
  std::function<void(pid_t)> while_running = {};
};

inline bool wait_for_files(const fs::path& dir, const std::vector<std::string>& names,
                           double seconds) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int>(seconds * 1000));
  while (std::chrono::steady_clock::now() < deadline) {
    bool all = true;
    for (const auto& name : names) all = all && fs::exists(dir / name);
    if (all) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// Runs `program args` (argv[0] = program) with the test's environment changed by options.env.
// HF_HOME points to an empty folder unless options.env sets it, so that no user config leaks in.
inline LaunchResult run_command(const std::vector<std::string>& argv, LaunchOptions options = {}) {
  TempDir capture;
  TempDir empty_home;
  if (!options.env.count("HF_HOME")) options.env["HF_HOME"] = empty_home.str();
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string entry = *e;
    const auto eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  for (const auto& [name, value] : options.env) {
    if (value) {
      env[name] = *value;
    } else {
      env.erase(name);
    }
  }
  std::vector<std::string> env_entries;
  for (const auto& [name, value] : env) env_entries.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (auto& entry : env_entries) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argp;
  for (auto& arg : args) argp.push_back(arg.data());
  argp.push_back(nullptr);
  const std::string out_path = (capture / "out").string();
  const std::string err_path = (capture / "err").string();

  const auto start = std::chrono::steady_clock::now();
  const pid_t child = fork();
  if (child == 0) {
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int null = open("/dev/null", O_RDONLY);
    dup2(out, 1);
    dup2(err, 2);
    dup2(null, 0);
    execve(argp[0], argp.data(), envp.data());
    _exit(127);
  }
  LaunchResult result;
  auto action_done = std::chrono::steady_clock::now();
  if (options.while_running) {
    options.while_running(child);
    action_done = std::chrono::steady_clock::now();
  }
  const auto deadline =
      start + std::chrono::milliseconds(static_cast<int>(options.timeout_seconds * 1000));
  int status = 0;
  while (true) {
    const pid_t done = waitpid(child, &status, WNOHANG);
    if (done == child) break;
    if (std::chrono::steady_clock::now() > deadline) {
      result.timed_out = true;
      kill(child, SIGKILL);
      waitpid(child, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto end = std::chrono::steady_clock::now();
  result.seconds = std::chrono::duration<double>(end - start).count();
  result.seconds_after_action = std::chrono::duration<double>(end - action_done).count();
  result.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = read_file(out_path);
  result.err = read_file(err_path);
  return result;
}

inline LaunchResult run_accel_launch(std::vector<std::string> args, LaunchOptions options = {}) {
  args.insert(args.begin(), ACCEL_LAUNCH_EXE);
  return run_command(args, std::move(options));
}

// Whether `pid` is a process that has not ended (a zombie counts as ended).
inline bool process_running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');
  if (paren == std::string::npos || paren + 2 >= text.size()) return false;
  return text[paren + 2] != 'Z' && text[paren + 2] != 'X';
}

// Every live descendant of `root` (children, their children, ...), from /proc.
inline std::vector<pid_t> descendants(pid_t root) {
  std::map<pid_t, std::vector<pid_t>> children;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto paren = text.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream rest(text.substr(paren + 2));
    char state = 0;
    pid_t parent = 0;
    rest >> state >> parent;
    children[parent].push_back(static_cast<pid_t>(std::stol(name)));
  }
  std::vector<pid_t> found;
  std::vector<pid_t> todo{root};
  while (!todo.empty()) {
    const pid_t pid = todo.back();
    todo.pop_back();
    for (pid_t child : children[pid]) {
      found.push_back(child);
      todo.push_back(child);
    }
  }
  return found;
}

inline std::string host_name() {
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return name;
}

}  // namespace accel::launch::testing
