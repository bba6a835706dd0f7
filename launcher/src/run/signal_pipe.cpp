#include "run/signal_pipe.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "plan/launch_error.hpp"

namespace accel::launch {
namespace {

int g_signal_pipe_write = -1;

void on_signal(int signal) {
  const unsigned char byte = static_cast<unsigned char>(signal);
  const int saved = errno;
  [[maybe_unused]] ssize_t n = write(g_signal_pipe_write, &byte, 1);
  errno = saved;
}

}  // namespace

SignalPipe::SignalPipe(std::span<const int> signals) : signals_(signals.begin(), signals.end()) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw LaunchError(fmt::format("cannot create a pipe for signals: {}", std::strerror(errno)));
  }
  read_fd_ = fds[0];
  write_fd_ = fds[1];
  g_signal_pipe_write = write_fd_;
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  for (int signal : signals_) sigaction(signal, &action, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

SignalPipe::~SignalPipe() {
  for (int signal : signals_) std::signal(signal, SIG_DFL);
  g_signal_pipe_write = -1;
  close(read_fd_);
  close(write_fd_);
}

std::optional<int> SignalPipe::next() const {
  unsigned char byte;
  if (read(read_fd_, &byte, 1) == 1) return byte;
  return std::nullopt;
}

}  // namespace accel::launch
