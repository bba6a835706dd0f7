#pragma once
// Line handling for relayed output: LineSplitter cuts a byte stream into lines (a line ends at '\n'
// or '\r', so progress bars stay on one line), LastLines keeps the tail of a rank's output for
// the failure summary. Neither is thread-safe; each belongs to one relay loop.
#include <cstddef>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace accel::launch {

class LineSplitter {
 public:
  // Appends `data` and returns the lines it completed, each with its terminator.
  std::vector<std::string> feed(std::string_view data);
  // The unterminated rest (for the end of the stream), emptying the buffer.
  std::string take_rest();

 private:
  static constexpr std::size_t kMaxLine = 64 * 1024;  // longer lines are cut
  std::string pending_;
};

// A line ended by '\r' (a progress bar redrawing itself): not kept in the last lines or log files.
bool is_redraw(std::string_view line);

class LastLines {
 public:
  explicit LastLines(std::size_t capacity = 20) : capacity_(capacity) {}
  // Keeps `line` without its terminator (blank lines, '\r' redraws and the frames of Open MPI's
  // crash backtrace, "[host:pid] [ 3] ...", are skipped: they would hide the error line).
  void add(std::string_view line);
  std::vector<std::string> lines() const { return {lines_.begin(), lines_.end()}; }

 private:
  static constexpr std::size_t kMaxLength = 400;
  std::size_t capacity_;
  std::deque<std::string> lines_;
};

}  // namespace accel::launch
