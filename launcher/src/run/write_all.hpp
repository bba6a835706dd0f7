#pragma once
// write_all: writes all of data to a file descriptor, retrying short writes and EINTR. Stops
// quietly when the reader is gone (the caller goes on: a lost console must not stop supervision).
// Async-signal-safe, so it may be used between fork and exec.
#include <unistd.h>

#include <cerrno>
#include <string_view>

namespace accel::launch {

inline void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace accel::launch
