#pragma once
// Reading mpirun's own stderr messages. mpirun prints its reports as blocks framed by lines of
// dashes; MpirunMessageFilter passes rank output and unknown blocks through unchanged and holds
// back the blocks accel-launch replaces with its own summary (job aborted because a rank failed,
// not enough slots), keeping what they say as a fallback for ranks whose status file is not
// visible (other machines).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "run/output_lines.hpp"

namespace accel::launch {

// What mpirun reported about the rank that ended the job.
struct MpirunFailureReport {
  std::optional<int> rank;
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string host;
};

class MpirunMessageFilter {
 public:
  // `keep_all`: print every block (for --debug) while still reading them.
  explicit MpirunMessageFilter(bool keep_all) : keep_all_(keep_all) {}

  // Takes a chunk of mpirun's stderr and returns the text to print now.
  std::string feed(std::string_view data);
  // The end of the stream: returns whatever is still held.
  std::string finish();

  const MpirunFailureReport& failure() const { return failure_; }
  bool not_enough_slots() const { return not_enough_slots_; }
  bool rank_failure_reported() const { return failure_.rank.has_value(); }

 private:
  std::string close_block();
  void read_block(const std::string& text);

  bool keep_all_;
  LineSplitter splitter_;
  bool in_block_ = false;
  std::vector<std::string> block_;
  MpirunFailureReport failure_;
  bool not_enough_slots_ = false;
};

}  // namespace accel::launch
