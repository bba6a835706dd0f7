#include "hub/signal_relay.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <map>
#include <mutex>
#include <thread>

namespace accel::detail {
namespace {

constexpr int kSignals[] = {SIGTERM, SIGINT};

std::atomic<int> relay_pipe_write{-1};

extern "C" void relay_signal_handler(int signo) {
  int saved_errno = errno;
  int fd = relay_pipe_write.load();
  if (fd >= 0) {
    auto byte = static_cast<unsigned char>(signo);
    [[maybe_unused]] ssize_t n = ::write(fd, &byte, 1);
  }
  errno = saved_errno;
}

struct Relay {
  std::recursive_mutex mutex;  // a callback may detach while the helper holds it
  std::map<const void*, std::function<void()>> subscribers;
  pid_t owner = 0;  // the process that created the pipe and helper (fork-safe)
  int read_fd = -1;
  bool installed[2] = {false, false};
};

Relay& relay() {
  static auto* instance = new Relay();  // never destroyed: the helper thread may outlive main
  return *instance;
}

void helper_main(int read_fd) {
  for (;;) {
    unsigned char byte = 0;
    ssize_t n = ::read(read_fd, &byte, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    int signo = byte;
    {
      std::lock_guard lock(relay().mutex);
      auto subscribers = relay().subscribers;
      for (auto& [key, callback] : subscribers) {
        try {
          callback();
        } catch (...) {
          // The process is about to end by the signal; nothing must stop that.
        }
      }
    }
    ::signal(signo, SIG_DFL);
    ::kill(::getpid(), signo);
  }
}

void start_helper_if_needed(Relay& r) {
  if (r.owner == ::getpid()) return;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return;
  r.read_fd = fds[0];
  relay_pipe_write.store(fds[1]);
  r.owner = ::getpid();
  r.installed[0] = r.installed[1] = false;
  std::thread(helper_main, fds[0]).detach();
}

}  // namespace

void attach_signal_subscriber(const void* key, std::function<void()> on_signal) {
  auto& r = relay();
  std::lock_guard lock(r.mutex);
  start_helper_if_needed(r);
  r.subscribers[key] = std::move(on_signal);
  for (int i = 0; i < 2; ++i) {
    if (r.installed[i]) continue;
    struct sigaction current {};
    if (::sigaction(kSignals[i], nullptr, &current) != 0) continue;
    if ((current.sa_flags & SA_SIGINFO) != 0 || current.sa_handler != SIG_DFL) continue;
    struct sigaction ours {};
    ours.sa_handler = relay_signal_handler;
    sigemptyset(&ours.sa_mask);
    ours.sa_flags = SA_RESTART;
    if (::sigaction(kSignals[i], &ours, nullptr) == 0) r.installed[i] = true;
  }
}

void detach_signal_subscriber(const void* key) {
  auto& r = relay();
  std::lock_guard lock(r.mutex);
  r.subscribers.erase(key);
  if (!r.subscribers.empty()) return;
  for (int i = 0; i < 2; ++i) {
    if (!r.installed[i]) continue;
    struct sigaction current {};
    if (::sigaction(kSignals[i], nullptr, &current) == 0 && (current.sa_flags & SA_SIGINFO) == 0 &&
        current.sa_handler == relay_signal_handler) {
      ::signal(kSignals[i], SIG_DFL);
    }
    r.installed[i] = false;
  }
}

}  // namespace accel::detail
