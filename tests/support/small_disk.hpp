#pragma once
// A full disk, simulated with a small tmpfs: a test case runs one hidden test case of its own
// executable again, in a child process with a private mount namespace (unshare -m --propagation
// private) where a small tmpfs is mounted over a scratch directory, so that writes there fail with
// ENOSPC as on a full disk, and nothing is left mounted when the child ends. That needs root or
// CAP_SYS_ADMIN; where it is not allowed, the test case reports "SKIPPED: <reason>" through WARN,
// and its ctest entry (SKIP_REGULAR_EXPRESSION "SKIPPED:", see accel_add_disk_full_test) shows as
// skipped.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace accel::test {

// Set in the child: the directory the small tmpfs is mounted on.
inline constexpr const char* kSmallDiskVariable = "ACCEL_TEST_SMALL_DISK_DIR";

// In the child test case: the directory on the small tmpfs (fails the test outside the child).
std::filesystem::path small_disk_dir();

// Runs the test cases of this executable that child_spec selects (e.g. "[.csv_disk_full_child]")
// with a tmpfs of `size` (mount's size= option) mounted on a fresh scratch directory, and checks
// that they pass. When this machine does not allow it, reports the test case skipped (WARN
// "SKIPPED: ...") instead.
void run_on_small_disk(const std::string& child_spec, const std::string& size = "64k");

// A file of `bytes` bytes that takes space on the small disk until it is removed (to free space).
void write_ballast(const std::filesystem::path& path, std::size_t bytes);

// Calls log(0), log(1), ... until a call throws accel::TrackerUnavailable (the disk is full), at
// most `limit` calls. accepted: how many calls returned (the step of the refused call); message:
// what the refused call threw (empty when none was refused).
struct Refusal {
  int64_t accepted = 0;
  std::string message;
};
Refusal log_until_refused(const std::function<void(int64_t step)>& log, int64_t limit = 1'000'000);

}  // namespace accel::test
