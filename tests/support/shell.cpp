#include "shell.hpp"

#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>

namespace accel::test {

std::string shell_quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

int ShellResult::exit_code() const {
  return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
}

ShellResult run_shell(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  INFO("command: " << command);
  REQUIRE(pipe != nullptr);
  ShellResult result;
  char buffer[65536];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
  result.wait_status = ::pclose(pipe);
  return result;
}

}  // namespace accel::test
