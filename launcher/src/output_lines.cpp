#include "output_lines.hpp"

namespace accel::launch {

std::vector<std::string> LineSplitter::feed(std::string_view data) {
  std::vector<std::string> lines;
  pending_.append(data);
  std::size_t start = 0;
  for (std::size_t i = 0; i < pending_.size(); ++i) {
    const char c = pending_[i];
    if (c == '\n' || c == '\r') {
      lines.push_back(pending_.substr(start, i + 1 - start));
      start = i + 1;
    }
  }
  pending_.erase(0, start);
  if (pending_.size() >= kMaxLine) lines.push_back(take_rest());
  return lines;
}

std::string LineSplitter::take_rest() {
  std::string rest;
  rest.swap(pending_);
  return rest;
}

void LastLines::add(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.find_first_not_of(" \t") == std::string_view::npos) return;
  std::string kept(line.substr(0, kMaxLength));
  if (line.size() > kMaxLength) kept += " [...]";
  lines_.push_back(std::move(kept));
  if (lines_.size() > capacity_) lines_.pop_front();
}

}  // namespace accel::launch
