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
#include "run/failure_summary.hpp"
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
constexpr Clock::time_point kNever = Clock::time_point::max();

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

// mpirun/srun, started in its own process group: its pid and the read end of its stderr.
struct StartedJob {
  pid_t launcher;
  int stderr_fd;
};

StartedJob start_job(const MpirunArgv& job) {
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
  return {launcher, stderr_pipe[0]};
}

// Watches a started job until it has ended: relays its stderr through the message filter, turns
// the user's signals into a graceful stop, then an abort, then a kill, and tears the job down
// once a rank has failed (see supervisor.hpp).
class JobWatch {
 public:
  JobWatch(StartedJob started, const SupervisorOptions& options)
      : options_(options),
        launcher_(started.launcher),
        stderr_fd_(started.stderr_fd),
        filter_(options.debug),
        // Readable when mpirun/srun exits, so the supervisor returns at once (-1 on old kernels:
        // the poll timeout then bounds the delay).
        launcher_fd_(static_cast<int>(syscall(SYS_pidfd_open, launcher_, 0))) {}
  ~JobWatch() {
    if (launcher_fd_ >= 0) close(launcher_fd_);
  }
  JobWatch(const JobWatch&) = delete;
  JobWatch& operator=(const JobWatch&) = delete;

  // Returns mpirun/srun's wait status once it has exited and its stderr is closed.
  int watch(const SignalPipe& signals) {
    while (!wait_status_ || stderr_fd_ >= 0) {
      pollfd fds[3] = {{signals.read_fd(), POLLIN, 0},
                       {stderr_fd_, POLLIN, 0},
                       {wait_status_ ? -1 : launcher_fd_, POLLIN, 0}};
      const int ready = poll(fds, 3, wait_status_ ? 0 : kPollMs);
      if (ready < 0 && errno != EINTR) break;
      handle_signals(signals);
      relay_stderr(fds[1].revents, ready);
      reap(WNOHANG);
      enforce_teardown();
    }
    if (!wait_status_) {
      int status = 0;
      while (waitpid(launcher_, &status, 0) < 0 && errno == EINTR) {
      }
      wait_status_ = status;
    }
    return *wait_status_;
  }

  int interrupt_signal() const { return interrupt_signal_; }
  const MpirunMessageFilter& filter() const { return filter_; }

 private:
  // First signal: graceful stop through the run folder, then deadlines; second: kill.
  void handle_signals(const SignalPipe& signals) {
    while (const auto signal = signals.next()) {
      if (wait_status_) continue;
      if (interrupt_signal_ == 0) {
        interrupt_signal_ = *signal;
        std::ofstream(options_.run_dir / "interrupt") << interrupt_signal_ << '\n';
        write_all(STDERR_FILENO,
                  fmt::format("accel-launch: {} received: stopping every rank (again to kill "
                              "them at once)\n",
                              signal_name(interrupt_signal_)));
        escalate_at_ = Clock::now() + std::chrono::seconds(kGracefulStopSeconds);
        kill_deadline_ =
            std::min(kill_deadline_, Clock::now() + std::chrono::seconds(kTeardownSeconds));
      } else {
        write_all(STDERR_FILENO, "accel-launch: second interrupt: killing the job\n");
        kill_job();
      }
    }
  }

  void relay_stderr(short revents, int ready) {
    if (stderr_fd_ >= 0 && (revents & (POLLIN | POLLHUP | POLLERR))) {
      char buffer[65536];
      const ssize_t n = read(stderr_fd_, buffer, sizeof(buffer));
      if (n > 0) {
        write_all(STDERR_FILENO,
                  filter_.feed(std::string_view(buffer, static_cast<std::size_t>(n))));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        close_stderr();
      }
    } else if (wait_status_ && stderr_fd_ >= 0 && ready == 0) {
      // mpirun is gone but something it started still holds the pipe: stop reading.
      close_stderr();
    }
  }

  void close_stderr() {
    write_all(STDERR_FILENO, filter_.finish());
    close(stderr_fd_);
    stderr_fd_ = -1;
  }

  void reap(int flags) {
    if (wait_status_) return;
    int status = 0;
    if (waitpid(launcher_, &status, flags) == launcher_) wait_status_ = status;
  }

  // A failed rank starts the teardown clock; past a deadline, mpirun/srun is asked to abort
  // (escalate_at_) or the job is killed (kill_deadline_).
  void enforce_teardown() {
    if (!wait_status_ && !failure_seen_ && !read_rank_statuses(options_.run_dir).empty()) {
      failure_seen_ = true;
      kill_deadline_ =
          std::min(kill_deadline_, Clock::now() + std::chrono::seconds(kTeardownSeconds));
    }
    if (!wait_status_ && Clock::now() >= escalate_at_) {
      escalate_at_ = kNever;
      kill(launcher_, SIGTERM);  // mpirun: SIGTERM to every rank, SIGKILL a second later
    }
    if (!wait_status_ && !killed_ && Clock::now() >= kill_deadline_) {
      write_all(STDERR_FILENO, fmt::format("accel-launch: the job did not stop within {} s; "
                                           "killing it\n",
                                           kTeardownSeconds));
      kill_job();
    }
  }

  void kill_job() {
    if (killed_) return;
    killed_ = true;
    kill(-launcher_, SIGKILL);
  }

  const SupervisorOptions& options_;
  const pid_t launcher_;
  int stderr_fd_;
  MpirunMessageFilter filter_;
  const int launcher_fd_;
  int interrupt_signal_ = 0;
  Clock::time_point escalate_at_ = kNever;  // interrupt: then ask mpirun/srun to abort
  Clock::time_point kill_deadline_ = kNever;
  bool killed_ = false;
  bool failure_seen_ = false;
  std::optional<int> wait_status_;
};

// Prints how the job ended (unless it succeeded) and returns accel-launch's exit status.
int report_job_end(const MpirunArgv& job, const SupervisorOptions& options, const JobWatch& watch,
                   int wait_status) {
  const int launcher_status =
      WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
  const std::vector<RankStatus> statuses = read_rank_statuses(options.run_dir);
  const std::optional<RankStatus> failed = first_failure(statuses);
  const int interrupt_signal = watch.interrupt_signal();

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
  const UnseenFailure unseen =
      unseen_failure_summary(job, options, watch.filter(), launcher_status);
  write_all(STDERR_FILENO, unseen.text);
  return unseen.status == 0 ? 1 : unseen.status;
}

}  // namespace

int supervise(const MpirunArgv& job, const SupervisorOptions& options) {
  std::optional<SignalPipe> signals(std::in_place, kInterruptSignals);
  JobWatch watch(start_job(job), options);
  const int wait_status = watch.watch(*signals);
  signals.reset();  // default signal actions again while the summary is written
  return report_job_end(job, options, watch, wait_status);
}

}  // namespace accel::launch
