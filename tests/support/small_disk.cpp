#include "small_disk.hpp"

#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>

#include "accel/tracking/errors.hpp"
#include "shell.hpp"
#include "temp_dir.hpp"

namespace accel::test {

std::filesystem::path small_disk_dir() {
  const char* dir = std::getenv(kSmallDiskVariable);
  INFO("run this test case through run_on_small_disk (its [disk_full] test case)");
  REQUIRE(dir != nullptr);
  return dir;
}

void run_on_small_disk(const std::string& child_spec, const std::string& size) {
  const TempDir dir("accel-small-disk");
  const std::string mount = "mount -t tmpfs -o size=" + size + " accel-small-disk \"$0\"";
  const std::string unshare = "unshare -m --propagation private sh -c ";
  const auto probe = run_shell(unshare + shell_quote(mount + " && umount \"$0\"") + " " +
                               shell_quote(dir.str()) + " 2>&1");
  if (probe.wait_status != 0) {
    WARN(
        "SKIPPED: cannot mount a small tmpfs in a private mount namespace here (unshare -m and "
        "mount need root or CAP_SYS_ADMIN): "
        << probe.output);
    return;
  }
  const auto self = std::filesystem::read_symlink("/proc/self/exe");
  const std::string script =
      mount + " || exit 97; export " + kSmallDiskVariable + "=\"$0\"; exec \"$1\" \"$2\"";
  const auto child =
      run_shell(unshare + shell_quote(script) + " " + shell_quote(dir.str()) + " " +
                shell_quote(self.string()) + " " + shell_quote(child_spec) + " 2>&1");
  INFO("child output:\n" << child.output);
  REQUIRE(WIFEXITED(child.wait_status));
  CHECK(WEXITSTATUS(child.wait_status) == 0);
  CHECK_THAT(child.output, Catch::Contains("All tests passed"));
}

void write_ballast(const std::filesystem::path& path, std::size_t bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const std::string block(bytes, 'b');
  out << block;
  out.flush();
  REQUIRE(out.good());
}

Refusal log_until_refused(const std::function<void(int64_t step)>& log, int64_t limit) {
  Refusal refusal;
  for (; refusal.accepted < limit; ++refusal.accepted) {
    try {
      log(refusal.accepted);
    } catch (const TrackerUnavailable& e) {
      refusal.message = e.what();
      break;
    }
  }
  return refusal;
}

}  // namespace accel::test
