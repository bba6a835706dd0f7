#include "run/mpirun_messages.hpp"

#include <regex>

namespace accel::launch {
namespace {

constexpr std::size_t kMaxBlockLines = 200;

// Open MPI frames its reports with lines of exactly 74 dashes.
constexpr std::size_t kFrameWidth = 74;

bool is_dash_line(const std::string& line) {
  std::size_t dashes = 0;
  for (char c : line) {
    if (c == '-') {
      ++dashes;
    } else if (c != '\n' && c != '\r') {
      return false;
    }
  }
  return dashes == kFrameWidth;
}

std::string join(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& line : lines) text += line;
  return text;
}

}  // namespace

std::string MpirunMessageFilter::feed(std::string_view data) {
  std::string out;
  for (auto& line : splitter_.feed(data)) {
    if (is_dash_line(line)) {
      if (in_block_) {
        block_.push_back(std::move(line));
        out += close_block();
      } else {
        in_block_ = true;
        block_ = {std::move(line)};
      }
    } else if (in_block_) {
      block_.push_back(std::move(line));
      if (block_.size() > kMaxBlockLines) {  // not one of mpirun's reports after all
        out += join(block_);
        block_.clear();
        in_block_ = false;
      }
    } else {
      out += line;
    }
  }
  return out;
}

std::string MpirunMessageFilter::finish() {
  std::string out = join(block_);
  block_.clear();
  in_block_ = false;
  out += splitter_.take_rest();
  return out;
}

std::string MpirunMessageFilter::close_block() {
  std::string text = join(block_);
  block_.clear();
  in_block_ = false;
  read_block(text);
  const bool replaced = text.find("not enough slots") != std::string::npos ||
                        text.find("Primary job") != std::string::npos ||
                        text.find("exited with non-zero status") != std::string::npos ||
                        text.find("noticed that process rank") != std::string::npos ||
                        text.find("has exited due to process rank") != std::string::npos;
  return (replaced && !keep_all_) ? std::string() : text;
}

void MpirunMessageFilter::read_block(const std::string& text) {
  static const std::regex slots("not enough slots");
  static const std::regex process_name(R"(Process name:\s*\[\[\d+,\d+\],(\d+)\])");
  static const std::regex exit_code(R"(Exit code:\s*(\d+))");
  static const std::regex signaled(
      R"(process rank (\d+) with PID \d+ on node (\S+) exited on signal (\d+))");
  static const std::regex exited(R"(process rank (\d+) with PID \d+ on node (\S+) exiting)");
  std::smatch m;
  if (std::regex_search(text, slots)) not_enough_slots_ = true;
  if (failure_.rank) return;  // the first report names the first failure
  if (std::regex_search(text, m, signaled)) {
    failure_.rank = std::stoi(m[1]);
    failure_.host = m[2];
    failure_.signal = std::stoi(m[3]);
  } else if (std::regex_search(text, m, process_name)) {
    failure_.rank = std::stoi(m[1]);
    if (std::smatch c; std::regex_search(text, c, exit_code)) failure_.exit_code = std::stoi(c[1]);
  } else if (std::regex_search(text, m, exited)) {
    failure_.rank = std::stoi(m[1]);
    failure_.host = m[2];
  }
}

}  // namespace accel::launch
