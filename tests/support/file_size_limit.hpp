#pragma once
// A full disk, simulated with a file size limit: a test runs its writer in a forked child whose
// files may not grow past a limit (RLIMIT_FSIZE, with SIGXFSZ ignored), so write(2) fails with
// EFBIG where a full disk fails with ENOSPC (the same code path), and the limit never reaches the
// test runner.
#include <sys/resource.h>

#include <cstdint>
#include <functional>

namespace accel::test {

// Runs child() in a forked process whose files may grow to at most limit_bytes, and returns its
// result as the child's exit code (an escaping exception: exit code 125). Fails the test (REQUIRE)
// when the child does not exit normally. child() must not use Catch assertions (they would not
// reach this process): it reports through its result, 0 meaning every check passed.
int exit_code_with_file_size_limit(std::uint64_t limit_bytes, const std::function<int()>& child);

// Inside such a child: the file size limit from now on (RLIM_INFINITY: none, "the disk has room
// again").
void set_file_size_limit(rlim_t limit_bytes);

}  // namespace accel::test
