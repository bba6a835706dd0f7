#pragma once
// Disk-full tests of the file trackers: a test case runs one hidden test case of its own executable
// again, in a child process with a private mount namespace (unshare -m --propagation private) where
// a small tmpfs is mounted over a scratch directory, so that writes there fail with ENOSPC as on a
// full disk, and nothing is left mounted when the child ends. That needs root or CAP_SYS_ADMIN;
// where it is not allowed, the test case reports "SKIPPED: <reason>" through WARN, and its ctest
// entry (SKIP_REGULAR_EXPRESSION "SKIPPED:") shows as skipped.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>

namespace accel::test {

// Set in the child: the directory the small tmpfs is mounted on.
inline constexpr const char* kSmallDiskVariable = "ACCEL_TEST_SMALL_DISK_DIR";

// In the child test case: the directory on the small tmpfs (fails the test outside the child).
inline std::filesystem::path small_disk_dir() {
  const char* dir = std::getenv(kSmallDiskVariable);
  INFO("run this test case through run_on_small_disk (its [disk_full] test case)");
  REQUIRE(dir != nullptr);
  return dir;
}

inline std::string sh_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a shell command; returns its wait status and its output (stdout and stderr).
inline std::pair<int, std::string> run_shell(const std::string& command) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buffer[4096];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  return {::pclose(pipe), output};
}

// Runs the test cases of this executable that child_spec selects (e.g. "[.csv_disk_full_child]")
// with a tmpfs of `size` (mount's size= option) mounted on dir, and checks that they pass. When
// this machine does not allow it, reports the test case skipped (WARN "SKIPPED: ...") instead.
inline void run_on_small_disk(const std::filesystem::path& dir, const std::string& child_spec,
                              const std::string& size = "64k") {
  const std::string mount = "mount -t tmpfs -o size=" + size + " accel-small-disk \"$0\"";
  const std::string unshare = "unshare -m --propagation private sh -c ";
  auto [probe, reason] =
      run_shell(unshare + sh_quote(mount + " && umount \"$0\"") + " " + sh_quote(dir.string()));
  if (probe != 0) {
    WARN(
        "SKIPPED: cannot mount a small tmpfs in a private mount namespace here (unshare -m and "
        "mount need root or CAP_SYS_ADMIN): "
        << reason);
    return;
  }
  const auto self = std::filesystem::read_symlink("/proc/self/exe");
  const std::string script =
      mount + " || exit 97; export " + kSmallDiskVariable + "=\"$0\"; exec \"$1\" \"$2\"";
  auto [status, output] = run_shell(unshare + sh_quote(script) + " " + sh_quote(dir.string()) +
                                    " " + sh_quote(self.string()) + " " + sh_quote(child_spec));
  INFO("child output:\n" << output);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK_THAT(output, Catch::Contains("All tests passed"));
}

// A file of `bytes` bytes that takes space on the small disk until it is removed (to free space).
inline void write_ballast(const std::filesystem::path& path, std::size_t bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const std::string block(bytes, 'b');
  out << block;
  out.flush();
  REQUIRE(out.good());
}

}  // namespace accel::test
