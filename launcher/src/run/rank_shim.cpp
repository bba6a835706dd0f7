#include "run/rank_shim.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "plan/launch_error.hpp"
#include "plan/machine_info.hpp"
#include "run/output_lines.hpp"
#include "run/rank_status.hpp"
#include "run/signal_pipe.hpp"
#include "run/write_all.hpp"

namespace accel::launch {
namespace {

namespace fs = std::filesystem;

constexpr int kForwardedSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
constexpr int kRunDirCheckMs = 100;

struct ShimOptions {
  fs::path run_dir;
  std::optional<fs::path> log_dir;
  int tee = 0;
  bool prefix = false;
  std::vector<char*> command;  // null-terminated
};

ShimOptions parse_options(int argc, char** argv) {
  ShimOptions options;
  int i = 0;
  for (; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg == "--run-dir" && i + 1 < argc) {
      options.run_dir = argv[++i];
    } else if (arg == "--log-dir" && i + 1 < argc) {
      options.log_dir = argv[++i];
    } else if (arg == "--tee" && i + 1 < argc) {
      options.tee = std::atoi(argv[++i]);
    } else if (arg == "--prefix") {
      options.prefix = true;
    } else {
      std::fprintf(stderr, "accel-launch --rank-shim: unexpected argument '%s'\n", arg.c_str());
      std::exit(2);
    }
  }
  for (; i < argc; ++i) options.command.push_back(argv[i]);
  if (options.command.empty()) {
    std::fprintf(stderr, "accel-launch --rank-shim: no program given after --\n");
    std::exit(2);
  }
  options.command.push_back(nullptr);
  return options;
}

int first_int_env(std::initializer_list<const char*> names, int fallback) {
  for (const char* name : names) {
    if (const char* value = std::getenv(name); value && *value) {
      char* end = nullptr;
      long parsed = std::strtol(value, &end, 10);
      if (end != value) return static_cast<int>(parsed);
    }
  }
  return fallback;
}

struct RankIdentity {
  int rank, world_size, local_rank, local_world_size;
};

// Rank variables of Open MPI, PMIx (srun --mpi=pmix), MPICH/Hydra and Slurm, exported under the
// names torch programs know.
RankIdentity export_rank_identity() {
  RankIdentity id{};
  id.rank = first_int_env({"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"}, 0);
  id.world_size = first_int_env({"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"}, 1);
  id.local_rank =
      first_int_env({"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"}, 0);
  id.local_world_size = first_int_env(
      {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"}, id.world_size);
  setenv("RANK", std::to_string(id.rank).c_str(), 1);
  setenv("WORLD_SIZE", std::to_string(id.world_size).c_str(), 1);
  setenv("LOCAL_RANK", std::to_string(id.local_rank).c_str(), 1);
  setenv("LOCAL_WORLD_SIZE", std::to_string(id.local_world_size).c_str(), 1);
  return id;
}

// One relayed stream of the program (stdout or stderr).
struct Stream {
  int from = -1;  // read end of the program's pipe; -1 once closed
  int to = -1;    // our own stdout/stderr
  std::ofstream log;
  LineSplitter splitter;
};

class Relay {
 public:
  Relay(const std::string& prefix, LastLines& last) : prefix_(prefix), last_(last) {}

  void emit(Stream& stream, const std::vector<std::string>& lines) {
    if (lines.empty()) return;
    std::string out;
    for (const auto& line : lines) {
      last_.add(line);
      if (stream.log.is_open() && !is_redraw(line)) stream.log << line;
      out += prefix_;
      out += line;
    }
    if (stream.log.is_open()) stream.log.flush();
    write_all(stream.to, out);
  }

  // Reads what is available; returns false at end of stream.
  bool pump(Stream& stream) {
    char buffer[65536];
    ssize_t n = read(stream.from, buffer, sizeof(buffer));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
    if (n <= 0) {
      finish(stream);
      return false;
    }
    emit(stream, stream.splitter.feed(std::string_view(buffer, static_cast<std::size_t>(n))));
    return true;
  }

  void finish(Stream& stream) {
    if (stream.from < 0) return;
    std::string rest = stream.splitter.take_rest();
    if (!rest.empty()) emit(stream, {rest + "\n"});
    close(stream.from);
    stream.from = -1;
  }

 private:
  std::string prefix_;
  LastLines& last_;
};

// The signal to pass on for `received`: a SIGTERM that mpirun sends while the launcher is
// handling the user's Ctrl-C becomes that SIGINT again.
int signal_to_forward(int received, const fs::path& run_dir) {
  if (received != SIGTERM) return received;
  std::ifstream in(run_dir / "interrupt");
  int requested = 0;
  if (in >> requested && requested > 0 && requested < NSIG) return requested;
  return received;
}

// A stop the supervisor asks for through the run folder: the user's signal (written to
// "interrupt"), or SIGTERM once another rank has failed (its rank<N>.json exists). 0 = none.
int stop_requested_by_run_dir(const fs::path& run_dir, int own_rank) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(run_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name == "interrupt") return signal_to_forward(SIGTERM, run_dir);
    if (name.starts_with("rank") && name.ends_with(".json") &&
        name != fmt::format("rank{}.json", own_rank)) {
      return SIGTERM;
    }
  }
  return 0;
}

std::int64_t now_unix_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

[[noreturn]] void exec_program(ShimOptions& options, int out_write, int err_write) {
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  dup2(out_write, STDOUT_FILENO);
  dup2(err_write, STDERR_FILENO);
  close(out_write);
  close(err_write);
  for (int signal : kForwardedSignals) std::signal(signal, SIG_DFL);
  std::signal(SIGPIPE, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  execvp(options.command[0], options.command.data());
  const int error = errno;
  const std::string message = fmt::format("accel-launch: cannot start '{}': {}\n",
                                          options.command[0], std::strerror(error));
  write_all(STDERR_FILENO, message);
  _exit(error == ENOENT ? 127 : 126);
}

}  // namespace

int run_rank_shim(int argc, char** argv) {
  ShimOptions options = parse_options(argc, argv);
  const RankIdentity id = export_rank_identity();
  const pid_t parent = getppid();

  std::optional<SignalPipe> signals;
  try {
    signals.emplace(kForwardedSignals);
  } catch (const LaunchError&) {
    return 1;
  }

  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) return 1;

  const pid_t child = fork();
  if (child < 0) {
    std::perror("accel-launch --rank-shim: fork");
    return 1;
  }
  if (child == 0) exec_program(options, out_pipe[1], err_pipe[1]);
  setpgid(child, child);
  close(out_pipe[1]);
  close(err_pipe[1]);

  Stream streams[2];
  streams[0].from = out_pipe[0];
  streams[0].to = STDOUT_FILENO;
  streams[1].from = err_pipe[0];
  streams[1].to = STDERR_FILENO;
  if (options.log_dir) {
    std::error_code ec;
    fs::create_directories(*options.log_dir, ec);
    if (options.tee & 1) {
      streams[0].log.open(*options.log_dir / fmt::format("rank{}.stdout.log", id.rank));
    }
    if (options.tee & 2) {
      streams[1].log.open(*options.log_dir / fmt::format("rank{}.stderr.log", id.rank));
    }
  }
  LastLines last_lines;
  Relay relay(options.prefix ? fmt::format("[rank {}] ", id.rank) : std::string(), last_lines);

  int stop_signal = 0;  // the first stop request passed on to the program
  bool parent_lost = false;
  std::optional<int> wait_status;
  auto request_stop = [&](int signal) {
    if (stop_signal != 0) return;  // one stop request; mpirun's own SIGKILL follows if needed
    stop_signal = signal;
    kill(-child, signal);
  };
  auto handle_signals = [&] {
    while (const auto signal = signals->next()) {
      if (*signal == SIGINT || *signal == SIGTERM) {
        request_stop(signal_to_forward(*signal, options.run_dir));
      } else {
        kill(-child, *signal);
      }
    }
  };
  auto reap = [&](int flags) {
    if (wait_status) return;
    int status = 0;
    if (waitpid(child, &status, flags) == child) wait_status = status;
  };
  auto last_run_dir_check = std::chrono::steady_clock::now();

  // Readable when the program exits (-1 on old kernels: the poll timeout then bounds the delay).
  const int child_fd = static_cast<int>(syscall(SYS_pidfd_open, child, 0));
  while (!wait_status) {
    pollfd fds[4] = {{signals->read_fd(), POLLIN, 0},
                     {streams[0].from, POLLIN, 0},
                     {streams[1].from, POLLIN, 0},
                     {child_fd, POLLIN, 0}};
    int ready = poll(fds, 4, kRunDirCheckMs);
    if (ready < 0 && errno != EINTR) break;
    if (fds[0].revents & POLLIN) handle_signals();
    for (int s = 0; s < 2; ++s) {
      if (streams[s].from >= 0 && (fds[s + 1].revents & (POLLIN | POLLHUP | POLLERR))) {
        relay.pump(streams[s]);
      }
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - last_run_dir_check >= std::chrono::milliseconds(kRunDirCheckMs)) {
      last_run_dir_check = now;
      if (stop_signal == 0) {
        if (int requested = stop_requested_by_run_dir(options.run_dir, id.rank)) {
          request_stop(requested);
        }
      }
      if (getppid() != parent && !parent_lost) {
        parent_lost = true;  // mpirun/srun is gone: nobody will collect this rank
        kill(-child, SIGKILL);
      }
    }
    reap(WNOHANG);
  }
  if (child_fd >= 0) close(child_fd);
  // Output that is still buffered in the pipes (grandchildren may keep them open: don't wait).
  for (auto& stream : streams) {
    if (stream.from < 0) continue;
    fcntl(stream.from, F_SETFL, O_NONBLOCK);
    while (relay.pump(stream)) {
      pollfd fd{stream.from, POLLIN, 0};
      if (poll(&fd, 1, 0) <= 0) break;
    }
    relay.finish(stream);
  }

  const int status = wait_status.value_or(0);
  RankStatus record;
  record.rank = id.rank;
  record.world_size = id.world_size;
  record.host = host_name();
  record.pid = child;
  if (WIFSIGNALED(status)) {
    record.signal = WTERMSIG(status);
  } else {
    record.exit_code = WEXITSTATUS(status);
  }
  record.forwarded_signal = stop_signal;
  record.parent_lost = parent_lost;
  record.finished_unix_ns = now_unix_ns();
  record.last_lines = last_lines.lines();
  if (record.signal || record.exit_code != 0) write_rank_status(options.run_dir, record);

  if (record.signal) {
    prctl(PR_SET_DUMPABLE, 0);  // the program may have dumped core; the shim must not
    std::signal(*record.signal, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    raise(*record.signal);
    return 128 + *record.signal;  // signals whose default is to be ignored
  }
  return *record.exit_code;
}

}  // namespace accel::launch
