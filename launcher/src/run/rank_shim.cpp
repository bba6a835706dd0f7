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
#include <optional>
#include <string>
#include <vector>

#include "plan/launch_error.hpp"
#include "plan/machine_info.hpp"
#include "run/program_output.hpp"
#include "run/rank_status.hpp"
#include "run/signal_forwarding.hpp"
#include "run/signal_pipe.hpp"
#include "run/write_all.hpp"

namespace accel::launch {
namespace {

namespace fs = std::filesystem;

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

// The program, started in its own process group with its stdout and stderr into pipes.
struct StartedProgram {
  pid_t pid;
  int stdout_fd;  // read ends
  int stderr_fd;
};

std::optional<StartedProgram> start_program(ShimOptions& options) {
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) return std::nullopt;

  const pid_t child = fork();
  if (child < 0) {
    std::perror("accel-launch --rank-shim: fork");
    return std::nullopt;
  }
  if (child == 0) exec_program(options, out_pipe[1], err_pipe[1]);
  setpgid(child, child);
  close(out_pipe[1]);
  close(err_pipe[1]);
  return StartedProgram{child, out_pipe[0], err_pipe[0]};
}

// How the program ended, as the shim saw it.
struct ProgramEnd {
  int wait_status = 0;
  bool parent_lost = false;  // mpirun/srun vanished and the shim killed the program
};

// Relays the program's output and passes signals and stop requests on until the program exits;
// every kRunDirCheckMs checks the run folder and whether mpirun/srun (`parent`) is still there.
ProgramEnd watch_program(pid_t child, pid_t parent, const SignalPipe& signals,
                         ProgramOutput& output, SignalForwarder& forwarder) {
  std::optional<int> wait_status;
  bool parent_lost = false;
  auto last_run_dir_check = std::chrono::steady_clock::now();

  // Readable when the program exits (-1 on old kernels: the poll timeout then bounds the delay).
  const int child_fd = static_cast<int>(syscall(SYS_pidfd_open, child, 0));
  while (!wait_status) {
    pollfd fds[4] = {{signals.read_fd(), POLLIN, 0},
                     {output.fd(ProgramOutput::kStdout), POLLIN, 0},
                     {output.fd(ProgramOutput::kStderr), POLLIN, 0},
                     {child_fd, POLLIN, 0}};
    int ready = poll(fds, 4, kRunDirCheckMs);
    if (ready < 0 && errno != EINTR) break;
    if (fds[0].revents & POLLIN) forwarder.forward_pending(signals);
    for (int s = 0; s < 2; ++s) {
      if (output.fd(s) >= 0 && (fds[s + 1].revents & (POLLIN | POLLHUP | POLLERR))) {
        output.pump(s);
      }
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - last_run_dir_check >= std::chrono::milliseconds(kRunDirCheckMs)) {
      last_run_dir_check = now;
      forwarder.check_run_dir();
      if (getppid() != parent && !parent_lost) {
        parent_lost = true;  // mpirun/srun is gone: nobody will collect this rank
        kill(-child, SIGKILL);
      }
    }
    int status = 0;
    if (waitpid(child, &status, WNOHANG) == child) wait_status = status;
  }
  if (child_fd >= 0) close(child_fd);
  return {wait_status.value_or(0), parent_lost};
}

RankStatus rank_record(const RankIdentity& id, pid_t child, const ProgramEnd& end,
                       int forwarded_signal, std::vector<std::string> last_lines) {
  RankStatus record;
  record.rank = id.rank;
  record.world_size = id.world_size;
  record.host = host_name();
  record.pid = child;
  if (WIFSIGNALED(end.wait_status)) {
    record.signal = WTERMSIG(end.wait_status);
  } else {
    record.exit_code = WEXITSTATUS(end.wait_status);
  }
  record.forwarded_signal = forwarded_signal;
  record.parent_lost = end.parent_lost;
  record.finished_unix_ns = now_unix_ns();
  record.last_lines = std::move(last_lines);
  return record;
}

// Ends the shim the way the program ended: re-raises its signal, else returns its exit code.
int end_as_program_did(const RankStatus& record) {
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

  const std::optional<StartedProgram> program = start_program(options);
  if (!program) return 1;
  ProgramOutput output(program->stdout_fd, program->stderr_fd,
                       options.prefix ? fmt::format("[rank {}] ", id.rank) : std::string());
  if (options.log_dir) output.open_logs(*options.log_dir, options.tee, id.rank);
  SignalForwarder forwarder(program->pid, options.run_dir, id.rank);

  const ProgramEnd end = watch_program(program->pid, parent, *signals, output, forwarder);
  // Output that is still buffered in the pipes (grandchildren may keep them open: don't wait).
  output.drain();

  const RankStatus record =
      rank_record(id, program->pid, end, forwarder.stop_signal(), output.last_lines());
  if (record.signal || record.exit_code != 0) write_rank_status(options.run_dir, record);
  return end_as_program_did(record);
}

}  // namespace accel::launch
