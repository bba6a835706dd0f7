#include "file_size_limit.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

namespace accel::test {

void set_file_size_limit(rlim_t limit_bytes) {
  struct rlimit limit {};
  ::getrlimit(RLIMIT_FSIZE, &limit);
  limit.rlim_cur = limit_bytes;  // the hard limit stays, so the child may raise it again
  ::setrlimit(RLIMIT_FSIZE, &limit);
}

int exit_code_with_file_size_limit(std::uint64_t limit_bytes, const std::function<int()>& child) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    set_file_size_limit(static_cast<rlim_t>(limit_bytes));
    int code = 125;
    try {
      code = child();
    } catch (...) {
    }
    ::_exit(code);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

}  // namespace accel::test
