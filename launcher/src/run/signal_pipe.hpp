#pragma once
// SignalPipe: the self-pipe trick for a poll loop. The handler it installs writes each signal's
// number into a non-blocking pipe; the loop polls read_fd() and drains pending signals with next().
// One instance per process at a time (the handler reaches it through a process-wide descriptor).
// Construction also ignores SIGPIPE, so writes to a vanished reader fail instead of killing us.
// The destructor restores the default action of the signals, then closes the pipe.
#include <optional>
#include <span>
#include <vector>

namespace accel::launch {

class SignalPipe {
 public:
  // Throws LaunchError when the pipe cannot be created.
  explicit SignalPipe(std::span<const int> signals);
  ~SignalPipe();
  SignalPipe(const SignalPipe&) = delete;
  SignalPipe& operator=(const SignalPipe&) = delete;

  int read_fd() const { return read_fd_; }
  // The next pending signal, or nullopt when none is pending. Never blocks.
  std::optional<int> next() const;

 private:
  std::vector<int> signals_;
  int read_fd_ = -1;
  int write_fd_ = -1;
};

}  // namespace accel::launch
