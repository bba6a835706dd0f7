#include "run/supervisor.hpp"

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
#include <cstring>
#include <fstream>
#include <optional>

#include "plan/launch_error.hpp"
#include "run/mpirun_messages.hpp"
#include "run/rank_status.hpp"
#include "run/signal_pipe.hpp"
#include "run/write_all.hpp"

namespace accel::launch {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kInterruptSignals[] = {SIGINT, SIGTERM, SIGHUP};
constexpr int kPollMs = 100;

[[noreturn]] void exec_job(const MpirunArgv& job, int stderr_write, pid_t supervisor) {
  setpgid(0, 0);
  // accel-launch dying in any way (SIGKILL by the OOM killer or a scheduler included) kills
  // mpirun/srun; the shims then see their parent gone and SIGKILL their programs.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != supervisor) _exit(128 + SIGKILL);  // it died before the line above
  dup2(stderr_write, STDERR_FILENO);
  close(stderr_write);
  // mpirun now runs in a background process group: a terminal on stdin would stop it (SIGTTIN).
  if (isatty(STDIN_FILENO)) {
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, STDIN_FILENO);
  }
  if (job.via_slurm) {
    for (const auto& [name, value] : job.environment) setenv(name.c_str(), value.c_str(), 1);
  }
  for (int signal : kInterruptSignals) std::signal(signal, SIG_DFL);
  std::signal(SIGPIPE, SIG_DFL);
  std::vector<char*> argv;
  for (const auto& arg : job.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  execv(argv[0], argv.data());
  const std::string message =
      fmt::format("accel-launch: cannot start '{}': {}\n", job.argv[0], std::strerror(errno));
  write_all(STDERR_FILENO, message);
  _exit(127);
}

std::string indent_lines(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& line : lines) text += fmt::format("    | {}\n", line);
  return text;
}

constexpr const char* kRule =
    "========================================================================\n";

std::string failure_summary(const RankStatus& failed, const std::vector<RankStatus>& all,
                            const SupervisorOptions& options, int exit_status) {
  std::string text = kRule;
  text += fmt::format("accel-launch: job failed: rank {} (of {}) on host {} {}\n", failed.rank,
                      options.num_processes, failed.host.empty() ? "?" : failed.host,
                      describe_end(failed));
  text += fmt::format("  program: {}\n", options.program_line);
  if (failed.last_lines.empty()) {
    text += fmt::format("  rank {} printed nothing.\n", failed.rank);
  } else {
    text += fmt::format("  last {} lines of rank {}:\n", failed.last_lines.size(), failed.rank);
    text += indent_lines(failed.last_lines);
  }
  int stopped = 0;
  for (const auto& status : all) stopped += (status.rank != failed.rank);
  text +=
      fmt::format("  every other rank was stopped ({} of them ended by the teardown);\n", stopped);
  text += fmt::format("  accel-launch exits with rank {}'s status {}.\n", failed.rank, exit_status);
  text += kRule;
  return text;
}

}  // namespace

int supervise(const MpirunArgv& job, const SupervisorOptions& options) {
  std::optional<SignalPipe> signals(std::in_place, kInterruptSignals);
  int stderr_pipe[2];
  if (pipe2(stderr_pipe, O_CLOEXEC) != 0) {
    throw LaunchError(fmt::format("cannot create pipes: {}", std::strerror(errno)));
  }

  const pid_t supervisor = getpid();
  const pid_t launcher = fork();
  if (launcher < 0) throw LaunchError(fmt::format("cannot fork: {}", std::strerror(errno)));
  if (launcher == 0) exec_job(job, stderr_pipe[1], supervisor);
  setpgid(launcher, launcher);
  close(stderr_pipe[1]);

  MpirunMessageFilter filter(options.debug);
  int stderr_fd = stderr_pipe[0];
  int interrupt_signal = 0;
  constexpr Clock::time_point kNever = Clock::time_point::max();
  Clock::time_point escalate_at = kNever;  // interrupt: then ask mpirun/srun to abort
  Clock::time_point kill_deadline = kNever;
  bool killed = false;
  bool failure_seen = false;
  std::optional<int> wait_status;

  auto kill_job = [&] {
    if (killed) return;
    killed = true;
    kill(-launcher, SIGKILL);
  };

  // Readable when mpirun/srun exits, so the supervisor returns at once (-1 on old kernels: the
  // poll timeout then bounds the delay).
  const int launcher_fd = static_cast<int>(syscall(SYS_pidfd_open, launcher, 0));
  while (!wait_status || stderr_fd >= 0) {
    pollfd fds[3] = {{signals->read_fd(), POLLIN, 0},
                     {stderr_fd, POLLIN, 0},
                     {wait_status ? -1 : launcher_fd, POLLIN, 0}};
    const int ready = poll(fds, 3, wait_status ? 0 : kPollMs);
    if (ready < 0 && errno != EINTR) break;

    while (const auto signal = signals->next()) {
      if (wait_status) continue;
      if (interrupt_signal == 0) {
        interrupt_signal = *signal;
        std::ofstream(options.run_dir / "interrupt") << interrupt_signal << '\n';
        write_all(STDERR_FILENO,
                  fmt::format("accel-launch: {} received: stopping every rank (again to kill "
                              "them at once)\n",
                              signal_name(interrupt_signal)));
        escalate_at = Clock::now() + std::chrono::seconds(kGracefulStopSeconds);
        kill_deadline =
            std::min(kill_deadline, Clock::now() + std::chrono::seconds(kTeardownSeconds));
      } else {
        write_all(STDERR_FILENO, "accel-launch: second interrupt: killing the job\n");
        kill_job();
      }
    }

    if (stderr_fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      char buffer[65536];
      const ssize_t n = read(stderr_fd, buffer, sizeof(buffer));
      if (n > 0) {
        write_all(STDERR_FILENO,
                  filter.feed(std::string_view(buffer, static_cast<std::size_t>(n))));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        write_all(STDERR_FILENO, filter.finish());
        close(stderr_fd);
        stderr_fd = -1;
      }
    } else if (wait_status && stderr_fd >= 0 && ready == 0) {
      // mpirun is gone but something it started still holds the pipe: stop reading.
      write_all(STDERR_FILENO, filter.finish());
      close(stderr_fd);
      stderr_fd = -1;
    }

    if (!wait_status) {
      int status = 0;
      if (waitpid(launcher, &status, WNOHANG) == launcher) wait_status = status;
    }
    if (!wait_status && !failure_seen && !read_rank_statuses(options.run_dir).empty()) {
      failure_seen = true;
      kill_deadline =
          std::min(kill_deadline, Clock::now() + std::chrono::seconds(kTeardownSeconds));
    }
    if (!wait_status && Clock::now() >= escalate_at) {
      escalate_at = kNever;
      kill(launcher, SIGTERM);  // mpirun: SIGTERM to every rank, SIGKILL a second later
    }
    if (!wait_status && !killed && Clock::now() >= kill_deadline) {
      write_all(STDERR_FILENO, fmt::format("accel-launch: the job did not stop within {} s; "
                                           "killing it\n",
                                           kTeardownSeconds));
      kill_job();
    }
  }
  if (!wait_status) {
    int status = 0;
    while (waitpid(launcher, &status, 0) < 0 && errno == EINTR) {
    }
    wait_status = status;
  }
  signals.reset();  // default signal actions again while the summary is written
  if (launcher_fd >= 0) close(launcher_fd);

  const int launcher_status =
      WIFEXITED(*wait_status) ? WEXITSTATUS(*wait_status) : 128 + WTERMSIG(*wait_status);
  const std::vector<RankStatus> statuses = read_rank_statuses(options.run_dir);
  const std::optional<RankStatus> failed = first_failure(statuses);

  if (interrupt_signal != 0 && !(failed && failed->failed_by_itself())) {
    write_all(STDERR_FILENO,
              fmt::format("accel-launch: job stopped by {}\n", signal_name(interrupt_signal)));
    return 128 + interrupt_signal;
  }
  if (failed) {
    const int status = failed->shell_status();
    write_all(STDERR_FILENO, failure_summary(*failed, statuses, options, status));
    return status == 0 ? 1 : status;
  }
  if (launcher_status == 0) return 0;

  // No status file: the failure happened on a machine whose run folder we cannot see, or
  // before any rank started.
  std::string text = kRule;
  const MpirunFailureReport& report = filter.failure();
  int status = launcher_status;
  if (filter.not_enough_slots()) {
    text += fmt::format(
        "accel-launch: mpirun refused to start {} processes: there are fewer slots (CPU cores) "
        "than that. Pass --oversubscribe to run more processes than cores, lower "
        "--num_processes, or add machines with --mpirun_hostfile.\n",
        options.num_processes);
  } else if (report.rank) {
    RankStatus reported;
    reported.rank = *report.rank;
    reported.host = report.host;
    reported.exit_code = report.exit_code;
    reported.signal = report.signal;
    if (!reported.exit_code && !reported.signal) reported.exit_code = launcher_status;
    status = reported.shell_status();
    text += fmt::format("accel-launch: job failed: rank {} (of {}) on host {} {}\n", reported.rank,
                        options.num_processes, reported.host.empty() ? "?" : reported.host,
                        describe_end(reported));
    text += fmt::format(
        "  program: {}\n  (its output is above; the rank ran where its status "
        "file is not visible)\n",
        options.program_line);
  } else {
    text += fmt::format(
        "accel-launch: {} failed with exit status {} before any rank reported; "
        "its messages are above (rerun with --debug for all of them)\n",
        job.via_slurm ? "srun" : "mpirun", launcher_status);
  }
  text += kRule;
  write_all(STDERR_FILENO, text);
  return status == 0 ? 1 : status;
}

}  // namespace accel::launch
