#include "run/output_lines.hpp"

namespace accel::launch {

std::vector<std::string> LineSplitter::feed(std::string_view data) {
  std::vector<std::string> lines;
  pending_.append(data);
  std::size_t start = 0;
  for (std::size_t i = 0; i < pending_.size(); ++i) {
    const char c = pending_[i];
    // "\r\n" ends one line; a '\r' alone (a redraw) ends one too, once the next byte shows which.
    if (c == '\r' && (i + 1 == pending_.size() || pending_[i + 1] == '\n')) {
      if (i + 1 == pending_.size()) break;
      continue;
    }
    if (c == '\n' || c == '\r') {
      lines.push_back(pending_.substr(start, i + 1 - start));
      start = i + 1;
    }
  }
  pending_.erase(0, start);
  if (pending_.size() >= kMaxLine) lines.push_back(take_rest());
  return lines;
}

bool is_redraw(std::string_view line) {
  return !line.empty() && line.back() == '\r';
}

std::string LineSplitter::take_rest() {
  std::string rest;
  rest.swap(pending_);
  return rest;
}

// "[host:pid] [ 3] /lib/libc.so.6(abort+0xd3)[0x7f...]": one frame of the backtrace Open MPI
// prints when a rank crashes. Such frames would push the error itself out of the last lines.
bool is_backtrace_frame(std::string_view line) {
  if (line.empty() || line[0] != '[') return false;
  const auto close = line.find("] [");
  if (close == std::string_view::npos ||
      line.substr(1, close).find(':') == std::string_view::npos) {
    return false;
  }
  std::size_t i = close + 3;
  while (i < line.size() && line[i] == ' ') ++i;
  const std::size_t digits = i;
  while (i < line.size() && line[i] >= '0' && line[i] <= '9') ++i;
  return i > digits && i < line.size() && line[i] == ']';
}

void LastLines::add(std::string_view line) {
  if (is_redraw(line) || is_backtrace_frame(line)) return;
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.find_first_not_of(" \t") == std::string_view::npos) return;
  std::string kept(line.substr(0, kMaxLength));
  if (line.size() > kMaxLength) kept += " [...]";
  lines_.push_back(std::move(kept));
  if (lines_.size() > capacity_) lines_.pop_front();
}

}  // namespace accel::launch
