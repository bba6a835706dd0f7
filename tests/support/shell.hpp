#pragma once
// Running a shell command from a test and capturing what it printed: the one way tests start a
// helper process through /bin/sh (popen).
#include <string>
#include <string_view>

namespace accel::test {

// s in single quotes, safe to paste into a /bin/sh command line.
std::string shell_quote(std::string_view s);

struct ShellResult {
  int wait_status = -1;  // as pclose/waitpid report it
  std::string output;    // what the command wrote on stdout
  // The exit code, or 128 + the signal that ended the command.
  int exit_code() const;
};

// Runs `command` with /bin/sh and waits for it; add " 2>&1" to the command to capture stderr too.
// Fails the test (REQUIRE) when the command cannot be started.
ShellResult run_shell(const std::string& command);

}  // namespace accel::test
