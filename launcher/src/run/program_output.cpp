#include "run/program_output.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

#include "run/write_all.hpp"

namespace accel::launch {

ProgramOutput::ProgramOutput(int stdout_fd, int stderr_fd, std::string prefix)
    : prefix_(std::move(prefix)) {
  streams_[kStdout].from = stdout_fd;
  streams_[kStdout].to = STDOUT_FILENO;
  streams_[kStderr].from = stderr_fd;
  streams_[kStderr].to = STDERR_FILENO;
}

ProgramOutput::~ProgramOutput() {
  for (auto& stream : streams_) {
    if (stream.from >= 0) close(stream.from);
  }
}

void ProgramOutput::open_logs(const std::filesystem::path& log_dir, int tee, int rank) {
  std::error_code ec;
  std::filesystem::create_directories(log_dir, ec);
  if (tee & 1) streams_[kStdout].log.open(log_dir / fmt::format("rank{}.stdout.log", rank));
  if (tee & 2) streams_[kStderr].log.open(log_dir / fmt::format("rank{}.stderr.log", rank));
}

void ProgramOutput::drain() {
  for (auto& stream : streams_) {
    if (stream.from < 0) continue;
    fcntl(stream.from, F_SETFL, O_NONBLOCK);
    while (pump(stream)) {
      pollfd fd{stream.from, POLLIN, 0};
      if (poll(&fd, 1, 0) <= 0) break;
    }
    finish(stream);
  }
}

void ProgramOutput::emit(Stream& stream, const std::vector<std::string>& lines) {
  if (lines.empty()) return;
  std::string out;
  for (const auto& line : lines) {
    last_.add(line);
    if (stream.log.is_open() && !is_redraw(line)) stream.log << line;
    out += prefix_;
    out += line;
  }
  if (stream.log.is_open()) stream.log.flush();
  write_all(stream.to, out);
}

bool ProgramOutput::pump(Stream& stream) {
  char buffer[65536];
  ssize_t n = read(stream.from, buffer, sizeof(buffer));
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) {
    finish(stream);
    return false;
  }
  emit(stream, stream.splitter.feed(std::string_view(buffer, static_cast<std::size_t>(n))));
  return true;
}

void ProgramOutput::finish(Stream& stream) {
  if (stream.from < 0) return;
  std::string rest = stream.splitter.take_rest();
  if (!rest.empty()) emit(stream, {rest + "\n"});
  close(stream.from);
  stream.from = -1;
}

}  // namespace accel::launch
