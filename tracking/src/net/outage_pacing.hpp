#pragma once
// accel::detail::OutagePacing: when an online tracker whose server went away tries it again. After
// each failed attempt the pause grows — the retry policy's first wait, then doubling up to a
// maximum — so a long outage costs a request every `max` at most, and a short one is noticed
// quickly. It also remembers whether the outage was warned about (once per run: a flapping server
// does not flood the log). Thread-safety: none (the tracker's worker thread owns it).
#include <chrono>

namespace accel::detail {

class OutagePacing {
 public:
  using Clock = std::chrono::steady_clock;

  OutagePacing(std::chrono::milliseconds first, std::chrono::milliseconds max)
      : first_(first < std::chrono::milliseconds(1) ? std::chrono::milliseconds(1) : first),
        max_(max) {}

  // An attempt failed: the next one waits longer. True the first time in the run (warn then).
  bool went_away();
  // An attempt succeeded. True when the server had been away (say it is back).
  bool answered();
  // Away, and the pause before the next attempt has not ended.
  bool waiting() const { return away_ && Clock::now() < next_attempt_; }

 private:
  std::chrono::milliseconds first_, max_;
  std::chrono::milliseconds pause_{0};
  Clock::time_point next_attempt_{};
  bool away_ = false;
  bool warned_ = false;
};

}  // namespace accel::detail
