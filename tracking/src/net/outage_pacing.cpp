#include "net/outage_pacing.hpp"

#include <algorithm>

namespace accel::detail {

bool OutagePacing::went_away() {
  pause_ = away_ ? std::min(pause_ * 2, max_) : first_;
  away_ = true;
  next_attempt_ = Clock::now() + pause_;
  const bool first_warning = !warned_;
  warned_ = true;
  return first_warning;
}

bool OutagePacing::answered() {
  const bool was_away = away_;
  away_ = false;
  return was_away;
}

}  // namespace accel::detail
