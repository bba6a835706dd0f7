#pragma once
// Accelerator::Tracking: the boundary between tensors and accel_tracking (private to accel_distributed).
//
// Plain log(values, step): tensors on the CPU are read at once. Device tensors of one call are stacked
// into one float64 tensor, copied to pinned host memory with non_blocking, and an event is recorded on
// the current stream; the record waits in `pending` and is handed to the TrackerHub when its event has
// completed (polled at later log calls, waited for at flush/end_training). Records keep call order.
//
// Lightning-style log(name, value, options): CPU values go straight to the MetricAggregator; device
// tensors wait in `deferred` and are read in one batch when step values are due (every
// log_every_n_steps optimizer steps), at epoch_end, or when 4096 are waiting.
#include <c10/core/Event.h>

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "accel/accelerator.hpp"
#include "accel/process_group_collectives.hpp"
#include "accel/tracking/aggregation.hpp"
#include "accel/tracking/hub.hpp"

namespace accel {

struct Accelerator::Tracking {
  struct PendingRecord {
    // Either a ready value or the index of a slot in `host`.
    std::vector<std::pair<std::string, std::variant<Value, std::size_t>>> entries;
    std::vector<bool> slot_is_integer;
    torch::Tensor host;  // float64 [slots], pinned
    std::optional<c10::Event> ready;
    std::optional<int64_t> step;
  };
  struct DeferredMetric {
    std::string name;
    std::variant<double, torch::Tensor> value;
    LogOptions options;
    Phase phase;
  };

  explicit Tracking(int64_t log_every_n_steps) : aggregator(AggregatorOptions{log_every_n_steps}) {}

  std::unique_ptr<ProcessGroupCollectives> collectives;
  std::unique_ptr<TrackerHub> hub;
  MetricAggregator aggregator;
  std::deque<PendingRecord> pending;
  std::vector<DeferredMetric> deferred;
  int64_t last_step_seen = 0;
  bool ended = false;
};

}  // namespace accel
